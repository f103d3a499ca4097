# Sourced by the benches that read ORL through a server (bench/orl_sql.sh, retrain.sh, quality.sh):
# sets orl to the absolute faces-orl folder of TRAINING_SHARED_DATA, ../shared/data beside the
# checkout, or /work/shared/data, or exits saying how to point at it. Expects top (the checkout).
orl=
for d in "${TRAINING_SHARED_DATA:-}" "$top/../shared/data" /work/shared/data; do
    if [ -n "$d" ] && [ -f "$d/faces-orl/s1/1.pgm" ]; then orl=$(cd "$d/faces-orl" && pwd); break; fi
done
[ -n "$orl" ] || { echo "ORL faces not found (set TRAINING_SHARED_DATA)" >&2; exit 1; }
