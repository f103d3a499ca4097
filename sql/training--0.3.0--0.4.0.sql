-- training 0.3.0 -> 0.4.0: ALTER EXTENSION training UPDATE TO '0.4.0'.
-- An upgraded database equals a fresh install of 0.4.0 (test/upgrade/run.sh compares the catalogs).
-- create_training does less per call (bench/api.sh measures it against a plain INSERT):
--   * the trainings_before trigger (the guard of the read-only columns and the validation of
--     create_training and of direct INSERTs) is C (src/validate.c), with the same errors, and it
--     keeps the Training object from the dataset row it read: the trainings_object trigger is gone;
--   * creations are no longer announced on training_state (NOTIFY serializes the commits of the
--     transactions that send one); the worker's state changes and deletions still are;
--   * the launcher is woken from trainings_before: the trainings_worker_wake trigger is gone;
--   * creations of a name whose model exists share a lock per model instead of waiting for each
--     other on the name's lock; deleting the model takes it exclusive (trigger models_delete);
--   * create_training is C: the INSERT on a kept plan, no plpgsql;
--   * the trainings policy tests the dataset's owner with a subquery, not a function call.
\echo Use "ALTER EXTENSION training UPDATE TO '0.4.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION training._trainings_before() RETURNS trigger
    AS 'MODULE_PATHNAME', 'training_trainings_before'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._trainings_before() IS
    'Trigger: validate trainings like create_training (type from the dataset, config), refuse writes to read-only columns outside the background worker, and keep the Training object (object, object_stale_at)';

DROP TRIGGER trainings_object ON training.trainings;
DROP FUNCTION training._trainings_object();

DROP TRIGGER trainings_notify_insert_delete ON training.trainings;
CREATE TRIGGER trainings_notify_delete
    AFTER DELETE ON training.trainings
    FOR EACH ROW EXECUTE FUNCTION training._notify_state();

ALTER POLICY trainings_owner ON training.trainings
    WITH CHECK (owner = current_user
                AND (source_dataset_id IS NULL
                     OR EXISTS (SELECT FROM training.datasets d
                                 WHERE d.id = trainings.source_dataset_id AND d.owner = current_user))
                AND (output_model_id IS NULL OR training.owns_model(output_model_id)));

CREATE OR REPLACE FUNCTION training.create_training(source_dataset_id uuid, output_model_name text,
                                                    output_model_description text DEFAULT '',
                                                    output_model_changelog text DEFAULT '',
                                                    config jsonb DEFAULT '{}') RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_create_training'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;

DROP TRIGGER trainings_worker_wake ON training.trainings;
DROP FUNCTION training._worker_wake();

-- Deleting a model waits for the creations that found it: they hold this lock shared until they
-- commit (one type per model, src/validate.c); a creation after the deletion takes the name lock.
CREATE FUNCTION training._models_delete() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('training.model-live:' || OLD.owner || ':' || OLD.name, 0));
    RETURN OLD;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._models_delete() IS
    'Trigger: a model is deleted only after the creations of trainings that found it have committed';
CREATE TRIGGER models_delete BEFORE DELETE ON training.models
    FOR EACH ROW EXECUTE FUNCTION training._models_delete();
REVOKE ALL ON FUNCTION training._models_delete() FROM PUBLIC;
