/*
 * render.c: the Training, Dataset and Model objects as jsonb (get_training, get_dataset,
 * model_json, the list functions, and the trainings_object trigger that keeps the Training
 * object with its row). Built with json.h from the rows store.c reads. Keys are pushed in
 * jsonb's own order (shorter first, then bytewise), so the sort that closes each object finds
 * them already sorted.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "guard.h"
#include "json.h"
#include "render.h"
#include "store.h"

PG_FUNCTION_INFO_V1(training_get_training);
PG_FUNCTION_INFO_V1(training_get_dataset);
PG_FUNCTION_INFO_V1(training_model_json);

/* The values of an object being rendered (an ApiRow, or a part of one). */
typedef struct Row
{
	Datum	   *values;
	bool	   *nulls;
} Row;

static Datum
col(const Row *r, int offset, bool *isnull)
{
	*isnull = r->nulls[offset];
	return r->values[offset];
}

static void
put_null(JsonBuilder *b, const char *key)
{
	jb_key(b, key);
	jb_null(b);
}

static void
put_cstring(JsonBuilder *b, const char *key, const char *s, int len)
{
	jb_key(b, key);
	jb_string(b, s, len);
}

static void
put_text(JsonBuilder *b, const char *key, const Row *r, int offset)
{
	bool		isnull;
	Datum		d = col(r, offset, &isnull);

	jb_key(b, key);
	jb_text(b, isnull ? NULL : DatumGetTextPP(d));
}

static void
put_uuid(JsonBuilder *b, const char *key, const Row *r, int offset)
{
	bool		isnull;
	Datum		d = col(r, offset, &isnull);

	jb_key(b, key);
	if (isnull)
		jb_null(b);
	else
		jb_uuid(b, d, NULL);
}

static void
put_time(JsonBuilder *b, const char *key, const Row *r, int offset)
{
	bool		isnull;
	Datum		d = col(r, offset, &isnull);

	jb_key(b, key);
	if (isnull)
		jb_null(b);
	else
		jb_time(b, DatumGetTimestampTz(d));
}

static void
put_int(JsonBuilder *b, const char *key, int64 i)
{
	jb_key(b, key);
	jb_int(b, i);
}

/* An integer column, or null. */
static void
put_int_col(JsonBuilder *b, const char *key, const Row *r, int offset)
{
	bool		isnull;
	Datum		d = col(r, offset, &isnull);

	jb_key(b, key);
	if (isnull)
		jb_null(b);
	else
		jb_int(b, DatumGetInt32(d));
}

/* A float8 column as a JSON number (non-finite values as strings, as to_jsonb does). */
static void
put_float_col(JsonBuilder *b, const char *key, const Row *r, int offset)
{
	bool		isnull;
	Datum		d = col(r, offset, &isnull);

	jb_key(b, key);
	if (isnull)
		jb_null(b);
	else
		jb_float(b, DatumGetFloat8(d));
}

/* A jsonb column, embedded as it is stored. */
static void
put_jsonb_col(JsonBuilder *b, const char *key, const Row *r, int offset)
{
	bool		isnull;
	Datum		d = col(r, offset, &isnull);

	jb_key(b, key);
	if (isnull)
		jb_null(b);
	else
		jb_jsonb(b, DatumGetJsonbP(d));
}

/*
 * issues as the triggers keep them, and has_error also when expired classes leave fewer than two
 * classes to train on (expiry moves with the clock, so it is applied here).
 */
static void
put_issues(JsonBuilder *b, const Row *r, int64 expired_trainable)
{
	bool		isnull;
	Datum		trainable = col(r, D_TRAINABLE_CLASSES, &isnull);

	if (expired_trainable == 0 || isnull
		|| (int64) DatumGetInt32(trainable) - expired_trainable >= 2)
	{
		put_jsonb_col(b, "issues", r, D_ISSUES);
		return;
	}
	jb_key(b, "issues");
	jb_begin_object(b);
	{
		Datum		issues = col(r, D_ISSUES, &isnull);
		bool		warning = false;

		if (!isnull)
		{
			JsonbValue *w = getKeyJsonValueFromContainer(&DatumGetJsonbP(issues)->root,
														 "has_warning", strlen("has_warning"), NULL);

			warning = w != NULL && w->type == jbvBool && w->val.boolean;
		}
		jb_key(b, "has_error");
		jb_bool(b, true);
		jb_key(b, "has_warning");
		jb_bool(b, warning);
	}
	jb_end_object(b);
}

/* The Dataset object: DESIGN.md's keys, counts from the counters minus expired classes. */
static void
push_dataset(JsonBuilder *b, const Row *r)
{
	bool		isnull;
	int64		expired_classes = 0;
	int64		expired_images = 0;
	int64		expired_trainable = 0;
	Datum		earliest = col(r, D_EARLIEST_EXPIRATION, &isnull);

	/* Expiration moves with the clock: count expired classes once the earliest has passed. */
	if (!isnull && DatumGetTimestampTz(earliest) <= GetCurrentTransactionStartTimestamp())
		store_api_expired(r->values[D_ID], &expired_classes, &expired_images, &expired_trainable);

	jb_begin_object(b);
	put_uuid(b, "id", r, D_ID);
	put_text(b, "name", r, D_NAME);
	put_text(b, "type", r, D_TYPE);
	put_issues(b, r, expired_trainable);
	/* The seed writes the version as 1.0: a number with one decimal. */
	jb_key(b, "version");
	jb_numeric(b,
				int64_div_fast_to_numeric((int64) DatumGetInt32(col(r, D_VERSION, &isnull)) * 10, 1));
	put_text(b, "description", r, D_DESCRIPTION);
	put_time(b, "time_created", r, D_TIME_CREATED);
	put_time(b, "time_updated", r, D_TIME_UPDATED);

	jb_key(b, "preview_images");
	jb_begin_array(b);
	{
		Datum		previews = col(r, D_PREVIEWS, &isnull);

		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			n;

			deconstruct_array(DatumGetArrayTypeP(previews), UUIDOID, UUID_LEN, false, TYPALIGN_CHAR,
							  &elems, &nulls, &n);
			for (int i = 0; i < n; i++)
			{
				if (!nulls[i])
					jb_uuid(b, elems[i], "image://");
			}
		}
	}
	jb_end_array(b);

	put_int_col(b, "evaluation_state", r, D_EVALUATION_STATE);
	put_int_col(b, "number_of_images", r, D_IMAGES);
	put_jsonb_col(b, "evaluation_result", r, D_EVALUATION_RESULT);
	put_int_col(b, "number_of_classes", r, D_CLASSES);
	put_int(b, "number_of_active_images",
			Max(0, (int64) DatumGetInt32(col(r, D_ACTIVE_IMAGES, &isnull)) - expired_images));
	put_int(b, "number_of_active_classes",
			Max(0, (int64) DatumGetInt32(col(r, D_ACTIVE_CLASSES, &isnull)) - expired_classes));
	jb_end_object(b);
}

/*
 * The Model object at one version. Pushes nothing and returns NULL when there is no such
 * model or, with need_version, no such version.
 */
static void
push_model(JsonBuilder *b, Datum model_id, Datum version, bool version_null, bool need_version,
		   bool *pushed)
{
	Datum		values[M_NCOLS];
	bool		nulls[M_NCOLS];
	Row			r = {values, nulls};
	ApiRow		row = {values, nulls};
	bool		isnull;
	Datum		number;

	*pushed = false;
	if (!store_api_model(model_id, version, version_null, &row))
		return;
	number = col(&r, M_VERSION, &isnull);
	if (isnull && need_version)
		return;
	*pushed = true;

	jb_begin_object(b);
	put_uuid(b, "id", &r, M_ID);
	put_text(b, "name", &r, M_NAME);
	put_text(b, "type", &r, M_TYPE);
	put_jsonb_col(b, "metrics", &r, M_METRICS);
	put_int_col(b, "version", &r, M_VERSION);
	put_int(b, "versions", DatumGetInt64(values[M_VERSIONS]));
	put_text(b, "changelog", &r, M_CHANGELOG);
	if (isnull)
		put_null(b, "reference");
	else
	{
		bool		nnull;
		text	   *name = DatumGetTextPP(col(&r, M_NAME, &nnull));
		char	   *ref = psprintf("%.*s==%d", (int) VARSIZE_ANY_EXHDR(name), VARDATA_ANY(name),
								   DatumGetInt32(number));

		put_cstring(b, "reference", ref, strlen(ref));
	}
	put_uuid(b, "version_id", &r, M_VERSION_ID);
	put_text(b, "description", &r, M_DESCRIPTION);
	put_uuid(b, "training_id", &r, M_TRAINING_ID);
	put_time(b, "time_created", &r, M_TIME_CREATED);
	put_time(b, "time_updated", &r, M_TIME_UPDATED);
	put_time(b, "version_time_created", &r, M_VERSION_TIME_CREATED);
	jb_end_object(b);
}

/*
 * The Training object: exactly the keys of the seed's example. source_dataset is kept_dataset
 * when given (the dataset as the training saw it when it started), else the live dataset (the
 * dataset columns of row), else the snapshot kept with the version, else null.
 */
static void
push_training(JsonBuilder *b, const Row *row, Jsonb *kept_dataset)
{
	Row			d = {row->values + T_NCOLS, row->nulls + T_NCOLS};
	bool		isnull;
	bool		vidnull;
	bool		pushed;
	text	   *error;
	Datum		model_id;

	jb_begin_object(b);
	put_uuid(b, "id", row, T_ID);
	put_text(b, "type", row, T_TYPE);
	error = DatumGetTextPP(col(row, T_ERROR, &isnull));
	put_cstring(b, "error", isnull ? "" : VARDATA_ANY(error), isnull ? 0 : VARSIZE_ANY_EXHDR(error));
	put_text(b, "state", row, T_STATE);
	put_jsonb_col(b, "config", row, T_CONFIG);
	put_float_col(b, "duration", row, T_DURATION);
	put_float_col(b, "progress", row, T_PROGRESS);

	/*
	 * The version this training wrote (by id); null until there is one, and once it is deleted.
	 * Its number never goes to another version, so reading it by number reads that version.
	 */
	jb_key(b, "output_model");
	model_id = col(row, T_OUTPUT_MODEL_ID, &isnull);
	pushed = false;
	(void) col(row, T_OUTPUT_MODEL_VERSION_ID, &vidnull);
	if (!isnull && !vidnull)
	{
		bool		vnull;
		Datum		version = col(row, T_OUTPUT_MODEL_VERSION, &vnull);

		if (!vnull)
			push_model(b, model_id, version, false, true, &pushed);
	}
	if (!pushed)
	{
		jb_null(b);
	}

	put_time(b, "time_created", row, T_TIME_CREATED);
	put_time(b, "time_started", row, T_TIME_STARTED);

	(void) col(&d, D_ID, &isnull);
	if (kept_dataset != NULL)
	{
		jb_key(b, "source_dataset");
		jb_jsonb(b, kept_dataset);
	}
	else if (!isnull)
	{
		jb_key(b, "source_dataset");
		push_dataset(b, &d);
	}
	else
	{
		Datum		snapshot;

		if (store_api_snapshot(row->values[T_ID], &snapshot))
		{
			jb_key(b, "source_dataset");
			jb_jsonb(b, DatumGetJsonbP(snapshot));
		}
		else
			put_null(b, "source_dataset");
	}

	put_time(b, "time_completed", row, T_TIME_COMPLETED);
	put_text(b, "output_model_name", row, T_OUTPUT_MODEL_NAME);
	put_text(b, "output_model_changelog", row, T_OUTPUT_MODEL_CHANGELOG);
	put_text(b, "output_model_description", row, T_OUTPUT_MODEL_DESCRIPTION);
	jb_end_object(b);
}

/* source_dataset of a kept Training object, or NULL. */
static Jsonb *
kept_dataset_of(Jsonb *object)
{
	JsonbValue	key;
	JsonbValue *v;

	key.type = jbvString;
	key.val.string.val = "source_dataset";
	key.val.string.len = strlen("source_dataset");
	v = findJsonbValueFromContainer(&object->root, JB_FOBJECT, &key);
	if (v == NULL || v->type != jbvBinary)
		return NULL;
	return JsonbValueToJsonb(v);
}

/*
 * Push the Training object of id rendered from the rows, with the source dataset of its kept
 * object once it has started (ko: may be NULL); false when the caller cannot see the training.
 */
static bool
push_training_id(JsonBuilder *b, Datum id, const ApiKept *ko)
{
	Datum		values[T_NCOLS + D_NCOLS];
	bool		nulls[T_NCOLS + D_NCOLS];
	ApiRow		row = {values, nulls};
	Row			r = {values, nulls};
	Jsonb	   *kept = NULL;

	if (ko != NULL && ko->has_object && !ko->waiting)
		kept = kept_dataset_of(DatumGetJsonbP(ko->object));
	if (!store_api_training(id, &row, kept == NULL))
		return false;
	push_training(b, &r, kept);
	return true;
}

/* The Training object of id as get_training returns it, in context mcxt; NULL when not visible. */
static Jsonb *
render_training(Datum id, const ApiKept *ko, MemoryContext mcxt)
{
	JsonBuilder b;
	MemoryContext old;
	Jsonb	   *out;

	jb_init(&b);
	if (!push_training_id(&b, id, ko))
		return NULL;
	old = MemoryContextSwitchTo(mcxt);
	out = jb_finish(&b);
	MemoryContextSwitchTo(old);
	return out;
}

static bool
text_equals(text *t, const char *s)
{
	size_t		len = strlen(s);

	return VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), s, len) == 0;
}

/* Refuse a NULL id with a message naming the argument. */
static void
require_arg(FunctionCallInfo fcinfo, int n, const char *what, const char *hint)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be NULL", what),
				 errhint("%s", hint)));
}

/*
 * training.get_training(id uuid) RETURNS jsonb: the object kept with the row when it is fresh
 * (one read by primary key), else rendered from the rows.
 */
Datum
training_get_training(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		id;
	ApiKept		ko;
	int			found;
	Jsonb	   *out = NULL;

	require_arg(fcinfo, 0, "training id", "Pass the id of a training (see training.list_trainings()).");
	id = PG_GETARG_DATUM(0);
	store_api_connect();
	found = store_api_training_object(id, &ko);
	if (found > 0 && ko.fresh)
	{
		MemoryContextSwitchTo(caller);
		out = DatumGetJsonbPCopy(ko.object);
	}
	else if (found != 0)
		out = render_training(id, found > 0 ? &ko : NULL, caller);
	if (out == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("training %s not found", jb_uuid_string(id, NULL)),
				 errhint("Check the id with training.list_trainings().")));
	store_api_finish();
	PG_RETURN_JSONB_P(out);
}

/* training.get_dataset(id uuid) RETURNS jsonb */
Datum
training_get_dataset(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	JsonBuilder b;
	Datum		values[D_NCOLS];
	bool		nulls[D_NCOLS];
	ApiRow		row = {values, nulls};
	Row			r = {values, nulls};
	Datum		id;
	Jsonb	   *out;

	require_arg(fcinfo, 0, "dataset id", "Pass the id of a dataset (see training.list_datasets()).");
	id = PG_GETARG_DATUM(0);
	store_api_connect();
	if (!store_api_dataset(id, &row))
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("dataset %s not found", jb_uuid_string(id, NULL)),
				 errhint("Check the id with training.list_datasets().")));
	jb_init(&b);
	push_dataset(&b, &r);
	MemoryContextSwitchTo(caller);
	out = jb_finish(&b);
	store_api_finish();
	PG_RETURN_JSONB_P(out);
}

/* training.model_json(model_id uuid, version integer) RETURNS jsonb; NULL when no such model. */
Datum
training_model_json(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	JsonBuilder b;
	bool		pushed;
	Jsonb	   *out = NULL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	store_api_connect();
	jb_init(&b);
	push_model(&b, PG_GETARG_DATUM(0), PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1),
					 PG_ARGISNULL(1), false, &pushed);
	if (pushed)
	{
		MemoryContextSwitchTo(caller);
		out = jb_finish(&b);
	}
	store_api_finish();
	if (out == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(out);
}

/*
 * An array of objects, one per id in order (ids the caller cannot see, or that are gone,
 * are skipped). The list functions use these instead of jsonb_agg(get_...(id)), which would
 * render every object and then take it apart again to aggregate it.
 */
static Datum
render_array(FunctionCallInfo fcinfo, bool trainings)
{
	MemoryContext caller = CurrentMemoryContext;
	JsonBuilder b;
	Datum	   *ids;
	bool	   *idnulls;
	int			n;
	Jsonb	   *out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(0), UUIDOID, UUID_LEN, false, TYPALIGN_CHAR,
					  &ids, &idnulls, &n);
	store_api_connect();
	jb_init(&b);
	jb_begin_array(&b);
	for (int i = 0; i < n; i++)
	{
		Datum		values[T_NCOLS + D_NCOLS];
		bool		nulls[T_NCOLS + D_NCOLS];
		ApiRow		row = {values, nulls};
		Row			r = {values, nulls};

		CHECK_FOR_INTERRUPTS();
		if (idnulls[i])
			continue;
		if (trainings)
		{
			ApiKept		ko;
			int			found = store_api_training_object(ids[i], &ko);

			if (found > 0 && ko.fresh)
				jb_jsonb(&b, DatumGetJsonbP(ko.object));
			else if (found != 0)
				(void) push_training_id(&b, ids[i], found > 0 ? &ko : NULL);
		}
		else if (store_api_dataset(ids[i], &row))
			push_dataset(&b, &r);
	}
	jb_end_array(&b);
	MemoryContextSwitchTo(caller);
	out = jb_finish(&b);
	store_api_finish();
	PG_RETURN_JSONB_P(out);
}

PG_FUNCTION_INFO_V1(training_list_trainings);

/* "?limit=L&offset=O" and the call's filters. */
static char *
page_query(int64 limit, int64 offset, const char *filters)
{
	return psprintf("?limit=" INT64_FORMAT "&offset=" INT64_FORMAT "%s", limit, offset, filters);
}

/*
 * training.list_trainings("limit" integer, "offset" integer, state text) RETURNS jsonb: the
 * trainings the caller sees, in creation order, in the list envelope
 * {total, offset, limit, next, prev, data} (next/prev carry the filter; prev past the end
 * points to the last page).
 */
Datum
training_list_trainings(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	text	   *state = PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2);
	int64		limit;
	int64		offset;
	int64		total;
	char	   *filters = "";
	ApiPage		page;
	JsonBuilder b;
	Jsonb	   *out;

	if (PG_ARGISNULL(0) || PG_GETARG_INT32(0) < 1 || PG_GETARG_INT32(0) > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("limit must be between 1 and 1000, got %s",
						PG_ARGISNULL(0) ? "NULL" : psprintf("%d", PG_GETARG_INT32(0))),
				 errhint("Pass \"limit\" => 1 .. 1000 and page with \"offset\".")));
	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset must be 0 or more, got %s",
						PG_ARGISNULL(1) ? "NULL" : psprintf("%d", PG_GETARG_INT32(1))),
				 errhint("Pass \"offset\" => 0 for the first page.")));
	limit = PG_GETARG_INT32(0);
	offset = PG_GETARG_INT32(1);
	if (state != NULL)
	{
		char	   *s = text_to_cstring(state);

		if (strcmp(s, "waiting") != 0 && strcmp(s, "processing") != 0
			&& strcmp(s, "completed") != 0 && strcmp(s, "failed") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("state must be waiting, processing, completed or failed, got %s",
							quote_literal_cstr(pnstrdup(s, pg_mbcharcliplen(s, strlen(s), 100)))),
					 errhint("Pass one of the four states, or NULL for all trainings.")));
		filters = psprintf("&state=%s", s);
	}

	store_api_connect();
	total = store_api_trainings_page(state, limit, offset, &page);
	jb_init(&b);
	jb_begin_object(&b);
	jb_key(&b, "data");
	jb_begin_array(&b);
	for (int i = 0; i < page.n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (page.kept[i].fresh)
			jb_jsonb(&b, DatumGetJsonbP(page.kept[i].object));
		else
			(void) push_training_id(&b, page.ids[i], &page.kept[i]);
	}
	jb_end_array(&b);
	jb_key(&b, "next");
	jb_cstring(&b, offset + limit < total ? page_query(limit, offset + limit, filters) : NULL);
	jb_key(&b, "prev");
	jb_cstring(&b, offset == 0 ? NULL
			   : page_query(limit, offset >= total ? Max(total - limit, 0) : Max(offset - limit, 0),
							filters));
	jb_key(&b, "limit");
	jb_int(&b, limit);
	jb_key(&b, "total");
	jb_int(&b, total);
	jb_key(&b, "offset");
	jb_int(&b, offset);
	jb_end_object(&b);
	MemoryContextSwitchTo(caller);
	out = jb_finish(&b);
	store_api_finish();
	PG_RETURN_JSONB_P(out);
}

PG_FUNCTION_INFO_V1(training_trainings_json);
PG_FUNCTION_INFO_V1(training_datasets_json);

/*
 * training.trainings_json(ids uuid[]) RETURNS jsonb of the 0.2.0 catalog (its list_trainings),
 * until ALTER EXTENSION UPDATE: Training objects in the order of ids.
 */
Datum
training_trainings_json(PG_FUNCTION_ARGS)
{
	return render_array(fcinfo, true);
}

/* training.datasets_json(ids uuid[]) RETURNS jsonb: Dataset objects in the order of ids. */
Datum
training_datasets_json(PG_FUNCTION_ARGS)
{
	return render_array(fcinfo, false);
}

PG_FUNCTION_INFO_V1(training_trainings_object);

/*
 * Keep the Training object with a trainings row being written (object), and when a class of its
 * dataset expires (object_stale_at), so that get_training and list_trainings read it instead of
 * rendering it. Once the dataset is deleted, source_dataset stays as it was last rendered.
 * dataset: the source dataset's row when the caller read it already, else NULL.
 */
HeapTuple
tr_keep_object(TriggerData *td, HeapTuple tuple, const ApiRow *dataset)
{
	MemoryContext caller = CurrentMemoryContext;
	JsonBuilder b;
	TupleDesc	desc;
	Datum		values[T_NCOLS + D_NCOLS];
	bool		nulls[T_NCOLS + D_NCOLS];
	ApiRow		row = {values, nulls};
	Row			r = {values, nulls};
	Jsonb	   *old_kept = NULL;
	Jsonb	   *kept = NULL;
	bool		has_dataset;
	bool		waiting;
	bool		was_waiting = true;
	bool		isnull;
	int			cols[2];
	Datum		newvals[2];
	bool		newnulls[2] = {false, true};

	desc = RelationGetDescr(td->tg_relation);
	cols[0] = store_attnum(desc, "object");
	cols[1] = store_attnum(desc, "object_stale_at");
	if (cols[0] <= 0 || cols[1] <= 0)
		elog(ERROR, "training: trainings.object is missing from the catalog");

	waiting = text_equals(DatumGetTextPP(heap_getattr(tuple, store_attnum(desc, "state"), desc, &isnull)),
						  "waiting");
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		Datum		old = heap_getattr(td->tg_trigtuple, cols[0], desc, &isnull);

		if (!isnull)
			old_kept = kept_dataset_of(DatumGetJsonbP(old));
		was_waiting = text_equals(DatumGetTextPP(heap_getattr(td->tg_trigtuple, store_attnum(desc, "state"),
															  desc, &isnull)), "waiting");
	}

	store_api_connect();
	/*
	 * While it waits, a training's source dataset is the live one. When it starts (leaves
	 * waiting) the dataset is captured, and later writes keep it: the dataset it trained on, also
	 * after the dataset changes or is deleted. A training without a captured one (rendered by
	 * the upgrade to 0.3.0) takes the snapshot kept with its version, else the live dataset.
	 */
	if (!waiting && !was_waiting)
	{
		Datum		snapshot;
		Datum		id = heap_getattr(tuple, store_attnum(desc, "id"), desc, &isnull);

		kept = old_kept;
		if (kept == NULL && !isnull && store_api_snapshot(id, &snapshot))
			kept = DatumGetJsonbPCopy(snapshot);
	}
	(void) heap_getattr(tuple, store_attnum(desc, "source_dataset_id"), desc, &isnull);
	if (kept == NULL && isnull)
		kept = old_kept;		/* the dataset is gone: keep what was shown */
	has_dataset = store_api_training_tuple(tuple, desc, &row, kept == NULL, dataset);
	jb_init(&b);
	push_training(&b, &r, kept);
	MemoryContextSwitchTo(caller);
	newvals[0] = JsonbPGetDatum(jb_finish(&b));
	/* While it waits, the object follows the dataset's expiring classes. */
	if (waiting && has_dataset && !nulls[T_NCOLS + D_EARLIEST_EXPIRATION])
	{
		newvals[1] = values[T_NCOLS + D_EARLIEST_EXPIRATION];
		newnulls[1] = false;
	}
	else
		newvals[1] = (Datum) 0;
	tuple = heap_modify_tuple_by_cols(tuple, desc, 2, cols, newvals, newnulls);
	store_api_finish();
	return tuple;
}

/*
 * The trigger of 0.3.0 catalogs, where trainings_object was a trigger of its own (0.4.0 keeps
 * the object from trainings_before, src/validate.c).
 */
Datum
training_trainings_object(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event)
		|| !TRIGGER_FIRED_FOR_ROW(td->tg_event) || TRIGGER_FIRED_BY_DELETE(td->tg_event))
		elog(ERROR, "training: _trainings_object must be a BEFORE INSERT OR UPDATE row trigger");
	tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	if (tr_restoring_dump())
		return PointerGetDatum(tuple);
	return PointerGetDatum(tr_keep_object(td, tuple, NULL));
}
