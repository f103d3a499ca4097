/*
 * worker.h: the background worker of the extension: GUCs, shared state, launcher and workers.
 *
 * The launcher (one per cluster, no database) keeps a list of databases with work pending and
 * starts one dynamic worker per training, at most training.max_workers at a time. Workers connect
 * to one database, recover trainings left behind by dead workers, claim a waiting training, run it
 * and exit when none is left, after at most training.worker_idle_timeout (< 5 s) of waiting for
 * the next one. Nothing stays connected to an idle database for longer than that.
 */
#ifndef TRAINING_WORKER_H
#define TRAINING_WORKER_H

#include "postgres.h"

#include "storage/latch.h"
#include "datatype/timestamp.h"
#include "storage/spin.h"
#include "utils/uuid.h"

#include "settings.h"

/* Upper bound of training.max_workers; also the number of worker slots in shared memory. */
#define TR_MAX_WORKERS 64
/* Databases the launcher can track at once; beyond that it falls back to rescanning. */
#define TR_MAX_DBS 256

typedef enum TrSlotPhase
{
	TR_SLOT_FREE = 0,
	TR_SLOT_STARTING,			/* registered by the launcher, not yet claimed */
	TR_SLOT_RUNNING,			/* running a claimed training (or exiting) */
	TR_SLOT_IDLE				/* connected, waiting on its latch for the launcher */
} TrSlotPhase;

typedef struct TrWorkerSlot
{
	TrSlotPhase phase;
	Oid			dboid;
	pid_t		pid;			/* 0 until the worker attached */
	Latch	   *latch;
	TimestampTz registered;		/* when the launcher registered it */
	bool		has_training;
	pg_uuid_t	training;		/* set before the claim commits */
	bool		cancel;			/* the training was deleted: stop, write nothing */
	bool		dropping;		/* its database is being dropped: exit, write nothing */
	bool		clean_exit;		/* left no training behind */
	bool		exited;			/* the process has gone */
	bool		quit;			/* an idle worker must exit (its slot or database is needed) */
} TrWorkerSlot;

typedef struct TrDbEntry
{
	Oid			dboid;			/* InvalidOid = unused entry */
	bool		pending;		/* a worker should look for waiting trainings */
	bool		has_extension;	/* last known; unknown databases are probed */
	bool		dropping;		/* DROP DATABASE in progress: start nothing there */
	bool		recovered;		/* a worker recovered orphans here since the server started */
	bool		needs_recovery;	/* a worker exited leaving a training 'processing' */
} TrDbEntry;

typedef struct TrShared
{
	slock_t		mutex;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		rescan;			/* probe every database at the next launcher loop */
	TrWorkerSlot slots[TR_MAX_WORKERS];
	TrDbEntry	dbs[TR_MAX_DBS];
} TrShared;

extern TrShared *tr_shared;
extern bool tr_preloaded;

/* launcher.c */
extern void tr_launcher_init(void);
extern void tr_wake_database(Oid dboid);
extern bool tr_training_is_live(int pid, const pg_uuid_t *id);
extern TrDbEntry *tr_db_entry(Oid dboid, bool create);

PGDLLEXPORT void tr_launcher_main(Datum arg);
PGDLLEXPORT void tr_worker_main(Datum arg);

#endif
