-- training: kept counts of trainings per owner and state (0.3.0).
--
-- list_trainings returns the total of the caller's trainings with every page. Counting the rows
-- is a scan of all of them on every call; these counts are kept by a trigger instead, so the
-- total is a sum over a few rows. Each writing backend adds to its own row (slot = its backend
-- id): concurrent transactions never wait for one another on a count, and none can deadlock.
-- Row-level security shows a role its own counts, as it shows its own trainings. The counts are
-- not dumped: restoring the trainings counts them again.

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
