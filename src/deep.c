/*
 * deep.c - server glue of the pretrained face networks (src/core/nn): the model directory of
 * training.model_path, the feature kind of training.face_features for a training's config,
 * the SQL functions that run the networks (detect_faces) or report their memory
 * (training_memory), and clear errors when the model files are missing. The networks
 * themselves are in the core's one cache per process (src/core/netcache.c), shared with the
 * training features.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "deep.h"
#include "settings.h"
#include "interrupt.h"
#include "decode.h"
#include "deepfeat.h"
#include "json.h"
#include "netcache.h"
#include "pipeline.h"

PG_FUNCTION_INFO_V1(training_detect_faces);
PG_FUNCTION_INFO_V1(training_memory);

static char default_dir[MAXPGPATH];

const char *
tr_model_dir(void)
{
	if (tr_model_path && tr_model_path[0] != '\0')
		return tr_model_path;
	if (default_dir[0] == '\0')
	{
		char		share[MAXPGPATH];

		get_share_path(my_exec_path, share);
		snprintf(default_dir, sizeof(default_dir), "%s/extension/training_models", share);
	}
	return default_dir;
}

void
tr_config_set_server_features(tr_config *cfg)
{
	char		err[TR_ERRLEN];
	const char *features = NULL;

	if (cfg->type == TR_FACE)
		features = tr_face_features == TR_FACE_FEATURES_DEEP ? TR_FEATURES_DEEP
			: tr_face_features == TR_FACE_FEATURES_CLASSIC ? TR_FEATURES_CLASSIC
			: TR_FEATURES_AUTO;
	if (tr_config_set_features(cfg, features, tr_model_dir(), err, sizeof(err)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", err),
				 errhint("Set training.model_path to a shorter directory name.")));
}

void
tr_config_resolve_server(tr_config *cfg)
{
	char		err[TR_ERRLEN];

	cfg->max_image_pixels = (size_t) tr_max_image_pixels;
	tr_config_set_server_features(cfg);
	if (tr_resolve_features(cfg, err, sizeof(err)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s", err),
				 errhint("Install the face networks (make models install) or set training.model_path, "
						 "or set training.face_features to auto or classic.")));
}

static void
load_failed(const char *what, const char *err)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("could not load the %s network from \"%s\": %s", what, tr_model_dir(), err),
			 errhint("Install the models with \"make models install\" in the extension's source tree, "
					 "or set training.model_path to a directory holding them.")));
}

const nn_detector *
tr_detector(void)
{
	const nn_detector *net;
	char		err[TR_ERRLEN];

	if (tr_netcache_detector(tr_model_dir(), &net, err, sizeof(err)) != 0)
		load_failed("face detector", err);
	return net;
}

const nn_agegender *
tr_agegender(void)
{
	const nn_agegender *net;
	char		err[TR_ERRLEN];

	if (tr_netcache_agegender(tr_model_dir(), &net, err, sizeof(err)) != 0)
		load_failed("gender", err);
	return net;
}

/*
 * training.memory() → jsonb: what the core holds in this process outside PostgreSQL's memory
 * contexts: {"network_cache_bytes": weights of the cached face networks, "network_cache_networks":
 * how many, "network_cache_dir": their directory or null}.
 */
Datum
training_memory(PG_FUNCTION_ARGS)
{
	JsonBuilder b;
	const char *dir = tr_netcache_dir();

	(void) fcinfo;
	jb_init(&b);
	jb_begin_object(&b);
	jb_key(&b, "network_cache_bytes");
	jb_int(&b, (int64) tr_netcache_bytes());
	jb_key(&b, "network_cache_networks");
	jb_int(&b, tr_netcache_count());
	jb_key(&b, "network_cache_dir");
	jb_cstring(&b, dir[0] != '\0' ? dir : NULL);
	jb_end_object(&b);
	PG_RETURN_JSONB_P(jb_finish(&b));
}

static int
box_area_desc(const void *a, const void *b)
{
	const nn_box *p = a,
			   *q = b;
	double		pa = p->width * p->height,
				qa = q->width * q->height;

	return pa > qa ? -1 : pa < qa ? 1 : 0;
}

/*
 * "landmarks": the 68 points of a face ([x, y] in image pixels, face-api's
 * order: jaw, brows, nose, eyes, mouth) and "aligned_box": the part of the
 * image the aligned feature kind embeds (the aligned square, clipped to the
 * image; null when nothing is left); both null without the landmark network.
 */
static void
put_landmarks(JsonBuilder *b, bool have, const double *pts, const int wh[2], const nn_image *im)
{
	nn_box		sq;
	int			r[4];

	jb_key(b, "landmarks");
	if (!have)
		jb_cstring(b, NULL);
	else
	{
		jb_begin_array(b);
		for (int i = 0; i < NN_LANDMARK_POINTS; i++)
		{
			jb_begin_array(b);
			jb_float_fixed(b, pts[2 * i], 2);
			jb_float_fixed(b, pts[2 * i + 1], 2);
			jb_end_array(b);
		}
		jb_end_array(b);
	}
	jb_key(b, "aligned_box");
	if (!have)
	{
		jb_cstring(b, NULL);
		return;
	}
	/* The aligned square as it is cut from the image: clipped (face-api's extractFaceTensors). */
	nn_align_dlib(pts, wh, &sq);
	if (!nn_crop_rect(&sq, im->width, im->height, r))
	{
		jb_cstring(b, NULL);
		return;
	}
	jb_begin_object(b);
	jb_key(b, "x");
	jb_int(b, r[0]);
	jb_key(b, "y");
	jb_int(b, r[1]);
	jb_key(b, "width");
	jb_int(b, r[2]);
	jb_key(b, "height");
	jb_int(b, r[3]);
	jb_end_object(b);
}

/*
 * training.detect_faces(image bytea) → jsonb: the faces the pipeline's face
 * locator finds, largest first, with the detector's score, the gender
 * network's answer and the 68 landmarks for each.
 */
Datum
training_detect_faces(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	const nn_detector *det = tr_detector();
	const nn_agegender *ag = tr_agegender();
	const nn_landmarks *lm = NULL;
	char		err[TR_ERRLEN];
	char		nerr[NN_ERRLEN];
	tr_image	img;
	nn_image	im;
	nn_box	   *boxes;
	int			rc,
				n;
	JsonBuilder b;

	rc = tr_decode((const uint8_t *) VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data),
				   (size_t) tr_max_image_pixels, &img, NULL, err, sizeof(err));
	CHECK_FOR_INTERRUPTS();		/* the core stops early on a cancel request: report it */
	if (rc == TR_DECODE_TOO_LARGE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("image is too large: %s", err),
				 errhint("Raise training.max_image_pixels or scale the image down.")));
	if (rc != TR_DECODE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("image does not decode: %s", err),
				 errhint("Pass the bytes of a JPEG, PNG, PGM or PPM file.")));
	/* Landmarks when the landmark network is installed (models of 0.5.0 have none). */
	if (tr_netcache_landmarks(tr_model_dir(), &lm, err, sizeof(err)) != 0)
		lm = NULL;
	/* The networks read the decoded image in place (grey or RGB): no copy. */
	im = (nn_image) {img.pixels, img.width, img.height, img.channels, 0};
	n = nn_locate_faces_image(det, &im, &boxes, nerr);
	if (n < 0 || tr_interrupted())
	{
		tr_image_free(&img);
		if (n >= 0)
			free(boxes);
		CHECK_FOR_INTERRUPTS();
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("face detection failed: %s", nerr)));
	}
	qsort(boxes, n, sizeof(nn_box), box_area_desc);

	jb_init(&b);
	jb_begin_object(&b);
	jb_key(&b, "faces");
	jb_begin_array(&b);
	for (int i = 0; i < n; i++)
	{
		int			r[4] = {(int) boxes[i].x, (int) boxes[i].y, (int) boxes[i].width, (int) boxes[i].height};
		int			cw,
					ch;
		uint8_t    *crop = nn_crop_for_input(&im, r, NN_AGEGENDER_INPUT, &cw, &ch);
		float		pm = 0,
					pf = 0,
					age;

		double		pts[2 * NN_LANDMARK_POINTS];
		int			wh[2];

		if (!crop || nn_agegender_predict(ag, crop, cw, ch, &pm, &pf, &age, nerr) != 0 ||
			(lm != NULL && nn_face_landmarks(lm, &im, &boxes[i], pts, wh, nerr) != 0))
		{
			free(crop);
			free(boxes);
			tr_image_free(&img);
			CHECK_FOR_INTERRUPTS();
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("face networks failed: %s", nerr)));
		}
		free(crop);
		jb_begin_object(&b);
		jb_key(&b, "box");
		jb_begin_object(&b);
		jb_key(&b, "x");
		jb_int(&b, r[0]);
		jb_key(&b, "y");
		jb_int(&b, r[1]);
		jb_key(&b, "width");
		jb_int(&b, r[2]);
		jb_key(&b, "height");
		jb_int(&b, r[3]);
		jb_end_object(&b);
		jb_key(&b, "score");
		jb_float_fixed(&b, boxes[i].score, 4);
		jb_key(&b, "gender");
		jb_cstring(&b, pm >= 0.5f ? "male" : "female");
		jb_key(&b, "gender_probability");
		jb_float_fixed(&b, pm >= 0.5f ? pm : pf, 4);
		put_landmarks(&b, lm != NULL, pts, wh, &im);
		jb_end_object(&b);
	}
	jb_end_array(&b);
	jb_end_object(&b);
	free(boxes);
	tr_image_free(&img);
	PG_RETURN_JSONB_P(jb_finish(&b));
}
