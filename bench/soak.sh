#!/usr/bin/env bash
# Soak test of crash recovery: trainings are queued and the machinery that runs them is killed in
# the middle, over and over, then the books must balance.
#
#   bash bench/soak.sh [CYCLES]        (default 50; after make install; as root or as postgres)
#
# A throw-away cluster (port SOAK_PORT, default 5488; data under /tmp; fsync off;
# training.max_workers = 4; training.test_image_delay = SOAK_IMAGE_DELAY, default 80ms, so a
# training lasts about two seconds even when its images' features come from the embedding store,
# as all but the first training's do) with a database "soak" holding a face dataset of SOAK_CLASSES (3)
# classes of SOAK_IMAGES (8) generated PGM images. Each cycle queues SOAK_TRAININGS (3) trainings
# (fewer when SOAK_BACKLOG, 8, are already waiting; two model names, so completions of one model
# race), waits until a training is processing and then either a random 0-2.5 s or, every other
# round of three cycles, until a training is at its end (stage 'training' or 'saving model', where
# its model version is written), then, in turn:
#   1. kill -9 of a training worker (backend_type 'training worker'),
#   2. kill -9 of the launcher (backend_type 'training launcher'),
#   3. pg_ctl stop -m immediate, then start,
# and waits until the server is back (a new launcher). Both kills make the postmaster restart every
# process (crash recovery); trainings left processing are queued again or, at training.max_attempts
# (default 3), failed with "gave up after ...". After the last cycle it waits up to
# SOAK_DRAIN_TIMEOUT (120) s until nothing is waiting or processing, then counts:
#   stuck       trainings still waiting or processing
#   lost        trainings created (the ids returned by create_training) that are no longer there
#   duplicated  completed trainings with more than one model version, and (model_id, version_number)
#               pairs given twice
#   orphaned    completed trainings without a version (or whose output_model_version_id is not
#               theirs), and versions whose training is not a completed training
# and ends with the line
#   soak: N cycles, K kills: 0 stuck, 0 lost, 0 duplicated, 0 orphaned
# It fails (exit 1) when one of the four is not 0, or when the server log shows a crash it did not
# cause (a process ended by a signal other than its kill -9, PANIC, TRAP). Everything is bounded in
# time; the cluster is stopped and its directory removed on exit, whatever happens (KEEP=1 keeps
# it; on failure the server log is kept and its path printed). SOAK_SEED makes the jitter repeatable.
# PG_CONFIG selects the PostgreSQL installation (default: pg_config on PATH).
set -euo pipefail
cycles=${1:-${SOAK_CYCLES:-50}}
if ! [[ $cycles =~ ^[0-9]+$ ]] || [ "$cycles" -lt 1 ]; then
    echo "usage: bench/soak.sh [CYCLES]   (CYCLES >= 1)" >&2; exit 2
fi
port=${SOAK_PORT:-5488}
per_cycle=${SOAK_TRAININGS:-3}
backlog=${SOAK_BACKLOG:-8}
nclasses=${SOAK_CLASSES:-3}
nimages=${SOAK_IMAGES:-8}
image_delay=${SOAK_IMAGE_DELAY:-80ms}
drain_timeout=${SOAK_DRAIN_TIMEOUT:-120}
seed=${SOAK_SEED:-$$}
RANDOM=$seed
export PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
t_start=$SECONDS

if "$bindir/pg_isready" -q -h /tmp -p "$port" 2>/dev/null; then
    echo "soak: a server already listens on port $port (set SOAK_PORT)" >&2; exit 2
fi

work=$(mktemp -d /tmp/training-soak.XXXXXX)
pgdata=$work/pgdata
log=$work/server.log
ids=$work/created.ids
mkdir "$pgdata"
: > "$ids"
[ "$(id -u)" = 0 ] && chown -R postgres: "$work"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -f "$pgdata/postmaster.pid" ]; then
        if ! as_pg "$bindir/pg_ctl" -D "$pgdata" -m immediate -w -t 30 stop >/dev/null 2>&1; then
            # Our own postmaster only: its pid is the first line of postmaster.pid.
            local pm
            pm=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null || true)
            [[ $pm =~ ^[0-9]+$ ]] && kill -9 "$pm" 2>/dev/null || true
        fi
    fi
    if [ "$rc" != 0 ] && [ -s "$log" ] && [ "${KEEP:-0}" != 1 ]; then
        local kept
        kept=$(mktemp /tmp/training-soak-log.XXXXXX)
        cp "$log" "$kept" && echo "soak: server log kept in $kept" >&2
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "soak: kept $work" >&2; else rm -rf "$work"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pg_ctl() { as_pg "$bindir/pg_ctl" -D "$pgdata" "$@"; }
# One statement, unaligned output; never waits long for a server that is restarting.
q() {
    PGCONNECT_TIMEOUT=5 PGOPTIONS='-c statement_timeout=60s' \
        "$bindir/psql" -X -q -At -h /tmp -p "$port" -U postgres -d "${DB:-soak}" -v ON_ERROR_STOP=1 "$@"
}
die() { echo "soak: $*" >&2; [ -s "$log" ] && tail -n 30 "$log" >&2; exit 1; }
elapsed() { echo $((SECONDS - t_start)); }

as_pg "$bindir/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
cat >> "$pgdata/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '/tmp'
shared_preload_libraries = 'training'
max_worker_processes = 16
restart_after_crash = on
fsync = off
log_line_prefix = '%m [%p] %b '
training.max_workers = 4
training.test_image_delay = '$image_delay'
CONF
pg_ctl -l "$log" -w -t 60 start >/dev/null || die "the server did not start"

# The pid of the launcher, empty when there is none (or the server does not answer).
launcher_pid() {
    DB=postgres q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'training launcher'" 2>/dev/null || true
}
# Wait (bounded) until the server answers and a launcher other than $1 runs.
wait_back() {
    local old=${1:-} deadline=$((SECONDS + 60)) pid
    while [ $SECONDS -lt $deadline ]; do
        pid=$(launcher_pid)
        if [ -n "$pid" ] && [ "$pid" != "$old" ]; then return 0; fi
        sleep 0.1
    done
    return 1
}
wait_back "" || die "no training launcher in pg_stat_activity after 60 s"

DB=postgres q -c "CREATE DATABASE soak" >/dev/null
# The image generator of test/tap/TrainingTest.pm: a 96x96 grey PGM, texture from seed,
# brightness from base, different per class.
ds=$(q <<SQL
CREATE EXTENSION training;
CREATE FUNCTION test_pgm(seed int, base int) RETURNS bytea LANGUAGE sql AS \$\$
  SELECT convert_to('P5 96 96 255' || chr(10), 'SQL_ASCII')
      || decode(string_agg(lpad(to_hex(least(255, \$2 + ((i::bigint * i * 31 + i * \$1 * 7 + \$1 * 1013) % 101)::int)), 2, '0'), ''
                           ORDER BY i), 'hex')
  FROM generate_series(0, 96 * 96 - 1) AS i
\$\$;
DO \$\$
DECLARE ds uuid; cl uuid;
BEGIN
  ds := (training.create_dataset(name => 'soak', type => 'face')->>'id')::uuid;
  FOR c IN 1..$nclasses LOOP
    cl := (training.create_class(dataset_id => ds, label => 'person ' || c, reference => 'p' || c)->>'id')::uuid;
    FOR i IN 1..$nimages LOOP
      PERFORM training.add_image(class_id => cl, data => test_pgm(i + c * 1000, (c - 1) * 60));
    END LOOP;
  END LOOP;
  PERFORM set_config('soak.ds', ds::text, false);
END \$\$;
SELECT current_setting('soak.ds');
SQL
) || die "setting up the database failed"

# One training alone, undisturbed: how long one lasts here.
q -c "SELECT training.create_training(source_dataset_id => '$ds', output_model_name => 'soak-probe')->>'id'" >> "$ids"
deadline=$((SECONDS + 60))
until [ "$(q -c "SELECT count(*) FROM training.trainings WHERE state IN ('waiting', 'processing')")" = 0 ]; do
    [ $SECONDS -lt $deadline ] || die "the first training did not finish within 60 s"
    sleep 0.1
done
echo "soak: port $port, seed $seed, $nclasses classes x $nimages images, test_image_delay $image_delay;" \
    "one training alone: $(q -c "SELECT state || ' in ' || round(duration::numeric, 2) || ' s' FROM training.trainings")"

# A training processing in a live worker, as "pid id query"; empty if none within $1 s.
find_target() {
    local deadline=$((SECONDS + $1)) t=""
    while [ -z "$t" ] && [ $SECONDS -lt $deadline ]; do
        t=$(q -c "SELECT t.worker_pid || ' ' || t.id || ' ' || a.query
                    FROM training.trainings t
                    JOIN pg_stat_activity a ON a.pid = t.worker_pid AND a.backend_type = 'training worker'
                   WHERE t.state = 'processing' ORDER BY random() LIMIT 1" 2>/dev/null || true)
        [ -n "$t" ] || sleep 0.05
    done
    echo "$t"
}

# A training at its end (classifier training or saving its model), as "pid id query", polled in
# the server every 5 ms for up to 15 s; empty if none was seen.
find_late() {
    q -c "DO \$\$
          DECLARE t text;
          BEGIN
            FOR i IN 1..3000 LOOP
              PERFORM pg_stat_clear_snapshot();
              SELECT a.pid || ' ' || substr(a.query, 10, 36) || ' ' || a.query INTO t
                FROM pg_stat_activity a
               WHERE a.backend_type = 'training worker' AND a.query ~ ': (training|saving model) \\('
               LIMIT 1;
              EXIT WHEN t IS NOT NULL;
              PERFORM pg_sleep(0.005);
            END LOOP;
            PERFORM set_config('soak.late', coalesce(t, ''), false);
          END \$\$" -c "SELECT current_setting('soak.late')" 2>/dev/null || true
}

kills_worker=0; kills_launcher=0; kills_immediate=0; missed=0
declare -A hit=()   # stage of the training in view at each kill
for ((c = 1; c <= cycles; c++)); do
    launcher=$(launcher_pid)
    # Queue (retry while the server is still coming back); the ids are committed when printed.
    # At most SOAK_BACKLOG waiting, so the final drain stays short whatever the number of cycles.
    queued=0
    for try in 1 2 3; do
        if q -c "SELECT training.create_training(source_dataset_id => '$ds', output_model_name => 'soak-' || (i % 2))->>'id'
                 FROM generate_series(1, least($per_cycle, $backlog - (SELECT count(*) FROM training.trainings
                                                                       WHERE state = 'waiting'))) i" \
            >> "$ids" 2>/dev/null; then queued=1; break; fi
        sleep 1
    done
    [ $queued = 1 ] || die "cycle $c: could not queue trainings"
    # Wait for a training to be processing, then hit it at a random point (0-2.5 s later) of its
    # run, or, every other round of three cycles, at its end (stage 'training' or 'saving model').
    target=$(find_target 30)
    if [ -n "$target" ] && [ $(((c - 1) / 3 % 2)) = 1 ]; then
        late=$(find_late)
        [ -n "$late" ] && target=$late
    elif [ -n "$target" ]; then
        jitter=$((RANDOM % 2500))
        sleep "$((jitter / 1000)).$(printf %03d $((jitter % 1000)))"
        target=$(find_target 30)
    fi
    if [ -z "$target" ]; then
        echo "cycle $c/$cycles ($(elapsed) s): nothing processing after 30 s, no kill"
        missed=$((missed + 1))
        continue
    fi
    wpid=${target%% *}; what=${target#* }; what=${what#* }
    case $(((c - 1) % 3)) in
    0)
        if kill -9 "$wpid" 2>/dev/null; then
            kills_worker=$((kills_worker + 1))
            echo "cycle $c/$cycles ($(elapsed) s): kill -9 training worker $wpid ($what)"
        else
            echo "cycle $c/$cycles ($(elapsed) s): training worker $wpid ended before kill -9"; missed=$((missed + 1))
        fi
        ;;
    1)
        if [ -n "$launcher" ] && kill -9 "$launcher" 2>/dev/null; then
            kills_launcher=$((kills_launcher + 1))
            echo "cycle $c/$cycles ($(elapsed) s): kill -9 training launcher $launcher (worker $wpid: $what)"
        else
            echo "cycle $c/$cycles ($(elapsed) s): no launcher to kill"; missed=$((missed + 1))
        fi
        ;;
    2)
        pg_ctl -m immediate -w -t 60 stop >/dev/null || die "cycle $c: pg_ctl stop -m immediate failed"
        pg_ctl -l "$log" -w -t 60 start >/dev/null || die "cycle $c: the server did not start again"
        kills_immediate=$((kills_immediate + 1))
        echo "cycle $c/$cycles ($(elapsed) s): immediate shutdown and start (worker $wpid: $what)"
        ;;
    esac
    if [ $((kills_worker + kills_launcher + kills_immediate)) -gt "${kills_before:-0}" ]; then
        stage=$(sed -E 's/^training [^:]*: ([a-z ]*[a-z]).*$/\1/' <<<"$what")
        hit[$stage]=$((${hit[$stage]:-0} + 1))
    fi
    kills_before=$((kills_worker + kills_launcher + kills_immediate))
    wait_back "$launcher" || die "cycle $c: the server did not come back within 60 s"
done
kills=$((kills_worker + kills_launcher + kills_immediate))

# Let everything finish (bounded).
deadline=$((SECONDS + drain_timeout))
while :; do
    left=$(q -c "SELECT count(*) FROM training.trainings WHERE state IN ('waiting', 'processing')" 2>/dev/null || echo "?")
    [ "$left" = 0 ] && break
    [ $SECONDS -lt $deadline ] || break
    sleep 0.2
done
echo "soak: drained after $(elapsed) s ($left left waiting or processing)"

counts=$(q <<SQL
CREATE TEMP TABLE created (id uuid);
\copy created FROM '$ids'
SELECT concat_ws(' ',
  (SELECT count(*) FROM created),
  (SELECT count(*) FROM training.trainings WHERE state = 'completed'),
  (SELECT count(*) FROM training.trainings WHERE state = 'failed'),
  (SELECT count(*) FROM training.trainings WHERE state = 'failed' AND error NOT LIKE 'gave up after%'),
  (SELECT coalesce(max(attempts), 0) FROM training.trainings),
  -- stuck
  (SELECT count(*) FROM training.trainings WHERE state IN ('waiting', 'processing')),
  -- lost
  (SELECT count(*) FROM created c WHERE NOT EXISTS (SELECT FROM training.trainings t WHERE t.id = c.id)),
  -- duplicated: completed with more than one version; (model, number) given twice
  (SELECT count(*) FROM training.trainings t WHERE t.state = 'completed'
      AND (SELECT count(*) FROM training.model_versions v WHERE v.training_id = t.id) > 1),
  (SELECT count(*) FROM (SELECT FROM training.model_versions GROUP BY model_id, version_number
                          HAVING count(*) > 1) d),
  -- orphaned: completed without a version; output_model_version_id not its version; versions
  -- without a completed training
  (SELECT count(*) FROM training.trainings t WHERE t.state = 'completed'
      AND NOT EXISTS (SELECT FROM training.model_versions v WHERE v.training_id = t.id)),
  (SELECT count(*) FROM training.trainings t WHERE t.state = 'completed'
      AND NOT EXISTS (SELECT FROM training.model_versions v
                       WHERE v.id = t.output_model_version_id AND v.training_id = t.id
                         AND v.model_id = t.output_model_id AND v.version_number = t.output_model_version)),
  (SELECT count(*) FROM training.model_versions v
    WHERE NOT EXISTS (SELECT FROM training.trainings t WHERE t.id = v.training_id AND t.state = 'completed')));
SQL
) || die "counting failed"
read -r created completed failed failed_other max_attempts stuck lost dup_training dup_number \
    no_version wrong_version orphan_version <<<"$counts"
duplicated=$((dup_training + dup_number))
orphaned=$((no_version + wrong_version + orphan_version))

# Crashes the soak did not cause.
restarts=$(grep -c 'all server processes terminated; reinitializing' "$log" || true)
unexpected=$(grep -E 'terminated by signal|PANIC:|TRAP:' "$log" | grep -vc 'terminated by signal 9: Killed' || true)

echo "soak: $created trainings created: $completed completed, $failed failed" \
    "($failed_other for another reason than training.max_attempts), at most $max_attempts attempts"
echo "soak: kills: $kills_worker training worker, $kills_launcher launcher, $kills_immediate immediate shutdown" \
    "($missed cycles without a kill); crash restarts in the log: $restarts; unexpected crashes: $unexpected"
echo "soak: stage of the training in view at each kill:$(for k in "${!hit[@]}"; do printf ' %s %d,' "$k" "${hit[$k]}"; done | sed 's/,$//')"
echo "soak: details: completed with >1 version $dup_training, version numbers given twice $dup_number," \
    "completed without version $no_version, output_model_version_id not its own $wrong_version," \
    "versions without a completed training $orphan_version"
if [ "$failed_other" != 0 ]; then
    q -c "SELECT count(*) || ' x ' || left(error, 200) FROM training.trainings
           WHERE state = 'failed' AND error NOT LIKE 'gave up after%' GROUP BY error ORDER BY count(*) DESC LIMIT 5" || true
fi
if [ "$stuck" != 0 ]; then
    echo "soak: stuck trainings (id state attempts worker_pid worker_alive stage):"
    q -c "SELECT concat_ws(' ', t.id, t.state, t.attempts, t.worker_pid,
                            EXISTS (SELECT FROM pg_stat_activity a WHERE a.pid = t.worker_pid), t.stage)
            FROM training.trainings t WHERE t.state IN ('waiting', 'processing') ORDER BY t.time_created LIMIT 20" || true
fi
if [ "$unexpected" != 0 ]; then
    grep -E 'terminated by signal|PANIC:|TRAP:' "$log" | grep -v 'terminated by signal 9: Killed' | head -n 10
fi
echo "soak: $(elapsed) s in all"
echo "soak: $cycles cycles, $kills kills: $stuck stuck, $lost lost, $duplicated duplicated, $orphaned orphaned"
[ "$stuck" = 0 ] && [ "$lost" = 0 ] && [ "$duplicated" = 0 ] && [ "$orphaned" = 0 ] && [ "$unexpected" = 0 ]
