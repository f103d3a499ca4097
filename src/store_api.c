/*
 * store_api.c: reading the rows behind the API's JSON objects (get_training, get_dataset,
 * get_model, the list functions and recognize()).
 *
 * One read path: every row is read through SPI with a plan prepared once per session, under
 * the caller's rights, so that row-level security and privileges apply as they would to the
 * caller's own query. Rows are read with `SELECT *` by primary key: the scan returns the
 * table's row as it is (no projection), and the columns are picked by name.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "access/xact.h"
#include "utils/datum.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "store_api.h"

/* Column names in the enum orders of store_api.h. */
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
	SQ_OBJECT,					/* $1 training id: object, object_stale_at, output_model_version_id */
	SQ_MODEL,					/* $1 model id, $2 version: M_NCOLS */
	SQ_EXPIRED,					/* $1 dataset id: 2 */
	SQ_SNAPSHOT,				/* $1 training id: 1 */
	SQ_RESOLVE,					/* $1 model reference: version id, number, model name */
	SQ_RESOLVE_ERROR,			/* $1 model reference: raises resolve_model_version()'s error */
	SQ_PARAMETERS,				/* $1 version id: 1 */
	SQ_REFERENCE,				/* $1 class id: 1 */
	SQ_COUNT
} SpiQuery;

static const struct
{
	const char *sql;
	int			nargs;
	Oid			argtypes[2];
	int			ncols;
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
		"SELECT t.object, t.object_stale_at, t.output_model_version_id"
		"  FROM training.trainings t WHERE t.id = $1",
		1, {UUIDOID}, 3
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
};

static SPIPlanPtr plans[SQ_COUNT];

/* Run query q (prepared once per session and kept); true when it returned a row. */
static bool
spi_exec(SpiQuery q, Datum *args, const char *nulls)
{
	int			rc;

	if (plans[q] == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(queries[q].sql, queries[q].nargs,
									   (Oid *) queries[q].argtypes);

		if (plan == NULL)
			elog(ERROR, "training: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "training: SPI_keepplan failed");
		plans[q] = plan;
	}
	rc = SPI_execute_plan(plans[q], args, nulls, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "training: API query failed: %s", SPI_result_code_string(rc));
	return SPI_processed > 0;
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

/*
 * Run a `SELECT *` query q by primary key and copy the named columns of its row into
 * values/nulls, in the order of names; false when there is no row the caller can see.
 */
static bool
spi_named_row(SpiQuery q, Datum id, const char *const *names, int ncols,
			  Datum *values, bool *isnull)
{
	static ColumnMap maps[SQ_COUNT];
	TupleDesc	desc;
	const AttrNumber *attnums;
	Datum	   *v;
	bool	   *n;

	if (!spi_exec(q, &id, NULL))
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
store_api_training(Datum id, ApiRow *row)
{
	ApiRow		dataset = {row->values + T_NCOLS, row->nulls + T_NCOLS};

	if (!spi_named_row(SQ_TRAINING, id, training_columns, T_NCOLS, row->values, row->nulls))
		return false;
	if (row->nulls[T_SOURCE_DATASET_ID]
		|| !store_api_dataset(row->values[T_SOURCE_DATASET_ID], &dataset))
		set_all_null(dataset.values, dataset.nulls, D_NCOLS);
	return true;
}

bool
store_api_training_tuple(HeapTuple tuple, TupleDesc desc, ApiRow *row)
{
	static ColumnMap map;
	const AttrNumber *attnums = column_map(&map, desc, training_columns, T_NCOLS);
	ApiRow		dataset = {row->values + T_NCOLS, row->nulls + T_NCOLS};

	for (int i = 0; i < T_NCOLS; i++)
		row->values[i] = heap_getattr(tuple, attnums[i], desc, &row->nulls[i]);
	if (row->nulls[T_SOURCE_DATASET_ID]
		|| !store_api_dataset(row->values[T_SOURCE_DATASET_ID], &dataset))
	{
		set_all_null(dataset.values, dataset.nulls, D_NCOLS);
		return false;
	}
	return true;
}

bool
store_api_training_object(Datum id, Datum *object, bool *fresh)
{
	Datum		v[3];
	bool		n[3];

	*fresh = false;
	if (!spi_row(SQ_OBJECT, &id, NULL, v, n))
		return false;
	*object = v[0];
	*fresh = !n[0] && n[2]
		&& (n[1] || DatumGetTimestampTz(v[1]) > GetCurrentTransactionStartTimestamp());
	return true;
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
