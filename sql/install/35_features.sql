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

-- Row-level security: 40_access.sql.
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
