/*
 * store_api.h: reading the rows behind the API's JSON objects (see store_api.c).
 *
 * Each reader fills values/nulls arrays in the column order of the enums below, whichever
 * way it read them: directly by primary key (when no row-level security applies to the
 * caller and SELECT is granted) or through SPI (otherwise, so that policies apply). Call
 * between SPI_connect and SPI_finish; the values live until SPI_finish.
 */
#ifndef TRAINING_STORE_API_H
#define TRAINING_STORE_API_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"

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

/* A row read by one of the functions below. */
typedef struct ApiRow
{
	Datum	   *values;
	bool	   *nulls;
} ApiRow;

/*
 * The training with this id and its source dataset: T_NCOLS training values, then D_NCOLS
 * dataset values (all null when the dataset is gone). False when there is no such training
 * (or the caller may not see it).
 */
extern bool store_api_training(Datum id, ApiRow *row);

/*
 * The training in tuple (a row of training.trainings with descriptor desc, e.g. a trigger's
 * new row) and its source dataset read as store_api_training() does; false when the dataset
 * is gone or not visible (its values are then null).
 */
extern bool store_api_training_tuple(HeapTuple tuple, TupleDesc desc, ApiRow *row);

/*
 * The Training object kept with the row of this training (trainings.object); *fresh when it
 * can be returned as it is: kept, no class of its dataset expired since, and no output version
 * (whose Model object has live counts). False when there is no such training.
 */
extern bool store_api_training_object(Datum id, Datum *object, bool *fresh);

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

#endif
