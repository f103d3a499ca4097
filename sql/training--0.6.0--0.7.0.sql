-- training 0.6.0 -> 0.7.0: leases on claims, training-worker (workers outside the server).
--
-- New: trainings.worker and trainings.lease_expires, the training_worker role and the
-- training_worker.* functions; every claim first queues again the trainings whose lease expired;
-- _worker_claim and _worker_finish take leases into account; measurements are kept through
-- training._keep_measure. The rest of this script is sql/install/80_workers.sql.

\echo Use "ALTER EXTENSION training UPDATE TO '0.7.0'" to load this file. \quit

-- The library defines training.worker_scope, which the functions below set: load it first.
SELECT training.in_background_worker();

ALTER TABLE training.trainings ADD COLUMN worker text;
ALTER TABLE training.trainings ADD COLUMN lease_expires timestamptz;
COMMENT ON COLUMN training.trainings.worker IS
    'While processing: who runs it, "training worker <pid>" (in the server) or "training-worker <host>:<pid>" (read-only)';
COMMENT ON COLUMN training.trainings.lease_expires IS
    'While processing: when its claim lapses unless its worker renews it (training.lease_timeout); then the next claim queues it again (read-only)';

-- The role of training-worker: EXECUTE on the worker_* functions below and nothing else (no
-- table privileges: the functions check the claim and write as their owner). Roles are
-- cluster-wide: created only when missing, and it survives DROP EXTENSION.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'training_worker') THEN
        CREATE ROLE training_worker NOLOGIN;
        COMMENT ON ROLE training_worker IS
            'training extension: members may run training-worker (claim, read and finish every owner''s trainings)';
    END IF;
END
$$;

-- The processing trainings, by lease: each claim looks for expired ones.
CREATE INDEX trainings_lease ON training.trainings (lease_expires) WHERE state = 'processing';

-- The settings as SQL sees them: training.lease_timeout and training.max_attempts, their
-- defaults where the library is not loaded.
CREATE FUNCTION training._lease_timeout() RETURNS interval
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(nullif(current_setting('training.lease_timeout', true), ''), '30s')::interval
$$;
CREATE FUNCTION training._max_attempts() RETURNS integer
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(nullif(current_setting('training.max_attempts', true), '')::integer, 3)
$$;

-- Claim the oldest waiting training (FOR UPDATE SKIP LOCKED, so two claimers never take the
-- same one) for a worker, with a lease; committed at once by the caller.
CREATE FUNCTION training._claim(worker_pid integer, worker text)
    RETURNS TABLE (id uuid, type text, config jsonb, source_dataset_id uuid, attempts integer)
    LANGUAGE sql AS $$
    UPDATE training.trainings t
       SET state = 'processing', worker_pid = $1, worker = $2, attempts = t.attempts + 1,
           time_started = clock_timestamp(), time_completed = NULL,
           lease_expires = clock_timestamp() + training._lease_timeout(),
           progress = 0, duration = 0, stage = 'starting', error = ''
     WHERE t.id = (SELECT w.id FROM training.trainings w
                    WHERE w.state = 'waiting'
                    ORDER BY w.time_created, w.id
                    FOR UPDATE SKIP LOCKED LIMIT 1)
    RETURNING t.id, t.type, t.config, t.source_dataset_id, t.attempts
$$
    SET search_path = pg_catalog, pg_temp;

-- Queue a processing training again, or fail it when it was started max_attempts times. attempt
-- NULL: whatever the claim (recovery, which holds the row locked). A row another session holds
-- is skipped, never waited for (an exiting worker cannot time a wait out). Returns 'waiting' or
-- 'failed'; NULL when the row is not that claim's, or is locked.
CREATE FUNCTION training._worker_release(training_id uuid, attempt integer, max_attempts integer, cause text)
    RETURNS text
    LANGUAGE sql AS $$
    UPDATE training.trainings SET
      state = CASE WHEN attempts >= $3 THEN 'failed' ELSE 'waiting' END,
      error = CASE WHEN attempts >= $3
              THEN format('gave up after %s attempts (training.max_attempts = %s): %s', attempts, $3, $4)
              ELSE '' END,
      stage = CASE WHEN attempts >= $3 THEN 'failed' ELSE 'requeued: ' || $4 END,
      progress = CASE WHEN attempts >= $3 THEN progress ELSE 0 END,
      duration = CASE WHEN attempts >= $3 AND time_started IS NOT NULL
                 THEN extract(epoch FROM clock_timestamp() - time_started)::float8 ELSE 0 END,
      time_started = CASE WHEN attempts >= $3 THEN time_started END,
      time_completed = CASE WHEN attempts >= $3 THEN clock_timestamp() END,
      worker_pid = NULL, worker = NULL, lease_expires = NULL
    WHERE id = (SELECT x.id FROM training.trainings x
                WHERE x.id = $1 AND x.state = 'processing' AND ($2 IS NULL OR x.attempts = $2)
                FOR UPDATE SKIP LOCKED)
    RETURNING state
$$
    SET search_path = pg_catalog, pg_temp;

-- Queue again (or fail, at training.max_attempts) the trainings whose lease expired: every claim
-- runs this first. Rows locked by another session are left for the next claim. Returns how many
-- it touched.
CREATE FUNCTION training._requeue_expired() RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    n integer := 0;
    st text;
BEGIN
    -- A row without a lease was claimed by a worker of 0.6.0: its lease runs from its start.
    FOR r IN SELECT x.id, x.worker FROM training.trainings x
              WHERE x.state = 'processing'
                AND coalesce(x.lease_expires, x.time_started + training._lease_timeout(), '-infinity') < clock_timestamp()
                FOR UPDATE SKIP LOCKED
    LOOP
        st := training._worker_release(r.id, NULL, training._max_attempts(),
                  format('the lease of %s expired (training.lease_timeout = %s): it died, froze or lost its connection',
                         coalesce(r.worker, 'its worker'), training._lease_timeout()));
        IF st IS NOT NULL THEN
            n := n + 1;
            RAISE LOG 'training %: the lease of % expired; %', r.id, coalesce(r.worker, 'its worker'),
                CASE st WHEN 'waiting' THEN 'queued again' ELSE 'failed (training.max_attempts reached)' END;
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- The in-server worker's claim (its pid lets the server see at once that it is gone).
CREATE OR REPLACE FUNCTION training._worker_claim(worker_pid integer)
    RETURNS TABLE (id uuid, type text, config jsonb, source_dataset_id uuid, attempts integer)
    LANGUAGE sql AS $$
    SELECT training._requeue_expired();
    SELECT * FROM training._claim($1, 'training worker ' || $1)
$$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._worker_claim(integer) IS
    'Background worker: queue again the trainings whose lease expired, then claim the oldest waiting one (FOR UPDATE SKIP LOCKED) for the given worker process.';

-- The claim (training_id, attempt) holds and its lease runs: the dataset it trains on (NULL
-- once deleted). Otherwise 55000: the training was deleted, finished, or queued again.
CREATE FUNCTION training._claimed(training_id uuid, attempt integer) RETURNS uuid
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ds uuid;
BEGIN
    SELECT x.source_dataset_id INTO ds FROM training.trainings x
     WHERE x.id = training_id AND x.state = 'processing' AND x.attempts = attempt
       AND x.worker_pid IS NULL AND x.lease_expires > clock_timestamp();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'training % is not claimed by attempt %', training_id, attempt
            USING ERRCODE = '55000',
                  DETAIL = 'It was deleted, it finished, or its lease expired and it was queued again.',
                  HINT = 'Stop this training and claim the next one.';
    END IF;
    RETURN ds;
END $$;

-- A training-worker's write: its claim (training_id, attempt) holds and its lease runs. 'ok' with the
-- row locked; 'busy' when another session holds the row (SKIP LOCKED: never waited for); 'gone'.
CREATE FUNCTION training._held(training_id uuid, attempt integer) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM FROM training.trainings x
      WHERE x.id = _held.training_id AND x.state = 'processing' AND x.attempts = _held.attempt
        AND x.worker_pid IS NULL AND x.lease_expires > clock_timestamp()
        FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        RETURN 'ok';
    END IF;
    PERFORM FROM training.trainings x
      WHERE x.id = _held.training_id AND x.state = 'processing' AND x.attempts = _held.attempt
        AND x.worker_pid IS NULL AND x.lease_expires > clock_timestamp();
    RETURN CASE WHEN FOUND THEN 'busy' ELSE 'gone' END;
END $$;

-- Keep a measurement in the embedding store, for the content_version it was measured from, while
-- the image still has it. The image's row is locked meanwhile so that a change of its data or
-- face box (whose trigger forgets the old rows) comes after, not between; a row another session
-- holds is skipped, never waited for. NO KEY UPDATE, not SHARE: two writers of one measurement
-- never both get as far as the insert, whose unique index would make one wait for the other.
CREATE FUNCTION training._keep_measure(image_id uuid, kind text, content_version bigint, status text,
                                       message text, max_pixels bigint, width integer, height integer,
                                       regions real[], features real[])
    RETURNS boolean
    LANGUAGE sql AS $$
    WITH kept AS (
        INSERT INTO training.image_features AS f
               (image_id, kind, content_version, owner, status, message, max_pixels, width, height, regions, features)
        SELECT i.id, $2, i.content_version, i.owner, $4, $5, $6, $7, $8, $9, $10 FROM training.images i
         WHERE i.id = $1 AND i.content_version = $3 FOR NO KEY UPDATE OF i SKIP LOCKED
        ON CONFLICT (image_id, kind) DO UPDATE SET content_version = excluded.content_version,
               owner = excluded.owner, status = excluded.status, message = excluded.message,
               max_pixels = excluded.max_pixels, width = excluded.width, height = excluded.height,
               regions = excluded.regions, features = excluded.features, time_created = excluded.time_created
        RETURNING 1)
    SELECT EXISTS (SELECT FROM kept)
$$
    SET search_path = pg_catalog, pg_temp;

-- Finish a claimed training: create the model on first use, add the next version and mark the
-- training completed, in the caller's transaction. worker_pid: the in-server worker's pid, NULL
-- for a training-worker's claim (whose attempt training_worker.finish checked). Returns the version number,
-- NULL when the training is no longer this worker's (deleted, re-queued, or its lease expired),
-- or -1 when another session holds its row locked (a tenant's SELECT ... FOR UPDATE): the worker
-- never waits for a tenant's lock. The version number comes from the model's counter, which only
-- goes up, so a deleted number is never given again; the counter's row lock orders concurrent
-- completions of one model.
CREATE OR REPLACE FUNCTION training._worker_finish(training_id uuid, worker_pid integer, parameters bytea, metrics jsonb)
    RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t training.trainings;
    m training.models;
    vid uuid;
BEGIN
    SELECT * INTO t FROM training.trainings x
     WHERE x.id = _worker_finish.training_id AND x.state = 'processing'
       AND x.worker_pid IS NOT DISTINCT FROM _worker_finish.worker_pid AND x.lease_expires > clock_timestamp()
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN CASE WHEN EXISTS (SELECT FROM training.trainings x
                                  WHERE x.id = _worker_finish.training_id AND x.state = 'processing'
                                    AND x.worker_pid IS NOT DISTINCT FROM _worker_finish.worker_pid
                                    AND x.lease_expires > clock_timestamp()) THEN -1 END;
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
           output_model_version = m.last_version, output_model_version_id = vid,
           worker_pid = NULL, worker = NULL, lease_expires = NULL
     WHERE x.id = t.id;
    RETURN m.last_version;
END $$;
COMMENT ON FUNCTION training._worker_finish(uuid, integer, bytea, jsonb) IS
    'Background worker: write the model version of a claimed training and complete it; the version number never repeats';

-- The functions of training-worker (tools/training-worker.c; docs/remote-workers.md), in a schema of
-- their own: training_worker needs USAGE on it only, not on schema training (and a GRANT on
-- schema training in an update script would record the tenants' grants as the extension's own,
-- which pg_dump would then leave out).
CREATE SCHEMA training_worker;
COMMENT ON SCHEMA training_worker IS 'training extension: the functions of training-worker (role training_worker)';
REVOKE ALL ON SCHEMA training_worker FROM PUBLIC;
GRANT USAGE ON SCHEMA training_worker TO training_worker;
-- SECURITY DEFINER: they check the claim and write as their owner (a superuser: row-level
-- security does not hide other owners' rows), inside training.worker_scope, which the guard of
-- the read-only columns accepts (src/guard.c). EXECUTE: training_worker only.

CREATE FUNCTION training_worker.claim(worker text)
    RETURNS TABLE (id uuid, type text, config text, source_dataset_id uuid, attempt integer, lease_timeout integer,
                   face_features text, max_image_pixels bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET training.worker_scope = on AS $$
#variable_conflict use_column
BEGIN
    IF claim.worker IS NULL OR length(claim.worker) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'worker must name the claiming worker in 1 to 200 characters'
            USING ERRCODE = '22023', HINT = 'training-worker passes "training-worker <host>:<pid>".';
    END IF;
    -- training.enabled = off (for the cluster, or ALTER DATABASE ... SET) stops every claim.
    IF NOT coalesce(nullif(current_setting('training.enabled', true), '')::boolean, true) THEN
        RETURN;
    END IF;
    PERFORM training._requeue_expired();
    RETURN QUERY
        SELECT c.id, c.type, c.config::text, c.source_dataset_id, c.attempts,
               extract(epoch FROM training._lease_timeout())::integer,
               -- What an in-server worker would train with (NULL where the library is not loaded).
               nullif(current_setting('training.face_features', true), ''),
               nullif(current_setting('training.max_image_pixels', true), '')::bigint
          FROM training._claim(NULL, claim.worker) c;
END $$;
COMMENT ON FUNCTION training_worker.claim(text) IS
    'training-worker: queue again the trainings whose lease expired, then claim the oldest waiting one; the claim is (id, attempt), with the server''s face_features and max_image_pixels';

CREATE FUNCTION training_worker.classes(training_id uuid, attempt integer)
    RETURNS TABLE (class_id uuid, label text, images bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET training.worker_scope = on AS $$
BEGIN
    RETURN QUERY
        SELECT c.id, c.label,
               (SELECT count(*) FROM training.images i WHERE i.class_id = c.id AND i.active)
          FROM training.classes c
         WHERE c.dataset_id = training._claimed(classes.training_id, classes.attempt) AND c.active
           AND (c.expiration_date IS NULL OR c.expiration_date > now())
         ORDER BY c.time_created, c.id;
END $$;
COMMENT ON FUNCTION training_worker.classes(uuid, integer) IS
    'training-worker: the active classes of a claimed training''s dataset, in training order, with their active images';

CREATE FUNCTION training_worker.images(training_id uuid, attempt integer, class_id uuid, after_time timestamptz,
                                       after_id uuid, batch integer, kind text)
    RETURNS TABLE (id uuid, time_created timestamptz, content_version bigint, face_box integer[],
                   status text, message text, max_pixels bigint, width integer, height integer,
                   regions real[], features real[])
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET training.worker_scope = on AS $$
DECLARE
    ds uuid := training._claimed(images.training_id, images.attempt);
BEGIN
    RETURN QUERY
        SELECT i.id, i.time_created, i.content_version, i.face_box,
               f.status, f.message, f.max_pixels, f.width, f.height, f.regions, f.features
          FROM training.images i
          JOIN training.classes c ON c.id = i.class_id AND c.dataset_id = ds
          LEFT JOIN training.image_features f
                 ON f.image_id = i.id AND f.kind = images.kind AND f.content_version = i.content_version
         WHERE i.class_id = images.class_id AND i.active
           AND (i.time_created, i.id) > (coalesce(images.after_time, '-infinity'),
                                         coalesce(images.after_id, '00000000-0000-0000-0000-000000000000'))
         ORDER BY i.time_created, i.id
         LIMIT greatest(1, least(coalesce(images.batch, 16), 64));
END $$;
COMMENT ON FUNCTION training_worker.images(uuid, integer, uuid, timestamptz, uuid, integer, text) IS
    'training-worker: the next batch (at most 64) of a class''s active images after a key, with their kept measurement of a feature kind';

CREATE FUNCTION training_worker.image_data(training_id uuid, attempt integer, ids uuid[])
    RETURNS TABLE (id uuid, content_version bigint, face_box integer[], data bytea)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET training.worker_scope = on AS $$
DECLARE
    ds uuid := training._claimed(image_data.training_id, image_data.attempt);
BEGIN
    IF cardinality(image_data.ids) > 64 THEN
        RAISE EXCEPTION 'at most 64 images at a time (got %)', cardinality(image_data.ids)
            USING ERRCODE = '54000', HINT = 'Ask for the data of one batch at a time.';
    END IF;
    RETURN QUERY
        SELECT i.id, i.content_version, i.face_box, i.data
          FROM training.images i
          JOIN training.classes c ON c.id = i.class_id AND c.dataset_id = ds
         WHERE i.id = ANY (image_data.ids);
END $$;
COMMENT ON FUNCTION training_worker.image_data(uuid, integer, uuid[]) IS
    'training-worker: the data of images of a claimed training''s dataset (at most 64)';

CREATE FUNCTION training_worker.keep(training_id uuid, attempt integer, image_id uuid, content_version bigint,
                                     kind text, status text, message text, max_pixels bigint, width integer,
                                     height integer, regions real[], features real[])
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET training.worker_scope = on AS $$
DECLARE
    ds uuid := training._claimed(keep.training_id, keep.attempt);
BEGIN
    -- What the server's readers expect (src/core/measure.h): a kind's name, up to 8 regions of 8
    -- finite numbers, one feature row of finite numbers per region.
    IF keep.kind IS NULL OR keep.kind !~ '^[a-z0-9][a-z0-9-]{0,30}$'
       OR coalesce(keep.max_pixels, -1) < 0 OR coalesce(keep.width, -1) < 0 OR coalesce(keep.height, -1) < 0
       OR keep.regions IS NULL
       OR (cardinality(keep.regions) > 0
           AND (array_ndims(keep.regions) <> 2 OR array_length(keep.regions, 1) > 8 OR array_length(keep.regions, 2) <> 8))
       OR (keep.features IS NOT NULL
           AND (array_ndims(keep.features) <> 2 OR array_length(keep.features, 2) > 16384
                OR array_length(keep.features, 1) IS DISTINCT FROM array_length(keep.regions, 1)))
       OR EXISTS (SELECT FROM unnest(keep.regions) v WHERE v IS NULL OR abs(v) > 1e9 OR v = 'NaN')
       OR EXISTS (SELECT FROM unnest(keep.features) v WHERE v IS NULL OR v IN ('NaN', 'Infinity', '-Infinity')) THEN
        RAISE EXCEPTION 'not a measurement the server can use'
            USING ERRCODE = '22023',
                  HINT = 'kind: a feature kind''s name; regions: up to 8 rows of 8 finite numbers; features: one row per region.';
    END IF;
    -- Only an image of the training's dataset.
    IF NOT EXISTS (SELECT FROM training.images i JOIN training.classes c ON c.id = i.class_id
                    WHERE i.id = keep.image_id AND c.dataset_id = ds) THEN
        RETURN false;
    END IF;
    RETURN training._keep_measure(keep.image_id, keep.kind, keep.content_version,
                                  keep.status, left(coalesce(keep.message, ''), 1000), keep.max_pixels,
                                  keep.width, keep.height, keep.regions, keep.features);
END $$;
COMMENT ON FUNCTION training_worker.keep(uuid, integer, uuid, bigint, text, text, text, bigint, integer, integer, real[], real[]) IS
    'training-worker: keep a measurement made by a claimed training in the embedding store';

-- Writes: 'ok', 'busy' (another session holds the row: nothing written, try later), or 'gone'.
CREATE FUNCTION training_worker.progress(training_id uuid, attempt integer, progress double precision, stage text)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET training.worker_scope = on AS $$
DECLARE
    st text := training._held(progress.training_id, progress.attempt);
BEGIN
    IF st = 'ok' THEN
        UPDATE training.trainings t
           SET progress = greatest(t.progress, least(greatest(coalesce(progress.progress, 0), 0), 1)),
               duration = extract(epoch FROM clock_timestamp() - t.time_started)::float8,
               stage = left(coalesce(progress.stage, ''), 100),
               lease_expires = clock_timestamp() + training._lease_timeout()
         WHERE t.id = progress.training_id;
    END IF;
    RETURN st;
END $$;
COMMENT ON FUNCTION training_worker.progress(uuid, integer, double precision, text) IS
    'training-worker: write the progress and stage of a claimed training and renew its lease';

CREATE FUNCTION training_worker.finish(training_id uuid, attempt integer, parameters bytea, metrics jsonb)
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET training.worker_scope = on AS $$
DECLARE
    st text;
BEGIN
    -- A model in the format of src/core/model.c (its magic), and metrics as an object of bounded size.
    IF finish.parameters IS NULL OR substr(finish.parameters, 1, 4) <> '\x54524e4d'::bytea
       OR (finish.metrics IS NOT NULL AND (jsonb_typeof(finish.metrics) <> 'object' OR pg_column_size(finish.metrics) > 65536)) THEN
        RAISE EXCEPTION 'not a model version the server can use'
            USING ERRCODE = '22023', HINT = 'parameters: a model of src/core/model.c (magic TRNM); metrics: a JSON object of at most 64 kB.';
    END IF;
    -- The claim, locked: _worker_finish takes the same row again (SKIP LOCKED passes our own lock).
    st := training._held(finish.training_id, finish.attempt);
    IF st <> 'ok' THEN
        RETURN CASE st WHEN 'busy' THEN -1 END;
    END IF;
    RETURN training._worker_finish(finish.training_id, NULL, finish.parameters, finish.metrics);
END $$;
COMMENT ON FUNCTION training_worker.finish(uuid, integer, bytea, jsonb) IS
    'training-worker: write the model version of a claimed training and complete it (-1: busy, NULL: the claim is lost)';

CREATE FUNCTION training_worker.fail(training_id uuid, attempt integer, error text)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET training.worker_scope = on AS $$
DECLARE
    st text := training._held(fail.training_id, fail.attempt);
BEGIN
    IF st = 'ok' THEN
        UPDATE training.trainings t
           SET state = 'failed', error = left(coalesce(nullif(fail.error, ''), 'training failed'), 2000),
               stage = 'failed', duration = extract(epoch FROM clock_timestamp() - t.time_started)::float8,
               time_completed = clock_timestamp(), worker_pid = NULL, worker = NULL, lease_expires = NULL
         WHERE t.id = fail.training_id;
    END IF;
    RETURN st;
END $$;
COMMENT ON FUNCTION training_worker.fail(uuid, integer, text) IS
    'training-worker: mark a claimed training failed with a readable error';

CREATE FUNCTION training_worker.release(training_id uuid, attempt integer, cause text)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET training.worker_scope = on AS $$
DECLARE
    st text;
BEGIN
    -- A training-worker's claim only (an in-server worker's row has its pid).
    IF EXISTS (SELECT FROM training.trainings x WHERE x.id = release.training_id AND x.worker_pid IS NULL) THEN
        st := training._worker_release(release.training_id, release.attempt, training._max_attempts(),
                  left(coalesce(nullif(release.cause, ''), 'its training-worker stopped'), 500));
    END IF;
    IF st IS NOT NULL THEN
        RETURN st;
    END IF;
    RETURN CASE WHEN EXISTS (SELECT FROM training.trainings x
                              WHERE x.id = release.training_id AND x.state = 'processing'
                                AND x.attempts = release.attempt AND x.worker_pid IS NULL)
                THEN 'busy' ELSE 'gone' END;
END $$;
COMMENT ON FUNCTION training_worker.release(uuid, integer, text) IS
    'training-worker: give a claimed training back: queued again, or failed at training.max_attempts';

COMMENT ON FUNCTION training._lease_timeout() IS
    'Internal: training.lease_timeout as an interval (30 s where the library is not loaded)';
COMMENT ON FUNCTION training._max_attempts() IS
    'Internal: training.max_attempts (3 where the library is not loaded)';
COMMENT ON FUNCTION training._claim(integer, text) IS
    'Internal: claim the oldest waiting training (FOR UPDATE SKIP LOCKED) with a lease, for an in-server worker (pid) or a training-worker (NULL)';
COMMENT ON FUNCTION training._worker_release(uuid, integer, integer, text) IS
    'Internal: queue a processing training again, or fail it at max_attempts; returns waiting or failed, NULL when not that claim''s or locked';
COMMENT ON FUNCTION training._requeue_expired() IS
    'Internal: queue again the processing trainings whose lease expired (every claim runs it first)';
COMMENT ON FUNCTION training._held(uuid, integer) IS
    'Internal: a training-worker''s claim before a write: ok (row locked), busy (another session holds it) or gone';
COMMENT ON FUNCTION training._claimed(uuid, integer) IS
    'Internal: the dataset of a claimed training whose lease runs; 55000 when the claim is lost';
COMMENT ON FUNCTION training._keep_measure(uuid, text, bigint, text, text, bigint, integer, integer, real[], real[]) IS
    'Internal: keep a measurement in the embedding store while the image has that content_version (its row is skipped when locked)';

-- Internal functions are the workers': not for tenants. The training_worker.* functions: training_worker only.
REVOKE ALL ON FUNCTION training._lease_timeout(), training._max_attempts(), training._claim(integer, text),
    training._worker_claim(integer), training._worker_release(uuid, integer, integer, text), training._requeue_expired(),
    training._claimed(uuid, integer), training._held(uuid, integer),
    training._keep_measure(uuid, text, bigint, text, text, bigint, integer, integer, real[], real[]),
    training._worker_finish(uuid, integer, bytea, jsonb) FROM PUBLIC;
-- Every function of schema training_worker is one of them.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA training_worker FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA training_worker TO training_worker;
