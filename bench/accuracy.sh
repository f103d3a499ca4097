#!/usr/bin/env bash
# Accuracy on the standard splits (../shared/data, see its README), our pipeline next to its
# peers in the same run:
#   - bench/accuracy: the pure-C pipeline, no server (top-1, training and recognition time);
#   - through SQL: tools/training-import loads the training split into a new dataset, a training
#     runs in the background worker (time = time_completed - time_created), then
#     tools/training-import --recognize sends the test split to recognize() in one session;
#     once with training.face_features = classic and once with the server's default (deep when
#     the face networks are installed);
#   - bench/peers.py: OpenCV LBPH and Eigenfaces, scikit-learn logistic regression on pixels.
# Run as root (or as the cluster's OS user) from the repository:
#   bash bench/accuracy.sh            (PG_CONFIG selects the installation; BENCH_PORT, default 5498)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data}
[ -d "$data/faces-orl" ] || data=/work/shared/data
port=${BENCH_PORT:-5498}
export PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
work=$(mktemp -d /tmp/training-bench.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$work"

make -s bench/accuracy tools/training-import
make -s install >/dev/null
scripts/pg-start.sh "$work/data" "$port" >/dev/null
trap '"$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 ||
      runuser -u postgres -- "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1; rm -rf "$work"' EXIT
export PGHOST=/tmp PGPORT=$port PGUSER=postgres PGDATABASE=postgres
psql() { command "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -c "CREATE EXTENSION training"

# through_sql NAME DIR TYPE SPLIT FEATURES
through_sql() {
    local name=$1 dir=$2 type=$3 split=$4 features=$5 ds tr state
    psql -c "ALTER SYSTEM SET training.face_features = '$features'" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
    ds=$(tools/training-import -n "$name-$features" -t "$type" --first "$split" "$dir" 2>/dev/null)
    tr=$(psql -At -c "SELECT training.create_training(source_dataset_id => '$ds', output_model_name => '$name-$features',
                      config => CASE WHEN '$type' = 'face' THEN '{\"min_face_size\": 1, \"sharpness_threshold\": 0}'::jsonb
                                     ELSE '{}'::jsonb END)->>'id'")
    for _ in $(seq 1 3000); do
        state=$(psql -At -c "SELECT state FROM training.trainings WHERE id = '$tr'")
        case $state in completed|failed) break ;; esac
        sleep 0.05
    done
    psql -At -F ' ' -c "SELECT 'sql       ' || rpad('$features features (' || coalesce(v.metrics->>'feature_kind', '-') || ')', 36)
                               || ' training ' || t.state || ' in ' || round(extract(epoch FROM t.time_completed - t.time_created)::numeric, 2)
                               || ' s (create -> completed), ' || coalesce(v.metrics->>'images_used', '0') || ' images used'
                               || coalesce(' ' || nullif(t.error, ''), '')
                          FROM training.trainings t LEFT JOIN training.model_versions v ON v.training_id = t.id
                         WHERE t.id = '$tr'"
    if [ "$state" = completed ]; then
        tools/training-import --recognize "$name-$features" --rest "$split" "$dir" 2>&1 >/dev/null | grep top-1 |
            sed 's/^/sql       recognize: /'
    fi
}

for spec in "orl:$data/faces-orl:face:1/2" "poznan:$data/landmarks-poznan:landmark:2/3"; do
    IFS=: read -r name dir type split <<<"$spec"
    echo "=== $name ($split split): $dir"
    bench/accuracy "$dir" "$type" "$split" | head -2 | sed 's/^/c-bench   /'
    if [ "$type" = face ]; then
        through_sql "$name" "$dir" "$type" "$split" classic
        through_sql "$name" "$dir" "$type" "$split" auto
    else
        through_sql "$name" "$dir" "$type" "$split" classic
    fi
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/peers.py "$dir" "$split"
done
