/*
 * worker.h: the training worker process (src/worker.c).
 *
 * The launcher (src/launcher.c; one per cluster, no database) starts one dynamic worker for a
 * database with waiting trainings, at most training.max_workers at a time. A worker connects to
 * that database, recovers trainings left behind by dead workers, claims a waiting training, runs
 * it, and exits when none is left, after at most training.worker_idle_timeout (< 5 s) of waiting
 * for the next one. Nothing stays connected to an idle database for longer than that. Its slot
 * in shared memory, and the rule for touching it, are in src/shmem.c.
 */
#ifndef TRAINING_WORKER_H
#define TRAINING_WORKER_H

#include "postgres.h"

#include "settings.h"
#include "shmem.h"

PGDLLEXPORT void tr_worker_main(Datum arg);

#endif
