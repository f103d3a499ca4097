-- Long-lived use: version numbers that never repeat, one config reader, length limits, lists
-- with filters, evaluation that is never stale, internal functions closed to tenants.
SET client_min_messages = warning;

-- A landmark image of class cls: stripes at an angle per class, and noise.
CREATE FUNCTION pg_temp.img(cls int, seed int, w int DEFAULT 64, h int DEFAULT 64) RETURNS bytea
    LANGUAGE sql AS $$
SELECT convert_to(format(E'P5\n%s %s\n255\n', w, h), 'SQL_ASCII') ||
       decode(string_agg(lpad(to_hex(v), 2, '0'), '' ORDER BY y, x), 'hex')
  FROM (SELECT x, y,
               (128 + 60 * sin(0.5 * (x * cos(cls * 1.05) + y * sin(cls * 1.05)) + seed * 0.3)
                + ((x * 7919 + y * 104729 + seed * 31 + cls * 17) % 40) - 20)::int AS v
          FROM generate_series(0, h - 1) y, generate_series(0, w - 1) x) s
$$;
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text
    LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN regexp_replace(SQLSTATE || ': ' || SQLERRM, '[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g');
END $$;
CREATE FUNCTION pg_temp.wait(t uuid) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    FOR i IN 1..600 LOOP
        SELECT state INTO s FROM training.trainings WHERE id = t;
        EXIT WHEN s IN ('completed', 'failed');
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN s;
END $$;
-- The state of a training once it has ended, and the version it wrote.
CREATE FUNCTION pg_temp.done(t uuid) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    s text := pg_temp.wait(t);
BEGIN
    RETURN s || ' ' || coalesce(training.get_training(t) #>> '{output_model,reference}', 'no version');
END $$;

SELECT training.create_dataset('places', 'landmark') ->> 'id' AS ds \gset
SELECT count(training.add_image((training.create_class(:'ds', 'place ' || k) ->> 'id')::uuid, pg_temp.img(k, 0))) AS added
  FROM generate_series(0, 2) k;
SELECT count(training.add_image(c.id, pg_temp.img(k, s))) AS added
  FROM generate_series(0, 2) k JOIN training.classes c ON c.label = 'place ' || k, generate_series(1, 3) s;

-- Versions are forever: a deleted number is never given again.
-- (Each training is created in a statement of its own, so that it commits before the wait.)
SELECT training.create_training(:'ds', 'm') ->> 'id' AS t1 \gset
SELECT pg_temp.done(:'t1') AS v1;
SELECT training.create_training(:'ds', 'm') ->> 'id' AS t2 \gset
SELECT pg_temp.done(:'t2') AS v2;
SELECT training.create_training(:'ds', 'm') ->> 'id' AS t3 \gset
SELECT pg_temp.done(:'t3') AS v3;
SELECT training.delete_model('m==2');
SELECT training.create_training(:'ds', 'm') ->> 'id' AS t4 \gset
SELECT pg_temp.done(:'t4') AS v4;
SELECT training.get_training(:'t2') -> 'output_model' AS deleted_version,
       (SELECT output_model_version FROM training.trainings WHERE id = :'t2') AS number_kept;
SELECT pg_temp.try($$SELECT training.get_model('m==2')$$);
SELECT pg_temp.try($$SELECT training.recognize('m==2', pg_temp.img(0, 9))$$);
SELECT training.delete_model('m==4');
SELECT training.create_training(:'ds', 'm') ->> 'id' AS t5 \gset
SELECT pg_temp.done(:'t5') AS v5;
SELECT last_version, (SELECT array_agg(version_number ORDER BY 1) FROM training.model_versions v WHERE v.model_id = m.id) AS versions
  FROM training.models m WHERE name = 'm';
-- Every training's output_model is its own version.
SELECT t.output_model_version AS wrote, t.output_model_version_id IS NOT NULL AS kept,
       training.get_training(t.id) #>> '{output_model,version}' AS shows,
       training.get_training(t.id) #>> '{output_model,training_id}' = t.id::text AS own
  FROM training.trainings t WHERE t.output_model_name = 'm' ORDER BY t.time_created;
SELECT training.recognize('m', pg_temp.img(1, 7), max_distance => 2) #>> '{detections,0,label}' AS label,
       training.recognize('m', pg_temp.img(1, 7)) ->> 'model' AS model;

-- One config reader: integral numbers are integers everywhere (80, 80.0 and 8e1 mean 80).
SELECT training.effective_config('face', '{"min_face_size": 80.0}') AS a,
       training.effective_config('face', '{"min_face_size": 8e1, "sharpness_threshold": 4.0e1}') AS b;
SELECT pg_temp.try($$SELECT training.validate_config('face', '{"min_face_size": 80.5}')$$);
SELECT pg_temp.try($$SELECT training.validate_config('face', '{"min_face_size": 1e400}')$$);
SELECT pg_temp.try($$SELECT training.validate_config('landmark', '{"min_face_size": 80}')$$);
SELECT pg_temp.try($$SELECT training.validate_config('voice', '{}')$$);
SELECT pg_temp.try(format('SELECT training.validate_config(%L, %L)', 'face', jsonb_build_object(repeat('k', 300), 1)));
-- A large config is refused by its size, before it is printed and parsed.
SELECT pg_temp.try($$SELECT training.validate_config('face', jsonb_build_object('zz', (SELECT jsonb_agg(0) FROM generate_series(1, 20000))))$$);
SELECT training.check_image(pg_temp.img(0, 1), NULL, 'face', '{"min_face_size": 8e1}') ->> 'reason' AS too_small;
SELECT training.evaluate_dataset(:'ds', '{}') -> 'evaluation_result' ->> 'images_usable' AS usable;

-- Limits: names, labels and references up to 200 characters and not blank; free text up to 10000.
SELECT pg_temp.try(format('SELECT training.create_training(%L, %L)', :'ds', repeat('x', 3000)));
SELECT pg_temp.try(format('SELECT training.create_training(%L, %L)', :'ds', E'\t'));
SELECT pg_temp.try(format('SELECT training.create_training(%L, %L, %L)', :'ds', 'ok', repeat('d', 10001)));
SELECT pg_temp.try(format('SELECT training.create_dataset(%L, %L)', E' \n ', 'face'));
SELECT pg_temp.try(format('SELECT training.create_class(%L, %L)', :'ds', repeat('l', 201)));
SELECT pg_temp.try(format('SELECT training.create_class(%L, %L, %L)', :'ds', 'x', repeat('r', 201)));
SELECT length(pg_temp.try(format('SELECT training.get_model(%L)', repeat('n', 3000)))) < 200 AS short_message;
SELECT length(training.create_dataset(repeat('n', 200), 'face') ->> 'name') AS longest_name;

-- Known at creation, refused at creation: fewer than two classes to train on, and two types
-- queued for one new model name (55000).
SELECT training.create_dataset('faces', 'face') ->> 'id' AS fds \gset
SELECT count(training.add_image((training.create_class(:'fds', 'person ' || k) ->> 'id')::uuid, pg_temp.img(k, 0, 96, 96)))
  FROM generate_series(0, 1) k;
BEGIN;
SELECT training.create_training(:'fds', 'shared', config => '{"min_face_size": 80.0}') -> 'config' AS stored_as_sent;
SELECT pg_temp.try(format('SELECT training.create_training(%L, %L)', :'ds', 'shared'));
SELECT pg_temp.try(format('SELECT training.create_training(%L, %L)', :'fds', 'shared')) AS same_type;
ROLLBACK;
UPDATE training.classes SET active = false WHERE dataset_id = :'fds' AND label = 'person 1';
SELECT pg_temp.try(format('SELECT training.create_training(%L, %L)', :'fds', 'lonely'));

-- The guard on UPDATE (src/validate.c): an ended training's settings and every read-only column stay.
SELECT f, pg_temp.try(format('UPDATE training.trainings SET %s WHERE id = %L', f, :'t1')) AS result
  FROM unnest(ARRAY['output_model_name = ''renamed''', 'id = gen_random_uuid()', 'time_created = now()',
                    'output_model_id = gen_random_uuid()', 'progress = 0.5', 'object = NULL']) f;
SELECT object IS NOT NULL AS rendered_again FROM training.trainings WHERE id = :'t1';
-- A waiting training's settings change as a creation validates them (non-ASCII names included),
-- and its kept object follows.
BEGIN;
SELECT training.create_training(:'ds', 'before') ->> 'id' AS tw \gset
UPDATE training.trainings SET output_model_name = U&'\30E2\30C7\30EB', output_model_description = NULL,
                              config = NULL WHERE id = :'tw';
SELECT o ->> 'output_model_name' AS renamed, o ->> 'output_model_description' AS description, o -> 'config' AS config
  FROM training.get_training(:'tw') o;
SELECT pg_temp.try(format('UPDATE training.trainings SET output_model_name = %L WHERE id = %L', U&'\3000\00A0', :'tw'));
SELECT pg_temp.try(format('UPDATE training.trainings SET output_model_name = %L WHERE id = %L', repeat(U&'\30E2', 201), :'tw'));
SELECT pg_temp.try(format('UPDATE training.trainings SET source_dataset_id = %L WHERE id = %L', :'fds', :'tw'));
ROLLBACK;

-- Lists: next/prev carry the filters; past the end, prev is the last page; no overflow.
SELECT l - 'data' AS page FROM training.list_trainings("limit" => 2, state => 'completed') l;
SELECT l - 'data' AS page FROM training.list_trainings("limit" => 2, "offset" => 2147483647, state => 'completed') l;
SELECT l - 'data' AS page FROM training.list_datasets("limit" => 1000, "offset" => 2147483647) l;
SELECT regexp_replace((l - 'data')::text, '[0-9a-f-]{36}', '<uuid>') AS page
  FROM training.list_classes(:'ds', "limit" => 2, "offset" => 1) l;

-- NULL ids: 22023 from every function.
SELECT f, pg_temp.try(f) AS result FROM unnest(ARRAY[
    'SELECT training.get_dataset(NULL)', 'SELECT training.update_dataset(NULL, name => ''x'')',
    'SELECT training.delete_dataset(NULL)', 'SELECT training.evaluate_dataset(NULL)',
    'SELECT training.create_class(NULL, ''x'')', 'SELECT training.get_class(NULL)',
    'SELECT training.list_classes(NULL)', 'SELECT training.update_class(NULL, label => ''x'')',
    'SELECT training.delete_class(NULL)', 'SELECT training.add_image(NULL, ''\x00''::bytea)',
    'SELECT training.get_image(NULL)', 'SELECT training.list_images(NULL)',
    'SELECT training.update_image(NULL, notes => ''x'')', 'SELECT training.delete_image(NULL)',
    'SELECT training.create_training(NULL, ''x'')', 'SELECT training.get_training(NULL)',
    'SELECT training.delete_training(NULL)', 'SELECT training.get_model(NULL)',
    'SELECT training.delete_model(NULL)', 'SELECT training.recognize(NULL, ''\x00''::bytea)']) f;

-- Evaluation is never stale: changes put it out of date (2), and has_error follows the classes.
SELECT training.evaluate_dataset(:'ds') -> 'issues' AS evaluated,
       training.get_dataset(:'ds') -> 'evaluation_state' AS state;
UPDATE training.classes SET active = false WHERE dataset_id = :'ds' AND label IN ('place 1', 'place 2');
SELECT d -> 'issues' AS issues, d -> 'evaluation_state' AS state FROM training.get_dataset(:'ds') d;
SELECT issues, evaluation_state FROM training.datasets WHERE id = :'ds';
UPDATE training.classes SET active = true WHERE dataset_id = :'ds';
SELECT training.get_dataset(:'ds') -> 'issues' AS reactivated;
SELECT training.evaluate_dataset(:'ds') -> 'evaluation_state' AS again;
UPDATE training.images SET face_box = '{0,0,32,32}'
 WHERE id = (SELECT i.id FROM training.images i JOIN training.classes c ON c.id = i.class_id
              WHERE c.dataset_id = :'ds' LIMIT 1);
SELECT d -> 'issues' AS issues, d -> 'evaluation_state' AS state FROM training.get_dataset(:'ds') d;
-- Expiry moves with the clock: an expired class no longer counts.
UPDATE training.classes SET expiration_date = now() - interval '1 second'
 WHERE dataset_id = :'ds' AND label IN ('place 0', 'place 1');
SELECT training.get_dataset(:'ds') -> 'issues' AS expired;
SELECT pg_temp.try(format('SELECT training.create_training(%L, %L)', :'ds', 'm'));
UPDATE training.classes SET expiration_date = NULL WHERE dataset_id = :'ds';

-- Internal functions (training._*) are closed to tenants; the API and its helpers are open.
CREATE ROLE regress_tenant;
SELECT training.grant_access('regress_tenant');
SELECT count(*) AS internal, count(*) FILTER (WHERE has_function_privilege('regress_tenant', p.oid, 'EXECUTE')) AS executable
  FROM pg_proc p WHERE p.pronamespace = 'training'::regnamespace AND p.proname LIKE '\_%';
SELECT count(*) FILTER (WHERE NOT has_function_privilege('regress_tenant', p.oid, 'EXECUTE')) AS closed_api
  FROM pg_proc p WHERE p.pronamespace = 'training'::regnamespace AND p.proname NOT LIKE '\_%'
   AND p.proname NOT IN ('grant_access', 'revoke_access', 'recount_trainings');  -- administrators' only
SET ROLE regress_tenant;
SELECT pg_temp.try($$SELECT training._worker_finish(gen_random_uuid(), 1, '\x00', '{}')$$);
SELECT pg_temp.try($$SELECT training._worker_claim(1)$$);
SELECT pg_temp.try($$SELECT training_worker.claim('forged')$$);
RESET ROLE;

-- training-worker's functions: for the training_worker role only (not tenants, not PUBLIC).
CREATE ROLE regress_tw IN ROLE training_worker;
SELECT count(*) AS worker_functions,
       count(*) FILTER (WHERE has_function_privilege('regress_tw', p.oid, 'EXECUTE')) AS for_training_worker,
       count(*) FILTER (WHERE has_function_privilege('regress_tenant', p.oid, 'EXECUTE')) AS for_tenants,
       count(*) FILTER (WHERE p.prosecdef AND p.proconfig @> ARRAY['training.worker_scope=on']) AS definer_in_scope
  FROM pg_proc p WHERE p.pronamespace = 'training_worker'::regnamespace;
SELECT has_schema_privilege('regress_tw', 'training_worker', 'USAGE') AS tw_usage,
       has_schema_privilege('regress_tw', 'training', 'USAGE') AS tw_training_usage,
       has_schema_privilege('regress_tenant', 'training_worker', 'USAGE') AS tenant_usage;
-- Nor can a tenant set the scope that lets them write the read-only columns.
SET ROLE regress_tenant;
SELECT pg_temp.try($$SET training.worker_scope = on$$);
RESET ROLE;

-- A claim is (id, attempt) with a lease: every write carries it, and one that no longer
-- matches, or whose lease expired, writes nothing. In one transaction, so that the server's own
-- workers never see the training.
BEGIN;
SELECT training.create_training(:'ds', 'remote') ->> 'id' AS tr \gset
-- An image of the dataset that no other session sees (a worker measuring in the background would hold its row).
SELECT training.add_image((SELECT c.id FROM training.classes c WHERE c.dataset_id = :'ds' AND c.active
                           ORDER BY c.time_created LIMIT 1), pg_temp.img(0, 9)) ->> 'id' AS img \gset
SELECT content_version AS cv FROM training.images WHERE id = :'img' \gset
SET LOCAL ROLE regress_tw;
SELECT c.id = :'tr' AS claimed, c.attempt, c.lease_timeout, c.type FROM training_worker.claim('regress host:1') c;
SELECT count(*) AS classes, sum(images) AS images FROM training_worker.classes(:'tr', 1);
SELECT count(*) AS first_batch FROM training_worker.classes(:'tr', 1) c,
       training_worker.images(:'tr', 1, c.class_id, NULL, NULL, 2, 'landmark-colour-hog-v1') i;
SELECT training_worker.progress(:'tr', 1, 0.25, 'loading') AS ours,
       training_worker.progress(:'tr', 2, 0.5, 'forged') AS other_attempt,
       training_worker.progress(gen_random_uuid(), 1, 0.5, 'forged') AS other_training;
SELECT pg_temp.try(format('SELECT * FROM training_worker.classes(%L, 2)', :'tr'));
SELECT pg_temp.try(format('SELECT * FROM training_worker.image_data(%L, 1, array_fill(gen_random_uuid(), ARRAY[65]))', :'tr'));
RESET ROLE;
SELECT state, worker, progress, stage, attempts, lease_expires > now() AS leased FROM training.trainings WHERE id = :'tr';
-- Only a worker writes the claim: not the training's owner, not even a superuser.
SELECT pg_temp.try(format('UPDATE training.trainings SET lease_expires = now() + interval %L WHERE id = %L', '1 hour', :'tr'));
SELECT pg_temp.try(format('UPDATE training.trainings SET worker = %L WHERE id = %L', 'me', :'tr'));
-- The lease expires (its worker froze): the next claim queues it again and takes it, as attempt 2.
SET LOCAL session_replication_role = replica;
UPDATE training.trainings SET lease_expires = clock_timestamp() - interval '1 second' WHERE id = :'tr';
SET LOCAL session_replication_role = origin;
SET LOCAL ROLE regress_tw;
SELECT training_worker.progress(:'tr', 1, 0.5, 'late') AS expired;
SELECT c.id = :'tr' AS claimed_again, c.attempt FROM training_worker.claim('regress host:2') c;
SELECT training_worker.finish(:'tr', 1, '\x54524e4d00', '{}') AS frozen_finish,
       training_worker.fail(:'tr', 1, 'frozen') AS frozen_fail,
       training_worker.release(:'tr', 1, 'frozen') AS frozen_release;
-- What a worker writes is checked: a measurement the readers can use, a model in the model format.
SELECT pg_temp.try(format($$SELECT training_worker.keep(%L, 2, %L, %s, 'Bad Kind', 'undecodable', '', 0, 0, 0, '{}', NULL)$$,
                          :'tr', :'img', :cv)) AS bad_kind,
       pg_temp.try(format($$SELECT training_worker.keep(%L, 2, %L, %s, 'landmark-colour-hog-v1', 'measured', '', 0, 8, 8,
                                                        array_fill('NaN'::real, ARRAY[1, 8]), NULL)$$, :'tr', :'img', :cv)) AS nan_region,
       pg_temp.try(format($$SELECT training_worker.keep(%L, 2, %L, %s, 'landmark-colour-hog-v1', 'measured', '', 0, 8, 8,
                                                        array_fill(1::real, ARRAY[1, 8]), array_fill(0::real, ARRAY[2, 4]))$$,
                          :'tr', :'img', :cv)) AS rows_mismatch,
       pg_temp.try(format($$SELECT training_worker.finish(%L, 2, '\x00', '{}')$$, :'tr')) AS not_a_model;
SELECT training_worker.keep(:'tr', 2, :'img', :cv, 'landmark-colour-hog-v1', 'undecodable', repeat('m', 5000), 0, 0, 0, '{}', NULL) AS kept,
       training_worker.keep(:'tr', 2, gen_random_uuid(), 1, 'landmark-colour-hog-v1', 'undecodable', '', 0, 0, 0, '{}', NULL) AS other_image;
RESET ROLE;
SELECT length(message) AS message_kept FROM training.image_features WHERE image_id = :'img' AND kind = 'landmark-colour-hog-v1';
SET LOCAL ROLE regress_tw;
SELECT training_worker.finish(:'tr', 2, '\x54524e4d00', '{"train_accuracy": 1}') AS version;
RESET ROLE;
SELECT state, worker, lease_expires, attempts, stage, output_model_version FROM training.trainings WHERE id = :'tr';
SELECT count(*) AS versions FROM training.model_versions WHERE training_id = :'tr';
ROLLBACK;
DROP ROLE regress_tw;
SELECT training.revoke_access('regress_tenant');
DROP ROLE regress_tenant;

-- Validation that cannot be bypassed: face boxes with other array bounds, derived columns.
SELECT training.create_class(:'ds', 'boxes') ->> 'id' AS boxes \gset
SELECT pg_temp.try(format('SELECT training.add_image(%L, %L, %L)', :'boxes', pg_temp.img(0, 3), '[0:3]={-100,0,10,10}'));
SELECT training.add_image(:'boxes', pg_temp.img(0, 3), '[2:5]={1,1,10,10}') -> 'face_box' AS renumbered;
SELECT face_box, array_lower(face_box, 1) AS lower FROM training.images WHERE class_id = :'boxes';
SELECT pg_temp.try(format('UPDATE training.images SET width = 5 WHERE class_id = %L', :'boxes'));
SELECT pg_temp.try(format('UPDATE training.images SET format = %L WHERE class_id = %L', 'png', :'boxes'));
SELECT training.delete_class(:'boxes');

-- A dataset emptied while its training runs: the worker's finish refuses to write a version.
BEGIN;
SELECT training.create_training(:'ds', 'emptied') ->> 'id' AS te \gset
SET LOCAL session_replication_role = replica;
UPDATE training.trainings SET state = 'processing', worker_pid = 4242, time_started = now(),
       lease_expires = now() + interval '1 minute' WHERE id = :'te';
SET LOCAL session_replication_role = origin;
UPDATE training.classes SET active = false WHERE dataset_id = :'ds' AND label <> 'place 0';
SELECT pg_temp.try(format('SELECT training._worker_finish(%L, 4242, %L, %L)', :'te', '\x00', '{}'));
ROLLBACK;

-- A hostile tenant: no table locks, no forged counters, no blank look-alike names, bounded boxes.
CREATE ROLE regress_hostile;
SELECT training.grant_access('regress_hostile');
SET ROLE regress_hostile;
SELECT training.create_dataset('hostile', 'landmark') ->> 'id' AS hds \gset
SELECT training.create_class(:'hds', 'only') ->> 'id' AS hcl \gset
SELECT training.add_image(:'hcl', pg_temp.img(0, 1)) IS NOT NULL AS added;
SELECT pg_temp.try('LOCK TABLE training.images IN ACCESS EXCLUSIVE MODE');
SELECT pg_temp.try('LOCK TABLE training.trainings');
-- Nor through a view (locking a view locks what it reads), at any depth; its own tables, yes.
CREATE TEMP VIEW hostile_classes AS SELECT * FROM training.classes;
CREATE TEMP VIEW hostile_deeper AS SELECT 1 AS one WHERE EXISTS (SELECT FROM hostile_classes);
SELECT pg_temp.try('LOCK TABLE hostile_classes IN ACCESS EXCLUSIVE MODE');
SELECT pg_temp.try('LOCK TABLE hostile_deeper');
CREATE TEMP TABLE poke (x int);
CREATE TEMP VIEW own_poke AS SELECT * FROM poke;
BEGIN;
LOCK TABLE own_poke;
ROLLBACK;
DROP VIEW own_poke, hostile_deeper, hostile_classes;
CREATE FUNCTION pg_temp.forge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE training.datasets SET number_of_trainable_classes = 99 WHERE name = 'hostile';
    RETURN NULL;
END $$;
CREATE TRIGGER forge AFTER INSERT ON pg_temp.poke FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.forge();
SELECT pg_temp.try('INSERT INTO pg_temp.poke VALUES (1)');
SELECT number_of_trainable_classes FROM training.datasets WHERE name = 'hostile';
SELECT pg_temp.try(format('SELECT training.create_training(%L, %L)', :'hds', 'forged'));
SELECT pg_temp.try(format('SELECT training.create_dataset(%L, %L)', U&'\00A0\2003\3000', 'face'));
SELECT pg_temp.try(format('SELECT training.create_class(%L, %L)', :'hds', U&'\200B\FEFF'));
SELECT pg_temp.try(format('SELECT training.add_image(%L, %L, %L)', :'hcl', pg_temp.img(0, 2), '{2147483647,0,1,1}'));
SELECT pg_temp.try(format('SELECT training.check_image(%L, %L, %L)', pg_temp.img(0, 2), '{1,NULL,10,10}', 'face'));
SELECT pg_temp.try(format('SELECT training.check_image(%L, %L, %L)', pg_temp.img(0, 2), '{{1,1},{10,10}}', 'face'));
RESET ROLE;
DROP TABLE pg_temp.poke;
DROP FUNCTION pg_temp.forge();
DELETE FROM training.datasets WHERE name = 'hostile';
SELECT training.revoke_access('regress_hostile');
DROP ROLE regress_hostile;
-- The kept counts followed every state change the worker made (training.training_counts).
SELECT bool_and((training.list_trainings(state => s) ->> 'total')::bigint
                = (SELECT count(*) FROM training.trainings t WHERE s IS NULL OR t.state = s)) AS totals_kept,
       (SELECT count(*) FROM training.trainings WHERE state <> 'waiting') > 0 AS some_ran
  FROM unnest(ARRAY[NULL, 'waiting', 'processing', 'completed', 'failed']) s;

-- The Training object kept with the row (trainings.object): while a training waits, its
-- source_dataset follows the dataset; from its start, it is the dataset it trained on, also
-- after the dataset changes or is deleted; the Model object of its version stays live.
SELECT training.create_dataset('kept', 'landmark') ->> 'id' AS kds \gset
SELECT count(training.add_image((training.create_class(:'kds', 'k ' || k) ->> 'id')::uuid, pg_temp.img(k, 0))) AS added
  FROM generate_series(0, 1) k;
SELECT training.create_training(:'kds', 'kept model') ->> 'id' AS kt \gset
SELECT pg_temp.done(:'kt') AS kept_done;
-- (Uncommitted, the second training stays waiting: no worker can see it yet.)
BEGIN;
SELECT training.create_training(:'kds', 'kept model', output_model_changelog => 'second') ->> 'id' AS kt2 \gset
SELECT training.update_dataset(:'kds', name => 'kept, renamed') ->> 'name' AS renamed;
SELECT training.get_training(:'kt') #>> '{source_dataset,name}' AS started_shows,
       training.get_training(:'kt') #>> '{source_dataset,number_of_images}' AS images,
       training.get_training(:'kt2') #>> '{source_dataset,name}' AS waiting_shows;
COMMIT;
SELECT pg_temp.done(:'kt2') AS kept_done2;
SELECT training.get_training(:'kt') #>> '{output_model,versions}' AS versions_live,
       training.get_training(:'kt2') #>> '{source_dataset,name}' AS started_later_shows;
SELECT training.delete_dataset(:'kds');
SELECT training.get_training(:'kt') #>> '{source_dataset,name}' AS after_delete,
       (SELECT object FROM training.trainings WHERE id = :'kt') - 'output_model'
       = training.get_training(:'kt') - 'output_model' AS kept_is_returned;
