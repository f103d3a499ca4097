-- training: tables. Parts of sql/install/ are concatenated in name order.
\echo Use "CREATE EXTENSION training" to load this file. \quit

COMMENT ON SCHEMA training IS
    'Train face and landmark recognition models inside PostgreSQL: datasets, classes, images, trainings, models';

-- Creation times default to clock_timestamp(), so that rows created in one transaction keep
-- their creation order (lists, previews and the worker's queue order by time_created, id).

-- Datasets: collections of classes (identities for face, places for landmark).
-- number_of_*, preview_images and earliest_expiration are kept by triggers on classes and
-- images, so that rendering a dataset (get_dataset, get_training) reads one row instead of
-- counting its images. The counters ignore expiration, which moves with the clock: readers
-- subtract expired classes at read time, and only when earliest_expiration has passed.
CREATE TABLE training.datasets (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner             name NOT NULL DEFAULT current_user,
    name              text NOT NULL,
    description       text NOT NULL DEFAULT '',
    version           integer NOT NULL DEFAULT 1,
    type              text NOT NULL,
    evaluation_result jsonb NOT NULL DEFAULT '{}',
    evaluation_state  integer NOT NULL DEFAULT 0,
    issues            jsonb NOT NULL DEFAULT '{"has_error": false, "has_warning": false}',
    time_created      timestamptz NOT NULL DEFAULT clock_timestamp(),
    time_updated      timestamptz NOT NULL DEFAULT clock_timestamp(),
    number_of_classes        integer NOT NULL DEFAULT 0,
    number_of_active_classes integer NOT NULL DEFAULT 0,
    number_of_images         integer NOT NULL DEFAULT 0,
    number_of_active_images  integer NOT NULL DEFAULT 0,
    preview_images           uuid[] NOT NULL DEFAULT '{}',
    earliest_expiration      timestamptz,
    number_of_trainable_classes integer NOT NULL DEFAULT 0,
    CONSTRAINT datasets_name_not_empty CHECK (name <> ''),
    CONSTRAINT datasets_type_valid CHECK (type IN ('face', 'landmark')),
    CONSTRAINT datasets_version_positive CHECK (version >= 1),
    CONSTRAINT datasets_counters_nonnegative CHECK (
        number_of_classes >= 0 AND number_of_active_classes >= 0
        AND number_of_images >= 0 AND number_of_active_images >= 0)
);

COMMENT ON TABLE training.datasets IS
    'A collection of classes (identities for face, places for landmark); the input of a training';
COMMENT ON COLUMN training.datasets.id IS 'Identifier (read-only)';
COMMENT ON COLUMN training.datasets.owner IS 'Role that created the dataset (read-only, set from current_user)';
COMMENT ON COLUMN training.datasets.name IS 'Name of the dataset (not empty)';
COMMENT ON COLUMN training.datasets.description IS 'Free text description';
COMMENT ON COLUMN training.datasets.version IS 'Version of the dataset format, rendered as 1.0 in JSON';
COMMENT ON COLUMN training.datasets.type IS 'face or landmark; fixed at creation';
COMMENT ON COLUMN training.datasets.evaluation_result IS 'Result of evaluating the dataset for training (JSON object)';
COMMENT ON COLUMN training.datasets.evaluation_state IS
    'State of the evaluation: 0 never evaluated, 1 evaluated and current, 2 out of date (classes or images changed since)';
COMMENT ON COLUMN training.datasets.issues IS
    'Kept live by triggers: has_error: a training would fail (fewer than two active classes with active images, '
    'or errors of a current evaluation); has_warning: a current evaluation found data to skip, or the evaluation is out of date';
COMMENT ON COLUMN training.datasets.time_created IS 'Creation time (read-only)';
COMMENT ON COLUMN training.datasets.time_updated IS 'Time of the last change of the dataset''s own attributes (read-only)';
COMMENT ON COLUMN training.datasets.number_of_classes IS 'Counter kept by triggers: classes of the dataset (read-only)';
COMMENT ON COLUMN training.datasets.number_of_active_classes IS
    'Counter kept by triggers: active classes, expired ones included (read-only; readers subtract expired classes)';
COMMENT ON COLUMN training.datasets.number_of_images IS 'Counter kept by triggers: images of all classes (read-only)';
COMMENT ON COLUMN training.datasets.number_of_active_images IS
    'Counter kept by triggers: active images of active classes, expired ones included (read-only)';
COMMENT ON COLUMN training.datasets.preview_images IS
    'Kept by triggers: the first image (by time_created, id) of each of the first three classes that have images (read-only)';
COMMENT ON COLUMN training.datasets.earliest_expiration IS
    'Kept by triggers: the earliest expiration_date of the active classes; NULL when none expires (read-only)';
COMMENT ON COLUMN training.datasets.number_of_trainable_classes IS
    'Counter kept by triggers: active classes with active images, expired ones included (read-only); '
    'fewer than two (after expiry) make issues.has_error true';

-- Classes: one identity or place of a dataset.
CREATE TABLE training.classes (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner           name NOT NULL DEFAULT current_user,
    dataset_id      uuid NOT NULL REFERENCES training.datasets (id) ON DELETE CASCADE,
    reference       text NOT NULL,
    label           text NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    notes           text NOT NULL DEFAULT '',
    expiration_date timestamptz,
    time_created    timestamptz NOT NULL DEFAULT clock_timestamp(),
    time_updated    timestamptz NOT NULL DEFAULT clock_timestamp(),
    number_of_images        integer NOT NULL DEFAULT 0,
    number_of_active_images integer NOT NULL DEFAULT 0,
    CONSTRAINT classes_label_not_empty CHECK (label <> ''),
    CONSTRAINT classes_reference_not_empty CHECK (reference <> ''),
    CONSTRAINT classes_reference_unique UNIQUE (dataset_id, reference),
    CONSTRAINT classes_counters_nonnegative CHECK (number_of_images >= 0 AND number_of_active_images >= 0)
);

COMMENT ON TABLE training.classes IS 'One identity (face) or place (landmark) of a dataset';
COMMENT ON COLUMN training.classes.id IS 'Identifier (read-only)';
COMMENT ON COLUMN training.classes.owner IS 'Role that created the class (read-only, set from current_user)';
COMMENT ON COLUMN training.classes.dataset_id IS 'Dataset of the class; fixed at creation';
COMMENT ON COLUMN training.classes.reference IS 'Caller''s reference, unique per dataset (default: the class id)';
COMMENT ON COLUMN training.classes.label IS 'Label that recognition returns (not empty)';
COMMENT ON COLUMN training.classes.active IS 'Inactive classes are not trained on';
COMMENT ON COLUMN training.classes.notes IS 'Free text';
COMMENT ON COLUMN training.classes.expiration_date IS 'From this time on the class counts as inactive (NULL: never)';
COMMENT ON COLUMN training.classes.time_created IS 'Creation time (read-only)';
COMMENT ON COLUMN training.classes.time_updated IS 'Time of the last change of the class''s own attributes (read-only)';
COMMENT ON COLUMN training.classes.number_of_images IS 'Counter kept by triggers: images of the class (read-only)';
COMMENT ON COLUMN training.classes.number_of_active_images IS 'Counter kept by triggers: active images of the class (read-only)';

-- Images: encoded image bytes (JPEG, PNG, PGM/PPM) of one class.
CREATE TABLE training.images (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner             name NOT NULL DEFAULT current_user,
    class_id          uuid NOT NULL REFERENCES training.classes (id) ON DELETE CASCADE,
    data              bytea NOT NULL,
    format            text,
    width             integer,
    height            integer,
    face_box          integer[],
    active            boolean NOT NULL DEFAULT true,
    notes             text NOT NULL DEFAULT '',
    evaluation_result jsonb NOT NULL DEFAULT '{}',
    time_created      timestamptz NOT NULL DEFAULT clock_timestamp(),
    time_updated      timestamptz NOT NULL DEFAULT clock_timestamp(),
    content_version   bigint NOT NULL DEFAULT 0,
    CONSTRAINT images_face_box_valid CHECK (
        face_box IS NULL OR (
            array_ndims(face_box) = 1 AND array_lower(face_box, 1) = 1 AND cardinality(face_box) = 4
            AND array_position(face_box, NULL) IS NULL
            AND face_box[1] >= 0 AND face_box[2] >= 0
            AND face_box[3] > 0 AND face_box[4] > 0))
);

COMMENT ON TABLE training.images IS 'An encoded image (JPEG, PNG, PGM/PPM as uploaded) of one class';
COMMENT ON COLUMN training.images.id IS 'Identifier (read-only); referenced in JSON as image://<id>';
COMMENT ON COLUMN training.images.owner IS 'Role that added the image (read-only, set from current_user)';
COMMENT ON COLUMN training.images.class_id IS 'Class of the image; fixed at creation';
COMMENT ON COLUMN training.images.data IS 'The encoded image bytes as uploaded';
COMMENT ON COLUMN training.images.format IS 'Decoded format (jpeg, png, pnm), filled from data by the pipeline trigger';
COMMENT ON COLUMN training.images.width IS 'Width in pixels, filled from data';
COMMENT ON COLUMN training.images.height IS 'Height in pixels, filled from data';
COMMENT ON COLUMN training.images.face_box IS 'Optional face region {x, y, width, height} in pixels; NULL: the whole image';
COMMENT ON COLUMN training.images.active IS 'Inactive images are not trained on';
COMMENT ON COLUMN training.images.notes IS 'Free text';
COMMENT ON COLUMN training.images.evaluation_result IS 'Result of evaluating the image for training (JSON object)';
COMMENT ON COLUMN training.images.time_created IS 'Creation time (read-only)';
COMMENT ON COLUMN training.images.time_updated IS 'Time of the last change (read-only)';
COMMENT ON COLUMN training.images.content_version IS
    'Version of data and face_box (read-only): set when the image is added, advanced by every change of them; the embedding store keys on it';

-- Models: named outputs of trainings; every completed training adds a version.
CREATE TABLE training.models (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner        name NOT NULL DEFAULT current_user,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    type         text NOT NULL,
    time_created timestamptz NOT NULL DEFAULT now(),
    time_updated timestamptz NOT NULL DEFAULT now(),
    last_version integer NOT NULL DEFAULT 0,
    CONSTRAINT models_name_valid CHECK (name <> '' AND strpos(name, '==') = 0),
    CONSTRAINT models_type_valid CHECK (type IN ('face', 'landmark')),
    CONSTRAINT models_name_unique UNIQUE (owner, name)
);

COMMENT ON TABLE training.models IS 'A named model written by trainings; every completed training adds a version';
COMMENT ON COLUMN training.models.id IS 'Identifier (read-only)';
COMMENT ON COLUMN training.models.owner IS 'Role that owns the model (the owner of the training that created it)';
COMMENT ON COLUMN training.models.name IS 'Name, unique per owner; must not contain == (reserved for name==N)';
COMMENT ON COLUMN training.models.description IS 'Free text description (from output_model_description)';
COMMENT ON COLUMN training.models.type IS 'face or landmark (the type of the trainings that wrote it)';
COMMENT ON COLUMN training.models.time_created IS 'Creation time';
COMMENT ON COLUMN training.models.time_updated IS 'Time of the last change (a new version included)';
COMMENT ON COLUMN training.models.last_version IS
    'The highest version number ever given (read-only): the next version is last_version + 1, so a deleted number never returns';

-- Trainings: a dataset in, a model version out. Read-only columns are written by the worker only.
CREATE TABLE training.trainings (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner                    name NOT NULL DEFAULT current_user,
    source_dataset_id        uuid REFERENCES training.datasets (id) ON DELETE SET NULL,
    output_model_name        text NOT NULL,
    output_model_description text NOT NULL DEFAULT '',
    output_model_changelog   text NOT NULL DEFAULT '',
    config                   jsonb NOT NULL DEFAULT '{}',
    type                     text NOT NULL,
    state                    text NOT NULL DEFAULT 'waiting',
    error                    text NOT NULL DEFAULT '',
    progress                 double precision NOT NULL DEFAULT 0,
    duration                 double precision NOT NULL DEFAULT 0,
    stage                    text NOT NULL DEFAULT '',
    attempts                 integer NOT NULL DEFAULT 0,
    worker_pid               integer,
    output_model_id          uuid REFERENCES training.models (id) ON DELETE SET NULL,
    output_model_version     integer,
    time_created             timestamptz NOT NULL DEFAULT clock_timestamp(),
    time_started             timestamptz,
    time_completed           timestamptz,
    CONSTRAINT trainings_state_valid
        CHECK (state IN ('waiting', 'processing', 'completed', 'failed')),
    CONSTRAINT trainings_type_valid CHECK (type IN ('face', 'landmark')),
    CONSTRAINT trainings_progress_range CHECK (progress >= 0 AND progress <= 1),
    CONSTRAINT trainings_duration_nonnegative CHECK (duration >= 0),
    CONSTRAINT trainings_output_model_name_valid
        CHECK (output_model_name <> '' AND strpos(output_model_name, '==') = 0),
    CONSTRAINT trainings_config_object CHECK (jsonb_typeof(config) = 'object')
);

COMMENT ON TABLE training.trainings IS
    'A training: a dataset in, a model version out. Insert a row (or call create_training) to queue one';
COMMENT ON COLUMN training.trainings.id IS 'Identifier (read-only)';
COMMENT ON COLUMN training.trainings.owner IS 'Role that created the training (read-only, set from current_user)';
COMMENT ON COLUMN training.trainings.source_dataset_id IS 'The dataset to train on (NULL once that dataset is deleted)';
COMMENT ON COLUMN training.trainings.output_model_name IS 'Name of the model the training creates or adds a version to';
COMMENT ON COLUMN training.trainings.output_model_description IS 'Description for the output model';
COMMENT ON COLUMN training.trainings.output_model_changelog IS 'Changelog of the model version the training creates';
COMMENT ON COLUMN training.trainings.config IS
    'Training parameters as sent; face: min_face_size (integer >= 1, default 80), sharpness_threshold (integer >= 0, default 40); landmark: none';
COMMENT ON COLUMN training.trainings.type IS 'face or landmark, copied from the dataset (read-only)';
COMMENT ON COLUMN training.trainings.state IS 'waiting, processing, completed or failed (read-only)';
COMMENT ON COLUMN training.trainings.error IS 'Why the training failed; empty unless failed (read-only)';
COMMENT ON COLUMN training.trainings.progress IS 'Progress 0.0 to 1.0 (read-only)';
COMMENT ON COLUMN training.trainings.duration IS 'Seconds spent training, running total while processing (read-only)';
COMMENT ON COLUMN training.trainings.stage IS 'Current stage of the pipeline while processing (read-only)';
COMMENT ON COLUMN training.trainings.attempts IS 'How often a worker started this training (read-only)';
COMMENT ON COLUMN training.trainings.worker_pid IS 'Process id of the worker running it (read-only)';
COMMENT ON COLUMN training.trainings.output_model_id IS 'The model the training wrote a version of (read-only)';
COMMENT ON COLUMN training.trainings.output_model_version IS
    'The version number the training wrote (read-only; kept after that version is deleted, never given again)';
COMMENT ON COLUMN training.trainings.time_created IS 'Creation time (read-only)';
COMMENT ON COLUMN training.trainings.time_started IS 'Time a worker started it (read-only)';
COMMENT ON COLUMN training.trainings.time_completed IS 'Time it completed or failed (read-only)';

-- Versions of a model: parameters, metrics and the dataset they came from.
CREATE TABLE training.model_versions (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner          name NOT NULL DEFAULT current_user,
    model_id       uuid NOT NULL REFERENCES training.models (id) ON DELETE CASCADE,
    version_number integer NOT NULL,
    training_id    uuid REFERENCES training.trainings (id) ON DELETE SET NULL,
    changelog      text NOT NULL DEFAULT '',
    dataset        jsonb NOT NULL DEFAULT '{}',
    parameters     bytea NOT NULL,
    metrics        jsonb NOT NULL DEFAULT '{}',
    time_created   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT model_versions_number_positive CHECK (version_number >= 1),
    CONSTRAINT model_versions_number_unique UNIQUE (model_id, version_number)
);

COMMENT ON TABLE training.model_versions IS
    'A version of a model: trained parameters, metrics and a snapshot of the source dataset';
COMMENT ON COLUMN training.model_versions.id IS 'Identifier; a version id is a valid model reference';
COMMENT ON COLUMN training.model_versions.owner IS 'Role that owns the version (the training''s owner)';
COMMENT ON COLUMN training.model_versions.model_id IS 'The model';
COMMENT ON COLUMN training.model_versions.version_number IS 'Version number 1, 2, ... per model (name==N)';
COMMENT ON COLUMN training.model_versions.training_id IS 'The training that wrote it (NULL once that training is deleted)';
COMMENT ON COLUMN training.model_versions.changelog IS 'The training''s output_model_changelog';
COMMENT ON COLUMN training.model_versions.dataset IS 'Snapshot of the source Dataset object (get_dataset) at training time';
COMMENT ON COLUMN training.model_versions.parameters IS 'Trained parameters (pipeline model format, little-endian float32)';
COMMENT ON COLUMN training.model_versions.metrics IS 'Evaluation metrics (accuracy, images used and skipped)';
COMMENT ON COLUMN training.model_versions.time_created IS 'Creation time';

-- The version a training wrote, by id: output_model is that version, or null once it is deleted.
-- Kept by a trigger on model_versions (10_api.sql), not a foreign key: trainings and model_versions
-- would reference each other, and pg_dump cannot order the data of such extension tables.
ALTER TABLE training.trainings ADD COLUMN output_model_version_id uuid;
COMMENT ON COLUMN training.trainings.output_model_version_id IS
    'The model version the training wrote (read-only; NULL until then, and once that version is deleted)';

-- Indexes for foreign keys, listings and the worker's claim.
CREATE INDEX classes_dataset_idx ON training.classes (dataset_id, time_created, id);
CREATE INDEX classes_expiring_idx ON training.classes (dataset_id, expiration_date)
    WHERE expiration_date IS NOT NULL;
CREATE INDEX images_class_idx ON training.images (class_id, time_created, id);
CREATE INDEX datasets_created_idx ON training.datasets (time_created, id);
CREATE INDEX models_created_idx ON training.models (time_created, id);
CREATE INDEX trainings_waiting_idx ON training.trainings (time_created, id) WHERE state = 'waiting';
CREATE INDEX trainings_processing_idx ON training.trainings (id) WHERE state = 'processing';
CREATE INDEX trainings_dataset_idx ON training.trainings (source_dataset_id);
CREATE INDEX trainings_output_model_idx ON training.trainings (output_model_id);
CREATE INDEX trainings_created_idx ON training.trainings (time_created, id);
CREATE INDEX trainings_state_created_idx ON training.trainings (state, time_created, id);
CREATE INDEX model_versions_training_idx ON training.model_versions (training_id);
CREATE INDEX trainings_output_version_idx ON training.trainings (output_model_version_id);
CREATE INDEX trainings_pending_name_idx ON training.trainings (owner, output_model_name, type)
    WHERE state IN ('waiting', 'processing');

COMMENT ON INDEX training.classes_dataset_idx IS 'list_classes, dataset previews and the class foreign key';
COMMENT ON INDEX training.classes_expiring_idx IS 'Expired classes of a dataset, subtracted from the counters at read time';
COMMENT ON INDEX training.images_class_idx IS 'list_images, previews and the image foreign key';
COMMENT ON INDEX training.datasets_created_idx IS 'list_datasets';
COMMENT ON INDEX training.models_created_idx IS 'list_models';
COMMENT ON INDEX training.trainings_waiting_idx IS 'The worker''s claim of the oldest waiting training';
COMMENT ON INDEX training.trainings_processing_idx IS 'Recovery of trainings left processing';
COMMENT ON INDEX training.trainings_dataset_idx IS 'Trainings of a dataset (dataset deletion check, foreign key)';
COMMENT ON INDEX training.trainings_output_model_idx IS 'Trainings of a model (foreign key)';
COMMENT ON INDEX training.trainings_created_idx IS 'list_trainings';
COMMENT ON INDEX training.trainings_state_created_idx IS 'list_trainings filtered by state';
COMMENT ON INDEX training.model_versions_training_idx IS 'Version written by a training (get_training, foreign key)';
COMMENT ON INDEX training.trainings_pending_name_idx IS
    'Waiting and processing trainings of a model name (create_training: one type per new model name)';
COMMENT ON INDEX training.trainings_output_version_idx IS 'Trainings of a model version (deleting a version clears their link)';

-- User rows are data, not part of the extension: pg_dump dumps them.
SELECT pg_catalog.pg_extension_config_dump('training.datasets', '');
SELECT pg_catalog.pg_extension_config_dump('training.classes', '');
SELECT pg_catalog.pg_extension_config_dump('training.images', '');
SELECT pg_catalog.pg_extension_config_dump('training.models', '');
SELECT pg_catalog.pg_extension_config_dump('training.trainings', '');
SELECT pg_catalog.pg_extension_config_dump('training.model_versions', '');
