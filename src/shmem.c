/*
 * shmem.c: the state shared by the launcher, the workers and the client backends.
 *
 * A table of databases (TR_MAX_DBS entries: "pending" when a worker should look there for waiting
 * trainings) and of worker slots (TR_MAX_WORKERS: one per dynamic worker, its phase, database,
 * latch and training), plus the launcher's latch. Client backends mark databases pending and
 * cancel trainings (src/hooks.c), the launcher starts and reaps workers (src/launcher.c), a worker
 * updates its own slot (src/worker.c).
 *
 * Locking rule. One LWLock, tr_shared->lock (named tranche "training"), protects every field of
 * TrShared:
 *   - read under LW_SHARED, write under LW_EXCLUSIVE;
 *   - a critical section walks each shared table at most once, never one inside the other: at
 *     most TR_MAX_DBS + TR_MAX_WORKERS entries (a database lookup, tr_db_entry, is one pass; the
 *     launcher's pg_database pass binary-searches its own sorted list, src/launcher.c);
 *   - under the lock only plain stores, SetLatch() and kill(): no ereport(ERROR), no allocation,
 *     no SPI, transaction, catalog access, background worker registration or wait; no other lock
 *     is taken while it is held (it is a leaf lock);
 *   - the one unlocked read: a worker's interrupt check reads its own slot's cancel flag (one
 *     bool, only ever set while the training runs; a stale read delays the stop to the next check).
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "compat.h"
#include "settings.h"
#include "shmem.h"

#define TR_LWLOCK_TRANCHE "training"

TrShared   *tr_shared = NULL;
bool		tr_preloaded = false;

#ifdef TR_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
tr_shmem_request(void)
{
#ifdef TR_HAVE_SHMEM_REQUEST_HOOK
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(MAXALIGN(sizeof(TrShared)));
	RequestNamedLWLockTranche(TR_LWLOCK_TRANCHE, 1);
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
		tr_shared->lock = &(GetNamedLWLockTranche(TR_LWLOCK_TRANCHE))->lock;
		tr_shared->rescan = true;
	}
	LWLockRelease(AddinShmemInitLock);
}

void
tr_shmem_init(void)
{
	tr_preloaded = true;
#ifdef TR_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = tr_shmem_request;
#else
	tr_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = tr_shmem_startup;
}

/* Find (or add) the entry of a database: one pass over the table. */
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

/* Ask the launcher to look at a database: for waiting trainings, or for images to measure. */
void
tr_wake_database(Oid dboid, bool trainings)
{
	Latch	   *latch;
	Latch	   *worker_latch = NULL;
	TrDbEntry  *e;
	bool		was_pending = false;
	bool		starting = false;
	bool		idle_elsewhere = false;

	if (tr_shared == NULL)
		return;
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	e = tr_db_entry(dboid, true);
	if (e)
	{
		/* Pending for images only: a training now waits too, so the launcher must look again. */
		was_pending = e->pending && (e->trainings || !trainings);
		e->pending = true;
		e->trainings |= trainings;
		e->rewalk = true;
		e->has_extension = true;
		/* A worker idle in this database is handed the work directly, without the launcher. */
		for (int i = 0; i < TR_MAX_WORKERS && tr_enabled; i++)
		{
			TrWorkerSlot *s = &tr_shared->slots[i];

			if (s->phase == TR_SLOT_IDLE && s->dboid != dboid && !s->quit)
				idle_elsewhere = true;
			if (worker_latch != NULL || starting)
				continue;
			if (s->phase == TR_SLOT_STARTING && s->dboid == dboid)
				starting = true;	/* one is already on its way */
			else if (s->phase == TR_SLOT_IDLE && s->dboid == dboid && !s->quit && s->latch &&
					 !e->dropping)
			{
				s->phase = TR_SLOT_STARTING;
				worker_latch = s->latch;
			}
		}
	}
	else
		tr_shared->rescan = true;
	/*
	 * Still pending: the launcher was woken for it and has not given it a worker yet (one is on
	 * its way, or there is no room: a worker that exits, a reload or a failed DROP DATABASE
	 * wakes it). Waking it again would only cost a signal per commit, unless a worker idle in
	 * another database could give its place up.
	 */
	latch = worker_latch || (was_pending && !idle_elsewhere) ? NULL : tr_shared->launcher_latch;
	LWLockRelease(tr_shared->lock);
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

	LWLockAcquire(tr_shared->lock, LW_SHARED);
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
	LWLockRelease(tr_shared->lock);
	return live;
}

/* The worker running a deleted training stops at once, instead of at its next progress write. */
void
tr_cancel_training(Oid dboid, const pg_uuid_t *id)
{
	Latch	   *latch = NULL;

	if (tr_shared == NULL)
		return;
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < TR_MAX_WORKERS; i++)
	{
		TrWorkerSlot *s = &tr_shared->slots[i];

		if (s->phase == TR_SLOT_RUNNING && s->has_training && s->dboid == dboid &&
			memcmp(&s->training, id, sizeof(pg_uuid_t)) == 0)
		{
			s->cancel = true;
			latch = s->latch;
		}
	}
	LWLockRelease(tr_shared->lock);
	if (latch)
		SetLatch(latch);
}

/* Idle workers connected to a database exit now. */
void
tr_release_idle_workers(Oid dboid)
{
	if (tr_shared == NULL || !OidIsValid(dboid))
		return;
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < TR_MAX_WORKERS; i++)
	{
		TrWorkerSlot *s = &tr_shared->slots[i];

		if (s->phase == TR_SLOT_IDLE && s->dboid == dboid && s->latch)
		{
			s->quit = true;
			SetLatch(s->latch);
		}
	}
	LWLockRelease(tr_shared->lock);
}

/*
 * DROP DATABASE waits (5 s at most) for every backend connected to the database. Stop our workers
 * there first and start none until the command is over; their trainings go with the database.
 */
void
tr_stop_database(Oid dboid)
{
	TrDbEntry  *e;

	if (tr_shared == NULL || !OidIsValid(dboid))
		return;
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
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
	LWLockRelease(tr_shared->lock);
}

/* After DROP DATABASE: forget the database, or, when the drop failed, look at it again. */
void
tr_forget_dropping(Oid dboid, bool failed)
{
	TrDbEntry  *e;
	Latch	   *latch = NULL;

	if (tr_shared == NULL || !OidIsValid(dboid))
		return;
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	e = tr_db_entry(dboid, false);
	if (e && failed)
	{
		e->dropping = false;
		e->pending = true;
		e->trainings = true;
		e->needs_recovery = true;
		latch = tr_shared->launcher_latch;	/* it skipped the database while dropping */
	}
	else if (e)
		memset(e, 0, sizeof(TrDbEntry));
	LWLockRelease(tr_shared->lock);
	if (latch)
		SetLatch(latch);
}
