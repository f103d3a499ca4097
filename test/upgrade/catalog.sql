-- A canonical description of the training extension's catalog, for comparing an upgraded
-- database with a fresh install (test/upgrade/run.sh diffs two outputs of this script).
-- Nothing here depends on OIDs, creation order or attnum gaps left by dropped columns:
-- objects are named and sorted, ACLs are sorted (NULL printed as the default ACL), and columns
-- are numbered by their position among the live columns.
--   psql -X -q -d DB -f test/upgrade/catalog.sql
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
\pset fieldsep ' | '
\pset null '<null>'
\pset pager off
SET search_path = pg_catalog;     -- object names print schema-qualified, the same in every database

-- The extension.
SELECT 'extension', e.extname, e.extversion, e.extrelocatable, e.extnamespace::regnamespace,
       e.extowner::regrole, obj_description(e.oid, 'pg_extension')
  FROM pg_extension e WHERE e.extname = 'training';

-- Configuration tables whose rows pg_dump dumps (extconfig/extcondition), by table name.
SELECT 'extconfig', u.tbl::regclass::text, u.cond
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(tbl, cond)
 WHERE e.extname = 'training'
 ORDER BY 2, 3;

-- The schema: owner, ACL, comment.
SELECT 'schema', n.nspname, n.nspowner::regrole,
       (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(coalesce(n.nspacl, acldefault('n', n.nspowner))) a),
       obj_description(n.oid, 'pg_namespace')
  FROM pg_namespace n WHERE n.nspname = 'training';

-- The admin role (cluster-wide, created by the install script when missing).
SELECT 'role training_admin',
       coalesce((SELECT format('exists login=%s super=%s inherit=%s createrole=%s createdb=%s bypassrls=%s comment=%s',
                               r.rolcanlogin, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,
                               r.rolbypassrls, shobj_description(r.oid, 'pg_authid'))
                   FROM pg_roles r WHERE r.rolname = 'training_admin'), 'absent');

-- Extension membership (deptype 'e'): every object the extension owns.
SELECT 'member', pg_describe_object(d.classid, d.objid, d.objsubid)
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'training')
 ORDER BY 2;

-- Initial privileges recorded by the extension's scripts (pg_dump dumps only changes to them).
SELECT 'init_privs', pg_describe_object(i.classoid, i.objoid, i.objsubid),
       (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(i.initprivs) a)
  FROM pg_init_privs i
 WHERE i.privtype = 'e'
 ORDER BY 2, 3;

-- Tables, views, sequences, composite types (relations of the schema other than indexes).
SELECT 'relation', c.relname, c.relkind, c.relpersistence, c.relowner::regrole,
       (SELECT array_agg(a::text ORDER BY a::text)
          FROM unnest(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a),
       c.reloptions, c.relrowsecurity, c.relforcerowsecurity, c.relreplident, c.relispartition,
       c.reloftype::regtype, obj_description(c.oid, 'pg_class')
  FROM pg_class c
 WHERE c.relnamespace = 'training'::regnamespace AND c.relkind NOT IN ('i', 'I', 't')
 ORDER BY 2;

-- Columns, numbered by position among the non-dropped columns.
SELECT 'column', c.relname,
       row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) AS position,
       a.attname, format_type(a.atttypid, a.atttypmod), a.atttypmod, a.attnotnull,
       pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation = 0 THEN NULL ELSE a.attcollation::regcollation::text END,
       a.attstorage, a.attstattarget,
       -- (this server shows a per-table pg_attver=N entry in attoptions: not a definition)
       (SELECT array_agg(o ORDER BY o) FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\_attver=%'),
       (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(a.attacl) x),
       col_description(c.oid, a.attnum)
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE c.relnamespace = 'training'::regnamespace AND c.relkind NOT IN ('i', 'I', 't', 'S')
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY c.relname, position;

-- Sequences.
SELECT 'sequence', s.seqrelid::regclass::text, s.seqtypid::regtype, s.seqstart, s.seqincrement,
       s.seqmax, s.seqmin, s.seqcache, s.seqcycle
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
 WHERE c.relnamespace = 'training'::regnamespace
 ORDER BY 2;

-- Constraints (of tables and domains of the schema).
SELECT 'constraint', coalesce(con.conrelid::regclass::text, con.contypid::regtype::text), con.conname,
       con.contype, pg_get_constraintdef(con.oid), con.convalidated, con.connoinherit,
       obj_description(con.oid, 'pg_constraint')
  FROM pg_constraint con
 WHERE con.connamespace = 'training'::regnamespace
 ORDER BY 2, 3;

-- Indexes.
SELECT 'index', ic.relname, pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary,
       i.indisvalid, i.indisclustered, i.indisreplident, obj_description(ic.oid, 'pg_class')
  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
 WHERE ic.relnamespace = 'training'::regnamespace
 ORDER BY 2;

-- Types of the schema (row types of the relations included).
SELECT 'type', t.typname, t.typtype, t.typcategory, t.typowner::regrole,
       (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(coalesce(t.typacl, acldefault('T', t.typowner))) a),
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
       CASE WHEN t.typtype = 'd' THEN pg_get_expr(t.typdefaultbin, 0) END,
       (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid),
       obj_description(t.oid, 'pg_type')
  FROM pg_type t
 WHERE t.typnamespace = 'training'::regnamespace
 ORDER BY 2;

-- Functions: kind, owner, ACL (sorted; NULL printed as the default), SECURITY DEFINER, SET
-- options, comment; then the full definition (language, volatility, strictness, parallel
-- safety, cost, body), one output line per line, each named by its function.
SELECT 'function', p.oid::regprocedure::text, p.prokind, p.proowner::regrole,
       (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) a),
       p.prosecdef, p.proconfig, obj_description(p.oid, 'pg_proc')
  FROM pg_proc p
 WHERE p.pronamespace = 'training'::regnamespace
 ORDER BY 2;
SELECT 'function def', p.oid::regprocedure::text, l.line
  FROM pg_proc p,
       regexp_split_to_table(
           CASE WHEN p.prokind = 'a'
                THEN (SELECT format('aggregate sfunc=%s stype=%s finalfunc=%s combinefunc=%s initcond=%s',
                                    ag.aggtransfn::regproc, ag.aggtranstype::regtype, ag.aggfinalfn::regproc,
                                    ag.aggcombinefn::regproc, ag.agginitval)
                        FROM pg_aggregate ag WHERE ag.aggfnoid = p.oid)
                ELSE pg_get_functiondef(p.oid) END, E'\n') WITH ORDINALITY AS l(line, n)
 WHERE p.pronamespace = 'training'::regnamespace
 ORDER BY 2, l.n;

-- Triggers (user-defined; the internal foreign-key triggers are covered by the constraints).
SELECT 'trigger', t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled,
       obj_description(t.oid, 'pg_trigger')
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'training'::regnamespace AND NOT t.tgisinternal
 ORDER BY 2, 3;

-- Event triggers calling functions of the schema.
SELECT 'event trigger', et.evtname, et.evtevent, et.evtfoid::regproc, et.evtenabled, et.evttags
  FROM pg_event_trigger et JOIN pg_proc p ON p.oid = et.evtfoid
 WHERE p.pronamespace = 'training'::regnamespace
 ORDER BY 2;

-- Row-level security policies.
SELECT 'policy', pp.tablename, pp.policyname, pp.permissive,
       (SELECT array_agg(r ORDER BY r) FROM unnest(pp.roles) r), pp.cmd, pp.qual, pp.with_check,
       obj_description(pol.oid, 'pg_policy')
  FROM pg_policies pp
  JOIN pg_policy pol ON pol.polname = pp.policyname
                    AND pol.polrelid = format('%I.%I', pp.schemaname, pp.tablename)::regclass
 WHERE pp.schemaname = 'training'
 ORDER BY 2, 3;

-- Views, one output line per line of the definition.
SELECT 'view', c.relname, l.line
  FROM pg_class c, regexp_split_to_table(pg_get_viewdef(c.oid), E'\n') WITH ORDINALITY AS l(line, n)
 WHERE c.relnamespace = 'training'::regnamespace AND c.relkind IN ('v', 'm')
 ORDER BY 2, l.n;

-- Rules other than the views' own.
SELECT 'rule', r.tablename, r.rulename, r.definition
  FROM pg_rules r
 WHERE r.schemaname = 'training'
 ORDER BY 2, 3;

-- Extended statistics.
SELECT 'statistics', s.stxname, pg_get_statisticsobjdef(s.oid)
  FROM pg_statistic_ext s
 WHERE s.stxnamespace = 'training'::regnamespace
 ORDER BY 2;

-- Default privileges for objects created in the schema.
SELECT 'default acl', d.defaclrole::regrole, d.defaclobjtype,
       (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(d.defaclacl) a)
  FROM pg_default_acl d
 WHERE d.defaclnamespace = 'training'::regnamespace
 ORDER BY 2, 3;
