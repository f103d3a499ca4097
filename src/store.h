/*
 * store.h: every SQL statement of the extension's C code (SPI) lives in store.c.
 *
 * Functions that say "own transaction" start and commit a short transaction themselves and must
 * be called outside one; results are copied into the caller's current memory context.
 */
#ifndef TRAINING_STORE_H
#define TRAINING_STORE_H

#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/uuid.h"

/* A training as claimed by a worker: what running it needs (the owner is _worker_finish's). */
typedef struct TrClaim
{
	pg_uuid_t	id;
	char	   *type;			/* "face" or "landmark" */
	char	   *config;			/* the training's config as JSON text */
	bool		has_dataset;
	pg_uuid_t	dataset_id;
	int			attempts;		/* starts so far, this one included */
} TrClaim;

/* One image of a class, as streamed to the pipeline. */
typedef struct TrImageRow
{
	pg_uuid_t	id;
	TimestampTz time_created;
	bytea	   *data;			/* detoasted copy */
	bool		has_box;
	int			box[4];
} TrImageRow;

/* Where an image stream of one class stands (keyset pagination). */
typedef struct TrImageKey
{
	TimestampTz time_created;
	pg_uuid_t	id;
	bool		started;
} TrImageKey;

typedef enum TrStoreResult
{
	TR_STORE_OK = 0,
	TR_STORE_GONE,				/* the training was deleted or is no longer ours */
	TR_STORE_BUSY				/* another session holds a lock it needs: nothing written, try later */
} TrStoreResult;

typedef bool (*tr_is_live_fn) (int pid, const pg_uuid_t *id);
typedef void (*tr_on_claim_fn) (const pg_uuid_t *id);

/* Own transaction: is the extension installed in this database, at this library's version? */
extern bool store_extension_installed(void);

/*
 * Own transaction: trainings left 'processing' by a worker that is gone go back to 'waiting', or
 * to 'failed' when they were started max_attempts times. Returns how many were touched;
 * *skipped counts processing rows locked by another session (looked at again later).
 */
extern int	store_recover_orphans(tr_is_live_fn is_live, int max_attempts, const char *cause,
								  int *skipped);

/*
 * Own transaction: claim the oldest waiting training (FOR UPDATE SKIP LOCKED). on_claim runs
 * before the commit. Returns false when nothing is waiting. *more tells whether others wait.
 */
extern bool store_claim(int pid, tr_on_claim_fn on_claim, TrClaim *out, bool *more);

/* Own transaction: the active, unexpired classes of a dataset, oldest first, and their image count. */
extern int	store_load_classes(const pg_uuid_t *dataset_id, char ***labels, char ***ids,
							   size_t *nimages);

/* Own transaction: the next batch of active images of a class after *key; advances *key. */
extern int	store_image_batch(const char *class_id, TrImageKey *key, int limit, TrImageRow **rows);

/*
 * Own transaction: write progress (kept monotonic), duration and stage. A row locked by another
 * session is skipped (TR_STORE_BUSY), never waited for.
 */
extern TrStoreResult store_progress(const pg_uuid_t *id, int pid, double progress, const char *stage);

/*
 * Own transaction: create the model on first use, add the next version and set the training
 * completed, all at once (training._worker_finish). *version receives the new version number,
 * which is never one given before. TR_STORE_BUSY: a row it needs is locked by another session
 * (skipped, or lock_timeout); nothing was written.
 */
extern TrStoreResult store_finish(const pg_uuid_t *id, int pid, const void *parameters,
								  size_t parameters_len, Jsonb *metrics, int *version);

/* Own transaction: mark the training failed with a readable error. */
extern TrStoreResult store_fail(const pg_uuid_t *id, int pid, const char *error);

/*
 * Own transaction: the worker is going away mid-training: queue it again, or fail it when it was
 * started max_attempts times. cause says why (it ends up in stage, or in error when failed).
 * *requeued tells which of the two happened.
 */
extern TrStoreResult store_release(const pg_uuid_t *id, int pid, int max_attempts, const char *cause,
									bool *requeued);

#endif
