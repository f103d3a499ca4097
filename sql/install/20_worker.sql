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

-- Claim the oldest waiting training for a worker; committed at once by the caller. SKIP LOCKED lets
-- concurrent claimers pass each other's rows, so no training is ever taken twice.
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

-- Finish a claimed training: create the model on first use, add the next version and mark the
-- training completed, in the caller's transaction. Returns the version number, NULL when the
-- training is no longer this worker's (deleted, or re-queued), or -1 when another session holds
-- its row locked (a tenant's SELECT ... FOR UPDATE): the worker never waits for a tenant's lock. The version number comes from the
-- model's counter, which only goes up, so a deleted number is never given again; the counter's
-- row lock orders concurrent completions of one model.
CREATE FUNCTION training._worker_finish(training_id uuid, worker_pid integer, parameters bytea, metrics jsonb)
    RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t training.trainings;
    m training.models;
    vid uuid;
BEGIN
    SELECT * INTO t FROM training.trainings x
     WHERE x.id = _worker_finish.training_id AND x.state = 'processing' AND x.worker_pid = _worker_finish.worker_pid
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN CASE WHEN EXISTS (SELECT FROM training.trainings x
                                  WHERE x.id = _worker_finish.training_id AND x.state = 'processing'
                                    AND x.worker_pid = _worker_finish.worker_pid) THEN -1 END;
    END IF;
    -- The model row, created by the first training of a name. NOWAIT: a tenant's lock on it (an
    -- uncommitted DELETE) fails this at once (55P03), and the worker tries again a little later.
    SELECT * INTO m FROM training.models x WHERE x.owner = t.owner AND x.name = t.output_model_name
       FOR UPDATE NOWAIT;
    IF NOT FOUND THEN
        INSERT INTO training.models (owner, name, type, description)
        VALUES (t.owner, t.output_model_name, t.type, t.output_model_description)
        ON CONFLICT (owner, name) DO NOTHING;
        SELECT * INTO m FROM training.models x WHERE x.owner = t.owner AND x.name = t.output_model_name
           FOR UPDATE NOWAIT;
    END IF;
    -- greatest(): a counter behind the versions (rows restored from a 0.1.0 dump) catches up.
    UPDATE training.models x
       SET last_version = greatest(x.last_version, (SELECT max(v.version_number) FROM training.model_versions v
                                                     WHERE v.model_id = x.id)) + 1,
           time_updated = now()
     WHERE x.id = m.id
    RETURNING * INTO m;
    -- A dataset emptied while the training ran: its model would describe classes that are gone.
    IF t.source_dataset_id IS NOT NULL
       AND (SELECT d.number_of_trainable_classes FROM training.datasets d WHERE d.id = t.source_dataset_id) < 2 THEN
        RAISE EXCEPTION 'the dataset lost its classes while the training ran: fewer than two are left to train on'
            USING ERRCODE = '55000', HINT = 'Add classes with images again, then create a new training.';
    END IF;
    IF m.type <> t.type THEN
        RAISE EXCEPTION 'model % is a % model; a % training cannot add a version to it',
                quote_literal(left(m.name, 100)), m.type, t.type
            USING ERRCODE = '22023', HINT = format('Use another output_model_name, or train on a %s dataset.', m.type);
    END IF;
    INSERT INTO training.model_versions (model_id, version_number, training_id, changelog, dataset, parameters,
                                         metrics, owner)
    VALUES (m.id, m.last_version, t.id, t.output_model_changelog,
            CASE WHEN t.source_dataset_id IS NULL THEN '{}'::jsonb ELSE training.get_dataset(t.source_dataset_id) END,
            _worker_finish.parameters, coalesce(_worker_finish.metrics, '{}'), t.owner)
    RETURNING id INTO vid;
    UPDATE training.trainings x
       SET state = 'completed', progress = 1, stage = 'completed',
           duration = extract(epoch FROM clock_timestamp() - x.time_started)::float8,
           time_completed = clock_timestamp(), output_model_id = m.id,
           output_model_version = m.last_version, output_model_version_id = vid, worker_pid = NULL
     WHERE x.id = t.id;
    RETURN m.last_version;
END $$;
COMMENT ON FUNCTION training._worker_finish(uuid, integer, bytea, jsonb) IS
    'Background worker: write the model version of a claimed training and complete it; the version number never repeats';

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
REVOKE ALL ON FUNCTION training._worker_cancel(), training._worker_claim(integer),
    training._worker_finish(uuid, integer, bytea, jsonb), training._notify_state() FROM PUBLIC;
