/*
 * store_api.c: reading the rows behind the API's JSON objects (get_training, get_dataset,
 * get_model and the list functions).
 *
 * get_training is called as often as a plain row select, so its rows are read directly by
 * primary key (an index scan under the caller's snapshot, as the executor would do) when that
 * is equivalent to a query: the caller has SELECT on the table and no row-level security
 * applies to it. Otherwise (policies apply, e.g. an ordinary role under 40_access.sql) the same
 * rows are read through SPI with saved plans, so that the policies filter them. Rare parts
 * (expired classes, dataset snapshots) always go through SPI.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/snapmgr.h"
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
static const char *const model_columns[M_VERSION] = {
	"id", "name", "description", "type", "time_created", "time_updated"
};
static const char *const version_columns[M_VERSIONS - M_VERSION] = {
	"version_number", "id", "changelog", "metrics", "training_id", "time_created"
};

/* SPI queries, each returning its columns in the enum order. */
typedef enum SpiQuery
{
	SQ_TRAINING,				/* $1 training id: T_NCOLS + D_NCOLS columns */
	SQ_DATASET,					/* $1 dataset id: D_NCOLS */
	SQ_MODEL,					/* $1 model id, $2 version: M_NCOLS */
	SQ_EXPIRED,					/* $1 dataset id: 2 */
	SQ_SNAPSHOT,				/* $1 training id: 1 */
	SQ_RESOLVE,					/* $1 model reference: version id, number, model name */
	SQ_RESOLVE_ERROR,			/* $1 model reference: raises resolve_model_version()'s error */
	SQ_PARAMETERS,				/* $1 version id: 1 */
	SQ_REFERENCE,				/* $1 class id: 1 */
	SQ_COUNT
} SpiQuery;

#define DS_COLUMNS \
	"d.id, d.name, d.description, d.version, d.type, d.time_created, d.time_updated, " \
	"d.number_of_classes, d.number_of_active_classes, d.number_of_images, d.number_of_active_images, " \
	"d.evaluation_result, d.evaluation_state, d.issues, d.preview_images, d.earliest_expiration, " \
	"d.number_of_trainable_classes"

static const struct
{
	const char *sql;
	int			nargs;
	Oid			argtypes[2];
	int			ncols;
}			queries[SQ_COUNT] = {
	[SQ_TRAINING] = {
		"SELECT t.id, t.type, t.state, t.progress, t.duration, t.error, "
		"       t.time_created, t.time_started, t.time_completed, "
		"       t.output_model_name, t.config, t.output_model_description, t.output_model_changelog, "
		"       t.output_model_id, t.output_model_version, t.source_dataset_id, t.output_model_version_id, "
		DS_COLUMNS
		"  FROM training.trainings t"
		"  LEFT JOIN training.datasets d ON d.id = t.source_dataset_id"
		" WHERE t.id = $1",
		1, {UUIDOID}, T_NCOLS + D_NCOLS
	},
	[SQ_DATASET] = {
		"SELECT " DS_COLUMNS " FROM training.datasets d WHERE d.id = $1",
		1, {UUIDOID}, D_NCOLS
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

/* Run query q and deform its row into values/nulls from offset; false when there is none. */
static bool
spi_row(SpiQuery q, Datum *args, const char *nulls, Datum *values, bool *isnull)
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
	if (SPI_processed == 0)
		return false;
	if (SPI_tuptable->tupdesc->natts != queries[q].ncols)
		elog(ERROR, "training: API query returned %d columns, expected %d",
			 SPI_tuptable->tupdesc->natts, queries[q].ncols);
	heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, values, isnull);
	return true;
}

/*
 * Open a table of the training schema for a direct read, or return NULL when the read must
 * go through SPI: no active snapshot, no SELECT privilege, or row-level security applies.
 */
static Relation
direct_open(const char *relname)
{
	Oid			nsp;
	Oid			relid;

	if (!ActiveSnapshotSet())
		return NULL;
	nsp = get_namespace_oid("training", true);
	if (!OidIsValid(nsp))
		return NULL;
	relid = get_relname_relid(relname, nsp);
	if (!OidIsValid(relid))
		return NULL;
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		return NULL;
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return NULL;
	return table_open(relid, AccessShareLock);
}

/*
 * Rows of rel whose leading index columns equal keys (idxname NULL: the primary key), visible
 * to the active snapshot: copies the first into *first when asked, and returns how many there
 * are (at most limit), or -1 when the index does not exist.
 */
static int64
direct_scan(Relation rel, const char *idxname, int nkeys, const Datum *keys,
			const RegProcedure *procs, HeapTuple *first, int64 limit)
{
	Oid			idxid;
	Relation	idx;
	ScanKeyData skey[2];
	IndexScanDesc scan;
	TupleTableSlot *slot;
	int64		n = 0;

	Assert(nkeys >= 1 && nkeys <= 2);
	idxid = idxname ? get_relname_relid(idxname, RelationGetNamespace(rel))
		: RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(idxid))
		return -1;
	idx = index_open(idxid, AccessShareLock);
	for (int i = 0; i < nkeys; i++)
		ScanKeyInit(&skey[i], i + 1, BTEqualStrategyNumber, procs[i], keys[i]);
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), nkeys, 0);
	index_rescan(scan, skey, nkeys, NULL, 0);
	slot = table_slot_create(rel, NULL);
	while (n < limit && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		if (n == 0 && first != NULL)
			*first = ExecCopySlotHeapTuple(slot);
		n++;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, NoLock);
	return n;
}

/*
 * Attribute numbers of named columns, cached per table. A table's attribute numbers change
 * only when columns are added (natts grows) or the table is recreated (a new OID).
 */
typedef struct ColumnMap
{
	const char *const *names;
	Oid			relid;
	int			natts;
	AttrNumber	attnums[32];		/* >= T_NCOLS, D_NCOLS */
} ColumnMap;

static ColumnMap column_maps[4];

static const AttrNumber *
column_map(Relation rel, const char *const *names, int ncols)
{
	TupleDesc	desc = RelationGetDescr(rel);
	ColumnMap  *m = NULL;

	for (int i = 0; i < (int) lengthof(column_maps); i++)
		if (column_maps[i].names == names || column_maps[i].names == NULL)
		{
			m = &column_maps[i];
			break;
		}
	Assert(m != NULL && ncols <= (int) lengthof(m->attnums));
	if (m->names == names && m->relid == RelationGetRelid(rel) && m->natts == desc->natts)
		return m->attnums;
	for (int i = 0; i < ncols; i++)
	{
		int			att = SPI_fnumber(desc, names[i]);

		if (att <= 0)
			elog(ERROR, "training: column \"%s\" of %s is missing",
				 names[i], RelationGetRelationName(rel));
		m->attnums[i] = att;
	}
	m->names = names;
	m->relid = RelationGetRelid(rel);
	m->natts = desc->natts;
	return m->attnums;
}

/* Copy the named columns of a table row into values/nulls (in the order of names). */
static void
deform_named(Relation rel, HeapTuple tuple, const char *const *names, int ncols,
			 Datum *values, bool *isnull)
{
	TupleDesc	desc = RelationGetDescr(rel);
	const AttrNumber *attnums = column_map(rel, names, ncols);
	Datum	   *v = palloc(desc->natts * sizeof(Datum));
	bool	   *n = palloc(desc->natts * sizeof(bool));

	heap_deform_tuple(tuple, desc, v, n);
	for (int i = 0; i < ncols; i++)
	{
		values[i] = v[attnums[i] - 1];
		isnull[i] = n[attnums[i] - 1];
	}
}

/* Read one row of relname by primary key: 1 found, 0 not found, -1 use SPI. */
static int
direct_pk_row(const char *relname, Datum id, const char *const *names, int ncols,
			  Datum *values, bool *isnull)
{
	static const RegProcedure uuid_eq[1] = {F_UUID_EQ};
	Relation	rel = direct_open(relname);
	HeapTuple	tuple = NULL;
	int64		n;

	if (rel == NULL)
		return -1;
	n = direct_scan(rel, NULL, 1, &id, uuid_eq, &tuple, 1);
	if (n > 0)
		deform_named(rel, tuple, names, ncols, values, isnull);
	table_close(rel, NoLock);
	return n < 0 ? -1 : (int) n;
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
	int			found = direct_pk_row("datasets", id, dataset_columns, D_NCOLS,
									  row->values, row->nulls);

	if (found >= 0)
		return found == 1;
	return spi_row(SQ_DATASET, &id, NULL, row->values, row->nulls);
}

bool
store_api_training(Datum id, ApiRow *row)
{
	int			found = direct_pk_row("trainings", id, training_columns, T_NCOLS,
									  row->values, row->nulls);
	ApiRow		dataset = {row->values + T_NCOLS, row->nulls + T_NCOLS};

	if (found < 0)
		return spi_row(SQ_TRAINING, &id, NULL, row->values, row->nulls);
	if (found == 0)
		return false;
	if (row->nulls[T_SOURCE_DATASET_ID]
		|| !store_api_dataset(row->values[T_SOURCE_DATASET_ID], &dataset))
		set_all_null(dataset.values, dataset.nulls, D_NCOLS);
	return true;
}

/* The model read directly: 1 found, 0 not found, -1 use SPI. */
static int
direct_model(Datum id, Datum version, bool version_null, ApiRow *row)
{
	static const RegProcedure eq[2] = {F_UUID_EQ, F_INT4EQ};
	Relation	versions;
	int			found;
	int64		count;
	HeapTuple	tuple = NULL;
	Datum		keys[2] = {id, version};

	found = direct_pk_row("models", id, model_columns, M_VERSION, row->values, row->nulls);
	if (found <= 0)
		return found;
	versions = direct_open("model_versions");
	if (versions == NULL)
		return -1;
	set_all_null(row->values + M_VERSION, row->nulls + M_VERSION, M_VERSIONS - M_VERSION);
	count = direct_scan(versions, "model_versions_number_unique", 1, keys, eq, NULL, PG_INT64_MAX);
	if (count >= 0 && !version_null)
	{
		if (direct_scan(versions, "model_versions_number_unique", 2, keys, eq, &tuple, 1) > 0)
			deform_named(versions, tuple, version_columns, M_VERSIONS - M_VERSION,
						 row->values + M_VERSION, row->nulls + M_VERSION);
	}
	table_close(versions, NoLock);
	if (count < 0)
		return -1;
	row->values[M_VERSIONS] = Int64GetDatum(count);
	row->nulls[M_VERSIONS] = false;
	return 1;
}

bool
store_api_model(Datum id, Datum version, bool version_null, ApiRow *row)
{
	Datum		args[2] = {id, version};
	char		nulls[3] = {' ', version_null ? 'n' : ' ', '\0'};
	int			found = direct_model(id, version, version_null, row);

	if (found >= 0)
		return found == 1;
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
