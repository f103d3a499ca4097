-- training 0.1.0: hooks of the background worker on training.trainings.

-- Wake the launcher when an inserting transaction commits (or warn that nothing will run it).
CREATE FUNCTION training._worker_wake() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'training_wake_trigger';
COMMENT ON FUNCTION training._worker_wake() IS
    'Trigger: at commit, wakes the background worker launcher for new trainings; warns when the library is not in shared_preload_libraries.';
CREATE TRIGGER trainings_worker_wake
    AFTER INSERT ON training.trainings
    FOR EACH STATEMENT EXECUTE FUNCTION training._worker_wake();

-- Stop the worker of a processing training when its deletion commits.
CREATE FUNCTION training._worker_cancel() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'training_cancel_trigger';
COMMENT ON FUNCTION training._worker_cancel() IS
    'Trigger: at commit, tells the worker running a deleted training to stop; no model version is written.';
CREATE TRIGGER trainings_worker_cancel
    AFTER DELETE ON training.trainings
    FOR EACH ROW WHEN (OLD.state = 'processing')
    EXECUTE FUNCTION training._worker_cancel();

-- Claim the oldest waiting training for a worker; committed at once by the caller. SKIP LOCKED lets
-- concurrent claimers pass each other's rows, so no training is ever taken twice.
CREATE FUNCTION training._worker_claim(worker_pid integer)
    RETURNS TABLE (id uuid, owner name, type text, config jsonb, source_dataset_id uuid, attempts integer)
    LANGUAGE sql AS $$
    UPDATE training.trainings t
       SET state = 'processing', worker_pid = $1, attempts = t.attempts + 1,
           time_started = clock_timestamp(), time_completed = NULL,
           progress = 0, duration = 0, stage = 'starting', error = ''
     WHERE t.id = (SELECT w.id FROM training.trainings w
                    WHERE w.state = 'waiting'
                    ORDER BY w.time_created, w.id
                    FOR UPDATE SKIP LOCKED LIMIT 1)
    RETURNING t.id, t.owner, t.type, t.config, t.source_dataset_id, t.attempts
$$;
REVOKE ALL ON FUNCTION training._worker_claim(integer) FROM PUBLIC;
COMMENT ON FUNCTION training._worker_claim(integer) IS
    'Background worker: claims the oldest waiting training (FOR UPDATE SKIP LOCKED) for the given worker process.';

-- Announce every state change on channel training_state (see README, "Waiting for a training"):
--   {"id": "<uuid>", "state": "waiting|processing|completed|failed|deleted", "previous_state": "...|null"}
CREATE FUNCTION training._notify_state() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'training_notify_trigger';
COMMENT ON FUNCTION training._notify_state() IS
    'Trigger: NOTIFY training_state, ''{"id", "state", "previous_state"}'' on every state change of a training (state "deleted" on delete).';
CREATE TRIGGER trainings_notify_insert_delete
    AFTER INSERT OR DELETE ON training.trainings
    FOR EACH ROW EXECUTE FUNCTION training._notify_state();
CREATE TRIGGER trainings_notify_state
    AFTER UPDATE OF state ON training.trainings
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION training._notify_state();
