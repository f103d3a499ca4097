------------------------------------------------------------------------------------------------
-- Pipeline: image decoding on insert, recognition, dataset evaluation (src/recognize.c)
------------------------------------------------------------------------------------------------

-- Decode every stored image completely: fill format (jpeg, png, pgm, ppm), width and height,
-- and refuse data that does not decode or is larger than training.max_image_pixels (22023).
CREATE FUNCTION training._images_decode() RETURNS trigger
    AS 'MODULE_PATHNAME', 'training_images_decode'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._images_decode() IS
    'Trigger: decode the image data, fill format/width/height; 22023 when it does not decode or is too large';
CREATE TRIGGER images_decode BEFORE INSERT OR UPDATE OF data ON training.images
    FOR EACH ROW EXECUTE FUNCTION training._images_decode();

REVOKE ALL ON FUNCTION training._images_decode() FROM PUBLIC;

-- Recognize the faces (face models) or the place (landmark models) of an image (src/recognize.c).
-- The model is a name (latest version), name==N or a uuid, resolved by resolve_model() with the
-- caller's rights; the parameters are read (under the caller's row-level security) only when this
-- session has not parsed that version for this role yet.
-- distance: from the image's normalised embedding to the class centre, 0..2; the label,
-- class_id and reference are null when the closest class is farther than max_distance.
CREATE FUNCTION training.recognize(model text, image bytea, max_distance float8 DEFAULT 1.0,
                                   top_k integer DEFAULT 3) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_recognize'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.recognize(text, bytea, float8, integer) IS
    'Recognize an image: {"model": "name==N", "detections": [{"box", "label", "class_id", "reference", "confidence", "distance", "top_k"}]}; P0002 for an unknown model, 22023 for an image that does not decode';

-- What a training with config would do with an image (the same decoding, face filters and config
-- reader as a training).
CREATE FUNCTION training.check_image(data bytea, face_box integer[], type text, config jsonb DEFAULT '{}')
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_check_image_config'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.check_image(bytea, integer[], text, jsonb) IS
    'What a training of a type with a config would do with one image: {"usable", "reason", "message", "sharpness", "gender"}; '
    '22023 for a bad type or config';

-- Hold a dataset's evaluation lock until the end of the transaction (src/locks.c): evaluations of
-- the dataset wait for it. evaluate_dataset() takes it first, so evaluations take turns. A lock in
-- the extension's own lock space, keyed by the owner: only for a dataset the caller can see.
CREATE FUNCTION training.lock_dataset(dataset_id uuid) RETURNS void
    AS 'MODULE_PATHNAME', 'training_lock_dataset'
    LANGUAGE C VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.lock_dataset(uuid) IS
    'Hold the evaluation lock of a dataset until the end of the transaction (evaluate_dataset waits for it); P0002 for a dataset the caller cannot see';

-- Evaluate a dataset for training with a config (default: the defaults of a training), with the
-- same decoding and face filters as a training. Stores, and returns through get_dataset:
--   images.evaluation_result     {"usable", "reason", "message", "sharpness"} per active image
--   datasets.evaluation_result   {"config", "images_checked", "images_usable", "images_skipped",
--                                 "classes_usable", "classes_without_usable_images",
--                                 "classes_with_one_usable_image", "errors", "warnings", "gender_statistics",
--                                 "features": {"kind", "images_from_store", "images_measured"},
--                                 "quality": feature_issues() of the usable images' features,
--                                 "time_evaluated"}
--   datasets.evaluation_state    1 (evaluated; 0 = never evaluated)
--   datasets.issues              has_error: a training would fail; has_warning: data would be skipped,
--                                or the data-quality checks found something
CREATE FUNCTION training.evaluate_dataset(id uuid, config jsonb DEFAULT '{}') RETURNS jsonb
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
    PERFORM training.lock_dataset(ds.id);
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
COMMENT ON FUNCTION training.evaluate_dataset(uuid, jsonb) IS
    'Evaluate a dataset for training with a config (same decoding and filters as a training): fills evaluation_result, evaluation_state and issues of the dataset and evaluation_result of its images; returns the Dataset object';
