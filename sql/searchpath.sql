-- A writable schema first on the search_path must not reach into the extension: every function
-- pins search_path = pg_catalog, pg_temp and the workers set it before any SQL. Here schema
-- "evil" plants look-alikes of what the extension calls (format with the argument types it
-- passes, left, now, ..., and = on uuid/text/name, || on text/uuid) ahead of pg_catalog, for
-- this session and for the database (which the workers' connections would inherit); then every
-- API function runs as a superuser, and trainings complete, fail and are cancelled. Nothing
-- planted may run.
SET client_min_messages = warning;
CREATE SCHEMA evil;
CREATE TABLE evil.calls (what text, at timestamptz DEFAULT pg_catalog.clock_timestamp());
GRANT ALL ON SCHEMA evil TO PUBLIC;
GRANT ALL ON evil.calls TO PUBLIC;
CREATE FUNCTION evil.log(what text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO evil.calls (what) VALUES (what) $$;
CREATE FUNCTION evil.format(f text, a integer, b integer, c text) RETURNS text LANGUAGE sql
    AS $$ SELECT evil.log('format(text,int,int,text)'); SELECT pg_catalog.format(f, a, b, c) $$;
CREATE FUNCTION evil.format(f text, a bigint, b bigint, c text) RETURNS text LANGUAGE sql
    AS $$ SELECT evil.log('format(text,bigint,bigint,text)'); SELECT pg_catalog.format(f, a, b, c) $$;
CREATE FUNCTION evil.format(f text, a integer, b integer) RETURNS text LANGUAGE sql
    AS $$ SELECT evil.log('format(text,int,int)'); SELECT pg_catalog.format(f, a, b) $$;
CREATE FUNCTION evil.format(f text, a text) RETURNS text LANGUAGE sql
    AS $$ SELECT evil.log('format(text,text)'); SELECT pg_catalog.format(f, a) $$;
CREATE FUNCTION evil.left(s text, n integer) RETURNS text LANGUAGE sql
    AS $$ SELECT evil.log('left'); SELECT pg_catalog.left(s, n) $$;
CREATE FUNCTION evil.length(s text) RETURNS integer LANGUAGE sql
    AS $$ SELECT evil.log('length'); SELECT pg_catalog.length(s) $$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT evil.log('now'); SELECT pg_catalog.now() $$;
CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT evil.log('clock_timestamp'); SELECT pg_catalog.clock_timestamp() $$;
CREATE FUNCTION evil.to_char(t timestamp, f text) RETURNS text LANGUAGE sql
    AS $$ SELECT evil.log('to_char'); SELECT pg_catalog.to_char(t, f) $$;
CREATE FUNCTION evil.quote_literal(s text) RETURNS text LANGUAGE sql
    AS $$ SELECT evil.log('quote_literal'); SELECT pg_catalog.quote_literal(s) $$;
CREATE FUNCTION evil.strpos(s text, t text) RETURNS integer LANGUAGE sql
    AS $$ SELECT evil.log('strpos'); SELECT pg_catalog.strpos(s, t) $$;
CREATE FUNCTION evil.gen_random_uuid() RETURNS uuid LANGUAGE sql
    AS $$ SELECT evil.log('gen_random_uuid'); SELECT pg_catalog.gen_random_uuid() $$;
CREATE FUNCTION evil.hashtextextended(s text, seed bigint) RETURNS bigint LANGUAGE sql
    AS $$ SELECT evil.log('hashtextextended'); SELECT pg_catalog.hashtextextended(s, seed) $$;
CREATE FUNCTION evil.jsonb_typeof(j jsonb) RETURNS text LANGUAGE sql
    AS $$ SELECT evil.log('jsonb_typeof'); SELECT pg_catalog.jsonb_typeof(j) $$;
CREATE FUNCTION evil.uuid_eq(a uuid, b uuid) RETURNS boolean LANGUAGE sql
    AS $$ SELECT evil.log('=(uuid,uuid)'); SELECT pg_catalog.uuid_eq(a, b) $$;
CREATE OPERATOR evil.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = evil.uuid_eq);
CREATE FUNCTION evil.uuid_text_eq(a uuid, b text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT evil.log('=(uuid,text)'); SELECT a::text = b $$;
CREATE OPERATOR evil.= (LEFTARG = uuid, RIGHTARG = text, FUNCTION = evil.uuid_text_eq);
CREATE FUNCTION evil.text_eq(a text, b text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT evil.log('=(text,text)'); SELECT pg_catalog.texteq(a, b) $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
CREATE FUNCTION evil.name_eq(a name, b name) RETURNS boolean LANGUAGE sql
    AS $$ SELECT evil.log('=(name,name)'); SELECT pg_catalog.nameeq(a, b) $$;
CREATE OPERATOR evil.= (LEFTARG = name, RIGHTARG = name, FUNCTION = evil.name_eq);
CREATE FUNCTION evil.text_cat(a text, b text) RETURNS text LANGUAGE sql
    AS $$ SELECT evil.log('||(text,text)'); SELECT pg_catalog.textcat(a, b) $$;
CREATE OPERATOR evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_cat);
CREATE FUNCTION evil.text_uuid_cat(a text, b uuid) RETURNS text LANGUAGE sql
    AS $$ SELECT evil.log('||(text,uuid)'); SELECT pg_catalog.textcat(a, b::text) $$;
CREATE OPERATOR evil.|| (LEFTARG = text, RIGHTARG = uuid, FUNCTION = evil.text_uuid_cat);

-- The trap works: with evil first, an unqualified call reaches it.
SET search_path = evil, pg_catalog, public;
SELECT format('%s-%s-%s', 1, 2, 'x') AS trapped, 'a'::text = 'a'::text AS also_trapped;
SELECT what FROM evil.calls ORDER BY what;
TRUNCATE evil.calls;
-- The database's setting reaches new connections, the workers' among them.
DO $$ BEGIN EXECUTE pg_catalog.format('ALTER DATABASE %I SET search_path = evil, pg_catalog, public', current_database()); END $$;

CREATE FUNCTION pg_temp.img(cls int, seed int) RETURNS bytea
    LANGUAGE sql AS $$
SELECT pg_catalog.convert_to(pg_catalog.format(E'P5\n%s %s\n255\n', 48, 48), 'SQL_ASCII') OPERATOR(pg_catalog.||)
       pg_catalog.decode(pg_catalog.string_agg(pg_catalog.lpad(pg_catalog.to_hex(v), 2, '0'), '' ORDER BY y, x), 'hex')
  FROM (SELECT x, y, ((128 + 60 * sin(0.5 * (x * cos(cls * 1.05) + y * sin(cls * 1.05)) + seed * 0.3))::int) AS v
          FROM generate_series(0, 47) y, generate_series(0, 47) x) s
$$;
CREATE FUNCTION pg_temp.wait(t uuid) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    FOR i IN 1..600 LOOP
        SELECT state INTO s FROM training.trainings WHERE id OPERATOR(pg_catalog.=) t;
        EXIT WHEN s OPERATOR(pg_catalog.=) ANY (ARRAY['completed', 'failed']);
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN s;
END $$;

-- Every API function, as a superuser, with evil first on the path.
SELECT training.create_dataset('evil places', 'landmark', 'd') ->> 'name' AS dataset;
SELECT id AS ds FROM training.datasets WHERE name OPERATOR(pg_catalog.=) 'evil places' \gset
SELECT training.create_class(:'ds', 'a', reference => 'a') ->> 'label' AS a,
       training.create_class(:'ds', 'b', reference => 'b') ->> 'label' AS b;
SELECT id AS ca FROM training.classes WHERE reference OPERATOR(pg_catalog.=) 'a' \gset
SELECT id AS cb FROM training.classes WHERE reference OPERATOR(pg_catalog.=) 'b' \gset
SELECT training.add_image(:'ca', pg_temp.img(0, s)) IS NOT NULL, training.add_image(:'cb', pg_temp.img(1, s)) IS NOT NULL
  FROM generate_series(1, 3) s;
INSERT INTO training.images (class_id, data) VALUES (:'ca', pg_temp.img(0, 9));
SELECT training.get_dataset(:'ds') ->> 'number_of_images' AS images,
       training.list_datasets() ->> 'total' AS datasets,
       training.update_dataset(:'ds', description => 'changed') ->> 'description' AS description,
       training.get_class(:'ca') ->> 'label' AS class,
       training.list_classes(:'ds', 1) ->> 'next' IS NOT NULL AS next,
       training.update_class(:'cb', notes => 'n') ->> 'notes' AS notes;
SELECT id AS img FROM training.images WHERE class_id OPERATOR(pg_catalog.=) :'ca' ORDER BY time_created LIMIT 1 \gset
SELECT training.get_image(:'img') ->> 'format' AS format,
       training.list_images(:'ca') ->> 'total' AS images,
       training.update_image(:'img', face_box => '{0,0,40,40}') -> 'face_box' ->> 'width' AS box,
       training.update_image(:'img', face_box => '{}') -> 'face_box' AS cleared;
SELECT training.evaluate_dataset(:'ds') ->> 'evaluation_state' AS evaluated,
       training.check_image(pg_temp.img(0, 1), NULL, 'face', '{"min_face_size": 8e1}') ->> 'usable' AS usable,
       training.validate_config('face', '{}') IS NOT NULL AS valid,
       training.effective_config('face', '{}') ->> 'min_face_size' AS mfs;

-- Worker paths: complete, fail, cancel.
SELECT training.create_training(:'ds', 'evil model') ->> 'id' AS t1 \gset
SELECT pg_temp.wait(:'t1') AS completes;
SELECT training.create_training(:'ds', 'evil model', config => '{}', output_model_changelog => 'again') ->> 'id' AS t2 \gset
SELECT pg_temp.wait(:'t2') AS completes_again;
UPDATE training.images SET active = false WHERE class_id OPERATOR(pg_catalog.=) :'cb';
UPDATE training.images SET active = true WHERE class_id OPERATOR(pg_catalog.=) :'cb';
SELECT training.create_dataset('evil faces', 'face') ->> 'id' AS fds \gset
SELECT count(training.add_image((training.create_class(:'fds', 'p' OPERATOR(pg_catalog.||) k) ->> 'id')::uuid, pg_temp.img(k, 1)))
  FROM generate_series(0, 1) k;
SELECT training.create_training(:'fds', 'evil faces', config => '{"min_face_size": 100000}') ->> 'id' AS t3 \gset
SELECT pg_temp.wait(:'t3') AS fails;
ALTER DATABASE contrib_regression SET training.test_image_delay = '300ms';
SELECT pg_sleep(2.5);   -- idle workers leave (training.worker_idle_timeout): the next one is slow
SELECT training.create_training(:'ds', 'evil cancelled') ->> 'id' AS t4 \gset
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN EXISTS (SELECT FROM training.trainings WHERE output_model_name OPERATOR(pg_catalog.=) 'evil cancelled'
                           AND state OPERATOR(pg_catalog.=) 'processing');
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT training.delete_training(:'t4');
ALTER DATABASE contrib_regression RESET training.test_image_delay;
SELECT pg_sleep(0.5);
SELECT count(*) AS cancelled_versions FROM training.models WHERE name OPERATOR(pg_catalog.=) 'evil cancelled';

SELECT training.get_training(:'t1') ->> 'state' AS t1, training.get_training(:'t3') ->> 'error' AS t3_error,
       training.list_trainings(state => 'completed') ->> 'total' AS completed;
SELECT training.get_model('evil model') ->> 'reference' AS model, training.list_models() ->> 'total' IS NOT NULL AS models,
       (training.resolve_model_version('evil model==1')).version_number AS v1,
       training.recognize('evil model', pg_temp.img(1, 7), max_distance => 2) #>> '{detections,0,label}' AS label;
SELECT training.delete_model('evil model==1');
SELECT * FROM training.status WHERE model OPERATOR(pg_catalog.~~) 'evil%' AND false;
SELECT training.delete_model('evil model');
SELECT training.delete_image(:'img'), training.delete_class(:'cb');
SELECT training.delete_dataset(:'fds');
CREATE ROLE regress_evil_role;
SELECT training.grant_access('regress_evil_role'), training.revoke_access('regress_evil_role');
DROP ROLE regress_evil_role;

-- Nothing planted ran: not in this session, not in a worker.
SELECT what, count(*) FROM evil.calls GROUP BY what ORDER BY what;
SELECT count(*) AS planted_calls FROM evil.calls;

DO $$ BEGIN EXECUTE pg_catalog.format('ALTER DATABASE %I RESET search_path', current_database()); END $$;
RESET search_path;
DROP SCHEMA evil CASCADE;
