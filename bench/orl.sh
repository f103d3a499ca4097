# Sourced by the benches that read ORL through a server (bench/orl_sql.sh, retrain.sh, quality.sh,
# extract.sh): sets orl to the absolute faces-orl folder of TRAINING_SHARED_DATA, ../shared/data
# beside the checkout, or /work/shared/data, or exits saying how to point at it. Expects top (the
# checkout).
orl=
for d in "${TRAINING_SHARED_DATA:-}" "$top/../shared/data" /work/shared/data; do
    if [ -n "$d" ] && [ -f "$d/faces-orl/s1/1.pgm" ]; then orl=$(cd "$d/faces-orl" && pwd); break; fi
done
[ -n "$orl" ] || { echo "ORL faces not found (set TRAINING_SHARED_DATA)" >&2; exit 1; }

# orl_upload DB N: a face dataset "orl" of ORL's 40 people with their first N images each, added
# through the SQL API in one transaction (the server reads the files: needs a superuser).
orl_upload() {
    psql -X -q -d "$1" -v ON_ERROR_STOP=1 -v orl="$orl" -v n="$2" <<'SQL'
SELECT set_config('b.orl', :'orl', false), set_config('b.n', :'n', false) \g /dev/null
DO $$
DECLARE ds uuid; cl uuid;
BEGIN
  ds := (training.create_dataset(name => 'orl', type => 'face')->>'id')::uuid;
  FOR c IN 1..40 LOOP
    cl := (training.create_class(dataset_id => ds, label => 's' || c)->>'id')::uuid;
    FOR i IN 1..current_setting('b.n')::int LOOP
      PERFORM training.add_image(class_id => cl,
        data => pg_read_binary_file(current_setting('b.orl') || '/s' || c || '/' || i || '.pgm'));
    END LOOP;
  END LOOP;
END $$;
SQL
}
