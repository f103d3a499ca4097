#!/usr/bin/env bash
# Peak memory of the training worker on a generated dataset of 20,000 images of 256x256
# (1,000 people x 20 drawn faces, grey PGM, tools/gen-demo), imported with tools/training-import.
# The worker's peak resident set (VmHWM of its process) is sampled while it trains; the
# classic face features (7,546 floats per image) are the largest the pipeline keeps.
#   bash bench/memory.sh [CLASSES [IMAGES_PER_CLASS]]     (PG_CONFIG, BENCH_PORT default 5497)
set -euo pipefail
cd "$(dirname "$0")/.."
classes=${1:-1000}
per=${2:-20}
port=${BENCH_PORT:-5497}
export PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
work=$(mktemp -d /tmp/training-memory.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$work"
make -s tools/training-import tools/gen-demo
make -s install >/dev/null
scripts/pg-start.sh "$work/data" "$port" >/dev/null
trap 'runuser -u postgres -- "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 ||
      "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1; rm -rf "$work"' EXIT
export PGHOST=/tmp PGPORT=$port PGUSER=postgres PGDATABASE=postgres
psql() { command "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -c "CREATE EXTENSION training" -c "ALTER SYSTEM SET training.face_features = 'classic'" -c "SELECT pg_reload_conf()" >/dev/null

t0=$(date +%s.%N)
tools/gen-demo "$work/faces" "$classes" "$per" 1 256 grey
echo "generated in $(echo "$(date +%s.%N) - $t0" | bc) s ($(du -sh "$work/faces" | cut -f1))"
ds=$(tools/training-import -n memory -t face "$work/faces" 2> >(tail -1 >&2))
rm -rf "$work/faces"
tr=$(psql -At -c "SELECT training.create_training(source_dataset_id => '$ds', output_model_name => 'memory',
                  config => '{\"sharpness_threshold\": 0}')->>'id'")
peak=0; pid=
while :; do
    IFS='|' read -r state wpid <<<"$(psql -At -c "SELECT state, worker_pid FROM training.trainings WHERE id = '$tr'")"
    [ -n "$wpid" ] && pid=$wpid
    if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
        hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        [ "${hwm:-0}" -gt "$peak" ] && peak=$hwm
    fi
    case $state in completed|failed) break ;; esac
    sleep 0.2
done
psql -At -F ' ' -c "SELECT 'training ' || state || ' in ' || round(duration::numeric, 1) || ' s' || coalesce(': ' || nullif(error, ''), '')
                    FROM training.trainings WHERE id = '$tr'"
psql -At -c "SELECT 'metrics ' || (metrics - 'images_skipped')::text FROM training.model_versions"
echo "peak worker memory (VmHWM of pid $pid): $((peak / 1024)) MiB for $((classes * per)) images of 256x256 (limit: 1024 MiB)"
