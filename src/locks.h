/*
 * locks.h: the extension's advisory locks, in a lock space of its own.
 *
 * pg_advisory_lock() and its kin tag their locks with 1 (bigint keys) or 2 (int4 pairs) in the
 * lock tag's last field; ours use TR_LOCK_SPACE, which no SQL function can name. A tenant who
 * knows another owner's model name can neither take nor wait on its locks.
 * They show in pg_locks as advisory locks with objsubid 3.
 */
#ifndef TRAINING_LOCKS_H
#define TRAINING_LOCKS_H

#include "postgres.h"

#include "storage/lockdefs.h"

#define TR_LOCK_SPACE 3

/* The key of a model name's lock: "training.model:" (live: "training.model-live:") owner:name. */
extern int64 tr_model_lock_key(bool live, const char *owner, const text *name);

/* Take the lock of key in mode until the end of the transaction. */
extern void tr_lock_xact(int64 key, LOCKMODE mode);

#endif
