#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster with the extension preloaded.
#   scripts/pg-start.sh DATADIR PORT        (run as root or as the cluster's OS user)
# PG_CONFIG selects the installation (default: pg_config on PATH); TRAINING_PRELOAD=0 starts it
# without the preload (no background worker); PG_EXTRA_CONF lines are added to postgresql.conf.
# Connect with: PGHOST=/tmp PGPORT=PORT PGUSER=postgres psql
set -euo pipefail
datadir=$1; port=$2
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ -f "$datadir/postmaster.pid" ]; then
    as_pg "$bindir/pg_ctl" -D "$datadir" -m immediate stop >/dev/null 2>&1 || true
fi
rm -rf "$datadir"
mkdir -p "$datadir"
[ "$(id -u)" = 0 ] && chown postgres: "$datadir"
as_pg "$bindir/initdb" -D "$datadir" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
cat >> "$datadir/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '/tmp'
shared_preload_libraries = '$([ "${TRAINING_PRELOAD:-1}" = 0 ] || echo training)'
max_worker_processes = 16
fsync = off
log_line_prefix = '%m [%p] %b '
${PG_EXTRA_CONF:-}
CONF
as_pg "$bindir/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w start >/dev/null
echo "started PostgreSQL on port $port (data $datadir, log $datadir/server.log)"
