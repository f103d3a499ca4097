-- training 0.2.0 -> 0.3.0: ALTER EXTENSION training UPDATE TO '0.3.0'.
-- An upgraded database equals a fresh install of 0.3.0 (test/upgrade/run.sh compares the catalogs).
--   * trainings.object keeps the Training object with its row: get_training and list_trainings
--     read it by primary key instead of rendering it (sql/install/60_object.sql);
--   * list_trainings is C and reads the kept objects (index trainings_owner_created_idx for roles
--     under row-level security);
--   * training.training_counts: trainings per owner and state, kept by a trigger, so that
--     list_trainings' total is not a count of every row;
--   * training.memory(): what the C core's one network cache holds in this process.
\echo Use "ALTER EXTENSION training UPDATE TO '0.3.0'" to load this file. \quit

ALTER TABLE training.trainings ADD COLUMN object jsonb;
ALTER TABLE training.trainings ADD COLUMN object_stale_at timestamptz;
COMMENT ON COLUMN training.trainings.object IS
    'The Training object as of the row''s last write, kept by the extension; get_training returns it, or renders what changed since (read-only)';
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

-- list_trainings in C: one count and one page query, the kept objects of the page. Its helper
-- trainings_json(ids) is no longer needed (the C symbol stays for catalogs not yet updated).
DROP FUNCTION training.trainings_json(uuid[]);
CREATE OR REPLACE FUNCTION training.list_trainings("limit" integer DEFAULT 10, "offset" integer DEFAULT 0,
                                                   state text DEFAULT NULL) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_list_trainings'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;

-- create_training returns the object its insert rendered (no second read).
CREATE OR REPLACE FUNCTION training.create_training(source_dataset_id uuid, output_model_name text,
                                         output_model_description text DEFAULT '',
                                         output_model_changelog text DEFAULT '',
                                         config jsonb DEFAULT '{}') RETURNS jsonb
    LANGUAGE plpgsql AS $$
DECLARE
    o jsonb;
BEGIN
    -- The triggers on training.trainings validate and fill what a direct INSERT gets too, and
    -- render the Training object kept with the row (sql/install/60_object.sql).
    INSERT INTO training.trainings (source_dataset_id, output_model_name, output_model_description,
                                    output_model_changelog, config)
    VALUES (create_training.source_dataset_id, create_training.output_model_name,
            create_training.output_model_description, create_training.output_model_changelog,
            create_training.config)
    RETURNING object INTO o;
    RETURN o;
END $$
    SET search_path = pg_catalog, pg_temp;

-- The claim returns what the worker uses (not the owner: _worker_finish reads it from the row).
DROP FUNCTION training._worker_claim(integer);
CREATE FUNCTION training._worker_claim(worker_pid integer)
    RETURNS TABLE (id uuid, type text, config jsonb, source_dataset_id uuid, attempts integer)
    LANGUAGE sql AS $$
    UPDATE training.trainings t
       SET state = 'processing', worker_pid = $1, attempts = t.attempts + 1,
           time_started = clock_timestamp(), time_completed = NULL,
           progress = 0, duration = 0, stage = 'starting', error = ''
     WHERE t.id = (SELECT w.id FROM training.trainings w
                    WHERE w.state = 'waiting'
                    ORDER BY w.time_created, w.id
                    FOR UPDATE SKIP LOCKED LIMIT 1)
    RETURNING t.id, t.type, t.config, t.source_dataset_id, t.attempts
$$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._worker_claim(integer) IS
    'Background worker: claims the oldest waiting training (FOR UPDATE SKIP LOCKED) for the given worker process.';
REVOKE ALL ON FUNCTION training._worker_claim(integer) FROM PUBLIC;

-- What the C core holds in this process outside PostgreSQL's memory contexts (one network cache).
CREATE FUNCTION training.memory() RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_memory'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.memory() IS
    'Memory the C core holds in this process outside PostgreSQL memory contexts: {"network_cache_bytes", "network_cache_networks", "network_cache_dir"}';

-- Kept counts of trainings per owner and state (sql/install/70_counts.sql).
CREATE TABLE training.training_counts (
    owner name    NOT NULL,
    state text    NOT NULL,
    slot  integer NOT NULL,
    n     bigint  NOT NULL,
    PRIMARY KEY (owner, state, slot)
);
COMMENT ON TABLE training.training_counts IS
    'How many trainings each role has in each state (sum n over slot), kept by the trainings_count trigger for list_trainings';
COMMENT ON COLUMN training.training_counts.owner IS 'Role that owns the trainings';
COMMENT ON COLUMN training.training_counts.state IS 'State of the trainings';
COMMENT ON COLUMN training.training_counts.slot IS 'Backend that wrote this part of the count (parts add up)';
COMMENT ON COLUMN training.training_counts.n IS 'Trainings added minus trainings removed by that backend';

ALTER TABLE training.training_counts ENABLE ROW LEVEL SECURITY;
CREATE POLICY training_counts_owner ON training.training_counts USING (owner = current_user);
CREATE POLICY training_counts_admin ON training.training_counts TO training_admin USING (true);
COMMENT ON POLICY training_counts_owner ON training.training_counts IS 'A role sees the counts of its own trainings';
COMMENT ON POLICY training_counts_admin ON training.training_counts IS 'Members of training_admin see every count';
-- Read by list_trainings with the caller's rights; written only by the trigger (definer's rights).
GRANT SELECT ON training.training_counts TO PUBLIC;

CREATE FUNCTION training._trainings_count() RETURNS trigger
    AS 'MODULE_PATHNAME', 'training_trainings_count'
    LANGUAGE C SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._trainings_count() IS
    'Trigger: keep training.training_counts as trainings are inserted, deleted, change state or owner, or are truncated';
CREATE TRIGGER trainings_count AFTER INSERT OR DELETE OR UPDATE OF owner, state ON training.trainings
    FOR EACH ROW EXECUTE FUNCTION training._trainings_count();
CREATE TRIGGER trainings_count_truncate AFTER TRUNCATE ON training.trainings
    FOR EACH STATEMENT EXECUTE FUNCTION training._trainings_count();
REVOKE ALL ON FUNCTION training._trainings_count() FROM PUBLIC;

-- Rebuild the counts from the rows: after writes with triggers off (session_replication_role =
-- replica, pg_restore --disable-triggers, a logical replica). SHARE lock: no training is written
-- meanwhile. Superusers only (not executable by PUBLIC).
CREATE FUNCTION training.recount_trainings() RETURNS bigint
    LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE training.trainings IN SHARE MODE;
    DELETE FROM training.training_counts;
    INSERT INTO training.training_counts (owner, state, slot, n)
    SELECT t.owner, t.state, 0, count(*) FROM training.trainings t GROUP BY t.owner, t.state;
    RETURN (SELECT coalesce(sum(c.n), 0)::bigint FROM training.training_counts c);
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.recount_trainings() IS
    'Rebuild training.training_counts from the trainings (after writes with triggers off); returns the total';
REVOKE ALL ON FUNCTION training.recount_trainings() FROM PUBLIC;
-- Count the trainings already there.
SELECT training.recount_trainings();

-- Render the objects of the trainings already there.
UPDATE training.trainings SET object = NULL;
