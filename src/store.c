/*
 * store.c: all SQL of the extension's C code, run through SPI with plans prepared once per
 * process and kept. Two parts:
 *
 *   - the worker's store: each function runs one short transaction of its own
 *     (Start/CommitTransactionCommand), so no snapshot or lock outlives it: a training never
 *     holds a transaction across its loop;
 *   - the API's reads (store_api_*): the rows behind the JSON objects of get_training,
 *     get_dataset, model_json, the list functions and recognize(), read with the caller's rights
 *     inside the caller's transaction, so that row-level security and privileges apply as they
 *     would to the caller's own query. Rows are read with `SELECT *` by primary key: the scan
 *     returns the table's row as it is (no projection), and the columns are picked by name.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/backendid.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "store.h"

/* Start a short transaction with SPI connected and a snapshot pushed; returns the caller's context. */
static MemoryContext
tx_begin(void)
{
	MemoryContext caller = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	return caller;
}

/* Commit the transaction started by tx_begin and return to the caller's memory context. */
static void
tx_end(MemoryContext caller)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
}

/*
 * The plan of a statement, prepared once per process on first use and kept. Every statement is
 * a string constant, found again by its address.
 */
static SPIPlanPtr
kept_plan(const char *sql, int nargs, Oid *types)
{
	static struct
	{
		const char *sql;
		SPIPlanPtr	plan;
	}			kept[64];
	SPIPlanPtr	plan;
	int			i;

	for (i = 0; i < (int) lengthof(kept) && kept[i].sql != NULL; i++)
		if (kept[i].sql == sql)
			return kept[i].plan;
	if (i == (int) lengthof(kept))
		elog(ERROR, "training store: more than %d statements", (int) lengthof(kept));
	plan = SPI_prepare(sql, nargs, types);
	if (plan == NULL || SPI_keepplan(plan) != 0)
		elog(ERROR, "training store: cannot prepare: %s", sql);
	kept[i].sql = sql;
	kept[i].plan = plan;
	return plan;
}

/* Run a statement on its kept plan; fail loudly on SPI errors (they are bugs, not user errors). */
static int
run(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, int expect)
{
	int			ret = SPI_execute_plan(kept_plan(sql, nargs, types), values, nulls, false, 0);

	if (ret != expect)
		elog(ERROR, "training store: unexpected SPI result %d for: %s", ret, sql);
	return (int) SPI_processed;
}

static Datum
col(int row, int c, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, c, isnull);
}

/* Copy of a text column in the caller's memory context (upper executor context of SPI). */
static char *
col_text(int row, int c, MemoryContext mcxt)
{
	bool		isnull;
	Datum		d = col(row, c, &isnull);
	MemoryContext old;
	char	   *s;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(mcxt);
	s = TextDatumGetCString(d);
	MemoryContextSwitchTo(old);
	return s;
}

bool
store_extension_installed(void)
{
	MemoryContext caller;
	char	   *version = NULL;
	char	   *dbname;

	caller = tx_begin();
	if (run("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'training'",
			0, NULL, NULL, NULL, SPI_OK_SELECT) == 1)
		version = col_text(0, 1, caller);
	dbname = MemoryContextStrdup(caller, get_database_name(MyDatabaseId));
	tx_end(caller);
	if (version == NULL)
		return false;
	/* This library writes the catalog of its own version: an older one must be updated first. */
	if (strcmp(version, TR_EXTVERSION) != 0)
	{
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("training: the extension in database \"%s\" is version %s, the library is %s; "
						"its trainings wait until it is updated",
						dbname, version, TR_EXTVERSION),
				 errhint("Run ALTER EXTENSION training UPDATE in that database.")));
		return false;
	}
	return true;
}

/*
 * Requeue (or fail at the last attempt) a processing training (training._worker_release);
 * attempt 0 matches any claim. A row another session holds is skipped, never waited for (a
 * worker's exit cannot time a wait out): recovery finds it once the lock is gone. Returns 0 when
 * the row was not that claim's, 1 when it is queued again, 2 when it failed.
 */
static int
release_one(const pg_uuid_t *id, int attempt, int max_attempts, const char *cause)
{
	bool		isnull;
	Datum		d;
	Oid			types[4] = {UUIDOID, INT4OID, INT4OID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', attempt > 0 ? ' ' : 'n', ' ', ' '};

	values[0] = UUIDPGetDatum(id);
	values[1] = Int32GetDatum(attempt);
	values[2] = Int32GetDatum(max_attempts);
	values[3] = CStringGetTextDatum(cause);
	run("SELECT training._worker_release($1, $2, $3, $4)", 4, types, values, nulls, SPI_OK_SELECT);
	d = col(0, 1, &isnull);
	if (isnull)
		return 0;
	return strcmp(TextDatumGetCString(d), "waiting") == 0 ? 1 : 2;
}

int
store_recover_orphans(tr_is_live_fn is_live, int max_attempts, const char *cause, int *skipped)
{
	MemoryContext caller;
	int			n,
				touched = 0;
	pg_uuid_t  *ids;
	int		   *pids;
	bool		isnull;

	caller = tx_begin();
	/*
	 * Rows of in-server workers (with a pid); training-worker's have none, and their leases
	 * decide (every claim queues again the expired ones: training._requeue_expired).
	 */
	run("SELECT count(*) FROM training.trainings WHERE state = 'processing' AND worker_pid IS NOT NULL",
		0, NULL, NULL, NULL, SPI_OK_SELECT);
	*skipped = (int) DatumGetInt64(col(0, 1, &isnull));
	/* Locked rows belong to a claim or a worker write in progress: their owner is alive. */
	n = run("SELECT id, worker_pid FROM training.trainings "
			"WHERE state = 'processing' AND worker_pid IS NOT NULL FOR UPDATE SKIP LOCKED",
			0, NULL, NULL, NULL, SPI_OK_SELECT);
	*skipped -= n;
	ids = palloc(sizeof(pg_uuid_t) * (n + 1));
	pids = palloc(sizeof(int) * (n + 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		ids[i] = *DatumGetUUIDP(col(i, 1, &isnull));
		pids[i] = DatumGetInt32(col(i, 2, &isnull));
	}
	for (int i = 0; i < n; i++)
	{
		if (is_live(pids[i], &ids[i]))
			continue;
		switch (release_one(&ids[i], 0, max_attempts, cause))
		{
			case 2:
				ereport(LOG,
						(errmsg("training %s failed: it was started training.max_attempts (%d) times; last: %s",
								DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&ids[i]))),
								max_attempts, cause)));
				/* FALLTHROUGH */
			case 1:
				touched++;
				break;
		}
	}
	tx_end(caller);
	return touched;
}

bool
store_claim(int pid, tr_on_claim_fn on_claim, TrClaim *out, bool *more)
{
	MemoryContext caller;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	bool		isnull;
	int			n;

	caller = tx_begin();
	values[0] = Int32GetDatum(pid);
	n = run("SELECT id, type, config::text, source_dataset_id, attempts "
			"FROM training._worker_claim($1)",
			1, types, values, NULL, SPI_OK_SELECT);
	if (n == 0)
	{
		*more = false;
		tx_end(caller);
		return false;
	}
	out->id = *DatumGetUUIDP(col(0, 1, &isnull));
	out->type = col_text(0, 2, caller);
	out->config = col_text(0, 3, caller);
	{
		Datum		d = col(0, 4, &isnull);

		out->has_dataset = !isnull;
		if (!isnull)
			out->dataset_id = *DatumGetUUIDP(d);
	}
	out->attempts = DatumGetInt32(col(0, 5, &isnull));

	run("SELECT EXISTS (SELECT 1 FROM training.trainings WHERE state = 'waiting')",
		0, NULL, NULL, NULL, SPI_OK_SELECT);
	*more = DatumGetBool(col(0, 1, &isnull));

	/* Publish the claim before it commits, so recovery never takes it for an orphan. */
	on_claim(&out->id, out->attempts);
	tx_end(caller);
	return true;
}

int
store_load_classes(const pg_uuid_t *dataset_id, char ***labels, char ***ids, size_t *nimages)
{
	MemoryContext caller;
	Oid			types[1] = {UUIDOID};
	Datum		values[1];
	bool		isnull;
	int			n;

	caller = tx_begin();
	values[0] = UUIDPGetDatum(dataset_id);
	n = run("SELECT id::text, label FROM training.classes "
			"WHERE dataset_id = $1 AND active "
			"  AND (expiration_date IS NULL OR expiration_date > now()) "
			"ORDER BY time_created, id",
			1, types, values, NULL, SPI_OK_SELECT);
	*ids = MemoryContextAlloc(caller, sizeof(char *) * (n + 1));
	*labels = MemoryContextAlloc(caller, sizeof(char *) * (n + 1));
	for (int i = 0; i < n; i++)
	{
		(*ids)[i] = col_text(i, 1, caller);
		(*labels)[i] = col_text(i, 2, caller);
	}
	(*ids)[n] = (*labels)[n] = NULL;
	/* How many images will be streamed, for the pipeline's progress while loading. */
	run("SELECT count(*) FROM training.images i JOIN training.classes c ON c.id = i.class_id "
		"WHERE c.dataset_id = $1 AND c.active AND i.active "
		"  AND (c.expiration_date IS NULL OR c.expiration_date > now())",
		1, types, values, NULL, SPI_OK_SELECT);
	*nimages = (size_t) DatumGetInt64(col(0, 1, &isnull));
	tx_end(caller);
	return n;
}

/* A face_box column: true and box filled when it holds four integers. */
static bool
read_box(Datum d, bool isnull, int *box)
{
	ArrayType  *a;
	Datum	   *elems;
	bool	   *enulls;
	int			ne;

	if (isnull)
		return false;
	a = DatumGetArrayTypeP(d);
	deconstruct_array(a, INT4OID, 4, true, TYPALIGN_INT, &elems, &enulls, &ne);
	if (ne != 4 || enulls[0] || enulls[1] || enulls[2] || enulls[3])
		return false;
	for (int k = 0; k < 4; k++)
		box[k] = DatumGetInt32(elems[k]);
	return true;
}

char *
store_api_dataset_owner(Datum dataset_id)
{
	Oid			types[1] = {UUIDOID};
	Datum		values[1] = {dataset_id};
	char	   *owner;

	if (run("SELECT owner FROM training.datasets WHERE id = $1", 1, types, values, NULL, SPI_OK_SELECT) == 0)
		return NULL;
	owner = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return owner ? strcpy(SPI_palloc(strlen(owner) + 1), owner) : NULL;
}

char *
store_api_dataset_classes(Datum dataset_id, Datum **class_ids, int *nclasses)
{
	Oid			types[1] = {UUIDOID};
	Datum		values[1] = {dataset_id};
	bool		isnull;
	char	   *type;
	int			n;

	*nclasses = 0;
	if (run("SELECT type FROM training.datasets WHERE id = $1", 1, types, values, NULL, SPI_OK_SELECT) == 0)
		return NULL;
	type = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (type == NULL)
		return NULL;
	/* As a training reads them (store_load_classes). */
	n = run("SELECT id FROM training.classes WHERE dataset_id = $1 AND active "
			"   AND (expiration_date IS NULL OR expiration_date > now()) "
			" ORDER BY time_created, id",
			1, types, values, NULL, SPI_OK_SELECT);
	*class_ids = SPI_palloc(sizeof(Datum) * (n + 1));
	for (int i = 0; i < n; i++)
		(*class_ids)[i] = SPI_datumTransfer(col(i, 1, &isnull), false, 16);
	*nclasses = n;
	return strcpy(SPI_palloc(strlen(type) + 1), type);
}

/* A float4 matrix column: rows x cols floats (cols fixed), or false when it is not one. */
static bool
float_matrix(Datum d, int cols, int max_rows, int *rows, const float **data)
{
	ArrayType  *a = DatumGetArrayTypeP(d);

	*rows = 0;
	*data = NULL;
	if (ARR_ELEMTYPE(a) != FLOAT4OID || ARR_HASNULL(a))
		return false;
	if (ARR_NDIM(a) == 0)
		return true;
	if (ARR_NDIM(a) != 2 || ARR_DIMS(a)[0] > max_rows || (cols > 0 && ARR_DIMS(a)[1] != cols))
		return false;
	*rows = ARR_DIMS(a)[0];
	*data = (const float *) ARR_DATA_PTR(a);
	return true;
}

/*
 * The kept measurement in columns first..first+6 of a result row (status, message, max_pixels,
 * width, height, regions, features), features copied into mcxt. False when there is none or it
 * is malformed (then it is measured again).
 */
static bool
measure_from_row(int row, int first, tr_measure *m, MemoryContext mcxt)
{
	bool		isnull;
	Datum		d = col(row, first, &isnull);
	const char *status;
	const float *fl;
	int			n,
				nf;

	memset(m, 0, sizeof(*m));
	if (isnull)
		return false;
	status = TextDatumGetCString(d);
	if (tr_measure_status_parse(status, &m->status) != 0)
		return false;
	d = col(row, first + 1, &isnull);
	if (!isnull)
		strlcpy(m->message, TextDatumGetCString(d), sizeof(m->message));
	m->max_pixels = (size_t) DatumGetInt64(col(row, first + 2, &isnull));
	m->width = DatumGetInt32(col(row, first + 3, &isnull));
	m->height = DatumGetInt32(col(row, first + 4, &isnull));
	if (!float_matrix(col(row, first + 5, &isnull), TR_REGION_FLOATS, TR_MEASURE_REGIONS, &n, &fl) ||
		tr_measure_set_regions(m, fl, n) != 0)
		return false;
	if (m->status == TR_SKIP_NONE && n == 0)
		return false;
	d = col(row, first + 6, &isnull);
	if (!isnull)
	{
		ArrayType  *a = DatumGetArrayTypeP(d);

		if (!float_matrix(d, 0, TR_MEASURE_REGIONS, &nf, &fl) || nf != n || ARR_NDIM(a) != 2)
			return false;
		m->dim = ARR_DIMS(a)[1];
		m->features = MemoryContextAlloc(mcxt, sizeof(float) * n * m->dim);
		memcpy(m->features, fl, sizeof(float) * n * m->dim);
	}
	return true;
}

/* A rows x cols float4[] (rows 0: an empty array). */
static Datum
float_matrix_datum(const float *v, int rows, int cols)
{
	Datum	   *elems;
	int			dims[2] = {rows, cols};
	int			lbs[2] = {1, 1};

	if (rows == 0)
		return PointerGetDatum(construct_empty_array(FLOAT4OID));
	elems = palloc(sizeof(Datum) * rows * cols);
	for (int i = 0; i < rows * cols; i++)
		elems[i] = Float4GetDatum(v[i]);
	return PointerGetDatum(construct_md_array(elems, NULL, 2, dims, lbs, FLOAT4OID, 4, true, TYPALIGN_INT));
}

bool
store_measure_serves(const TrImageRow *row, const TrBatchNeeds *needs)
{
	return row->has_measure &&
		tr_measure_serves(&row->measure, needs->dim, needs->max_pixels, needs->gender);
}

/* A uuid[] of the rows' ids (those with pick[i], or all when pick is NULL). */
static Datum
ids_array(const TrImageRow *rows, int n, const bool *pick)
{
	Datum	   *ids = palloc(sizeof(Datum) * (n + 1));
	int			k = 0;

	for (int i = 0; i < n; i++)
		if (pick == NULL || pick[i])
			ids[k++] = UUIDPGetDatum(&rows[i].id);
	return PointerGetDatum(construct_array(ids, k, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

/* The images' columns 1..4 (id, time_created, content_version, face_box) of a result into rows. */
static void
image_columns(int n, TrImageRow *rows)
{
	for (int i = 0; i < n; i++)
	{
		TrImageRow *r = &rows[i];
		bool		isnull;
		Datum		d;

		r->id = *DatumGetUUIDP(col(i, 1, &isnull));
		r->time_created = DatumGetTimestampTz(col(i, 2, &isnull));
		r->content_version = DatumGetInt64(col(i, 3, &isnull));
		d = col(i, 4, &isnull);
		r->has_box = read_box(d, isnull, r->box);
	}
}

/*
 * Read the data of the rows whose measurement does not serve (with the current rights), with
 * their content_version and face box as of this read (a newer snapshot than the rows'): the
 * measurement is then made of one version. Rows deleted meanwhile are dropped; returns how many
 * rows are left.
 */
static int
fetch_data(TrImageRow *rows, int n, const TrBatchNeeds *needs, MemoryContext mcxt)
{
	Oid			types[1] = {UUIDARRAYOID};
	Datum		values[1];
	bool	   *pick = palloc0(sizeof(bool) * (n + 1));
	int			npick = 0,
				nd,
				kept = 0;
	MemoryContext spi_cxt;

	for (int i = 0; i < n; i++)
		npick += pick[i] = !store_measure_serves(&rows[i], needs);
	if (npick == 0)
		return n;
	values[0] = ids_array(rows, n, pick);
	nd = run("SELECT id, data, content_version, face_box FROM training.images WHERE id = ANY ($1)",
			 1, types, values, NULL, SPI_OK_SELECT);
	spi_cxt = MemoryContextSwitchTo(mcxt);
	for (int j = 0; j < nd; j++)
	{
		bool		isnull;
		pg_uuid_t  *id = DatumGetUUIDP(col(j, 1, &isnull));

		for (int i = 0; i < n; i++)
			if (pick[i] && memcmp(id, &rows[i].id, sizeof(pg_uuid_t)) == 0)
			{
				Datum		box;
				int64		version = DatumGetInt64(col(j, 3, &isnull));

				rows[i].data = DatumGetByteaPCopy(col(j, 2, &isnull));
				if (version != rows[i].content_version)
					rows[i].has_measure = false;
				rows[i].content_version = version;
				box = col(j, 4, &isnull);
				rows[i].has_box = read_box(box, isnull, rows[i].box);
			}
	}
	MemoryContextSwitchTo(spi_cxt);
	SPI_freetuptable(SPI_tuptable);
	for (int i = 0; i < n; i++)
		if (!pick[i] || rows[i].data != NULL)
			rows[kept++] = rows[i];
	return kept;
}

static void
advance_key(TrImageKey *key, const TrImageRow *rows, int n)
{
	if (n > 0)
	{
		key->started = true;
		key->time_created = rows[n - 1].time_created;
		key->id = rows[n - 1].id;
	}
}

int
store_image_batch(const char *class_id, TrImageKey *key, int limit, const TrBatchNeeds *needs,
				  TrImageRow **rows, int *fetched)
{
	MemoryContext caller = tx_begin();
	Oid			types[5] = {UUIDOID, TIMESTAMPTZOID, UUIDOID, INT4OID, TEXTOID};
	Datum		values[5];
	pg_uuid_t	zero;
	int			n;
	MemoryContext spi_cxt;

	memset(&zero, 0, sizeof(zero));
	values[0] = DirectFunctionCall1(uuid_in, CStringGetDatum(class_id));
	values[1] = TimestampTzGetDatum(key->started ? key->time_created : DT_NOBEGIN);
	values[2] = UUIDPGetDatum(key->started ? &key->id : &zero);
	values[3] = Int32GetDatum(limit);
	values[4] = CStringGetTextDatum(needs->kind);
	n = run("SELECT i.id, i.time_created, i.content_version, i.face_box, "
			"       f.status, f.message, f.max_pixels, f.width, f.height, f.regions, f.features "
			"  FROM training.images i "
			"  LEFT JOIN training.image_features f "
			"         ON f.image_id = i.id AND f.kind = $5 AND f.content_version = i.content_version "
			" WHERE i.class_id = $1 AND i.active AND (i.time_created, i.id) > ($2, $3) "
			" ORDER BY i.time_created, i.id LIMIT $4",
			5, types, values, NULL, SPI_OK_SELECT);
	/* Detoasted values in the caller's context too: a long stream must not grow SPI's. */
	spi_cxt = MemoryContextSwitchTo(caller);
	*rows = palloc0(sizeof(TrImageRow) * (n + 1));
	image_columns(n, *rows);
	for (int i = 0; i < n; i++)
		(*rows)[i].has_measure = measure_from_row(i, 5, &(*rows)[i].measure, caller);
	advance_key(key, *rows, n);
	MemoryContextSwitchTo(spi_cxt);
	SPI_freetuptable(SPI_tuptable);
	*fetched = n;
	n = fetch_data(*rows, n, needs, caller);
	tx_end(caller);
	return n;
}

/* Run as the owner of the extension's tables (the store is not granted to tenants); restore with as_caller. */
static void
as_owner(Oid *save_user, int *save_sec)
{
	bool		isnull;

	run("SELECT relowner FROM pg_catalog.pg_class WHERE oid = 'training.image_features'::pg_catalog.regclass",
		0, NULL, NULL, NULL, SPI_OK_SELECT);
	GetUserIdAndSecContext(save_user, save_sec);
	SetUserIdAndSecContext(DatumGetObjectId(col(0, 1, &isnull)),
						   *save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	SPI_freetuptable(SPI_tuptable);
}

static void
as_caller(Oid save_user, int save_sec)
{
	SetUserIdAndSecContext(save_user, save_sec);
}

int
store_api_image_batch(Datum class_id, TrImageKey *key, int limit, const TrBatchNeeds *needs,
					  TrImageRow **rows, int *fetched, MemoryContext mcxt)
{
	Oid			types[4] = {UUIDOID, TIMESTAMPTZOID, UUIDOID, INT4OID};
	Oid			ftypes[2] = {UUIDARRAYOID, TEXTOID};
	Datum		values[4];
	pg_uuid_t	zero;
	int			n;
	Oid			save_user;
	int			save_sec;

	memset(&zero, 0, sizeof(zero));
	values[0] = class_id;
	values[1] = TimestampTzGetDatum(key->started ? key->time_created : DT_NOBEGIN);
	values[2] = UUIDPGetDatum(key->started ? &key->id : &zero);
	values[3] = Int32GetDatum(limit);
	/* The images with the caller's rights: row-level security decides what it may read. */
	n = run("SELECT i.id, i.time_created, i.content_version, i.face_box FROM training.images i "
			" WHERE i.class_id = $1 AND i.active AND (i.time_created, i.id) > ($2, $3) "
			" ORDER BY i.time_created, i.id LIMIT $4",
			4, types, values, NULL, SPI_OK_SELECT);
	MemoryContextSwitchTo(mcxt);
	*rows = palloc0(sizeof(TrImageRow) * (n + 1));
	image_columns(n, *rows);
	advance_key(key, *rows, n);
	SPI_freetuptable(SPI_tuptable);
	*fetched = n;
	if (n > 0)
	{
		int			nf;

		/* Their kept measurements with the store owner's rights (only these images' rows). */
		values[0] = ids_array(*rows, n, NULL);
		values[1] = CStringGetTextDatum(needs->kind);
		as_owner(&save_user, &save_sec);
		nf = run("SELECT f.image_id, f.content_version, f.status, f.message, f.max_pixels, f.width, "
				 "       f.height, f.regions, f.features "
				 "  FROM training.image_features f WHERE f.image_id = ANY ($1) AND f.kind = $2",
				 2, ftypes, values, NULL, SPI_OK_SELECT);
		as_caller(save_user, save_sec);
		MemoryContextSwitchTo(mcxt);
		for (int j = 0; j < nf; j++)
		{
			bool		isnull;
			pg_uuid_t  *id = DatumGetUUIDP(col(j, 1, &isnull));
			int64		version = DatumGetInt64(col(j, 2, &isnull));

			for (int i = 0; i < n; i++)
				if (memcmp(id, &(*rows)[i].id, sizeof(pg_uuid_t)) == 0 &&
					version == (*rows)[i].content_version)
					(*rows)[i].has_measure = measure_from_row(j, 3, &(*rows)[i].measure, mcxt);
		}
		SPI_freetuptable(SPI_tuptable);
		/* The data of the others, with the caller's rights. */
		n = fetch_data(*rows, n, needs, mcxt);
	}
	MemoryContextSwitchTo(mcxt);
	return n;
}

/*
 * Images without a kept measurement of their current content for the kind of their dataset's
 * type (faces: none when no face kind is usable), or a face's without the gender a training
 * leaves out; after $3, $4 in (time_created, id) order, or before them, from the newest; of
 * dataset $7 only, unless it is null.
 */
#define UNMEASURED_SQL(CMP, DIR) \
	"SELECT i.id, i.time_created, i.content_version, i.face_box, i.data, d.type " \
	"  FROM training.images i " \
	"  JOIN training.classes c ON c.id = i.class_id " \
	"  JOIN training.datasets d ON d.id = c.dataset_id " \
	" WHERE (i.time_created, i.id) " CMP " ($3, $4) AND ($7::uuid IS NULL OR d.id = $7) " \
	"   AND (d.type <> 'face' OR $1 IS NOT NULL) " \
	"   AND NOT EXISTS (SELECT FROM training.image_features f " \
	"                    WHERE f.image_id = i.id AND f.content_version = i.content_version " \
	"                      AND f.kind = CASE d.type WHEN 'face' THEN $1 ELSE $2 END " \
	"                      AND NOT ($6 AND d.type = 'face' AND f.status = 'measured' " \
	"                               AND f.regions[1][8] = -2)) " \
	" ORDER BY i.time_created " DIR ", i.id " DIR " LIMIT $5"
static const char *unmeasured_sql = UNMEASURED_SQL(">", "ASC");
static const char *unmeasured_desc_sql = UNMEASURED_SQL("<", "DESC");

int
store_unmeasured_batch(const char *face_kind, const char *landmark_kind, bool face_gender,
					   const pg_uuid_t *dataset, bool descending, TrImageKey *key, int limit,
					   TrImageRow **rows)
{
	MemoryContext caller;
	MemoryContext spi_cxt;
	Oid			types[7] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, UUIDOID, INT4OID, BOOLOID, UUIDOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	pg_uuid_t	zero;
	int			n;

	memset(&zero, 0, sizeof(zero));
	caller = tx_begin();
	values[0] = face_kind ? CStringGetTextDatum(face_kind) : (Datum) 0;
	nulls[0] = face_kind ? ' ' : 'n';
	values[1] = CStringGetTextDatum(landmark_kind);
	values[2] = TimestampTzGetDatum(key->started ? key->time_created : descending ? DT_NOEND : DT_NOBEGIN);
	if (descending && !key->started)
		memset(&zero, 0xff, sizeof(zero));
	values[3] = UUIDPGetDatum(key->started ? &key->id : &zero);
	values[4] = Int32GetDatum(limit);
	values[5] = BoolGetDatum(face_gender);
	values[6] = dataset ? UUIDPGetDatum(dataset) : (Datum) 0;
	nulls[6] = dataset ? ' ' : 'n';
	n = run(descending ? unmeasured_desc_sql : unmeasured_sql, 7, types, values, nulls, SPI_OK_SELECT);
	spi_cxt = MemoryContextSwitchTo(caller);
	*rows = palloc0(sizeof(TrImageRow) * (n + 1));
	image_columns(n, *rows);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		(*rows)[i].data = DatumGetByteaPCopy(col(i, 5, &isnull));
		strlcpy((*rows)[i].type, TextDatumGetCString(col(i, 6, &isnull)), sizeof((*rows)[i].type));
	}
	advance_key(key, *rows, n);
	MemoryContextSwitchTo(spi_cxt);
	tx_end(caller);
	return n;
}

/* Keep one measurement (locked_sql: the statement, which waits for the image's lock or not). */
static int
keep_one(const char *sql, const TrKeep *k)
{
	Oid			types[10] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, INT4OID, INT4OID,
	FLOAT4ARRAYOID, FLOAT4ARRAYOID, INT8OID};
	Datum		values[10];
	char		nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	const tr_measure *m = &k->measure;
	float		regions[TR_MEASURE_REGIONS * TR_REGION_FLOATS];

	tr_measure_region_floats(m, regions);
	values[0] = UUIDPGetDatum(&k->id);
	values[1] = CStringGetTextDatum(k->kind);
	values[2] = CStringGetTextDatum(tr_measure_status_name(m->status));
	values[3] = CStringGetTextDatum(m->status == TR_SKIP_NONE ? "" : m->message);
	values[4] = Int64GetDatum((int64) m->max_pixels);
	values[5] = Int32GetDatum(m->width);
	values[6] = Int32GetDatum(m->height);
	values[7] = float_matrix_datum(regions, m->nregions, TR_REGION_FLOATS);
	if (m->features != NULL && m->dim > 0 && m->nregions > 0)
		values[8] = float_matrix_datum(m->features, m->nregions, m->dim);
	else
		nulls[8] = 'n';
	values[9] = Int64GetDatum(k->content_version);
	run(sql, 10, types, values, nulls, SPI_OK_SELECT);
	{
		bool		isnull;
		Datum		d = col(0, 1, &isnull);

		return !isnull && DatumGetBool(d) ? 1 : 0;
	}
}

/* Kept for the content_version it was measured from, while the image still has it (training._keep_measure). */
static const char *keep_sql = "SELECT training._keep_measure($1, $2, $10, $3, $4, $5, $6, $7, $8, $9)";

int
store_api_keep_measures(const TrKeep *keep, int n)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			save_user;
	int			save_sec;
	int			kept = 0;

	/* A read-only transaction (or a standby) answers without keeping. */
	if (n <= 0 || XactReadOnly || RecoveryInProgress())
		return 0;
	/* Tenants read the store only: write it as the owner of the extension's tables. */
	as_owner(&save_user, &save_sec);
	for (int i = 0; i < n; i++)
	{
		MemoryContextSwitchTo(cxt);
		kept += keep_one(keep_sql, &keep[i]);
	}
	as_caller(save_user, save_sec);
	MemoryContextSwitchTo(cxt);
	return kept;
}

int
store_keep_measures(const TrKeep *keep, int n)
{
	MemoryContext caller;
	int			kept = 0;

	if (n <= 0)
		return 0;
	caller = tx_begin();
	for (int i = 0; i < n; i++)
		kept += keep_one(keep_sql, &keep[i]);
	tx_end(caller);
	return kept;
}

/*
 * Is the training still processing by this worker, within its lease? (A plain read: waits for
 * no lock.)
 */
static bool
still_ours(const pg_uuid_t *id, int pid)
{
	Oid			types[2] = {UUIDOID, INT4OID};
	Datum		values[2];

	values[0] = UUIDPGetDatum(id);
	values[1] = Int32GetDatum(pid);
	return run("SELECT 1 FROM training.trainings WHERE id = $1 AND state = 'processing' AND worker_pid = $2 "
			   "  AND lease_expires > clock_timestamp()",
			   2, types, values, NULL, SPI_OK_SELECT) == 1;
}

TrStoreResult
store_progress(const pg_uuid_t *id, int pid, double progress, const char *stage)
{
	MemoryContext caller;
	Oid			types[4] = {UUIDOID, INT4OID, FLOAT8OID, TEXTOID};
	Datum		values[4];
	int			n;

	caller = tx_begin();
	values[0] = UUIDPGetDatum(id);
	values[1] = Int32GetDatum(pid);
	values[2] = Float8GetDatum(progress);
	values[3] = CStringGetTextDatum(stage);
	n = run("UPDATE training.trainings SET "
			"  progress = greatest(progress, least(greatest($3, 0), 1)), "
			"  duration = extract(epoch FROM clock_timestamp() - time_started)::float8, "
			"  stage = $4, lease_expires = clock_timestamp() + training._lease_timeout() "
			"WHERE id = (SELECT x.id FROM training.trainings x "
			"            WHERE x.id = $1 AND x.state = 'processing' AND x.worker_pid = $2 "
			"              AND x.lease_expires > clock_timestamp() "
			"            FOR UPDATE SKIP LOCKED)",
			4, types, values, NULL, SPI_OK_UPDATE);
	if (n == 0)
		n = still_ours(id, pid) ? -1 : 0;
	tx_end(caller);
	return n == 1 ? TR_STORE_OK : n < 0 ? TR_STORE_BUSY : TR_STORE_GONE;
}

TrStoreResult
store_finish(const pg_uuid_t *id, int pid, const void *parameters, size_t parameters_len,
			 Jsonb *metrics, int *version)
{
	MemoryContext caller;
	Oid			types[4] = {UUIDOID, INT4OID, BYTEAOID, JSONBOID};
	Datum		values[4];
	bytea	   *params;
	bool		isnull;
	Datum		d;

	caller = tx_begin();
	params = palloc(VARHDRSZ + parameters_len);
	SET_VARSIZE(params, VARHDRSZ + parameters_len);
	if (parameters_len > 0)
		memcpy(VARDATA(params), parameters, parameters_len);
	values[0] = UUIDPGetDatum(id);
	values[1] = Int32GetDatum(pid);
	values[2] = PointerGetDatum(params);
	values[3] = JsonbPGetDatum(metrics);
	run("SELECT training._worker_finish($1, $2, $3, $4)", 4, types, values, NULL, SPI_OK_SELECT);
	d = col(0, 1, &isnull);
	if (!isnull)
		*version = DatumGetInt32(d);
	tx_end(caller);
	if (isnull)
		return TR_STORE_GONE;
	return *version < 0 ? TR_STORE_BUSY : TR_STORE_OK;
}

TrStoreResult
store_fail(const pg_uuid_t *id, int pid, const char *error)
{
	MemoryContext caller;
	Oid			types[3] = {UUIDOID, INT4OID, TEXTOID};
	Datum		values[3];
	int			n;

	caller = tx_begin();
	values[0] = UUIDPGetDatum(id);
	values[1] = Int32GetDatum(pid);
	values[2] = CStringGetTextDatum(error && error[0] ? error : "training failed");
	/* A row another session holds is skipped, never waited for: recovery finds it later. */
	n = run("UPDATE training.trainings SET state = 'failed', error = $3, stage = 'failed', "
			"  duration = extract(epoch FROM clock_timestamp() - time_started)::float8, "
			"  time_completed = clock_timestamp(), worker_pid = NULL, worker = NULL, lease_expires = NULL "
			"WHERE id = (SELECT x.id FROM training.trainings x "
			"            WHERE x.id = $1 AND x.state = 'processing' AND x.worker_pid = $2 "
			"              AND x.lease_expires > clock_timestamp() "
			"            FOR UPDATE SKIP LOCKED)",
			3, types, values, NULL, SPI_OK_UPDATE);
	if (n == 0 && still_ours(id, pid))
		n = -1;
	tx_end(caller);
	return n == 1 ? TR_STORE_OK : n < 0 ? TR_STORE_BUSY : TR_STORE_GONE;
}

TrStoreResult
store_release(const pg_uuid_t *id, int attempt, int max_attempts, const char *cause, bool *requeued)
{
	MemoryContext caller;
	int			n;

	caller = tx_begin();
	n = release_one(id, attempt, max_attempts, cause);
	tx_end(caller);
	*requeued = (n == 1);
	return n != 0 ? TR_STORE_OK : TR_STORE_GONE;
}

/* ---------------------------------------------------------------------------------------------
 * The API's reads, with the caller's rights
 * ---------------------------------------------------------------------------------------------
 */

/* Column names in the enum orders of store.h. */
static const char *const training_columns[T_NCOLS] = {
	"id", "type", "state", "progress", "duration", "error",
	"time_created", "time_started", "time_completed",
	"output_model_name", "config", "output_model_description", "output_model_changelog",
	"output_model_id", "output_model_version", "source_dataset_id", "output_model_version_id"
};
static const char *const dataset_columns[D_NCOLS] = {
	"id", "name", "description", "version", "type", "time_created", "time_updated",
	"number_of_classes", "number_of_active_classes", "number_of_images", "number_of_active_images",
	"evaluation_result", "evaluation_state", "issues", "preview_images", "earliest_expiration",
	"number_of_trainable_classes"
};
/* SPI queries, each returning its columns in the enum order. */
typedef enum SpiQuery
{
	SQ_TRAINING,				/* $1 training id: the row (read by column name) */
	SQ_DATASET,					/* $1 dataset id: the row (read by column name) */
	SQ_OBJECT,					/* $1 training id: object, object_stale_at, output_model_version_id, state */
	SQ_MODEL,					/* $1 model id, $2 version: M_NCOLS */
	SQ_EXPIRED,					/* $1 dataset id: 2 */
	SQ_SNAPSHOT,				/* $1 training id: 1 */
	SQ_RESOLVE,					/* $1 model reference: version id, number, model name */
	SQ_RESOLVE_ERROR,			/* $1 model reference: raises resolve_model_version()'s error */
	SQ_PARAMETERS,				/* $1 version id: 1 */
	SQ_REFERENCE,				/* $1 class id: 1 */
	SQ_TRAININGS_TOTAL,			/* [$1 state]: count */
	SQ_TRAININGS_TOTAL_STATE,
	SQ_TRAININGS_PAGE,			/* $1 limit, $2 offset [, $3 state]: id, object, object_stale_at, */
	SQ_TRAININGS_PAGE_STATE,	/* output_model_version_id, in list order */
	/* The trainings_before trigger's (rw: each on a fresh snapshot, may lock rows). */
	SQ_DATASET_READ,			/* $1 dataset id, $2 owner, $3 model name, $4 training id: the */
	SQ_DATASET_READ_FACE,		/* dataset's row, model type, name queued (TrNameGuess) */
	SQ_DATASET_READ_LANDMARK,
	SQ_DATASET_READ_MODEL,
	SQ_EXPIRED_TRAINABLE,		/* $1 dataset id: its trainable classes that expired */
	SQ_NAME_CHECK,				/* $1 owner, $2 name, $3 type, $4 training id: model type, queued */
	SQ_DATASET_EXISTS,			/* $1 id: 1 */
	SQ_MODEL_EXISTS,
	SQ_VERSION_EXISTS,
	SQ_COUNT
} SpiQuery;

/*
 * The trainings_before trigger's read of a model name (owner, name): the type of the caller's
 * model of that name, and whether a waiting or processing training of the name has the other
 * type (other), training id excepted.
 */
/*
 * The type in the queued check is a constant in each branch: compared with an expression, it
 * would be estimated from the column's values (one type for most trainings: "all of them"), and
 * the planner would expect a match in the first rows of any index instead of using the partial
 * index on (owner, name, type) of the queue.
 */
#define QUEUED(owner, name, type, id) \
	"EXISTS (SELECT FROM training.trainings t" \
	"         WHERE t.owner = " owner " AND t.output_model_name = " name \
	"           AND t.state IN ('waiting', 'processing')" \
	"           AND t.type = '" type "' AND t.id IS DISTINCT FROM " id ")"
#define MODEL_TYPE(owner, name) \
	"(SELECT m.type FROM training.models m WHERE m.owner = " owner " AND m.name = " name ") AS tr_model_type"
#define NAME_READ(owner, name, other, id) \
	MODEL_TYPE(owner, name) "," \
	" CASE WHEN " other " = 'face' THEN " QUEUED(owner, name, "face", id) \
	"      ELSE " QUEUED(owner, name, "landmark", id) " END AS tr_name_queued"

#define PAGE_COLUMNS "SELECT t.id, t.object, t.object_stale_at, t.output_model_version_id, t.state FROM training.trainings t "

static const struct
{
	const char *sql;
	int			nargs;
	Oid			argtypes[4];
	int			ncols;
	bool		rw;				/* not read-only: a fresh snapshot, row locks allowed */
}			queries[SQ_COUNT] = {
	[SQ_TRAINING] = {
		"SELECT * FROM training.trainings t WHERE t.id = $1",
		1, {UUIDOID}, 0
	},
	[SQ_DATASET] = {
		"SELECT * FROM training.datasets d WHERE d.id = $1",
		1, {UUIDOID}, 0
	},
	[SQ_OBJECT] = {
		"SELECT t.object, t.object_stale_at, t.output_model_version_id, t.state"
		"  FROM training.trainings t WHERE t.id = $1",
		1, {UUIDOID}, 4
	},
	[SQ_MODEL] = {
		"SELECT m.id, m.name, m.description, m.type, m.time_created, m.time_updated, "
		"       v.version_number, v.id, v.changelog, v.metrics, v.training_id, v.time_created, "
		"       (SELECT count(*) FROM training.model_versions n WHERE n.model_id = m.id)"
		"  FROM training.models m"
		"  LEFT JOIN training.model_versions v ON v.model_id = m.id AND v.version_number = $2"
		" WHERE m.id = $1",
		2, {UUIDOID, INT4OID}, M_NCOLS
	},
	[SQ_EXPIRED] = {
		"SELECT count(*), coalesce(sum(x.number_of_active_images), 0)::bigint,"
		"       count(*) FILTER (WHERE x.number_of_active_images > 0)"
		"  FROM training.classes x"
		" WHERE x.dataset_id = $1 AND x.active AND x.expiration_date <= now()",
		1, {UUIDOID}, 3
	},
	[SQ_SNAPSHOT] = {
		"SELECT s.dataset FROM training.model_versions s WHERE s.training_id = $1 LIMIT 1",
		1, {UUIDOID}, 1
	},
	[SQ_RESOLVE] = {
		"SELECT v.id, v.version_number, m.name"
		"  FROM training.resolve_model($1) f"
		"  JOIN training.models m ON m.id = f.model_id"
		"  JOIN LATERAL (SELECT x.id, x.version_number FROM training.model_versions x"
		"                 WHERE x.model_id = f.model_id"
		"                   AND (f.version_number IS NULL OR x.version_number = f.version_number)"
		"                 ORDER BY x.version_number DESC LIMIT 1) v ON true",
		1, {TEXTOID}, 3
	},
	[SQ_RESOLVE_ERROR] = {
		"SELECT (training.resolve_model_version($1)).id",
		1, {TEXTOID}, 1
	},
	[SQ_PARAMETERS] = {
		"SELECT v.parameters FROM training.model_versions v WHERE v.id = $1",
		1, {UUIDOID}, 1
	},
	[SQ_REFERENCE] = {
		"SELECT c.reference FROM training.classes c WHERE c.id = $1",
		1, {UUIDOID}, 1
	},
	[SQ_TRAININGS_TOTAL] = {
		"SELECT coalesce(sum(c.n), 0)::bigint FROM training.training_counts c", 0, {InvalidOid}, 1
	},
	[SQ_TRAININGS_TOTAL_STATE] = {
		"SELECT coalesce(sum(c.n), 0)::bigint FROM training.training_counts c WHERE c.state = $1",
		1, {TEXTOID}, 1
	},
	[SQ_TRAININGS_PAGE] = {
		PAGE_COLUMNS "ORDER BY t.time_created, t.id LIMIT $1 OFFSET $2", 2, {INT8OID, INT8OID}, 5
	},
	[SQ_TRAININGS_PAGE_STATE] = {
		PAGE_COLUMNS "WHERE t.state = $3 ORDER BY t.time_created, t.id LIMIT $1 OFFSET $2",
		3, {INT8OID, INT8OID, TEXTOID}, 5
	},
	[SQ_DATASET_READ] = {
		"SELECT d.*, " NAME_READ("$2", "$3", "CASE d.type WHEN 'face' THEN 'landmark' ELSE 'face' END", "$4")
		"  FROM training.datasets d WHERE d.id = $1",
		4, {UUIDOID, NAMEOID, TEXTOID, UUIDOID}, 0, true
	},
	[SQ_DATASET_READ_FACE] = {
		"SELECT d.*, " MODEL_TYPE("$2", "$3") ", " QUEUED("$2", "$3", "landmark", "$4") " AS tr_name_queued"
		"  FROM training.datasets d WHERE d.id = $1",
		4, {UUIDOID, NAMEOID, TEXTOID, UUIDOID}, 0, true
	},
	[SQ_DATASET_READ_LANDMARK] = {
		"SELECT d.*, " MODEL_TYPE("$2", "$3") ", " QUEUED("$2", "$3", "face", "$4") " AS tr_name_queued"
		"  FROM training.datasets d WHERE d.id = $1",
		4, {UUIDOID, NAMEOID, TEXTOID, UUIDOID}, 0, true
	},
	[SQ_DATASET_READ_MODEL] = {
		"SELECT d.*, " MODEL_TYPE("$2", "$3") ", false AS tr_name_queued"
		"  FROM training.datasets d WHERE d.id = $1",
		4, {UUIDOID, NAMEOID, TEXTOID, UUIDOID}, 0, true
	},
	[SQ_EXPIRED_TRAINABLE] = {
		"SELECT count(*) FROM training.classes c"
		" WHERE c.dataset_id = $1 AND c.active AND c.number_of_active_images > 0"
		"   AND c.expiration_date <= now()",
		1, {UUIDOID}, 1, true
	},
	[SQ_NAME_CHECK] = {
		"SELECT " NAME_READ("$1", "$2", "$3", "$4"),
		4, {NAMEOID, TEXTOID, TEXTOID, UUIDOID}, 2, true
	},
	[SQ_DATASET_EXISTS] = {
		"SELECT 1 FROM training.datasets d WHERE d.id = $1", 1, {UUIDOID}, 1, true
	},
	[SQ_MODEL_EXISTS] = {
		"SELECT 1 FROM training.models m WHERE m.id = $1", 1, {UUIDOID}, 1, true
	},
	[SQ_VERSION_EXISTS] = {
		"SELECT 1 FROM training.model_versions v WHERE v.id = $1", 1, {UUIDOID}, 1, true
	},
};

/*
 * Run query q (on its kept plan) for up to tcount rows (0: all) on snapshot (rw queries only;
 * InvalidSnapshot: a fresh one for an rw query, as SPI takes); how many.
 */
static uint64
spi_exec_at(SpiQuery q, Datum *args, const char *nulls, long tcount, Snapshot snapshot)
{
	SPIPlanPtr	plan = kept_plan(queries[q].sql, queries[q].nargs, (Oid *) queries[q].argtypes);
	int			rc;

	Assert(snapshot == InvalidSnapshot || queries[q].rw);
	if (snapshot != InvalidSnapshot)
		rc = SPI_execute_snapshot(plan, args, nulls, snapshot, InvalidSnapshot, false, false, tcount);
	else
		rc = SPI_execute_plan(plan, args, nulls, !queries[q].rw, tcount);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "training: API query failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

static uint64
spi_exec_n(SpiQuery q, Datum *args, const char *nulls, long tcount)
{
	return spi_exec_at(q, args, nulls, tcount, InvalidSnapshot);
}

/* Run query q for its first row; true when there is one. */
static bool
spi_exec(SpiQuery q, Datum *args, const char *nulls)
{
	return spi_exec_n(q, args, nulls, 1) > 0;
}

/* Run query q and deform its row into values/nulls; false when there is none. */
static bool
spi_row(SpiQuery q, Datum *args, const char *nulls, Datum *values, bool *isnull)
{
	if (!spi_exec(q, args, nulls))
		return false;
	if (SPI_tuptable->tupdesc->natts != queries[q].ncols)
		elog(ERROR, "training: API query returned %d columns, expected %d",
			 SPI_tuptable->tupdesc->natts, queries[q].ncols);
	heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, values, isnull);
	return true;
}

/*
 * Attribute numbers of named columns in the rows of a `SELECT *` query, cached per query. The
 * cache is checked by name on every use: an upgrade that adds, drops or renames a column
 * changes the row the saved plan returns after it is replanned, and the map follows.
 */
typedef struct ColumnMap
{
	const char *const *names;
	int			ncols;
	int			natts;
	AttrNumber	attnums[32];		/* >= T_NCOLS, D_NCOLS */
} ColumnMap;

static bool
column_map_valid(const ColumnMap *m, TupleDesc desc)
{
	if (m->natts != desc->natts)
		return false;
	for (int i = 0; i < m->ncols; i++)
		if (strcmp(NameStr(TupleDescAttr(desc, m->attnums[i] - 1)->attname), m->names[i]) != 0)
			return false;
	return true;
}

static const AttrNumber *
column_map(ColumnMap *m, TupleDesc desc, const char *const *names, int ncols)
{
	Assert(ncols <= (int) lengthof(m->attnums));
	if (m->names == names && column_map_valid(m, desc))
		return m->attnums;
	for (int i = 0; i < ncols; i++)
	{
		int			att = SPI_fnumber(desc, names[i]);

		if (att <= 0)
			elog(ERROR, "training: column \"%s\" is missing from the catalog", names[i]);
		m->attnums[i] = att;
	}
	m->names = names;
	m->ncols = ncols;
	m->natts = desc->natts;
	return m->attnums;
}

static bool spi_named_row_at(SpiQuery q, Datum *args, const char *argnulls, const char *const *names,
							 int ncols, Datum *values, bool *isnull, Snapshot snapshot);

/*
 * Run a `SELECT *` query q by primary key and copy the named columns of its row into
 * values/nulls, in the order of names; false when there is no row the caller can see.
 */
static bool
spi_named_row_args(SpiQuery q, Datum *args, const char *argnulls, const char *const *names,
				   int ncols, Datum *values, bool *isnull)
{
	return spi_named_row_at(q, args, argnulls, names, ncols, values, isnull, InvalidSnapshot);
}

/* The same on snapshot (see spi_exec_at). */
static bool
spi_named_row_at(SpiQuery q, Datum *args, const char *argnulls, const char *const *names,
				 int ncols, Datum *values, bool *isnull, Snapshot snapshot)
{
	static ColumnMap maps[SQ_COUNT];
	TupleDesc	desc;
	const AttrNumber *attnums;
	Datum	   *v;
	bool	   *n;

	if (spi_exec_at(q, args, argnulls, 1, snapshot) == 0)
		return false;
	desc = SPI_tuptable->tupdesc;
	attnums = column_map(&maps[q], desc, names, ncols);
	v = palloc(desc->natts * sizeof(Datum));
	n = palloc(desc->natts * sizeof(bool));
	heap_deform_tuple(SPI_tuptable->vals[0], desc, v, n);
	for (int i = 0; i < ncols; i++)
	{
		values[i] = v[attnums[i] - 1];
		isnull[i] = n[attnums[i] - 1];
	}
	return true;
}

/* spi_named_row_args() of a query by primary key ($1 id). */
static bool
spi_named_row(SpiQuery q, Datum id, const char *const *names, int ncols,
			  Datum *values, bool *isnull)
{
	return spi_named_row_args(q, &id, NULL, names, ncols, values, isnull);
}

static void
set_all_null(Datum *values, bool *isnull, int n)
{
	for (int i = 0; i < n; i++)
	{
		values[i] = (Datum) 0;
		isnull[i] = true;
	}
}

bool
store_api_dataset(Datum id, ApiRow *row)
{
	return spi_named_row(SQ_DATASET, id, dataset_columns, D_NCOLS, row->values, row->nulls);
}

bool
store_api_training(Datum id, ApiRow *row, bool with_dataset)
{
	ApiRow		dataset = {row->values + T_NCOLS, row->nulls + T_NCOLS};

	if (!spi_named_row(SQ_TRAINING, id, training_columns, T_NCOLS, row->values, row->nulls))
		return false;
	if (!with_dataset || row->nulls[T_SOURCE_DATASET_ID]
		|| !store_api_dataset(row->values[T_SOURCE_DATASET_ID], &dataset))
		set_all_null(dataset.values, dataset.nulls, D_NCOLS);
	return true;
}

bool
store_api_training_tuple(HeapTuple tuple, TupleDesc desc, ApiRow *row, bool with_dataset,
						 const ApiRow *dataset_read)
{
	static ColumnMap map;
	const AttrNumber *attnums = column_map(&map, desc, training_columns, T_NCOLS);
	ApiRow		dataset = {row->values + T_NCOLS, row->nulls + T_NCOLS};

	for (int i = 0; i < T_NCOLS; i++)
		row->values[i] = heap_getattr(tuple, attnums[i], desc, &row->nulls[i]);
	if (with_dataset && dataset_read != NULL && !row->nulls[T_SOURCE_DATASET_ID])
	{
		memcpy(dataset.values, dataset_read->values, sizeof(Datum) * D_NCOLS);
		memcpy(dataset.nulls, dataset_read->nulls, sizeof(bool) * D_NCOLS);
		return true;
	}
	if (!with_dataset || row->nulls[T_SOURCE_DATASET_ID]
		|| !store_api_dataset(row->values[T_SOURCE_DATASET_ID], &dataset))
	{
		set_all_null(dataset.values, dataset.nulls, D_NCOLS);
		return false;
	}
	return true;
}

/*
 * Whether the catalog has trainings.object (0.3.0 on). A library newer than the catalog (between
 * its install and ALTER EXTENSION UPDATE) renders every object from the rows. Checked until true.
 */
static bool
catalog_keeps_objects(void)
{
	static bool keeps = false;

	if (!keeps)
	{
		Oid			nsp = get_namespace_oid("training", true);
		Oid			rel = OidIsValid(nsp) ? get_relname_relid("trainings", nsp) : InvalidOid;

		keeps = OidIsValid(rel) && get_attnum(rel, "object") != InvalidAttrNumber;
	}
	return keeps;
}

/* Fill ko from the object, object_stale_at, output_model_version_id and state of a row. */
static void
kept_from(const Datum *v, const bool *n, ApiKept *ko)
{
	bool		waiting = !n[3] && VARSIZE_ANY_EXHDR(DatumGetTextPP(v[3])) == 7
		&& memcmp(VARDATA_ANY(DatumGetTextPP(v[3])), "waiting", 7) == 0;

	ko->has_object = !n[0];
	ko->object = v[0];
	ko->waiting = waiting;
	/* Fresh: kept, no live Model object to add, and (waiting) no class expired since. */
	ko->fresh = ko->has_object && n[2]
		&& (!waiting || n[1] || DatumGetTimestampTz(v[1]) > GetCurrentTransactionStartTimestamp());
}

int
store_api_training_object(Datum id, ApiKept *ko)
{
	Datum		v[4];
	bool		n[4];

	memset(ko, 0, sizeof(*ko));
	if (!catalog_keeps_objects())
		return -1;
	if (!spi_row(SQ_OBJECT, &id, NULL, v, n))
		return 0;
	kept_from(v, n, ko);
	return 1;
}

bool
store_api_model(Datum id, Datum version, bool version_null, ApiRow *row)
{
	Datum		args[2] = {id, version};
	char		nulls[3] = {' ', version_null ? 'n' : ' ', '\0'};

	return spi_row(SQ_MODEL, args, nulls, row->values, row->nulls);
}

void
store_api_expired(Datum dataset_id, int64 *classes, int64 *active_images, int64 *trainable_classes)
{
	Datum		v[3];
	bool		n[3];

	*classes = 0;
	*active_images = 0;
	*trainable_classes = 0;
	if (spi_row(SQ_EXPIRED, &dataset_id, NULL, v, n))
	{
		*classes = n[0] ? 0 : DatumGetInt64(v[0]);
		*active_images = n[1] ? 0 : DatumGetInt64(v[1]);
		*trainable_classes = n[2] ? 0 : DatumGetInt64(v[2]);
	}
}

bool
store_api_snapshot(Datum training_id, Datum *dataset)
{
	bool		isnull;

	if (!spi_row(SQ_SNAPSHOT, &training_id, NULL, dataset, &isnull))
		return false;
	return !isnull;
}

void
store_api_resolve_version(text *model, Datum *version_id, int32 *number, char **model_name)
{
	Datum		arg = PointerGetDatum(model);
	Datum		v[3];
	bool		n[3];

	if (!spi_row(SQ_RESOLVE, &arg, NULL, v, n))
	{
		/* No version: let resolve_model_version() say why (P0002 with its hint). */
		(void) spi_row(SQ_RESOLVE_ERROR, &arg, NULL, v, n);
		elog(ERROR, "training: model reference resolved to no version");
	}
	*version_id = UUIDPGetDatum(DatumGetUUIDP(datumCopy(v[0], false, UUID_LEN)));
	*number = DatumGetInt32(v[1]);
	*model_name = TextDatumGetCString(v[2]);
}

bytea *
store_api_parameters(Datum version_id)
{
	Datum		v;
	bool		n;

	if (!spi_row(SQ_PARAMETERS, &version_id, NULL, &v, &n) || n)
		return NULL;
	return DatumGetByteaPCopy(v);
}

char *
store_api_class_reference(const char *class_id)
{
	Datum		arg = DirectFunctionCall1(uuid_in, CStringGetDatum(class_id));
	Datum		v;
	bool		n;

	if (!spi_row(SQ_REFERENCE, &arg, NULL, &v, &n) || n)
		return NULL;
	return TextDatumGetCString(v);
}

void
store_api_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "training: SPI_connect failed");
}

void
store_api_finish(void)
{
	SPI_finish();
}

int
store_attnum(TupleDesc desc, const char *name)
{
	return SPI_fnumber(desc, name);
}

int64
store_api_trainings_page(text *state, int64 limit, int64 offset, ApiPage *page)
{
	Datum		args[3] = {Int64GetDatum(limit), Int64GetDatum(offset), PointerGetDatum(state)};
	bool		isnull;
	uint64		n;
	int64		total;

	if (spi_exec(state ? SQ_TRAININGS_TOTAL_STATE : SQ_TRAININGS_TOTAL, args + 2, NULL))
		total = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	else
		total = 0;
	n = spi_exec_n(state ? SQ_TRAININGS_PAGE_STATE : SQ_TRAININGS_PAGE, args, NULL, 0);
	page->n = (int) n;
	page->ids = palloc(sizeof(Datum) * (n + 1));
	page->kept = palloc(sizeof(ApiKept) * (n + 1));
	for (uint64 i = 0; i < n; i++)
	{
		Datum		v[5];
		bool		nl[5];

		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, v, nl);
		page->ids[i] = v[0];
		kept_from(v + 1, nl + 1, &page->kept[i]);
	}
	return total;
}

/* ---------------------------------------------------------------------------------------------
 * The trainings_before trigger's reads
 * ---------------------------------------------------------------------------------------------
 */

/* Copy of a text value in the memory context of the SPI caller. */
static char *
spi_text_copy(Datum d)
{
	text	   *t = DatumGetTextPP(d);
	size_t		len = VARSIZE_ANY_EXHDR(t);
	char	   *s = SPI_palloc(len + 1);

	memcpy(s, VARDATA_ANY(t), len);
	s[len] = '\0';
	return s;
}

/*
 * The trainings_before trigger's reads plan with enable_seqscan off, until restore_planner().
 * Their EXISTS checks stop at the first match, so the planner, where it expects many matches
 * (a backlog of retrainings of one model), prefers a sequential scan, which reads the whole
 * table when there is none (seen: 0.4 s per creation with 500,000 trainings). With the type a
 * constant (NAME_READ) the estimates are right; this keeps the indexes whatever the statistics.
 */
static int
prefer_indexes(void)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

static void
restore_planner(int nest)
{
	AtEOXact_GUC(true, nest);
}

bool
store_dataset_for_training(Datum dataset_id, Datum owner, Datum name, bool name_null, Datum id,
						   bool id_null, TrNameGuess guess, ApiRow *row, TrNameRead *out)
{
	static const SpiQuery reads[] = {
		[TR_GUESS_NONE] = SQ_DATASET_READ,
		[TR_GUESS_FACE] = SQ_DATASET_READ_FACE,
		[TR_GUESS_LANDMARK] = SQ_DATASET_READ_LANDMARK,
		[TR_GUESS_MODEL] = SQ_DATASET_READ_MODEL,
	};
	static const char *names[D_NCOLS + 2];
	Datum		args[4] = {dataset_id, owner, name, id};
	char		nulls[5] = {' ', ' ', name_null ? 'n' : ' ', id_null ? 'n' : ' ', '\0'};
	Datum		v[D_NCOLS + 2];
	bool		n[D_NCOLS + 2];
	Datum		expired;
	bool		expired_null;
	Snapshot	snapshot;
	bool		found;
	int			nest;

	if (names[0] == NULL)
	{
		memcpy(names, dataset_columns, sizeof(dataset_columns));
		names[D_NCOLS] = "tr_model_type";
		names[D_NCOLS + 1] = "tr_name_queued";
	}
	/*
	 * One snapshot for both reads, the latest also in REPEATABLE READ: what committed while the
	 * caller waited for its lock counts (released by the resource owner on error).
	 */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	nest = prefer_indexes();
	found = spi_named_row_at(reads[guess], args, nulls, names, D_NCOLS + 2, v, n, snapshot);
	out->expired_trainable = 0;
	/* Expired classes are counted only once the earliest expiration has passed (rare). */
	if (found && !n[D_EARLIEST_EXPIRATION]
		&& DatumGetTimestampTz(v[D_EARLIEST_EXPIRATION]) <= GetCurrentTransactionStartTimestamp())
	{
		spi_exec_at(SQ_EXPIRED_TRAINABLE, args, nulls, 1, snapshot);
		expired = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &expired_null);
		out->expired_trainable = expired_null ? 0 : DatumGetInt64(expired);
	}
	restore_planner(nest);
	UnregisterSnapshot(snapshot);
	if (!found)
		return false;
	memcpy(row->values, v, sizeof(Datum) * D_NCOLS);
	memcpy(row->nulls, n, sizeof(bool) * D_NCOLS);
	out->model_type = n[D_NCOLS] ? NULL : spi_text_copy(v[D_NCOLS]);
	out->queued = !n[D_NCOLS + 1] && DatumGetBool(v[D_NCOLS + 1]);
	return true;
}

void
store_name_check(Datum owner, Datum name, Datum type, Datum id, bool id_null, TrNameRead *out)
{
	Datum		args[4] = {owner, name, type, id};
	char		nulls[5] = {' ', ' ', ' ', id_null ? 'n' : ' ', '\0'};
	Datum		v[2];
	bool		n[2];
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	int			nest = prefer_indexes();

	/* The latest snapshot and the planner's choice as in store_dataset_for_training. */
	if (spi_exec_at(SQ_NAME_CHECK, args, nulls, 1, snapshot) == 0)
		elog(ERROR, "training: the model name check returned no row");
	restore_planner(nest);
	UnregisterSnapshot(snapshot);
	heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, v, n);
	out->model_type = n[0] ? NULL : spi_text_copy(v[0]);
	out->queued = !n[1] && DatumGetBool(v[1]);
}

bool
store_row_exists(TrRowKind kind, Datum id)
{
	static const SpiQuery q[] = {
		[TR_ROW_DATASET] = SQ_DATASET_EXISTS,
		[TR_ROW_MODEL] = SQ_MODEL_EXISTS,
		[TR_ROW_VERSION] = SQ_VERSION_EXISTS,
	};

	return spi_exec(q[kind], &id, NULL);
}

/*
 * create_training: insert the training (its trigger validates it and renders its object) and
 * return that object, copied into the caller's memory context.
 */
bool
store_create_training(Datum *args, const bool *isnull, Datum *object)
{
	Oid			types[5] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID};
	char		nulls[6];
	bool		object_null = true;

	for (int i = 0; i < 5; i++)
		nulls[i] = isnull[i] ? 'n' : ' ';
	nulls[5] = '\0';
	store_api_connect();
	if (run("INSERT INTO training.trainings (source_dataset_id, output_model_name, output_model_description,"
			"                                output_model_changelog, config)"
			" VALUES ($1, $2, $3, $4, $5) RETURNING object",
			5, types, args, nulls, SPI_OK_INSERT_RETURNING) == 1)
	{
		*object = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &object_null);
		if (!object_null)
			*object = SPI_datumTransfer(*object, false, -1);
	}
	store_api_finish();
	return !object_null;
}

/* ---------------------------------------------------------------------------------------------
 * Kept counts of trainings (the trainings_count trigger, src/counts.c)
 * ---------------------------------------------------------------------------------------------
 */

void
store_count_add(Datum owner, Datum state, int64 delta)
{
	Oid			types[4] = {NAMEOID, TEXTOID, INT4OID, INT8OID};
	Datum		values[4] = {owner, state, Int32GetDatum(MyBackendId), Int64GetDatum(delta)};

	store_api_connect();
	/* The slot's row exists but for a backend's first write for an owner and state. */
	if (run("UPDATE training.training_counts c SET n = c.n + $4"
			" WHERE c.owner = $1 AND c.state = $2 AND c.slot = $3",
			4, types, values, NULL, SPI_OK_UPDATE) == 0)
		run("INSERT INTO training.training_counts AS c (owner, state, slot, n) VALUES ($1, $2, $3, $4)"
			" ON CONFLICT (owner, state, slot) DO UPDATE SET n = c.n + excluded.n",
			4, types, values, NULL, SPI_OK_INSERT);
	store_api_finish();
}

void
store_counts_clear(void)
{
	store_api_connect();
	run("DELETE FROM training.training_counts", 0, NULL, NULL, NULL, SPI_OK_DELETE);
	store_api_finish();
}
