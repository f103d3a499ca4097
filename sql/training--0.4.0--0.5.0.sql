-- training 0.4.0 -> 0.5.0: ALTER EXTENSION training UPDATE TO '0.5.0'.
-- An upgraded database equals a fresh install of 0.5.0 (test/upgrade/run.sh compares the catalogs).
-- The embedding store: what a feature kind measured in an image (face regions, sharpness,
-- gender, feature vectors) is kept in training.image_features, filled by the background workers
-- after upload or by the first training or evaluation that needs it; trainings and
-- evaluate_dataset() read it instead of decoding the images again. Tenants read it through
-- dataset_features(); it is not granted to them, so grant_access() is unchanged.
\echo Use "ALTER EXTENSION training UPDATE TO '0.5.0'" to load this file. \quit

-- images.content_version (00_schema.sql). image_json()'s SQL-standard body depends on the images
-- row type, which ADD COLUMN may not change under it: it is made again, unchanged.
DROP FUNCTION training.image_json(training.images);
ALTER TABLE training.images ADD COLUMN content_version bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN training.images.content_version IS
    'Version of data and face_box (read-only): set when the image is added, advanced by every change of them; the embedding store keys on it';
CREATE FUNCTION training.image_json(i training.images) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    RETURN jsonb_build_object(
        'id', i.id,
        'uri', 'image://' || i.id,
        'class_id', i.class_id,
        'format', i.format,
        'width', i.width,
        'height', i.height,
        'size', octet_length(i.data),
        'face_box', CASE WHEN i.face_box IS NOT NULL THEN jsonb_build_object(
            'x', i.face_box[1], 'y', i.face_box[2], 'width', i.face_box[3], 'height', i.face_box[4]) END,
        'active', i.active,
        'notes', i.notes,
        'evaluation_result', i.evaluation_result,
        'time_created', to_char(i.time_created AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
        'time_updated', to_char(i.time_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'));
COMMENT ON FUNCTION training.image_json(training.images) IS 'The Image object of an images row, without the bytes (used by the image functions)';

------------------------------------------------------------------------------------------------
-- Embedding store (0.5.0): what a feature kind measured in an image (src/core/measure.h),
-- computed once per (image data and face box, feature kind) by the background workers soon
-- after the image is added, or by the first training or evaluation that needs it. Trainings
-- and evaluate_dataset() read it instead of decoding the image. Changing an image's data or
-- face box forgets its rows; deleting the image deletes them.
------------------------------------------------------------------------------------------------
-- What an image shows changes only with its data and face box: images.content_version counts
-- those changes (00_schema.sql), and a kept measurement is used only for the content_version it
-- was measured from (so no snapshot, however old, can pair new data with old features).
CREATE FUNCTION training._images_content_version() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Its own starting point (microseconds), not the caller's: an image deleted and added
        -- again under its id never meets a measurement of the one before. A restore keeps it.
        IF NOT training.restoring_dump() THEN
            NEW.content_version := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.content_version IS DISTINCT FROM OLD.content_version AND NOT training.in_background_worker() THEN
        PERFORM training.refuse_read_only('images', 'content_version', 'It counts the changes of data and face_box.');
    END IF;
    IF NEW.data IS DISTINCT FROM OLD.data OR NEW.face_box IS DISTINCT FROM OLD.face_box THEN
        NEW.content_version := OLD.content_version + 1;
    END IF;
    RETURN NEW;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._images_content_version() IS
    'Trigger: set content_version of a new image, count the changes of its data and face box in it (read-only)';
-- After images_before, which normalises face_box.
CREATE TRIGGER images_content_version BEFORE INSERT OR UPDATE OF data, face_box, content_version ON training.images
    FOR EACH ROW EXECUTE FUNCTION training._images_content_version();

CREATE TABLE training.image_features (
    image_id     uuid NOT NULL REFERENCES training.images (id) ON DELETE CASCADE,
    kind         text NOT NULL,
    content_version bigint NOT NULL,
    owner        name NOT NULL,
    status       text NOT NULL,
    message      text NOT NULL DEFAULT '',
    max_pixels   bigint NOT NULL,
    width        integer NOT NULL DEFAULT 0,
    height       integer NOT NULL DEFAULT 0,
    regions      real[] NOT NULL,
    features     real[],
    time_created timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (image_id, kind),
    CONSTRAINT image_features_status_valid
        CHECK (status IN ('measured', 'undecodable', 'too_large', 'box_outside_image'))
);
COMMENT ON TABLE training.image_features IS
    'Embedding store: an image''s face regions and feature vectors for one feature kind, computed once and reused by every training and evaluation (read and written by the extension; tenants read it through dataset_features())';
COMMENT ON COLUMN training.image_features.image_id IS 'The image';
COMMENT ON COLUMN training.image_features.kind IS 'Feature kind and version (e.g. face-api-resnet-v1, face-lbp-hog-v1)';
COMMENT ON COLUMN training.image_features.content_version IS
    'The image''s content_version it was measured from (another one: not used, measured again)';
COMMENT ON COLUMN training.image_features.owner IS 'Owner of the image';
COMMENT ON COLUMN training.image_features.status IS
    'measured, or why the image has no region: undecodable, too_large (under max_pixels), box_outside_image';
COMMENT ON COLUMN training.image_features.message IS 'Why, when status is not measured';
COMMENT ON COLUMN training.image_features.max_pixels IS 'training.max_image_pixels it was decoded under (0: none)';
COMMENT ON COLUMN training.image_features.width IS 'Decoded width in pixels (0: not decoded)';
COMMENT ON COLUMN training.image_features.height IS 'Decoded height in pixels (0: not decoded)';
COMMENT ON COLUMN training.image_features.regions IS
    'Candidate face regions, one row each: {x, y, width, height, detected (0/1), side, sharpness, p_male (-1: unknown)}; '
    'the face box, else the faces found (largest first), else the whole image';
COMMENT ON COLUMN training.image_features.features IS 'Feature vector of each region, one row each (NULL: not computed)';
COMMENT ON COLUMN training.image_features.time_created IS 'When it was measured';

SELECT pg_catalog.pg_extension_config_dump('training.image_features', '');

-- Forget the features of an image whose data or face box changed (definer's rights: tenants
-- cannot write the store). Cleanup only: readers match content_version.
CREATE FUNCTION training._images_features_forget() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    DELETE FROM training.image_features f WHERE f.image_id = NEW.id;
    RETURN NULL;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._images_features_forget() IS
    'Trigger: delete the kept features of an image whose data or face box changed';
CREATE TRIGGER images_features_forget AFTER UPDATE OF data, face_box ON training.images
    FOR EACH ROW WHEN (OLD.data IS DISTINCT FROM NEW.data OR OLD.face_box IS DISTINCT FROM NEW.face_box)
    EXECUTE FUNCTION training._images_features_forget();

-- Wake the workers at commit: new or changed images get their features in the background.
CREATE FUNCTION training._images_features_wake() RETURNS trigger
    AS 'MODULE_PATHNAME', 'training_features_wake_trigger'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._images_features_wake() IS
    'Trigger: at commit, wake a background worker to compute the features of new or changed images';
CREATE TRIGGER images_features_wake AFTER INSERT OR UPDATE OF data, face_box ON training.images
    FOR EACH STATEMENT EXECUTE FUNCTION training._images_features_wake();

REVOKE ALL ON FUNCTION training._images_features_forget(), training._images_features_wake(),
    training._images_content_version() FROM PUBLIC;

-- What a training of a dataset with a config would do with each image it reads, and the
-- features it would use, from the store (src/embeddings.c); images without a kept measurement
-- are measured now and kept. The images are read with the caller's rights (row-level security
-- applies), their rows of the store with its owner's.
CREATE FUNCTION training.dataset_features(dataset_id uuid, config jsonb DEFAULT '{}')
    RETURNS TABLE (image_id uuid, class_id uuid, kind text, from_store boolean, result jsonb,
                   box integer[], features real[])
    AS 'MODULE_PATHNAME', 'training_dataset_features'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.dataset_features(uuid, jsonb) IS
    'For each image a training of the dataset would read: check_image()''s result for the config, the face region and '
    'the feature vector it would use (null when skipped), and whether it came from the embedding store; '
    'P0002 for an unknown dataset, 22023 for a bad config';

-- Data-quality checks on feature vectors (src/core/dataquality.h): images closer to another
-- class than to their own, near-duplicates, classes that form two groups. Pure computation on
-- its arguments (bounded by them, cancellable); evaluate_dataset() runs it on a dataset.
CREATE FUNCTION training.feature_issues(image_ids uuid[], class_ids uuid[], features real[]) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_feature_issues'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.feature_issues(uuid[], uuid[], real[]) IS
    'Data-quality checks of labelled feature vectors (features: one row per image): {"mislabelled", "duplicates", '
    '"duplicates_checked", "duplicates_truncated", "mixed_classes"}; 22023 for arrays that do not match';

-- The background pass of the workers walks the images in this order (src/extract.c).
CREATE INDEX images_created_idx ON training.images (time_created, id);

-- Row-level security, as on the other tables (40_access.sql).
ALTER TABLE training.image_features ENABLE ROW LEVEL SECURITY;
-- The store is read and written by the extension (workers, dataset_features()); tenants are not
-- granted it. Should an administrator grant SELECT, a role sees only its own images' features.
CREATE POLICY image_features_owner ON training.image_features USING (owner = current_user);
CREATE POLICY image_features_admin ON training.image_features TO training_admin USING (true);
COMMENT ON POLICY image_features_owner ON training.image_features IS 'A role sees the features of its own images';
COMMENT ON POLICY image_features_admin ON training.image_features IS 'Members of training_admin see every image''s features';
-- Members of training_admin may also read the embedding store (tenants use dataset_features()).
GRANT SELECT ON training.image_features TO training_admin;

-- evaluate_dataset() reads the store (dataset_features()) and reports how.
CREATE OR REPLACE FUNCTION training.evaluate_dataset(id uuid, config jsonb DEFAULT '{}') RETURNS jsonb
    LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    ds training.datasets;
    cfg jsonb;
    n_checked integer;
    n_usable integer;
    n_classes integer;
    skipped jsonb;
    no_usable text[];
    one_usable text[];
    errors text[] := '{}';
    warnings text[] := '{}';
    what text;
    quality jsonb;
    n_q integer;
BEGIN
    IF evaluate_dataset.id IS NULL THEN
        RAISE EXCEPTION 'dataset id must not be NULL'
            USING ERRCODE = '22023', HINT = 'Pass the id of a dataset (see training.list_datasets()).';
    END IF;
    SELECT * INTO ds FROM training.datasets d WHERE d.id = evaluate_dataset.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dataset % not found', evaluate_dataset.id
            USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_datasets().';
    END IF;
    cfg := training.effective_config(ds.type, coalesce(config, '{}'));     -- 22023 for a bad config
    -- One evaluation of a dataset at a time: two would lock its images in different orders.
    PERFORM pg_advisory_xact_lock(hashtextextended('training.evaluate_dataset ' || ds.id, 0));
    what := CASE ds.type WHEN 'face' THEN 'face' ELSE 'image' END;

    -- Images a training would read: active images of active, unexpired classes.
    -- Read from the embedding store; images not in it yet are measured now (and kept).
    CREATE TEMP TABLE IF NOT EXISTS pg_temp.training_eval (image_id uuid, class_id uuid, label text, r jsonb,
                                                           kind text, from_store boolean, features real[])
        ON COMMIT DROP;
    TRUNCATE pg_temp.training_eval;
    INSERT INTO pg_temp.training_eval
    SELECT f.image_id, f.class_id, c.label, f.result, f.kind, f.from_store, f.features
      FROM training.dataset_features(ds.id, cfg) f JOIN training.classes c ON c.id = f.class_id;
    UPDATE training.images i SET evaluation_result = e.r
      FROM pg_temp.training_eval e WHERE i.id = e.image_id AND i.evaluation_result IS DISTINCT FROM e.r;

    SELECT count(*), count(*) FILTER (WHERE (r->>'usable')::boolean) INTO n_checked, n_usable
      FROM pg_temp.training_eval;
    SELECT coalesce(jsonb_object_agg(reason, n), '{}') INTO skipped
      FROM (SELECT r->>'reason' AS reason, count(*) AS n FROM pg_temp.training_eval
             WHERE NOT (r->>'usable')::boolean GROUP BY 1) s;
    SELECT count(*) FILTER (WHERE u > 0),
           coalesce(array_agg(label ORDER BY label) FILTER (WHERE u = 0), '{}'),
           coalesce(array_agg(label ORDER BY label) FILTER (WHERE u = 1), '{}')
      INTO n_classes, no_usable, one_usable
      FROM (SELECT c.label, count(*) FILTER (WHERE (e.r->>'usable')::boolean) AS u
              FROM training.classes c LEFT JOIN pg_temp.training_eval e ON e.class_id = c.id
             WHERE c.dataset_id = ds.id AND c.active
               AND (c.expiration_date IS NULL OR c.expiration_date > now())
             GROUP BY c.id, c.label) per_class;

    IF n_usable = 0 THEN
        errors := errors || format('no usable %s: %s images skipped', what, n_checked - n_usable);
    ELSIF n_classes < 2 THEN
        errors := errors || format('fewer than two classes with a usable %s (found %s)', what, n_classes);
    END IF;
    IF n_checked > n_usable THEN
        warnings := warnings || format('%s of %s images would be skipped', n_checked - n_usable, n_checked);
    END IF;
    IF cardinality(no_usable) > 0 THEN
        warnings := warnings || format('no usable %s in %s (not in the model): %s', what,
            CASE cardinality(no_usable) WHEN 1 THEN '1 class' ELSE cardinality(no_usable) || ' classes' END,
            array_to_string(no_usable[1:10], ', ') || CASE WHEN cardinality(no_usable) > 10 THEN ', ...' ELSE '' END);
    END IF;
    IF cardinality(one_usable) > 0 THEN
        warnings := warnings || format('a single usable %s in %s (none left to validate): %s', what,
            CASE cardinality(one_usable) WHEN 1 THEN '1 class' ELSE cardinality(one_usable) || ' classes' END,
            array_to_string(one_usable[1:10], ', ') || CASE WHEN cardinality(one_usable) > 10 THEN ', ...' ELSE '' END);
    END IF;

    -- Data quality from the features of the usable images (src/core/dataquality.h).
    SELECT training.feature_issues(array_agg(image_id ORDER BY image_id), array_agg(class_id ORDER BY image_id),
                                   array_agg(features ORDER BY image_id))
      INTO quality FROM pg_temp.training_eval WHERE features IS NOT NULL;
    n_q := coalesce(jsonb_array_length(quality->'mislabelled'), 0);
    IF n_q > 0 THEN
        warnings := warnings || format('%s %s closer to another class than to their own (likely mislabelled): %s', n_q,
            CASE n_q WHEN 1 THEN 'image is' ELSE 'images are' END,
            (SELECT string_agg(format('%s in %s (closer to %s)', e->>'image_id', c1.label, c2.label), ', ' ORDER BY o)
               FROM jsonb_array_elements(quality->'mislabelled') WITH ORDINALITY q(e, o)
               JOIN training.classes c1 ON c1.id = (e->>'class_id')::uuid
               JOIN training.classes c2 ON c2.id = (e->>'closer_class_id')::uuid
              WHERE o <= 10) || CASE WHEN n_q > 10 THEN ', ...' ELSE '' END);
    END IF;
    n_q := coalesce(jsonb_array_length(quality->'duplicates'), 0);
    IF n_q > 0 THEN
        warnings := warnings || format('%s %s of near-duplicate images (%s across classes): %s', n_q,
            CASE n_q WHEN 1 THEN 'pair' ELSE 'pairs' END,
            (SELECT count(*) FROM jsonb_array_elements(quality->'duplicates') e WHERE NOT (e->>'same_class')::boolean),
            (SELECT string_agg(format('%s and %s', e->'image_ids'->>0, e->'image_ids'->>1), ', ' ORDER BY o)
               FROM jsonb_array_elements(quality->'duplicates') WITH ORDINALITY q(e, o) WHERE o <= 10)
            || CASE WHEN n_q > 10 THEN ', ...' ELSE '' END);
    END IF;
    n_q := coalesce(jsonb_array_length(quality->'mixed_classes'), 0);
    IF n_q > 0 THEN
        warnings := warnings || format('%s %s like two different groups (two people or places under one label?): %s', n_q,
            CASE n_q WHEN 1 THEN 'class looks' ELSE 'classes look' END,
            (SELECT string_agg(format('%s (%s of %s images apart: %s)', c.label, e->>'group', e->>'images',
                                      (SELECT string_agg(v, ', ' ORDER BY vo) || CASE WHEN count(*) < (e->>'group')::int
                                                                                     THEN ', ...' ELSE '' END
                                         FROM jsonb_array_elements_text(e->'image_ids') WITH ORDINALITY w(v, vo)
                                        WHERE vo <= 10)),
                               '; ' ORDER BY o)
               FROM jsonb_array_elements(quality->'mixed_classes') WITH ORDINALITY q(e, o)
               JOIN training.classes c ON c.id = (e->>'class_id')::uuid
              WHERE o <= 10) || CASE WHEN n_q > 10 THEN '; ...' ELSE '' END);
    END IF;

    UPDATE training.datasets d SET
        evaluation_result = jsonb_build_object(
            'config', cfg, 'images_checked', n_checked, 'images_usable', n_usable,
            'images_skipped', skipped, 'classes_usable', n_classes,
            'classes_without_usable_images', to_jsonb(no_usable),
            'classes_with_one_usable_image', to_jsonb(one_usable),
            'errors', to_jsonb(errors), 'warnings', to_jsonb(warnings),
            'gender_statistics', CASE WHEN ds.type = 'face' THEN
                (SELECT jsonb_build_object('male', count(*) FILTER (WHERE r->>'gender' = 'male'),
                                           'female', count(*) FILTER (WHERE r->>'gender' = 'female'))
                   FROM pg_temp.training_eval) END,
            'quality', quality,
            'features', (SELECT jsonb_build_object('kind', min(kind),
                                                   'images_from_store', count(*) FILTER (WHERE from_store),
                                                   'images_measured', count(*) FILTER (WHERE NOT from_store))
                           FROM pg_temp.training_eval),
            'time_evaluated', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')),
        evaluation_state = 1,
        issues = jsonb_build_object('has_error', cardinality(errors) > 0, 'has_warning', cardinality(warnings) > 0)
     WHERE d.id = ds.id;
    DROP TABLE pg_temp.training_eval;
    RETURN training.get_dataset(ds.id);
END $$
    SET search_path = pg_catalog, pg_temp;
