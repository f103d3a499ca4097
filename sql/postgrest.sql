-- The SQL that PostgREST v12 issues for the requests of DESIGN.md, run as PostgREST runs it:
-- connected as an authenticator role (LOGIN NOINHERIT), one transaction per request that first
-- sets the request's role and JWT claims with set_config(..., true) (= SET LOCAL), then runs one
-- statement. Shapes follow PostgREST 12.2 (src/PostgREST/Query/QueryBuilder.hs, SqlFragment.hs,
-- PreQuery.hs); see examples/postgrest/ for the matching postgrest.conf and role set-up.
\set VERBOSITY sqlstate
\set SHOW_CONTEXT never
SET client_min_messages = error;   -- (no "nothing will process" warning without the preload)

CREATE ROLE regress_authenticator LOGIN NOINHERIT;
CREATE ROLE regress_anon NOLOGIN;
CREATE ROLE regress_ann NOLOGIN;
CREATE ROLE regress_ben NOLOGIN;
GRANT regress_anon, regress_ann, regress_ben TO regress_authenticator;
SELECT training.grant_access('regress_ann'), training.grant_access('regress_ben');

-- Embedding needs exactly one foreign key between the two tables (else PGRST201, ambiguous).
-- model_versions is not a junction for a many-to-many trainings<->models: PostgREST takes a
-- table as junction only when its foreign-key columns are part of its primary key.
SELECT conrelid::regclass AS from_table, confrelid::regclass AS to_table,
       (SELECT array_agg(attname ORDER BY attnum) FROM pg_attribute
        WHERE attrelid = conrelid AND attnum = ANY (conkey)) AS columns
FROM pg_constraint
WHERE contype = 'f' AND connamespace = 'training'::regnamespace
ORDER BY 1::text, 2::text, 3::text;

SET SESSION AUTHORIZATION regress_authenticator;

-- POST /datasets  {"name": "ann faces", "type": "landmark"}   (Prefer: return=representation)
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SELECT set_config('search_path', '"training", "public"', true),
       set_config('role', 'regress_ann', true),
       set_config('request.jwt.claims', '{"role":"regress_ann"}', true),
       set_config('request.method', 'POST', true),
       set_config('request.path', '/datasets', true) \gset
WITH pgrst_source AS (
  INSERT INTO "training"."datasets"("name", "type")
  SELECT "pgrst_body"."name", "pgrst_body"."type"
  FROM (SELECT '{"name": "ann faces", "type": "landmark"}'::json AS json_data) pgrst_payload,
  LATERAL (SELECT "name", "type" FROM json_to_record(pgrst_payload.json_data) AS _("name" text, "type" text) ) pgrst_body
  RETURNING "training"."datasets".*
)
SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total,
       (coalesce(json_agg(_postgrest_t), '[]')->0->>'id') AS ann_ds,
       (coalesce(json_agg(_postgrest_t), '[]')->0->>'owner') AS owner,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT "datasets".* FROM "pgrst_source" AS "datasets") _postgrest_t \gset
COMMIT;
SELECT :'page_total' AS page_total, :'owner' AS owner;

-- POST /classes with a JSON array body (bulk insert): json_to_recordset.
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SELECT set_config('search_path', '"training", "public"', true),
       set_config('role', 'regress_ann', true),
       set_config('request.jwt.claims', '{"role":"regress_ann"}', true) \gset
WITH pgrst_source AS (
  INSERT INTO "training"."classes"("dataset_id", "label", "reference")
  SELECT "pgrst_body"."dataset_id", "pgrst_body"."label", "pgrst_body"."reference"
  FROM (SELECT json_build_array(json_build_object('dataset_id', :'ann_ds', 'label', 'Tower', 'reference', 'tower'),
                                json_build_object('dataset_id', :'ann_ds', 'label', 'Bridge', 'reference', 'bridge'))
               AS json_data) pgrst_payload,
  LATERAL (SELECT "dataset_id", "label", "reference" FROM json_to_recordset(pgrst_payload.json_data)
           AS _("dataset_id" uuid, "label" text, "reference" text) ) pgrst_body
  RETURNING "training"."classes".*
)
SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total,
       array[]::text[] AS header, ''::text AS body
FROM (SELECT "classes".* FROM "pgrst_source" AS "classes") _postgrest_t;
COMMIT;

-- POST /images, one per class (a training needs two classes with images): bytea as "\x..." text.
SELECT '\x' || encode(convert_to(E'P5\n8 8\n255\n', 'UTF8') || decode(repeat('80', 64), 'hex'), 'hex') AS pgm \gset
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SELECT set_config('search_path', '"training", "public"', true),
       set_config('role', 'regress_ann', true),
       set_config('request.jwt.claims', '{"role":"regress_ann"}', true) \gset
WITH pgrst_source AS (
  INSERT INTO "training"."images"("class_id", "data")
  SELECT "pgrst_body"."class_id", "pgrst_body"."data"
  FROM (SELECT (SELECT json_agg(json_build_object('class_id', c.id, 'data', :'pgm')) FROM training.classes c
                 WHERE c.dataset_id = :'ann_ds') AS json_data) pgrst_payload,
  LATERAL (SELECT "class_id", "data" FROM json_to_recordset(pgrst_payload.json_data)
           AS _("class_id" uuid, "data" bytea) ) pgrst_body
  RETURNING "training"."images".*
)
SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total,
       array[]::text[] AS header, ''::text AS body
FROM (SELECT "images".* FROM "pgrst_source" AS "images") _postgrest_t;
COMMIT;

-- POST /trainings  {"source_dataset_id": ..., "output_model_name": "ann model", "config": {}}:
-- the table insert, with the defaults and checks of create_training.
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SELECT set_config('search_path', '"training", "public"', true),
       set_config('role', 'regress_ann', true),
       set_config('request.jwt.claims', '{"role":"regress_ann"}', true),
       set_config('request.method', 'POST', true),
       set_config('request.path', '/trainings', true) \gset
WITH pgrst_source AS (
  INSERT INTO "training"."trainings"("config", "output_model_name", "source_dataset_id")
  SELECT "pgrst_body"."config", "pgrst_body"."output_model_name", "pgrst_body"."source_dataset_id"
  FROM (SELECT json_build_object('source_dataset_id', :'ann_ds', 'output_model_name', 'ann model',
                                 'config', '{}'::json) AS json_data) pgrst_payload,
  LATERAL (SELECT "config", "output_model_name", "source_dataset_id" FROM json_to_record(pgrst_payload.json_data)
           AS _("config" jsonb, "output_model_name" text, "source_dataset_id" uuid) ) pgrst_body
  RETURNING "training"."trainings".*
)
SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total,
       (coalesce(json_agg(_postgrest_t), '[]')->0->>'id') AS ann_tr,
       (coalesce(json_agg(_postgrest_t), '[]')::jsonb->0) - 'id' - 'time_created' - 'source_dataset_id' - 'object' AS body,
       (coalesce(json_agg(_postgrest_t), '[]')::jsonb->0->'object') AS object
FROM (SELECT "trainings".* FROM "pgrst_source" AS "trainings") _postgrest_t \gset
COMMIT;
SELECT :'page_total' AS page_total, jsonb_pretty(:'body'::jsonb) AS body;
-- The row carries the Training object, as get_training renders it.
SET ROLE regress_ann;
SELECT :'object'::jsonb = training.get_training(:'ann_tr') AS object_is_get_training,
       :'object'::jsonb->'source_dataset'->>'name' AS source_dataset;
RESET ROLE;

-- POST /rpc/create_training  {"source_dataset_id": ..., "output_model_name": "ann rpc model"}:
-- the function called with named arguments, only those in the body (the rest take defaults).
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SELECT set_config('search_path', '"training", "public"', true),
       set_config('role', 'regress_ann', true),
       set_config('request.jwt.claims', '{"role":"regress_ann"}', true),
       set_config('request.method', 'POST', true),
       set_config('request.path', '/rpc/create_training', true) \gset
WITH pgrst_source AS (
  SELECT pgrst_call.pgrst_scalar
  FROM (SELECT json_build_object('source_dataset_id', :'ann_ds', 'output_model_name', 'ann rpc model')
               AS json_data) pgrst_payload,
  LATERAL (SELECT "output_model_name", "source_dataset_id" FROM json_to_record(pgrst_payload.json_data)
           AS _("output_model_name" text, "source_dataset_id" uuid) LIMIT 1) pgrst_body,
  LATERAL (SELECT "training"."create_training"("output_model_name" := pgrst_body."output_model_name",
                                               "source_dataset_id" := pgrst_body."source_dataset_id") pgrst_scalar) pgrst_call
)
SELECT NULL::bigint AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) _postgrest_t \gset
COMMIT;
SELECT :'page_total' AS page_total, :'body'::jsonb->>'state' AS state, :'body'::jsonb->>'type' AS type,
       :'body'::jsonb->'source_dataset'->>'name' AS source_dataset, :'body'::jsonb->'output_model' AS output_model;
SELECT :'body'::jsonb->>'id' AS ann_rpc_tr \gset

-- POST /trainings as PostgREST up to v10 shaped it: json_populate_recordset over the table's
-- row type, inserting only the body's keys (the others keep their defaults).
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SELECT set_config('search_path', '"training", "public"', true),
       set_config('role', 'regress_ann', true),
       set_config('request.jwt.claims', '{"role":"regress_ann"}', true) \gset
WITH pgrst_source AS (
  WITH pgrst_payload AS (SELECT json_build_array(json_build_object('source_dataset_id', :'ann_ds',
                                                                   'output_model_name', 'ann old shape'))
                                AS json_data),
       pgrst_body AS (SELECT CASE WHEN json_typeof(json_data) = 'array' THEN json_data
                                  ELSE json_build_array(json_data) END AS val FROM pgrst_payload)
  INSERT INTO "training"."trainings" ("output_model_name", "source_dataset_id")
  SELECT "output_model_name", "source_dataset_id"
  FROM json_populate_recordset(NULL::"training"."trainings", (SELECT val FROM pgrst_body)) _
  RETURNING "training"."trainings".*
)
SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total,
       json_agg(json_build_object('state', _postgrest_t.state, 'type', _postgrest_t.type,
                                  'owner', _postgrest_t.owner, 'config', _postgrest_t.config)) AS body
FROM (SELECT "trainings".* FROM "pgrst_source" AS "trainings") _postgrest_t;
ROLLBACK;

-- GET /rpc/get_training?id=<id>   (a STABLE function: read-only transaction, GET arguments)
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('search_path', '"training", "public"', true),
       set_config('role', 'regress_ann', true),
       set_config('request.jwt.claims', '{"role":"regress_ann"}', true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/rpc/get_training', true) \gset
WITH pgrst_source AS (
  SELECT pgrst_call.pgrst_scalar
  FROM (SELECT json_build_object('id', :'ann_rpc_tr') AS json_data) pgrst_payload,
  LATERAL (SELECT "id" FROM json_to_record(pgrst_payload.json_data) AS _("id" uuid) LIMIT 1) pgrst_body,
  LATERAL (SELECT "training"."get_training"("id" := pgrst_body."id") pgrst_scalar) pgrst_call
)
SELECT pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null')->>'output_model_name' AS body
FROM (SELECT * FROM pgrst_source) _postgrest_t;
COMMIT;

-- A completed training of Ann's with its model, as the worker leaves them (it runs as superuser).
RESET SESSION AUTHORIZATION;
BEGIN;
SET LOCAL session_replication_role = replica;
WITH m AS (INSERT INTO training.models (owner, name, type) VALUES ('regress_ann', 'ann old model', 'landmark')
           RETURNING id)
INSERT INTO training.trainings (owner, source_dataset_id, output_model_name, type, state, progress,
                                output_model_id, output_model_version)
SELECT 'regress_ann', :'ann_ds', 'ann old model', 'landmark', 'completed', 1, m.id, 1 FROM m;
COMMIT;
SET SESSION AUTHORIZATION regress_authenticator;

-- GET /trainings?select=*,source_dataset:datasets(*),output_model:models(*)&order=output_model_name
-- (Range: 0-99; a read-only transaction)
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('search_path', '"training", "public"', true),
       set_config('role', 'regress_ann', true),
       set_config('request.jwt.claims', '{"role":"regress_ann"}', true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/trainings', true) \gset
WITH pgrst_source AS (
  SELECT "training"."trainings".*,
         row_to_json("trainings_source_dataset_1".*) AS "source_dataset",
         row_to_json("trainings_output_model_2".*) AS "output_model"
  FROM "training"."trainings"
  LEFT JOIN LATERAL (
    SELECT "datasets_1".* FROM "training"."datasets" AS "datasets_1"
    WHERE "datasets_1"."id" = "training"."trainings"."source_dataset_id"
  ) AS "trainings_source_dataset_1" ON TRUE
  LEFT JOIN LATERAL (
    SELECT "models_2".* FROM "training"."models" AS "models_2"
    WHERE "models_2"."id" = "training"."trainings"."output_model_id"
  ) AS "trainings_output_model_2" ON TRUE
  ORDER BY "training"."trainings"."output_model_name" ASC
  LIMIT 100 OFFSET 0
)
SELECT NULL::bigint AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total,
       jsonb_pretty(jsonb_agg(jsonb_build_object(
           'output_model_name', _postgrest_t.output_model_name,
           'source_dataset', jsonb_build_object('name', _postgrest_t.source_dataset->'name',
                                                'owner', _postgrest_t.source_dataset->'owner'),
           'output_model', CASE WHEN _postgrest_t.output_model IS NOT NULL
                                THEN jsonb_build_object('name', _postgrest_t.output_model->'name',
                                                        'owner', _postgrest_t.output_model->'owner') END))) AS body
FROM (SELECT * FROM pgrst_source) _postgrest_t;
COMMIT;

-- GET /datasets?select=name,classes(label)   (one-to-many embed)
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('search_path', '"training", "public"', true),
       set_config('role', 'regress_ann', true),
       set_config('request.jwt.claims', '{"role":"regress_ann"}', true) \gset
WITH pgrst_source AS (
  SELECT "training"."datasets"."name",
         COALESCE("datasets_classes_1"."datasets_classes_1", '[]') AS "classes"
  FROM "training"."datasets"
  LEFT JOIN LATERAL (
    SELECT json_agg("datasets_classes_1") AS "datasets_classes_1"
    FROM (SELECT "classes_1"."label" FROM "training"."classes" AS "classes_1"
          WHERE "classes_1"."dataset_id" = "training"."datasets"."id"
          ORDER BY "classes_1"."label") AS "datasets_classes_1"
  ) AS "datasets_classes_1" ON TRUE
)
SELECT pg_catalog.count(_postgrest_t) AS page_total, coalesce(json_agg(_postgrest_t), '[]') AS body
FROM (SELECT * FROM pgrst_source) _postgrest_t;
COMMIT;

-- Ben, through the same authenticator, sees none of Ann's rows: GET returns [] and
-- GET /trainings?id=eq.<Ann's id> an empty array too (existence not leaked).
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('search_path', '"training", "public"', true),
       set_config('role', 'regress_ben', true),
       set_config('request.jwt.claims', '{"role":"regress_ben"}', true) \gset
SELECT pg_catalog.count(_postgrest_t) AS page_total, coalesce(json_agg(_postgrest_t), '[]') AS body
FROM (SELECT "training"."trainings".* FROM "training"."trainings"
      WHERE "training"."trainings"."id" = :'ann_tr' LIMIT 100 OFFSET 0) _postgrest_t;
SELECT pg_catalog.count(_postgrest_t) AS page_total
FROM (SELECT "training"."datasets".* FROM "training"."datasets") _postgrest_t;
COMMIT;

-- Ben's GET /rpc/get_training?id=<Ann's id> answers P0002 (PostgREST: 404), as for no such id.
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('search_path', '"training", "public"', true),
       set_config('role', 'regress_ben', true),
       set_config('request.jwt.claims', '{"role":"regress_ben"}', true) \gset
WITH pgrst_source AS (
  SELECT pgrst_call.pgrst_scalar
  FROM (SELECT json_build_object('id', :'ann_rpc_tr') AS json_data) pgrst_payload,
  LATERAL (SELECT "id" FROM json_to_record(pgrst_payload.json_data) AS _("id" uuid) LIMIT 1) pgrst_body,
  LATERAL (SELECT "training"."get_training"("id" := pgrst_body."id") pgrst_scalar) pgrst_call
)
SELECT pg_catalog.count(_postgrest_t) AS page_total FROM (SELECT * FROM pgrst_source) _postgrest_t;
ROLLBACK;

-- Ben's POST /trainings on Ann's dataset is refused; nothing is stored.
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SELECT set_config('search_path', '"training", "public"', true),
       set_config('role', 'regress_ben', true),
       set_config('request.jwt.claims', '{"role":"regress_ben"}', true) \gset
WITH pgrst_source AS (
  INSERT INTO "training"."trainings"("output_model_name", "source_dataset_id")
  SELECT "pgrst_body"."output_model_name", "pgrst_body"."source_dataset_id"
  FROM (SELECT json_build_object('source_dataset_id', :'ann_ds', 'output_model_name', 'stolen')
               AS json_data) pgrst_payload,
  LATERAL (SELECT "output_model_name", "source_dataset_id" FROM json_to_record(pgrst_payload.json_data)
           AS _("output_model_name" text, "source_dataset_id" uuid) ) pgrst_body
  RETURNING 1
)
SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total
FROM (SELECT 1 FROM "pgrst_source") _postgrest_t;
ROLLBACK;

-- Ben's POST /datasets with a forged "owner" is refused.
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SELECT set_config('role', 'regress_ben', true) \gset
WITH pgrst_source AS (
  INSERT INTO "training"."datasets"("name", "owner", "type")
  SELECT "pgrst_body"."name", "pgrst_body"."owner", "pgrst_body"."type"
  FROM (SELECT '{"name": "x", "owner": "regress_ann", "type": "face"}'::json AS json_data) pgrst_payload,
  LATERAL (SELECT "name", "owner", "type" FROM json_to_record(pgrst_payload.json_data)
           AS _("name" text, "owner" name, "type" text) ) pgrst_body
  RETURNING 1
)
SELECT pg_catalog.count(_postgrest_t) AS page_total FROM (SELECT 1 FROM "pgrst_source") _postgrest_t;
ROLLBACK;

-- The same request with the prelude written as SET LOCAL (what set_config(..., true) does; older
-- PostgREST versions and other gateways issue it this way): the claims are readable, the role
-- switched for this transaction only.
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SET LOCAL search_path = "training", "public";
SET LOCAL ROLE regress_ben;
SET LOCAL request.jwt.claims = '{"role":"regress_ben","sub":"ben@example.com"}';
SELECT current_user, current_setting('request.jwt.claims', true)::json->>'sub' AS sub,
       (SELECT count(*) FROM trainings) AS trainings, (SELECT count(*) FROM datasets) AS datasets;
COMMIT;
SELECT current_user;

-- Ben's DELETE /trainings?id=eq.<Ann's id> deletes nothing (PostgREST answers 204 either way).
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SELECT set_config('role', 'regress_ben', true),
       set_config('request.jwt.claims', '{"role":"regress_ben"}', true) \gset
WITH pgrst_source AS (
  DELETE FROM "training"."trainings" WHERE "training"."trainings"."id" = :'ann_tr' RETURNING 1
)
SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total
FROM (SELECT 1 FROM "pgrst_source") _postgrest_t;
COMMIT;

-- The anonymous role (db-anon-role, no grant_access) gets 42501: PostgREST answers 401.
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'regress_anon', true) \gset
SELECT count(*) FROM "training"."trainings";
ROLLBACK;

-- Ann's DELETE /trainings?id=eq.<id> deletes her training.
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SELECT set_config('role', 'regress_ann', true),
       set_config('request.jwt.claims', '{"role":"regress_ann"}', true) \gset
WITH pgrst_source AS (
  DELETE FROM "training"."trainings" WHERE "training"."trainings"."id" = :'ann_tr' RETURNING 1
)
SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total
FROM (SELECT 1 FROM "pgrst_source") _postgrest_t;
COMMIT;

RESET SESSION AUTHORIZATION;
SELECT output_model_name FROM training.trainings ORDER BY 1;

-- Clean up the cluster-wide roles.
DELETE FROM training.trainings;
DELETE FROM training.models;
DELETE FROM training.datasets;
DROP OWNED BY regress_authenticator, regress_anon, regress_ann, regress_ben;
DROP ROLE regress_authenticator, regress_anon, regress_ann, regress_ben;
