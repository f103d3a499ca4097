-- The embedding store (training.image_features): images are measured once, in the background
-- soon after they are added; trainings and evaluate_dataset() read the store instead of
-- decoding; a changed face box or image data is measured again; deleting an image deletes its
-- features; tenants read only their own and write none. Needs the background worker.
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.face(cls int, seed int, w int DEFAULT 92, h int DEFAULT 112) RETURNS bytea
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
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE FUNCTION pg_temp.wait(t uuid) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    FOR i IN 1..600 LOOP
        SELECT state INTO s FROM training.trainings WHERE id = t;
        EXIT WHEN s IN ('completed', 'failed');
        PERFORM pg_sleep(0.2);
    END LOOP;
    RETURN s;
END $$;
-- Images of the dataset with kept features, once there are at least n (or after 60 s).
CREATE FUNCTION pg_temp.measured(n int) RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    k bigint;
BEGIN
    FOR i IN 1..300 LOOP
        SELECT count(DISTINCT f.image_id) INTO k
          FROM training.image_features f JOIN training.images i ON i.id = f.image_id
          JOIN training.classes c ON c.id = i.class_id JOIN training.datasets d ON d.id = c.dataset_id
         WHERE d.name = 'kept';
        EXIT WHEN k >= n;
        PERFORM pg_sleep(0.2);
    END LOOP;
    RETURN k;
END $$;

SELECT training.create_dataset('kept', 'face') ->> 'id' AS ds \gset
SELECT training.create_class(:'ds', 'ada') ->> 'id' AS ada \gset
SELECT training.create_class(:'ds', 'bob') ->> 'id' AS bob \gset
SELECT count(training.add_image(c, pg_temp.face(k, s)))
  FROM (VALUES (:'ada'::uuid, 0), (:'bob'::uuid, 1)) v(c, k), generate_series(1, 4) s;

-- Measured in the background, without a training: one row per image, its region and features.
SELECT pg_temp.measured(8) AS measured;
SELECT status, cardinality(regions) / 8 AS regions, array_ndims(features) AS ndims, count(*)
  FROM training.image_features f JOIN training.images i ON i.id = f.image_id
 WHERE i.class_id IN (:'ada', :'bob') GROUP BY 1, 2, 3;

-- A training reads the store: it decodes no image.
SELECT training.create_training(:'ds', 'kept-model') ->> 'id' AS t1 \gset
SELECT pg_temp.wait(:'t1');
SELECT metrics->'images_used' AS used, metrics->'images_measured' AS measured
  FROM training.model_versions WHERE training_id = :'t1';

-- So does evaluate_dataset(), and it says so.
SELECT d->'evaluation_result'->'features'->'images_from_store' AS from_store,
       d->'evaluation_result'->'features'->'images_measured' AS measured,
       d->'evaluation_result'->'images_usable' AS usable
  FROM training.evaluate_dataset(:'ds') d;
SELECT count(*) FILTER (WHERE from_store) AS from_store, count(*) FILTER (WHERE features IS NOT NULL) AS with_features
  FROM training.dataset_features(:'ds');

-- Features from the store are the features of the images: a training after the store was
-- emptied (it measures them again) writes the same model parameters.
DELETE FROM training.image_features f USING training.images i
 WHERE i.id = f.image_id AND i.class_id IN (:'ada', :'bob');
SELECT training.create_training(:'ds', 'kept-model') ->> 'id' AS t2 \gset
SELECT pg_temp.wait(:'t2');
SELECT a.parameters = b.parameters AS same_model
  FROM training.model_versions a, training.model_versions b
 WHERE a.training_id = :'t1' AND b.training_id = :'t2';

-- A new face box forgets the image's features at once; they are measured again for the box.
SELECT min(id::text)::uuid AS img FROM training.images WHERE class_id = :'ada' \gset
SELECT pg_temp.measured(8) AS measured;
UPDATE training.images SET face_box = ARRAY[2, 3, 85, 100] WHERE id = :'img';
SELECT count(*) AS kept_for_image FROM training.image_features WHERE image_id = :'img';
SELECT pg_temp.measured(8) AS measured;
SELECT regions[1][1:4] AS region FROM training.image_features WHERE image_id = :'img';
-- Notes and activity do not change what an image shows: its features stay.
UPDATE training.images SET notes = 'seen', active = false WHERE id = :'img';
SELECT count(*) AS kept_for_image FROM training.image_features WHERE image_id = :'img';
UPDATE training.images SET active = true WHERE id = :'img';
-- New data: measured again.
UPDATE training.images SET data = pg_temp.face(0, 9, 100, 120) WHERE id = :'img';
SELECT count(*) AS kept_for_image FROM training.image_features WHERE image_id = :'img';
SELECT pg_temp.measured(8) AS measured;
SELECT width, height, regions[1][1:4] AS region FROM training.image_features WHERE image_id = :'img';

-- Deleting an image deletes its features.
SELECT training.delete_image(:'img') IS NOT NULL AS deleted;
SELECT count(*) AS kept_for_image FROM training.image_features WHERE image_id = :'img';

-- Tenants read the store through dataset_features(), for their own datasets only, and write none.
CREATE ROLE regress_feat_tenant;
SELECT training.grant_access('regress_feat_tenant');
SET ROLE regress_feat_tenant;
SELECT pg_temp.try($$SELECT count(*) FROM training.image_features$$);
SELECT pg_temp.try($$DELETE FROM training.image_features$$);
SELECT left(pg_temp.try($$SELECT * FROM training.dataset_features('$$ || :'ds' || $$')$$), 5) AS other_owner;
SELECT training.create_dataset('mine', 'landmark') ->> 'id' AS mine \gset
SELECT training.create_class(:'mine', 'tower') ->> 'id' AS tower \gset
SELECT training.add_image(:'tower', pg_temp.face(3, 1)) ->> 'id' AS timg \gset
SELECT set_config('f.timg', :'timg', false) IS NOT NULL AS noted;
SELECT kind, result->'usable' AS usable, cardinality(features) > 0 AS has_features
  FROM training.dataset_features(:'mine');
RESET ROLE;
-- Kept (by that call, or by a worker whose keep made the call skip it) as the image owner's.
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN EXISTS (SELECT FROM training.image_features WHERE image_id = current_setting('f.timg')::uuid);
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT owner, status FROM training.image_features WHERE image_id = :'timg';

-- Data quality from the features, in evaluate_dataset(): a picture in the wrong class, the same
-- picture in two classes, and a class holding two kinds of picture, each named with its images.
CREATE FUNCTION pg_temp.pic(k int, s int) RETURNS bytea
    LANGUAGE sql AS $$
SELECT convert_to(E'P5\n96 96\n255\n', 'SQL_ASCII') ||
       decode(string_agg(lpad(to_hex(v), 2, '0'), '' ORDER BY y, x), 'hex')
  FROM (SELECT x, y, (128 + 70 * sin((0.35 + 0.05 * s) * (x * cos(k * 0.45) + y * sin(k * 0.45)) + s * 0.7)
                      + ((x * 7919 + y * 104729 + s * 31) % 30) - 15)::int AS v
          FROM generate_series(0, 95) y, generate_series(0, 95) x) p
$$;
CREATE FUNCTION pg_temp.rings(s int) RETURNS bytea
    LANGUAGE sql AS $$
SELECT convert_to(E'P5\n96 96\n255\n', 'SQL_ASCII') ||
       decode(string_agg(lpad(to_hex(v), 2, '0'), '' ORDER BY y, x), 'hex')
  FROM (SELECT x, y, (128 + 90 * sin(0.6 * sqrt((x - 48 - s) ^ 2 + (y - 48 + s) ^ 2))
                      + ((x * 7919 + y * 104729 + s * 31) % 30) - 15)::int AS v
          FROM generate_series(0, 95) y, generate_series(0, 95) x) p
$$;
SELECT training.create_dataset('quality', 'landmark') ->> 'id' AS q \gset
SELECT count(training.add_image((training.create_class(:'q', 'p' || k) ->> 'id')::uuid, pg_temp.pic(k, 0)))
  FROM generate_series(0, 2) k;
SELECT count(training.add_image(c.id, pg_temp.pic(k, s)))
  FROM generate_series(0, 2) k JOIN training.classes c ON c.dataset_id = :'q' AND c.label = 'p' || k,
       generate_series(1, 4) s;
SELECT training.create_class(:'q', 'mix') ->> 'id' AS mix \gset
SELECT count(training.add_image(:'mix', p)) FROM generate_series(1, 3) s, LATERAL (VALUES (pg_temp.pic(4, s)), (pg_temp.rings(s))) v(p);
SELECT training.add_image((SELECT id FROM training.classes WHERE dataset_id = :'q' AND label = 'p1'), pg_temp.pic(0, 5))
       ->> 'id' AS moved \gset
SELECT training.add_image((SELECT id FROM training.classes WHERE dataset_id = :'q' AND label = 'p2'), pg_temp.pic(1, 2))
       ->> 'id' AS copied \gset
SELECT q->'mislabelled' @> jsonb_build_array(jsonb_build_object('image_id', :'moved')) AS moved_found,
       q->'mislabelled' @> jsonb_build_array(jsonb_build_object('image_id', :'copied')) AS copy_found_too,
       jsonb_array_length(q->'duplicates') AS duplicates,
       q->'duplicates'->0->'image_ids' ? :'copied' AS copy_found,
       q->'duplicates'->0->'same_class' AS same_class,
       jsonb_array_length(q->'mixed_classes') AS mixed,
       q->'mixed_classes'->0->>'class_id' = :'mix' AS mix_found,
       q->'mixed_classes'->0->'images' AS mix_images
  FROM (SELECT training.evaluate_dataset(:'q')->'evaluation_result'->'quality' AS q) e;
SELECT split_part(regexp_replace(w, '^[0-9]+ ', 'N '), ':', 1) AS warning
  FROM jsonb_array_elements_text(training.get_dataset(:'q')->'evaluation_result'->'warnings') w;
SELECT pg_temp.try($$SELECT training.feature_issues('{}', '{}', '{}')$$) AS empty,
       pg_temp.try($$SELECT training.feature_issues(ARRAY[gen_random_uuid()], '{}', '{{1}}')$$) AS mismatch,
       pg_temp.try($$SELECT training.feature_issues(ARRAY[gen_random_uuid()], ARRAY[gen_random_uuid()], '{1}')$$) AS flat;
SELECT training.delete_dataset(:'q') IS NOT NULL AS deleted;

-- Errors.
SELECT pg_temp.try($$SELECT * FROM training.dataset_features(NULL)$$);
SELECT pg_temp.try($$SELECT * FROM training.dataset_features('$$ || :'ds' || $$', '{"min_face": 5}')$$);

SELECT array_agg(id) AS imgs FROM training.images WHERE class_id IN (:'ada', :'bob', :'tower') \gset
SELECT training.delete_dataset(:'mine') IS NOT NULL AS deleted;
SELECT training.delete_dataset(:'ds') IS NOT NULL AS deleted;
SELECT count(*) AS kept FROM training.image_features WHERE image_id = ANY (:'imgs');
SELECT training.revoke_access('regress_feat_tenant');
DROP ROLE regress_feat_tenant;
