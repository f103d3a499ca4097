#!/usr/bin/env bash
# Retraining with the embedding store, ORL 40 x 5 (the 5/5 split's training half), default
# config and feature kind, in one run on a running server with the extension preloaded:
#   cold       upload of the 200 images (the workers measure them meanwhile) -> first model
#   unchanged  create_training -> completed, nothing changed
#   +1 image   one image added, then create_training -> completed
#   box        one image's face box changed, then create_training -> completed
#   no store   create_training -> completed after emptying the store (every image decoded and
#              measured again: what every retraining cost before the store)
# and top-1 of recognize() on the 200 held-out faces with the last model. Needs a superuser
# (pg_read_binary_file) and ../shared/data readable by the server.
#   PGHOST=... PGPORT=... PGUSER=postgres bench/retrain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
. "$top/bench/orl.sh"
db=training_bench_retrain
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -d $db -c "CREATE EXTENSION training"
psql -X -q -At -d $db -v ON_ERROR_STOP=1 -v orl="$orl" <<'SQL' 2>&1 | sed 's/^NOTICE:  //'
SELECT set_config('b.orl', :'orl', false) \g /dev/null
-- Train the dataset, wait, and say how long it took from t0.
CREATE PROCEDURE pg_temp.step(what text, t0 timestamptz) LANGUAGE plpgsql AS $$
DECLARE t uuid; s text; m jsonb;
BEGIN
  t := (training.create_training(source_dataset_id => current_setting('b.ds')::uuid,
                                 output_model_name => 'orl')->>'id')::uuid;
  COMMIT;
  LOOP
    SELECT state INTO s FROM training.trainings WHERE id = t;
    EXIT WHEN s IN ('completed', 'failed');
    PERFORM pg_sleep(0.02);
  END LOOP;
  SELECT metrics INTO m FROM training.model_versions WHERE training_id = t;
  RAISE NOTICE '%', format('%-10s %s in %s s (%s images used, %s measured by the training, kind %s)', what, s,
                round(extract(epoch FROM (SELECT time_completed FROM training.trainings WHERE id = t) - t0)::numeric, 2),
                m->>'images_used', m->>'images_measured', m->>'feature_kind');
END $$;

-- cold: upload, then train at once.
SELECT set_config('b.t0', clock_timestamp()::text, false) \g /dev/null
DO $$
DECLARE ds uuid; cl uuid;
BEGIN
  ds := (training.create_dataset(name => 'orl', type => 'face')->>'id')::uuid;
  PERFORM set_config('b.ds', ds::text, false);
  FOR c IN 1..40 LOOP
    cl := (training.create_class(dataset_id => ds, label => 's' || c)->>'id')::uuid;
    FOR i IN 1..5 LOOP
      PERFORM training.add_image(class_id => cl,
        data => pg_read_binary_file(current_setting('b.orl') || '/s' || c || '/' || i || '.pgm'));
      COMMIT;
    END LOOP;
  END LOOP;
END $$;
CALL pg_temp.step('cold', current_setting('b.t0')::timestamptz);
CALL pg_temp.step('unchanged', clock_timestamp());

-- +1 image: s1's 6th photo, removed again before the held-out faces are recognized.
SELECT set_config('b.t0', clock_timestamp()::text, false) \g /dev/null
SELECT set_config('b.extra', training.add_image(
         class_id => (SELECT id FROM training.classes WHERE label = 's1'),
         data => pg_read_binary_file(current_setting('b.orl') || '/s1/6.pgm'))->>'id', false) \g /dev/null
CALL pg_temp.step('+1 image', current_setting('b.t0')::timestamptz);

SELECT set_config('b.t0', clock_timestamp()::text, false) \g /dev/null
UPDATE training.images SET face_box = ARRAY[4, 4, 84, 104]
 WHERE id = (SELECT min(i.id::text)::uuid FROM training.images i JOIN training.classes c ON c.id = i.class_id
              WHERE c.label = 's2');
CALL pg_temp.step('box', current_setting('b.t0')::timestamptz);

SELECT training.delete_image(current_setting('b.extra')::uuid) \g /dev/null
SELECT set_config('b.t0', clock_timestamp()::text, false) \g /dev/null
DELETE FROM training.image_features;
CALL pg_temp.step('no store', current_setting('b.t0')::timestamptz);

DO $$
DECLARE right_n int := 0; lab text;
BEGIN
  FOR c IN 1..40 LOOP
    FOR i IN 6..10 LOOP
      lab := training.recognize('orl', pg_read_binary_file(current_setting('b.orl') || '/s' || c || '/' || i || '.pgm'),
                                max_distance => 2)->'detections'->0->>'label';
      IF lab = 's' || c THEN right_n := right_n + 1; END IF;
    END LOOP;
  END LOOP;
  RAISE NOTICE '%', format('top-1      %s %% of the 200 held-out faces', round(right_n / 2.0, 1));
END $$;
SQL
psql -X -q -c "DROP DATABASE $db"
