#!/usr/bin/env bash
# A retraining at scale from the embedding store: CLASSES classes x IMAGES/CLASSES images whose
# 128-d features (unit vectors around a random direction per class) are written to
# training.image_features directly, in the same transaction as the (tiny) images, so nothing is
# decoded; then one training, timed (create -> completed), with the worker's peak resident set
# (VmHWM) and the model's metrics. On a running server with the extension preloaded and the face
# networks installed (the store rows are for the deep kind); superuser.
#   PGHOST=... PGPORT=... PGUSER=postgres bench/scale.sh [IMAGES [CLASSES]]   (100000, 10000)
set -euo pipefail
n=${1:-100000}
c=${2:-10000}
db=training_bench_scale
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
psql -X -q -d $db -c "CREATE EXTENSION training"
psql -X -q -At -d $db -v ON_ERROR_STOP=1 -v n="$n" -v c="$c" <<'SQL' 2>&1 | sed 's/^NOTICE:  //'
SELECT set_config('b.n', :'n', false), set_config('b.c', :'c', false) \g /dev/null
\timing on
BEGIN;
SELECT training.create_dataset('scale', 'face') ->> 'id' AS ds \gset
INSERT INTO training.classes (dataset_id, label)
SELECT :'ds', 'c' || k FROM generate_series(1, :c) k;
-- Tiny images (their data is never read: the store has their features).
INSERT INTO training.images (class_id, data, time_created)
SELECT cl.id, '\x50350a3220320a3235350a01020304'::bytea, clock_timestamp()
  FROM (SELECT id, row_number() OVER (ORDER BY label) - 1 AS k FROM training.classes) cl,
       generate_series(1, :n / :c) i;
-- Per class a random direction, per image that direction plus noise (about unit length).
CREATE TEMP TABLE dirs AS
SELECT id AS class_id, ARRAY(SELECT random() - 0.5 FROM generate_series(1, 128) WHERE id IS NOT NULL)::real[] AS v
  FROM training.classes;
INSERT INTO training.image_features (image_id, kind, content_version, owner, status, max_pixels, width, height, regions, features)
SELECT i.id, 'face-api-resnet-v1', i.content_version, i.owner, 'measured', 40000000, 200, 200, '{{0,0,200,200,0,200,100,-1}}',
       ARRAY[(SELECT array_agg((d.v[o] + 0.4 * (random() - 0.5)) / 3.3 ORDER BY o)
                FROM generate_series(1, 128) o)]::real[]
  FROM training.images i JOIN dirs d ON d.class_id = i.class_id;
COMMIT;
\timing off
SELECT format('%s images, %s classes, %s feature rows', (SELECT count(*) FROM training.images),
              (SELECT count(*) FROM training.classes), (SELECT count(*) FROM training.image_features));
SQL
psql -X -q -At -d $db -v ON_ERROR_STOP=1 <<'SQL'
SELECT training.create_training((SELECT id FROM training.datasets), 'scale') ->> 'id' AS t \gset
SELECT set_config('b.t', :'t', false) \g /dev/null
SQL
echo "training started"
t=$(psql -X -At -d $db -c "SELECT id FROM training.trainings")
peak=0
while :; do
    row=$(psql -X -At -F' ' -d $db -c "SELECT state, coalesce(worker_pid, 0) FROM training.trainings WHERE id = '$t'")
    state=${row% *}; pid=${row#* }
    if [ "$pid" != 0 ] && [ -r /proc/$pid/status ]; then
        hwm=$(awk '/^VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
        [ "${hwm:-0}" -gt "$peak" ] && peak=$hwm
    fi
    case $state in completed|failed) break ;; esac
    sleep 0.2
done
psql -X -At -d $db -c "
SELECT format('training %s in %s s; %s images used, %s measured by the training, %s classes, %s epochs run, '
              'train %s s, %s GFLOP; accuracy train %s, validation %s',
              t.state, round(extract(epoch FROM t.time_completed - t.time_created)::numeric, 1),
              mv.metrics->>'images_used', mv.metrics->>'images_measured', mv.metrics->>'classes',
              mv.metrics->>'epochs_run', mv.metrics->>'train_seconds', mv.metrics->>'gflop',
              mv.metrics->>'train_accuracy', mv.metrics->>'validation_accuracy')
  FROM training.trainings t LEFT JOIN training.model_versions mv ON mv.training_id = t.id
 WHERE t.id = '$t'" -c "SELECT error FROM training.trainings WHERE id = '$t' AND state = 'failed'"
echo "worker peak resident set (VmHWM while it trained): $((peak / 1024)) MiB"
psql -X -q -c "DROP DATABASE $db"
