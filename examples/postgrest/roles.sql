-- Roles for PostgREST in front of the `training` extension (run as a superuser, once per
-- cluster; see postgrest.conf next to this file).
--
--   training_authenticator  LOGIN NOINHERIT: what PostgREST connects as; no rights of its own
--   training_anon           requests without a JWT; no access at all (PostgREST answers 401)
--   alice, bob, ...         one role per user, named by the JWT's "role" claim; each owns
--                           its rows and sees only those (row-level security)
--   training_admin          created by the extension; members see every user's rows

CREATE ROLE training_authenticator LOGIN NOINHERIT PASSWORD 'change-me';
CREATE ROLE training_anon NOLOGIN;
GRANT training_anon TO training_authenticator;

-- One role per API user; repeat for each.
CREATE ROLE alice NOLOGIN;
SELECT training.grant_access('alice');
GRANT alice TO training_authenticator;

CREATE ROLE bob NOLOGIN;
SELECT training.grant_access('bob');
GRANT bob TO training_authenticator;

-- An operator who sees everyone's trainings (also through PostgREST with a JWT for "ops").
CREATE ROLE ops NOLOGIN;
GRANT training_admin TO ops;
GRANT ops TO training_authenticator;

-- Taking a user's access away keeps their rows:
--   SELECT training.revoke_access('bob');
-- Tell a running PostgREST to reload its schema cache:
--   NOTIFY pgrst, 'reload schema';
