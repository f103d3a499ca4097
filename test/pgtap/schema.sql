-- pgTAP: the schema of the training extension (tables, keys, foreign keys, indexes, triggers,
-- function signatures, comments, pg_dump registration). Run by scripts/test-all.sh.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS training;
SELECT plan(146);

-- Tables and primary keys.
SELECT tables_are('training',
    ARRAY['datasets', 'classes', 'images', 'trainings', 'models', 'model_versions', 'training_counts',
          'image_features']);
SELECT col_is_pk('training', t, 'id', t || ' has primary key id')
  FROM unnest(ARRAY['datasets', 'classes', 'images', 'trainings', 'models', 'model_versions']) t;
SELECT col_type_is('training', t, 'id', 'uuid', t || '.id is a uuid')
  FROM unnest(ARRAY['datasets', 'classes', 'images', 'trainings', 'models', 'model_versions']) t;
SELECT col_type_is('training', t, 'owner', 'name', t || '.owner is a name')
  FROM unnest(ARRAY['datasets', 'classes', 'images', 'trainings', 'models', 'model_versions']) t;
SELECT col_default_is('training', t, 'owner', 'CURRENT_USER', t || '.owner defaults to current_user')
  FROM unnest(ARRAY['datasets', 'classes', 'images', 'trainings', 'models', 'model_versions']) t;

-- Foreign keys.
SELECT fk_ok('training', 'classes', 'dataset_id', 'training', 'datasets', 'id');
SELECT fk_ok('training', 'images', 'class_id', 'training', 'classes', 'id');
SELECT fk_ok('training', 'trainings', 'source_dataset_id', 'training', 'datasets', 'id');
SELECT fk_ok('training', 'trainings', 'output_model_id', 'training', 'models', 'id');
SELECT fk_ok('training', 'model_versions', 'model_id', 'training', 'models', 'id');
SELECT fk_ok('training', 'model_versions', 'training_id', 'training', 'trainings', 'id');

-- The columns other parts rely on (CONTRACTS.md 1).
SELECT has_column('training', 'trainings', c, 'trainings.' || c)
  FROM unnest(ARRAY['state', 'error', 'progress', 'duration', 'stage', 'attempts', 'worker_pid',
                    'output_model_id', 'output_model_version', 'time_started', 'time_completed',
                    'owner', 'config', 'type', 'source_dataset_id', 'output_model_name',
                    'output_model_description', 'output_model_changelog', 'time_created',
                    'worker', 'lease_expires']) c;
SELECT has_column('training', 'model_versions', c, 'model_versions.' || c)
  FROM unnest(ARRAY['model_id', 'version_number', 'training_id', 'changelog', 'dataset',
                    'parameters', 'metrics', 'owner']) c;
SELECT has_column('training', 'images', c, 'images.' || c)
  FROM unnest(ARRAY['data', 'format', 'width', 'height', 'face_box', 'active']) c;
SELECT has_column('training', 'classes', c, 'classes.' || c)
  FROM unnest(ARRAY['active', 'expiration_date', 'reference', 'label']) c;
SELECT has_column('training', 'models', c, 'models.' || c)
  FROM unnest(ARRAY['owner', 'name', 'type', 'description']) c;
SELECT col_type_is('training', 'images', 'face_box', 'integer[]', 'images.face_box is int[]');
SELECT col_type_is('training', 'trainings', 'config', 'jsonb', 'trainings.config is jsonb');
SELECT col_type_is('training', 'trainings', 'progress', 'double precision', 'trainings.progress is float8');
SELECT col_type_is('training', 'model_versions', 'parameters', 'bytea', 'model_versions.parameters is bytea');
SELECT col_is_unique('training', 'models', ARRAY['owner', 'name'], 'model names are unique per owner');
SELECT col_is_unique('training', 'model_versions', ARRAY['model_id', 'version_number'], 'version numbers are unique per model');
SELECT col_is_unique('training', 'classes', ARRAY['dataset_id', 'reference'], 'class references are unique per dataset');

-- Check constraints: state, type, progress.
SELECT col_has_check('training', 'trainings', 'state', 'trainings.state is checked');
SELECT col_has_check('training', 'trainings', 'type', 'trainings.type is checked');
SELECT col_has_check('training', 'trainings', 'progress', 'trainings.progress is checked');
SELECT col_has_check('training', 'datasets', 'type', 'datasets.type is checked');

-- Indexes the API and the worker need.
SELECT has_index('training', 'trainings', 'trainings_waiting_idx', ARRAY['time_created', 'id'], 'waiting trainings by time_created');
SELECT has_index('training', 'trainings', 'trainings_dataset_idx', ARRAY['source_dataset_id'], 'trainings by dataset');
SELECT has_index('training', 'trainings', 'trainings_created_idx', ARRAY['time_created', 'id'], 'trainings listed by time');
SELECT has_index('training', 'classes', 'classes_dataset_idx', ARRAY['dataset_id', 'time_created', 'id'], 'classes of a dataset');
SELECT has_index('training', 'images', 'images_class_idx', ARRAY['class_id', 'time_created', 'id'], 'images of a class');
SELECT has_index('training', 'model_versions', 'model_versions_training_idx', ARRAY['training_id'], 'version of a training');
SELECT is((SELECT pg_get_expr(indpred, indrelid) FROM pg_index
            WHERE indexrelid = 'training.trainings_waiting_idx'::regclass),
          '(state = ''waiting''::text)', 'the waiting index is partial');

-- Triggers that make the tables an API.
SELECT has_trigger('training', 'trainings', 'trainings_before', 'trainings are validated and guarded');
SELECT has_trigger('training', 'datasets', 'datasets_before', 'datasets are validated');
SELECT has_trigger('training', 'classes', 'classes_before', 'classes are validated');
SELECT has_trigger('training', 'images', 'images_before', 'images are validated');
SELECT has_trigger('training', 'images', 'images_count_insert', 'image counters on insert');
SELECT has_trigger('training', 'classes', 'classes_count_delete', 'class counters on delete');

-- The SQL API: names, argument types and return types (DESIGN.md).
SELECT function_returns('training', f, args, ret, format('%s(%s) returns %s', f, array_to_string(args, ', '), ret))
  FROM (VALUES
    ('create_dataset', ARRAY['text', 'text', 'text'], 'jsonb'),
    ('get_dataset', ARRAY['uuid'], 'jsonb'),
    ('list_datasets', ARRAY['integer', 'integer'], 'jsonb'),
    ('update_dataset', ARRAY['uuid', 'text', 'text'], 'jsonb'),
    ('delete_dataset', ARRAY['uuid'], 'void'),
    ('create_class', ARRAY['uuid', 'text', 'text', 'boolean', 'text', 'timestamp with time zone'], 'jsonb'),
    ('get_class', ARRAY['uuid'], 'jsonb'),
    ('list_classes', ARRAY['uuid', 'integer', 'integer'], 'jsonb'),
    ('update_class', ARRAY['uuid', 'text', 'text', 'boolean', 'text', 'timestamp with time zone'], 'jsonb'),
    ('delete_class', ARRAY['uuid'], 'void'),
    ('add_image', ARRAY['uuid', 'bytea', 'integer[]', 'boolean', 'text'], 'jsonb'),
    ('get_image', ARRAY['uuid'], 'jsonb'),
    ('list_images', ARRAY['uuid', 'integer', 'integer'], 'jsonb'),
    ('update_image', ARRAY['uuid', 'integer[]', 'boolean', 'text'], 'jsonb'),
    ('delete_image', ARRAY['uuid'], 'void'),
    ('create_training', ARRAY['uuid', 'text', 'text', 'text', 'jsonb'], 'jsonb'),
    ('get_training', ARRAY['uuid'], 'jsonb'),
    ('list_trainings', ARRAY['integer', 'integer', 'text'], 'jsonb'),
    ('delete_training', ARRAY['uuid'], 'void'),
    ('get_model', ARRAY['text'], 'jsonb'),
    ('list_models', ARRAY['integer', 'integer'], 'jsonb'),
    ('delete_model', ARRAY['text'], 'void'),
    ('resolve_model_version', ARRAY['text'], 'training.model_versions')
  ) AS f(f, args, ret);

-- Argument names are part of the contract (named calls from PostgREST and ORMs).
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = sig::regprocedure), names, sig || ' argument names')
  FROM (VALUES
    ('training.create_dataset(text,text,text)', ARRAY['name', 'type', 'description']),
    ('training.get_dataset(uuid)', ARRAY['id']),
    ('training.list_datasets(integer,integer)', ARRAY['limit', 'offset']),
    ('training.update_dataset(uuid,text,text)', ARRAY['id', 'name', 'description']),
    ('training.create_class(uuid,text,text,boolean,text,timestamptz)',
        ARRAY['dataset_id', 'label', 'reference', 'active', 'notes', 'expiration_date']),
    ('training.list_classes(uuid,integer,integer)', ARRAY['dataset_id', 'limit', 'offset']),
    ('training.add_image(uuid,bytea,integer[],boolean,text)', ARRAY['class_id', 'data', 'face_box', 'active', 'notes']),
    ('training.list_images(uuid,integer,integer)', ARRAY['class_id', 'limit', 'offset']),
    ('training.create_training(uuid,text,text,text,jsonb)',
        ARRAY['source_dataset_id', 'output_model_name', 'output_model_description', 'output_model_changelog', 'config']),
    ('training.get_training(uuid)', ARRAY['id']),
    ('training.list_trainings(integer,integer,text)', ARRAY['limit', 'offset', 'state']),
    ('training.delete_training(uuid)', ARRAY['id']),
    ('training.get_model(text)', ARRAY['model']),
    ('training.list_models(integer,integer)', ARRAY['limit', 'offset']),
    ('training.delete_model(text)', ARRAY['model']),
    ('training.resolve_model_version(text)', ARRAY['model'])
  ) AS s(sig, names);

-- The API runs as the caller (row-level security applies inside it). Only grant_access and
-- revoke_access, and the internal triggers that keep derived rows (the counters, the counts of
-- trainings, the objects of a changed dataset's waiting trainings, the embedding store's rows of a
-- changed image) as the tables' owner, are SECURITY DEFINER.
SELECT is((SELECT count(*) FROM pg_proc p
            WHERE p.pronamespace = 'training'::regnamespace AND p.prosecdef
              AND p.proname NOT IN ('grant_access', 'revoke_access',
                                    '_images_count', '_images_outdate', '_classes_count',
                                    '_trainings_count', '_datasets_follow',
                                    '_images_features_forget')), 0::bigint,
          'no API function is SECURITY DEFINER');
-- training-worker's functions check the claim and write as the owner, for training_worker only.
SELECT is((SELECT count(*) FROM pg_proc p
            WHERE p.pronamespace = 'training_worker'::regnamespace
              AND p.prosecdef AND has_function_privilege('training_worker', p.oid, 'EXECUTE')
              AND p.proconfig @> ARRAY['training.worker_scope=on', 'search_path=pg_catalog, pg_temp']), 9::bigint,
          'the 9 training_worker.* functions: SECURITY DEFINER, pinned search_path, for training_worker');
SELECT is((SELECT count(*) FROM pg_proc p
            WHERE p.pronamespace IN ('training'::regnamespace, 'training_worker'::regnamespace) AND p.prosecdef
              AND has_function_privilege('public', p.oid, 'EXECUTE')), 0::bigint,
          'no SECURITY DEFINER function is executable by PUBLIC');

-- The kept counts: one row per owner, state and writing backend; tenants read only theirs.
SELECT col_is_pk('training', 'training_counts', ARRAY['owner', 'state', 'slot'],
                 'training_counts has primary key (owner, state, slot)');
SELECT ok(NOT has_table_privilege('public', 'training.training_counts', 'INSERT, UPDATE, DELETE, TRUNCATE'),
          'no one but the trigger writes training_counts');

-- Everything is documented.
SELECT is((SELECT count(*) FROM pg_class c
            WHERE c.relnamespace = 'training'::regnamespace AND c.relkind IN ('r', 'v')
              AND obj_description(c.oid, 'pg_class') IS NULL), 0::bigint, 'every table has a comment');
SELECT is((SELECT array_agg(c.relname || '.' || a.attname) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE c.relnamespace = 'training'::regnamespace AND c.relkind = 'r'
              AND a.attnum > 0 AND NOT a.attisdropped
              AND col_description(c.oid, a.attnum) IS NULL), NULL, 'every column has a comment');
SELECT is((SELECT array_agg(p.oid::regprocedure::text) FROM pg_proc p
            WHERE p.pronamespace IN ('training'::regnamespace, 'training_worker'::regnamespace)
              AND obj_description(p.oid, 'pg_proc') IS NULL), NULL, 'every function has a comment');

-- User rows survive pg_dump: every table is registered with pg_extension_config_dump.
SELECT set_eq(
    $$SELECT unnest(extconfig)::regclass::text FROM pg_extension WHERE extname = 'training'$$,
    ARRAY['training.datasets', 'training.classes', 'training.images', 'training.trainings',
          'training.models', 'training.model_versions', 'training.image_features'],
    'every table is dumped by pg_dump');

SELECT * FROM finish();
ROLLBACK;
