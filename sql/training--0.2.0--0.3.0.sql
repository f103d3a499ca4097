-- training 0.2.0 -> 0.3.0: ALTER EXTENSION training UPDATE TO '0.3.0'.
-- An upgraded database equals a fresh install of 0.3.0 (test/upgrade/run.sh compares the catalogs).
--   * trainings.object keeps the Training object with its row: get_training and list_trainings
--     read it by primary key instead of rendering it (sql/install/60_object.sql);
--   * list_trainings is C and reads the kept objects (index trainings_owner_created_idx for roles
--     under row-level security);
--   * training.memory(): what the C core's one network cache holds in this process.
\echo Use "ALTER EXTENSION training UPDATE TO '0.3.0'" to load this file. \quit

ALTER TABLE training.trainings ADD COLUMN object jsonb;
ALTER TABLE training.trainings ADD COLUMN object_stale_at timestamptz;
COMMENT ON COLUMN training.trainings.object IS
    'The Training object as get_training returns it, kept by the extension on every change (read-only)';
COMMENT ON COLUMN training.trainings.object_stale_at IS
    'When a class of the source dataset expires: object is rendered afresh at read time from then on (read-only)';

CREATE FUNCTION training._trainings_object() RETURNS trigger
    AS 'MODULE_PATHNAME', 'training_trainings_object'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._trainings_object() IS
    'Trigger: keep trainings.object, the Training object of the row, and object_stale_at';
CREATE TRIGGER trainings_object BEFORE INSERT OR UPDATE ON training.trainings
    FOR EACH ROW EXECUTE FUNCTION training._trainings_object();

-- Definer's rights: whoever changes a dataset, the objects of its waiting trainings follow.
CREATE FUNCTION training._datasets_follow() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    UPDATE training.trainings t SET object = NULL
     WHERE t.source_dataset_id = NEW.id AND t.state = 'waiting';
    RETURN NULL;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._datasets_follow() IS
    'Trigger: render the objects of the waiting trainings of a changed dataset again';
CREATE TRIGGER datasets_follow AFTER UPDATE ON training.datasets
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION training._datasets_follow();

REVOKE ALL ON FUNCTION training._trainings_object(), training._datasets_follow() FROM PUBLIC;

-- A role under row-level security lists its own trainings: owner first, in list order.
CREATE INDEX trainings_owner_created_idx ON training.trainings (owner, time_created, id);
COMMENT ON INDEX training.trainings_owner_created_idx IS 'list_trainings of a role under row-level security (owner = current_user)';

-- list_trainings in C: one count and one page query, the kept objects of the page.
CREATE OR REPLACE FUNCTION training.list_trainings("limit" integer DEFAULT 10, "offset" integer DEFAULT 0,
                                                   state text DEFAULT NULL) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_list_trainings'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;

-- What the C core holds in this process outside PostgreSQL's memory contexts (one network cache).
CREATE FUNCTION training.memory() RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_memory'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.memory() IS
    'Memory the C core holds in this process outside PostgreSQL memory contexts: {"network_cache_bytes", "network_cache_networks", "network_cache_dir"}';

-- Render the objects of the trainings already there.
UPDATE training.trainings SET object = NULL;
