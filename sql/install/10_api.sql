-- training: the SQL API (DESIGN.md "SQL API") and the triggers that make direct use of the
-- tables equivalent to it. Every function is SECURITY INVOKER: row-level security (added later)
-- applies to the caller. The Training, Dataset and Model objects are rendered in C (src/render.c)
-- from one saved query each; classes and images by small SQL functions.

------------------------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------------------------

CREATE FUNCTION training.in_background_worker() RETURNS boolean
    AS 'MODULE_PATHNAME', 'training_in_background_worker'
    LANGUAGE C STABLE PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.in_background_worker() IS
    'True in a background worker of this extension (launcher, training workers); only those may write the read-only columns of trainings';

CREATE FUNCTION training.restoring_dump() RETURNS boolean
    AS 'MODULE_PATHNAME', 'training_restoring_dump'
    LANGUAGE C STABLE PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.restoring_dump() IS
    'True while a superuser restores a dump (check_function_bodies and row_security off, as pg_dump/pg_restore set them): rows are then written as dumped';

-- Functions named training._* are internal (triggers, the worker): not executable by PUBLIC or by
-- the roles grant_access() sets up. The API functions run with the caller's rights, so the helpers
-- they call are public too: pure, or reading only what the caller's row-level security shows
-- (docs/reference.md, "Function privileges").

-- Limits on text a tenant sends: names, labels and references up to 200 characters, not blank
-- (whitespace only counts as blank); descriptions, notes and changelogs up to 10000 characters.
CREATE FUNCTION training.validate_text(what text, value text, max_length integer DEFAULT 200,
                                       blank_ok boolean DEFAULT false) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Blank: whitespace and invisible spaces only (no-break, em, ideographic, zero-width, BOM).
    IF value IS NULL OR (NOT blank_ok AND value ~ E'^[[:space:]\u0085\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]*$') THEN
        RAISE EXCEPTION '% must not be empty', what
            USING ERRCODE = '22023', HINT = format('Give the %s at least one visible character.', what);
    END IF;
    IF length(value) > max_length THEN
        RAISE EXCEPTION '% is too long: % characters (at most %)', what, length(value), max_length
            USING ERRCODE = '22023', HINT = format('Shorten the %s to %s characters or fewer.', what, max_length);
    END IF;
END $$;
COMMENT ON FUNCTION training.validate_text(text, text, integer, boolean) IS
    'Raise 22023 when a text is NULL, blank (unless blank_ok) or longer than max_length characters '
    '(names, labels, references: 200; descriptions, notes, changelogs: 10000)';

-- Refuse bad paging arguments of the list functions.
CREATE FUNCTION training.check_paging("limit" integer, "offset" integer) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF "limit" IS NULL OR "limit" < 1 OR "limit" > 1000 THEN
        RAISE EXCEPTION 'limit must be between 1 and 1000, got %', coalesce("limit"::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Pass "limit" => 1 .. 1000 and page with "offset".';
    END IF;
    IF "offset" IS NULL OR "offset" < 0 THEN
        RAISE EXCEPTION 'offset must be 0 or more, got %', coalesce("offset"::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Pass "offset" => 0 for the first page.';
    END IF;
END $$;
COMMENT ON FUNCTION training.check_paging(integer, integer) IS
    'Raise 22023 unless 1 <= limit <= 1000 and offset >= 0 (the list functions'' paging)';

-- The list envelope: {total, offset, limit, next, prev, data}. next/prev are query strings with
-- the call's filters ("?limit=L&offset=O&state=completed"), or null at the edges; prev of a page
-- past the end is the last page. Computed in bigint: offset => 2147483647 is an empty page.
-- plpgsql rather than SQL: the callers pass subqueries, which would stop a SQL function from
-- being inlined and make it planned on every call.
CREATE FUNCTION training.list_envelope(total bigint, "limit" integer, "offset" integer, data jsonb,
                                       filters text DEFAULT '') RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lim bigint := "limit";
    off bigint := "offset";
BEGIN
    RETURN jsonb_build_object(
        'total', total, 'offset', off, 'limit', lim,
        'next', CASE WHEN off + lim < total
                     THEN format('?limit=%s&offset=%s%s', lim, off + lim, filters) END,
        'prev', CASE WHEN off > 0
                     THEN format('?limit=%s&offset=%s%s', lim,
                                 CASE WHEN off >= total THEN greatest(total - lim, 0)
                                      ELSE greatest(off - lim, 0) END, filters) END,
        'data', coalesce(data, '[]'::jsonb));
END $$;
COMMENT ON FUNCTION training.list_envelope(bigint, integer, integer, jsonb, text) IS
    'The list envelope {total, offset, limit, next, prev, data}; next/prev carry filters (e.g. ''&state=completed''); '
    'prev past the end points to the last page';

-- Owner columns are set from current_user; only a background worker (or a restore) may set another role.
CREATE FUNCTION training.check_owner(tbl text, owner name) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF owner IS DISTINCT FROM current_user AND NOT training.in_background_worker()
       AND NOT training.restoring_dump() THEN
        RAISE EXCEPTION 'owner of a row of training.% is set from the current role (%), not %',
                tbl, current_user, coalesce(quote_literal(left(owner, 100)), 'NULL')
            USING ERRCODE = '42501',
                  HINT = 'Omit owner; to create rows for another role, SET ROLE to it first.';
    END IF;
END $$;
COMMENT ON FUNCTION training.check_owner(text, name) IS
    'Raise 42501 when owner is not current_user outside a background worker (used by the triggers)';

-- Raise 22023 for a read-only column that a statement tried to set.
CREATE FUNCTION training.refuse_read_only(tbl text, col text, hint text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'column "%" of training.% is read-only', col, tbl
        USING ERRCODE = '22023', HINT = hint;
END $$;
COMMENT ON FUNCTION training.refuse_read_only(text, text, text) IS
    'Raise 22023 naming a read-only column (used by the triggers)';

-- True inside the extension's counting triggers: they run as the owner of the tables (SECURITY
-- DEFINER), which no tenant is, so a tenant's own trigger cannot pass for them.
CREATE FUNCTION training.counting() RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    RETURN pg_trigger_depth() >= 2
           AND (SELECT c.relowner FROM pg_class c WHERE c.oid = 'training.datasets'::regclass)
               = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user);
COMMENT ON FUNCTION training.counting() IS
    'True inside the counting triggers of the extension (which run as the tables'' owner): only they may change the kept counters';

------------------------------------------------------------------------------------------------
-- Training config: one reader (src/trconfig.c) for validation, triggers, worker and evaluation
------------------------------------------------------------------------------------------------

-- Integral JSON numbers are integers: 80, 80.0 and 8e1 all mean 80; 80.5 is refused.
CREATE FUNCTION training.validate_config(type text, config jsonb) RETURNS void
    AS 'MODULE_PATHNAME', 'training_validate_config'
    LANGUAGE C IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.validate_config(text, jsonb) IS
    'Check a training config for a dataset type (face: min_face_size integer >= 1, sharpness_threshold integer >= 0, '
    'integral numbers such as 80.0 accepted; landmark: none); raises 22023 naming the key';

CREATE FUNCTION training.effective_config(type text, config jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_effective_config'
    LANGUAGE C IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.effective_config(text, jsonb) IS
    'A config as a training reads it: validated, numbers as integers, the defaults of its type filled in '
    '(face: min_face_size 80, sharpness_threshold 40); raises 22023 like validate_config';

------------------------------------------------------------------------------------------------
-- JSON objects
------------------------------------------------------------------------------------------------

-- The Training, Dataset and Model objects are built in C (src/render.c): get_training is
-- called as often as a plain row select and is benchmarked against it (bench/).
CREATE FUNCTION training.get_training(id uuid) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_get_training'
    LANGUAGE C STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.get_training(uuid) IS
    'The Training object (the seed''s keys, with the nested Dataset and Model objects); P0002 when there is no such training';

CREATE FUNCTION training.get_dataset(id uuid) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_get_dataset'
    LANGUAGE C STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.get_dataset(uuid) IS
    'The Dataset object (counts derived, expired classes counted as inactive); P0002 when there is no such dataset';

CREATE FUNCTION training.model_json(model_id uuid, version integer) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_model_json'
    LANGUAGE C STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.model_json(uuid, integer) IS
    'The Model object at one version (NULL version: none); NULL when there is no such model or the caller cannot see it';

CREATE FUNCTION training.datasets_json(ids uuid[]) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_datasets_json'
    LANGUAGE C STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.datasets_json(uuid[]) IS
    'A JSON array of the Dataset objects of ids, in their order (ids unknown or not visible to the caller are skipped; used by list_datasets)';

-- The Class object.
CREATE FUNCTION training.class_json(c training.classes) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- plpgsql so that the preview query is planned once per session, not once per call.
    RETURN jsonb_build_object(
        'id', c.id,
        'dataset_id', c.dataset_id,
        'reference', c.reference,
        'label', c.label,
        'active', c.active,
        'expired', coalesce(c.expiration_date <= now(), false),
        'notes', c.notes,
        'expiration_date', to_char(c.expiration_date AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
        'number_of_images', c.number_of_images,
        'number_of_active_images', c.number_of_active_images,
        'preview_image', (SELECT 'image://' || im.id FROM training.images im WHERE im.class_id = c.id
                          ORDER BY im.time_created, im.id LIMIT 1),
        'time_created', to_char(c.time_created AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
        'time_updated', to_char(c.time_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'));
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.class_json(training.classes) IS 'The Class object of a classes row (used by the class functions)';

-- The Image object (without the bytes: read training.images.data for those).
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
-- Triggers: direct INSERT/UPDATE/DELETE on the tables behave like the functions
------------------------------------------------------------------------------------------------

-- Datasets: validate, fill defaults, keep counters and read-only columns.
CREATE FUNCTION training._datasets_before() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- A queued or running training still needs the dataset.
        IF EXISTS (SELECT 1 FROM training.trainings t
                    WHERE t.source_dataset_id = OLD.id AND t.state IN ('waiting', 'processing')) THEN
            RAISE EXCEPTION 'dataset % is used by a waiting or processing training', OLD.id
                USING ERRCODE = '55000',
                      HINT = 'Wait until its trainings complete, or delete them first (training.delete_training).';
        END IF;
        RETURN OLD;
    END IF;
    PERFORM training.validate_text('dataset name', NEW.name);
    PERFORM training.validate_text('dataset description', coalesce(NEW.description, ''), 10000, true);
    IF TG_OP = 'INSERT' THEN
        PERFORM training.check_owner('datasets', NEW.owner);
        PERFORM training.validate_config(NEW.type, '{}');    -- refuses a type other than face or landmark
        NEW.description := coalesce(NEW.description, '');
        NEW.version := coalesce(NEW.version, 1);
        NEW.evaluation_result := coalesce(NEW.evaluation_result, '{}');
        NEW.evaluation_state := coalesce(NEW.evaluation_state, 0);
        NEW.time_created := coalesce(NEW.time_created, clock_timestamp());
        NEW.time_updated := NEW.time_created;
        -- Counters are derived: the class and image triggers count what is inserted.
        NEW.number_of_classes := 0;
        NEW.number_of_active_classes := 0;
        NEW.number_of_images := 0;
        NEW.number_of_active_images := 0;
        NEW.number_of_trainable_classes := 0;
        NEW.preview_images := '{}';
        NEW.earliest_expiration := NULL;
        -- No class yet: a training would fail (the seed's empty dataset has has_error true).
        NEW.issues := jsonb_build_object('has_error', true, 'has_warning', NEW.evaluation_state = 2);
        RETURN NEW;
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id THEN
        PERFORM training.refuse_read_only('datasets', 'id', 'Create a new dataset instead.');
    ELSIF NEW.owner IS DISTINCT FROM OLD.owner AND NOT training.in_background_worker() THEN
        PERFORM training.refuse_read_only('datasets', 'owner', 'The owner is the role that created the dataset.');
    ELSIF NEW.type IS DISTINCT FROM OLD.type THEN
        PERFORM training.refuse_read_only('datasets', 'type', 'The type is fixed at creation: create a new dataset of the other type.');
    ELSIF NEW.time_created IS DISTINCT FROM OLD.time_created THEN
        PERFORM training.refuse_read_only('datasets', 'time_created', 'Omit it: it is set at creation.');
    END IF;
    IF (NEW.number_of_classes, NEW.number_of_active_classes, NEW.number_of_images, NEW.number_of_active_images,
        NEW.number_of_trainable_classes, NEW.preview_images, NEW.earliest_expiration)
       IS DISTINCT FROM
       (OLD.number_of_classes, OLD.number_of_active_classes, OLD.number_of_images, OLD.number_of_active_images,
        OLD.number_of_trainable_classes, OLD.preview_images, OLD.earliest_expiration) THEN
        IF NOT training.counting() THEN
            PERFORM training.refuse_read_only('datasets', 'number_of_*, preview_images, earliest_expiration',
                'These follow the classes and images of the dataset: add, change or delete those instead.');
        END IF;
    END IF;
    NEW.description := coalesce(NEW.description, '');
    -- time_updated follows the dataset's own attributes, not the kept counters and previews.
    IF (NEW.name, NEW.description, NEW.version, NEW.evaluation_result, NEW.evaluation_state, NEW.issues)
       IS DISTINCT FROM
       (OLD.name, OLD.description, OLD.version, OLD.evaluation_result, OLD.evaluation_state, OLD.issues) THEN
        NEW.time_updated := clock_timestamp();
    END IF;
    RETURN NEW;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._datasets_before() IS
    'Trigger: validate datasets, fill defaults, protect read-only columns, refuse deleting a dataset in use';
CREATE TRIGGER datasets_before BEFORE INSERT OR UPDATE OR DELETE ON training.datasets
    FOR EACH ROW EXECUTE FUNCTION training._datasets_before();

-- Classes: validate, fill defaults, protect read-only columns.
CREATE FUNCTION training._classes_before() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM training.validate_text('class label', NEW.label);
    IF TG_OP = 'INSERT' THEN
        PERFORM training.check_owner('classes', NEW.owner);
        IF NEW.dataset_id IS NULL THEN
            RAISE EXCEPTION 'dataset_id is required'
                USING ERRCODE = '22023', HINT = 'Pass the id of a dataset (see training.list_datasets()).';
        END IF;
        -- KEY SHARE, as the foreign key check takes it: a concurrent delete of the dataset is
        -- waited for, and then the dataset is "not found" instead of a foreign key violation.
        PERFORM FROM training.datasets d WHERE d.id = NEW.dataset_id FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'dataset % not found', NEW.dataset_id
                USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_datasets(), or create the dataset first.';
        END IF;
        NEW.id := coalesce(NEW.id, gen_random_uuid());
        NEW.reference := coalesce(NEW.reference, NEW.id::text);
        NEW.active := coalesce(NEW.active, true);
        NEW.notes := coalesce(NEW.notes, '');
        NEW.time_created := coalesce(NEW.time_created, clock_timestamp());
        NEW.time_updated := NEW.time_created;
        NEW.number_of_images := 0;
        NEW.number_of_active_images := 0;
    ELSE
        IF NEW.id IS DISTINCT FROM OLD.id THEN
            PERFORM training.refuse_read_only('classes', 'id', 'Create a new class instead.');
        ELSIF NEW.owner IS DISTINCT FROM OLD.owner AND NOT training.in_background_worker() THEN
            PERFORM training.refuse_read_only('classes', 'owner', 'The owner is the role that created the class.');
        ELSIF NEW.dataset_id IS DISTINCT FROM OLD.dataset_id THEN
            PERFORM training.refuse_read_only('classes', 'dataset_id', 'A class stays in its dataset: create a new class in the other dataset.');
        ELSIF NEW.time_created IS DISTINCT FROM OLD.time_created THEN
            PERFORM training.refuse_read_only('classes', 'time_created', 'Omit it: it is set at creation.');
        END IF;
        IF (NEW.number_of_images, NEW.number_of_active_images)
           IS DISTINCT FROM (OLD.number_of_images, OLD.number_of_active_images) THEN
            IF NOT training.counting() THEN
                PERFORM training.refuse_read_only('classes', 'number_of_*',
                    'The counters follow the images of the class: add or delete those instead.');
            END IF;
        END IF;
        NEW.active := coalesce(NEW.active, OLD.active);
        NEW.notes := coalesce(NEW.notes, '');
        IF (NEW.label, NEW.reference, NEW.active, NEW.notes, NEW.expiration_date)
           IS DISTINCT FROM (OLD.label, OLD.reference, OLD.active, OLD.notes, OLD.expiration_date) THEN
            NEW.time_updated := clock_timestamp();
        END IF;
    END IF;
    PERFORM training.validate_text('class reference', NEW.reference);
    PERFORM training.validate_text('class notes', NEW.notes, 10000, true);
    IF (TG_OP = 'INSERT' OR NEW.reference IS DISTINCT FROM OLD.reference)
       AND EXISTS (SELECT 1 FROM training.classes c
                    WHERE c.dataset_id = NEW.dataset_id AND c.reference = NEW.reference AND c.id <> NEW.id) THEN
        RAISE EXCEPTION 'dataset % already has a class with reference %', NEW.dataset_id, quote_literal(left(NEW.reference, 100))
            USING ERRCODE = '22023', HINT = 'References are unique per dataset: pass another reference, or update that class.';
    END IF;
    RETURN NEW;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._classes_before() IS
    'Trigger: validate classes, fill defaults (reference defaults to the class id), protect read-only columns';
CREATE TRIGGER classes_before BEFORE INSERT OR UPDATE ON training.classes
    FOR EACH ROW EXECUTE FUNCTION training._classes_before();

-- Images: validate, fill defaults, protect read-only columns. The pipeline's trigger decodes data.
CREATE FUNCTION training._images_before() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.data IS NULL THEN
        RAISE EXCEPTION 'image data must not be NULL'
            USING ERRCODE = '22023', HINT = 'Pass the encoded image bytes (JPEG, PNG or PGM/PPM).';
    END IF;
    IF NEW.face_box IS NOT NULL AND cardinality(NEW.face_box) = 0 THEN
        NEW.face_box := NULL;   -- '{}' clears the face box
    END IF;
    -- Other lower bounds ('[0:3]={...}') are renumbered from 1, so that face_box[1..4] are its elements.
    IF NEW.face_box IS NOT NULL AND array_ndims(NEW.face_box) = 1 AND array_lower(NEW.face_box, 1) <> 1 THEN
        NEW.face_box := ARRAY(SELECT e FROM unnest(NEW.face_box) WITH ORDINALITY u(e, o) ORDER BY o);
    END IF;
    IF NEW.face_box IS NOT NULL AND NOT (
            array_ndims(NEW.face_box) = 1 AND cardinality(NEW.face_box) = 4
            AND array_position(NEW.face_box, NULL) IS NULL
            AND NEW.face_box[1] >= 0 AND NEW.face_box[2] >= 0
            AND NEW.face_box[3] > 0 AND NEW.face_box[4] > 0) THEN
        RAISE EXCEPTION 'face_box must be {x, y, width, height} with x, y >= 0 and width, height > 0, got %',
                left(NEW.face_box::text, 100)
            USING ERRCODE = '22023', HINT = 'Pass face_box => ARRAY[x, y, width, height] in pixels, or NULL for the whole image.';
    END IF;
    PERFORM training.validate_text('image notes', coalesce(NEW.notes, ''), 10000, true);
    IF TG_OP = 'INSERT' THEN
        PERFORM training.check_owner('images', NEW.owner);
        IF NEW.class_id IS NULL THEN
            RAISE EXCEPTION 'class_id is required'
                USING ERRCODE = '22023', HINT = 'Pass the id of a class (see training.list_classes(dataset_id)).';
        END IF;
        PERFORM FROM training.classes c WHERE c.id = NEW.class_id FOR KEY SHARE;   -- as in classes
        IF NOT FOUND THEN
            RAISE EXCEPTION 'class % not found', NEW.class_id
                USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_classes(dataset_id), or create the class first.';
        END IF;
        NEW.active := coalesce(NEW.active, true);
        NEW.notes := coalesce(NEW.notes, '');
        NEW.evaluation_result := coalesce(NEW.evaluation_result, '{}');
        NEW.time_created := coalesce(NEW.time_created, clock_timestamp());
        NEW.time_updated := NEW.time_created;
        RETURN NEW;
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id THEN
        PERFORM training.refuse_read_only('images', 'id', 'Add a new image instead.');
    ELSIF NEW.owner IS DISTINCT FROM OLD.owner AND NOT training.in_background_worker() THEN
        PERFORM training.refuse_read_only('images', 'owner', 'The owner is the role that added the image.');
    ELSIF NEW.class_id IS DISTINCT FROM OLD.class_id THEN
        PERFORM training.refuse_read_only('images', 'class_id', 'An image stays in its class: add it to the other class and delete this one.');
    ELSIF NEW.time_created IS DISTINCT FROM OLD.time_created THEN
        PERFORM training.refuse_read_only('images', 'time_created', 'Omit it: it is set at creation.');
    ELSIF (NEW.format, NEW.width, NEW.height) IS DISTINCT FROM (OLD.format, OLD.width, OLD.height)
          AND NEW.data IS NOT DISTINCT FROM OLD.data THEN
        PERFORM training.refuse_read_only('images', 'format, width, height',
            'They are read from the data: update data instead.');
    END IF;
    NEW.active := coalesce(NEW.active, OLD.active);
    NEW.notes := coalesce(NEW.notes, '');
    IF (NEW.data, NEW.face_box, NEW.active, NEW.notes, NEW.evaluation_result)
       IS DISTINCT FROM (OLD.data, OLD.face_box, OLD.active, OLD.notes, OLD.evaluation_result) THEN
        NEW.time_updated := clock_timestamp();
    END IF;
    RETURN NEW;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._images_before() IS
    'Trigger: validate images (face box), fill defaults, protect read-only columns';
CREATE TRIGGER images_before BEFORE INSERT OR UPDATE ON training.images
    FOR EACH ROW EXECUTE FUNCTION training._images_before();

-- The face box must lie inside the image. Checked after the row is written, once the
-- pipeline's BEFORE trigger (30_pipeline.sql) has filled width and height from the data.
CREATE FUNCTION training._images_box_check() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.face_box IS NOT NULL AND NEW.width IS NOT NULL AND NEW.height IS NOT NULL
       AND (NEW.face_box[1]::bigint + NEW.face_box[3] > NEW.width OR NEW.face_box[2]::bigint + NEW.face_box[4] > NEW.height) THEN
        RAISE EXCEPTION 'face_box % lies outside the %x% image', left(NEW.face_box::text, 100), NEW.width, NEW.height
            USING ERRCODE = '22023',
                  HINT = 'The box must fit in the image: x + width <= image width and y + height <= image height.';
    END IF;
    RETURN NULL;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._images_box_check() IS 'Trigger: refuse a face box outside the decoded image';
CREATE TRIGGER images_box_check AFTER INSERT OR UPDATE OF face_box, data ON training.images
    FOR EACH ROW WHEN (NEW.face_box IS NOT NULL) EXECUTE FUNCTION training._images_box_check();

-- Counters: images change their class's counters; classes pass their changes on to the dataset.
-- Statement-level with transition tables: one UPDATE per statement, however many rows.
CREATE FUNCTION training._images_count() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE training.classes c SET number_of_images = c.number_of_images + s.n,
                                      number_of_active_images = c.number_of_active_images + s.a
          FROM (SELECT class_id, count(*) AS n, count(*) FILTER (WHERE active) AS a
                  FROM new_rows GROUP BY class_id) s
         WHERE c.id = s.class_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE training.classes c SET number_of_images = c.number_of_images - s.n,
                                      number_of_active_images = c.number_of_active_images - s.a
          FROM (SELECT class_id, count(*) AS n, count(*) FILTER (WHERE active) AS a
                  FROM old_rows GROUP BY class_id) s
         WHERE c.id = s.class_id;
    ELSE
        UPDATE training.classes c SET number_of_active_images = c.number_of_active_images + s.a
          FROM (SELECT n.class_id, sum(n.active::int - o.active::int) AS a
                  FROM new_rows n JOIN old_rows o ON o.id = n.id
                 WHERE n.active <> o.active GROUP BY n.class_id) s
         WHERE c.id = s.class_id AND s.a <> 0;
    END IF;
    RETURN NULL;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._images_count() IS 'Trigger: keep the image counters of classes';
CREATE TRIGGER images_count_insert AFTER INSERT ON training.images
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION training._images_count();
CREATE TRIGGER images_count_update AFTER UPDATE ON training.images
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION training._images_count();
CREATE TRIGGER images_count_delete AFTER DELETE ON training.images
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION training._images_count();

-- New data or a new face box of an image puts its dataset's evaluation out of date (2). Counter
-- changes (active, insert, delete) do so through the class counters and _classes_count.
CREATE FUNCTION training._images_outdate() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    UPDATE training.datasets d
       SET evaluation_state = 2, issues = jsonb_set(d.issues, '{has_warning}', 'true')
     WHERE d.evaluation_state = 1
       AND d.id = (SELECT c.dataset_id FROM training.classes c WHERE c.id = NEW.class_id);
    RETURN NULL;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._images_outdate() IS
    'Trigger: new data or face box of an image marks the evaluation of its dataset out of date';
CREATE TRIGGER images_outdate AFTER UPDATE OF data, face_box ON training.images
    FOR EACH ROW WHEN (OLD.data IS DISTINCT FROM NEW.data OR OLD.face_box IS DISTINCT FROM NEW.face_box)
    EXECUTE FUNCTION training._images_outdate();

CREATE FUNCTION training._classes_count() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    ids uuid[];         -- datasets whose previews or earliest expiration may have moved
    changed uuid[];     -- datasets whose training data changed: evaluation out of date, issues again
BEGIN
    -- A class counts as trainable when it is active and has active images (expiry: at read time).
    IF TG_OP = 'INSERT' THEN
        UPDATE training.datasets d SET number_of_classes = d.number_of_classes + s.n,
                                       number_of_active_classes = d.number_of_active_classes + s.a
          FROM (SELECT dataset_id, count(*) AS n, count(*) FILTER (WHERE active) AS a
                  FROM new_rows GROUP BY dataset_id) s
         WHERE d.id = s.dataset_id;
        ids := ARRAY(SELECT DISTINCT dataset_id FROM new_rows WHERE expiration_date IS NOT NULL);
        changed := ARRAY(SELECT DISTINCT dataset_id FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE training.datasets d SET number_of_classes = d.number_of_classes - s.n,
                                       number_of_active_classes = d.number_of_active_classes - s.a,
                                       number_of_images = d.number_of_images - s.i,
                                       number_of_active_images = d.number_of_active_images - s.ai,
                                       number_of_trainable_classes = d.number_of_trainable_classes - s.t
          FROM (SELECT dataset_id, count(*) AS n, count(*) FILTER (WHERE active) AS a,
                       sum(number_of_images) AS i,
                       coalesce(sum(number_of_active_images) FILTER (WHERE active), 0) AS ai,
                       count(*) FILTER (WHERE active AND number_of_active_images > 0) AS t
                  FROM old_rows GROUP BY dataset_id) s
         WHERE d.id = s.dataset_id;
        ids := ARRAY(SELECT DISTINCT dataset_id FROM old_rows WHERE number_of_images > 0 OR expiration_date IS NOT NULL);
        changed := ARRAY(SELECT DISTINCT dataset_id FROM old_rows);
    ELSE
        UPDATE training.datasets d SET number_of_active_classes = d.number_of_active_classes + s.a,
                                       number_of_images = d.number_of_images + s.i,
                                       number_of_active_images = d.number_of_active_images + s.ai,
                                       number_of_trainable_classes = d.number_of_trainable_classes + s.t
          FROM (SELECT n.dataset_id,
                       sum(n.active::int - o.active::int) AS a,
                       sum(n.number_of_images - o.number_of_images) AS i,
                       sum(CASE WHEN n.active THEN n.number_of_active_images ELSE 0 END
                           - CASE WHEN o.active THEN o.number_of_active_images ELSE 0 END) AS ai,
                       sum((n.active AND n.number_of_active_images > 0)::int
                           - (o.active AND o.number_of_active_images > 0)::int) AS t
                  FROM new_rows n JOIN old_rows o ON o.id = n.id GROUP BY n.dataset_id) s
         WHERE d.id = s.dataset_id AND (s.a <> 0 OR s.i <> 0 OR s.ai <> 0 OR s.t <> 0);
        -- Previews follow the images; the earliest expiration follows active and expiration_date.
        ids := ARRAY(SELECT DISTINCT n.dataset_id FROM new_rows n JOIN old_rows o ON o.id = n.id
                      WHERE n.number_of_images <> o.number_of_images
                         OR n.active <> o.active
                         OR n.expiration_date IS DISTINCT FROM o.expiration_date);
        changed := ARRAY(SELECT DISTINCT n.dataset_id FROM new_rows n JOIN old_rows o ON o.id = n.id
                          WHERE n.number_of_images <> o.number_of_images
                             OR n.number_of_active_images <> o.number_of_active_images
                             OR n.active <> o.active
                             OR n.expiration_date IS DISTINCT FROM o.expiration_date);
    END IF;
    IF cardinality(changed) > 0 THEN
        UPDATE training.datasets d
           SET preview_images = CASE WHEN d.id = ANY (ids) THEN ARRAY(
                   SELECT (SELECT im.id FROM training.images im WHERE im.class_id = c.id
                            ORDER BY im.time_created, im.id LIMIT 1)
                     FROM training.classes c
                    WHERE c.dataset_id = d.id AND c.number_of_images > 0
                    ORDER BY c.time_created, c.id LIMIT 3) ELSE d.preview_images END,
               earliest_expiration = CASE WHEN d.id = ANY (ids) THEN
                   (SELECT min(x.expiration_date) FROM training.classes x
                     WHERE x.dataset_id = d.id AND x.active AND x.expiration_date IS NOT NULL)
                   ELSE d.earliest_expiration END,
               -- An evaluation describes the data it saw: once that changes, it is out of date (2).
               evaluation_state = CASE WHEN d.evaluation_state = 1 THEN 2 ELSE d.evaluation_state END,
               issues = jsonb_build_object('has_error', d.number_of_trainable_classes < 2,
                                           'has_warning', d.evaluation_state <> 0)
         WHERE d.id = ANY (changed);
    END IF;
    RETURN NULL;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._classes_count() IS
    'Trigger: keep the class, image and trainable-class counters, preview images, earliest expiration and issues '
    'of datasets; mark their evaluation out of date';
CREATE TRIGGER classes_count_insert AFTER INSERT ON training.classes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION training._classes_count();
CREATE TRIGGER classes_count_update AFTER UPDATE ON training.classes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION training._classes_count();
CREATE TRIGGER classes_count_delete AFTER DELETE ON training.classes
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION training._classes_count();

-- Trainings: the guard of the read-only columns (contract 2) and create_training's validation,
-- in C (src/validate.c): create_training is measured against a plain INSERT (bench/api.sh).
CREATE FUNCTION training._trainings_before() RETURNS trigger
    AS 'MODULE_PATHNAME', 'training_trainings_before'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._trainings_before() IS
    'Trigger: validate trainings like create_training (type from the dataset, config), refuse writes to read-only columns outside the background worker, and keep the Training object (object, object_stale_at)';
CREATE TRIGGER trainings_before BEFORE INSERT OR UPDATE ON training.trainings
    FOR EACH ROW EXECUTE FUNCTION training._trainings_before();

-- Deleting a model waits for the creations that found it: they hold its live lock shared until
-- they commit (one type per model, src/validate.c); a creation after the deletion takes the name
-- lock. The locks are in the extension's own lock space (src/locks.c), out of tenants' reach.
CREATE FUNCTION training._models_delete() RETURNS trigger
    AS 'MODULE_PATHNAME', 'training_models_delete'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._models_delete() IS
    'Trigger: a model is deleted only after the creations of trainings that found it have committed';
CREATE TRIGGER models_delete BEFORE DELETE ON training.models
    FOR EACH ROW EXECUTE FUNCTION training._models_delete();
REVOKE ALL ON FUNCTION training._models_delete() FROM PUBLIC;

-- Deleting versions clears output_model_version_id of the trainings that wrote them: their
-- output_model becomes null (the link is not a foreign key, see 00_schema.sql).
CREATE FUNCTION training._model_versions_unlink() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE training.trainings t SET output_model_version_id = NULL
      FROM old_rows o WHERE t.output_model_version_id = o.id;
    RETURN NULL;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._model_versions_unlink() IS
    'Trigger: a deleted model version is no longer the output_model of the training that wrote it';
CREATE TRIGGER model_versions_unlink AFTER DELETE ON training.model_versions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION training._model_versions_unlink();

-- Trigger functions are internal: triggers fire without EXECUTE on them.
REVOKE ALL ON FUNCTION training._datasets_before(), training._classes_before(), training._images_before(),
    training._images_box_check(), training._images_count(), training._images_outdate(), training._classes_count(),
    training._trainings_before(), training._model_versions_unlink() FROM PUBLIC;

------------------------------------------------------------------------------------------------
-- Datasets
------------------------------------------------------------------------------------------------

CREATE FUNCTION training.create_dataset(name text, type text, description text DEFAULT '') RETURNS jsonb
    LANGUAGE plpgsql AS $$
DECLARE
    d training.datasets;
BEGIN
    INSERT INTO training.datasets (name, type, description)
    VALUES (create_dataset.name, create_dataset.type, coalesce(create_dataset.description, ''))
    RETURNING * INTO d;
    RETURN training.get_dataset(d.id);
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.create_dataset(text, text, text) IS
    'Create a dataset of type face or landmark; returns the Dataset object';

CREATE FUNCTION training.list_datasets("limit" integer DEFAULT 10, "offset" integer DEFAULT 0) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM training.check_paging("limit", "offset");
    RETURN training.list_envelope((SELECT count(*) FROM training.datasets), "limit", "offset",
        training.datasets_json(ARRAY(SELECT id FROM training.datasets ORDER BY time_created, id
                                       LIMIT list_datasets."limit" OFFSET list_datasets."offset")));
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.list_datasets(integer, integer) IS
    'Datasets in creation order, in the list envelope {total, offset, limit, next, prev, data}';

CREATE FUNCTION training.update_dataset(id uuid, name text DEFAULT NULL, description text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql AS $$
DECLARE
    d training.datasets;
BEGIN
    IF update_dataset.id IS NULL THEN
        RAISE EXCEPTION 'dataset id must not be NULL' USING ERRCODE = '22023', HINT = 'Pass the id of a dataset (see training.list_datasets()).';
    END IF;
    UPDATE training.datasets x
       SET name = coalesce(update_dataset.name, x.name),
           description = coalesce(update_dataset.description, x.description)
     WHERE x.id = update_dataset.id
    RETURNING * INTO d;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dataset % not found', update_dataset.id
            USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_datasets().';
    END IF;
    RETURN training.get_dataset(d.id);
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.update_dataset(uuid, text, text) IS
    'Change the name and/or description of a dataset (NULL keeps a value); returns the Dataset object';

CREATE FUNCTION training.delete_dataset(id uuid) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF delete_dataset.id IS NULL THEN
        RAISE EXCEPTION 'dataset id must not be NULL' USING ERRCODE = '22023', HINT = 'Pass the id of a dataset (see training.list_datasets()).';
    END IF;
    DELETE FROM training.datasets x WHERE x.id = delete_dataset.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dataset % not found', delete_dataset.id
            USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_datasets().';
    END IF;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.delete_dataset(uuid) IS
    'Delete a dataset with its classes and images; 55000 while a waiting or processing training uses it';

------------------------------------------------------------------------------------------------
-- Classes
------------------------------------------------------------------------------------------------

CREATE FUNCTION training.create_class(dataset_id uuid, label text, reference text DEFAULT NULL,
                                      active boolean DEFAULT true, notes text DEFAULT '',
                                      expiration_date timestamptz DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql AS $$
DECLARE
    c training.classes;
BEGIN
    INSERT INTO training.classes (dataset_id, label, reference, active, notes, expiration_date)
    VALUES (create_class.dataset_id, create_class.label, create_class.reference, create_class.active,
            create_class.notes, create_class.expiration_date)
    RETURNING * INTO c;
    RETURN training.class_json(c);
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.create_class(uuid, text, text, boolean, text, timestamptz) IS
    'Add a class to a dataset (reference defaults to the class id); returns the Class object';

CREATE FUNCTION training.get_class(id uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    r jsonb;
BEGIN
    IF get_class.id IS NULL THEN
        RAISE EXCEPTION 'class id must not be NULL' USING ERRCODE = '22023', HINT = 'Pass the id of a class (see training.list_classes(dataset_id)).';
    END IF;
    SELECT training.class_json(c) INTO r FROM training.classes c WHERE c.id = get_class.id;
    IF r IS NULL THEN
        RAISE EXCEPTION 'class % not found', get_class.id
            USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_classes(dataset_id).';
    END IF;
    RETURN r;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.get_class(uuid) IS 'The Class object; P0002 when there is no such class';

CREATE FUNCTION training.list_classes(dataset_id uuid, "limit" integer DEFAULT 10, "offset" integer DEFAULT 0)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF list_classes.dataset_id IS NULL THEN
        RAISE EXCEPTION 'dataset id must not be NULL' USING ERRCODE = '22023', HINT = 'Pass the id of a dataset (see training.list_datasets()).';
    END IF;
    PERFORM training.check_paging("limit", "offset");
    PERFORM FROM training.datasets d WHERE d.id = list_classes.dataset_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dataset % not found', list_classes.dataset_id
            USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_datasets().';
    END IF;
    RETURN training.list_envelope(
        (SELECT count(*) FROM training.classes c WHERE c.dataset_id = list_classes.dataset_id),
        "limit", "offset",
        (SELECT jsonb_agg(training.class_json(c) ORDER BY c.time_created, c.id)
           FROM (SELECT * FROM training.classes x WHERE x.dataset_id = list_classes.dataset_id
                  ORDER BY x.time_created, x.id
                  LIMIT list_classes."limit" OFFSET list_classes."offset") c),
        '&dataset_id=' || list_classes.dataset_id);
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.list_classes(uuid, integer, integer) IS
    'Classes of a dataset in creation order, in the list envelope';

CREATE FUNCTION training.update_class(id uuid, label text DEFAULT NULL, reference text DEFAULT NULL,
                                      active boolean DEFAULT NULL, notes text DEFAULT NULL,
                                      expiration_date timestamptz DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql AS $$
DECLARE
    c training.classes;
BEGIN
    IF update_class.id IS NULL THEN
        RAISE EXCEPTION 'class id must not be NULL' USING ERRCODE = '22023', HINT = 'Pass the id of a class (see training.list_classes(dataset_id)).';
    END IF;
    -- NULL keeps a value; expiration_date => 'infinity' removes the expiration.
    UPDATE training.classes x
       SET label = coalesce(update_class.label, x.label),
           reference = coalesce(update_class.reference, x.reference),
           active = coalesce(update_class.active, x.active),
           notes = coalesce(update_class.notes, x.notes),
           expiration_date = CASE WHEN update_class.expiration_date = 'infinity' THEN NULL
                                  ELSE coalesce(update_class.expiration_date, x.expiration_date) END
     WHERE x.id = update_class.id
    RETURNING * INTO c;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'class % not found', update_class.id
            USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_classes(dataset_id).';
    END IF;
    RETURN training.class_json(c);
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.update_class(uuid, text, text, boolean, text, timestamptz) IS
    'Change a class (NULL keeps a value; expiration_date => ''infinity'' removes the expiration); returns the Class object';

CREATE FUNCTION training.delete_class(id uuid) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF delete_class.id IS NULL THEN
        RAISE EXCEPTION 'class id must not be NULL' USING ERRCODE = '22023', HINT = 'Pass the id of a class (see training.list_classes(dataset_id)).';
    END IF;
    DELETE FROM training.classes x WHERE x.id = delete_class.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'class % not found', delete_class.id
            USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_classes(dataset_id).';
    END IF;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.delete_class(uuid) IS 'Delete a class with its images';

------------------------------------------------------------------------------------------------
-- Images
------------------------------------------------------------------------------------------------

CREATE FUNCTION training.add_image(class_id uuid, data bytea, face_box integer[] DEFAULT NULL,
                                   active boolean DEFAULT true, notes text DEFAULT '') RETURNS jsonb
    LANGUAGE plpgsql AS $$
DECLARE
    i training.images;
BEGIN
    INSERT INTO training.images (class_id, data, face_box, active, notes)
    VALUES (add_image.class_id, add_image.data, add_image.face_box, add_image.active, add_image.notes)
    RETURNING * INTO i;
    RETURN training.image_json(i);
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.add_image(uuid, bytea, integer[], boolean, text) IS
    'Add an encoded image (JPEG, PNG, PGM/PPM) to a class, with an optional face box {x,y,width,height}; returns the Image object';

CREATE FUNCTION training.get_image(id uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    r jsonb;
BEGIN
    IF get_image.id IS NULL THEN
        RAISE EXCEPTION 'image id must not be NULL' USING ERRCODE = '22023', HINT = 'Pass the id of an image (see training.list_images(class_id)).';
    END IF;
    SELECT training.image_json(i) INTO r FROM training.images i WHERE i.id = get_image.id;
    IF r IS NULL THEN
        RAISE EXCEPTION 'image % not found', get_image.id
            USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_images(class_id).';
    END IF;
    RETURN r;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.get_image(uuid) IS
    'The Image object (without the bytes: SELECT data FROM training.images); P0002 when there is no such image';

CREATE FUNCTION training.list_images(class_id uuid, "limit" integer DEFAULT 10, "offset" integer DEFAULT 0)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF list_images.class_id IS NULL THEN
        RAISE EXCEPTION 'class id must not be NULL' USING ERRCODE = '22023', HINT = 'Pass the id of a class (see training.list_classes(dataset_id)).';
    END IF;
    PERFORM training.check_paging("limit", "offset");
    PERFORM FROM training.classes c WHERE c.id = list_images.class_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'class % not found', list_images.class_id
            USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_classes(dataset_id).';
    END IF;
    RETURN training.list_envelope(
        (SELECT count(*) FROM training.images i WHERE i.class_id = list_images.class_id),
        "limit", "offset",
        (SELECT jsonb_agg(training.image_json(i) ORDER BY i.time_created, i.id)
           FROM (SELECT * FROM training.images x WHERE x.class_id = list_images.class_id
                  ORDER BY x.time_created, x.id
                  LIMIT list_images."limit" OFFSET list_images."offset") i),
        '&class_id=' || list_images.class_id);
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.list_images(uuid, integer, integer) IS
    'Images of a class in creation order, in the list envelope';

CREATE FUNCTION training.update_image(id uuid, face_box integer[] DEFAULT NULL, active boolean DEFAULT NULL,
                                      notes text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql AS $$
DECLARE
    i training.images;
BEGIN
    IF update_image.id IS NULL THEN
        RAISE EXCEPTION 'image id must not be NULL' USING ERRCODE = '22023', HINT = 'Pass the id of an image (see training.list_images(class_id)).';
    END IF;
    -- NULL keeps a value; face_box => '{}' removes the face box.
    UPDATE training.images x
       SET face_box = coalesce(update_image.face_box, x.face_box),
           active = coalesce(update_image.active, x.active),
           notes = coalesce(update_image.notes, x.notes)
     WHERE x.id = update_image.id
    RETURNING * INTO i;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'image % not found', update_image.id
            USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_images(class_id).';
    END IF;
    RETURN training.image_json(i);
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.update_image(uuid, integer[], boolean, text) IS
    'Change an image''s face box, active flag or notes (NULL keeps a value; face_box => ''{}'' removes the box); returns the Image object';

CREATE FUNCTION training.delete_image(id uuid) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF delete_image.id IS NULL THEN
        RAISE EXCEPTION 'image id must not be NULL' USING ERRCODE = '22023', HINT = 'Pass the id of an image (see training.list_images(class_id)).';
    END IF;
    DELETE FROM training.images x WHERE x.id = delete_image.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'image % not found', delete_image.id
            USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_images(class_id).';
    END IF;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.delete_image(uuid) IS 'Delete an image';

------------------------------------------------------------------------------------------------
-- Trainings
------------------------------------------------------------------------------------------------

-- C (src/validate.c): the INSERT only; the trigger on training.trainings validates and fills what a
-- direct INSERT gets too, and renders the Training object kept with the row (60_object.sql).
CREATE FUNCTION training.create_training(source_dataset_id uuid, output_model_name text,
                                         output_model_description text DEFAULT '',
                                         output_model_changelog text DEFAULT '',
                                         config jsonb DEFAULT '{}') RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_create_training'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.create_training(uuid, text, text, text, jsonb) IS
    'Queue a training of a dataset into a model version; the config is validated against the dataset type; returns the Training object';

CREATE FUNCTION training.list_trainings("limit" integer DEFAULT 10, "offset" integer DEFAULT 0,
                                        state text DEFAULT NULL) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_list_trainings'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.list_trainings(integer, integer, text) IS
    'Trainings in creation order, optionally of one state, in the list envelope';

CREATE FUNCTION training.delete_training(id uuid) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF delete_training.id IS NULL THEN
        RAISE EXCEPTION 'training id must not be NULL' USING ERRCODE = '22023', HINT = 'Pass the id of a training (see training.list_trainings()).';
    END IF;
    -- A processing training's worker notices the row is gone and stops without writing a version.
    DELETE FROM training.trainings x WHERE x.id = delete_training.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'training % not found', delete_training.id
            USING ERRCODE = 'P0002', HINT = 'Check the id with training.list_trainings().';
    END IF;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.delete_training(uuid) IS
    'Delete a training; a waiting one is never started, a processing one is cancelled';

------------------------------------------------------------------------------------------------
-- Models
------------------------------------------------------------------------------------------------

-- Find the model a reference names: a name (the caller's own model first), "name==N", a model
-- id or a version id. Sets version_number only when the reference names a version (name==N or
-- a version id). P0002 when nothing matches; 22023 for a malformed reference.
CREATE FUNCTION training.resolve_model(model text, OUT model_id uuid, OUT version_number integer)
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    nm text := model;
    n_text text;
    n integer;
    ref uuid;
    found_count integer;
BEGIN
    IF model IS NULL OR btrim(model) = '' THEN
        RAISE EXCEPTION 'model reference must not be empty'
            USING ERRCODE = '22023', HINT = 'Pass a model name, "name==N" for version N, or a model or version id.';
    END IF;
    IF model ~* '^\s*\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?\s*$' THEN
        ref := btrim(model)::uuid;
        SELECT v.model_id, v.version_number INTO model_id, version_number
          FROM training.model_versions v WHERE v.id = ref;
        IF FOUND THEN
            RETURN;
        END IF;
        SELECT m.id INTO model_id FROM training.models m WHERE m.id = ref;
        IF FOUND THEN
            RETURN;
        END IF;
        -- A uuid-looking name is still a name.
    END IF;
    IF strpos(model, '==') > 0 THEN
        nm := split_part(model, '==', 1);
        n_text := substr(model, length(nm) + 3);
        IF n_text !~ '^\s*[0-9]{1,9}\s*$' OR n_text::integer < 1 THEN
            RAISE EXCEPTION 'model reference % has an invalid version number %', quote_literal(left(model, 100)), quote_literal(left(n_text, 100))
                USING ERRCODE = '22023', HINT = 'Write "name==N" with N a version number 1, 2, ...';
        END IF;
        n := n_text::integer;
    END IF;
    SELECT count(*) INTO found_count FROM training.models m WHERE m.name = nm;
    SELECT m.id INTO model_id FROM training.models m WHERE m.name = nm
     ORDER BY (m.owner = current_user) DESC LIMIT 1;
    IF model_id IS NULL THEN
        RAISE EXCEPTION 'model % not found', quote_literal(left(nm, 100))
            USING ERRCODE = 'P0002', HINT = 'List the models with training.list_models(); a model appears when its first training completes.';
    END IF;
    IF found_count > 1 AND NOT EXISTS (SELECT 1 FROM training.models m WHERE m.name = nm AND m.owner = current_user) THEN
        RAISE EXCEPTION 'model name % is ambiguous: % roles own a model of that name', quote_literal(left(nm, 100)), found_count
            USING ERRCODE = '22023', HINT = 'Refer to the model by its id (see training.list_models()).';
    END IF;
    IF n IS NOT NULL THEN
        PERFORM FROM training.model_versions v WHERE v.model_id = resolve_model.model_id AND v.version_number = n;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'model % has no version %', quote_literal(left(nm, 100)), n
                USING ERRCODE = 'P0002',
                      HINT = coalesce('Its versions: ' || (SELECT string_agg(v.version_number::text, ', ' ORDER BY v.version_number)
                                                           FROM training.model_versions v
                                                          WHERE v.model_id = resolve_model.model_id)
                                      || ' (a deleted version number is never given again).',
                                      'It has no version: every version was deleted, or none was written yet.');
        END IF;
        version_number := n;
    END IF;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.resolve_model(text) IS
    'Resolve a model reference (name, name==N, model id, version id) to a model and an explicit version; P0002 when unknown, 22023 when malformed';

CREATE FUNCTION training.resolve_model_version(model text) RETURNS training.model_versions
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    f record;
    v training.model_versions;
BEGIN
    f := training.resolve_model(model);
    IF f.version_number IS NOT NULL THEN
        SELECT * INTO v FROM training.model_versions x
         WHERE x.model_id = f.model_id AND x.version_number = f.version_number;
    ELSE
        SELECT * INTO v FROM training.model_versions x
         WHERE x.model_id = f.model_id ORDER BY x.version_number DESC LIMIT 1;
    END IF;
    IF v.id IS NULL THEN
        RAISE EXCEPTION 'model % has no version', quote_literal(left(model, 100))
            USING ERRCODE = 'P0002', HINT = 'Wait until a training of this model completes (training.list_trainings()), or train it again.';
    END IF;
    RETURN v;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.resolve_model_version(text) IS
    'The model version a reference names: name -> latest, name==N -> version N, model id -> latest, version id -> that version; P0002 when unknown or without versions';

CREATE FUNCTION training.get_model(model text) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    f record;
BEGIN
    f := training.resolve_model(model);
    RETURN training.model_json(f.model_id, coalesce(f.version_number,
        (SELECT max(v.version_number) FROM training.model_versions v WHERE v.model_id = f.model_id)));
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.get_model(text) IS
    'The Model object at the referenced version (name: latest, name==N, model id: latest, version id); P0002 when unknown';

CREATE FUNCTION training.list_models("limit" integer DEFAULT 10, "offset" integer DEFAULT 0) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM training.check_paging("limit", "offset");
    RETURN training.list_envelope((SELECT count(*) FROM training.models), "limit", "offset",
        (SELECT jsonb_agg(training.model_json(m.id,
                    (SELECT max(v.version_number) FROM training.model_versions v WHERE v.model_id = m.id))
                    ORDER BY m.time_created, m.id)
           FROM (SELECT id, time_created FROM training.models ORDER BY time_created, id
                  LIMIT list_models."limit" OFFSET list_models."offset") m));
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.list_models(integer, integer) IS
    'Models in creation order, each at its latest version, in the list envelope';

CREATE FUNCTION training.delete_model(model text) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    f record;
BEGIN
    -- "name==N" or a version id deletes that version; a name or model id deletes the model.
    f := training.resolve_model(model);
    IF f.version_number IS NOT NULL THEN
        DELETE FROM training.model_versions v
         WHERE v.model_id = f.model_id AND v.version_number = f.version_number;
    ELSE
        DELETE FROM training.models m WHERE m.id = f.model_id;
    END IF;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.delete_model(text) IS
    'Delete a model with all its versions (name or model id), or one version (name==N or version id)';
