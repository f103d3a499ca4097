/*
 * recognize.c: the pipeline inside the server: training.max_image_pixels, the
 * image-decoding trigger on training.images, recognize() with a cached model, and
 * check_image(), the per-image check of dataset evaluation. Rows are read through
 * store.c (store_api_*), with the caller's rights.
 */
#include "postgres.h"

#include <cblas.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#include "deep.h"
#include "deepfeat.h"
#include "json.h"
#include "pipeline.h"
#include "quality.h"
#include "config.h"
#include "recognize.h"
#include "settings.h"
#include "store.h"


PG_FUNCTION_INFO_V1(training_images_decode);
PG_FUNCTION_INFO_V1(training_recognize_model);
PG_FUNCTION_INFO_V1(training_model_cached);
PG_FUNCTION_INFO_V1(training_check_image);
PG_FUNCTION_INFO_V1(training_recognize);
PG_FUNCTION_INFO_V1(training_check_image_config);


/* ereport a decode failure: 22023 saying what is accepted, or what the limit is. */
static void
report_decode_error(int rc, const char *err, const char *what)
{
	if (rc == TR_DECODE_TOO_LARGE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too large: %s", what, err),
				 errhint("Downscale the image, or ask an administrator to raise training.max_image_pixels.")));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s does not decode: %s", what, err),
			 errhint("Accepted formats: " TR_ACCEPTED_FORMATS "; complete files.")));
}

/*
 * BEFORE INSERT OR UPDATE OF data ON training.images: decode the image completely
 * (so truncated or corrupt data is refused) and fill format, width and height.
 */
Datum
training_images_decode(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	HeapTuple	tuple;
	bool		isnull;
	Datum		d;
	bytea	   *data;
	tr_image	img;
	tr_format	fmt;
	char		err[TR_ERRLEN];
	int			rc;
	int			cols[3];
	Datum		vals[3];
	bool		nulls[3] = {false, false, false};

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("training._images_decode() must be a BEFORE ROW trigger")));
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	tupdesc = trigdata->tg_relation->rd_att;
	cols[0] = store_attnum(tupdesc, "format");
	cols[1] = store_attnum(tupdesc, "width");
	cols[2] = store_attnum(tupdesc, "height");
	if (cols[0] <= 0 || cols[1] <= 0 || cols[2] <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("training._images_decode() needs columns format, width and height")));
	d = heap_getattr(tuple, store_attnum(tupdesc, "data"), tupdesc, &isnull);
	if (isnull)
		return PointerGetDatum(tuple);	/* NOT NULL is the table's business */
	data = DatumGetByteaPP(d);
	rc = tr_decode((const uint8_t *) VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data),
				   (size_t) tr_max_image_pixels, &img, &fmt, err, sizeof(err));
	CHECK_FOR_INTERRUPTS();		/* the core stops early on a cancel request: report it */
	if (rc != TR_DECODE_OK)
		report_decode_error(rc, err, "image data");
	vals[0] = CStringGetTextDatum(tr_format_name(fmt));
	vals[1] = Int32GetDatum(img.width);
	vals[2] = Int32GetDatum(img.height);
	tr_image_free(&img);
	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, tupdesc, 3, cols, vals, nulls));
}

/* ---------- recognition ---------- */

/*
 * Parsed models of this backend, by version id (a version's parameters never change) and by
 * the role that loaded them: a pooled connection (PostgREST) serves several roles, and a role
 * must never reach a model through another role's cache entry, nor plant parameters in it.
 */
#define CACHE_SIZE 4

typedef struct cached_model
{
	pg_uuid_t	id;
	Oid			userid;
	bool		used;
	uint64		last_use;
	tr_model	model;
} cached_model;

static cached_model cache[CACHE_SIZE];
static uint64 use_clock = 0;
static bool blas_single = false;

static cached_model *
cache_find(const pg_uuid_t *id)
{
	Oid			userid = GetUserId();

	for (int i = 0; i < CACHE_SIZE; i++)
		if (cache[i].used && cache[i].userid == userid &&
			memcmp(cache[i].id.data, id->data, UUID_LEN) == 0)
		{
			cache[i].last_use = ++use_clock;
			return &cache[i];
		}
	return NULL;
}

static cached_model *
cache_add(const pg_uuid_t *id, bytea *params)
{
	cached_model *slot = &cache[0];
	tr_model	m;
	char		err[TR_ERRLEN];

	if (tr_model_parse((const uint8_t *) VARDATA_ANY(params), VARSIZE_ANY_EXHDR(params), &m,
					   err, sizeof(err)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("model version %s cannot be used: %s",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id))), err),
				 errhint("Train the model again with a build that reads this format.")));
	for (int i = 1; i < CACHE_SIZE; i++)
		if (!cache[i].used || (slot->used && cache[i].last_use < slot->last_use))
			slot = &cache[i];
	if (slot->used)
		tr_model_free(&slot->model);
	slot->model = m;
	slot->id = *id;
	slot->userid = GetUserId();
	slot->used = true;
	slot->last_use = ++use_clock;
	return slot;
}

/* training._model_cached(version_id uuid) of the 0.1.0 catalog: whether this backend holds the model for this role. */
Datum
training_model_cached(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(cache_find(PG_GETARG_UUID_P(0)) != NULL);
}

/* The keys of a match: label, class_id (null unless with_label), confidence, distance. */
static void
json_match(JsonBuilder *b, const tr_model *m, const tr_match *x, bool with_label)
{
	jb_key(b, "label");
	jb_cstring(b, with_label ? m->labels[x->class_index] : NULL);
	jb_key(b, "class_id");
	jb_cstring(b, with_label ? m->class_ids[x->class_index] : NULL);
	jb_key(b, "confidence");
	jb_float_fixed(b, x->confidence, 6);
	jb_key(b, "distance");
	jb_float_fixed(b, x->distance, 6);
}

/* A face box as {"x", "y", "width", "height"}. */
static void
json_box(JsonBuilder *b, const char *key, int x, int y, int w, int h)
{
	jb_key(b, key);
	jb_begin_object(b);
	jb_key(b, "x");
	jb_int(b, x);
	jb_key(b, "y");
	jb_int(b, y);
	jb_key(b, "width");
	jb_int(b, w);
	jb_key(b, "height");
	jb_int(b, h);
	jb_end_object(b);
}

/*
 * A face box argument into box[4]; false for NULL or '{}'. Strict: anything but one dimension of
 * four non-null integers with x, y >= 0 and width, height > 0 is 22023, as the images table
 * checks it. Lenient (0.1.0's _check_image): such a box is ignored.
 */
static bool
read_face_box(ArrayType *a, int box[4], bool strict)
{
	Datum	   *elems;
	bool	   *enulls;
	int			n;

	if (a == NULL)
		return false;
	deconstruct_array(a, INT4OID, 4, true, TYPALIGN_INT, &elems, &enulls, &n);
	if (n == 0)
		return false;
	if (ARR_NDIM(a) != 1 || n != 4 || enulls[0] || enulls[1] || enulls[2] || enulls[3] ||
		DatumGetInt32(elems[0]) < 0 || DatumGetInt32(elems[1]) < 0 ||
		DatumGetInt32(elems[2]) <= 0 || DatumGetInt32(elems[3]) <= 0)
	{
		if (!strict)
			return false;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("face_box must be {x, y, width, height} with x, y >= 0 and width, height > 0"),
				 errhint("Pass face_box => ARRAY[x, y, width, height] in pixels, or NULL for the whole image.")));
	}
	for (int i = 0; i < 4; i++)
		box[i] = DatumGetInt32(elems[i]);
	return true;
}

/* Refuse bad recognize() arguments (22023). */
static void
check_recognize_args(bool image_null, double max_distance, bool max_distance_null, int top_k, bool top_k_null)
{
	if (image_null)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("image must not be null"),
				 errhint("Pass the encoded image bytes (JPEG, PNG, PGM or PPM) as bytea.")));
	if (max_distance_null || isnan(max_distance) || max_distance < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 max_distance_null ? errmsg("max_distance must be a number >= 0, got NULL")
				 : errmsg("max_distance must be a number >= 0, got %g", max_distance),
				 errhint("Distances are between 0 and 2: pass 1.0 (the default), or 2 to always get the closest label.")));
	if (top_k_null || top_k < 1 || top_k > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 top_k_null ? errmsg("top_k must be between 1 and 1000, got NULL")
				 : errmsg("top_k must be between 1 and 1000, got %d", top_k),
				 errhint("Pass top_k => 3 for the three closest classes.")));
}

/*
 * Recognize image with a cached model: the recognition JSON of DESIGN.md, with each detection's
 * class "reference" when with_reference (read under the caller's row-level security; SPI must be
 * connected then).
 */
static Datum
recognize_json(const tr_model *m, const char *ref, bytea *image, double max_distance, int top_k,
			   const int *box, bool with_reference)
{
	tr_box		regions[TR_MAX_FACES];
	int			nmatches[TR_MAX_FACES];
	tr_match   *matches;
	int			nfaces = 0,
				rc;
	char		err[TR_ERRLEN];
	JsonBuilder b;

	/* Recognition is one small product per image: OpenBLAS threads only add overhead here. */
	if (!blas_single)
	{
		openblas_set_num_threads(1);
		blas_single = true;
	}
	if (top_k > m->net.c)
		top_k = m->net.c;
	matches = palloc(sizeof(tr_match) * TR_MAX_FACES * top_k);
	rc = tr_recognize_faces(m, tr_model_dir(), (const uint8_t *) VARDATA_ANY(image), VARSIZE_ANY_EXHDR(image),
							(size_t) tr_max_image_pixels, box, top_k,
							regions, matches, nmatches, &nfaces, err, sizeof(err));
	CHECK_FOR_INTERRUPTS();
	if (rc == TR_MODEL_UNUSABLE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("model %s cannot recognize here: %s", ref, err),
				 errhint("Check that this server has what the model's feature kind needs (e.g. the face networks in training.model_path).")));
	if (rc == TR_BOX_OUTSIDE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", err),
				 errhint("Pass a face box that overlaps the image, or none for the whole image.")));
	if (rc != TR_DECODE_OK)
		report_decode_error(rc, err, "image");

	jb_init(&b);
	jb_begin_object(&b);
	jb_key(&b, "model");
	jb_cstring(&b, ref);
	jb_key(&b, "detections");
	jb_begin_array(&b);
	for (int f = 0; f < nfaces; f++)
	{
		const tr_match *best = &matches[f * top_k];
		bool		within = nmatches[f] > 0 && best->distance <= max_distance;

		jb_begin_object(&b);
		json_box(&b, "box", regions[f].x, regions[f].y, regions[f].w, regions[f].h);
		if (nmatches[f] > 0)
			json_match(&b, m, best, within);
		else
		{
			static const char *const none[] = {"label", "class_id", "confidence", "distance"};

			for (int k = 0; k < (int) lengthof(none); k++)
			{
				jb_key(&b, none[k]);
				jb_null(&b);
			}
		}
		if (with_reference)
		{
			jb_key(&b, "reference");
			jb_cstring(&b, within ? store_api_class_reference(m->class_ids[best->class_index]) : NULL);
		}
		jb_key(&b, "top_k");
		jb_begin_array(&b);
		for (int k = 0; k < nmatches[f]; k++)
		{
			jb_begin_object(&b);
			json_match(&b, m, &matches[f * top_k + k], true);
			jb_end_object(&b);
		}
		jb_end_array(&b);
		jb_end_object(&b);
	}
	jb_end_array(&b);
	jb_end_object(&b);
	pfree(matches);
	return JsonbPGetDatum(jb_finish(&b));
}

/*
 * training.recognize(model text, image bytea, max_distance float8, top_k int) → jsonb. The model
 * is resolved and its parameters read with the caller's rights; parsed models are cached per
 * version and role.
 */
Datum
training_recognize(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		vid;
	int32		number;
	char	   *name;
	char	   *ref;
	cached_model *cm;
	Datum		result;

	check_recognize_args(PG_ARGISNULL(1), PG_ARGISNULL(2) ? 0 : PG_GETARG_FLOAT8(2), PG_ARGISNULL(2),
						 PG_ARGISNULL(3) ? 0 : PG_GETARG_INT32(3), PG_ARGISNULL(3));
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model reference must not be empty"),
				 errhint("Pass a model name, \"name==N\" for version N, or a model or version id.")));
	store_api_connect();
	MemoryContextSwitchTo(caller);
	store_api_resolve_version(PG_GETARG_TEXT_PP(0), &vid, &number, &name);
	ref = psprintf("%s==%d", name, number);
	cm = cache_find(DatumGetUUIDP(vid));
	if (cm == NULL)
	{
		bytea	   *params = store_api_parameters(vid);

		if (params == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("model version %s not found", ref)));
		cm = cache_add(DatumGetUUIDP(vid), params);
	}
	result = recognize_json(&cm->model, ref, PG_GETARG_BYTEA_PP(1), PG_GETARG_FLOAT8(2),
							PG_GETARG_INT32(3), NULL, true);
	store_api_finish();
	PG_RETURN_DATUM(result);
}

/*
 * training._recognize(version_id uuid, parameters bytea, model_ref text, image bytea,
 * max_distance float8, top_k int, face_box int[]) → jsonb, of the 0.1.0 catalog: kept so that
 * recognize() keeps working between installing this library and ALTER EXTENSION UPDATE.
 */
Datum
training_recognize_model(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *id;
	int			box[4];
	bool		has_box;
	cached_model *cm;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("training._recognize() arguments must not be null")));
	check_recognize_args(PG_ARGISNULL(3), PG_ARGISNULL(4) ? 0 : PG_GETARG_FLOAT8(4), PG_ARGISNULL(4),
						 PG_ARGISNULL(5) ? 0 : PG_GETARG_INT32(5), PG_ARGISNULL(5));
	id = PG_GETARG_UUID_P(0);
	has_box = read_face_box(PG_ARGISNULL(6) ? NULL : PG_GETARG_ARRAYTYPE_P(6), box, true);
	cm = cache_find(id);
	if (cm == NULL)
	{
		if (PG_ARGISNULL(1))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("training._recognize() needs the parameters of a model not cached yet")));
		cm = cache_add(id, PG_GETARG_BYTEA_PP(1));
	}
	PG_RETURN_DATUM(recognize_json(&cm->model, text_to_cstring(PG_GETARG_TEXT_PP(2)),
								   PG_GETARG_BYTEA_PP(3), PG_GETARG_FLOAT8(4), PG_GETARG_INT32(5),
								   has_box ? box : NULL, false));
}

/* ---------- dataset evaluation ---------- */

/*
 * What a training with cfg would do with the image: {"usable": bool, "reason": null or a skip
 * reason, "message": text, "sharpness": number or null, "gender": "male", "female" or null (a
 * usable face, by the gender network when installed)}.
 */
static Datum
check_image_json(tr_config *cfg, bytea *data, const int *box)
{
	tr_skip		why;
	double		sharpness = -1;
	double		p_male = -1;
	tr_image	img;
	tr_box		region;
	char		err[TR_ERRLEN] = "";

	cfg->max_image_pixels = (size_t) tr_max_image_pixels;
	/* The feature kind a training would use (its face locator finds the face). */
	tr_config_set_server_features(cfg);
	why = tr_check_image(cfg, (const uint8_t *) VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data),
						 box, &img, &region, &sharpness, err, sizeof(err));
	if (tr_interrupted())
	{
		tr_image_free(&img);
		CHECK_FOR_INTERRUPTS();
	}
	/* Gender of a usable face, when the gender network is installed (else null). */
	if (why == TR_SKIP_NONE && cfg->type == TR_FACE)
	{
		char		gerr[TR_ERRLEN];

		if (tr_deep_gender(tr_model_dir(), &img, region, &p_male, gerr, sizeof(gerr)) != 0)
			p_male = -1;
	}
	tr_image_free(&img);
	return JsonbPGetDatum(tr_check_result_jsonb(why, err, sharpness, p_male));
}

Jsonb *
tr_check_result_jsonb(int why, const char *err, double sharpness, double p_male)
{
	JsonBuilder b;

	jb_init(&b);
	jb_begin_object(&b);
	jb_key(&b, "usable");
	jb_bool(&b, why == TR_SKIP_NONE);
	jb_key(&b, "reason");
	jb_cstring(&b, why == TR_SKIP_NONE ? NULL : tr_skip_name(why));
	jb_key(&b, "message");
	jb_cstring(&b, why == TR_SKIP_NONE ? "usable" : err);
	jb_key(&b, "sharpness");
	if (sharpness >= 0)
		jb_float_fixed(&b, sharpness, 1);
	else
		jb_null(&b);
	jb_key(&b, "gender");
	jb_cstring(&b, p_male < 0 ? NULL : p_male >= 0.5 ? "male" : "female");
	jb_end_object(&b);
	return jb_finish(&b);
}

/*
 * training.check_image(data bytea, face_box int[], type text, config jsonb) → jsonb, the config
 * read by the one config reader (22023 for a bad type or config). NULL data: NULL.
 */
Datum
training_check_image_config(PG_FUNCTION_ARGS)
{
	tr_config	cfg;
	int			box[4];
	bool		has_box;

	tr_config_from_sql(&cfg, PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2),
					   PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3));
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	/* A face box is checked as the images table checks it (the same check as a training's). */
	has_box = read_face_box(PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1), box, true);
	PG_RETURN_DATUM(check_image_json(&cfg, PG_GETARG_BYTEA_PP(0), has_box ? box : NULL));
}

/*
 * training._check_image(data bytea, face_box int[], type text, min_face_size int,
 * sharpness_threshold int) → jsonb, of the 0.1.0 catalog (kept until ALTER EXTENSION UPDATE).
 */
Datum
training_check_image(PG_FUNCTION_ARGS)
{
	tr_config	cfg;
	int			box[4];
	bool		has_box;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	tr_config_default(&cfg, strcmp(text_to_cstring(PG_GETARG_TEXT_PP(2)), "landmark") == 0 ? TR_LANDMARK : TR_FACE);
	if (!PG_ARGISNULL(3))
		cfg.min_face_size = PG_GETARG_INT32(3);
	if (!PG_ARGISNULL(4))
		cfg.sharpness_threshold = PG_GETARG_INT32(4);
	has_box = read_face_box(PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1), box, false);
	PG_RETURN_DATUM(check_image_json(&cfg, PG_GETARG_BYTEA_PP(0), has_box ? box : NULL));
}
