#!/usr/bin/env bash
# The README's tour as a test: every statement of it, in order, in a fresh database, as the
# ordinary role the README creates, and the output checked two ways (test/tour/check.pl):
#   1. the README's own promises: after a statement, a comment "-- → TEXT" means TEXT appears in
#      that statement's output (whitespace collapsed); "-- → ERROR 22023[: message]" means the
#      statement fails with that SQLSTATE (and a message containing the text); any other error fails;
#   2. the whole output, uuids and times masked, equals test/tour/expected.out.
# Then a few facts are read back as the superuser (trainings completed, model versions).
#
# The README gives the tour in three marked blocks: <!-- tour:shell --> (the `make` and
# `tools/gen-demo` lines run here, with /tmp/tour replaced by a private directory),
# <!-- tour:setup --> (run as the superuser: creates the database and the role; both are dropped
# first if they exist, and at the end), and <!-- tour:begin --> ... <!-- tour:end --> (the tour,
# run with psql as the role, from the folder of the generated images).
#
#   test/tour/run.sh            run and check (PGHOST/PGPORT/PGUSER of a superuser; the
#                               extension installed and preloaded, the face networks installed)
#   test/tour/run.sh --accept   the same, then write expected.out from this run if the promises
#                               held (review the diff before committing it)
# KEEP=1 keeps the database, the role and the work directory. TOUR_STATEMENT_TIMEOUT (120s) and
# TOUR_TIMEOUT (600 s) bound a tour that hangs, e.g. when no background worker runs the trainings.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
readme=$src/README.md
accept=0
[ "${1:-}" = --accept ] && accept=1
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
export PGCLIENTENCODING=UTF8
psql() { "$bindir/psql" -X "$@"; }
fail() { echo "tour: $*" >&2; exit 1; }

# The lines of the fenced block that follows the marker <!-- tour:NAME -->.
block() {
    awk -v m="<!-- tour:$1 -->" '
        $0 == m { found = 1; next }
        found && /^```/ { if (inblock) exit; inblock = 1; next }
        found && inblock { print }' "$readme"
}

start=$(date +%s%N)
work=$(mktemp -d /tmp/training-tour.XXXXXX)
db= role=
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then echo "tour: kept $work, database $db, role $role"; return; fi
    if [ -n "$db" ]; then psql -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true; fi
    if [ -n "$role" ]; then psql -q -d postgres -c "DROP ROLE IF EXISTS \"$role\"" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

block shell >"$work/shell.sh"
block setup >"$work/setup.sql"
block begin >"$work/tour.sql"
for f in shell.sh setup.sql tour.sql; do [ -s "$work/$f" ] || fail "README.md has no tour block for $f"; done
db=$(sed -n 's/^CREATE DATABASE \([a-z_][a-z0-9_]*\);.*/\1/p' "$work/setup.sql")
role=$(sed -n 's/^CREATE ROLE \([a-z_][a-z0-9_]*\) .*/\1/p' "$work/setup.sql")
[ -n "$db" ] && [ -n "$role" ] || fail "the setup block must CREATE DATABASE and CREATE ROLE"
grep -q "^SELECT training.grant_access('$role');" "$work/setup.sql" || fail "the setup block must grant_access('$role')"

# The images, made the README's way.
images=$work/tour
n=0
while IFS= read -r line; do
    line=${line%%#*}
    case $line in
        make\ *) cmd="make -s ${line#make }" ;;
        tools/gen-demo\ *) cmd=$line ;;
        *) continue ;;
    esac
    cmd=${cmd//\/tmp\/tour/$images}
    (cd "$src" && eval "$cmd") >"$work/shell.out" 2>&1 || { cat "$work/shell.out"; fail "failed: $cmd"; }
    n=$((n + 1))
done <"$work/shell.sh"
[ "$n" -ge 2 ] && [ -d "$images" ] || fail "the shell block must make tools/gen-demo and generate /tmp/tour"

psql -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "DROP ROLE IF EXISTS \"$role\"" \
    >/dev/null 2>"$work/drop.out" || { cat "$work/drop.out"; fail "cannot start from a fresh database $db and role $role"; }
psql -q -v ON_ERROR_STOP=1 -d postgres -f "$work/setup.sql" >"$work/setup.out" 2>&1 ||
    { cat "$work/setup.out"; fail "the setup block failed"; }

# The tour, as the role, statement by statement (psql -a echoes each input line before its output).
# A statement that runs longer than TOUR_STATEMENT_TIMEOUT (a training that never ends, say) is
# canceled and shows as an error; the whole tour is stopped after TOUR_TIMEOUT seconds.
rc=0
(cd "$images" && PGOPTIONS="-c statement_timeout=${TOUR_STATEMENT_TIMEOUT:-120s}" \
    timeout "${TOUR_TIMEOUT:-600}" "$bindir/psql" -X -a -v VERBOSITY=verbose -v SHOW_CONTEXT=never \
        -U "$role" -d "$db" -f "$work/tour.sql") >"$work/tour.raw" 2>&1 || rc=$?
[ "$rc" = 0 ] || { cat "$work/tour.raw"; fail "psql exited with $rc"; }

status=0
offset=$(awk '/^<!-- tour:begin -->$/ { f = 1 } f && /^```/ { print NR; exit }' "$readme")
perl "$here/check.pl" "$work/tour.sql" "$work/tour.raw" "$work/tour.out" "$offset" || status=1

# What the tour did, read back as the superuser.
facts=$(psql -At -d "$db" -c "
    SELECT (SELECT string_agg(state, ',' ORDER BY time_created) FROM training.trainings WHERE owner = '$role')
        || ' / ' ||
        (SELECT coalesce(string_agg(v.version_number::text, ',' ORDER BY v.version_number), '')
         FROM training.model_versions v JOIN training.models m ON m.id = v.model_id
         WHERE m.name = 'staff-faces' AND m.owner = '$role')" 2>&1) || true
if [ "$facts" = "completed,completed,completed / 1,3" ]; then
    echo "ok: three trainings completed; versions 1 and 3 of staff-faces are left"
else
    echo "not ok: trainings / versions are '$facts', expected 'completed,completed,completed / 1,3'"
    status=1
fi

if [ "$accept" = 1 ]; then
    if [ "$status" = 0 ]; then
        cp "$work/tour.out" "$here/expected.out"
        echo "wrote $here/expected.out"
    else
        echo "not writing expected.out: the checks above failed"
    fi
elif [ -f "$here/expected.out" ]; then
    if diff -u "$here/expected.out" "$work/tour.out" >"$work/tour.diff"; then
        echo "ok: the output equals test/tour/expected.out"
    else
        echo "not ok: the output differs from test/tour/expected.out:"
        cat "$work/tour.diff"
        status=1
    fi
else
    echo "not ok: no test/tour/expected.out (run test/tour/run.sh --accept and review it)"
    status=1
fi
ms=$((($(date +%s%N) - start) / 1000000))
printf 'tour: %s in %d.%d s\n' "$([ $status = 0 ] && echo passed || echo FAILED)" $((ms / 1000)) $((ms % 1000 / 100))
exit $status
