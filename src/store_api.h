/*
 * store_api.h: the queries behind the API's JSON objects (SPI; see store_api.c).
 *
 * Each query returns at most one row. Column numbers are 1-based (SPI_getbinval). The Dataset
 * columns (D_*) are offsets from a base column, so that the training query embeds them and one
 * renderer serves get_training and get_dataset.
 */
#ifndef TRAINING_STORE_API_H
#define TRAINING_STORE_API_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"

typedef enum StoreApiQuery
{
	SQ_TRAINING = 0,			/* $1 training id: training and dataset columns */
	SQ_DATASET,					/* $1 dataset id: dataset columns */
	SQ_EXPIRED,					/* $1 dataset id: expired active classes, their active images */
	SQ_MODEL,					/* $1 model id, $2 version number (NULL: none): model columns */
	SQ_SNAPSHOT,				/* $1 training id: dataset snapshot of its model version */
	SQ_COUNT
} StoreApiQuery;

/* Training columns of SQ_TRAINING. */
enum
{
	T_ID = 1, T_TYPE, T_STATE, T_PROGRESS, T_DURATION, T_ERROR,
	T_TIME_CREATED, T_TIME_STARTED, T_TIME_COMPLETED,
	T_OUTPUT_MODEL_NAME, T_CONFIG, T_OUTPUT_MODEL_DESCRIPTION, T_OUTPUT_MODEL_CHANGELOG,
	T_OUTPUT_MODEL_ID, T_OUTPUT_MODEL_VERSION,
	T_DATASET_BASE				/* first Dataset column */
};

/* Dataset columns, offsets from a base. */
enum
{
	D_ID = 0, D_NAME, D_DESCRIPTION, D_VERSION, D_TYPE, D_TIME_CREATED, D_TIME_UPDATED,
	D_CLASSES, D_ACTIVE_CLASSES, D_IMAGES, D_ACTIVE_IMAGES,
	D_EVALUATION_RESULT, D_EVALUATION_STATE, D_ISSUES,
	D_PREVIEWS,					/* uuid[] kept by triggers */
	D_EARLIEST_EXPIRATION,		/* timestamptz kept by triggers */
	D_NCOLS
};

/* Columns of SQ_EXPIRED. */
enum
{
	E_CLASSES = 1, E_ACTIVE_IMAGES
};

/* Columns of SQ_MODEL. */
enum
{
	M_ID = 1, M_NAME, M_DESCRIPTION, M_TYPE, M_TIME_CREATED, M_TIME_UPDATED,
	M_VERSION, M_VERSION_ID, M_CHANGELOG, M_METRICS, M_TRAINING_ID, M_VERSION_TIME_CREATED,
	M_VERSIONS					/* number of versions of the model */
};

/*
 * Run query q with args (nulls as for SPI_execute_plan, may be NULL) and return its row, or
 * NULL when there is none. Call between SPI_connect and SPI_finish; the row lives until then.
 */
extern HeapTuple store_api_row(StoreApiQuery q, Datum *args, const char *nulls, TupleDesc *desc);

#endif
