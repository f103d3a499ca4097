-- training: access. Row-level security on every table, the admin role,
-- grant_access()/revoke_access(), and the psql status view.
--
-- Model: every row has an owner (the role that created it, `owner DEFAULT current_user`).
-- A role sees, changes, trains on and recognizes with only the rows it owns, through the
-- tables and through the SQL API alike (the API functions are SECURITY INVOKER, so the
-- same policies apply inside them; another role's id is simply "not found", P0002).
-- Members of `training_admin` see and change every row. The background worker runs as a
-- superuser, which bypasses row-level security, so it processes every owner's trainings.

-- The admin role: members see every row of every owner. Roles are cluster-wide, so it is
-- created only when missing and survives DROP EXTENSION. It needs no BYPASSRLS: the
-- *_admin policies below give it every row.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'training_admin') THEN
        CREATE ROLE training_admin NOLOGIN;
        COMMENT ON ROLE training_admin IS
            'training extension: members see and manage every owner''s datasets, trainings and models';
    END IF;
END
$$;

-- Row-level security on every table. The table owner (the role that ran CREATE EXTENSION,
-- normally a superuser) is not subject to it; every other role is.
ALTER TABLE training.datasets       ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.classes        ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.images         ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.trainings      ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.models         ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.model_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.image_features ENABLE ROW LEVEL SECURITY;

-- Parent ownership checks for the policies below. Foreign-key checks bypass row-level
-- security, so a policy must test that a row's parent belongs to the current role. These are
-- VOLATILE plpgsql so that each call sees rows inserted earlier in the same statement (e.g. a
-- dataset and its classes inserted by one WITH ... INSERT chain), which a subquery in the
-- policy itself would not.
CREATE FUNCTION training.owns_dataset(id uuid) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM training.datasets d WHERE d.id = owns_dataset.id AND d.owner = current_user);
END $$;
CREATE FUNCTION training.owns_class(id uuid) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM training.classes c WHERE c.id = owns_class.id AND c.owner = current_user);
END $$;
CREATE FUNCTION training.owns_model(id uuid) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM training.models m WHERE m.id = owns_model.id AND m.owner = current_user);
END $$;
CREATE FUNCTION training.owns_training(id uuid) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM training.trainings t WHERE t.id = owns_training.id AND t.owner = current_user);
END $$;
COMMENT ON FUNCTION training.owns_dataset(uuid) IS
    'True when the dataset exists and belongs to current_user (row-level security check; internal)';
COMMENT ON FUNCTION training.owns_class(uuid) IS
    'True when the class exists and belongs to current_user (row-level security check; internal)';
COMMENT ON FUNCTION training.owns_model(uuid) IS
    'True when the model exists and belongs to current_user (row-level security check; internal)';
COMMENT ON FUNCTION training.owns_training(uuid) IS
    'True when the training exists and belongs to current_user (row-level security check; internal)';

-- Owner policies. USING hides other owners' rows from SELECT, UPDATE and DELETE.
-- WITH CHECK keeps `owner` unforgeable (a new or updated row must belong to current_user)
-- and stops a role from attaching a row to another owner's parent.
CREATE POLICY datasets_owner ON training.datasets
    USING (owner = current_user)
    WITH CHECK (owner = current_user);

CREATE POLICY classes_owner ON training.classes
    USING (owner = current_user)
    WITH CHECK (owner = current_user AND training.owns_dataset(dataset_id));

CREATE POLICY images_owner ON training.images
    USING (owner = current_user)
    WITH CHECK (owner = current_user AND training.owns_class(class_id));

-- The dataset test is written out rather than owns_dataset(): every create_training runs it, and
-- a subquery costs less than a function call (the datasets' own policy applies inside it).
CREATE POLICY trainings_owner ON training.trainings
    USING (owner = current_user)
    WITH CHECK (owner = current_user
                AND (source_dataset_id IS NULL
                     OR EXISTS (SELECT FROM training.datasets d
                                 WHERE d.id = trainings.source_dataset_id AND d.owner = current_user))
                AND (output_model_id IS NULL OR training.owns_model(output_model_id)));

CREATE POLICY models_owner ON training.models
    USING (owner = current_user)
    WITH CHECK (owner = current_user);

-- The store is read and written by the extension (workers, dataset_features()); tenants are not
-- granted it. Should an administrator grant SELECT, a role sees only its own images' features.
CREATE POLICY image_features_owner ON training.image_features USING (owner = current_user);

CREATE POLICY model_versions_owner ON training.model_versions
    USING (owner = current_user)
    WITH CHECK (owner = current_user
                AND training.owns_model(model_id)
                AND (training_id IS NULL OR training.owns_training(training_id)));

-- Admin policies: members of training_admin see and change every row (policies are OR-ed).
CREATE POLICY datasets_admin       ON training.datasets       TO training_admin USING (true) WITH CHECK (true);
CREATE POLICY classes_admin        ON training.classes        TO training_admin USING (true) WITH CHECK (true);
CREATE POLICY images_admin         ON training.images         TO training_admin USING (true) WITH CHECK (true);
CREATE POLICY trainings_admin      ON training.trainings      TO training_admin USING (true) WITH CHECK (true);
CREATE POLICY models_admin         ON training.models         TO training_admin USING (true) WITH CHECK (true);
CREATE POLICY model_versions_admin ON training.model_versions TO training_admin USING (true) WITH CHECK (true);
CREATE POLICY image_features_admin ON training.image_features TO training_admin USING (true);

COMMENT ON POLICY datasets_owner ON training.datasets IS
    'A role sees and changes only its own datasets; owner must be current_user';
COMMENT ON POLICY classes_owner ON training.classes IS
    'A role sees and changes only its own classes, and adds them only to its own datasets';
COMMENT ON POLICY images_owner ON training.images IS
    'A role sees and changes only its own images, and adds them only to its own classes';
COMMENT ON POLICY trainings_owner ON training.trainings IS
    'A role sees and changes only its own trainings, and trains only on its own datasets';
COMMENT ON POLICY models_owner ON training.models IS
    'A role sees and deletes only its own models (the worker creates them with the training''s owner)';
COMMENT ON POLICY model_versions_owner ON training.model_versions IS
    'A role sees and deletes only the versions of its own models';
COMMENT ON POLICY image_features_owner ON training.image_features IS 'A role sees the features of its own images';
COMMENT ON POLICY image_features_admin ON training.image_features IS 'Members of training_admin see every image''s features';
COMMENT ON POLICY datasets_admin ON training.datasets IS 'Members of training_admin see every dataset';
COMMENT ON POLICY classes_admin ON training.classes IS 'Members of training_admin see every class';
COMMENT ON POLICY images_admin ON training.images IS 'Members of training_admin see every image';
COMMENT ON POLICY trainings_admin ON training.trainings IS 'Members of training_admin see every training';
COMMENT ON POLICY models_admin ON training.models IS 'Members of training_admin see every model';
COMMENT ON POLICY model_versions_admin ON training.model_versions IS
    'Members of training_admin see every model version';

-- Status view for psql: `SELECT * FROM training.status \watch 1`. security_invoker makes
-- the caller's row-level security apply (a plain view would run as its owner and see all).
CREATE VIEW training.status WITH (security_invoker = true) AS
SELECT t.id,
       t.output_model_name
           || CASE WHEN t.output_model_version_id IS NOT NULL
                   THEN '==' || t.output_model_version ELSE '' END AS model,
       t.state,
       '[' || repeat('#', b.filled) || repeat('.', 20 - b.filled) || '] '
           || lpad(floor(t.progress * 100)::int || '%', 4) AS progress,
       lpad(CASE WHEN d.seconds < 60 THEN to_char(d.seconds, 'FM990.0') || ' s'
                 ELSE to_char(make_interval(secs => floor(d.seconds)), 'FMHH24:MI:SS') END,
            8) AS duration,
       t.stage,
       CASE WHEN length(t.error) > 60 THEN left(t.error, 57) || '...' ELSE t.error END AS error,
       t.owner,
       date_trunc('second', t.time_created) AS created
FROM training.trainings t
CROSS JOIN LATERAL (SELECT least(20, greatest(0, floor(t.progress * 20)::int)) AS filled) b
CROSS JOIN LATERAL (
    -- While processing, count the time since the start, so the column moves every second.
    SELECT CASE WHEN t.state = 'processing' AND t.time_started IS NOT NULL
                THEN greatest(t.duration, extract(epoch FROM now() - t.time_started)::float8)
                ELSE t.duration END AS seconds) d
ORDER BY t.time_created DESC, t.id;

COMMENT ON VIEW training.status IS
    'One line per training of the current role, newest first, for psql: SELECT * FROM training.status \watch 1';
COMMENT ON COLUMN training.status.id IS 'Training id';
COMMENT ON COLUMN training.status.model IS 'Output model name; name==N while the version N it wrote exists';
COMMENT ON COLUMN training.status.state IS 'waiting, processing, completed or failed';
COMMENT ON COLUMN training.status.progress IS 'Progress bar: 20 cells and a percentage';
COMMENT ON COLUMN training.status.duration IS 'Time spent training: 2.8 s, or H:MM:SS from a minute on (running total while processing)';
COMMENT ON COLUMN training.status.stage IS 'What the worker is doing now';
COMMENT ON COLUMN training.status.error IS 'Error of a failed training (first 60 characters; see get_training)';
COMMENT ON COLUMN training.status.owner IS 'Role that created the training';
COMMENT ON COLUMN training.status.created IS 'When the training was created (to the second)';

-- Privileges. USAGE on the schema is the gate: without it a role can call no function and
-- reach no table of the schema (42501). grant_access() opens it and grants the tables; the
-- functions keep their default EXECUTE for PUBLIC (internal ones whose authors revoked it,
-- such as the worker's claim, stay closed).

-- grant_access(role): everything a role needs to use the API through functions and tables.
-- SECURITY DEFINER so that members of training_admin (not only superusers) can call it;
-- search_path is pinned so a caller's objects can never be picked up.
CREATE FUNCTION training.grant_access(role regrole) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null'
            USING ERRCODE = '22023', HINT = 'Pass an existing role, e.g. grant_access(''alice'').';
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA training TO %s', role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON training.datasets, training.classes, '
                   'training.images, training.trainings TO %s', role);
    -- Models and versions are written by the worker; owners read and delete them.
    EXECUTE format('GRANT SELECT, DELETE ON training.models, training.model_versions TO %s', role);
    EXECUTE format('GRANT SELECT ON training.status TO %s', role);
END
$$;

-- revoke_access(role): the inverse. The role's rows stay (an admin or the role's owner can
-- still remove them); the role can no longer reach the schema.
CREATE FUNCTION training.revoke_access(role regrole) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null'
            USING ERRCODE = '22023', HINT = 'Pass an existing role, e.g. revoke_access(''alice'').';
    END IF;
    IF role::oid = (SELECT relowner FROM pg_class WHERE oid = 'training.trainings'::regclass) THEN
        RAISE EXCEPTION 'cannot revoke access from the owner of the training extension''s objects'
            USING ERRCODE = '22023', HINT = 'Pass the role of a user of the API.';
    END IF;
    EXECUTE format('REVOKE ALL ON training.datasets, training.classes, training.images, '
                   'training.trainings, training.models, training.model_versions, training.status '
                   'FROM %s', role);
    EXECUTE format('REVOKE USAGE ON SCHEMA training FROM %s', role);
END
$$;

COMMENT ON FUNCTION training.grant_access(regrole) IS
    'Give a role everything it needs to use the training API (schema, tables, status view); '
    'row-level security still limits it to its own rows. Callable by superusers and training_admin';
COMMENT ON FUNCTION training.revoke_access(regrole) IS
    'Take back what grant_access gave a role; its rows are kept';

REVOKE EXECUTE ON FUNCTION training.grant_access(regrole), training.revoke_access(regrole) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION training.grant_access(regrole), training.revoke_access(regrole) TO training_admin;
SELECT training.grant_access('training_admin');
-- Members of training_admin may also read the embedding store (tenants use dataset_features()).
GRANT SELECT ON training.image_features TO training_admin;
