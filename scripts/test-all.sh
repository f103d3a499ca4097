#!/usr/bin/env bash
# Run the whole test suite from a fresh Debian 12 machine (as root):
# dependencies, build, install, unit tests under valgrind, then a throw-away
# PostgreSQL cluster with the extension preloaded for pg_regress, isolation,
# pgTAP and Perl TAP tests, and the client tests.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
port=${TEST_PGPORT:-5499}
passed=0; failed=0; failures=()
step() {  # step NAME COMMAND...
    local name=$1; shift
    echo "=== $name"
    if "$@"; then passed=$((passed+1)); echo "--- ok: $name"
    else failed=$((failed+1)); failures+=("$name"); echo "--- FAILED: $name"; fi
}

if [ "$(id -u)" = 0 ]; then scripts/deps.sh || exit 1; fi
export PG_CONFIG=${PG_CONFIG:-pg_config}
# Warnings are errors here (not in the shipped Makefile): every make below inherits WERROR.
export WERROR=-Werror
make -s clean >/dev/null 2>&1
make -s >/dev/null || { echo "build failed"; exit 1; }
make -s models >/dev/null || { echo "fetching the face models (npm) failed"; exit 1; }
make -s install >/dev/null || { echo "install failed"; exit 1; }

# Tests run as the postgres OS user in a private copy of the tree.
work=$(mktemp -d /tmp/training-test.XXXXXX)
cp -a "$top/." "$work/src"
chown -R postgres: "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- env PATH="$PATH" "$@"; else "$@"; fi; }

if ls test/unit/*.c >/dev/null 2>&1; then
    step "unit tests build" as_pg make -s -C "$work/src" test/unit/run_unit
    step "unit tests under valgrind" as_pg valgrind -q --error-exitcode=1 --leak-check=full \
        "$work/src/test/unit/run_unit"
fi

# Real datasets beside the clone (read by the deep face tests, never copied into the tree).
if [ -d "$top/../shared/data" ]; then export TRAINING_SHARED_DATA=$(cd "$top/../shared/data" && pwd); fi

# The C face networks against face-api's JavaScript (no server needed).
step "face networks golden test" env VALGRIND=1 test/deep/run.sh

scripts/pg-start.sh "$work/data" "$port" || exit 1
export PGHOST=/tmp PGPORT=$port PGUSER=postgres
trap 'as_pg "$("$PG_CONFIG" --bindir)/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1' EXIT

step "pg_regress + isolation" as_pg make -s -C "$work/src" installcheck installcheck-worker installcheck-deep
# make installcheck needs neither the preload nor the face networks: a second cluster without both.
plain_port=$((port + 1))
TRAINING_PRELOAD=0 PG_EXTRA_CONF="training.model_path = '/nonexistent/training_models'" \
    scripts/pg-start.sh "$work/data-plain" "$plain_port" >/dev/null || exit 1
step "pg_regress without the preload or the networks" as_pg env PGPORT=$plain_port \
    make -s -C "$work/src" installcheck
as_pg "$("$PG_CONFIG" --bindir)/pg_ctl" -D "$work/data-plain" -m fast stop >/dev/null 2>&1
if ls test/tap/*.pl >/dev/null 2>&1; then
    step "Perl TAP" as_pg make -s -C "$work/src" prove_installcheck PROVE_TESTS='test/tap/*.pl'
fi
if ls test/pgtap/*.sql >/dev/null 2>&1; then
    step "pgTAP" as_pg bash -c "cd '$work/src' && psql -X -q -c 'CREATE DATABASE training_pgtap' && \
        pg_prove -d training_pgtap test/pgtap/*.sql"
fi
# Upgrade from the 0.1.0 release (built from git history) and a pg_dump/pg_restore round trip,
# in a private copy of the PostgreSQL installation.
if [ -x test/failover/run.sh ] && command -v pg_autoctl >/dev/null; then
    step "failover with pg_auto_failover and training-worker" "$work/src/test/failover/run.sh"
fi
if [ -x test/upgrade/run.sh ]; then
    step "upgrade from 0.1.0, dump and restore" "$work/src/test/upgrade/run.sh"
fi
# The README's tour, statement by statement, as an ordinary role.
if [ -x test/tour/run.sh ]; then
    step "README tour" as_pg "$work/src/test/tour/run.sh"
fi
# Fuzzing of the image decoders, the model parser and the weight loader (libFuzzer, ASan, UBSan).
step "fuzz (${FUZZ_SECONDS:-60} s per target)" as_pg make -s -C "$work/src" fuzz CC_FUZZ=clang-14 FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
# Crash recovery under kill -9 of workers, the launcher and the server (a few cycles; bench/soak.sh runs 50).
if [ -x test/soak/run.sh ]; then
    step "soak (crash recovery)" "$work/src/test/soak/run.sh"
fi
if [ -x test/clients/run.sh ]; then
    step "client tests" as_pg "$work/src/test/clients/run.sh"
fi

for f in "$work"/src/regression.diffs "$work"/src/output_iso/regression.diffs; do
    [ -s "$f" ] && { echo "=== $f"; head -200 "$f"; }
done
echo
[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
