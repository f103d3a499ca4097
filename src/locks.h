/*
 * locks.h: the extension's advisory locks, in a lock space of its own.
 *
 * pg_advisory_lock() and its kin tag their locks with 1 (bigint keys) or 2 (int4 pairs) in the
 * lock tag's last field; ours use TR_LOCK_NAME and TR_LOCK_MODEL, which no SQL function can
 * name, so no tenant can take or wait on another's. A model name's lock is keyed by the owner's
 * role OID and a hash of the name, so no two owners ever share one; a dataset's by a hash of its
 * id, taken only once the caller has seen the dataset. They show in pg_locks as advisory locks
 * with objsubid 3, 4 or 5 (for a name: classid the owner's OID, objid the name's hash).
 */
#ifndef TRAINING_LOCKS_H
#define TRAINING_LOCKS_H

#include "postgres.h"

#include "storage/lockdefs.h"

#define TR_LOCK_NAME 3			/* a model name without a model (creations) */
#define TR_LOCK_MODEL 4			/* a model's name while it exists (creations, its deletion) */
#define TR_LOCK_DATASET 5		/* a dataset's measuring pass (dataset_features, evaluate_dataset) */

/* The key of an owner's model name: the owner's role OID and a hash of the name (never 0). */
extern int64 tr_model_lock_key(const char *owner, const text *name);

/* The key of a dataset: a hash of its id. */
extern int64 tr_dataset_lock_key(Datum dataset_id);

/* Take the lock (a TR_LOCK_* space) of key in mode until the end of the transaction. */
extern void tr_lock_xact(int64 key, int space, LOCKMODE mode);

#endif
