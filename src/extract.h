/*
 * extract.h: the embedding store filled in the background (src/extract.c).
 */
#ifndef TRAINING_EXTRACT_H
#define TRAINING_EXTRACT_H

#include "postgres.h"

/*
 * In a worker with no training to run: measure one batch of the database's images that have no
 * kept measurement for the feature kind a training of their dataset would use, and keep them.
 * Returns true when it measured something (then look for trainings before the next batch),
 * false when nothing is left or another worker of the database does this; *yield: false, and
 * another database waits for this worker's slot (the process should exit; this database is
 * marked pending, so that it gets a worker again when a slot is free).
 */
extern bool tr_extract_batch(Oid dboid, bool *yield);

struct TrDbEntry;

/* This process gives up its roles in the database's measurement (under tr_shared->lock, exclusive). */
extern void tr_extract_forget(struct TrDbEntry *e);

#endif
