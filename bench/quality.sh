#!/usr/bin/env bash
# Data-quality warnings of evaluate_dataset() on ORL 40 x 5 (the 5/5 split's training half), default
# config and feature kind, on a running server with the extension preloaded: once as it is (no
# quality warning expected), then with three images moved to another person's class, a copy of
# one image added to another class, and one person's images added to another person's class (that
# person's own class deactivated). Prints the warnings and the time evaluate_dataset() took.
# Needs a superuser (pg_read_binary_file) and ../shared/data readable by the server.
#   PGHOST=... PGPORT=... PGUSER=postgres bench/quality.sh
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
. "$top/bench/orl.sh"
db=training_bench_quality
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
psql -X -q -d $db -c "CREATE EXTENSION training"
orl_upload $db 5
psql -X -q -At -d $db -v ON_ERROR_STOP=1 <<'SQL' 2>&1 | sed 's/^NOTICE:  //'
CREATE PROCEDURE pg_temp.evaluate(what text) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); d jsonb; w text;
BEGIN
  d := training.evaluate_dataset((SELECT id FROM training.datasets WHERE name = 'orl'));
  RAISE NOTICE '%', format('== %s: evaluate_dataset %s s (%s images from the store, %s measured)', what,
    round(extract(epoch FROM clock_timestamp() - t0)::numeric, 2),
    d->'evaluation_result'->'features'->>'images_from_store', d->'evaluation_result'->'features'->>'images_measured');
  FOR w IN SELECT jsonb_array_elements_text(d->'evaluation_result'->'warnings') LOOP
    RAISE NOTICE '%', '  ' || w;
  END LOOP;
END $$;
CALL pg_temp.evaluate('ORL as it is');
-- The first image of s1, s2, s3 moved to s10, s20, s30.
DO $$
DECLARE img record;
BEGIN
  FOR img IN SELECT DISTINCT ON (c.label) i.id, i.data, c.label
               FROM training.images i JOIN training.classes c ON c.id = i.class_id
              WHERE c.label IN ('s1', 's2', 's3') ORDER BY c.label, i.time_created, i.id LOOP
    PERFORM training.add_image((SELECT id FROM training.classes WHERE label = img.label || '0'), img.data);
    PERFORM training.delete_image(img.id);
  END LOOP;
END $$;
-- A copy of s5's first image in s6; s39's images in s40, s39 deactivated.
SELECT training.add_image((SELECT id FROM training.classes WHERE label = 's6'),
         (SELECT i.data FROM training.images i JOIN training.classes c ON c.id = i.class_id
           WHERE c.label = 's5' ORDER BY i.time_created, i.id LIMIT 1)) \g /dev/null
INSERT INTO training.images (class_id, data)
SELECT (SELECT id FROM training.classes WHERE label = 's40'), i.data
  FROM training.images i JOIN training.classes c ON c.id = i.class_id WHERE c.label = 's39';
UPDATE training.classes SET active = false WHERE label = 's39';
CALL pg_temp.evaluate('3 images moved, 1 copied across classes, s39 added to s40');
SQL
psql -X -q -c "DROP DATABASE $db"
