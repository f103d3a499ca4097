-- training 0.7.0 -> 0.8.0: no advisory lock that another role can hold.
--
-- The model name locks of create_training and of the models_delete trigger, and the lock of
-- evaluate_dataset, were pg_advisory_xact_lock() keys that any role could compute and hold, e.g.
-- pg_advisory_lock(hashtextextended('training.model:<owner>:<name>', 0)), stalling another
-- tenant's creations. The name locks now use lock tags no SQL function can name, keyed by the
-- owner's role OID (src/locks.c): _models_delete is now C. evaluate_dataset takes the new
-- training.lock_dataset(), in the same private space (its new body is that of
-- sql/install/30_pipeline.sql). Run this right
-- after installing the 0.8.0 library and restarting the server (the library is preloaded, and
-- this script needs its new functions): until then a model's deletion (the old trigger) does not
-- wait for the creations that found the model.

\echo Use "ALTER EXTENSION training UPDATE TO '0.8.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION training._models_delete() RETURNS trigger
    AS 'MODULE_PATHNAME', 'training_models_delete'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;

-- Hold a dataset's evaluation lock until the end of the transaction (src/locks.c): evaluations of
-- the dataset wait for it. evaluate_dataset() takes it first, so evaluations take turns. A lock in
-- the extension's own lock space, keyed by the owner: only for a dataset the caller can see.
CREATE FUNCTION training.lock_dataset(dataset_id uuid) RETURNS void
    AS 'MODULE_PATHNAME', 'training_lock_dataset'
    LANGUAGE C VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.lock_dataset(uuid) IS
    'Hold the evaluation lock of a dataset until the end of the transaction (evaluate_dataset waits for it); P0002 for a dataset the caller cannot see';

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
