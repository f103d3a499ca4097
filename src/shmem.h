/*
 * shmem.h: the state the launcher, the workers and the client backends share (src/shmem.c).
 *
 * One LWLock (tr_shared->lock) protects all of it; the rule is written at the top of shmem.c.
 */
#ifndef TRAINING_SHMEM_H
#define TRAINING_SHMEM_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/uuid.h"

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
	pg_uuid_t	dataset;		/* its source dataset, once the run started (zero: none) */
	bool		cancel;			/* the training was deleted: stop, write nothing */
	bool		dropping;		/* its database is being dropped: exit, write nothing */
	bool		clean_exit;		/* left no training behind */
	bool		exited;			/* the process has gone */
	bool		quit;			/* an idle worker must exit (its slot or database is needed) */
} TrWorkerSlot;

/* How far a walk of the background measurement has fetched images (src/extract.c). */
typedef struct TrEdge
{
	bool		set;
	TimestampTz time_created;
	pg_uuid_t	id;
} TrEdge;

typedef struct TrDbEntry
{
	Oid			dboid;			/* InvalidOid = unused entry */
	bool		pending;		/* a worker should look here: trainings, or images to measure */
	bool		trainings;		/* pending for trainings (or not known), not only for images */
	bool		has_extension;	/* last known; unknown databases are probed */
	bool		dropping;		/* DROP DATABASE in progress: start nothing there */
	bool		recovered;		/* a worker recovered orphans here since the server started */
	bool		needs_recovery;	/* a worker exited leaving a training 'processing' */
	pid_t		extractor;		/* the worker measuring images in the background (0: none) */
	pid_t		helper;			/* a second one, from the newest image down (0: none) */
	bool		want_helper;	/* the extractor asks the launcher for that second worker */
	TrEdge		pass_edge;		/* the newest image the extractor's pass has fetched */
	TrEdge		helper_edge;	/* the oldest image the helper has fetched */
	bool		rewalk;			/* a commit or a kept measurement since the pass began */
} TrDbEntry;

typedef struct TrShared
{
	LWLock	   *lock;			/* protects everything below (shmem.c) */
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		rescan;			/* probe every database at the next launcher loop */
	TrWorkerSlot slots[TR_MAX_WORKERS];
	TrDbEntry	dbs[TR_MAX_DBS];
} TrShared;

/* NULL unless the library was loaded by shared_preload_libraries. */
extern TrShared *tr_shared;
/* Loaded by shared_preload_libraries (the launcher and the hooks exist). */
extern bool tr_preloaded;

/* Reserve the shared memory and the lock (_PG_init, shared_preload_libraries only). */
extern void tr_shmem_init(void);

/* The entry of a database, or a new one when create; NULL when absent (or full). Lock held (exclusive to create). */
extern TrDbEntry *tr_db_entry(Oid dboid, bool create);

/*
 * Ask the launcher (or a worker idle there) to look at a database: for waiting trainings, or
 * (trainings false) only for images to measure.
 */
extern void tr_wake_database(Oid dboid, bool trainings);

/* Is this training being run by a live worker of this database? (store_recover_orphans) */
extern bool tr_training_is_live(int pid, const pg_uuid_t *id);

/* A running worker of this database whose training was deleted stops at once. */
extern void tr_cancel_training(Oid dboid, const pg_uuid_t *id);

/* Idle workers connected to a database exit now (commands that need it without connections). */
extern void tr_release_idle_workers(Oid dboid);

/* DROP DATABASE: start nothing there, and stop the workers connected to it. */
extern void tr_stop_database(Oid dboid);

/* After DROP DATABASE: forget the database, or, when the drop failed, look at it again. */
extern void tr_forget_dropping(Oid dboid, bool failed);

#endif
