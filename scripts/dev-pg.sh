#!/usr/bin/env bash
# Developer sandbox: a private relocated copy of the system PostgreSQL 15 under /tmp/pg-NAME,
# the extension installed into it, and a cluster started on PORT. Several developers can
# work side by side without installing into each other's server.
#   scripts/dev-pg.sh NAME PORT
#   then: export PG_CONFIG=/tmp/pg-NAME/usr/lib/postgresql/15/bin/pg_config PGHOST=/tmp PGPORT=PORT PGUSER=postgres
set -euo pipefail
name=$1; port=$2
root=/tmp/pg-$name
if [ ! -x "$root/usr/lib/postgresql/15/bin/pg_config" ]; then
    mkdir -p "$root/usr/lib/postgresql" "$root/usr/share/postgresql"
    cp -a /usr/lib/postgresql/15 "$root/usr/lib/postgresql/"
    cp -a /usr/share/postgresql/15 "$root/usr/share/postgresql/"
fi
# The relocated pg_config reports headers under $root too (PGXS builds need them).
if [ ! -f "$root/usr/include/postgresql/15/server/postgres.h" ]; then
    mkdir -p "$root/usr/include"
    cp -a /usr/include/postgresql "$root/usr/include/"
fi
export PG_CONFIG=$root/usr/lib/postgresql/15/bin/pg_config
cd "$(dirname "$0")/.."
make -s PG_CONFIG="$PG_CONFIG" >/dev/null
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
scripts/pg-start.sh "$root/data" "$port"
echo "export PG_CONFIG=$PG_CONFIG PGHOST=/tmp PGPORT=$port PGUSER=postgres"
