/*
 * store.c: all SQL of the extension's C code, run through SPI.
 *
 * Each function runs one short transaction of its own (Start/CommitTransactionCommand), so no
 * snapshot or lock outlives it: a training never holds a transaction across its loop.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
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

/* Run a statement with arguments; fail loudly on SPI errors (they are bugs, not user errors). */
static int
run(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, int expect)
{
	int			ret = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

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

/* Requeue (or fail at the last attempt) a processing training; pid 0 matches any worker. */
static const char *release_sql =
"UPDATE training.trainings SET "
"  state = CASE WHEN attempts >= $2 THEN 'failed' ELSE 'waiting' END, "
"  error = CASE WHEN attempts >= $2 "
"          THEN format('gave up after %s attempts (training.max_attempts = %s): %s', attempts, $2, $3) "
"          ELSE '' END, "
"  stage = CASE WHEN attempts >= $2 THEN 'failed' ELSE 'requeued: ' || $3 END, "
"  progress = CASE WHEN attempts >= $2 THEN progress ELSE 0 END, "
"  duration = CASE WHEN attempts >= $2 AND time_started IS NOT NULL "
"             THEN extract(epoch FROM clock_timestamp() - time_started)::float8 ELSE 0 END, "
"  time_started = CASE WHEN attempts >= $2 THEN time_started END, "
"  time_completed = CASE WHEN attempts >= $2 THEN clock_timestamp() END, "
"  worker_pid = NULL "
"WHERE id = $1 AND state = 'processing' AND ($4 = 0 OR worker_pid = $4) "
"RETURNING state = 'waiting'";

/* Returns 0 when the row was not ours, 1 when it is queued again, 2 when it failed. */
static int
release_one(const pg_uuid_t *id, int pid, int max_attempts, const char *cause)
{
	bool		isnull;

	Oid			types[4] = {UUIDOID, INT4OID, TEXTOID, INT4OID};
	Datum		values[4];

	values[0] = UUIDPGetDatum(id);
	values[1] = Int32GetDatum(max_attempts);
	values[2] = CStringGetTextDatum(cause);
	values[3] = Int32GetDatum(pid);
	if (run(release_sql, 4, types, values, NULL, SPI_OK_UPDATE_RETURNING) == 0)
		return 0;
	return DatumGetBool(col(0, 1, &isnull)) ? 1 : 2;
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
	run("SELECT count(*) FROM training.trainings WHERE state = 'processing'",
		0, NULL, NULL, NULL, SPI_OK_SELECT);
	*skipped = (int) DatumGetInt64(col(0, 1, &isnull));
	/* Locked rows belong to a claim or a worker write in progress: their owner is alive. */
	n = run("SELECT id, coalesce(worker_pid, 0) FROM training.trainings "
			"WHERE state = 'processing' FOR UPDATE SKIP LOCKED",
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
	on_claim(&out->id);
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

int
store_image_batch(const char *class_id, TrImageKey *key, int limit, TrImageRow **rows)
{
	MemoryContext caller;
	Oid			types[4] = {UUIDOID, TIMESTAMPTZOID, UUIDOID, INT4OID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	pg_uuid_t	zero;
	int			n;

	memset(&zero, 0, sizeof(zero));
	caller = tx_begin();
	values[0] = DirectFunctionCall1(uuid_in, CStringGetDatum(class_id));
	values[1] = TimestampTzGetDatum(key->started ? key->time_created : DT_NOBEGIN);
	values[2] = UUIDPGetDatum(key->started ? &key->id : &zero);
	values[3] = Int32GetDatum(limit);
	n = run("SELECT id, time_created, data, face_box FROM training.images "
			"WHERE class_id = $1 AND active AND (time_created, id) > ($2, $3) "
			"ORDER BY time_created, id LIMIT $4",
			4, types, values, nulls, SPI_OK_SELECT);
	*rows = MemoryContextAllocZero(caller, sizeof(TrImageRow) * (n + 1));
	for (int i = 0; i < n; i++)
	{
		TrImageRow *r = &(*rows)[i];
		bool		isnull;
		Datum		d;

		r->id = *DatumGetUUIDP(col(i, 1, &isnull));
		r->time_created = DatumGetTimestampTz(col(i, 2, &isnull));
		d = col(i, 3, &isnull);
		{
			MemoryContext old = MemoryContextSwitchTo(caller);

			r->data = DatumGetByteaPCopy(d);
			MemoryContextSwitchTo(old);
		}
		d = col(i, 4, &isnull);
		r->has_box = false;
		if (!isnull)
		{
			ArrayType  *a = DatumGetArrayTypeP(d);
			Datum	   *elems;
			bool	   *enulls;
			int			ne;

			deconstruct_array(a, INT4OID, 4, true, TYPALIGN_INT, &elems, &enulls, &ne);
			if (ne == 4 && !enulls[0] && !enulls[1] && !enulls[2] && !enulls[3])
			{
				r->has_box = true;
				for (int k = 0; k < 4; k++)
					r->box[k] = DatumGetInt32(elems[k]);
			}
		}
	}
	if (n > 0)
	{
		key->started = true;
		key->time_created = (*rows)[n - 1].time_created;
		key->id = (*rows)[n - 1].id;
	}
	tx_end(caller);
	return n;
}

/* Is the training still processing by this worker? (A plain read: waits for no lock.) */
static bool
still_ours(const pg_uuid_t *id, int pid)
{
	Oid			types[2] = {UUIDOID, INT4OID};
	Datum		values[2];

	values[0] = UUIDPGetDatum(id);
	values[1] = Int32GetDatum(pid);
	return run("SELECT 1 FROM training.trainings WHERE id = $1 AND state = 'processing' AND worker_pid = $2",
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
			"  stage = $4 "
			"WHERE id = (SELECT x.id FROM training.trainings x "
			"            WHERE x.id = $1 AND x.state = 'processing' AND x.worker_pid = $2 "
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
	n = run("UPDATE training.trainings SET state = 'failed', error = $3, stage = 'failed', "
			"  duration = extract(epoch FROM clock_timestamp() - time_started)::float8, "
			"  time_completed = clock_timestamp(), worker_pid = NULL "
			"WHERE id = $1 AND state = 'processing' AND worker_pid = $2",
			3, types, values, NULL, SPI_OK_UPDATE);
	tx_end(caller);
	return n == 1 ? TR_STORE_OK : TR_STORE_GONE;
}

TrStoreResult
store_release(const pg_uuid_t *id, int pid, int max_attempts, const char *cause, bool *requeued)
{
	MemoryContext caller;
	int			n;

	caller = tx_begin();
	n = release_one(id, pid, max_attempts, cause);
	tx_end(caller);
	*requeued = (n == 1);
	return n != 0 ? TR_STORE_OK : TR_STORE_GONE;
}
