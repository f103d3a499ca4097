/*
 * embeddings.c: the embedding store from SQL. training.dataset_features(dataset_id, config)
 * returns, for every image a training of the dataset would read, what that training would do
 * with it and the features it would use, from the store; images without a kept measurement are
 * measured now and kept. feature_issues() runs the data-quality checks on such features.
 * evaluate_dataset() is built on both. Rows are read through store.c.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "config.h"
#include "dataquality.h"
#include "json.h"
#include "deep.h"
#include "deepfeat.h"
#include "interrupt.h"
#include "measure.h"
#include "recognize.h"
#include "settings.h"
#include "store.h"

PG_FUNCTION_INFO_V1(training_dataset_features);
PG_FUNCTION_INFO_V1(training_feature_issues);

/* Images read (and at most measured) per batch. */
#define TR_FEATURES_BATCH 16

enum
{
	F_IMAGE_ID, F_CLASS_ID, F_KIND, F_FROM_STORE, F_RESULT, F_BOX, F_FEATURES, F_NCOLS
};

/* The measurement a config can use: the kept one, else the image measured now (to keep). */
static const tr_measure *
usable_measure(const tr_config *cfg, const TrBatchNeeds *needs, TrImageRow *row, TrKeep *keep,
			   int *nkeep, bool *from_store)
{
	char		err[TR_ERRLEN];
	TrKeep	   *kp = &keep[*nkeep];
	int			rc;

	*from_store = store_measure_serves(row, needs);
	if (*from_store)
		return &row->measure;
	if (row->data == NULL)		/* deleted since the batch was read */
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("image %s changed while it was read",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&row->id)))),
				 errhint("Run it again.")));
	rc = tr_measure_image(cfg, (const uint8_t *) VARDATA_ANY(row->data), VARSIZE_ANY_EXHDR(row->data),
						  row->has_box ? row->box : NULL,
						  TR_MEASURE_FEATURES | (cfg->measure_gender ? TR_MEASURE_GENDER : 0),
						  &kp->measure, NULL, err, sizeof(err));
	if (rc == 0 && tr_interrupted())
		tr_measure_free(&kp->measure);
	if (rc == TR_CANCELED || tr_interrupted())
		CHECK_FOR_INTERRUPTS();
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("feature extraction failed: %s", err)));
	/* Into palloc'd memory: the next error must not leak it. */
	if (kp->measure.features)
	{
		size_t		bytes = sizeof(float) * kp->measure.dim * kp->measure.nregions;
		float	   *copy = palloc_extended(bytes, MCXT_ALLOC_NO_OOM);

		if (copy)
			memcpy(copy, kp->measure.features, bytes);
		free(kp->measure.features);
		kp->measure.features = copy;
		if (copy == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	kp->id = row->id;
	kp->content_version = row->content_version;
	strlcpy(kp->kind, cfg->features, sizeof(kp->kind));
	(*nkeep)++;
	return &kp->measure;
}

/* One output row for an image. */
static void
put_row(Tuplestorestate *ts, TupleDesc desc, Datum class_id, const tr_config *cfg,
		const TrImageRow *row, const tr_measure *m, bool from_store)
{
	Datum		values[F_NCOLS];
	bool		nulls[F_NCOLS];
	char		err[TR_ERRLEN] = "";
	double		sharpness;
	int			k;
	tr_skip		why = tr_measure_choose(cfg, m, &k, &sharpness, err, sizeof(err));

	memset(nulls, true, sizeof(nulls));
	values[F_IMAGE_ID] = UUIDPGetDatum(&row->id);
	values[F_CLASS_ID] = class_id;
	values[F_KIND] = CStringGetTextDatum(cfg->features);
	values[F_FROM_STORE] = BoolGetDatum(from_store);
	values[F_RESULT] = JsonbPGetDatum(tr_check_result_jsonb(why, err, sharpness,
															why == TR_SKIP_NONE && cfg->type == TR_FACE
															? m->regions[k].p_male : -1));
	nulls[F_IMAGE_ID] = nulls[F_CLASS_ID] = nulls[F_KIND] = nulls[F_FROM_STORE] = nulls[F_RESULT] = false;
	if (why == TR_SKIP_NONE)
	{
		Datum		box[4] = {Int32GetDatum(m->regions[k].box.x), Int32GetDatum(m->regions[k].box.y),
		Int32GetDatum(m->regions[k].box.w), Int32GetDatum(m->regions[k].box.h)};
		Datum	   *f = palloc(sizeof(Datum) * m->dim);

		values[F_BOX] = PointerGetDatum(construct_array(box, 4, INT4OID, 4, true, TYPALIGN_INT));
		for (int i = 0; i < m->dim; i++)
			f[i] = Float4GetDatum(m->features[(size_t) k * m->dim + i]);
		values[F_FEATURES] = PointerGetDatum(construct_array(f, m->dim, FLOAT4OID, 4, true, TYPALIGN_INT));
		nulls[F_BOX] = nulls[F_FEATURES] = false;
	}
	tuplestore_putvalues(ts, desc, values, nulls);
}

/*
 * training.dataset_features(dataset_id uuid, config jsonb) → SETOF (image_id, class_id, kind,
 * from_store, result, box, features): for each active image of the dataset's active, unexpired
 * classes (a training's order): check_image()'s result for the config, and the region and
 * feature vector a training would use (null when skipped). P0002 for an unknown dataset.
 */
Datum
training_dataset_features(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	tr_config	cfg;
	tr_features kind;
	TrBatchNeeds needs;
	char	   *type;
	Datum	   *class_ids;
	int			nclasses;
	MemoryContext batch_cxt,
				old;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dataset id must not be NULL"),
				 errhint("Pass the id of a dataset (see training.list_datasets()).")));
	InitMaterializedSRF(fcinfo, 0);
	store_api_connect();
	type = store_api_dataset_classes(PG_GETARG_DATUM(0), &class_ids, &nclasses);
	if (type == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("dataset %s not found", DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(0)))),
				 errhint("Check the id with training.list_datasets().")));
	tr_config_from_sql(&cfg, cstring_to_text(type), PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1));
	tr_config_resolve_server(&cfg);
	cfg.measure_gender = cfg.type == TR_FACE && tr_deep_gender_available(cfg.model_dir);
	tr_config_kind(&cfg, &kind);
	needs.kind = cfg.features;
	needs.dim = kind.dim;
	needs.max_pixels = cfg.max_image_pixels;
	needs.gender = cfg.measure_gender;

	batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "training dataset_features", ALLOCSET_DEFAULT_SIZES);
	for (int c = 0; c < nclasses; c++)
	{
		TrImageKey	key;
		int			n,
					fetched;

		memset(&key, 0, sizeof(key));
		do
		{
			TrImageRow *rows;
			TrKeep		keep[TR_FEATURES_BATCH];
			int			nkeep = 0;

			/* Everything of a batch in batch_cxt (SPI calls leave their own context current). */
			MemoryContextReset(batch_cxt);
			old = MemoryContextSwitchTo(batch_cxt);
			n = store_api_image_batch(class_ids[c], &key, TR_FEATURES_BATCH, &needs, &rows, &fetched,
									  batch_cxt);
			for (int i = 0; i < n; i++)
			{
				bool		from_store;
				const tr_measure *m;

				CHECK_FOR_INTERRUPTS();
				m = usable_measure(&cfg, &needs, &rows[i], keep, &nkeep, &from_store);
				/* The tuplestore copies the row into its own memory. */
				put_row(rsinfo->setResult, rsinfo->setDesc, class_ids[c], &cfg, &rows[i], m, from_store);
			}
			store_api_keep_measures(keep, nkeep);
			MemoryContextSwitchTo(old);
		} while (fetched == TR_FEATURES_BATCH);
	}
	MemoryContextDelete(batch_cxt);
	store_api_finish();
	return (Datum) 0;
}

/* The uuid[] argument's elements (no NULLs), or an error naming the argument. */
static Datum *
uuid_elems(ArrayType *a, const char *what, int *n)
{
	Datum	   *elems;
	bool	   *nulls;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array", what)));
	deconstruct_array(a, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR, &elems, &nulls, n);
	for (int i = 0; i < *n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL", what)));
	return elems;
}

typedef struct ClassIndex
{
	pg_uuid_t	id;
	int			index;
} ClassIndex;

/* A report's image list as uuids: [ids[rows[0]], ...]. */
static void
put_ids(JsonBuilder *b, const Datum *ids, const int *rows, int n)
{
	jb_begin_array(b);
	for (int i = 0; i < n; i++)
		jb_uuid(b, ids[rows[i]], NULL);
	jb_end_array(b);
}

static Jsonb *quality_jsonb(const tr_quality_report *rp, const Datum *ids, const Datum *cls,
							const Datum *labels, const int *y);

/*
 * training.feature_issues(image_ids uuid[], class_ids uuid[], features real[]) → jsonb: the
 * data-quality checks of src/core/dataquality.h on n feature vectors (features: n x d), labelled
 * by class: {"mislabelled": [{"image_id", "class_id", "closer_class_id", "distance",
 * "closer_distance"}], "mislabelled_truncated", "duplicates": [{"image_ids": [a, b], "same_class",
 * "distance"}], "duplicates_checked", "duplicates_truncated", "mixed_classes": [{"class_id",
 * "image_ids" (the smaller group; at most 1,000 listed), "group", "images", "distance",
 * "typical_distance"}]}; at most 1,000 mislabelled images are listed.
 */
Datum
training_feature_issues(PG_FUNCTION_ARGS)
{
	ArrayType  *fa;
	Datum	   *ids,
			   *cls;
	int			n,
				nc,
				d,
				nclasses = 0;
	int		   *y;
	Datum	   *labels;
	tr_quality_params p;
	tr_quality_report r;
	char		err[TR_ERRLEN];
	int			rc;
	Jsonb	   *volatile result = NULL;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	ids = uuid_elems(PG_GETARG_ARRAYTYPE_P(0), "image_ids", &n);
	cls = uuid_elems(PG_GETARG_ARRAYTYPE_P(1), "class_ids", &nc);
	fa = PG_GETARG_ARRAYTYPE_P(2);
	if (nc != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("image_ids and class_ids must have the same length, got %d and %d", n, nc)));
	if (n > 0 && (ARR_NDIM(fa) != 2 || ARR_DIMS(fa)[0] != n || ARR_HASNULL(fa) || ARR_ELEMTYPE(fa) != FLOAT4OID))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must be a %d x d array of real without NULLs", n),
				 errhint("Aggregate the feature vectors with array_agg(features), one row per image.")));
	d = n > 0 ? ARR_DIMS(fa)[1] : 0;
	/* Dense class indexes in order of first appearance. */
	y = palloc(sizeof(int) * (n + 1));
	labels = palloc(sizeof(Datum) * (n + 1));
	{
		HASHCTL		ctl;
		HTAB	   *classes;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = UUID_LEN;
		ctl.entrysize = sizeof(ClassIndex);
		ctl.hcxt = CurrentMemoryContext;
		classes = hash_create("training feature_issues classes", 1024, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		for (int i = 0; i < n; i++)
		{
			bool		found;
			ClassIndex *e = hash_search(classes, DatumGetPointer(cls[i]), HASH_ENTER, &found);

			if (!found)
			{
				e->index = nclasses;
				labels[nclasses++] = cls[i];
			}
			y[i] = e->index;
		}
		hash_destroy(classes);
	}
	tr_quality_params_default(&p);
	rc = tr_data_quality(n > 0 ? (const float *) ARR_DATA_PTR(fa) : NULL, y, n, d, nclasses, &p, &r,
						 err, sizeof(err));
	if (rc != 0)
	{
		tr_quality_report_free(&r);
		CHECK_FOR_INTERRUPTS();
		ereport(ERROR, (errcode(rc == TR_CANCELED ? ERRCODE_QUERY_CANCELED : ERRCODE_OUT_OF_MEMORY),
						errmsg("%s", err)));
	}
	/* The report is malloc'd: freed however building the JSON ends. */
	PG_TRY();
	{
		result = quality_jsonb(&r, ids, cls, labels, y);
	}
	PG_FINALLY();
	{
		tr_quality_report_free(&r);
	}
	PG_END_TRY();
	PG_RETURN_JSONB_P(result);
}

/* At most this many entries of each list of feature_issues() (the rest: "..._truncated"). */
#define TR_ISSUES_LISTED 1000

/* feature_issues()'s JSON of a report. */
static Jsonb *
quality_jsonb(const tr_quality_report *rp, const Datum *ids, const Datum *cls, const Datum *labels,
			  const int *y)
{
	tr_quality_report r = *rp;
	JsonBuilder b;

	jb_init(&b);
	jb_begin_object(&b);
	jb_key(&b, "mislabelled");
	jb_begin_array(&b);
	for (int i = 0; i < r.n_mislabelled && i < TR_ISSUES_LISTED; i++)
	{
		const tr_mislabel *m = &r.mislabelled[i];

		jb_begin_object(&b);
		jb_key(&b, "image_id");
		jb_uuid(&b, ids[m->image], NULL);
		jb_key(&b, "class_id");
		jb_uuid(&b, cls[m->image], NULL);
		jb_key(&b, "closer_class_id");
		jb_uuid(&b, labels[m->closer_class], NULL);
		jb_key(&b, "distance");
		jb_float_fixed(&b, m->own_distance, 3);
		jb_key(&b, "closer_distance");
		jb_float_fixed(&b, m->other_distance, 3);
		jb_end_object(&b);
	}
	jb_end_array(&b);
	jb_key(&b, "mislabelled_truncated");
	jb_bool(&b, r.n_mislabelled > TR_ISSUES_LISTED);
	jb_key(&b, "duplicates");
	jb_begin_array(&b);
	for (int i = 0; i < r.n_duplicates; i++)
	{
		const tr_duplicate *dp = &r.duplicates[i];
		int			pair[2] = {dp->a, dp->b};

		jb_begin_object(&b);
		jb_key(&b, "image_ids");
		put_ids(&b, ids, pair, 2);
		jb_key(&b, "same_class");
		jb_bool(&b, y[dp->a] == y[dp->b]);
		jb_key(&b, "distance");
		jb_float_fixed(&b, dp->distance, 3);
		jb_end_object(&b);
	}
	jb_end_array(&b);
	jb_key(&b, "duplicates_checked");
	jb_bool(&b, r.duplicates_searched != 0);
	jb_key(&b, "duplicates_truncated");
	jb_bool(&b, r.duplicates_truncated != 0);
	jb_key(&b, "mixed_classes");
	jb_begin_array(&b);
	for (int i = 0; i < r.n_splits; i++)
	{
		const tr_split *sp = &r.splits[i];

		jb_begin_object(&b);
		jb_key(&b, "class_id");
		jb_uuid(&b, labels[sp->cls], NULL);
		jb_key(&b, "image_ids");
		put_ids(&b, ids, sp->second, sp->n_second < TR_ISSUES_LISTED ? sp->n_second : TR_ISSUES_LISTED);
		jb_key(&b, "group");
		jb_int(&b, sp->n_second);
		jb_key(&b, "images");
		jb_int(&b, sp->n_first + sp->n_second);
		jb_key(&b, "distance");
		jb_float_fixed(&b, sp->distance, 3);
		jb_key(&b, "typical_distance");
		jb_float_fixed(&b, sp->typical, 3);
		jb_end_object(&b);
	}
	jb_end_array(&b);
	jb_end_object(&b);
	return jb_finish(&b);
}
