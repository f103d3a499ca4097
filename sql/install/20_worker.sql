-- training: hooks of the background worker on training.trainings.

-- The trainings_before trigger (10_api.sql) wakes the launcher when an inserting transaction
-- commits, or warns that nothing will run the training.

-- Stop the worker of a processing training when its deletion commits.
CREATE FUNCTION training._worker_cancel() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'training_cancel_trigger'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._worker_cancel() IS
    'Trigger: at commit, tells the worker running a deleted training to stop; no model version is written.';
CREATE TRIGGER trainings_worker_cancel
    AFTER DELETE ON training.trainings
    FOR EACH ROW WHEN (OLD.state = 'processing')
    EXECUTE FUNCTION training._worker_cancel();

-- The claim, the finish and the release of a training live in 80_workers.sql, with the leases
-- (they use its columns).

-- Announce every state change on channel training_state (see README, "Waiting for a training"):
--   {"id": "<uuid>", "state": "waiting|processing|completed|failed|deleted", "previous_state": "...|null"}
CREATE FUNCTION training._notify_state() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'training_notify_trigger'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._notify_state() IS
    'Trigger: NOTIFY training_state, ''{"id", "state", "previous_state"}'' on every state change of a training (state "deleted" on delete).';
-- Not on INSERT: NOTIFY takes one lock for the whole cluster from the commit of a transaction
-- that sent one until its end, so announcing creations would make concurrent create_training
-- calls commit one at a time. The worker's first change (processing) announces a training.
CREATE TRIGGER trainings_notify_delete
    AFTER DELETE ON training.trainings
    FOR EACH ROW EXECUTE FUNCTION training._notify_state();
CREATE TRIGGER trainings_notify_state
    AFTER UPDATE OF state ON training.trainings
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION training._notify_state();

-- Internal functions are the worker's and the triggers': not for tenants (triggers fire without
-- EXECUTE on their function).
REVOKE ALL ON FUNCTION training._worker_cancel(), training._notify_state() FROM PUBLIC;
