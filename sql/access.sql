-- Access: row-level security between two roles, the admin role, grant_access/revoke_access,
-- the status view. Statements that fail are run through try(), which prints the SQLSTATE and
-- the message (ids masked), so the output is stable and shows what a client can branch on.
\set VERBOSITY terse
SET client_min_messages = warning;

CREATE FUNCTION public.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE stmt;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN 'ok, ' || n || ' rows';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': '
        || regexp_replace(SQLERRM, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
                          '<id>', 'g');
END $$;

-- A 2x2 grey PGM: decodes, so image triggers accept it.
CREATE FUNCTION public.tiny_pgm() RETURNS bytea LANGUAGE sql
    AS $$ SELECT '\x50350a3220320a3235350a00ff00ff'::bytea $$;

CREATE ROLE regress_alice;
CREATE ROLE regress_bob;
CREATE ROLE regress_carol;                 -- admin
CREATE ROLE regress_nobody;                -- never granted
GRANT training_admin TO regress_carol;
SELECT training.grant_access('regress_alice'), training.grant_access('regress_bob');

-- grant_access and revoke_access pin search_path and run as the definer.
SELECT proname, prosecdef, proconfig FROM pg_proc
WHERE pronamespace = 'training'::regnamespace AND proname IN ('grant_access', 'revoke_access')
ORDER BY proname;

-- Every table has row-level security.
SELECT relname, relrowsecurity FROM pg_class
WHERE relnamespace = 'training'::regnamespace AND relkind = 'r' ORDER BY relname;

---------------------------------------------------------------------------
-- Alice's data, made through the tables.
SET ROLE regress_alice;
INSERT INTO training.datasets (name, type) VALUES ('alice faces', 'face') RETURNING id AS a_ds \gset
INSERT INTO training.classes (dataset_id, reference, label) VALUES (:'a_ds', 'ann', 'Ann')
    RETURNING id AS a_cls \gset
INSERT INTO training.images (class_id, data) VALUES (:'a_cls', tiny_pgm()) RETURNING id AS a_img \gset
SELECT owner, name FROM training.datasets;
SELECT owner, label FROM training.classes;
SELECT owner, count(*) FROM training.images GROUP BY owner;

-- A dataset with its class and image in one statement: the policies see the parent rows
-- inserted earlier in the same statement.
WITH d AS (INSERT INTO training.datasets (name, type) VALUES ('alice chain', 'landmark') RETURNING id),
     c AS (INSERT INTO training.classes (dataset_id, reference, label) SELECT id, 'x', 'X' FROM d RETURNING id)
INSERT INTO training.images (class_id, data) SELECT id, tiny_pgm() FROM c;
SELECT d.name, c.label, count(i.id) AS images
FROM training.datasets d JOIN training.classes c ON c.dataset_id = d.id LEFT JOIN training.images i ON i.class_id = c.id
WHERE d.name = 'alice chain' GROUP BY 1, 2;
DELETE FROM training.datasets WHERE name = 'alice chain';

-- Alice cannot forge the owner, on insert or on update.
SELECT try($$INSERT INTO training.datasets (name, type, owner) VALUES ('x', 'face', 'regress_bob')$$);
SELECT try($$UPDATE training.datasets SET owner = 'regress_bob'$$);
RESET ROLE;

-- A model and a training of Alice's, as the worker would leave them (it runs as superuser).
SET session_replication_role = replica;
INSERT INTO training.models (owner, name, type) VALUES ('regress_alice', 'alice model', 'face')
    RETURNING id AS a_model \gset
INSERT INTO training.trainings (owner, source_dataset_id, output_model_name, type, state, progress,
                                duration, output_model_id, output_model_version)
VALUES ('regress_alice', :'a_ds', 'alice model', 'face', 'completed', 1, 2.8, :'a_model', 1)
    RETURNING id AS a_tr \gset
INSERT INTO training.model_versions (owner, model_id, version_number, training_id, parameters)
VALUES ('regress_alice', :'a_model', 1, :'a_tr', '\x00') RETURNING id AS a_ver \gset
UPDATE training.trainings SET output_model_version_id = :'a_ver' WHERE id = :'a_tr';
UPDATE training.models SET last_version = 1 WHERE id = :'a_model';
RESET session_replication_role;

---------------------------------------------------------------------------
-- Bob sees none of it and cannot touch it through the tables.
SET ROLE regress_bob;
SELECT (SELECT count(*) FROM training.datasets) AS datasets,
       (SELECT count(*) FROM training.classes) AS classes,
       (SELECT count(*) FROM training.images) AS images,
       (SELECT count(*) FROM training.trainings) AS trainings,
       (SELECT count(*) FROM training.models) AS models,
       (SELECT count(*) FROM training.model_versions) AS versions,
       (SELECT count(*) FROM training.status) AS status;
SELECT try(format('SELECT * FROM training.datasets WHERE id = %L', :'a_ds'));
SELECT try(format('UPDATE training.datasets SET name = %L WHERE id = %L', 'mine', :'a_ds'));
SELECT try(format('UPDATE training.classes SET label = %L WHERE id = %L', 'mine', :'a_cls'));
SELECT try(format('UPDATE training.images SET active = false WHERE id = %L', :'a_img'));
SELECT try(format('UPDATE training.trainings SET output_model_name = %L WHERE id = %L', 'x', :'a_tr'));
SELECT try(format('DELETE FROM training.images WHERE id = %L', :'a_img'));
SELECT try(format('DELETE FROM training.classes WHERE id = %L', :'a_cls'));
SELECT try(format('DELETE FROM training.trainings WHERE id = %L', :'a_tr'));
SELECT try(format('DELETE FROM training.model_versions WHERE id = %L', :'a_ver'));
SELECT try(format('DELETE FROM training.models WHERE id = %L', :'a_model'));
SELECT try(format('DELETE FROM training.datasets WHERE id = %L', :'a_ds'));
-- Through the functions, each of Alice's ids is "not found" (P0002), as an id that never
-- existed would be; the list functions show Bob nothing.
SELECT fn, try(stmt) FROM (VALUES
    ('get_dataset',      format('SELECT training.get_dataset(%L)', :'a_ds')),
    ('update_dataset',   format('SELECT training.update_dataset(%L, name => %L)', :'a_ds', 'mine')),
    ('delete_dataset',   format('SELECT training.delete_dataset(%L)', :'a_ds')),
    ('create_class',     format('SELECT training.create_class(%L, %L)', :'a_ds', 'Bo')),
    ('list_classes',     format('SELECT training.list_classes(%L)', :'a_ds')),
    ('get_class',        format('SELECT training.get_class(%L)', :'a_cls')),
    ('update_class',     format('SELECT training.update_class(%L, label => %L)', :'a_cls', 'mine')),
    ('delete_class',     format('SELECT training.delete_class(%L)', :'a_cls')),
    ('add_image',        format('SELECT training.add_image(%L, tiny_pgm())', :'a_cls')),
    ('list_images',      format('SELECT training.list_images(%L)', :'a_cls')),
    ('get_image',        format('SELECT training.get_image(%L)', :'a_img')),
    ('update_image',     format('SELECT training.update_image(%L, active => false)', :'a_img')),
    ('delete_image',     format('SELECT training.delete_image(%L)', :'a_img')),
    ('create_training',  format('SELECT training.create_training(%L, %L)', :'a_ds', 'stolen')),
    ('get_training',     format('SELECT training.get_training(%L)', :'a_tr')),
    ('delete_training',  format('SELECT training.delete_training(%L)', :'a_tr')),
    ('get_model id',     format('SELECT training.get_model(%L)', :'a_model')),
    ('get_model name',   $$SELECT training.get_model('alice model')$$),
    ('get_model name==1', $$SELECT training.get_model('alice model==1')$$),
    ('get_model version', format('SELECT training.get_model(%L)', :'a_ver')),
    ('resolve_model_version', $$SELECT training.resolve_model_version('alice model')$$),
    ('evaluate_dataset', format('SELECT training.evaluate_dataset(%L)', :'a_ds')),
    ('recognize name',   $$SELECT training.recognize('alice model', tiny_pgm())$$),
    ('recognize id',     format('SELECT training.recognize(%L, tiny_pgm())', :'a_model')),
    ('recognize version', format('SELECT training.recognize(%L, tiny_pgm())', :'a_ver')),
    ('delete_model id',  format('SELECT training.delete_model(%L)', :'a_model')),
    ('delete_model name', $$SELECT training.delete_model('alice model')$$)
) AS probes(fn, stmt);
SELECT training.list_datasets()->'total' AS datasets, training.list_trainings()->'total' AS trainings,
       training.list_models()->'total' AS models;
-- Called directly by Bob, the internal model renderer (C) returns nothing for her model.
SELECT training.model_json(:'a_model', 1) AS model_json, training.model_json(:'a_model', NULL) AS latest;
-- Nor can he hold her dataset's evaluation lock.
SELECT try(format('SELECT training.lock_dataset(%L)', :'a_ds'));

-- Nor attach his rows to hers (the API triggers answer first: her dataset is "not found").
SELECT try(format('INSERT INTO training.classes (dataset_id, reference, label) VALUES (%L, %L, %L)',
                  :'a_ds', 'bo', 'Bo'));
SELECT try(format('INSERT INTO training.images (class_id, data) VALUES (%L, tiny_pgm())', :'a_cls'));
SELECT try(format('INSERT INTO training.trainings (source_dataset_id, output_model_name) VALUES (%L, %L)',
                  :'a_ds', 'stolen'));
-- Models and versions are the worker's to write; the kept counts are the trigger's.
SELECT try(format('INSERT INTO training.models (name, type) VALUES (%L, %L)', 'm', 'face'));
SELECT try($$UPDATE training.training_counts SET n = n + 100$$);
SELECT count(*) AS counts_bob_sees FROM training.training_counts WHERE owner <> current_user;
-- Bob's own dataset and class; moving them under Alice's parents is refused (by the API's
-- triggers first: dataset_id and class_id are fixed at creation).
INSERT INTO training.datasets (name, type) VALUES ('bob places', 'landmark') RETURNING id AS b_ds \gset
INSERT INTO training.classes (dataset_id, reference, label) VALUES (:'b_ds', 'tower', 'Tower')
    RETURNING id AS b_cls \gset
INSERT INTO training.images (class_id, data) VALUES (:'b_cls', tiny_pgm()) RETURNING id AS b_img \gset
SELECT try(format('UPDATE training.classes SET dataset_id = %L WHERE id = %L', :'a_ds', :'b_cls'));
SELECT try(format('UPDATE training.images SET class_id = %L WHERE id = %L', :'a_cls', :'b_img'));
SELECT try($$UPDATE training.classes SET owner = 'regress_alice'$$);
RESET ROLE;

-- Alice's rows are all still there, unchanged.
SELECT (SELECT name FROM training.datasets WHERE id = :'a_ds') AS dataset,
       (SELECT label FROM training.classes WHERE id = :'a_cls') AS class,
       (SELECT active FROM training.images WHERE id = :'a_img') AS image_active,
       (SELECT output_model_name FROM training.trainings WHERE id = :'a_tr') AS training,
       (SELECT count(*) FROM training.model_versions WHERE model_id = :'a_model') AS versions;

---------------------------------------------------------------------------
-- The policies hold on their own, without the API's triggers (disabled here by replica mode):
-- foreign keys would accept each of these rows, row-level security refuses them. One
-- transaction, rolled back, so that no worker ever sees these rows.
BEGIN;
SET LOCAL session_replication_role = replica;
SET LOCAL ROLE regress_bob;
-- His own rows are fine.
SELECT try(format('INSERT INTO training.trainings (source_dataset_id, output_model_name, type) VALUES (%L, %L, %L)',
                  :'b_ds', 'mine', 'landmark'));
SELECT what, try(stmt) FROM (VALUES
    ('class in her dataset', format('INSERT INTO training.classes (dataset_id, reference, label) VALUES (%L, %L, %L)',
                                    :'a_ds', 'bo', 'Bo')),
    ('image in her class',   format('INSERT INTO training.images (class_id, data) VALUES (%L, tiny_pgm())', :'a_cls')),
    ('training on her data', format('INSERT INTO training.trainings (source_dataset_id, output_model_name, type) VALUES (%L, %L, %L)',
                                    :'a_ds', 'stolen', 'face')),
    ('class moved to her',   format('UPDATE training.classes SET dataset_id = %L WHERE id = %L', :'a_ds', :'b_cls')),
    ('image moved to her',   format('UPDATE training.images SET class_id = %L WHERE id = %L', :'a_cls', :'b_img')),
    ('dataset owned by her', $$INSERT INTO training.datasets (name, type, owner) VALUES ('x', 'face', 'regress_alice')$$),
    ('dataset given to her', $$UPDATE training.datasets SET owner = 'regress_alice'$$),
    ('class given to her',   $$UPDATE training.classes SET owner = 'regress_alice'$$),
    ('image given to her',   $$UPDATE training.images SET owner = 'regress_alice'$$),
    ('training given to her', $$UPDATE training.trainings SET owner = 'regress_alice'$$),
    ('training as hers',     format('INSERT INTO training.trainings (owner, source_dataset_id, output_model_name, type) VALUES (%L, %L, %L, %L)',
                                    'regress_alice', :'b_ds', 'x', 'landmark')),
    ('her training, read',   format('SELECT * FROM training.trainings WHERE id = %L', :'a_tr')),
    ('her dataset, update',  format('UPDATE training.datasets SET name = %L WHERE id = %L', 'x', :'a_ds')),
    ('her model, delete',    format('DELETE FROM training.models WHERE id = %L', :'a_model'))
) AS attempts(what, stmt);
ROLLBACK;

---------------------------------------------------------------------------
-- The admin sees every owner's rows.
SET ROLE regress_carol;
SELECT owner, name FROM training.datasets ORDER BY owner;
SELECT owner, model, state FROM training.status ORDER BY owner;
SELECT training.get_training(:'a_tr')->>'state' AS state,
       training.get_model('alice model')->>'name' AS model,
       training.list_datasets()->'total' AS datasets;
RESET ROLE;

---------------------------------------------------------------------------
-- The status view, under each role. Progress and times are set as the worker would; one
-- transaction, so that now() (and the running duration) is the same for every statement.
BEGIN;
SET LOCAL session_replication_role = replica;
INSERT INTO training.trainings (owner, source_dataset_id, output_model_name, type, state, progress,
                                time_created, time_started, stage)
VALUES ('regress_alice', :'a_ds', 'half way', 'face', 'processing', 0.5,
        now() - interval '1 minute', now() - interval '42 seconds', 'epoch 5/10'),
       ('regress_alice', :'a_ds', 'broken', 'face', 'failed', 0.25,
        now() - interval '2 minutes', NULL, ''),
       ('regress_bob', :'b_ds', 'bob waits', 'landmark', 'waiting', 0,
        now(), NULL, '');
UPDATE training.trainings SET error = 'no usable face: 40 images skipped (12 smaller than min_face_size 80, 28 below sharpness_threshold 40)'
WHERE output_model_name = 'broken';
SET LOCAL session_replication_role = origin;
SET LOCAL ROLE regress_alice;
SELECT model, state, progress, duration, stage, error, owner FROM training.status;
SET LOCAL ROLE regress_bob;
SELECT model, state, progress, duration, owner FROM training.status;
ROLLBACK;

---------------------------------------------------------------------------
-- grant_access is for superusers and admins; revoke_access closes the schema again.
SET ROLE regress_bob;
SELECT try($$SELECT training.grant_access('regress_nobody')$$);
RESET ROLE;
SET ROLE regress_nobody;
SELECT try($$SELECT count(*) FROM training.datasets$$);
SELECT try($$SELECT count(*) FROM training.status$$);
SELECT try($$SELECT training.list_datasets()$$);
RESET ROLE;
SET ROLE regress_carol;
SELECT training.grant_access('regress_nobody');
RESET ROLE;
SET ROLE regress_nobody;
SELECT try($$SELECT count(*) FROM training.datasets$$);
SELECT training.list_datasets()->'total' AS total;
RESET ROLE;
SELECT training.revoke_access('regress_nobody');
SET ROLE regress_nobody;
SELECT try($$SELECT count(*) FROM training.datasets$$);
SELECT try($$SELECT training.list_datasets()$$);
RESET ROLE;
SELECT try($$SELECT training.grant_access(NULL)$$);
SELECT try($$SELECT training.grant_access('no_such_role')$$);
SELECT try($$SELECT training.revoke_access(relowner::regrole) FROM pg_class WHERE oid = 'training.trainings'::regclass$$);

---------------------------------------------------------------------------
-- \dx+ training and \d+ read well only if every object is commented: list those that are not.
SELECT 'function ' || p.oid::regprocedure AS uncommented FROM pg_proc p
WHERE p.pronamespace = 'training'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
UNION ALL
SELECT 'relation ' || c.oid::regclass FROM pg_class c
WHERE c.relnamespace = 'training'::regnamespace AND c.relkind IN ('r', 'v', 'm')
  AND obj_description(c.oid, 'pg_class') IS NULL
UNION ALL
SELECT 'column ' || c.oid::regclass || '.' || a.attname FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = 'training'::regnamespace AND c.relkind IN ('r', 'v', 'm')
  AND col_description(c.oid, a.attnum) IS NULL
UNION ALL
SELECT 'policy ' || pol.polname FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid
WHERE c.relnamespace = 'training'::regnamespace AND obj_description(pol.oid, 'pg_policy') IS NULL
ORDER BY 1;

---------------------------------------------------------------------------
-- Clean up the cluster-wide roles.
DELETE FROM training.trainings;
DELETE FROM training.models;
DELETE FROM training.datasets;
DROP OWNED BY regress_alice, regress_bob, regress_carol, regress_nobody;
DROP ROLE regress_alice, regress_bob, regress_carol, regress_nobody;
DROP FUNCTION public.try(text), public.tiny_pgm();
