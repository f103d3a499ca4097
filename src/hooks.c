/*
 * hooks.c: what the extension does in client backends.
 *
 * The trigger functions of training.trainings (stop the worker of a deleted training at commit,
 * NOTIFY training_state), the wake-up of the launcher for inserted trainings (asked by the
 * trainings_before trigger), the transaction callback that does both at commit, and the
 * ProcessUtility hook: LOCK TABLE on the extension's tables is reserved to superusers, and commands that need a database without connections (DROP, ALTER, RENAME, CREATE
 * DATABASE ... TEMPLATE) first make the workers there leave. The shared state they touch is in
 * src/shmem.c.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "rewrite/rewriteHandler.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#include "compat.h"
#include "hooks.h"
#include "json.h"
#include "settings.h"
#include "shmem.h"

static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/* Backend-local: what the current transaction asks for at commit. */
static bool xact_callback_registered = false;
static bool wake_at_commit = false;
static bool trainings_at_commit = false;	/* a training was written, not only images */
static bool notify_at_commit = false;	/* NOTIFY training_waiting before the commit */
static List *cancel_at_commit = NIL;	/* pg_uuid_t * in TopTransactionContext */

PG_FUNCTION_INFO_V1(training_wake_trigger);
PG_FUNCTION_INFO_V1(training_cancel_trigger);
PG_FUNCTION_INFO_V1(training_notify_trigger);
PG_FUNCTION_INFO_V1(training_features_wake_trigger);

/* At commit: wake the launcher for inserted trainings; tell workers of deleted ones to stop. */
static void
tr_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	(void) arg;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			/*
			 * Before PreCommit_Notify, so it goes out with this commit. Not from the trigger: a
			 * transaction that sent a NOTIFY cannot be prepared (a prepared one is found by polls).
			 */
			if (notify_at_commit)
				Async_Notify("training_waiting", "");
			notify_at_commit = false;
			break;
		case XACT_EVENT_COMMIT:
			if (wake_at_commit)
				tr_wake_database(MyDatabaseId, trainings_at_commit);
			foreach(lc, cancel_at_commit)
				tr_cancel_training(MyDatabaseId, (pg_uuid_t *) lfirst(lc));
			wake_at_commit = trainings_at_commit = notify_at_commit = false;
			cancel_at_commit = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* A prepared transaction is found by the naptime poll once committed. */
			wake_at_commit = trainings_at_commit = notify_at_commit = false;
			cancel_at_commit = NIL;
			break;
		default:
			break;
	}
}

static void
register_xact_callback(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(tr_xact_callback, NULL);
		xact_callback_registered = true;
	}
}

void
tr_wake_at_commit(void)
{
	static TimestampTz warned_statement = 0;
	bool		running = tr_preloaded && tr_shared != NULL;

	/* Once per statement (a multi-row INSERT or a restore's COPY warns once). */
	if ((!running || !tr_enabled) && warned_statement != GetCurrentStatementStartTimestamp())
	{
		warned_statement = GetCurrentStatementStartTimestamp();
		if (!running)
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the training background worker is not running, so nothing will process this training"),
					 errhint("Add 'training' to shared_preload_libraries in postgresql.conf and restart the server, "
							 "or run training-worker.")));
		else
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("training.enabled is off, so the training stays waiting"),
					 errhint("Set training.enabled = on and reload the configuration.")));
	}
	if (running)
	{
		register_xact_callback();
		wake_at_commit = trainings_at_commit = true;
	}
	/*
	 * No in-server worker will take it: training-worker processes (LISTEN training_waiting) do,
	 * woken at commit. Only then: a NOTIFY makes committing transactions take turns.
	 */
	if ((!running || tr_max_workers == 0) && !IsBinaryUpgrade)
	{
		register_xact_callback();
		notify_at_commit = true;
	}
}

/* The AFTER INSERT statement trigger of 0.3.0 catalogs (0.4.0 wakes from trainings_before). */
Datum
training_wake_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("training_wake_trigger() must be called as a trigger")));
	tr_wake_at_commit();
	return PointerGetDatum(NULL);
}

/*
 * training._images_features_wake(): new or changed images get their features from a worker
 * soon after the commit (nothing is said when no worker runs: a training measures them).
 */
Datum
training_features_wake_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("training_features_wake_trigger() must be called as a trigger")));
	if (tr_preloaded && tr_shared != NULL && tr_enabled)
	{
		register_xact_callback();
		wake_at_commit = true;
	}
	return PointerGetDatum(NULL);
}

/* The value of a column of a trigger tuple, by name; NULL when absent or null. */
static Datum
tuple_column(Relation rel, HeapTuple tuple, const char *name, bool *isnull)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return heap_getattr(tuple, i + 1, desc, isnull);
	}
	*isnull = true;
	return (Datum) 0;
}

/* key: the text column of tuple, or null (no tuple, or a null column). */
static void
put_column(JsonBuilder *b, const char *key, Relation rel, HeapTuple tuple, const char *column)
{
	bool		isnull = true;
	Datum		d = tuple ? tuple_column(rel, tuple, column, &isnull) : (Datum) 0;

	jb_key(b, key);
	jb_text(b, isnull ? NULL : DatumGetTextPP(d));
}

/*
 * AFTER INSERT, UPDATE OF state or DELETE row trigger: NOTIFY training_state with
 * {"id": "<uuid>", "state": "<new state or deleted>", "previous_state": "<old state>" | null}.
 */
Datum
training_notify_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	HeapTuple	newt = NULL,
				oldt = NULL;
	JsonBuilder b;
	char	   *payload;
	bool		isnull;
	Datum		id;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("training_notify_trigger() must be called as a row trigger")));
	rel = td->tg_relation;
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		newt = td->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		oldt = td->tg_trigtuple;
		newt = td->tg_newtuple;
	}
	else
		oldt = td->tg_trigtuple;

	id = tuple_column(rel, newt ? newt : oldt, "id", &isnull);
	if (isnull)
		return PointerGetDatum(NULL);
	jb_init(&b);
	jb_begin_object(&b);
	jb_key(&b, "id");
	jb_uuid(&b, id, NULL);
	if (newt)
		put_column(&b, "state", rel, newt, "state");
	else
	{
		jb_key(&b, "state");
		jb_cstring(&b, "deleted");
	}
	put_column(&b, "previous_state", rel, oldt, "state");
	jb_end_object(&b);
	payload = jb_finish_cstring(&b);
	Async_Notify("training_state", payload);
	pfree(payload);
	return PointerGetDatum(NULL);
}

/*
 * AFTER DELETE row trigger (for rows being processed): at commit, the worker running the training
 * is told to stop at once instead of finding out at its next progress write.
 */
Datum
training_cancel_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	bool		isnull;
	Datum		d;
	int			attnum;
	MemoryContext old;
	pg_uuid_t  *id;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("training_cancel_trigger() must be called as a trigger")));
	if (tr_shared == NULL || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		return PointerGetDatum(NULL);
	attnum = 0;
	for (int i = 0; i < trigdata->tg_relation->rd_att->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(trigdata->tg_relation->rd_att, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), "id") == 0)
			attnum = i + 1;
	}
	if (attnum <= 0)
		return PointerGetDatum(NULL);
	d = heap_getattr(trigdata->tg_trigtuple, attnum, trigdata->tg_relation->rd_att, &isnull);
	if (isnull)
		return PointerGetDatum(NULL);
	register_xact_callback();
	old = MemoryContextSwitchTo(TopTransactionContext);
	id = palloc(sizeof(pg_uuid_t));
	memcpy(id, DatumGetUUIDP(d), sizeof(pg_uuid_t));
	cancel_at_commit = lappend(cancel_at_commit, id);
	MemoryContextSwitchTo(old);
	return PointerGetDatum(NULL);
}

typedef struct ViewWalk
{
	Oid			nsp;			/* the extension's schema */
	List	   *views;			/* the views being expanded (a view's query names itself) */
	List	   *clean;			/* views already found not to reach it */
} ViewWalk;

static bool reaches_training(Oid relid, ViewWalk *w);

/* Whether a view's query reads a relation of the schema (LOCK TABLE on the view locks it). */
static bool
view_walker(Node *node, ViewWalk *w)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		ListCell   *lc;

		foreach(lc, ((Query *) node)->rtable)
		{
			RangeTblEntry *rte = lfirst(lc);

			if (rte->rtekind == RTE_RELATION && !list_member_oid(w->views, rte->relid) &&
				!list_member_oid(w->clean, rte->relid) && reaches_training(rte->relid, w))
				return true;
		}
		return query_tree_walker((Query *) node, view_walker, w, 0);
	}
	return expression_tree_walker(node, view_walker, w);
}

/*
 * The relation is in the schema, or is a view that reads one that is, at any depth. The views
 * stay locked (shared) until the end of the transaction, so that the LOCK TABLE after this check
 * sees the definitions checked, not ones replaced in between.
 */
static bool
reaches_training(Oid relid, ViewWalk *w)
{
	Relation	rel;
	bool		reaches;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	if (get_rel_namespace(relid) == w->nsp)
		return true;
	if (get_rel_relkind(relid) != RELKIND_VIEW)
		return false;
	rel = relation_open(relid, AccessShareLock);
	w->views = lappend_oid(w->views, relid);
	reaches = view_walker((Node *) get_view_query(rel), w);
	w->views = list_delete_last(w->views);
	if (!reaches)
		w->clean = lappend_oid(w->clean, relid);
	relation_close(rel, NoLock);
	return reaches;
}

/*
 * LOCK TABLE on the extension's tables: UPDATE or DELETE privilege (which grant_access gives)
 * would let a tenant take ACCESS EXCLUSIVE and stop every worker's reads; row locks are enough
 * for a client, and the workers skip or outwait those.
 */
static void
refuse_table_locks(LockStmt *stmt)
{
	Oid			nsp = get_namespace_oid("training", true);
	ListCell   *lc;

	if (!OidIsValid(nsp))
		return;
	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst(lc);
		/* Locked (shared) until the end of the transaction: the name stays what was checked. */
		Oid			relid = RangeVarGetRelidExtended(rv, AccessShareLock,
													 RVR_MISSING_OK | (stmt->nowait ? RVR_NOWAIT : 0),
													 NULL, NULL);
		ViewWalk	w = {nsp, NIL, NIL};

		/* A view locks the relations it reads, too. */
		if (OidIsValid(relid) && reaches_training(relid, &w))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("LOCK TABLE on %s is reserved to superusers", rv->relname),
					 errdetail("A table lock would stop the training workers and other roles' calls."),
					 errhint("Lock rows instead (SELECT ... FOR UPDATE); the workers skip locked rows.")));
	}
}

/* The current role owns the database (or is a superuser): it may drop, rename or alter it. */
static bool
may_alter_database(const char *name)
{
	Oid			dboid = get_database_oid(name, true);

	return OidIsValid(dboid) && pg_database_ownercheck(dboid, GetUserId());
}

static void
tr_process_utility(TR_PROCESS_UTILITY_PARAMS)
{
	volatile Oid dboid = InvalidOid;

	/* A tenant's table lock would hold every worker (and other tenants' calls): only superusers. */
	if (IsA(pstmt->utilityStmt, LockStmt) && !superuser())
		refuse_table_locks((LockStmt *) pstmt->utilityStmt);
	if (tr_shared != NULL)
	{
		/* These wait (5 s at most) for a database without connections: idle workers leave. */
		const char *other = NULL;
		Node	   *n = pstmt->utilityStmt;

		if (IsA(n, CreatedbStmt) && have_createdb_privilege())
		{
			ListCell   *lc;

			foreach(lc, ((CreatedbStmt *) n)->options)
			{
				DefElem    *opt = lfirst(lc);

				if (strcmp(opt->defname, "template") == 0 && opt->arg)
					other = defGetString(opt);
			}
		}
		else if (IsA(n, RenameStmt) && ((RenameStmt *) n)->renameType == OBJECT_DATABASE)
			other = ((RenameStmt *) n)->subname;
		else if (IsA(n, AlterDatabaseStmt))
			other = ((AlterDatabaseStmt *) n)->dbname;
		/* Only for a role the command will let through: others get its error, nothing else. */
		if (other && (IsA(n, CreatedbStmt) || may_alter_database(other)))
			tr_release_idle_workers(get_database_oid(other, true));
	}
	if (tr_shared != NULL && IsA(pstmt->utilityStmt, DropdbStmt) &&
		may_alter_database(((DropdbStmt *) pstmt->utilityStmt)->dbname))
	{
		DropdbStmt *stmt = (DropdbStmt *) pstmt->utilityStmt;

		/* DROP DATABASE waits (5 s at most) for its connections: our workers there stop now. */
		dboid = get_database_oid(stmt->dbname, true);
		tr_stop_database(dboid);
	}
	PG_TRY();
	{
		if (prev_process_utility_hook)
			prev_process_utility_hook(TR_PROCESS_UTILITY_ARGS);
		else
			standard_ProcessUtility(TR_PROCESS_UTILITY_ARGS);
	}
	PG_CATCH();
	{
		/* The drop failed: a worker looks for what was interrupted there. */
		tr_forget_dropping(dboid, true);
		PG_RE_THROW();
	}
	PG_END_TRY();
	tr_forget_dropping(dboid, false);
}

/* Install the utility hook (shared_preload_libraries only, as the launcher). */
void
tr_hooks_init(void)
{
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = tr_process_utility;
}
