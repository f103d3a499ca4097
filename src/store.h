/*
 * store.h: every SQL statement of the extension's C code (SPI) lives in store.c.
 *
 * Functions that say "own transaction" start and commit a short transaction themselves and must
 * be called outside one; results are copied into the caller's current memory context.
 */
#ifndef TRAINING_STORE_H
#define TRAINING_STORE_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "measure.h"

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
	int64		content_version;	/* images.content_version: what a measurement is of */
	bytea	   *data;			/* detoasted copy; NULL when its kept measurement serves */
	bool		has_box;
	int			box[4];
	bool		has_measure;	/* measure holds its kept measurement (features palloc'd) */
	tr_measure	measure;
	char		type[16];		/* dataset type (store_unmeasured_batch only) */
} TrImageRow;

/* A measurement to keep in the embedding store: of image id at content_version. */
typedef struct TrKeep
{
	pg_uuid_t	id;
	int64		content_version;
	char		kind[TR_FEATURES_NAMELEN];
	tr_measure	measure;		/* features palloc'd */
} TrKeep;

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
typedef void (*tr_on_claim_fn) (const pg_uuid_t *id, int attempt);

/* Own transaction: is the extension installed in this database, at this library's version? */
extern bool store_extension_installed(void);

/*
 * Own transaction: trainings left 'processing' by an in-server worker that is gone go back to
 * 'waiting', or to 'failed' when they were started max_attempts times. Returns how many were
 * touched; *skipped counts processing rows locked by another session (looked at again later).
 * (Trainings of training-worker, and of a worker whose lease expired, are queued again by the
 * next claim: training._requeue_expired.)
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

/* What a batch of images is read for: the feature kind and what makes its measurement serve. */
typedef struct TrBatchNeeds
{
	const char *kind;
	int			dim;			/* the kind's feature length */
	size_t		max_pixels;		/* training.max_image_pixels now */
	bool		gender;			/* a measurement without gender does not serve */
} TrBatchNeeds;

/*
 * Own transaction: the next batch of active images of a class after *key, each with its kept
 * measurement for the kind of its current content, and its data only when no measurement
 * serves (store_measure_serves); advances *key. Returns the rows left after dropping those
 * deleted meanwhile; *fetched: the rows read (fewer than limit: the class's last batch).
 */
extern int	store_image_batch(const char *class_id, TrImageKey *key, int limit, const TrBatchNeeds *needs,
							  TrImageRow **rows, int *fetched);

/* Whether a row's kept measurement serves a reader with these needs (else its data is read). */
extern bool store_measure_serves(const TrImageRow *row, const TrBatchNeeds *needs);

/*
 * Own transaction: keep measurements in the embedding store. An image changed since it was
 * read, or locked by another session (never waited for), is left out. Returns how many were kept.
 */
extern int	store_keep_measures(const TrKeep *keep, int n);

/*
 * Own transaction: the next images after *key (descending: before *key, newest first; any
 * class, active or not; with a dataset: its images only) without a kept measurement of their
 * current content for the kind of their dataset type (face_kind: NULL when none is usable;
 * landmark_kind), or, with face_gender, a face's kept without gender; with their data; advances
 * *key.
 */
extern int	store_unmeasured_batch(const char *face_kind, const char *landmark_kind, bool face_gender,
								   const pg_uuid_t *dataset, bool descending, TrImageKey *key, int limit,
								   TrImageRow **rows);

/*
 * Own transaction: write progress (kept monotonic), duration and stage, and renew the lease. A
 * row locked by another session is skipped (TR_STORE_BUSY), never waited for; a claim whose lease
 * expired is gone.
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

/*
 * Own transaction: mark the training failed with a readable error. TR_STORE_BUSY: another
 * session holds its row (skipped, not waited for); TR_STORE_GONE: deleted or not ours.
 */
extern TrStoreResult store_fail(const pg_uuid_t *id, int pid, const char *error);

/*
 * Own transaction: the worker is going away mid-training: queue it again, or fail it when it was
 * started max_attempts times. attempt: the claim's (TrClaim.attempts). cause says why (it ends
 * up in stage, or in error when failed). *requeued tells which of the two happened.
 */
extern TrStoreResult store_release(const pg_uuid_t *id, int attempt, int max_attempts, const char *cause,
									bool *requeued);

/* ---------------------------------------------------------------------------------------------
 * The API's reads, with the caller's rights (get_training, get_dataset, model_json, the list
 * functions, recognize(), the trainings_object trigger).
 * ---------------------------------------------------------------------------------------------
 */

/* Columns of a training (training.trainings). */
enum
{
	T_ID, T_TYPE, T_STATE, T_PROGRESS, T_DURATION, T_ERROR,
	T_TIME_CREATED, T_TIME_STARTED, T_TIME_COMPLETED,
	T_OUTPUT_MODEL_NAME, T_CONFIG, T_OUTPUT_MODEL_DESCRIPTION, T_OUTPUT_MODEL_CHANGELOG,
	T_OUTPUT_MODEL_ID, T_OUTPUT_MODEL_VERSION, T_SOURCE_DATASET_ID,
	T_OUTPUT_MODEL_VERSION_ID,	/* NULL until written, and once that version is deleted */
	T_NCOLS
};

/* Columns of a dataset (training.datasets). */
enum
{
	D_ID, D_NAME, D_DESCRIPTION, D_VERSION, D_TYPE, D_TIME_CREATED, D_TIME_UPDATED,
	D_CLASSES, D_ACTIVE_CLASSES, D_IMAGES, D_ACTIVE_IMAGES,
	D_EVALUATION_RESULT, D_EVALUATION_STATE, D_ISSUES,
	D_PREVIEWS,					/* uuid[] kept by triggers */
	D_EARLIEST_EXPIRATION,		/* timestamptz kept by triggers */
	D_TRAINABLE_CLASSES,		/* int4 kept by triggers: active classes with active images */
	D_NCOLS
};

/* Columns of a model (training.models) at one version (training.model_versions). */
enum
{
	M_ID, M_NAME, M_DESCRIPTION, M_TYPE, M_TIME_CREATED, M_TIME_UPDATED,
	M_VERSION, M_VERSION_ID, M_CHANGELOG, M_METRICS, M_TRAINING_ID, M_VERSION_TIME_CREATED,
	M_VERSIONS,					/* int8: number of versions of the model */
	M_NCOLS
};

/*
 * The API's reads. Each reader fills values/nulls arrays in the column order of the enums
 * above. Call between store_api_connect() and store_api_finish(), in the caller's transaction;
 * the values live until store_api_finish().
 */
extern void store_api_connect(void);
extern void store_api_finish(void);

/*
 * The type of a dataset (NULL: not found, or not visible to the caller) and the ids of its
 * active, unexpired classes in the order a training reads them (palloc'd outside SPI).
 */
extern char *store_api_dataset_classes(Datum dataset_id, Datum **class_ids, int *nclasses);
/* The owner of a dataset the caller can see (row-level security), or NULL. */
extern char *store_api_dataset_owner(Datum dataset_id);

/*
 * store_image_batch in the caller's transaction: the images with the caller's rights, their
 * measurements with the store owner's; rows in mcxt, and mcxt current on return.
 */
extern int	store_api_image_batch(Datum class_id, TrImageKey *key, int limit, const TrBatchNeeds *needs,
								  TrImageRow **rows, int *fetched, MemoryContext mcxt);

/*
 * store_keep_measures in the caller's transaction, written with the rights of the owner of the
 * extension's tables (tenants only read the store; the values are the extension's own).
 */
extern int	store_api_keep_measures(const TrKeep *keep, int n);

/* The attribute number of a column of desc (a trigger's relation), or <= 0. */
extern int	store_attnum(TupleDesc desc, const char *name);

/* A row read by one of the functions below. */
typedef struct ApiRow
{
	Datum	   *values;
	bool	   *nulls;
} ApiRow;

/*
 * The training with this id and (with_dataset) its source dataset: T_NCOLS training values, then
 * D_NCOLS dataset values (all null when the dataset is gone or not read). False when there is no
 * such training (or the caller may not see it).
 */
extern bool store_api_training(Datum id, ApiRow *row, bool with_dataset);

/*
 * The training in tuple (a row of training.trainings with descriptor desc, e.g. a trigger's
 * new row) and (with_dataset) its source dataset: dataset_read when the caller read it already
 * (D_NCOLS values), else read as store_api_training() does; false when the dataset is gone, not
 * visible or not read (its values are then null).
 */
extern bool store_api_training_tuple(HeapTuple tuple, TupleDesc desc, ApiRow *row, bool with_dataset,
									 const ApiRow *dataset_read);

/* The Training object kept with a training's row (trainings.object). */
typedef struct ApiKept
{
	bool		has_object;		/* object is set (it may not be fresh) */
	Datum		object;			/* jsonb */
	bool		waiting;		/* the training is waiting (its object follows the dataset) */
	bool		fresh;			/* object can be returned as it is */
} ApiKept;

/*
 * The kept object of this training: 1 found, 0 no such training (or not visible), -1 the catalog
 * predates kept objects (render from the rows). Fresh when kept, the training has no output
 * version (whose Model object counts versions live), and, while it waits, no class of its dataset
 * expired since it was rendered.
 */
extern int	store_api_training_object(Datum id, ApiKept *ko);

/* A page of trainings in list order: their ids and kept objects. */
typedef struct ApiPage
{
	int			n;
	Datum	   *ids;
	ApiKept    *kept;
} ApiPage;

/*
 * The trainings the caller sees (of one state unless state is NULL), in creation order: how
 * many there are, and the page from offset of up to limit of them.
 */
extern int64 store_api_trainings_page(text *state, int64 limit, int64 offset, ApiPage *page);

/* The dataset with this id; false when there is none. */
extern bool store_api_dataset(Datum id, ApiRow *row);

/*
 * The model with this id at version `version` (version_null: none; the version columns are
 * then null, as they are when that version does not exist); false when there is no model.
 */
extern bool store_api_model(Datum id, Datum version, bool version_null, ApiRow *row);

/* Active classes of a dataset whose expiration_date has passed, and their active images. */
extern void store_api_expired(Datum dataset_id, int64 *classes, int64 *active_images,
							  int64 *trainable_classes);

/*
 * The version a model reference names, resolved by training.resolve_model() with the caller's
 * rights: its id, number and the model's name. ereports P0002/22023 like resolve_model_version().
 */
extern void store_api_resolve_version(text *model, Datum *version_id, int32 *number, char **model_name);

/* The parameters of a model version the caller can see; NULL when it cannot. */
extern bytea *store_api_parameters(Datum version_id);

/* The reference of a class the caller can see; NULL when it cannot. */
extern char *store_api_class_reference(const char *class_id);

/* The dataset snapshot stored with the version a training wrote; false when there is none. */
extern bool store_api_snapshot(Datum training_id, Datum *dataset);

/* ---------------------------------------------------------------------------------------------
 * The reads of the trainings_before trigger (src/validate.c): caller's rights, in the caller's
 * transaction between store_api_connect() and store_api_finish(), each on a fresh snapshot (as
 * the statements of a volatile function), so that one taken after a lock sees what committed
 * before it. Texts are copied into the caller's memory context.
 * ---------------------------------------------------------------------------------------------
 */

/* What the trainings_before trigger reads with the dataset, about the training's model name. */
typedef struct TrNameRead
{
	char	   *model_type;		/* the type of the caller's model of that name; NULL: none */
	bool		queued;			/* a waiting or processing training of that name has the type
								 * the dataset does not have */
	int64		expired_trainable;	/* trainable classes of the dataset that expired (counted
									 * only once its earliest expiration has passed) */
} TrNameRead;

/*
 * What the caller expects of the dataset and the name, to read less: each query of the queue
 * or the model is a plan node more to start. A wrong guess leaves out->queued meaningless, and
 * the caller checks the name again (store_name_check).
 */
typedef enum TrNameGuess
{
	TR_GUESS_NONE,				/* nothing: queued means a training of the type the dataset
								 * does not have is queued */
	TR_GUESS_FACE,				/* a face dataset: queued means a landmark training is queued */
	TR_GUESS_LANDMARK,			/* a landmark dataset: queued means a face training is */
	TR_GUESS_MODEL				/* the name's model exists: queued is not checked (false) */
} TrNameGuess;

/*
 * Read the dataset's row (D_NCOLS values, valid until store_api_finish()), not locked (the
 * foreign key check locks it at the end of the statement), and *out about the model name
 * (owner, name) of training id (the training itself excluded), in one statement on a fresh
 * snapshot; the expired classes in a second one on the same snapshot, once the dataset's
 * earliest expiration has passed. False when the dataset is not found.
 */
extern bool store_dataset_for_training(Datum dataset_id, Datum owner, Datum name, bool name_null,
									   Datum id, bool id_null, TrNameGuess guess, ApiRow *row,
									   TrNameRead *out);

/*
 * The same about the model name alone, on a fresh snapshot: the caller's model of that name and
 * whether a waiting or processing training of that name, other than id, has this type.
 */
extern void store_name_check(Datum owner, Datum name, Datum type, Datum id, bool id_null,
							 TrNameRead *out);

/* Whether a row with this id exists in a table (as the caller sees it). */
typedef enum TrRowKind
{
	TR_ROW_DATASET, TR_ROW_MODEL, TR_ROW_VERSION
} TrRowKind;
extern bool store_row_exists(TrRowKind kind, Datum id);

/*
 * create_training, in the caller's transaction: insert a training (source_dataset_id,
 * output_model_name, output_model_description, output_model_changelog, config; NULLs as given)
 * and set *object to its object (jsonb). False when no object was rendered (a dump restore).
 */
extern bool store_create_training(Datum *args, const bool *isnull, Datum *object);

/*
 * Kept counts of trainings (training.training_counts), in the caller's transaction: add delta to
 * the count of owner (name) and state (text) in this backend's slot; clear them all.
 */
extern void store_count_add(Datum owner, Datum state, int64 delta);
extern void store_counts_clear(void);

#endif
