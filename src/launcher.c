/*
 * launcher.c: the launcher process.
 *
 * The launcher connects to no database. It keeps the table of databases in shared memory
 * (src/shmem.c); a database is "pending" when a worker should look there for waiting trainings.
 * Commits that insert a training mark their database pending and set the launcher's latch
 * (src/hooks.c); the launcher also marks every database pending when it starts (crash recovery)
 * and the databases known to have the extension every training.naptime (the fallback). For a
 * pending database it starts one dynamic worker (src/worker.c), or hands the work to a worker
 * idle there, within training.max_workers; the same for a database whose background extractor
 * asks for a helper (src/extract.c), without making an idle worker elsewhere quit. A worker claims trainings there until none is left
 * and exits: nothing stays connected to a database while idle, so DROP DATABASE is never blocked
 * by an idle launcher. SIGTERM is die(); the postmaster restarts the launcher after 1 s.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "launcher.h"
#include "settings.h"
#include "shmem.h"

/* Launcher-local: the handles of the workers it registered, by slot. */
static BackgroundWorkerHandle *handles[TR_MAX_WORKERS];

/* Register the launcher (_PG_init, shared_preload_libraries only). */
void
tr_launcher_register(void)
{
	BackgroundWorker bgw;

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


static void
launcher_detach(int code, Datum arg)
{
	(void) code;
	(void) arg;
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	if (tr_shared->launcher_pid == MyProcPid)
	{
		tr_shared->launcher_pid = 0;
		tr_shared->launcher_latch = NULL;
	}
	LWLockRelease(tr_shared->lock);
}

static int
oid_cmp(const void *a, const void *b)
{
	Oid			x = *(const Oid *) a;
	Oid			y = *(const Oid *) b;

	return x < y ? -1 : x > y ? 1 : 0;
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
	bool	   *seen;
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
		if (!db->datallowconn || db->datistemplate || db->datconnlimit == DATCONNLIMIT_INVALID_DB)
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

	/* Sorted, so that the pass over the table below looks each entry up in O(log n). */
	qsort(oids, n, sizeof(Oid), oid_cmp);
	seen = MemoryContextAllocZero(TopMemoryContext, n > 0 ? n : 1);

	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < TR_MAX_DBS; i++)
	{
		TrDbEntry  *e = &tr_shared->dbs[i];
		Oid		   *found;

		if (e->dboid == InvalidOid)
			continue;
		found = bsearch(&e->dboid, oids, n, sizeof(Oid), oid_cmp);
		if (found == NULL)
		{
			/* Dropped (a drop in progress is forgotten by its own backend). */
			if (!e->dropping)
				memset(e, 0, sizeof(TrDbEntry));
			continue;
		}
		seen[found - oids] = true;
		if (all || e->has_extension)
			e->pending = e->trainings = true;
	}
	/* Databases never probed: into free entries while there are some. */
	for (int j = 0, i = 0; j < n; j++)
	{
		if (seen[j])
			continue;
		while (i < TR_MAX_DBS && tr_shared->dbs[i].dboid != InvalidOid)
			i++;
		if (i == TR_MAX_DBS)
			break;
		memset(&tr_shared->dbs[i], 0, sizeof(TrDbEntry));
		tr_shared->dbs[i].dboid = oids[j];
		tr_shared->dbs[i].has_extension = true;	/* assume so until a worker finds out */
		tr_shared->dbs[i].pending = true;
		tr_shared->dbs[i].trainings = true;
	}
	LWLockRelease(tr_shared->lock);
	pfree(seen);
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
			TrSlotPhase phase;
			bool		exited;
			pid_t		slot_pid;
			TimestampTz registered;

			LWLockAcquire(tr_shared->lock, LW_SHARED);
			phase = s->phase;
			exited = s->exited;
			slot_pid = s->pid;
			registered = s->registered;
			LWLockRelease(tr_shared->lock);
			if (phase != TR_SLOT_FREE)
			{
				if (exited)
					stopped = true;
				else if (slot_pid != 0 && BackendPidGetProc(slot_pid) == NULL)
					stopped = true;
				else if (slot_pid == 0 &&
						 TimestampDifferenceExceeds(registered, GetCurrentTimestamp(), 60000))
					stopped = true;
			}
		}
		if (stopped)
		{
			LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
			if (s->phase != TR_SLOT_FREE)
			{
				if (!s->clean_exit && s->has_training)
				{
					TrDbEntry  *e = tr_db_entry(s->dboid, false);

					if (e)
					{
						e->pending = e->trainings = true;
						e->needs_recovery = true;
					}
				}
				memset(s, 0, sizeof(TrWorkerSlot));
			}
			LWLockRelease(tr_shared->lock);
		}
	}
}

/* The rounds of start_workers(), in the order databases are given a worker. */
typedef enum Round
{
	ROUND_TRAININGS,			/* pending for waiting trainings (or not known) */
	ROUND_MEASURE,				/* pending only for images to measure */
	ROUND_HELPER,				/* a second worker beside the extractor */
	ROUND_COUNT
} Round;

/*
 * Give a database a worker for the round: one idle there, or a free slot reserved for a new one.
 * Returns the reserved slot, or -1 (nothing to start: one is on its way, none is needed, or no
 * room). One pass over the slots under the lock.
 */
static int
reserve_slot(int d, Oid dboid, Round round)
{
	TrDbEntry  *e = &tr_shared->dbs[d];
	TrWorkerSlot *idle_here = NULL;
	TrWorkerSlot *idle_other = NULL;
	bool		starting = false;	/* a worker looks for trainings here, or is on its way */
	bool		coming = false;		/* one on its way, besides the extractor */
	bool		needed;
	int			slotno = -1;
	int			running = 0;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	/* A helper is asked for while the extractor runs alone (src/extract.c). */
	if (e->want_helper && (e->extractor == 0 || e->helper != 0))
		e->want_helper = false;
	/* Still pending (or asking for a helper) since the launcher looked? */
	if (e->dboid != dboid || e->dropping || !(round == ROUND_HELPER ? e->want_helper : e->pending))
	{
		LWLockRelease(tr_shared->lock);
		return -1;
	}
	for (int i = 0; i < TR_MAX_WORKERS; i++)
	{
		TrWorkerSlot *s = &tr_shared->slots[i];

		if (s->phase != TR_SLOT_FREE)
			running++;
		/*
		 * One worker looks for trainings in a database at a time; the extractor is one (it looks
		 * between batches), but its helper is asked for beside it.
		 */
		if (s->phase == TR_SLOT_STARTING && s->dboid == dboid)
		{
			starting = true;
			coming |= s->pid == 0 || s->pid != e->extractor;
		}
		if (s->phase == TR_SLOT_FREE && slotno < 0)
			slotno = i;
		if (s->phase == TR_SLOT_IDLE && !s->quit && s->latch)
		{
			if (s->dboid == dboid && idle_here == NULL)
				idle_here = s;
			else if (s->dboid != dboid && idle_other == NULL)
				idle_other = s;
		}
	}
	/*
	 * One more worker: for a pending database where none looks (the extractor looks between its
	 * batches), or for the helper asked for.
	 */
	needed = round == ROUND_HELPER ? e->want_helper && !coming : !starting && e->extractor == 0;
	/* All workers busy: one idle in another database gives its place up (not for a helper). */
	if (needed && round != ROUND_HELPER && running >= tr_max_workers && idle_other != NULL)
	{
		idle_other->quit = true;
		SetLatch(idle_other->latch);
	}
	/* A worker idle in this database takes it at once: no process start. */
	if (needed && idle_here != NULL)
	{
		idle_here->phase = TR_SLOT_STARTING;
		SetLatch(idle_here->latch);
		coming = true;
		needed = false;
	}
	if (!needed || slotno < 0 || running >= tr_max_workers)
		slotno = -1;
	else
	{
		TrWorkerSlot *s = &tr_shared->slots[slotno];

		memset(s, 0, sizeof(TrWorkerSlot));
		s->phase = TR_SLOT_STARTING;
		s->dboid = dboid;
		s->registered = now;
		coming = true;
	}
	/* The worker on its way is the helper asked for (or takes a training instead). */
	if (coming)
		e->want_helper = false;
	LWLockRelease(tr_shared->lock);
	return slotno;
}

/*
 * Start a worker for each pending database, within training.max_workers (databases with waiting
 * trainings first, then those with only images to measure), then for each database whose
 * extractor asks for a helper. Returns false when no background worker slot was free
 * (max_worker_processes) for waiting trainings: the caller retries soon. Measuring that cannot
 * start is not retried (nor warned about): a later wake, or the extractor's next batch, asks again.
 */
static bool
start_workers(void)
{
	static int	next_db = 0;
	static TimestampTz last_warning = 0;
	int			pending[TR_MAX_DBS * ROUND_COUNT];
	Oid			pending_oid[TR_MAX_DBS * ROUND_COUNT];
	Round		rounds[TR_MAX_DBS * ROUND_COUNT];
	int			npending = 0;

	/*
	 * Databases pending for trainings, then those pending only for images to measure, then the
	 * helpers asked for, each round robin from where the last start left off.
	 */
	LWLockAcquire(tr_shared->lock, LW_SHARED);
	for (int r = 0; r < ROUND_COUNT; r++)
		for (int k = 0; k < TR_MAX_DBS; k++)
		{
			int			d = (next_db + k) % TR_MAX_DBS;
			TrDbEntry  *e = &tr_shared->dbs[d];

			if (e->dboid != InvalidOid && !e->dropping &&
				(r == ROUND_HELPER ? e->want_helper : e->pending && e->trainings == (r == ROUND_TRAININGS)))
			{
				rounds[npending] = (Round) r;
				pending[npending] = d;
				pending_oid[npending++] = e->dboid;
			}
		}
	LWLockRelease(tr_shared->lock);

	for (int k = 0; k < npending; k++)
	{
		int			d = pending[k];
		Oid			dboid = pending_oid[k];
		int			slotno;
		BackgroundWorker bgw;
		BackgroundWorkerHandle *handle;

		slotno = reserve_slot(d, dboid, rounds[k]);
		if (slotno < 0)
			continue;

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
			LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
			memset(&tr_shared->slots[slotno], 0, sizeof(TrWorkerSlot));
			LWLockRelease(tr_shared->lock);
			/* Measuring waits for the next wake; only waiting trainings are retried and warned about. */
			if (rounds[k] != ROUND_TRAININGS)
				continue;
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
		next_db = (d + 1) % TR_MAX_DBS;
	}
	return true;
}

/* Worker slots in use (the launcher's activity). */
static int
count_workers(void)
{
	int			running = 0;

	LWLockAcquire(tr_shared->lock, LW_SHARED);
	for (int i = 0; i < TR_MAX_WORKERS; i++)
		if (tr_shared->slots[i].phase != TR_SLOT_FREE)
			running++;
	LWLockRelease(tr_shared->lock);
	return running;
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

	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	tr_shared->launcher_pid = MyProcPid;
	tr_shared->launcher_latch = MyLatch;
	LWLockRelease(tr_shared->lock);
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
		LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
		rescan = tr_shared->rescan;
		tr_shared->rescan = false;
		LWLockRelease(tr_shared->lock);
		if (first || rescan || now >= next_poll)
		{
			/* At start every database is probed: trainings may have been left processing. */
			scan_databases(first || rescan);
			first = false;
			next_poll = TimestampTzPlusMilliseconds(now, tr_naptime * 1000L);
		}

		if (tr_enabled)
			ok = start_workers();

		running = count_workers();
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
