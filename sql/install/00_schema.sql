-- training 0.1.0: tables. Parts of sql/install/ are concatenated in name order.
\echo Use "CREATE EXTENSION training" to load this file. \quit

-- Datasets: collections of classes (identities for face, places for landmark).
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
    time_created      timestamptz NOT NULL DEFAULT now(),
    time_updated      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT datasets_name_not_empty CHECK (name <> ''),
    CONSTRAINT datasets_type_valid CHECK (type IN ('face', 'landmark'))
);

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
    time_created    timestamptz NOT NULL DEFAULT now(),
    time_updated    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT classes_label_not_empty CHECK (label <> ''),
    CONSTRAINT classes_reference_not_empty CHECK (reference <> ''),
    CONSTRAINT classes_reference_unique UNIQUE (dataset_id, reference)
);

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
    time_created      timestamptz NOT NULL DEFAULT now(),
    time_updated      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT images_face_box_valid CHECK (
        face_box IS NULL OR (
            array_ndims(face_box) = 1 AND cardinality(face_box) = 4
            AND array_position(face_box, NULL) IS NULL
            AND face_box[1] >= 0 AND face_box[2] >= 0
            AND face_box[3] > 0 AND face_box[4] > 0))
);

-- Models: named outputs of trainings; every completed training adds a version.
CREATE TABLE training.models (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner        name NOT NULL DEFAULT current_user,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    type         text NOT NULL,
    time_created timestamptz NOT NULL DEFAULT now(),
    time_updated timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT models_name_valid CHECK (name <> '' AND strpos(name, '==') = 0),
    CONSTRAINT models_type_valid CHECK (type IN ('face', 'landmark')),
    CONSTRAINT models_name_unique UNIQUE (owner, name)
);

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
    time_created             timestamptz NOT NULL DEFAULT now(),
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

-- Indexes for foreign keys, listings and the worker's claim.
CREATE INDEX classes_dataset_idx ON training.classes (dataset_id, time_created);
CREATE INDEX images_class_idx ON training.images (class_id, time_created);
CREATE INDEX trainings_waiting_idx ON training.trainings (time_created, id) WHERE state = 'waiting';
CREATE INDEX trainings_processing_idx ON training.trainings (id) WHERE state = 'processing';
CREATE INDEX trainings_dataset_idx ON training.trainings (source_dataset_id);
CREATE INDEX trainings_output_model_idx ON training.trainings (output_model_id);
CREATE INDEX trainings_created_idx ON training.trainings (time_created, id);
CREATE INDEX model_versions_training_idx ON training.model_versions (training_id);
