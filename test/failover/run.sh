#!/usr/bin/env bash
# The failover recipe of docs/remote-workers.md, tested with Debian's postgresql-15-auto-failover on one
# machine: a pg_auto_failover monitor and two nodes that preload training (training.max_workers = 0),
# a training-worker given both nodes in one conninfo (target_session_attrs=read-write), then
#   1. a training completes on the primary, and recognize() answers on the secondary;
#   2. a training is running when `pg_autoctl perform failover` swaps the nodes: the worker follows the
#      new primary, the training completes there (queued again once its lease expired, or finished by
#      its worker on its new connection), and a new training completes too.
# Prints "ok" or "FAILED" per check; exits non-zero when any failed. Run as root (the nodes then run as
# the postgres OS user) after `make install` into the system's PostgreSQL (scripts/test-all.sh).
# Environment: FAILOVER_PORT (first of 3 ports, default 5601), FAILOVER_KEEP=1 keeps the temp dir.
set -uo pipefail
# pg_autoctl connects with the libpq environment: the suite's PGHOST/PGPORT are for its own cluster.
unset PGHOST PGPORT PGUSER PGDATABASE PGDATA PGSERVICE PGOPTIONS PGHOSTADDR PGPASSWORD
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
base=${FAILOVER_PORT:-5601}
bindir=$(pg_config --bindir)
passed=0; failed=0
ok()   { passed=$((passed + 1)); echo "ok      $1"; }
fail() { failed=$((failed + 1)); echo "FAILED  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | tail -20 | sed 's/^/        /'; }
command -v pg_autoctl >/dev/null || { echo "pg_autoctl not found (apt-get install postgresql-15-auto-failover)"; exit 1; }
[ -x "$bindir/training-worker" ] || { echo "training-worker is not installed in $bindir (make install)"; exit 1; }

tmp=$(mktemp -d /tmp/training-failover.XXXXXX)
chmod 755 "$tmp"
if [ "$(id -u)" = 0 ]; then chown postgres: "$tmp"; as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi
env_=(env XDG_CONFIG_HOME="$tmp/cfg" XDG_DATA_HOME="$tmp/data" PATH="$bindir:$PATH")
autoctl() { as_pg "${env_[@]}" pg_autoctl "$@"; }
mon="postgres://autoctl_node@localhost:$base/pg_auto_failover?sslmode=disable"
p1=$((base + 1)); p2=$((base + 2))
conn="host=localhost,localhost port=$p1,$p2 dbname=app user=postgres target_session_attrs=read-write"
psql_() { as_pg "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
primary() { psql_ -d "$conn" "$@"; }
tw=
cleanup() {
    # The worker runs under runuser and setsid: by its command line.
    [ -n "$tw" ] && pkill -TERM -f "training-worker --poll 1 host=localhost,localhost port=$p1,$p2 " 2>/dev/null
    for d in n2 n1 mon; do
        [ -d "$tmp/$d" ] && autoctl stop --pgdata "$tmp/$d" --fast >/dev/null 2>&1
    done
    sleep 2
    pkill -f "pg_autoctl.*$tmp" 2>/dev/null
    for d in n2 n1 mon; do
        [ -f "$tmp/$d/postmaster.pid" ] && as_pg "$bindir/pg_ctl" -D "$tmp/$d" -m immediate stop >/dev/null 2>&1
    done
    if [ -n "${FAILOVER_KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
    echo
    echo "failover test: $passed passed, $failed failed"
    [ "$failed" = 0 ]
}
trap cleanup EXIT

# wait_for SECONDS COMMAND...: until the command prints t.
wait_for() { local n=$(( $1 * 5 )); shift; for _ in $(seq "$n"); do [ "$("$@" 2>/dev/null)" = t ] && return 0; sleep 0.2; done; return 1; }

# The monitor, and two nodes; the first is initialised with training preloaded, the second is a
# base backup of it (and so preloads it too).
if autoctl create monitor --pgdata "$tmp/mon" --pgport "$base" --hostname localhost --auth trust --no-ssl \
        --pgctl "$bindir/pg_ctl" >"$tmp/mon-create.log" 2>&1; then ok "pg_autoctl create monitor"
else fail "pg_autoctl create monitor" "$(cat "$tmp/mon-create.log"; tail -20 "$tmp"/mon/log/* "$tmp"/mon/startup.log 2>/dev/null)"; exit 1; fi
as_pg setsid "${env_[@]}" pg_autoctl run --pgdata "$tmp/mon" >"$tmp/mon.log" 2>&1 &
sleep 2
as_pg "$bindir/initdb" -D "$tmp/n1" -A trust >/dev/null 2>&1
cat >>"$tmp/n1/postgresql.conf" <<EOF
shared_preload_libraries = 'training'
training.max_workers = 0
training.lease_timeout = 5s
training.test_image_delay = 100
EOF
state() { autoctl show state --monitor "$mon" 2>/dev/null; }
single_ok() { state | grep -qE '\|\s*(single|primary)\s*\|\s*(single|primary)\s*$' && echo t; }
formation_ok() {
    local s; s=$(state)
    grep -qE '\|\s*primary\s*\|\s*primary\s*$' <<<"$s" && grep -qE '\|\s*secondary\s*\|\s*secondary\s*$' <<<"$s" && echo t
}
for n in 1 2; do
    as_pg setsid "${env_[@]}" pg_autoctl create postgres --pgdata "$tmp/n$n" --pgport $((base + n)) \
        --hostname localhost --auth trust --no-ssl --pgctl "$bindir/pg_ctl" --monitor "$mon" --run \
        >"$tmp/n$n.log" 2>&1 &
    [ $n = 1 ] && { wait_for 90 single_ok || { fail "the first node starts" "$(state; tail -5 "$tmp/n1.log")"; exit 1; }; }
done
if wait_for 120 formation_ok; then ok "a formation of a primary and a secondary"
else fail "a formation of a primary and a secondary" "$(state; tail -5 "$tmp/n2.log")"; exit 1; fi

# A database with the extension, a dataset, a worker role, and training-worker on both nodes.
psql_ -d "host=localhost,localhost port=$p1,$p2 dbname=postgres user=postgres target_session_attrs=read-write" -c "CREATE DATABASE app"
primary -c "CREATE EXTENSION training" -c "CREATE ROLE tw LOGIN IN ROLE training_worker"
primary -c "CREATE FUNCTION test_pgm(seed int, base int) RETURNS bytea LANGUAGE sql AS \$\$
    SELECT convert_to('P5 96 96 255' || chr(10), 'SQL_ASCII')
        || decode(string_agg(lpad(to_hex(least(255, \$2 + ((i::bigint * i * 31 + i * \$1 * 7 + \$1 * 1013) % 101)::int)), 2, '0'), '' ORDER BY i), 'hex')
    FROM generate_series(0, 96 * 96 - 1) AS i \$\$"
ds=$(primary -c "SELECT training.create_dataset(name => 'people', type => 'face') ->> 'id'")
for c in 1 2 3; do
    cl=$(primary -c "SELECT training.create_class(dataset_id => '$ds', label => 'person $c', reference => 'p$c') ->> 'id'")
    primary -c "SELECT count(training.add_image(class_id => '$cl', data => test_pgm(i + $c * 1000, ($c - 1) * 60))) FROM generate_series(1, 6) i" >/dev/null
done
as_pg setsid "$bindir/training-worker" --poll 1 "host=localhost,localhost port=$p1,$p2 dbname=app user=tw target_session_attrs=read-write" \
    >"$tmp/tw.log" 2>&1 &
tw=$!
create() { primary -c "SELECT training.create_training(source_dataset_id => '$ds', output_model_name => 'm') ->> 'id'"; }
t1=$(create)
if wait_for 60 primary -c "SELECT state = 'completed' FROM training.trainings WHERE id = '$t1'"; then
    ok "a training completes on the primary (training-worker, max_workers = 0)"
else fail "a training completes on the primary" "$(tail -5 "$tmp/tw.log")"; fi
if wait_for 30 psql_ -h localhost -p $p2 -d app -c "SELECT training.recognize('m', test_pgm(2 + 2 * 1000, 60), max_distance => 2) -> 'detections' -> 0 ->> 'label' = 'person 2'"; then
    ok "recognize() on the secondary"
else fail "recognize() on the secondary"; fi

# Failover while a training runs.
t2=$(create)
wait_for 30 primary -c "SELECT state = 'processing' FROM training.trainings WHERE id = '$t2'" || true
if autoctl perform failover --monitor "$mon" >"$tmp/failover.log" 2>&1; then ok "pg_autoctl perform failover"
else fail "pg_autoctl perform failover" "$(cat "$tmp/failover.log")"; fi
if wait_for 60 psql_ -h localhost -p $p2 -d app -c "SELECT NOT pg_is_in_recovery()"; then ok "the second node is the primary now"
else fail "the second node is the primary now" "$(state)"; fi
if wait_for 90 primary -c "SELECT state = 'completed' FROM training.trainings WHERE id = '$t2'"; then
    ok "the training running during the failover completes on the new primary ($(primary -c "SELECT 'attempt ' || attempts FROM training.trainings WHERE id = '$t2'"))"
else fail "the training running during the failover completes" "$(primary -c "SELECT state, attempts, stage FROM training.trainings WHERE id = '$t2'"; tail -8 "$tmp/tw.log")"; fi
t3=$(create)
if wait_for 60 primary -c "SELECT state = 'completed' FROM training.trainings WHERE id = '$t3'"; then
    ok "a new training completes after the failover"
else fail "a new training completes after the failover" "$(tail -8 "$tmp/tw.log")"; fi
if kill -0 "$tw" 2>/dev/null; then ok "the same training-worker process followed the failover"
else fail "the same training-worker process followed the failover" "$(tail -8 "$tmp/tw.log")"; fi
if [ "$(primary -c "SELECT count(*) FROM training.model_versions v JOIN training.models m ON m.id = v.model_id WHERE m.name = 'm'")" = 3 ]; then
    ok "one model version per training (3)"
else fail "one model version per training" "$(primary -c "SELECT version_number, training_id FROM training.model_versions")"; fi
