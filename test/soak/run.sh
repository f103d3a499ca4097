#!/usr/bin/env bash
# CI: a short soak of crash recovery (bench/soak.sh): SOAK_CYCLES (default 4) cycles of queued
# trainings hit by kill -9 of a worker, kill -9 of the launcher and an immediate shutdown, in a
# throw-away cluster on port SOAK_PORT (5488). Needs the extension installed into the PostgreSQL
# that PG_CONFIG names (default: pg_config on PATH); run as root or as the postgres OS user.
#   test/soak/run.sh [CYCLES]
# SOAK_CI_TIMEOUT (85 s) bounds the whole run; the soak stops its cluster when it is cut short.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
export PG_CONFIG=${PG_CONFIG:-pg_config}
export SOAK_CYCLES=${1:-${SOAK_CYCLES:-4}}
# Short drain: 4 cycles leave a few trainings of a second or two each.
export SOAK_DRAIN_TIMEOUT=${SOAK_DRAIN_TIMEOUT:-40}
exec timeout -k 10 "${SOAK_CI_TIMEOUT:-85}" bash "$src/bench/soak.sh" "$SOAK_CYCLES"
