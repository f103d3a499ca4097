#!/usr/bin/env bash
# Pickup latency: from the commit of the transaction that creates a training to the training
# being 'processing', p50 / p99 / max over N trainings, next to pg_cron (postgresql-15-cron)
# picking up rows of a queue table with the same claim (UPDATE ... FOR UPDATE SKIP LOCKED) in
# the same run, on the same server, with the same arrival pattern.
#
#   bash bench/pickup_latency.sh [PORT] [N]        (after make install; as root or postgres)
#
# Both commit times are the creating transactions' commit timestamps (track_commit_timestamp);
# our pickup time is time_started, set by the claim just before it commits; pg_cron's is the
# same column of its queue table. The trainings use a one-class dataset, which the pipeline
# fails at once, so workers are free again before the next arrival and the number is pickup
# alone. Two rounds of N trainings: with the default training.worker_idle_timeout (a worker
# that finished waits a moment for the next training) and with 0 (a process is started for
# every training). pg_cron 1.4 schedules at most once a minute: the run lasts about 3 minutes.
set -euo pipefail
port=${1:-5452}
n=${2:-200}
gap=${GAP:-0.3}
export PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

data=$(mktemp -d /tmp/training-bench.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$data"
as_pg "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
cat >> "$data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '/tmp'
shared_preload_libraries = 'training,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
track_commit_timestamp = on
max_worker_processes = 16
training.max_workers = 2
CONF
as_pg "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w start >/dev/null
trap 'as_pg "$bindir/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1; rm -rf "$data"' EXIT
psql() { as_pg "$bindir/psql" -X -q -h /tmp -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }

psql <<'SQL'
CREATE EXTENSION training;
CREATE EXTENSION pg_cron;
CREATE SCHEMA bench;
-- The creating transaction of every row: its xmin gives the commit timestamp.
CREATE TABLE bench.created (kind text NOT NULL, id uuid NOT NULL);
-- pg_cron's queue: the same shape of claim as training._worker_claim().
CREATE TABLE bench.jobs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), state text NOT NULL DEFAULT 'waiting',
                         created timestamptz NOT NULL DEFAULT clock_timestamp(), time_started timestamptz);
CREATE INDEX ON bench.jobs (created) WHERE state = 'waiting';
SELECT cron.schedule('bench-claim', '* * * * *', $$
  UPDATE bench.jobs SET state = 'processing', time_started = clock_timestamp()
  WHERE id IN (SELECT id FROM bench.jobs WHERE state = 'waiting' ORDER BY created FOR UPDATE SKIP LOCKED)
$$) IS NOT NULL AS scheduled \gset
CREATE PROCEDURE bench.drive(n int, gap float8, kind text) LANGUAGE plpgsql AS $$
DECLARE
  ds uuid := (training.create_dataset(name => 'bench', type => 'landmark')->>'id')::uuid;
  x uuid;
BEGIN
  -- Two tiny classes: a training needs two classes with images (it is refused at creation otherwise).
  FOR k IN 1..2 LOOP
    PERFORM training.add_image((training.create_class(dataset_id => ds, label => 'class ' || k) ->> 'id')::uuid,
                               convert_to(E'P5\n8 8\n255\n', 'UTF8') || decode(repeat('80', 64), 'hex'));
  END LOOP;
  COMMIT;
  FOR i IN 1..n LOOP
    x := (training.create_training(source_dataset_id => ds, output_model_name => 'bench')->>'id')::uuid;
    INSERT INTO bench.created VALUES (kind, x);
    COMMIT;
    INSERT INTO bench.jobs DEFAULT VALUES RETURNING id INTO x;
    INSERT INTO bench.created VALUES ('pg_cron (every minute)', x);
    COMMIT;
    PERFORM pg_sleep(gap);
  END LOOP;
END $$;
SQL

echo "round 1: $n trainings and $n pg_cron jobs, one of each every ${gap}s ..."
psql -c "CALL bench.drive($n, $gap, 'training: waiting worker (worker_idle_timeout 2s)')"
psql -c "ALTER SYSTEM SET training.worker_idle_timeout = 0" -c "SELECT pg_reload_conf()" >/dev/null
sleep 3
echo "round 2: the same with training.worker_idle_timeout = 0 ..."
psql -c "CALL bench.drive($n, $gap, 'training: new worker process each')"
echo "waiting for every row to be picked up ..."
for _ in $(seq 1 150); do
    left=$(psql -At -c "SELECT (SELECT count(*) FROM training.trainings WHERE time_started IS NULL)
                             + (SELECT count(*) FROM bench.jobs WHERE time_started IS NULL)")
    [ "$left" = 0 ] && break
    sleep 1
done

psql -P footer=off <<'SQL'
SELECT c.kind AS "pickup of", count(*) AS n,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS "p50 ms",
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS "p99 ms",
       round(max(ms)::numeric, 2) AS "max ms",
       count(*) FILTER (WHERE ms IS NULL) AS "not picked up"
FROM bench.created c
LEFT JOIN LATERAL (
  SELECT extract(epoch FROM coalesce(t.time_started, j.time_started)
                            - pg_xact_commit_timestamp(c.xmin))::float8 * 1000 AS ms
  FROM (SELECT 1) one
  LEFT JOIN training.trainings t ON t.id = c.id
  LEFT JOIN bench.jobs j ON j.id = c.id) m ON true
GROUP BY c.kind ORDER BY 3;
SQL
