#!/usr/bin/env bash
# Client tests: the API used from an ORM in Python (SQLAlchemy on psycopg2) and in Node
# (node-postgres + knex), each connected as its own ordinary role, as an application would.
# Each one creates a dataset, adds generated images, creates trainings through a function call
# and through the mapped table, waits for them by LISTEN on the worker's channel, reads, lists,
# recognizes and deletes; and checks that another role's rows stay invisible and untouchable,
# also on one pooled connection that switches roles (as PostgREST does).
#
# Needs a running server with the extension available and preloaded: PGHOST/PGPORT/PGUSER
# (a superuser) from the environment, as scripts/test-all.sh sets them.
#   test/clients/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
db=${TRAINING_CLIENTS_DB:-training_clients}
export TRAINING_CLIENTS_DB=$db
export TRAINING_CLIENTS_TIMEOUT=${TRAINING_CLIENTS_TIMEOUT:-120}
psql_su() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# A fresh database, and three login roles: one per client and one "other" owner; and a pooled
# login that can switch to either client role.
psql_su -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql_su -d "$db" <<'SQL'
CREATE EXTENSION training;
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['training_client_py', 'training_client_node', 'training_client_other'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        END IF;
        PERFORM training.grant_access(r::regrole);
    END LOOP;
    -- A pooled login that switches to the client roles, as PostgREST's authenticator does.
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'training_client_pool') THEN
        CREATE ROLE training_client_pool LOGIN NOINHERIT;
    END IF;
    GRANT training_client_py, training_client_node TO training_client_pool;
END $$;
SQL

# The other role's dataset (with one class and one image): both clients must not reach it.
export TRAINING_OTHER_DATASET_ID=$(psql -X -q -At -v ON_ERROR_STOP=1 -U training_client_other -d "$db" <<'SQL'
WITH d AS (INSERT INTO training.datasets (name, type) VALUES ('other places', 'landmark') RETURNING id),
     c AS (INSERT INTO training.classes (dataset_id, reference, label)
           SELECT id, 'x', 'X' FROM d RETURNING id, dataset_id)
INSERT INTO training.images (class_id, data)
SELECT id, '\x50350a3220320a3235350a00ff00ff'::bytea FROM c RETURNING (SELECT id FROM d);
SQL
)
[ -n "$TRAINING_OTHER_DATASET_ID" ] || { echo "could not create the other role's dataset"; exit 1; }

# The Python client leaves its first dataset, training and model for the Node client to probe.
export TRAINING_CLIENTS_STATE=$(mktemp)
trap 'rm -f "$TRAINING_CLIENTS_STATE"' EXIT

status=0
echo "--- Python: SQLAlchemy $(/usr/bin/python3 -c 'import sqlalchemy; print(sqlalchemy.__version__)') on psycopg2"
/usr/bin/python3 "$here/test_sqlalchemy.py" || status=1

echo "--- Node: node-postgres + knex"
cd "$here/node"
# Dependencies are pinned in package-lock.json and installed here, never committed.
export npm_config_cache=${TMPDIR:-/tmp}/training-npm-cache-$(id -u)
if [ ! -d node_modules/knex ] || [ ! -d node_modules/pg ]; then
    npm ci --no-audit --no-fund --loglevel=error >/dev/null || { echo "npm ci failed"; exit 1; }
fi
node test_knex.js || status=1

# The worker processed both clients' trainings, whoever owned them.
psql_su -d "$db" -At -c "SELECT owner || ': ' || state || ' ' || count(*)
                          FROM training.trainings GROUP BY owner, state ORDER BY 1"
psql_su -d postgres -c "DROP DATABASE $db"
exit $status
