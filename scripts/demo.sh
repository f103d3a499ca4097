#!/usr/bin/env bash
# The demo, from a fresh Debian 12 machine (as root):
#   dependencies, build, install into PostgreSQL 15, a local cluster with the extension
#   preloaded, a generated face dataset imported with tools/training-import, a training
#   followed to completion, then the model and a recognize() result.
# Environment: PG_CONFIG (default: pg_config on PATH, the system PostgreSQL 15),
#   DEMO_PORT (default 5432), DEMO_DIR (default /tmp/training-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${DEMO_PORT:-5432}
dir=${DEMO_DIR:-/tmp/training-demo}
export PG_CONFIG=${PG_CONFIG:-pg_config}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "$(id -u)" = 0 ]; then
    say "dependencies (scripts/deps.sh)"
    scripts/deps.sh
fi
say "build and install into $("$PG_CONFIG" --bindir)/.."
make -s
make -s models      # pretrained face networks from npm (@vladmandic/face-api, pinned, checksummed)
make -s install
make -s tools/training-import tools/gen-demo

say "PostgreSQL on port $port with shared_preload_libraries = 'training' ($dir/data)"
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown postgres: "$dir"
scripts/pg-start.sh "$dir/data" "$port"
export PGHOST=/tmp PGPORT=$port PGUSER=postgres
psql() { command "$("$PG_CONFIG" --bindir)/psql" -X -v ON_ERROR_STOP=1 "$@"; }
psql -q -d postgres -c "DROP DATABASE IF EXISTS training_demo" -c "CREATE DATABASE training_demo"
export PGDATABASE=training_demo
psql -q -c "CREATE EXTENSION training"

say "a generated dataset: 6 people x 8 drawn faces (tools/gen-demo), imported with tools/training-import"
rm -rf "$dir/faces" "$dir/new-faces"
tools/gen-demo "$dir/faces" 6 8 1
tools/gen-demo "$dir/new-faces" 6 1 2          # new photos of the same people, for recognize()
ds=$(tools/training-import -n "demo faces" -t face "$dir/faces")
config='{"min_face_size": 40}'
say "the dataset evaluated with the training's config $config (training.evaluate_dataset)"
psql -P pager=off -c "SELECT jsonb_pretty(d->'issues') AS issues, jsonb_pretty(d->'evaluation_result') AS evaluation
                      FROM training.evaluate_dataset('$ds', '$config') d"

say "a training (the background worker runs it)"
tr=$(psql -At -c "SELECT training.create_training(source_dataset_id => '$ds', output_model_name => 'demo-faces',
          output_model_description => 'drawn faces of the demo', config => '$config')->>'id'")
echo "training $tr"
for i in $(seq 1 600); do
    line=$(psql -At -F ' ' -c "SELECT state, round(progress::numeric * 100), round(duration::numeric, 1), error
                               FROM training.trainings WHERE id = '$tr'")
    read -r state pct dur err <<<"$line" || true
    bar=$(printf '%*s' $((pct / 5)) '' | tr ' ' '#')
    printf '\r[%-20s] %3s%%  %-10s %5ss ' "$bar" "$pct" "$state" "$dur"
    case $state in completed|failed) break ;; esac
    sleep 0.2
done
echo
if [ "$state" != completed ]; then
    psql -c "SELECT training.get_training('$tr')"
    echo "the training did not complete: $err" >&2
    exit 1
fi

say "the model (training.get_model)"
psql -P pager=off -c "SELECT jsonb_pretty(training.get_model('demo-faces')) AS model"
say "recognize() on a new photo of person-3"
img=$(base64 -w0 "$dir/new-faces/person-3/1.ppm")
psql -P pager=off -c "SELECT jsonb_pretty(training.recognize('demo-faces', decode('$img', 'base64'))) AS result"

say "done"
cat <<EOF
The cluster keeps running: psql -h /tmp -p $port -U postgres training_demo
Stop it with: runuser -u postgres -- $("$PG_CONFIG" --bindir)/pg_ctl -D $dir/data stop
EOF
