-- Foundation: datasets, classes, images, trainings and models through the SQL API and the
-- tables. Everything runs in one transaction that is rolled back, so that a background
-- worker never sees (and never changes) the trainings created here.
\set VERBOSITY terse
-- Without the preloaded library, create_training warns that nothing will run the training.
SET client_min_messages = error;
BEGIN;
DROP EXTENSION IF EXISTS training CASCADE;
CREATE EXTENSION training;

-- err(sql): run a statement and show its SQLSTATE, message and hint (uuids masked).
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; hint text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN st || ': ' || regexp_replace(msg, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g')
        || E'\n  hint: ' || coalesce(hint, '');
END $$;

-- pgm(w, h, v): a binary PGM image of w x h pixels of grey value v.
CREATE FUNCTION pg_temp.pgm(w int, h int, v int DEFAULT 128) RETURNS bytea LANGUAGE sql AS $$
    SELECT convert_to(format(E'P5\n%s %s\n255\n', w, h), 'UTF8')
        || decode(repeat(lpad(to_hex(v), 2, '0'), w * h), 'hex')
$$;

-- keys(j): the sorted top-level keys of an object.
CREATE FUNCTION pg_temp.keys(j jsonb) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(j) k
$$;

-- state(): a fingerprint of every table, to show that a failed call changed nothing.
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(d::text, ',' ORDER BY d.id) FROM training.datasets d),
        (SELECT string_agg(c::text, ',' ORDER BY c.id) FROM training.classes c),
        (SELECT string_agg(i::text, ',' ORDER BY i.id) FROM training.images i),
        (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM training.trainings t),
        (SELECT string_agg(m::text, ',' ORDER BY m.id) FROM training.models m),
        (SELECT string_agg(v::text, ',' ORDER BY v.id) FROM training.model_versions v)))
$$;

-- The seed's example of a completed training (../shared/seed/training-resource.txt).
CREATE TEMP TABLE seed AS SELECT '{
"id": "a09d87ed-1c12-4ea5-827e-906634626797",
"type": "face",
"state": "completed",
"progress": 1.0,
"duration": 2.8,
"error": "",
"time_created": "2020-12-15 12:34:18.237000",
"time_started": "2020-12-15 12:55:35.712000",
"time_completed": "2020-12-15 12:56:18.601000",
"source_dataset": {
"id": "b97e20c8-3e68-4831-8eaf-e7a592d3a802",
"name": "Test",
"description": "A test dataset",
"version": 1.0,
"type": "face",
"time_created": "2020-10-30 17:34:41.480000",
"time_updated": "2020-10-30 17:34:41.480000",
"number_of_classes": 0,
"number_of_active_classes": 0,
"number_of_images": 0,
"number_of_active_images": 0,
"preview_images": [],
"evaluation_result": {"gender_statistics": {"male": 5}},
"evaluation_state": 0,
"issues": {"has_error": true, "has_warning": false}
},
"output_model_name": "My Model",
"output_model": null,
"config": {},
"output_model_description": "This is a model which training was started via Postman",
"output_model_changelog": "initial training"
}'::jsonb AS j;

------------------------------------------------------------------------------------------------
-- Datasets
------------------------------------------------------------------------------------------------
SELECT training.create_dataset('Test', 'face', 'A test dataset') AS d \gset
SELECT (:'d'::jsonb) ->> 'id' AS did \gset
-- The Dataset object has the seed's keys, version 1.0, counts 0, times in the seed's format.
SELECT pg_temp.keys(:'d'::jsonb) = pg_temp.keys(j -> 'source_dataset') AS seed_keys FROM seed;
SELECT (:'d'::jsonb) - 'id' - 'time_created' - 'time_updated' AS dataset;
SELECT (:'d'::jsonb) ->> 'version' AS version_text,
       (:'d'::jsonb) ->> 'time_created' ~ '^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$' AS time_format,
       ((:'d'::jsonb) ->> 'time_created' || '+00')::timestamptz BETWEEN now() AND clock_timestamp() AS utc;
SELECT training.get_dataset(:'did') = :'d'::jsonb AS get_equals_create;
SELECT training.update_dataset(:'did', description => 'Faces') ->> 'description' AS updated;
SELECT training.update_dataset(:'did', name => 'Renamed') - 'id' - 'time_created' - 'time_updated' AS renamed;
SELECT training.create_dataset(name => 'Places', type => 'landmark') ->> 'id' AS lid \gset
SELECT training.create_dataset('Third', 'face') ->> 'id' AS third \gset

-- Bad input: empty names, unknown types, unknown ids, NULL ids.
SELECT pg_temp.err($$SELECT training.create_dataset('', 'face')$$);
SELECT pg_temp.err($$SELECT training.create_dataset('   ', 'face')$$);
SELECT pg_temp.err($$SELECT training.create_dataset(NULL, 'face')$$);
SELECT pg_temp.err($$SELECT training.create_dataset('x', 'voice')$$);
SELECT pg_temp.err($$SELECT training.create_dataset('x', NULL)$$);
SELECT pg_temp.err($$SELECT training.get_dataset('00000000-0000-0000-0000-000000000000')$$);
SELECT pg_temp.err($$SELECT training.get_dataset(NULL)$$);
SELECT pg_temp.err($$SELECT training.get_dataset('not-a-uuid')$$);
SELECT pg_temp.err($$SELECT training.update_dataset('00000000-0000-0000-0000-000000000000', 'x')$$);
SELECT pg_temp.err(format('SELECT training.update_dataset(%L, name => %L)', :'did', ''));
SELECT pg_temp.err($$SELECT training.delete_dataset('00000000-0000-0000-0000-000000000000')$$);
-- The type is fixed at creation; counters and times are read-only.
SELECT pg_temp.err(format('UPDATE training.datasets SET type = %L WHERE id = %L', 'landmark', :'did'));
SELECT pg_temp.err(format('UPDATE training.datasets SET number_of_images = 7 WHERE id = %L', :'did'));
SELECT pg_temp.err(format('UPDATE training.datasets SET time_created = now() - interval %L WHERE id = %L', '1 day', :'did'));
SELECT pg_temp.err($$INSERT INTO training.datasets (name, type, owner) VALUES ('x', 'face', 'nobody')$$);

-- Lists: the envelope, paging and its limits.
SELECT l - 'data' AS envelope, jsonb_array_length(l -> 'data') AS n
  FROM (SELECT training.list_datasets() AS l) x;
SELECT l - 'data' AS envelope, l -> 'data' -> 0 ->> 'name' AS first
  FROM (SELECT training.list_datasets("limit" => 1) AS l) x;
SELECT l - 'data' AS envelope, l -> 'data' -> 0 ->> 'name' AS name
  FROM (SELECT training.list_datasets("limit" => 1, "offset" => 1) AS l) x;
SELECT l - 'data' AS envelope FROM (SELECT training.list_datasets(2, 2) AS l) x;
SELECT l - 'data' AS envelope FROM (SELECT training.list_datasets(10, 5) AS l) x;
SELECT pg_temp.err($$SELECT training.list_datasets("limit" => 0)$$);
SELECT pg_temp.err($$SELECT training.list_datasets("limit" => 1001)$$);
SELECT pg_temp.err($$SELECT training.list_datasets("offset" => -1)$$);
SELECT pg_temp.err($$SELECT training.list_datasets(NULL)$$);

------------------------------------------------------------------------------------------------
-- Classes
------------------------------------------------------------------------------------------------
SELECT training.create_class(:'did', 'Alice') AS c \gset
SELECT (:'c'::jsonb) ->> 'id' AS alice \gset
SELECT pg_temp.keys(:'c'::jsonb) AS class_keys;
-- The reference defaults to the class id.
SELECT (:'c'::jsonb) ->> 'reference' = :'alice' AS reference_is_id,
       (:'c'::jsonb) - 'id' - 'reference' - 'dataset_id' - 'time_created' - 'time_updated' AS class;
SELECT training.create_class(dataset_id => :'did', label => 'Bob', reference => 'bob', notes => 'n') ->> 'id' AS bob \gset
SELECT training.create_class(:'did', 'Carol', 'carol', active => false) ->> 'id' AS carol \gset
SELECT training.create_class(:'did', 'Dave', 'dave', expiration_date => now() - interval '1 hour') ->> 'id' AS dave \gset
SELECT training.get_class(:'bob') - 'id' - 'dataset_id' - 'time_created' - 'time_updated' AS bob;
SELECT training.get_class(:'dave') ->> 'expired' AS dave_expired,
       training.get_class(:'dave') ->> 'expiration_date' ~ '^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$' AS time_format;
SELECT pg_temp.err(format('SELECT training.create_class(%L, %L, %L)', :'did', 'Bob again', 'bob'));
SELECT pg_temp.err(format('SELECT training.create_class(%L, %L)', :'did', ''));
SELECT pg_temp.err(format('SELECT training.create_class(%L, %L, %L)', :'did', 'x', ''));
SELECT pg_temp.err($$SELECT training.create_class('00000000-0000-0000-0000-000000000000', 'x')$$);
SELECT pg_temp.err($$SELECT training.get_class('00000000-0000-0000-0000-000000000000')$$);
SELECT pg_temp.err($$SELECT training.list_classes('00000000-0000-0000-0000-000000000000')$$);
SELECT pg_temp.err(format('UPDATE training.classes SET dataset_id = %L WHERE id = %L', :'lid', :'bob'));
SELECT pg_temp.err(format('UPDATE training.classes SET number_of_images = 3 WHERE id = %L', :'bob'));
SELECT regexp_replace((l - 'data')::text, '[0-9a-f-]{36}', '<uuid>') AS envelope
  FROM (SELECT training.list_classes(:'did', 2) AS l) x;
SELECT training.update_class(:'bob', label => 'Robert', notes => 'renamed') - 'id' - 'dataset_id' - 'time_created' - 'time_updated' AS robert;

------------------------------------------------------------------------------------------------
-- Images and the derived counts
------------------------------------------------------------------------------------------------
SELECT training.add_image(:'alice', pg_temp.pgm(8, 8), face_box => '{1,2,4,5}') AS i \gset
SELECT (:'i'::jsonb) ->> 'id' AS img1 \gset
SELECT pg_temp.keys(:'i'::jsonb) AS image_keys;
SELECT (:'i'::jsonb) -> 'face_box' AS face_box, (:'i'::jsonb) ->> 'uri' = 'image://' || :'img1' AS uri,
       (:'i'::jsonb) -> 'size' AS size, (:'i'::jsonb) -> 'active' AS active;
SELECT training.add_image(:'alice', pg_temp.pgm(8, 8), active => false) ->> 'id' AS img2 \gset
SELECT training.add_image(:'bob', pg_temp.pgm(8, 8)) ->> 'id' AS img3 \gset
SELECT training.add_image(:'carol', pg_temp.pgm(8, 8)) ->> 'id' AS img4 \gset
SELECT training.add_image(:'dave', pg_temp.pgm(8, 8)) ->> 'id' AS img5 \gset
-- Direct inserts count the same as add_image.
INSERT INTO training.images (class_id, data) SELECT :'bob', pg_temp.pgm(8, 8) FROM generate_series(1, 3);
-- 4 classes (Carol inactive, Dave expired): 8 images, active ones are Alice's 1 and Bob's 4.
SELECT d ->> 'number_of_classes' AS classes, d ->> 'number_of_active_classes' AS active_classes,
       d ->> 'number_of_images' AS images, d ->> 'number_of_active_images' AS active_images,
       d -> 'preview_images' = jsonb_build_array('image://' || :'img1', 'image://' || :'img3', 'image://' || :'img4')
           AS previews_first_image_of_first_three_classes
  FROM (SELECT training.get_dataset(:'did') AS d) x;
SELECT training.get_class(:'alice') -> 'number_of_images' AS alice_images,
       training.get_class(:'alice') -> 'number_of_active_images' AS alice_active,
       training.get_class(:'alice') ->> 'preview_image' = 'image://' || :'img1' AS alice_preview;
-- Counts follow updates and deletes of images and classes, and the expiration.
SELECT training.update_image(:'img2', active => true) -> 'active' AS img2_active;
SELECT training.update_class(:'carol', active => true) -> 'active' AS carol_active;
SELECT training.update_class(:'dave', expiration_date => 'infinity') -> 'expiration_date' AS dave_expires;
SELECT d ->> 'number_of_active_classes' AS active_classes, d ->> 'number_of_active_images' AS active_images
  FROM (SELECT training.get_dataset(:'did') AS d) x;
SELECT training.update_class(:'dave', expiration_date => now() + interval '1 day') ->> 'expired' AS dave_expired;
SELECT training.delete_image(:'img1');
SELECT training.delete_class(:'bob');
SELECT d ->> 'number_of_classes' AS classes, d ->> 'number_of_active_classes' AS active_classes,
       d ->> 'number_of_images' AS images, d ->> 'number_of_active_images' AS active_images,
       d -> 'preview_images' = jsonb_build_array('image://' || :'img2', 'image://' || :'img4', 'image://' || :'img5')
           AS previews
  FROM (SELECT training.get_dataset(:'did') AS d) x;
-- The counters agree with counting.
SELECT d.number_of_classes = (SELECT count(*) FROM training.classes c WHERE c.dataset_id = d.id) AS classes_ok,
       d.number_of_images = (SELECT count(*) FROM training.images i JOIN training.classes c ON c.id = i.class_id
                              WHERE c.dataset_id = d.id) AS images_ok
  FROM training.datasets d WHERE d.id = :'did';
-- Face boxes: four non-negative numbers with positive size; '{}' removes the box.
SELECT pg_temp.err(format('SELECT training.add_image(%L, %L, %L)', :'alice', pg_temp.pgm(8, 8), '{1,2,3}'));
SELECT pg_temp.err(format('SELECT training.add_image(%L, %L, %L)', :'alice', pg_temp.pgm(8, 8), '{-1,0,3,3}'));
SELECT pg_temp.err(format('SELECT training.add_image(%L, %L, %L)', :'alice', pg_temp.pgm(8, 8), '{0,0,0,3}'));
SELECT pg_temp.err(format('SELECT training.add_image(%L, NULL)', :'alice'));
SELECT pg_temp.err(format('SELECT training.add_image(%L, %L)', '00000000-0000-0000-0000-000000000000', pg_temp.pgm(2, 2)));
SELECT pg_temp.err($$SELECT training.get_image('00000000-0000-0000-0000-000000000000')$$);
SELECT pg_temp.err($$SELECT training.list_images('00000000-0000-0000-0000-000000000000')$$);
SELECT pg_temp.err(format('UPDATE training.images SET class_id = %L WHERE id = %L', :'carol', :'img2'));
SELECT training.update_image(:'img2', face_box => '{0,0,4,4}') -> 'face_box' AS boxed;
SELECT training.update_image(:'img2', face_box => '{}') -> 'face_box' AS unboxed;
SELECT l - 'data' AS envelope, jsonb_array_length(l -> 'data') AS n
  FROM (SELECT training.list_images(:'alice') AS l) x;

------------------------------------------------------------------------------------------------
-- Trainings
------------------------------------------------------------------------------------------------
SELECT training.create_training(:'did', 'My Model', 'A face model', 'initial training',
                                '{"min_face_size": 40}') AS t \gset
SELECT (:'t'::jsonb) ->> 'id' AS tid \gset
-- get_training has exactly the seed's keys, and its dataset exactly the seed's dataset keys.
SELECT pg_temp.keys(:'t'::jsonb) = pg_temp.keys(j) AS seed_keys,
       pg_temp.keys((:'t'::jsonb) -> 'source_dataset') = pg_temp.keys(j -> 'source_dataset') AS seed_dataset_keys
  FROM seed;
SELECT pg_temp.keys(training.get_training(:'tid')) = pg_temp.keys(j) AS get_seed_keys FROM seed;
SELECT (:'t'::jsonb) - 'id' - 'time_created' - 'source_dataset' AS training;
SELECT (:'t'::jsonb) -> 'source_dataset' = training.get_dataset(:'did') AS nested_dataset,
       (:'t'::jsonb) ->> 'time_created' ~ '^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$' AS time_format;
SELECT training.get_training(:'tid') = :'t'::jsonb AS get_equals_create;
-- The config is stored as sent; landmark trainings get the landmark type.
-- Created means trainable: a dataset needs two active classes with active images.
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L)', :'lid', 'Places model'));
SELECT training.create_class(:'lid', 'Tower') ->> 'id' AS tower \gset
SELECT training.add_image(:'tower', pg_temp.pgm(8, 8)) IS NOT NULL AS added;
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L)', :'lid', 'Places model'));
SELECT training.create_class(:'lid', 'Bridge') ->> 'id' AS bridge \gset
SELECT training.add_image(:'bridge', pg_temp.pgm(8, 8)) IS NOT NULL AS added;
SELECT training.get_dataset(:'lid') -> 'issues' AS issues;
SELECT training.create_training(:'lid', 'Places model') - 'id' - 'time_created' - 'source_dataset' AS landmark;
SELECT training.create_training(:'did', 'Defaults', config => '{"sharpness_threshold": 0, "min_face_size": 1}') -> 'config' AS config;

-- Bad configs: 22023 naming the key and what is allowed.
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L, config => %L)', :'did', 'm', '[]'));
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L, config => %L)', :'did', 'm', '"x"'));
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L, config => %L)', :'did', 'm', '{"min_size": 3}'));
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L, config => %L)', :'did', 'm', '{"min_face_size": "80"}'));
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L, config => %L)', :'did', 'm', '{"min_face_size": 0}'));
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L, config => %L)', :'did', 'm', '{"min_face_size": 2.5}'));
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L, config => %L)', :'did', 'm', '{"sharpness_threshold": -1}'));
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L, config => %L)', :'did', 'm', '{"sharpness_threshold": 1e10}'));
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L, config => %L)', :'did', 'm', '{"sharpness_threshold": null}'));
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L, config => %L)', :'lid', 'm', '{"min_face_size": 80}'));
-- Other bad input.
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L)', :'did', ''));
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L)', :'did', 'a==2'));
SELECT pg_temp.err($$SELECT training.create_training('00000000-0000-0000-0000-000000000000', 'm')$$);
SELECT pg_temp.err($$SELECT training.create_training(NULL, 'm')$$);
SELECT pg_temp.err($$SELECT training.get_training('00000000-0000-0000-0000-000000000000')$$);
SELECT pg_temp.err($$SELECT training.get_training(NULL)$$);
SELECT pg_temp.err($$SELECT training.delete_training('00000000-0000-0000-0000-000000000000')$$);
SELECT pg_temp.err($$SELECT training.list_trainings(state => 'running')$$);
SELECT pg_temp.err($$SELECT training.list_trainings("limit" => 5000)$$);

-- The table is an API too: a direct INSERT validates and fills what create_training does.
INSERT INTO training.trainings (source_dataset_id, output_model_name, config)
VALUES (:'did', 'Direct', '{"min_face_size": 40}') RETURNING id AS direct \gset
SELECT training.get_training(:'direct') - 'id' - 'time_created' - 'source_dataset' AS direct_insert;
SELECT (training.get_training(:'direct') - 'id' - 'time_created' - 'output_model_name'
                                        - 'output_model_description' - 'output_model_changelog')
     = (:'t'::jsonb - 'id' - 'time_created' - 'output_model_name'
                    - 'output_model_description' - 'output_model_changelog' - 'source_dataset'
        || jsonb_build_object('source_dataset', training.get_dataset(:'did'))) AS same_as_function;
SELECT pg_temp.err(format('INSERT INTO training.trainings (source_dataset_id, output_model_name, config) VALUES (%L, %L, %L)',
                          :'did', 'Direct', '{"min_face_size": "big"}'));
SELECT pg_temp.err(format('INSERT INTO training.trainings (source_dataset_id, output_model_name, type) VALUES (%L, %L, %L)',
                          :'did', 'Direct', 'landmark'));
SELECT pg_temp.err($$INSERT INTO training.trainings (output_model_name) VALUES ('Direct')$$);
-- Read-only columns cannot be set by INSERT or UPDATE outside the background worker.
SELECT pg_temp.err(format('INSERT INTO training.trainings (source_dataset_id, output_model_name, state) VALUES (%L, %L, %L)',
                          :'did', 'Direct', 'completed'));
SELECT pg_temp.err(format('INSERT INTO training.trainings (source_dataset_id, output_model_name, progress) VALUES (%L, %L, 0.5)',
                          :'did', 'Direct'));
SELECT pg_temp.err(format('INSERT INTO training.trainings (source_dataset_id, output_model_name, time_started) VALUES (%L, %L, now())',
                          :'did', 'Direct'));
SELECT pg_temp.err(format('UPDATE training.trainings SET state = %L WHERE id = %L', 'completed', :'tid'));
SELECT pg_temp.err(format('UPDATE training.trainings SET progress = 1 WHERE id = %L', :'tid'));
SELECT pg_temp.err(format('UPDATE training.trainings SET error = %L WHERE id = %L', 'boom', :'tid'));
SELECT pg_temp.err(format('UPDATE training.trainings SET time_completed = now() WHERE id = %L', :'tid'));
SELECT pg_temp.err(format('UPDATE training.trainings SET type = %L WHERE id = %L', 'landmark', :'tid'));
SELECT pg_temp.err(format('UPDATE training.trainings SET owner = %L WHERE id = %L', 'nobody', :'tid'));
SELECT pg_temp.err(format('UPDATE training.trainings SET worker_pid = 1 WHERE id = %L', :'tid'));
-- A waiting training's settings can change, and are validated again.
UPDATE training.trainings SET config = '{"min_face_size": 100}' WHERE id = :'direct';
SELECT training.get_training(:'direct') -> 'config' AS changed_config;
SELECT pg_temp.err(format('UPDATE training.trainings SET config = %L WHERE id = %L', '{"min_face_size": -5}', :'direct'));
SELECT pg_temp.err(format('UPDATE training.trainings SET source_dataset_id = %L WHERE id = %L', :'lid', :'direct'));

-- A dataset that a waiting training uses cannot be deleted (55000), by function or table.
SELECT pg_temp.err(format('SELECT training.delete_dataset(%L)', :'did'));
SELECT pg_temp.err(format('DELETE FROM training.datasets WHERE id = %L', :'did'));

-- Lists of trainings: all, by state, paged.
SELECT l - 'data' AS envelope, jsonb_array_length(l -> 'data') AS n
  FROM (SELECT training.list_trainings() AS l) x;
SELECT l - 'data' AS envelope FROM (SELECT training.list_trainings(2, 0, 'waiting') AS l) x;
SELECT l - 'data' AS envelope FROM (SELECT training.list_trainings(state => 'completed') AS l) x;
SELECT bool_and(pg_temp.keys(e) = pg_temp.keys(s.j)) AS list_items_have_seed_keys
  FROM seed s, jsonb_array_elements(training.list_trainings() -> 'data') e;

-- Deleting: by function and by DELETE, the same.
SELECT training.delete_training(:'tid');
DELETE FROM training.trainings WHERE id = :'direct';
SELECT pg_temp.err(format('SELECT training.get_training(%L)', :'tid'));
SELECT pg_temp.err(format('SELECT training.get_training(%L)', :'direct'));
DELETE FROM training.trainings WHERE source_dataset_id = :'did';
SELECT training.delete_dataset(:'third');
SELECT pg_temp.err(format('SELECT training.get_dataset(%L)', :'third'));

------------------------------------------------------------------------------------------------
-- Models (written by the worker; inserted here directly to exercise the readers)
------------------------------------------------------------------------------------------------
INSERT INTO training.models (name, type, description) VALUES ('Faces', 'face', 'face model') RETURNING id AS mid \gset
INSERT INTO training.model_versions (model_id, version_number, changelog, parameters, metrics)
VALUES (:'mid', 1, 'first', '\x00', '{"accuracy": 0.5}'),
       (:'mid', 2, 'second', '\x01', '{"accuracy": 0.9}');
SELECT id AS v1 FROM training.model_versions WHERE model_id = :'mid' AND version_number = 1 \gset
SELECT training.get_model('Faces') - 'id' - 'version_id' - 'time_created' - 'time_updated' - 'version_time_created' AS latest;
SELECT training.get_model('Faces==1') -> 'version' AS v, training.get_model('Faces==1') -> 'metrics' AS metrics;
SELECT training.get_model(:'mid') -> 'version' AS by_model_id, training.get_model(:'v1') -> 'version' AS by_version_id;
SELECT (training.resolve_model_version('Faces')).version_number AS latest,
       (training.resolve_model_version('Faces==1')).changelog AS v1,
       (training.resolve_model_version(:'mid')).version_number AS by_model_id,
       (training.resolve_model_version(:'v1')).version_number AS by_version_id;
SELECT pg_temp.err($$SELECT training.resolve_model_version('Nope')$$);
SELECT pg_temp.err($$SELECT training.resolve_model_version('Faces==3')$$);
SELECT pg_temp.err($$SELECT training.resolve_model_version('Faces==x')$$);
SELECT pg_temp.err($$SELECT training.resolve_model_version('')$$);
SELECT pg_temp.err($$SELECT training.resolve_model_version('00000000-0000-0000-0000-000000000000')$$);
SELECT pg_temp.err($$SELECT training.get_model('Nope')$$);
SELECT l - 'data' AS envelope, l -> 'data' -> 0 ->> 'reference' AS reference
  FROM (SELECT training.list_models() AS l) x;
-- A training into an existing model must match its type.
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L)', :'lid', 'Faces'));
-- delete_model: name==N deletes that version, a name the whole model.
SELECT training.delete_model('Faces==2');
SELECT training.get_model('Faces') ->> 'reference' AS after_version_delete, training.get_model('Faces') -> 'versions' AS versions;
SELECT training.delete_model('Faces');
SELECT pg_temp.err($$SELECT training.get_model('Faces')$$);
SELECT pg_temp.err($$SELECT training.delete_model('Faces')$$);
SELECT pg_temp.err($$SELECT training.resolve_model_version('Faces')$$);

------------------------------------------------------------------------------------------------
-- Restoring a dump: a superuser with check_function_bodies and row_security off, as pg_dump's
-- scripts and pg_restore set them, writes rows as they were dumped; any other session is guarded.
------------------------------------------------------------------------------------------------
SELECT training.restoring_dump() AS normal_session;
SELECT set_config('check_function_bodies', 'off', true) IS NOT NULL AS restore_mode,
       set_config('row_security', 'off', true) IS NOT NULL AS restore_mode_rls, training.restoring_dump() AS restoring;
INSERT INTO training.trainings (source_dataset_id, output_model_name, type, state, progress, time_completed, owner)
VALUES (NULL, 'restored', 'face', 'completed', 1, now(), 'someone_else') RETURNING state, progress, owner;
SET LOCAL row_security = on;
SELECT training.restoring_dump() AS after_restore;
DELETE FROM training.trainings WHERE output_model_name = 'restored';

------------------------------------------------------------------------------------------------
-- list_trainings' total is kept per owner and state (training.training_counts): it follows
-- inserts, state changes, deletes and TRUNCATE, and equals a count of the rows
------------------------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.totals_kept() RETURNS boolean LANGUAGE sql AS $$
    SELECT bool_and((training.list_trainings(state => s) ->> 'total')::bigint
                    = (SELECT count(*) FROM training.trainings t WHERE s IS NULL OR t.state = s))
      FROM unnest(ARRAY[NULL, 'waiting', 'processing', 'completed', 'failed']) s $$;
SELECT pg_temp.totals_kept() AS after_inserts;
SAVEPOINT counts;
DELETE FROM training.trainings WHERE id = (SELECT min(id::text)::uuid FROM training.trainings);
SELECT pg_temp.totals_kept() AS after_delete;
TRUNCATE training.trainings CASCADE;
SELECT pg_temp.totals_kept() AS after_truncate, count(*) AS counts_left FROM training.training_counts WHERE n <> 0;
ROLLBACK TO SAVEPOINT counts;
SELECT pg_temp.totals_kept() AS after_rollback;
-- Rows written with triggers off leave the counts behind; recount_trainings() rebuilds them.
SAVEPOINT counts;
SET LOCAL session_replication_role = replica;
DELETE FROM training.trainings WHERE id = (SELECT min(id::text)::uuid FROM training.trainings);
RESET session_replication_role;
SELECT pg_temp.totals_kept() AS behind;
SELECT training.recount_trainings() = (SELECT count(*) FROM training.trainings) AS recounted;
SELECT pg_temp.totals_kept() AS kept_again;
ROLLBACK TO SAVEPOINT counts;

------------------------------------------------------------------------------------------------
-- A failed call changes nothing
------------------------------------------------------------------------------------------------
SELECT training.create_training(:'did', 'Again') ->> 'id' AS again \gset
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err(format('SELECT training.delete_dataset(%L)', :'did'))::char(5) AS sqlstate;
SELECT pg_temp.err(format('SELECT training.update_dataset(%L, %L)', :'did', ''))::char(5) AS sqlstate;
SELECT pg_temp.err(format('SELECT training.create_class(%L, %L, %L)', :'did', 'x', 'carol'))::char(5) AS sqlstate;
SELECT pg_temp.err(format('SELECT training.add_image(%L, %L, %L)', :'alice', pg_temp.pgm(2, 2), '{1}'))::char(5) AS sqlstate;
SELECT pg_temp.err(format('SELECT training.create_training(%L, %L, config => %L)', :'did', 'm', '{"x": 1}'))::char(5) AS sqlstate;
SELECT pg_temp.err(format('UPDATE training.trainings SET state = %L WHERE id = %L', 'failed', :'again'))::char(5) AS sqlstate;
SELECT pg_temp.err(format('UPDATE training.trainings SET progress = 0.5, output_model_name = %L WHERE id = %L', 'x', :'again'))::char(5) AS sqlstate;
SELECT pg_temp.state() = :'before' AS nothing_changed;

ROLLBACK;
