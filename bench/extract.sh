#!/usr/bin/env bash
# Background measurement at upload: the 400 ORL faces (40 x 10) added in one transaction, then
# the time until every image has a kept measurement (the embedding store filled by the workers
# with nothing to train), with training.max_workers = 1 (one worker: the pass alone) and 2 (the
# pass and its helper from the newest image down), each twice, in one run on a running server with the
# extension preloaded. Sets training.max_workers with ALTER SYSTEM and resets it at the end.
# Needs a superuser (pg_read_binary_file) and ../shared/data readable by the server.
#   PGHOST=... PGPORT=... PGUSER=postgres bench/extract.sh
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
. "$top/bench/orl.sh"
db=training_bench_extract
trap 'psql -X -q -d postgres -c "ALTER SYSTEM RESET training.max_workers" -c "SELECT pg_reload_conf()" >/dev/null' EXIT
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -d $db -c "CREATE EXTENSION training"
# Each setting twice, in the order 1 2 2 1, so that a start-up cost or a drift of the machine's
# speed falls on both alike.
for workers in 1 2 2 1; do
    psql -X -q -d postgres -c "ALTER SYSTEM SET training.max_workers = $workers" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 1
    psql -X -q -d $db -c "DELETE FROM training.datasets"
    orl_upload $db 10
    psql -X -q -At -d $db -v ON_ERROR_STOP=1 -v workers="$workers" <<'SQL' 2>&1 | sed 's/^NOTICE:  //'
SELECT set_config('b.workers', :'workers', false) \g /dev/null
DO $$
DECLARE t0 timestamptz := clock_timestamp(); n int; most int := 0; busy int; secs numeric;
BEGIN
  LOOP
    SELECT count(*) INTO n FROM training.images i
     WHERE EXISTS (SELECT FROM training.image_features f WHERE f.image_id = i.id AND f.content_version = i.content_version);
    PERFORM pg_stat_clear_snapshot();
    SELECT count(*) INTO busy FROM pg_stat_activity
     WHERE datname = current_database() AND query LIKE 'training worker: measuring images%';
    most := greatest(most, busy);
    EXIT WHEN n = 400 OR clock_timestamp() - t0 > interval '10 minutes';
    PERFORM pg_sleep(0.05);
  END LOOP;
  secs := round(extract(epoch FROM clock_timestamp() - t0)::numeric, 2);
  RAISE NOTICE '%', format('training.max_workers = %s: %s of 400 images measured in %s s (%s images/s), at most %s workers measuring at once',
                           current_setting('b.workers'), n, secs, round(n / secs, 1), most);
END $$;
SQL
done
