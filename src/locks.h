/*
 * locks.h: the extension's advisory locks, in a lock space of its own.
 *
 * pg_advisory_lock() and its kin tag their locks with 1 (bigint keys) or 2 (int4 pairs) in the
 * lock tag's last field; ours use the TR_LOCK_* values below, which no SQL function can name,
 * so no tenant can take or wait on another's. Keys are the owner's role OID and a hash of
 * the model name or dataset id, so no two owners ever share a lock. They show in pg_locks as
 * advisory locks: classid the owner's OID, objid the hash, objsubid 3, 4 or 5.
 */
#ifndef TRAINING_LOCKS_H
#define TRAINING_LOCKS_H

#include "postgres.h"

#include "storage/lockdefs.h"

#define TR_LOCK_NAME 3			/* a model name without a model (creations) */
#define TR_LOCK_MODEL 4			/* a model's name while it exists (creations, its deletion) */
#define TR_LOCK_DATASET 5		/* a dataset's evaluation (lock_dataset, evaluate_dataset) */

/* The key of an owner's model name: the owner's role OID and a hash of the name (never 0). */
extern int64 tr_model_lock_key(const char *owner, const text *name);

/* The key of an owner's dataset: the owner's role OID and a hash of its id. */
extern int64 tr_dataset_lock_key(const char *owner, Datum dataset_id);

/* Take the lock (a TR_LOCK_* space) of key in mode until the end of the transaction. */
extern void tr_lock_xact(int64 key, int space, LOCKMODE mode);

#endif
