-- The pipeline through SQL: image decoding on insert (formats, corrupt and oversized data),
-- dataset evaluation with the face filters, a training end to end (filters, skip counts,
-- failure messages) and recognize(). Images are generated here: PGM faces made of a
-- class-specific pattern (stripes at 0, 60 or 120 degrees) and noise, flat (blurred) and small ones.
SET client_min_messages = warning;
-- Stripes are no faces: the face networks' descriptors of them say little (the landmark network
-- aligns a different square of each). This file checks the pipeline with the classic features;
-- test/deep and test/tap/010_deep_faces.pl check the networks on faces.
ALTER SYSTEM SET training.face_features = 'classic';
SELECT pg_reload_conf() AS reloaded;
SELECT 1 AS waited FROM pg_sleep(0.2);
SHOW training.face_features;

CREATE FUNCTION pg_temp.face(cls int, seed int, w int DEFAULT 92, h int DEFAULT 112) RETURNS bytea
    LANGUAGE sql AS $$
SELECT convert_to(format(E'P5\n%s %s\n255\n', w, h), 'SQL_ASCII') ||
       decode(string_agg(lpad(to_hex(v), 2, '0'), '' ORDER BY y, x), 'hex')
  FROM (SELECT x, y,
               (128 + 60 * sin(0.5 * (x * cos(cls * 1.05) + y * sin(cls * 1.05)) + seed * 0.3)
                + ((x * 7919 + y * 104729 + seed * 31 + cls * 17) % 40) - 20)::int AS v
          FROM generate_series(0, h - 1) y, generate_series(0, w - 1) x) s
$$;
CREATE FUNCTION pg_temp.flat(w int, h int) RETURNS bytea
    LANGUAGE sql AS $$
SELECT convert_to(format(E'P5\n%s %s\n255\n', w, h), 'SQL_ASCII') || decode(repeat('80', w * h), 'hex')
$$;
-- Run a statement; show its SQLSTATE and message instead of failing.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text
    LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- Wait for a training to end (the background worker runs it).
CREATE FUNCTION pg_temp.wait(t uuid) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    FOR i IN 1..600 LOOP
        SELECT state INTO s FROM training.trainings WHERE id = t;
        EXIT WHEN s IN ('completed', 'failed');
        PERFORM pg_sleep(0.2);
        PERFORM pg_stat_clear_snapshot();
    END LOOP;
    RETURN s;
END $$;

-- Decoding on insert: format, width and height come from the data.
SELECT training.create_dataset('people', 'face') ->> 'type' AS type;
SELECT training.create_class((SELECT id FROM training.datasets WHERE name = 'people'), 'ada', 'ada') ->> 'label' AS label;
SELECT training.create_class((SELECT id FROM training.datasets WHERE name = 'people'), 'bob', 'bob') ->> 'label' AS label;
SELECT training.create_class((SELECT id FROM training.datasets WHERE name = 'people'), 'cyd', 'cyd') ->> 'label' AS label;
SELECT count(training.add_image(c.id, pg_temp.face(k, s))) AS added
  FROM (VALUES ('ada', 0), ('bob', 1), ('cyd', 2)) v(label, k)
  JOIN training.classes c ON c.label = v.label, generate_series(1, 5) s;
SELECT format, width, height, count(*) FROM training.images GROUP BY 1, 2, 3;

-- Data that does not decode is refused, naming the accepted formats.
SELECT pg_temp.try($$SELECT training.add_image((SELECT id FROM training.classes WHERE label = 'ada'), 'not an image'::bytea)$$);
SELECT pg_temp.try($$SELECT training.add_image((SELECT id FROM training.classes WHERE label = 'ada'),
                                                substr(pg_temp.face(0, 9), 1, 5000))$$);
SELECT pg_temp.try($$SELECT training.add_image((SELECT id FROM training.classes WHERE label = 'ada'),
                                                '\xffd8ffe000104a464946'::bytea)$$);
SELECT pg_temp.try($$INSERT INTO training.images (class_id, data)
                     VALUES ((SELECT id FROM training.classes WHERE label = 'ada'), '\x89504e470d0a1a0a0000'::bytea)$$);
SELECT pg_temp.try($$UPDATE training.images SET data = 'P5 10 10 255' WHERE id = (SELECT min(id::text)::uuid FROM training.images)$$);
-- Images above training.max_image_pixels are refused from their header.
SET training.max_image_pixels = 10000;
SELECT pg_temp.try($$SELECT training.add_image((SELECT id FROM training.classes WHERE label = 'ada'), pg_temp.face(0, 9))$$);
RESET training.max_image_pixels;
SELECT count(*) AS images FROM training.images;

-- Images each face filter skips: flat (sharpness 0 < 40), small (50 < 80), box too small.
SELECT training.add_image((SELECT id FROM training.classes WHERE label = 'cyd'), pg_temp.flat(92, 112)) ->> 'id' IS NOT NULL AS flat;
SELECT training.add_image((SELECT id FROM training.classes WHERE label = 'cyd'), pg_temp.face(2, 7, 50, 50)) ->> 'id' IS NOT NULL AS small;
SELECT training.add_image((SELECT id FROM training.classes WHERE label = 'bob'), pg_temp.face(1, 8),
                          face_box => ARRAY[0, 0, 60, 60]) ->> 'id' IS NOT NULL AS small_box;

-- Evaluation with the training's filters, shown by get_dataset. (The generated faces of a class
-- differ by a phase shift: far enough apart in the classic features to be no near-duplicates;
-- features.sql finds a copy.)
SELECT d->'issues' AS issues, d->'evaluation_state' AS state,
       d->'evaluation_result'->'images_checked' AS checked, d->'evaluation_result'->'images_usable' AS usable,
       d->'evaluation_result'->'images_skipped' AS skipped, d->'evaluation_result'->'warnings'->0 AS warning,
       jsonb_array_length(d->'evaluation_result'->'quality'->'duplicates') > 0 AS near_duplicates
  FROM training.evaluate_dataset((SELECT id FROM training.datasets WHERE name = 'people')) d;
SELECT (training.get_dataset((SELECT id FROM training.datasets WHERE name = 'people'))->'evaluation_result'->'config') AS config;
SELECT i.evaluation_result->>'reason' AS reason, i.evaluation_result->>'message' AS message
  FROM training.images i WHERE NOT (i.evaluation_result->>'usable')::boolean ORDER BY 1;
SELECT count(*) AS sharp FROM training.images WHERE (evaluation_result->>'sharpness')::float > 40;
-- A stricter config: every face is too small.
SELECT d->'issues' AS issues, d->'evaluation_result'->'errors' AS errors
  FROM training.evaluate_dataset((SELECT id FROM training.datasets WHERE name = 'people'), '{"min_face_size": 500}') d;
SELECT pg_temp.try($$SELECT training.evaluate_dataset((SELECT id FROM training.datasets WHERE name = 'people'), '{"min_face": 5}')$$);
SELECT pg_temp.try($$SELECT training.evaluate_dataset('00000000-0000-0000-0000-000000000000')$$);

-- A training end to end: the filters skip and count, the model recognizes.
SELECT training.create_training((SELECT id FROM training.datasets WHERE name = 'people'), 'people-model')->>'id' AS t \gset
SELECT pg_temp.wait(:'t');
SELECT state, error, progress FROM training.trainings;
SELECT version_number, metrics->'images_used' AS used, metrics->'images_skipped' AS skipped,
       metrics->'classes' AS classes, metrics->'train_accuracy' AS train_accuracy,
       (metrics->>'feature_dim')::int > 0 AS features, metrics->>'feature_kind' AS kind,
       substr(parameters, 1, 4) AS magic
  FROM training.model_versions;

-- recognize(): a new image of each class, by name, name==N and version id.
SELECT r->>'model' AS model, r->'detections'->0->>'label' AS label, r->'detections'->0->>'reference' AS reference,
       (r->'detections'->0->>'class_id') = (SELECT id::text FROM training.classes WHERE label = v.label) AS class_id,
       (r->'detections'->0->>'distance')::float BETWEEN 0 AND 1 AS near,
       (r->'detections'->0->>'confidence')::float > 0.5 AS confident,
       jsonb_array_length(r->'detections'->0->'top_k') AS top_k,
       r->'detections'->0->'box' ?& ARRAY['x', 'y', 'width', 'height'] AS box
  FROM (VALUES (0, 'ada'), (1, 'bob'), (2, 'cyd')) v(k, label),
       LATERAL training.recognize('people-model', pg_temp.face(k, 11)) r;
SELECT training.recognize('people-model==1', pg_temp.face(1, 12), top_k => 1)->'detections'->0->>'label' AS label;
SELECT training.recognize((SELECT id::text FROM training.model_versions), pg_temp.face(0, 12))->'detections'->0->>'label' AS label;
-- Nothing within max_distance 0: no label; max_distance 2: always the closest.
SELECT r->'detections'->0->'label' AS label, r->'detections'->0->'class_id' AS class_id,
       jsonb_array_length(r->'detections'->0->'top_k') AS candidates
  FROM training.recognize('people-model', pg_temp.face(2, 13), max_distance => 0) r;
SELECT training.recognize('people-model', pg_temp.flat(92, 112), max_distance => 2)->'detections'->0->'label' IS NOT NULL AS labelled;
SELECT pg_temp.try($$SELECT training.recognize('no-such-model', pg_temp.face(0, 1))$$);
SELECT pg_temp.try($$SELECT training.recognize('people-model==7', pg_temp.face(0, 1))$$);
SELECT pg_temp.try($$SELECT training.recognize('people-model', 'garbage'::bytea)$$);
SELECT pg_temp.try($$SELECT training.recognize('people-model', substr(pg_temp.face(0, 1), 1, 100))$$);
SELECT pg_temp.try($$SELECT training.recognize('people-model', pg_temp.face(0, 1), top_k => 0)$$);
SELECT pg_temp.try($$SELECT training.recognize('people-model', pg_temp.face(0, 1), max_distance => -1)$$);
SET training.max_image_pixels = 1000;
SELECT pg_temp.try($$SELECT training.recognize('people-model', pg_temp.face(0, 1))$$);
RESET training.max_image_pixels;

-- Failures name the reasons: only unusable faces.
SELECT training.create_dataset('blurry', 'face') ->> 'name' AS name;
SELECT training.create_class((SELECT id FROM training.datasets WHERE name = 'blurry'), l) ->> 'label' AS label
  FROM (VALUES ('x'), ('y')) v(l);
-- x: two sharp 60x60 faces and a flat one; y: flat ones only.
SELECT count(training.add_image(c.id, CASE WHEN c.label = 'y' OR s % 2 = 0 THEN pg_temp.flat(92, 112)
                                           ELSE pg_temp.face(0, s, 60, 60) END))
  FROM training.classes c JOIN training.datasets d ON d.id = c.dataset_id AND d.name = 'blurry', generate_series(1, 3) s;
SELECT training.create_training((SELECT id FROM training.datasets WHERE name = 'blurry'), 'blurry-model')->>'id' AS t \gset
SELECT pg_temp.wait(:'t');
SELECT state, error FROM training.trainings WHERE output_model_name = 'blurry-model';
-- One usable class only.
SELECT training.create_training((SELECT id FROM training.datasets WHERE name = 'blurry'), 'blurry-model',
                                config => '{"min_face_size": 10}')->>'id' AS t \gset
SELECT pg_temp.wait(:'t');
SELECT state, error FROM training.trainings WHERE output_model_name = 'blurry-model' ORDER BY time_created DESC LIMIT 1;
SELECT pg_temp.try($$SELECT training.recognize('blurry-model', pg_temp.face(0, 1))$$);
SELECT count(*) AS models FROM training.models;
ALTER SYSTEM RESET training.face_features;
SELECT pg_reload_conf() AS reloaded;
