/*
 * launcher.c: shared state, the launcher, and the hooks that wake it or stop a worker.
 *
 * The launcher connects to no database. It keeps a table of databases in shared memory; a database
 * is "pending" when a worker should look there for waiting trainings. Commits that insert a
 * training mark their database pending and set the launcher's latch; the launcher also marks
 * every database pending when it starts (crash recovery) and the databases known to have the
 * extension every training.naptime (the fallback). For a pending database it starts one dynamic
 * worker, which claims trainings there until none is left and exits: nothing stays connected to
 * a database while idle, so DROP DATABASE is never blocked by an idle launcher.
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "utils/lsyscache.h"
#include "catalog/namespace.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "worker.h"

TrShared   *tr_shared = NULL;
bool		tr_preloaded = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/* Launcher-local: the handles of the workers it registered, by slot. */
static BackgroundWorkerHandle *handles[TR_MAX_WORKERS];

/* Backend-local: what the current transaction asks for at commit. */
static bool xact_callback_registered = false;
static bool wake_at_commit = false;
static List *cancel_at_commit = NIL;	/* pg_uuid_t * in TopTransactionContext */

PG_FUNCTION_INFO_V1(training_wake_trigger);
PG_FUNCTION_INFO_V1(training_cancel_trigger);
PG_FUNCTION_INFO_V1(training_notify_trigger);

static void
tr_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(TrShared)));
}

static void
tr_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	tr_shared = ShmemInitStruct("training worker state", sizeof(TrShared), &found);
	if (!found)
	{
		memset(tr_shared, 0, sizeof(TrShared));
		SpinLockInit(&tr_shared->mutex);
		tr_shared->rescan = true;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Find (or add) the entry of a database. Caller holds the spinlock. */
TrDbEntry *
tr_db_entry(Oid dboid, bool create)
{
	TrDbEntry  *free_entry = NULL;

	for (int i = 0; i < TR_MAX_DBS; i++)
	{
		TrDbEntry  *e = &tr_shared->dbs[i];

		if (e->dboid == dboid)
			return e;
		if (e->dboid == InvalidOid && free_entry == NULL)
			free_entry = e;
	}
	if (!create || free_entry == NULL)
		return NULL;
	memset(free_entry, 0, sizeof(TrDbEntry));
	free_entry->dboid = dboid;
	free_entry->has_extension = true;	/* assume so until a worker finds out */
	return free_entry;
}

/* Ask the launcher to look for waiting trainings in a database. */
void
tr_wake_database(Oid dboid)
{
	Latch	   *latch;
	TrDbEntry  *e;

	if (tr_shared == NULL)
		return;
	Latch	   *worker_latch = NULL;

	SpinLockAcquire(&tr_shared->mutex);
	e = tr_db_entry(dboid, true);
	if (e)
	{
		e->pending = true;
		e->has_extension = true;
		/* A worker idle in this database is handed the work directly, without the launcher. */
		for (int i = 0; i < TR_MAX_WORKERS && tr_enabled; i++)
		{
			TrWorkerSlot *s = &tr_shared->slots[i];

			if (s->phase == TR_SLOT_STARTING && s->dboid == dboid)
				break;			/* one is already on its way */
			if (s->phase == TR_SLOT_IDLE && s->dboid == dboid && !s->quit && s->latch &&
				!e->dropping)
			{
				s->phase = TR_SLOT_STARTING;
				worker_latch = s->latch;
				break;
			}
		}
	}
	else
		tr_shared->rescan = true;
	latch = worker_latch ? NULL : tr_shared->launcher_latch;
	SpinLockRelease(&tr_shared->mutex);
	if (worker_latch)
		SetLatch(worker_latch);
	if (latch)
		SetLatch(latch);
}

/* Is this training being run by a live worker of this database? */
bool
tr_training_is_live(int pid, const pg_uuid_t *id)
{
	bool		live = false;

	SpinLockAcquire(&tr_shared->mutex);
	for (int i = 0; i < TR_MAX_WORKERS; i++)
	{
		TrWorkerSlot *s = &tr_shared->slots[i];

		if (s->phase == TR_SLOT_RUNNING && s->has_training && s->pid == pid &&
			s->dboid == MyDatabaseId && !s->exited &&
			memcmp(&s->training, id, sizeof(pg_uuid_t)) == 0)
		{
			live = true;
			break;
		}
	}
	SpinLockRelease(&tr_shared->mutex);
	return live;
}

/* At commit: wake the launcher for inserted trainings; tell workers of deleted ones to stop. */
static void
tr_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	(void) arg;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (wake_at_commit)
				tr_wake_database(MyDatabaseId);
			if (cancel_at_commit != NIL && tr_shared != NULL)
			{
				foreach(lc, cancel_at_commit)
				{
					pg_uuid_t  *id = lfirst(lc);
					Latch	   *latch = NULL;

					SpinLockAcquire(&tr_shared->mutex);
					for (int i = 0; i < TR_MAX_WORKERS; i++)
					{
						TrWorkerSlot *s = &tr_shared->slots[i];

						if (s->phase == TR_SLOT_RUNNING && s->has_training &&
							s->dboid == MyDatabaseId &&
							memcmp(&s->training, id, sizeof(pg_uuid_t)) == 0)
						{
							s->cancel = true;
							latch = s->latch;
						}
					}
					SpinLockRelease(&tr_shared->mutex);
					if (latch)
						SetLatch(latch);
				}
			}
			wake_at_commit = false;
			cancel_at_commit = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* A prepared transaction is found by the naptime poll once committed. */
			wake_at_commit = false;
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

/*
 * AFTER INSERT statement trigger on training.trainings: wake the launcher when the transaction
 * commits, or warn that nothing will process the training.
 */
Datum
training_wake_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("training_wake_trigger() must be called as a trigger")));
	if (!tr_preloaded || tr_shared == NULL)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the training background worker is not running, so nothing will process this training"),
				 errhint("Add 'training' to shared_preload_libraries in postgresql.conf and restart the server.")));
	else
	{
		if (!tr_enabled)
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("training.enabled is off, so the training stays waiting"),
					 errhint("Set training.enabled = on and reload the configuration.")));
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

static void
append_json_text(StringInfo buf, const char *key, Relation rel, HeapTuple tuple, const char *column)
{
	bool		isnull = true;
	Datum		d = tuple ? tuple_column(rel, tuple, column, &isnull) : (Datum) 0;

	appendStringInfo(buf, ", \"%s\": ", key);
	if (isnull)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, TextDatumGetCString(d));
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
	StringInfoData buf;
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
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"id\": ");
	escape_json(&buf, DatumGetCString(DirectFunctionCall1(uuid_out, id)));
	if (newt)
		append_json_text(&buf, "state", rel, newt, "state");
	else
		appendStringInfoString(&buf, ", \"state\": \"deleted\"");
	append_json_text(&buf, "previous_state", rel, oldt, "state");
	appendStringInfoChar(&buf, '}');
	Async_Notify("training_state", buf.data);
	pfree(buf.data);
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

/* Idle workers connected to a database exit now. */
static void
release_idle_workers(Oid dboid)
{
	if (!OidIsValid(dboid))
		return;
	SpinLockAcquire(&tr_shared->mutex);
	for (int i = 0; i < TR_MAX_WORKERS; i++)
	{
		TrWorkerSlot *s = &tr_shared->slots[i];

		if (s->phase == TR_SLOT_IDLE && s->dboid == dboid && s->latch)
		{
			s->quit = true;
			SetLatch(s->latch);
		}
	}
	SpinLockRelease(&tr_shared->mutex);
}

/* After DROP DATABASE: forget the database, or, when the drop failed, look at it again. */
static void
forget_dropping(Oid dboid, bool failed)
{
	TrDbEntry  *e;

	if (!OidIsValid(dboid))
		return;
	SpinLockAcquire(&tr_shared->mutex);
	e = tr_db_entry(dboid, false);
	if (e && failed)
	{
		e->dropping = false;
		e->pending = true;
		e->needs_recovery = true;
	}
	else if (e)
		memset(e, 0, sizeof(TrDbEntry));
	SpinLockRelease(&tr_shared->mutex);
}

/*
 * DROP DATABASE waits (5 s at most) for every backend connected to the database. Stop our workers
 * there first and start none until the command is over; their trainings go with the database.
 */
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
		Oid			relid = RangeVarGetRelid(rv, NoLock, true);

		if (OidIsValid(relid) && get_rel_namespace(relid) == nsp)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("LOCK TABLE on %s is reserved to superusers", rv->relname),
					 errdetail("A table lock would stop the training workers and other roles' calls."),
					 errhint("Lock rows instead (SELECT ... FOR UPDATE); the workers skip locked rows.")));
	}
}

static void
tr_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params,
				   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
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

		if (IsA(n, CreatedbStmt))
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
		if (other)
			release_idle_workers(get_database_oid(other, true));
	}
	if (tr_shared != NULL && IsA(pstmt->utilityStmt, DropdbStmt))
	{
		DropdbStmt *stmt = (DropdbStmt *) pstmt->utilityStmt;

		dboid = get_database_oid(stmt->dbname, true);
		if (OidIsValid(dboid))
		{
			TrDbEntry  *e;

			SpinLockAcquire(&tr_shared->mutex);
			e = tr_db_entry(dboid, true);
			if (e)
				e->dropping = true;
			for (int i = 0; i < TR_MAX_WORKERS; i++)
			{
				TrWorkerSlot *s = &tr_shared->slots[i];

				if (s->phase != TR_SLOT_FREE && s->dboid == dboid)
				{
					s->dropping = true;
					if (s->pid != 0 && !s->exited)
						kill(s->pid, SIGTERM);
				}
			}
			SpinLockRelease(&tr_shared->mutex);
		}
	}
	PG_TRY();
	{
		if (prev_process_utility_hook)
			prev_process_utility_hook(pstmt, queryString, readOnlyTree, context, params,
									  queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		/* The drop failed: a worker looks for what was interrupted there. */
		forget_dropping(dboid, true);
		PG_RE_THROW();
	}
	PG_END_TRY();
	forget_dropping(dboid, false);
}

/* Register the launcher and the hooks; only when loaded by shared_preload_libraries. */
void
tr_launcher_init(void)
{
	BackgroundWorker bgw;

	if (!process_shared_preload_libraries_in_progress)
		return;
	tr_preloaded = true;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = tr_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = tr_shmem_startup;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = tr_process_utility;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 1;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "training");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "tr_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "training launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "training launcher");
	RegisterBackgroundWorker(&bgw);
}

/* ---------- the launcher process ---------- */

static void
launcher_detach(int code, Datum arg)
{
	(void) code;
	(void) arg;
	SpinLockAcquire(&tr_shared->mutex);
	if (tr_shared->launcher_pid == MyProcPid)
	{
		tr_shared->launcher_pid = 0;
		tr_shared->launcher_latch = NULL;
	}
	SpinLockRelease(&tr_shared->mutex);
}

/*
 * Read pg_database: forget dropped databases, mark the ones to probe pending. all: every
 * connectable database (at start); otherwise the ones known or assumed to have the extension.
 */
static void
scan_databases(bool all)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Oid		   *oids;
	int			n = 0,
				cap = 64;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	oids = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * cap);
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		/* Templates are skipped: a connection to one would block CREATE DATABASE. */
		if (!db->datallowconn || db->datistemplate || db->datconnlimit == -2)
			continue;
		if (n == cap)
		{
			cap *= 2;
			oids = repalloc(oids, sizeof(Oid) * cap);
		}
		oids[n++] = db->oid;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	SpinLockAcquire(&tr_shared->mutex);
	for (int i = 0; i < TR_MAX_DBS; i++)
	{
		TrDbEntry  *e = &tr_shared->dbs[i];
		bool		exists = false;

		if (e->dboid == InvalidOid || e->dropping)
			continue;
		for (int j = 0; j < n && !exists; j++)
			exists = (oids[j] == e->dboid);
		if (!exists)
			memset(e, 0, sizeof(TrDbEntry));
	}
	for (int j = 0; j < n; j++)
	{
		TrDbEntry  *e = tr_db_entry(oids[j], false);

		if (e == NULL)
		{
			e = tr_db_entry(oids[j], true);
			if (e == NULL)
				break;
			e->pending = true;	/* never probed */
		}
		else if (all || e->has_extension)
			e->pending = true;
	}
	SpinLockRelease(&tr_shared->mutex);
	pfree(oids);
}

/* Free the slots of workers that have exited; a worker that left a training behind wakes its db. */
static void
reap_workers(void)
{
	for (int i = 0; i < TR_MAX_WORKERS; i++)
	{
		TrWorkerSlot *s = &tr_shared->slots[i];
		bool		stopped = false;
		pid_t		pid;

		if (handles[i] != NULL)
		{
			if (GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED)
			{
				pfree(handles[i]);
				handles[i] = NULL;
				stopped = true;
			}
		}
		else
		{
			/* A slot of an earlier launcher: judge by the process itself. */
			SpinLockAcquire(&tr_shared->mutex);
			if (s->phase != TR_SLOT_FREE)
			{
				if (s->exited)
					stopped = true;
				else if (s->pid != 0 && BackendPidGetProc(s->pid) == NULL)
					stopped = true;
				else if (s->pid == 0 &&
						 TimestampDifferenceExceeds(s->registered, GetCurrentTimestamp(), 60000))
					stopped = true;
			}
			SpinLockRelease(&tr_shared->mutex);
		}
		if (stopped)
		{
			SpinLockAcquire(&tr_shared->mutex);
			if (s->phase != TR_SLOT_FREE)
			{
				if (!s->clean_exit && s->has_training)
				{
					TrDbEntry  *e = tr_db_entry(s->dboid, false);

					if (e)
					{
						e->pending = true;
						e->needs_recovery = true;
					}
				}
				memset(s, 0, sizeof(TrWorkerSlot));
			}
			SpinLockRelease(&tr_shared->mutex);
		}
	}
}

/*
 * Start a worker for each pending database, within training.max_workers. Returns false when
 * no background worker slot was free (max_worker_processes): the caller retries soon.
 */
static bool
start_workers(void)
{
	static int	next_db = 0;
	static TimestampTz last_warning = 0;
	int			running = 0;

	for (int i = 0; i < TR_MAX_WORKERS; i++)
		if (tr_shared->slots[i].phase != TR_SLOT_FREE)
			running++;

	for (int k = 0; k < TR_MAX_DBS; k++)
	{
		int			d = (next_db + k) % TR_MAX_DBS;
		TrDbEntry  *e = &tr_shared->dbs[d];
		Oid			dboid;
		int			slotno = -1;
		bool		starting = false;
		BackgroundWorker bgw;
		BackgroundWorkerHandle *handle;

		SpinLockAcquire(&tr_shared->mutex);
		dboid = e->dboid;
		if (dboid == InvalidOid || !e->pending || e->dropping)
		{
			SpinLockRelease(&tr_shared->mutex);
			continue;
		}
		if (running >= tr_max_workers)
		{
			/* All workers busy: one idle in another database gives its place up. */
			for (int i = 0; i < TR_MAX_WORKERS; i++)
			{
				TrWorkerSlot *s = &tr_shared->slots[i];

				if (s->phase == TR_SLOT_IDLE && s->dboid != dboid && !s->quit && s->latch)
				{
					s->quit = true;
					SetLatch(s->latch);
					break;
				}
			}
		}
		/* One worker looks for trainings in a database at a time. */
		for (int i = 0; i < TR_MAX_WORKERS; i++)
		{
			TrWorkerSlot *s = &tr_shared->slots[i];

			if (s->phase == TR_SLOT_STARTING && s->dboid == dboid)
				starting = true;
			if (s->phase == TR_SLOT_FREE && slotno < 0)
				slotno = i;
		}
		if (!starting)
		{
			/* A worker idle in this database takes it at once: no process start. */
			for (int i = 0; i < TR_MAX_WORKERS; i++)
			{
				TrWorkerSlot *s = &tr_shared->slots[i];

				if (s->phase == TR_SLOT_IDLE && s->dboid == dboid && !s->quit && s->latch)
				{
					s->phase = TR_SLOT_STARTING;
					SetLatch(s->latch);
					starting = true;
					break;
				}
			}
		}
		if (starting || slotno < 0 || running >= tr_max_workers)
		{
			SpinLockRelease(&tr_shared->mutex);
			continue;
		}
		memset(&tr_shared->slots[slotno], 0, sizeof(TrWorkerSlot));
		tr_shared->slots[slotno].phase = TR_SLOT_STARTING;
		tr_shared->slots[slotno].dboid = dboid;
		tr_shared->slots[slotno].registered = GetCurrentTimestamp();
		SpinLockRelease(&tr_shared->mutex);

		memset(&bgw, 0, sizeof(bgw));
		bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
		bgw.bgw_restart_time = BGW_NEVER_RESTART;
		snprintf(bgw.bgw_library_name, BGW_MAXLEN, "training");
		snprintf(bgw.bgw_function_name, BGW_MAXLEN, "tr_worker_main");
		snprintf(bgw.bgw_name, BGW_MAXLEN, "training worker for database %u", dboid);
		snprintf(bgw.bgw_type, BGW_MAXLEN, "training worker");
		bgw.bgw_main_arg = Int32GetDatum(slotno);
		memcpy(bgw.bgw_extra, &dboid, sizeof(Oid));
		bgw.bgw_notify_pid = MyProcPid;

		if (!RegisterDynamicBackgroundWorker(&bgw, &handle))
		{
			SpinLockAcquire(&tr_shared->mutex);
			memset(&tr_shared->slots[slotno], 0, sizeof(TrWorkerSlot));
			SpinLockRelease(&tr_shared->mutex);
			if (last_warning == 0 ||
				TimestampDifferenceExceeds(last_warning, GetCurrentTimestamp(), 60000))
			{
				ereport(WARNING,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("training: no background worker slot is free; waiting trainings stay waiting"),
						 errhint("Raise max_worker_processes (now %d) or lower training.max_workers (now %d); "
								 "the launcher retries every second.",
								 max_worker_processes, tr_max_workers)));
				last_warning = GetCurrentTimestamp();
			}
			return false;
		}
		last_warning = 0;
		handles[slotno] = handle;
		running++;
		next_db = (d + 1) % TR_MAX_DBS;
	}
	return true;
}

/* Main of the launcher: wait on the latch, start workers for pending databases. */
void
tr_launcher_main(Datum arg)
{
	TimestampTz next_poll;
	bool		first = true;

	(void) arg;
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);	/* as the workers */
	pgstat_report_appname("training launcher");

	SpinLockAcquire(&tr_shared->mutex);
	tr_shared->launcher_pid = MyProcPid;
	tr_shared->launcher_latch = MyLatch;
	SpinLockRelease(&tr_shared->mutex);
	on_shmem_exit(launcher_detach, (Datum) 0);
	memset(handles, 0, sizeof(handles));

	ereport(LOG, (errmsg("training launcher started")));
	next_poll = GetCurrentTimestamp();

	for (;;)
	{
		TimestampTz now;
		long		timeout;
		bool		rescan;
		bool		ok = true;
		int			running = 0;
		char		activity[128];

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		reap_workers();

		now = GetCurrentTimestamp();
		SpinLockAcquire(&tr_shared->mutex);
		rescan = tr_shared->rescan;
		tr_shared->rescan = false;
		SpinLockRelease(&tr_shared->mutex);
		if (first || rescan || now >= next_poll)
		{
			/* At start every database is probed: trainings may have been left processing. */
			scan_databases(first || rescan);
			first = false;
			next_poll = TimestampTzPlusMilliseconds(now, tr_naptime * 1000L);
		}

		if (tr_enabled)
			ok = start_workers();

		for (int i = 0; i < TR_MAX_WORKERS; i++)
			if (tr_shared->slots[i].phase != TR_SLOT_FREE)
				running++;
		snprintf(activity, sizeof(activity), "training launcher: %d worker%s running%s",
				 running, running == 1 ? "" : "s", tr_enabled ? "" : " (training.enabled is off)");
		pgstat_report_activity(STATE_IDLE, activity);

		timeout = (long) ((next_poll - GetCurrentTimestamp()) / 1000);
		if (!ok && timeout > 1000)
			timeout = 1000;
		if (timeout < 1)
			timeout = 1;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
