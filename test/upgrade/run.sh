#!/usr/bin/env bash
# The extension's lifecycle across releases, in a private relocated copy of the PostgreSQL
# installation (nothing is installed into the system's PostgreSQL):
#   1. build the 0.1.0 release from git history and install it into the private copy;
#   2. a cluster with it preloaded; in database upg, roles alice and bob with datasets
#      (face and landmark), trainings (model "faces" at versions 1 and 2) and recognize() results;
#   3. stop, build and install the current tree into the same copy, start again,
#      ALTER EXTENSION training UPDATE;
#   4. the old rows still work (trainings render, models resolve, recognize() gives the same
#      label, row-level security holds, a new training completes, list_trainings() works);
#   5. the catalog of the upgraded database equals a fresh install's (test/upgrade/catalog.sql);
#   6. pg_dump -Fc / pg_restore into a new database: rows, row-level security, recognize()
#      and a new training there.
# Prints "ok" or "FAILED" per check; exits non-zero when any check failed. Run as root (the
# cluster then runs as the postgres OS user) or as an ordinary user.
# Environment: PG_CONFIG (the installation to copy; default pg_config on PATH),
#   UPGRADE_PGPORT (default 5491), UPGRADE_FROM (release commit, default db03924),
#   UPGRADE_WAIT (seconds to wait for trainings, default 60), UPGRADE_KEEP=1 keeps the temp dir,
#   UPGRADE_TREE (the tree to upgrade to; default the one this script is in).
set -uo pipefail
unset MAKEFLAGS MAKELEVEL MFLAGS PGDATABASE PGSERVICE PGSERVICEFILE PGOPTIONS PGHOSTADDR PGPASSWORD

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
tree=$(cd "${UPGRADE_TREE:-$repo}" && pwd) || exit 1
release=${UPGRADE_FROM:-db03924}
port=${UPGRADE_PGPORT:-5491}
wait_secs=${UPGRADE_WAIT:-60}
sys_pg_config=${PG_CONFIG:-pg_config}
jobs=$(nproc 2>/dev/null || echo 2)
t0=$SECONDS

passed=0; failed=0; failures=()
ok()   { passed=$((passed + 1)); echo "ok      $1"; }
fail() {  # fail NAME [DETAILS [MAX_LINES]]
    local n max=${3:-150}
    failed=$((failed + 1)); failures+=("$1"); echo "FAILED  $1"
    if [ -n "${2:-}" ]; then
        printf '%s\n' "$2" | head -"$max" | sed 's/^/        /'
        n=$(printf '%s\n' "$2" | wc -l)
        [ "$n" -le "$max" ] || echo "        ... ($((n - max)) more lines; UPGRADE_KEEP=1 keeps $out)"
    fi
}
fatal() { fail "$@"; echo "stopping: the remaining checks need this step"; exit 1; }
# check NAME COMMAND...: ok when the command succeeds; its output is shown when it fails.
check() {
    local name=$1 out; shift
    if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$out"; fi
}
# expect NAME WANT GOT
expect() {
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected: $2"$'\n'"got:      $3"; fi
}
section() { echo "--- $* ($((SECONDS - t0))s)"; }

if [ "$(id -u)" = 0 ]; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi
git_() { git -c safe.directory='*' -C "$repo" "$@"; }

tmp=$(mktemp -d /tmp/training-upgrade.XXXXXX) || exit 1
data=$tmp/data
sock=$tmp/sock
out=$tmp/out
mkdir -p "$sock" "$out" "$tmp/img"
chmod 755 "$tmp"
[ "$(id -u)" = 0 ] && chown postgres: "$tmp" "$sock" "$out"
bindir=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$bindir" ] && [ -f "$data/postmaster.pid" ]; then
        as_pg "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1
    fi
    if [ "$failed" -gt 0 ] && [ -f "$tmp/server.log" ]; then
        echo "--- server log: errors and warnings (last 40)"
        grep -E 'ERROR|FATAL|PANIC|WARNING|terminated by signal' "$tmp/server.log" |
            grep -v 'due to administrator command' | tail -40
    fi
    if [ -n "${UPGRADE_KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
    echo
    if [ "$failed" -gt 0 ]; then
        echo "upgrade test FAILED: $failed of $((passed + failed)) checks failed ($((SECONDS - t0))s):"
        printf '  - %s\n' "${failures[@]}"
        exit 1
    fi
    if [ "$rc" != 0 ]; then echo "upgrade test stopped (exit status $rc) after $passed checks passed"; exit "$rc"; fi
    echo "upgrade test: all $passed checks passed ($((SECONDS - t0))s)"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

#######################################################################################
section "a private copy of the PostgreSQL installation"
sys_bindir=$("$sys_pg_config" --bindir) || fatal "pg_config ($sys_pg_config) works"
sys_libroot=$(dirname "$sys_bindir")                      # /usr/lib/postgresql/15
sys_share=$("$sys_pg_config" --sharedir)                  # /usr/share/postgresql/15
sys_include=$("$sys_pg_config" --includedir)              # /usr/include/postgresql
pgroot=$tmp/pg
mkdir -p "$pgroot$(dirname "$sys_libroot")" "$pgroot$(dirname "$sys_share")" "$pgroot$(dirname "$sys_include")"
cp -a "$sys_libroot" "$pgroot$(dirname "$sys_libroot")/" &&
    cp -a "$sys_share" "$pgroot$(dirname "$sys_share")/" &&
    cp -a "$sys_include" "$pgroot$(dirname "$sys_include")/" || fatal "copy the PostgreSQL installation"
pgc=$pgroot$sys_libroot/bin/pg_config
bindir=$("$pgc" --bindir)
pkglib=$("$pgc" --pkglibdir)
extdir=$("$pgc" --sharedir)/extension
case "$bindir:$pkglib:$extdir" in
    "$pgroot"/*:"$pgroot"/*:"$pgroot"/*) ok "private PostgreSQL copy in $pgroot (relocated pg_config)" ;;
    *) fatal "the copied pg_config reports paths in the copy" "bindir=$bindir pkglibdir=$pkglib extension dir=$extdir" ;;
esac
# Whatever release of the extension the system has installed must not leak into the test.
rm -rf "$pkglib/training.so" "$pkglib/bitcode/training" "$pkglib/bitcode/training.index.bc" \
    "$extdir"/training.control "$extdir"/training--*.sql "$extdir/training_models"

export PGHOST=$sock PGPORT=$port PGUSER=postgres
psql_() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
q() { local db=$1; shift; psql_ -At -d "$db" "$@"; }          # q DB [-U ROLE] -c SQL
qa() { local db=$1; shift; psql_ -At -d "$db" -U alice "$@"; }

# build_install NAME SRCDIR: build with the private pg_config and install into the copy.
build_install() {
    local name=$1 src=$2 log=$tmp/build-$1.log
    if make -C "$src" -s -j"$jobs" PG_CONFIG="$pgc" >"$log" 2>&1 &&
        make -C "$src" -s PG_CONFIG="$pgc" install >>"$log" 2>&1; then
        ok "build and install $name into the private copy"
    else
        fatal "build and install $name into the private copy" "$(tail -40 "$log")"
    fi
}

start_cluster() {
    if as_pg "$bindir/pg_ctl" -D "$data" -l "$tmp/server.log" -w -t 60 start >/dev/null 2>&1; then
        ok "$1"
    else
        fatal "$1" "$(tail -30 "$tmp/server.log" 2>/dev/null)"
    fi
}

# wait_trainings DB ID...: until every one is completed; fails on a failed one or the timeout.
wait_trainings() {
    local db=$1; shift
    local ids deadline=$((SECONDS + wait_secs)) r ncompleted nfailed nfound
    ids="{$(IFS=,; echo "$*")}"
    while :; do
        r=$(q "$db" -F ' ' -c "SELECT count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE state = 'failed'),
                                      count(*) FROM training.trainings WHERE id = ANY ('$ids'::uuid[])") || return 1
        read -r ncompleted nfailed nfound <<<"$r"
        if [ "$nfound" != $# ]; then echo "only $nfound of the $# trainings exist"; return 1; fi
        if [ "$nfailed" != 0 ] || [ $SECONDS -ge $deadline ]; then
            [ "$nfailed" != 0 ] || echo "not completed after ${wait_secs}s:"
            q "$db" -F ' | ' -c "SELECT id, output_model_name, state, round(progress::numeric, 2), error
                                   FROM training.trainings WHERE id = ANY ('$ids'::uuid[]) ORDER BY time_created"
            return 1
        fi
        [ "$ncompleted" = $# ] && return 0
        sleep 0.3
    done
}

# create_training DB DATASET MODEL CONFIG CHANGELOG: as alice; prints the training id.
create_training() {
    qa "$1" -c "SELECT training.create_training(source_dataset_id => '$2', output_model_name => '$3',
                    output_model_description => 'test/upgrade', output_model_changelog => '$5',
                    config => '$4') ->> 'id'"
}

# recognize DB MODEL FILE: as alice; prints "name==N label" (the closest class, max_distance 2).
recognize() {
    psql_ -At -F ' ' -d "$1" -U alice -v model="$2" <<SQL
\set img \`base64 -w0 '$3'\`
SELECT r ->> 'model', coalesce(r -> 'detections' -> 0 ->> 'label', '<no label>')
  FROM training.recognize(:'model', decode(:'img', 'base64'), max_distance => 2) AS r;
SQL
}

# dataset_script NAME TYPE DIR: a psql script that makes a dataset of DIR/person-K/N.p?m
# (class "person K", reference pK) and prints its id.
dataset_script() {
    local name=$1 type=$2 dir=$3 cdir f k
    echo '\o /dev/null'
    echo "SELECT training.create_dataset(name => '$name', type => '$type', description => 'test/upgrade') ->> 'id' AS ds \\gset"
    for cdir in "$dir"/person-*; do
        k=${cdir##*/person-}
        echo "SELECT training.create_class(dataset_id => :'ds', label => 'person $k', reference => 'p$k') ->> 'id' AS cl \\gset"
        for f in "$cdir"/*; do
            echo "\\set img \`base64 -w0 '$f'\`"
            echo "SELECT training.add_image(class_id => :'cl', data => decode(:'img', 'base64'));"
        done
    done
    echo '\o'
    echo "SELECT :'ds';"
}

tables="datasets classes images trainings models model_versions"
# row_counts DB: the row count of every table (as the superuser).
row_counts() {
    local t sql=""
    for t in $tables; do sql+="${sql:+ || ' ' || }'$t=' || (SELECT count(*) FROM training.$t)"; done
    q "$1" -c "SELECT $sql"
}
# rls_check DB ROLE: the role sees exactly its own rows of every table (and other owners' rows exist).
rls_check() {
    local db=$1 role=$2 t want="" got="" others
    for t in $tables; do
        want+="$t=$(q "$db" -c "SELECT count(*) FROM training.$t WHERE owner = '$role'")/0 "
        got+="$t=$(q "$db" -U "$role" -c "SELECT count(*) || '/' || count(*) FILTER (WHERE owner <> current_user) FROM training.$t") "
        others=$(q "$db" -c "SELECT count(*) FROM training.$t WHERE owner <> '$role'")
        if [ "$others" = 0 ]; then echo "no rows of other owners in training.$t: the check would prove nothing"; return 1; fi
    done
    [ "$want" = "$got" ] && q "$db" -U "$role" -c "SELECT 1 FROM training.status LIMIT 0" >/dev/null && return 0
    echo "expected (own/others): $want"
    echo "visible to $role:      $got"
    return 1
}
server_log_clean() {
    if grep -E 'PANIC|terminated by signal|was terminated by exception' "$tmp/server.log"; then return 1; fi
}

#######################################################################################
from_dir=$tmp/build-from
mkdir -p "$from_dir"
from_ok=true
git_ archive "$release" 2>"$tmp/git.err" | tar -x -C "$from_dir" 2>>"$tmp/git.err" || from_ok=false
[ -f "$from_dir/training.control" ] || from_ok=false
$from_ok || fatal "the release $release from git history (git archive)" "$(cat "$tmp/git.err")"
from_version=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$from_dir/training.control")
section "release $from_version (commit $release)"
build_install "$from_version ($release)" "$from_dir"
check "the copy has exactly the $from_version install script" \
    test "$(cd "$extdir" && ls training--*.sql)" = "training--$from_version.sql"

# Images: drawn faces (tools/gen-demo) for the face dataset, grey ones for the landmarks.
cc -O2 -o "$tmp/gen-demo" "$repo/tools/gen-demo.c" -lm || fatal "build tools/gen-demo"
gen() { "$tmp/gen-demo" "$@" 2>/dev/null; }
gen "$tmp/img/faces" 3 4 1 && gen "$tmp/img/faces-query" 3 1 2 &&
    gen "$tmp/img/places" 3 4 5 96 grey && gen "$tmp/img/places-query" 3 1 6 96 grey &&
    gen "$tmp/img/bob" 2 2 11 64 grey || fatal "generate the images"
face_query=$tmp/img/faces-query/person-2/1.ppm
place_query=$tmp/img/places-query/person-3/1.pgm

section "a cluster on port $port with $from_version preloaded"
as_pg "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$tmp/initdb.log" 2>&1 ||
    fatal "initdb" "$(cat "$tmp/initdb.log")"
cat >>"$data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$sock'
shared_preload_libraries = 'training'
max_worker_processes = 16
fsync = off
synchronous_commit = off
full_page_writes = off
training.face_features = 'classic'
log_line_prefix = '%m [%p] %b '
CONF
start_cluster "start the cluster with $from_version"

q postgres -c "CREATE DATABASE upg" || fatal "create database upg"
check "CREATE EXTENSION training (release $from_version)" \
    q upg -c "CREATE EXTENSION training VERSION '$from_version'"
expect "extension version in upg" "$from_version" \
    "$(q upg -c "SELECT extversion FROM pg_extension WHERE extname = 'training'")"
check "roles alice and bob with grant_access()" \
    q upg -c "CREATE ROLE alice LOGIN" -c "CREATE ROLE bob LOGIN" \
          -c "SELECT training.grant_access('alice')" -c "SELECT training.grant_access('bob')"

dataset_script faces face "$tmp/img/faces" >"$tmp/faces.sql"
dataset_script places landmark "$tmp/img/places" >"$tmp/places.sql"
dataset_script bob-places landmark "$tmp/img/bob" >"$tmp/bob.sql"
ds_face=$(qa upg -f "$tmp/faces.sql" 2>"$tmp/err") && ds_place=$(qa upg -f "$tmp/places.sql" 2>"$tmp/err") &&
    ds_bob=$(q upg -U bob -f "$tmp/bob.sql" 2>"$tmp/err") ||
    fatal "datasets of alice (face, landmark) and bob (landmark)" "$(cat "$tmp/err")"
ok "datasets of alice (face, landmark: 3 classes x 4 images) and bob (landmark)"

face_config='{"min_face_size": 40}'
tf1=$(create_training upg "$ds_face" faces "$face_config" first 2>"$tmp/err") &&
    tp1=$(create_training upg "$ds_place" places '{}' first 2>"$tmp/err") &&
    tf2=$(create_training upg "$ds_face" faces "$face_config" second 2>"$tmp/err") &&
    tb1=$(q upg -U bob -c "SELECT training.create_training('$ds_bob', 'bob-places') ->> 'id'" 2>"$tmp/err") ||
    fatal "create the trainings" "$(cat "$tmp/err")"
check "trainings under $from_version completed (faces twice, places, bob's)" \
    wait_trainings upg "$tf1" "$tp1" "$tf2" "$tb1"
expect "model faces has versions 1 and 2" "faces 2 2" \
    "$(qa upg -F ' ' -c "SELECT m ->> 'name', m ->> 'version', m ->> 'versions' FROM training.get_model('faces') m")"
face_before=$(recognize upg faces "$face_query" 2>&1) && place_before=$(recognize upg places "$place_query" 2>&1) ||
    fatal "recognize() under $from_version" "$face_before ${place_before:-}"
ok "recognize() under $from_version: faces -> $face_before; places -> $place_before"
check "row-level security under $from_version: alice sees only her rows" rls_check upg alice
counts_before=$(row_counts upg)

#######################################################################################
section "upgrade"
as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null || fatal "stop the cluster"
cur_dir=$tmp/build-current
mkdir -p "$cur_dir"
# The tree as it is (tracked and new files, not ignored build products), built outside the repo.
if git -c safe.directory='*' -C "$tree" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$tree" && git -c safe.directory='*' ls-files -z -c -o --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar -c --null -T - -f -) | tar -x -C "$cur_dir" || fatal "copy the current tree"
else
    cp -a "$tree/." "$cur_dir/" && make -C "$cur_dir" -s clean >/dev/null 2>&1 || fatal "copy the current tree"
fi
to_version=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$cur_dir/training.control")
build_install "the current tree ($to_version)" "$cur_dir"
check "the copy has the $to_version install script, the upgrade scripts and still the $from_version script" \
    test -f "$extdir/training--$to_version.sql" -a -f "$extdir/training--$from_version.sql" \
         -a -n "$(ls "$extdir"/training--*--*.sql 2>/dev/null)"
log_offset=$(wc -c <"$tmp/server.log")
start_cluster "restart the cluster with the $to_version library"
# Until ALTER EXTENSION UPDATE, the new library meets the old catalog: the launcher visits every
# database at startup, and its workers must leave an old-version database alone, not crash.
sleep 2
crashes=$(tail -c +$((log_offset + 1)) "$tmp/server.log" | grep -E -A1 'PANIC|terminated by signal' | head -6)
if [ -z "$crashes" ] && q postgres -c "SELECT 1" >/dev/null 2>&1; then
    ok "the $to_version library runs beside the $from_version catalog until the update (no crash)"
else
    fail "the $to_version library runs beside the $from_version catalog until the update (no crash)" "$crashes"
fi

path=$(q upg -c "SELECT path FROM pg_extension_update_paths('training')
                  WHERE source = '$from_version' AND target = '$to_version'")
if [ -n "$path" ]; then ok "update path $path"; else fail "an update path $from_version -> $to_version exists"; fi
check "ALTER EXTENSION training UPDATE" q upg -c "ALTER EXTENSION training UPDATE"
expect "extension version in upg after the update" "$to_version" \
    "$(q upg -c "SELECT extversion FROM pg_extension WHERE extname = 'training'")"

section "the $from_version rows under $to_version"
expect "row counts unchanged by the update" "$counts_before" "$(row_counts upg)"
expect "old trainings render: get_training() state and output model" \
    "completed faces==1 | completed places==1 | completed faces==2" \
    "$(qa upg -c "SELECT string_agg(concat_ws(' ', g ->> 'state', g -> 'output_model' ->> 'reference'), ' | '
                                    ORDER BY array_position(ARRAY['$tf1', '$tp1', '$tf2']::uuid[], t.id))
                    FROM unnest(ARRAY['$tf1', '$tp1', '$tf2']::uuid[]) AS t(id), training.get_training(t.id) AS g" 2>&1)"
expect "get_model('faces'), get_model('faces==1') and get_model() by id" "faces 2 2 | faces==1 | faces==2" \
    "$(qa upg -c "SELECT concat_ws(' ', m ->> 'name', m ->> 'version', m ->> 'versions')
                           || ' | ' || (training.get_model('faces==1') ->> 'reference')
                           || ' | ' || (training.get_model(m ->> 'id') ->> 'reference')
                    FROM training.get_model('faces') m" 2>&1)"
expect "recognize() with the old face model gives the same result" "$face_before" \
    "$(recognize upg faces "$face_query" 2>&1)"
expect "recognize() with the old landmark model gives the same result" "$place_before" \
    "$(recognize upg places "$place_query" 2>&1)"
check "row-level security after the update: alice sees only her rows" rls_check upg alice
check "row-level security after the update: bob sees only his rows" rls_check upg bob
tf3=$(create_training upg "$ds_face" faces "$face_config" third 2>&1)
if [[ $tf3 =~ ^[0-9a-f-]{36}$ ]]; then
    check "a new training on the old dataset completes" wait_trainings upg "$tf3"
    expect "the new training wrote version 3" "faces==3" \
        "$(qa upg -c "SELECT training.get_training('$tf3') -> 'output_model' ->> 'reference'" 2>&1)"
    expect "recognize() with version 3" "faces==3" "$(recognize upg faces "$face_query" 2>&1 | cut -d' ' -f1)"
else
    fail "a new training on the old dataset completes" "create_training: $tf3"
fi
n=$(q upg -c "SELECT count(*) FROM training.trainings WHERE owner = 'alice'")
expect "list_trainings() as alice" "$n $n" \
    "$(qa upg -F ' ' -c "SELECT l ->> 'total', jsonb_array_length(l -> 'data') FROM training.list_trainings(\"limit\" => 100) l" 2>&1)"

#######################################################################################
section "catalog of the updated database against a fresh install of $to_version"
catalog() { psql_ -d "$1" -f "$here/catalog.sql" >"$out/catalog-$1.txt" 2>&1; }
# compare_catalogs NAME DB1 DB2
compare_catalogs() {
    local d
    if ! catalog "$2" || ! catalog "$3"; then
        fail "$1" "$(cat "$out/catalog-$2.txt" "$out/catalog-$3.txt" | grep -E 'ERROR|error' | head)"; return
    fi
    d=$(cd "$out" && diff -u "catalog-$2.txt" "catalog-$3.txt" | tee "$out/catalog-$2-$3.diff")
    if [ -z "$d" ]; then ok "$1 ($(wc -l <"$out/catalog-$2.txt") lines)"; return; fi
    # A summary (changed lines per kind of object: - only in $2, + only in $3), then the diff.
    fail "$1" "differing lines per kind (-$2 +$3): $(grep -E '^[-+][^-+]' <<<"$d" |
        sed -E 's/^([-+])([^|]*[^ |]) *\|.*/\2 \1/' | sort | uniq -c |
        awk '{c = $1; $1 = ""; sub(/^ /, ""); printf "%s%s%d", sep, $0, c; sep = ", "}')"$'\n'"$d" 300
}
if q postgres -c "CREATE DATABASE fresh" && q fresh -c "CREATE EXTENSION training" \
        -c "SELECT training.grant_access('alice')" -c "SELECT training.grant_access('bob')" >/dev/null; then
    ok "database fresh: CREATE EXTENSION training ($(q fresh -c "SELECT extversion FROM pg_extension WHERE extname = 'training'")), grant_access()"
else
    fail "database fresh: CREATE EXTENSION training, grant_access()"
fi
compare_catalogs "catalog of upg (updated from $from_version) equals fresh ($to_version)" upg fresh
# The comparison itself: a changed function and a changed column default must show.
if q postgres -c "CREATE DATABASE probe" && q probe -c "CREATE EXTENSION training" \
        -c "SELECT training.grant_access('alice')" -c "SELECT training.grant_access('bob')" \
        -c "ALTER FUNCTION training.get_model(text) VOLATILE" \
        -c "ALTER TABLE training.datasets ALTER COLUMN description SET DEFAULT 'probe'" >/dev/null &&
        catalog probe && catalog fresh; then
    d=$(cd "$out" && diff "catalog-fresh.txt" "catalog-probe.txt")
    if grep -q 'get_model' <<<"$d" && grep -q "'probe'" <<<"$d"; then
        ok "the catalog comparison sees a changed function and a changed default (self-test)"
    else
        fail "the catalog comparison sees a changed function and a changed default (self-test)" "diff: $d"
    fi
else
    fail "the catalog comparison sees a changed function and a changed default (self-test)" "probe database failed"
fi

#######################################################################################
section "pg_dump -Fc upg, pg_restore into restored"
check "pg_dump -Fc upg" "$bindir/pg_dump" -Fc -d upg -f "$out/upg.dump"
q postgres -c "CREATE DATABASE restored" || fail "create database restored"
check "pg_restore -d restored" "$bindir/pg_restore" -d restored "$out/upg.dump"
expect "restored: extension version" "$to_version" \
    "$(q restored -c "SELECT extversion FROM pg_extension WHERE extname = 'training'" 2>&1)"
expect "restored: row counts equal upg's" "$(row_counts upg)" "$(row_counts restored 2>&1)"
check "restored: row-level security: alice sees only her rows" rls_check restored alice
check "restored: row-level security: bob sees only his rows" rls_check restored bob
expect "restored: recognize() with faces==2 gives the same result" "$face_before" \
    "$(recognize restored faces==2 "$face_query" 2>&1)"
expect "restored: recognize() with the landmark model gives the same result" "$place_before" \
    "$(recognize restored places "$place_query" 2>&1)"
next=$(q upg -c "SELECT max(v.version_number) + 1 FROM training.model_versions v
                   JOIN training.models m ON m.id = v.model_id WHERE m.name = 'faces'" 2>&1)
tf4=$(create_training restored "$ds_face" faces "$face_config" fourth 2>&1)
if [[ $tf4 =~ ^[0-9a-f-]{36}$ ]]; then
    check "restored: a new training as alice completes" wait_trainings restored "$tf4"
    expect "restored: the new training wrote the next version" "faces==$next" \
        "$(qa restored -c "SELECT training.get_training('$tf4') -> 'output_model' ->> 'reference'" 2>&1)"
else
    fail "restored: a new training as alice completes" "create_training: $tf4"
fi
compare_catalogs "catalog of restored equals fresh" restored fresh

check "server log: no crash" server_log_clean
