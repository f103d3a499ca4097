#!/usr/bin/env bash
# API throughput with pgbench: get_training, list_trainings and create_training, each next to
# the plain SQL statement a client would otherwise run, in the same run, at 1 and 8 clients.
#   get_training     vs  SELECT <columns> FROM training.trainings WHERE id = <the same id>
#   list_trainings   vs  SELECT <columns> FROM training.trainings ORDER BY time_created, id LIMIT 10
#   create_training  vs  INSERT of the same values into a plain table like trainings: the same
#                        columns, defaults, CHECK constraints, indexes, foreign keys and row-level
#                        security policies, without the extension's triggers (the table a user would
#                        otherwise write to); once with one model name for every call, once with a
#                        name per call, once retraining one existing model. The column "bare" is the
#                        same INSERT into a table without the foreign keys and policies.
# <columns> are the training's own columns: all but object and object_stale_at (the Training
# object the extension keeps with the row, which the functions return).
# Each is measured as the superuser that owns the tables (no row-level security) and as an
# ordinary role set up by grant_access() (policies apply), the role users actually have.
#
#   bash bench/api.sh            (after `make install`; PG_CONFIG picks the installation)
# Each figure is the median of BENCH_ROUNDS rounds (3); a round runs the function and its plain
# statement back to back (the order alternates), and the ratio is the median of the rounds' ratios,
# so that a change of the machine's speed between rounds moves both sides of a ratio alike.
#   BENCH_MODE=instructions bash bench/api.sh   (the same calls in CPU instructions; see below)
# Env: BENCH_SECONDS (5 per run), BENCH_ROUNDS (3), BENCH_PGPORT (5498). It starts a throw-away cluster with the
# library preloaded, as in production (a creation wakes the launcher at commit), and
# training.max_workers = 0, so no worker competes for the CPU or claims the trainings; results
# also go to bench/out/api.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
port=${BENCH_PGPORT:-5498}
secs=${BENCH_SECONDS:-5}
rounds=${BENCH_ROUNDS:-3}
work=$(mktemp -d /tmp/training-bench.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres: "$work"

as_pg "$bindir/initdb" -D "$work/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
cat >> "$work/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '/tmp'
fsync = off
synchronous_commit = off
shared_buffers = 128MB
max_connections = 40
shared_preload_libraries = 'training'
training.max_workers = 0
CONF
as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null
trap 'as_pg "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export PGHOST=/tmp PGPORT=$port PGUSER=postgres PGDATABASE=training_bench
psql -X -q -d postgres -c 'CREATE DATABASE training_bench'

# A face dataset shaped like ORL (40 classes x 10 images of 92x112 PGM), 1000 trainings of it,
# half owned by an ordinary role that sees only its own rows.
psql -X -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE EXTENSION training;
CREATE ROLE bench_user LOGIN;
SELECT training.grant_access('bench_user');
CREATE FUNCTION pgm(w int, h int, v int) RETURNS bytea LANGUAGE sql AS $$
    SELECT convert_to(format(E'P5\n%s %s\n255\n', w, h), 'UTF8')
        || decode(repeat(lpad(to_hex(v), 2, '0'), w * h), 'hex') $$;
CREATE FUNCTION make_dataset(name text) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE d uuid; c uuid;
BEGIN
    d := training.create_dataset(name, 'face') ->> 'id';
    FOR s IN 1..40 LOOP
        c := training.create_class(d, 's' || s) ->> 'id';
        INSERT INTO training.images (class_id, data) SELECT c, pgm(92, 112, (s * 5 + k) % 256) FROM generate_series(1, 10) k;
    END LOOP;
    RETURN d;
END $$;
GRANT EXECUTE ON FUNCTION make_dataset(text), pgm(int, int, int) TO bench_user;
CREATE TABLE bench (owner name PRIMARY KEY, dataset uuid, training uuid);
SELECT make_dataset('ORL-like');
INSERT INTO bench SELECT 'postgres', id, NULL FROM training.datasets;
SELECT training.create_training(b.dataset, 'bench model ' || n, config => '{"min_face_size": 40}')
  FROM bench b, generate_series(1, 500) n;
UPDATE bench SET training = (SELECT id FROM training.trainings ORDER BY time_created LIMIT 1);
SET ROLE bench_user;
SELECT make_dataset('ORL-like (bench_user)') AS d \gset
SELECT training.create_training(:'d', 'bench model ' || n) FROM generate_series(1, 500) n;
RESET ROLE;
INSERT INTO bench SELECT 'bench_user', d.id, (SELECT id FROM training.trainings t WHERE t.owner = 'bench_user' ORDER BY time_created LIMIT 1)
  FROM training.datasets d WHERE d.owner = 'bench_user';
-- The peer of create_training: the same row into a plain table with the same columns, defaults,
-- CHECK constraints, indexes, foreign keys and policies, without triggers; and into a bare one.
CREATE TABLE plain_trainings (LIKE training.trainings INCLUDING ALL);
CREATE TABLE bare_trainings (LIKE training.trainings INCLUDING ALL);
ALTER TABLE plain_trainings
    ADD FOREIGN KEY (source_dataset_id) REFERENCES training.datasets (id) ON DELETE SET NULL,
    ADD FOREIGN KEY (output_model_id) REFERENCES training.models (id) ON DELETE SET NULL,
    ENABLE ROW LEVEL SECURITY;
DO $$
DECLARE p record;
BEGIN
    FOR p IN SELECT polname, polpermissive, polroles,
                    pg_get_expr(polqual, polrelid) AS qual, pg_get_expr(polwithcheck, polrelid) AS checks
               FROM pg_policy WHERE polrelid = 'training.trainings'::regclass AND polcmd = '*'
    LOOP
        EXECUTE format('CREATE POLICY %I ON plain_trainings AS %s TO %s USING (%s) WITH CHECK (%s)',
                       p.polname, CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                       (SELECT coalesce(string_agg(quote_ident(rolname), ', '), 'PUBLIC')
                          FROM pg_roles WHERE oid = ANY (p.polroles)),
                       replace(p.qual, 'trainings.', 'plain_trainings.'),
                       replace(p.checks, 'trainings.', 'plain_trainings.'));
    END LOOP;
END $$;
GRANT SELECT ON bench TO bench_user;
GRANT INSERT ON plain_trainings, bare_trainings TO bench_user;
-- Retraining: a model of bench_user's that earlier trainings wrote (as the worker writes it).
INSERT INTO training.models (owner, name, type) VALUES ('bench_user', 'bench model', 'face');
VACUUM ANALYZE;
SQL
tid=$(psql -XAt -c "SELECT training FROM bench WHERE owner = 'postgres'")
did=$(psql -XAt -c "SELECT dataset FROM bench WHERE owner = 'postgres'")
utid=$(psql -XAt -c "SELECT training FROM bench WHERE owner = 'bench_user'")

udid=$(psql -XAt -c "SELECT dataset FROM bench WHERE owner = 'bench_user'")
cols=$(psql -XAt -c "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                     WHERE attrelid = 'training.trainings'::regclass AND attnum > 0 AND NOT attisdropped
                       AND attname NOT IN ('object', 'object_stale_at')")

s=$work/scripts; mkdir -p "$s"
echo "SELECT training.get_training('$tid');" > "$s/get.sql"
echo "SELECT $cols FROM training.trainings WHERE id = '$tid';" > "$s/get_plain.sql"
echo "SELECT training.get_training('$utid');" > "$s/get_rls.sql"
echo "SELECT $cols FROM training.trainings WHERE id = '$utid';" > "$s/get_rls_plain.sql"
echo "SELECT training.list_trainings();" > "$s/list.sql"
echo "SELECT $cols FROM training.trainings ORDER BY time_created, id LIMIT 10;" > "$s/list_plain.sql"
echo "SELECT training.create_training('$did', 'bench create', config => '{\"min_face_size\": 40}');" > "$s/create.sql"
echo "INSERT INTO plain_trainings (source_dataset_id, output_model_name, config, type) VALUES ('$did', 'bench create', '{\"min_face_size\": 40}', 'face');" > "$s/create_plain.sql"
echo "SELECT training.create_training('$udid', 'bench create', config => '{\"min_face_size\": 40}');" > "$s/create_rls.sql"
echo "INSERT INTO plain_trainings (source_dataset_id, output_model_name, config, type) VALUES ('$udid', 'bench create', '{\"min_face_size\": 40}', 'face');" > "$s/create_rls_plain.sql"
# One model name per call: creations of one new model name wait for each other (one type per name).
printf '%s\n' '\set r random(1, 1000000000)' \
    "SELECT training.create_training('$udid', 'bench create ' || :r, config => '{\"min_face_size\": 40}');" > "$s/create_names.sql"
printf '%s\n' '\set r random(1, 1000000000)' \
    "INSERT INTO plain_trainings (source_dataset_id, output_model_name, config, type) VALUES ('$udid', 'bench create ' || :r, '{\"min_face_size\": 40}', 'face');" > "$s/create_names_plain.sql"
# Retraining one existing model: creations of a name whose model exists do not wait for each other.
echo "SELECT training.create_training('$udid', 'bench model', config => '{\"min_face_size\": 40}');" > "$s/create_model.sql"
echo "INSERT INTO plain_trainings (source_dataset_id, output_model_name, config, type) VALUES ('$udid', 'bench model', '{\"min_face_size\": 40}', 'face');" > "$s/create_model_plain.sql"
for f in "$s"/create*_plain.sql; do sed 's/plain_trainings/bare_trainings/' "$f" > "${f%_plain.sql}_bare.sql"; done
chmod -R a+rX "$s"

# BENCH_MODE=instructions: the same calls counted in CPU instructions (valgrind's callgrind, one
# single-user session per count) instead of timed: a figure the machine's speed does not move.
# Per call = (instructions of 6N calls - those of N calls) / 5N, N = BENCH_CALLS (200), so the
# session's start and the first calls' caching cancel out. One client; the texts go to stdout,
# as pgbench receives them.
if [ "${BENCH_MODE:-}" = instructions ]; then
    command -v valgrind >/dev/null || { echo "BENCH_MODE=instructions needs valgrind (apt-get install valgrind)" >&2; exit 1; }
    as_pg "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null
    n1=${BENCH_CALLS:-200}; n2=$(( n1 * 6 ))
    instructions() {  # instructions ROLE CALLS SQL FIRST ($1: the call's number, from FIRST)
        { [ "$1" = postgres ] || echo "SET ROLE $1"; echo "PREPARE c(int) AS $3"
          for i in $(seq "$4" $(( $4 + $2 - 1 ))); do echo "EXECUTE c($i)"; done; } > "$work/calls.sql"
        rm -f "$work/callgrind.out"
        as_pg valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$bindir/postgres" --single \
            -D "$work/data" training_bench < "$work/calls.sql" > "$work/single.log" 2>&1 ||
            { tail -5 "$work/single.log" >&2; exit 1; }
        if grep -qE '(ERROR|FATAL|PANIC):' "$work/single.log"; then grep -m 3 -E '(ERROR|FATAL|PANIC):' "$work/single.log" >&2; exit 1; fi
        sed -n 's/^totals: //p' "$work/callgrind.out"
    }
    per_call() {
        local a b
        # The second session numbers its calls after the first's: a name per call is a new name.
        a=$(instructions "$1" "$n1" "$2" 1); b=$(instructions "$1" "$n2" "$2" $(( n1 + 1 )))
        [ -n "$a" ] && [ -n "$b" ] || exit 1
        echo $(( (b - a) / (n2 - n1) ))
    }
    mkdir -p bench/out
    {
        echo "training API cost in CPU instructions per call (callgrind, single-user session, PostgreSQL $("$bindir/postgres" -V | awk '{print $3}'))"
        printf '%-42s %12s %12s %7s\n' "call (vs plain SQL)" function plain ratio
        ins="INSERT INTO plain_trainings (source_dataset_id, output_model_name, config, type) VALUES"
        for b in "get_training as RLS role@bench_user@SELECT training.get_training('$utid')@SELECT $cols FROM training.trainings WHERE id = '$utid'" \
                 "list_trainings as RLS role@bench_user@SELECT training.list_trainings()@SELECT $cols FROM training.trainings ORDER BY time_created, id LIMIT 10" \
                 "create_training, one name@postgres@SELECT training.create_training('$did', 'bench create', config => '{\"min_face_size\": 40}')@$ins ('$did', 'bench create', '{\"min_face_size\": 40}', 'face')" \
                 "create_training, RLS, one name@bench_user@SELECT training.create_training('$udid', 'bench create', config => '{\"min_face_size\": 40}')@$ins ('$udid', 'bench create', '{\"min_face_size\": 40}', 'face')" \
                 "create_training, RLS, a name per call@bench_user@SELECT training.create_training('$udid', 'bench create ' || \$1, config => '{\"min_face_size\": 40}')@$ins ('$udid', 'bench create ' || \$1, '{\"min_face_size\": 40}', 'face')" \
                 "create_training, RLS, one existing model@bench_user@SELECT training.create_training('$udid', 'bench model', config => '{\"min_face_size\": 40}')@$ins ('$udid', 'bench model', '{\"min_face_size\": 40}', 'face')"; do
            IFS='@' read -r name user f p <<<"$b"
            a=$(per_call "$user" "$f"); c=$(per_call "$user" "$p")
            awk -v n="$name" -v a="$a" -v c="$c" 'BEGIN { printf "%-42s %12d %12d %7.2f\n", n, a, c, c / a }'
        done
    } | tee bench/out/api-instructions.txt
    exit 0
fi

tps() {  # tps SCRIPT CLIENTS [USER]
    local user=${3:-postgres} j=$(( $2 < 2 ? 1 : 2 ))
    pgbench -n -M prepared -U "$user" -T "$secs" -c "$2" -j "$j" -f "$s/$1.sql" 2>&1 |
        sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

mkdir -p bench/out
{
    echo "training API throughput (pgbench -M prepared, median of $rounds rounds of ${secs}s per run, $(nproc) cores; tps = transactions/s)"
    echo "PostgreSQL $(psql -XAt -c 'SHOW server_version'); 1000 trainings of a 40x10-image face dataset"
    # "rounds": the lowest and highest of the rounds' ratios, to show how far one run can stray.
    printf '%-34s %7s %12s %12s %7s %11s %12s\n' "benchmark (vs plain SQL)" clients "function" "plain" ratio rounds "bare"
    # create_training last: it adds rows, which would change what list_trainings counts.
    for b in "get_training:get:get_plain:postgres" "get_training as RLS role:get_rls:get_rls_plain:bench_user" \
             "list_trainings:list:list_plain:postgres" "list_trainings as RLS role:list:list_plain:bench_user" \
             "create_training:create:create_plain:postgres" \
             "create_training as RLS role:create_rls:create_rls_plain:bench_user" \
             "create_training, RLS, a name per call:create_names:create_names_plain:bench_user" \
             "create_training, RLS, one existing model:create_model:create_model_plain:bench_user"; do
        IFS=: read -r name f p user <<<"$b"
        for c in 1 8; do
            fs=""; ps=""; rs=""; bs=""
            for r in $(seq "$rounds"); do
                # Alternate the order so that neither side always runs on a warmer cache.
                if [ $(( r % 2 )) = 1 ]; then a=$(tps "$f" $c "$user"); b2=$(tps "$p" $c "$user")
                else b2=$(tps "$p" $c "$user"); a=$(tps "$f" $c "$user"); fi
                fs="$fs $a"; ps="$ps $b2"; rs="$rs $(awk -v a="$a" -v b="$b2" 'BEGIN { print a / b }')"
                [ -f "$s/${f}_bare.sql" ] && bs="$bs $(tps "${f}_bare" $c "$user")"
            done
            awk -v n="$name" -v c="$c" -v a="$(echo $fs | tr ' ' '\n' | median)" \
                -v b="$(echo $ps | tr ' ' '\n' | median)" -v r="$(echo $rs | tr ' ' '\n' | median)" \
                -v x="$([ -n "$bs" ] && echo $bs | tr ' ' '\n' | median)" \
                -v lo="$(echo $rs | tr ' ' '\n' | sort -g | head -1)" -v hi="$(echo $rs | tr ' ' '\n' | sort -g | tail -1)" \
                'BEGIN { printf "%-34s %7s %12.0f %12.0f %7.2f %5.2f-%.2f %12s\n", n, c, a, b, r, lo, hi, x == "" ? "" : sprintf("%.0f", x) }'
        done
    done
} | tee bench/out/api.txt
