/*
 * render.c: the Training, Dataset and Model objects as jsonb (get_training, get_dataset,
 * _model_json). Built directly as JsonbValues from the rows store_api.c reads, because
 * get_training is called as often as a plain row select and is benchmarked against it (bench/).
 * Keys are pushed in jsonb's own order (shorter first, then bytewise), so the sort that closes
 * each object finds them already sorted.
 */
#include "postgres.h"

#include <math.h>

#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "commands/trigger.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "access/xact.h"

#include "guard.h"
#include "store_api.h"

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
put_key(JsonbParseState **ps, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(ps, WJB_KEY, &k);
}

static void
put_value(JsonbParseState **ps, const char *key, JsonbValue *v)
{
	put_key(ps, key);
	pushJsonbValue(ps, WJB_VALUE, v);
}

static void
put_null(JsonbParseState **ps, const char *key)
{
	JsonbValue	v;

	v.type = jbvNull;
	put_value(ps, key, &v);
}

static void
put_cstring(JsonbParseState **ps, const char *key, const char *s, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = len;
	put_value(ps, key, &v);
}

static void
put_text(JsonbParseState **ps, const char *key, const Row *r, int offset)
{
	bool		isnull;
	Datum		d = col(r, offset, &isnull);
	text	   *t;

	if (isnull)
	{
		put_null(ps, key);
		return;
	}
	t = DatumGetTextPP(d);
	put_cstring(ps, key, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

/* A uuid as its canonical 36-character string, with an optional prefix ("image://"). */
static char *
uuid_string(Datum d, const char *prefix)
{
	static const char hex[] = "0123456789abcdef";
	pg_uuid_t  *u = DatumGetUUIDP(d);
	size_t		plen = prefix ? strlen(prefix) : 0;
	char	   *s = palloc(plen + 37);
	char	   *p = s + plen;

	if (plen)
		memcpy(s, prefix, plen);
	for (int i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u->data[i] >> 4];
		*p++ = hex[u->data[i] & 0x0f];
	}
	*p = '\0';
	return s;
}

static void
put_uuid(JsonbParseState **ps, const char *key, const Row *r, int offset)
{
	bool		isnull;
	Datum		d = col(r, offset, &isnull);

	if (isnull)
		put_null(ps, key);
	else
		put_cstring(ps, key, uuid_string(d, NULL), 36);
}

/* Write n as exactly width decimal digits (n >= 0, n < 10^width) and return the end. */
static char *
digits(char *p, int n, int width)
{
	for (int i = width - 1; i >= 0; i--)
	{
		p[i] = '0' + n % 10;
		n /= 10;
	}
	return p + width;
}

/* A time as the seed writes it: UTC, "YYYY-MM-DD HH:MM:SS.ffffff". */
static void
put_time(JsonbParseState **ps, const char *key, const Row *r, int offset)
{
	bool		isnull;
	TimestampTz t = DatumGetTimestampTz(col(r, offset, &isnull));
	struct pg_tm tm;
	fsec_t		fsec;
	char	   *buf;
	char	   *p;

	if (isnull)
	{
		put_null(ps, key);
		return;
	}
	if (TIMESTAMP_NOT_FINITE(t))
	{
		put_cstring(ps, key, TIMESTAMP_IS_NOBEGIN(t) ? "-infinity" : "infinity",
					TIMESTAMP_IS_NOBEGIN(t) ? 9 : 8);
		return;
	}
	/* No time zone argument: the broken-down time is UTC. */
	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range in \"%s\"", key)));
	if (tm.tm_year < 1 || tm.tm_year > 9999)
	{
		/* Outside four-digit years (BC or far future): let snprintf widen the year. */
		buf = psprintf("%04d-%02d-%02d %02d:%02d:%02d.%06d", tm.tm_year, tm.tm_mon, tm.tm_mday,
					   tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
		put_cstring(ps, key, buf, strlen(buf));
		return;
	}
	buf = palloc(27);
	p = digits(buf, tm.tm_year, 4);
	*p++ = '-';
	p = digits(p, tm.tm_mon, 2);
	*p++ = '-';
	p = digits(p, tm.tm_mday, 2);
	*p++ = ' ';
	p = digits(p, tm.tm_hour, 2);
	*p++ = ':';
	p = digits(p, tm.tm_min, 2);
	*p++ = ':';
	p = digits(p, tm.tm_sec, 2);
	*p++ = '.';
	p = digits(p, (int) fsec, 6);
	*p = '\0';
	put_cstring(ps, key, buf, 26);
}

static void
put_numeric(JsonbParseState **ps, const char *key, Numeric n)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = n;
	put_value(ps, key, &v);
}

static void
put_int(JsonbParseState **ps, const char *key, int64 i)
{
	put_numeric(ps, key, int64_to_numeric(i));
}

/* An integer column, or null. */
static void
put_int_col(JsonbParseState **ps, const char *key, const Row *r, int offset)
{
	bool		isnull;
	Datum		d = col(r, offset, &isnull);

	if (isnull)
		put_null(ps, key);
	else
		put_int(ps, key, DatumGetInt32(d));
}

/* A float8 column as a JSON number (non-finite values as strings, as to_jsonb does). */
static void
put_float_col(JsonbParseState **ps, const char *key, const Row *r, int offset)
{
	bool		isnull;
	float8		f = DatumGetFloat8(col(r, offset, &isnull));

	if (isnull)
		put_null(ps, key);
	else if (isnan(f) || isinf(f))
	{
		char	   *s = DatumGetCString(DirectFunctionCall1(float8out, Float8GetDatum(f)));

		put_cstring(ps, key, s, strlen(s));
	}
	else
		put_numeric(ps, key, DatumGetNumeric(DirectFunctionCall1(float8_numeric, Float8GetDatum(f))));
}

/* A jsonb column, embedded as it is stored. */
static void
put_jsonb_datum(JsonbParseState **ps, const char *key, Datum d)
{
	Jsonb	   *jb = DatumGetJsonbP(d);
	JsonbValue	v;

	v.type = jbvBinary;
	v.val.binary.data = &jb->root;
	v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
	put_value(ps, key, &v);
}

/* A jsonb value as the next element of an array. */
static void
put_jsonb_elem(JsonbParseState **ps, Datum d)
{
	JsonbValue	v;
	Jsonb	   *j = DatumGetJsonbP(d);

	v.type = jbvBinary;
	v.val.binary.data = &j->root;
	v.val.binary.len = VARSIZE(j) - VARHDRSZ;
	pushJsonbValue(ps, WJB_ELEM, &v);
}

static void
put_jsonb_col(JsonbParseState **ps, const char *key, const Row *r, int offset)
{
	bool		isnull;
	Datum		d = col(r, offset, &isnull);

	if (isnull)
		put_null(ps, key);
	else
		put_jsonb_datum(ps, key, d);
}

/*
 * issues as the triggers keep them, and has_error also when expired classes leave fewer than two
 * classes to train on (expiry moves with the clock, so it is applied here).
 */
static void
put_issues(JsonbParseState **ps, const Row *r, int64 expired_trainable)
{
	bool		isnull;
	Datum		trainable = col(r, D_TRAINABLE_CLASSES, &isnull);

	if (expired_trainable == 0 || isnull
		|| (int64) DatumGetInt32(trainable) - expired_trainable >= 2)
	{
		put_jsonb_col(ps, "issues", r, D_ISSUES);
		return;
	}
	put_key(ps, "issues");
	pushJsonbValue(ps, WJB_BEGIN_OBJECT, NULL);
	{
		JsonbValue	v;
		Datum		issues = col(r, D_ISSUES, &isnull);
		bool		warning = false;

		if (!isnull)
		{
			JsonbValue *w = getKeyJsonValueFromContainer(&DatumGetJsonbP(issues)->root,
														 "has_warning", strlen("has_warning"), NULL);

			warning = w != NULL && w->type == jbvBool && w->val.boolean;
		}
		v.type = jbvBool;
		v.val.boolean = true;
		put_value(ps, "has_error", &v);
		v.val.boolean = warning;
		put_value(ps, "has_warning", &v);
	}
	pushJsonbValue(ps, WJB_END_OBJECT, NULL);
}

/* The Dataset object: DESIGN.md's keys, counts from the counters minus expired classes. */
static JsonbValue *
push_dataset(JsonbParseState **ps, const Row *r)
{
	bool		isnull;
	int64		expired_classes = 0;
	int64		expired_images = 0;
	int64		expired_trainable = 0;
	Datum		earliest = col(r, D_EARLIEST_EXPIRATION, &isnull);

	/* Expiration moves with the clock: count expired classes once the earliest has passed. */
	if (!isnull && DatumGetTimestampTz(earliest) <= GetCurrentTransactionStartTimestamp())
		store_api_expired(r->values[D_ID], &expired_classes, &expired_images, &expired_trainable);

	pushJsonbValue(ps, WJB_BEGIN_OBJECT, NULL);
	put_uuid(ps, "id", r, D_ID);
	put_text(ps, "name", r, D_NAME);
	put_text(ps, "type", r, D_TYPE);
	put_issues(ps, r, expired_trainable);
	/* The seed writes the version as 1.0: a number with one decimal. */
	put_numeric(ps, "version",
				int64_div_fast_to_numeric((int64) DatumGetInt32(col(r, D_VERSION, &isnull)) * 10, 1));
	put_text(ps, "description", r, D_DESCRIPTION);
	put_time(ps, "time_created", r, D_TIME_CREATED);
	put_time(ps, "time_updated", r, D_TIME_UPDATED);

	put_key(ps, "preview_images");
	pushJsonbValue(ps, WJB_BEGIN_ARRAY, NULL);
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
				JsonbValue	v;

				if (nulls[i])
					continue;
				v.type = jbvString;
				v.val.string.val = uuid_string(elems[i], "image://");
				v.val.string.len = strlen(v.val.string.val);
				pushJsonbValue(ps, WJB_ELEM, &v);
			}
		}
	}
	pushJsonbValue(ps, WJB_END_ARRAY, NULL);

	put_int_col(ps, "evaluation_state", r, D_EVALUATION_STATE);
	put_int_col(ps, "number_of_images", r, D_IMAGES);
	put_jsonb_col(ps, "evaluation_result", r, D_EVALUATION_RESULT);
	put_int_col(ps, "number_of_classes", r, D_CLASSES);
	put_int(ps, "number_of_active_images",
			Max(0, (int64) DatumGetInt32(col(r, D_ACTIVE_IMAGES, &isnull)) - expired_images));
	put_int(ps, "number_of_active_classes",
			Max(0, (int64) DatumGetInt32(col(r, D_ACTIVE_CLASSES, &isnull)) - expired_classes));
	return pushJsonbValue(ps, WJB_END_OBJECT, NULL);
}

/*
 * The Model object at one version. Pushes nothing and returns NULL when there is no such
 * model or, with need_version, no such version.
 */
static JsonbValue *
push_model(JsonbParseState **ps, Datum model_id, Datum version, bool version_null, bool need_version,
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
		return NULL;
	number = col(&r, M_VERSION, &isnull);
	if (isnull && need_version)
		return NULL;
	*pushed = true;

	pushJsonbValue(ps, WJB_BEGIN_OBJECT, NULL);
	put_uuid(ps, "id", &r, M_ID);
	put_text(ps, "name", &r, M_NAME);
	put_text(ps, "type", &r, M_TYPE);
	put_jsonb_col(ps, "metrics", &r, M_METRICS);
	put_int_col(ps, "version", &r, M_VERSION);
	put_int(ps, "versions", DatumGetInt64(values[M_VERSIONS]));
	put_text(ps, "changelog", &r, M_CHANGELOG);
	if (isnull)
		put_null(ps, "reference");
	else
	{
		bool		nnull;
		text	   *name = DatumGetTextPP(col(&r, M_NAME, &nnull));
		char	   *ref = psprintf("%.*s==%d", (int) VARSIZE_ANY_EXHDR(name), VARDATA_ANY(name),
								   DatumGetInt32(number));

		put_cstring(ps, "reference", ref, strlen(ref));
	}
	put_uuid(ps, "version_id", &r, M_VERSION_ID);
	put_text(ps, "description", &r, M_DESCRIPTION);
	put_uuid(ps, "training_id", &r, M_TRAINING_ID);
	put_time(ps, "time_created", &r, M_TIME_CREATED);
	put_time(ps, "time_updated", &r, M_TIME_UPDATED);
	put_time(ps, "version_time_created", &r, M_VERSION_TIME_CREATED);
	return pushJsonbValue(ps, WJB_END_OBJECT, NULL);
}

/*
 * The Training object: exactly the keys of the seed's example. When the source dataset is gone,
 * source_dataset is last_dataset (jsonb, when given), else the snapshot kept with the version.
 */
static JsonbValue *
push_training(JsonbParseState **ps, const Row *row, Jsonb *last_dataset)
{
	Row			d = {row->values + T_NCOLS, row->nulls + T_NCOLS};
	bool		isnull;
	bool		vidnull;
	bool		pushed;
	text	   *error;
	Datum		model_id;

	pushJsonbValue(ps, WJB_BEGIN_OBJECT, NULL);
	put_uuid(ps, "id", row, T_ID);
	put_text(ps, "type", row, T_TYPE);
	error = DatumGetTextPP(col(row, T_ERROR, &isnull));
	put_cstring(ps, "error", isnull ? "" : VARDATA_ANY(error), isnull ? 0 : VARSIZE_ANY_EXHDR(error));
	put_text(ps, "state", row, T_STATE);
	put_jsonb_col(ps, "config", row, T_CONFIG);
	put_float_col(ps, "duration", row, T_DURATION);
	put_float_col(ps, "progress", row, T_PROGRESS);

	/*
	 * The version this training wrote (by id); null until there is one, and once it is deleted.
	 * Its number never goes to another version, so reading it by number reads that version.
	 */
	put_key(ps, "output_model");
	model_id = col(row, T_OUTPUT_MODEL_ID, &isnull);
	pushed = false;
	(void) col(row, T_OUTPUT_MODEL_VERSION_ID, &vidnull);
	if (!isnull && !vidnull)
	{
		bool		vnull;
		Datum		version = col(row, T_OUTPUT_MODEL_VERSION, &vnull);

		if (!vnull)
			push_model(ps, model_id, version, false, true, &pushed);
	}
	if (!pushed)
	{
		JsonbValue	v;

		v.type = jbvNull;
		pushJsonbValue(ps, WJB_VALUE, &v);
	}

	put_time(ps, "time_created", row, T_TIME_CREATED);
	put_time(ps, "time_started", row, T_TIME_STARTED);

	/* The live dataset; once it is deleted, the snapshot kept with the model version. */
	(void) col(&d, D_ID, &isnull);
	if (!isnull)
	{
		put_key(ps, "source_dataset");
		push_dataset(ps, &d);
	}
	else
	{
		Datum		snapshot;

		if (last_dataset != NULL)
			put_jsonb_datum(ps, "source_dataset", JsonbPGetDatum(last_dataset));
		else if (store_api_snapshot(row->values[T_ID], &snapshot))
			put_jsonb_datum(ps, "source_dataset", snapshot);
		else
			put_null(ps, "source_dataset");
	}

	put_time(ps, "time_completed", row, T_TIME_COMPLETED);
	put_text(ps, "output_model_name", row, T_OUTPUT_MODEL_NAME);
	put_text(ps, "output_model_changelog", row, T_OUTPUT_MODEL_CHANGELOG);
	put_text(ps, "output_model_description", row, T_OUTPUT_MODEL_DESCRIPTION);
	return pushJsonbValue(ps, WJB_END_OBJECT, NULL);
}

/* The Training object of id rendered from the rows, in context mcxt; NULL when not visible. */
static Jsonb *
render_training(Datum id, MemoryContext mcxt)
{
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	Datum		values[T_NCOLS + D_NCOLS];
	bool		nulls[T_NCOLS + D_NCOLS];
	ApiRow		row = {values, nulls};
	Row			r = {values, nulls};
	MemoryContext old;
	Jsonb	   *out;

	if (!store_api_training(id, &row))
		return NULL;
	res = push_training(&ps, &r, NULL);
	old = MemoryContextSwitchTo(mcxt);
	out = JsonbValueToJsonb(res);
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
	Datum		object;
	bool		fresh;
	Jsonb	   *out;

	require_arg(fcinfo, 0, "training id", "Pass the id of a training (see training.list_trainings()).");
	id = PG_GETARG_DATUM(0);
	SPI_connect();
	if (!store_api_training_object(id, &object, &fresh))
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("training %s not found", uuid_string(id, NULL)),
				 errhint("Check the id with training.list_trainings().")));
	if (fresh)
	{
		MemoryContextSwitchTo(caller);
		out = DatumGetJsonbPCopy(object);
	}
	else
	{
		out = render_training(id, caller);
		if (out == NULL)
			elog(ERROR, "training: training %s vanished while it was read", uuid_string(id, NULL));
	}
	SPI_finish();
	PG_RETURN_JSONB_P(out);
}

/* training.get_dataset(id uuid) RETURNS jsonb */
Datum
training_get_dataset(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	Datum		values[D_NCOLS];
	bool		nulls[D_NCOLS];
	ApiRow		row = {values, nulls};
	Row			r = {values, nulls};
	Datum		id;
	Jsonb	   *out;

	require_arg(fcinfo, 0, "dataset id", "Pass the id of a dataset (see training.list_datasets()).");
	id = PG_GETARG_DATUM(0);
	SPI_connect();
	if (!store_api_dataset(id, &row))
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("dataset %s not found", uuid_string(id, NULL)),
				 errhint("Check the id with training.list_datasets().")));
	res = push_dataset(&ps, &r);
	MemoryContextSwitchTo(caller);
	out = JsonbValueToJsonb(res);
	SPI_finish();
	PG_RETURN_JSONB_P(out);
}

/* training.model_json(model_id uuid, version integer) RETURNS jsonb; NULL when no such model. */
Datum
training_model_json(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	bool		pushed;
	Jsonb	   *out = NULL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	SPI_connect();
	res = push_model(&ps, PG_GETARG_DATUM(0), PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1),
					 PG_ARGISNULL(1), false, &pushed);
	if (pushed)
	{
		MemoryContextSwitchTo(caller);
		out = JsonbValueToJsonb(res);
	}
	SPI_finish();
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
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	Datum	   *ids;
	bool	   *idnulls;
	int			n;
	Jsonb	   *out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(0), UUIDOID, UUID_LEN, false, TYPALIGN_CHAR,
					  &ids, &idnulls, &n);
	SPI_connect();
	pushJsonbValue(&ps, WJB_BEGIN_ARRAY, NULL);
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
			Datum		object;
			bool		fresh;

			if (!store_api_training_object(ids[i], &object, &fresh))
				continue;
			if (fresh)
				put_jsonb_elem(&ps, object);
			else if (store_api_training(ids[i], &row))
				push_training(&ps, &r, NULL);
		}
		else if (store_api_dataset(ids[i], &row))
			push_dataset(&ps, &r);
	}
	res = pushJsonbValue(&ps, WJB_END_ARRAY, NULL);
	MemoryContextSwitchTo(caller);
	out = JsonbValueToJsonb(res);
	SPI_finish();
	PG_RETURN_JSONB_P(out);
}

PG_FUNCTION_INFO_V1(training_trainings_json);
PG_FUNCTION_INFO_V1(training_datasets_json);

/* training.trainings_json(ids uuid[]) RETURNS jsonb: Training objects in the order of ids. */
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
 * Trigger BEFORE INSERT OR UPDATE ON training.trainings (the last of them): keep the Training
 * object with the row (object), and when a class of its dataset expires (object_stale_at), so
 * that get_training and list_trainings read it instead of rendering it. Once the dataset is
 * deleted, source_dataset stays as it was last rendered.
 */
Datum
training_trainings_object(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	MemoryContext caller = CurrentMemoryContext;
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	TupleDesc	desc;
	HeapTuple	tuple;
	Datum		values[T_NCOLS + D_NCOLS];
	bool		nulls[T_NCOLS + D_NCOLS];
	ApiRow		row = {values, nulls};
	Row			r = {values, nulls};
	Jsonb	   *last_dataset = NULL;
	bool		has_dataset;
	int			cols[2];
	Datum		newvals[2];
	bool		newnulls[2] = {false, true};
	text	   *state;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event)
		|| !TRIGGER_FIRED_FOR_ROW(td->tg_event) || TRIGGER_FIRED_BY_DELETE(td->tg_event))
		elog(ERROR, "training: _trainings_object must be a BEFORE INSERT OR UPDATE row trigger");
	tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	if (tr_restoring_dump())
		return PointerGetDatum(tuple);
	desc = RelationGetDescr(td->tg_relation);
	cols[0] = SPI_fnumber(desc, "object");
	cols[1] = SPI_fnumber(desc, "object_stale_at");
	if (cols[0] <= 0 || cols[1] <= 0)
		elog(ERROR, "training: trainings.object is missing from the catalog");

	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		bool		isnull;
		Datum		old = heap_getattr(td->tg_trigtuple, cols[0], desc, &isnull);

		if (!isnull)
		{
			JsonbValue	key;
			JsonbValue *v;

			key.type = jbvString;
			key.val.string.val = "source_dataset";
			key.val.string.len = strlen("source_dataset");
			v = findJsonbValueFromContainer(&DatumGetJsonbP(old)->root, JB_FOBJECT, &key);
			if (v != NULL && v->type == jbvBinary)
				last_dataset = JsonbValueToJsonb(v);
		}
	}

	SPI_connect();
	has_dataset = store_api_training_tuple(tuple, desc, &row);
	res = push_training(&ps, &r, last_dataset);
	MemoryContextSwitchTo(caller);
	newvals[0] = JsonbPGetDatum(JsonbValueToJsonb(res));
	/* Until it completes or fails, the object follows the dataset's expiring classes. */
	state = DatumGetTextPP(values[T_STATE]);
	if (has_dataset && !nulls[T_NCOLS + D_EARLIEST_EXPIRATION]
		&& (text_equals(state, "waiting") || text_equals(state, "processing")))
	{
		newvals[1] = values[T_NCOLS + D_EARLIEST_EXPIRATION];
		newnulls[1] = false;
	}
	else
		newvals[1] = (Datum) 0;
	tuple = heap_modify_tuple_by_cols(tuple, desc, 2, cols, newvals, newnulls);
	SPI_finish();
	return PointerGetDatum(tuple);
}
