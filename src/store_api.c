/*
 * store_api.c: SPI queries of the API's JSON objects (get_training, get_dataset, models).
 *
 * One saved plan per query; rendering a waiting training costs one executor run of a two-row
 * join. The queries run as the caller (row-level security applies) and read the trigger-kept
 * counters and previews of datasets; expired classes are counted only when a dataset's
 * earliest expiration has passed, models only for trainings that wrote a version.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"

#include "store_api.h"

/* The Dataset columns (D_* order) of "training.datasets d". */
#define DS_COLUMNS \
	"d.id, d.name, d.description, d.version, d.type, d.time_created, d.time_updated, " \
	"d.number_of_classes, d.number_of_active_classes, d.number_of_images, d.number_of_active_images, " \
	"d.evaluation_result, d.evaluation_state, d.issues, d.preview_images, d.earliest_expiration"

static const struct
{
	const char *sql;
	int			nargs;
	Oid			argtypes[2];
}			queries[SQ_COUNT] = {
	[SQ_TRAINING] = {
		"SELECT t.id, t.type, t.state, t.progress, t.duration, t.error, "
		"       t.time_created, t.time_started, t.time_completed, "
		"       t.output_model_name, t.config, t.output_model_description, t.output_model_changelog, "
		"       t.output_model_id, t.output_model_version, " DS_COLUMNS
		"  FROM training.trainings t"
		"  LEFT JOIN training.datasets d ON d.id = t.source_dataset_id"
		" WHERE t.id = $1",
		1, {UUIDOID}
	},
	[SQ_DATASET] = {
		"SELECT " DS_COLUMNS " FROM training.datasets d WHERE d.id = $1",
		1, {UUIDOID}
	},
	[SQ_EXPIRED] = {
		"SELECT count(*), coalesce(sum(x.number_of_active_images), 0)::bigint"
		"  FROM training.classes x"
		" WHERE x.dataset_id = $1 AND x.active AND x.expiration_date <= now()",
		1, {UUIDOID}
	},
	[SQ_MODEL] = {
		"SELECT m.id, m.name, m.description, m.type, m.time_created, m.time_updated, "
		"       v.version_number, v.id, v.changelog, v.metrics, v.training_id, v.time_created, "
		"       (SELECT count(*) FROM training.model_versions n WHERE n.model_id = m.id)"
		"  FROM training.models m"
		"  LEFT JOIN training.model_versions v ON v.model_id = m.id AND v.version_number = $2"
		" WHERE m.id = $1",
		2, {UUIDOID, INT4OID}
	},
	[SQ_SNAPSHOT] = {
		"SELECT s.dataset FROM training.model_versions s WHERE s.training_id = $1 LIMIT 1",
		1, {UUIDOID}
	},
};

static SPIPlanPtr plans[SQ_COUNT];

HeapTuple
store_api_row(StoreApiQuery q, Datum *args, const char *nulls, TupleDesc *desc)
{
	int			rc;

	Assert(q >= 0 && q < SQ_COUNT);
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
		return NULL;
	*desc = SPI_tuptable->tupdesc;
	return SPI_tuptable->vals[0];
}
