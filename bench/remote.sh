#!/usr/bin/env bash
# training-worker against the in-server workers, in one run on a running server with the extension
# preloaded (superuser; ../shared/data readable by the server), ORL 40 x 5, default config:
#   cold       one training with an empty embedding store: in-server (max_workers = 1) against one
#              training-worker (max_workers = 0): create -> completed, ROUNDS (3) alternating rounds
#   throughput 12 trainings of the same dataset, store warm: in-server (max_workers = 2) against one
#              training-worker and two (max_workers = 0): trainings per hour, first create -> last done
#   takeover   a training-worker killed (kill -9) mid-training, another polling every second:
#              seconds from the kill to the training processing again, against training.lease_timeout
# Leaves the server's settings as it found them (ALTER SYSTEM RESET).
#   PGHOST=... PGPORT=... PGUSER=postgres bench/remote.sh
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
. "$top/bench/orl.sh"
db=training_bench_remote
bindir=$(pg_config --bindir 2>/dev/null || true)
tw=${TRAINING_WORKER:-}
[ -n "$tw" ] || for c in "$top/tools/training-worker" "$bindir/training-worker"; do [ -x "$c" ] && { tw=$c; break; }; done
[ -x "$tw" ] || { echo "training-worker not found (make, or set TRAINING_WORKER)" >&2; exit 1; }
lease=${LEASE:-5}
n=${TRAININGS:-40}
conn="dbname=$db host=${PGHOST:-/tmp} port=${PGPORT:-5432} user=${PGUSER:-postgres}"

q() { psql -X -q -At -d $db -v ON_ERROR_STOP=1 "$@"; }
set_workers() {  # set_workers N: training.max_workers, reloaded
    psql -X -q -c "ALTER SYSTEM SET training.max_workers = $1" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
}
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
    wait 2>/dev/null
    psql -X -q -c "ALTER SYSTEM RESET training.max_workers" -c "ALTER SYSTEM RESET training.lease_timeout" \
        -c "ALTER SYSTEM RESET training.background_features" -c "SELECT pg_reload_conf()" >/dev/null || true
}
trap cleanup EXIT

psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
q -c "CREATE EXTENSION training"
# Only the trainings measure: the store is what the scenario says it is.
psql -X -q -c "ALTER SYSTEM SET training.background_features = off" \
    -c "ALTER SYSTEM SET training.lease_timeout = '${lease}s'" -c "SELECT pg_reload_conf()" >/dev/null
set_workers 0
orl_upload $db 5
ds=$(q -c "SELECT id FROM training.datasets WHERE name = 'orl'")

# run_batch K TAG: create K trainings of model TAG at once, wait for all; prints the seconds from the
# first create to the last completion.
run_batch() {
    q -c "SELECT count(training.create_training(source_dataset_id => '$ds', output_model_name => '$2')) FROM generate_series(1, $1)" >/dev/null
    until [ "$(q -c "SELECT count(*) FROM training.trainings WHERE state IN ('waiting', 'processing')")" = 0 ]; do sleep 0.05; done
    failed=$(q -c "SELECT count(*) FROM training.trainings WHERE state = 'failed'")
    [ "$failed" = 0 ] || { echo "$failed trainings failed" >&2; q -c "SELECT error FROM training.trainings WHERE state = 'failed' LIMIT 3" >&2; exit 1; }
    q -c "SELECT round(extract(epoch FROM max(time_completed) - min(time_created))::numeric, 2)
            FROM training.trainings WHERE output_model_name = '$2'"
}
start_tw() { "$tw" --poll 1 "$@" "$conn" 2>>"${TMPDIR:-/tmp}/bench-remote-tw.log" & pids+=($!); }
stop_tws() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null || true; pids=(); }

echo "ORL 40 x 5, default config; training.lease_timeout = ${lease} s; host: $(nproc) cores"
echo
echo "| scenario | in-server workers | 1 training-worker | 2 training-workers |"
echo "|---|---|---|---|"

# cold: one training, empty store; the two sides alternate, $rounds rounds (the host's speed moves
# between minutes): median [lowest–highest].
rounds=${ROUNDS:-3}
ins=(); tws=()
for r in $(seq 1 "$rounds"); do
    q -c "DELETE FROM training.image_features"
    set_workers 1
    ins+=("$(run_batch 1 "cold_in_$r")")
    set_workers 0
    q -c "DELETE FROM training.image_features"
    start_tw
    tws+=("$(run_batch 1 "cold_tw_$r")")
    stop_tws
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%s [%s–%s]", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
echo "| cold: one training, empty store, create → completed (s; median of $rounds [range]) | $(median "${ins[@]}") | $(median "${tws[@]}") | |"

# throughput: n trainings, warm store (the cold runs filled it).
set_workers 2
tput_in=$(run_batch "$n" tput_in)
set_workers 0
start_tw
tput_1=$(run_batch "$n" tput_1)
stop_tws
start_tw; start_tw
tput_2=$(run_batch "$n" tput_2)
stop_tws
per_hour() { awk -v n="$n" -v s="$1" 'BEGIN { printf "%.0f /h (%d in %s s)", n * 3600 / s, n, s }'; }
echo "| throughput: $n trainings, warm store | $(per_hour "$tput_in") (max_workers = 2) | $(per_hour "$tput_1") | $(per_hour "$tput_2") |"

# takeover: kill -9 a training-worker mid-training (cold store keeps it running); another takes over.
q -c "DELETE FROM training.image_features"
"$tw" --poll 1 "$conn" 2>>"${TMPDIR:-/tmp}/bench-remote-tw.log" & victim=$!
t=$(q -c "SELECT training.create_training(source_dataset_id => '$ds', output_model_name => 'orl') ->> 'id'")
until [ "$(q -c "SELECT progress > 0.05 FROM training.trainings WHERE id = '$t'")" = t ]; do sleep 0.02; done
kill -KILL $victim; wait $victim 2>/dev/null || true
killed=$(q -c "SELECT extract(epoch FROM clock_timestamp())")
start_tw
until [ "$(q -c "SELECT state = 'processing' AND attempts = 2 FROM training.trainings WHERE id = '$t'")" = t ]; do sleep 0.02; done
back=$(q -c "SELECT extract(epoch FROM clock_timestamp())")
until [ "$(q -c "SELECT state FROM training.trainings WHERE id = '$t'")" = completed ]; do sleep 0.05; done
stop_tws
awk -v a="$killed" -v b="$back" -v l="$lease" 'BEGIN { printf "| takeover: kill -9 → processing again on another worker (s) | | %.2f (lease %d s, poll 1 s) | |\n", b - a, l }'
