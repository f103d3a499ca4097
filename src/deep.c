/*
 * deep.c - server glue of the pretrained face networks (src/nn): the
 * training.model_path GUC, per-backend caches of the loaded networks, and
 * clear errors when the model files are missing.
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "deep.h"
#include "settings.h"
#include "interrupt.h"
#include "decode.h"
#include "deepfeat.h"
#include "trfeatures.h"
#include "pipeline.h"

PG_FUNCTION_INFO_V1(training_detect_faces);

static char default_dir[MAXPGPATH];
static char loaded_dir[MAXPGPATH];
static nn_facenet facenet;
static nn_detector detector;
static nn_agegender agegender;
static bool have_facenet,
			have_detector,
			have_agegender;

/* The model directory for a training.model_path value. */
static const char *
dir_for(const char *path)
{
	if (path && path[0] != '\0')
		return path;
	if (default_dir[0] == '\0')
	{
		char		share[MAXPGPATH];

		get_share_path(my_exec_path, share);
		snprintf(default_dir, sizeof(default_dir), "%s/extension/training_models", share);
	}
	return default_dir;
}

/* Make new face trainings use the kind training.face_features asks for. */
static void
set_face_default(int mode, const char *path)
{
	const tr_features *deep = tr_deep_features(tr_model_dir);
	const tr_features *classic = tr_features_find("face-lbp-hog-v1");
	bool		use_deep = mode == TR_FACE_FEATURES_DEEP ||
		(mode == TR_FACE_FEATURES_AUTO && tr_deep_models_present(dir_for(path)));

	if (classic)
		tr_features_register(use_deep ? deep : classic, TR_FEATURES_FACE);
}

void
tr_assign_face_features(int newval, void *extra)
{
	(void) extra;
	set_face_default(newval, tr_model_path);
}

void
tr_assign_model_path(const char *newval, void *extra)
{
	(void) extra;
	set_face_default(tr_face_features, newval);
}

void
tr_deep_init(void)
{
	/* Known in every process, so that models trained with it can recognize. */
	tr_features_register(tr_deep_features(tr_model_dir), -1);
}

const char *
tr_model_dir(void)
{
	return dir_for(tr_model_path);
}

/* Drop cached networks when training.model_path changed since loading. */
static void
check_dir(void)
{
	const char *dir = tr_model_dir();

	if (strcmp(dir, loaded_dir) == 0)
		return;
	if (have_facenet)
		nn_facenet_free(&facenet);
	if (have_detector)
		nn_detector_free(&detector);
	if (have_agegender)
		nn_agegender_free(&agegender);
	have_facenet = have_detector = have_agegender = false;
	strlcpy(loaded_dir, dir, sizeof(loaded_dir));
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

const nn_facenet *
tr_facenet(void)
{
	char		err[NN_ERRLEN];

	check_dir();
	if (!have_facenet)
	{
		if (nn_facenet_load(&facenet, tr_model_dir(), err) != 0)
			load_failed("face recognition", err);
		have_facenet = true;
	}
	return &facenet;
}

const nn_detector *
tr_detector(void)
{
	char		err[NN_ERRLEN];

	check_dir();
	if (!have_detector)
	{
		if (nn_detector_load(&detector, tr_model_dir(), err) != 0)
			load_failed("face detector", err);
		have_detector = true;
	}
	return &detector;
}

const nn_agegender *
tr_agegender(void)
{
	char		err[NN_ERRLEN];

	check_dir();
	if (!have_agegender)
	{
		if (nn_agegender_load(&agegender, tr_model_dir(), err) != 0)
			load_failed("gender", err);
		have_agegender = true;
	}
	return &agegender;
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
 * training.detect_faces(image bytea) → jsonb: the faces the pipeline's face
 * locator finds, largest first, with the detector's score and the gender
 * network's answer for each.
 */
Datum
training_detect_faces(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	const nn_detector *det = tr_detector();
	const nn_agegender *ag = tr_agegender();
	char		err[TR_ERRLEN];
	char		nerr[NN_ERRLEN];
	tr_image	img;
	nn_image	im;
	nn_box	   *boxes;
	int			rc,
				n;
	StringInfoData s;

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

	initStringInfo(&s);
	appendStringInfoString(&s, "{\"faces\": [");
	for (int i = 0; i < n; i++)
	{
		int			r[4] = {(int) boxes[i].x, (int) boxes[i].y, (int) boxes[i].width, (int) boxes[i].height};
		int			cw,
					ch;
		uint8_t    *crop = nn_crop_for_input(&im, r, NN_AGEGENDER_INPUT, &cw, &ch);
		float		pm = 0,
					pf = 0,
					age;

		if (!crop || nn_agegender_predict(ag, crop, cw, ch, &pm, &pf, &age, nerr) != 0)
		{
			free(crop);
			free(boxes);
			tr_image_free(&img);
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("gender network failed: %s", nerr)));
		}
		free(crop);
		appendStringInfo(&s, "%s{\"box\": {\"x\": %d, \"y\": %d, \"width\": %d, \"height\": %d}, "
						 "\"score\": %.4f, \"gender\": \"%s\", \"gender_probability\": %.4f}",
						 i ? ", " : "", r[0], r[1], r[2], r[3], boxes[i].score,
						 pm >= 0.5f ? "male" : "female", pm >= 0.5f ? pm : pf);
	}
	appendStringInfoString(&s, "]}");
	free(boxes);
	tr_image_free(&img);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}
