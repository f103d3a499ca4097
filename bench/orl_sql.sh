#!/usr/bin/env bash
# ORL 5/5 through SQL on a running server with the extension preloaded: the deep face
# features (detector + 128-d embedding) next to the classic features in the same run.
# Training wall time (create → completed), top-1 accuracy of recognize() on the 200
# held-out faces, recognize() throughput in one session. Needs a superuser (ALTER SYSTEM
# for training.face_features, pg_read_binary_file) and ../shared/data readable by the server.
#   PGHOST=... PGPORT=... PGUSER=postgres bench/orl_sql.sh [min_face_size (default 50)]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
mfs=${1:-50}
. "$top/bench/orl.sh"
db=training_bench_orl
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -d $db -c "CREATE EXTENSION training"
echo "ORL 5/5 through SQL, min_face_size $mfs"
for mode in deep classic; do
    psql -X -q -d $db -c "ALTER SYSTEM SET training.face_features = '$mode'" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 1
    psql -X -q -At -d $db -v ON_ERROR_STOP=1 -v orl="$orl" -v mode="$mode" -v mfs="$mfs" <<'SQL'
SELECT set_config('b.orl', :'orl', false), set_config('b.mode', :'mode', false),
       set_config('b.mfs', :'mfs', false) \g /dev/null
DO $$
DECLARE ds uuid; cl uuid;
BEGIN
  ds := (training.create_dataset(name => 'orl ' || current_setting('b.mode'), type => 'face')->>'id')::uuid;
  FOR c IN 1..40 LOOP
    cl := (training.create_class(dataset_id => ds, label => 's' || c)->>'id')::uuid;
    FOR i IN 1..5 LOOP
      PERFORM training.add_image(class_id => cl,
        data => pg_read_binary_file(current_setting('b.orl') || '/s' || c || '/' || i || '.pgm'));
    END LOOP;
  END LOOP;
  PERFORM set_config('b.ds', ds::text, false);
END $$;
SELECT set_config('b.t', training.create_training(source_dataset_id => current_setting('b.ds')::uuid,
       output_model_name => 'orl ' || current_setting('b.mode'),
       config => jsonb_build_object('min_face_size', current_setting('b.mfs')::int))->>'id', false) \g /dev/null
DO $$
BEGIN
  LOOP
    EXIT WHEN (SELECT state IN ('completed', 'failed') FROM training.trainings
                WHERE id = current_setting('b.t')::uuid);
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT format('%-8s training: %s in %s s (%s images used, feature kind %s)', current_setting('b.mode'),
              t.state, round(extract(epoch FROM t.time_completed - t.time_created)::numeric, 2),
              mv.metrics->>'images_used', mv.metrics->>'feature_kind')
  FROM training.trainings t LEFT JOIN training.model_versions mv ON mv.training_id = t.id
 WHERE t.id = current_setting('b.t')::uuid;
DO $$
DECLARE right_n int := 0; t0 timestamptz := clock_timestamp(); secs float8; lab text;
BEGIN
  FOR c IN 1..40 LOOP
    FOR i IN 6..10 LOOP
      lab := training.recognize('orl ' || current_setting('b.mode'),
               pg_read_binary_file(current_setting('b.orl') || '/s' || c || '/' || i || '.pgm'),
               max_distance => 2)->'detections'->0->>'label';
      IF lab = 's' || c THEN right_n := right_n + 1; END IF;
    END LOOP;
  END LOOP;
  secs := extract(epoch FROM clock_timestamp() - t0);
  RAISE NOTICE '%', format('%-8s recognize: top-1 %s %% of 200 held-out faces, %s images/s in one session',
    current_setting('b.mode'), round(right_n / 2.0, 1), round((200 / secs)::numeric, 1));
END $$;
SQL
done 2>&1 | sed 's/^NOTICE:  //'
psql -X -q -d $db -c "ALTER SYSTEM RESET training.face_features" -c "SELECT pg_reload_conf()" >/dev/null
psql -X -q -c "DROP DATABASE $db"
