/*
 * deepfeat.c - the "face-api-resnet-v1" feature kind: face detection
 * (tiny face detector) as the face locator, and the 128-d descriptor of
 * the face recognition network, L2-normalised, as the feature vector.
 * Memory does not grow with the image: the networks read the decoded image in
 * place (no RGB copy, no bordered copy: nn_locate_faces_image), and a face
 * region is handed to a network as the few pixels its input resize reads
 * (nn_crop_for_input, at most (3 x input side)^2 x 3 bytes).
 */
#include "deepfeat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/nn.h"

typedef struct deep_state
{
	const char *(*model_dir) (void);
	int			loaded;
	char		dir[1024];
	nn_facenet	facenet;
	nn_detector detector;
	int			gender_loaded;
	char		gender_dir[1024];
	nn_agegender agegender;
} deep_state;

static deep_state state;

/* Load the networks, or reload them when the directory changed. */
static int
ensure_loaded(char *err, size_t errlen)
{
	const char *dir = state.model_dir ? state.model_dir() : "";
	char		nerr[NN_ERRLEN];

	if (state.loaded && strcmp(dir, state.dir) == 0)
		return 0;
	if (state.loaded)
	{
		nn_facenet_free(&state.facenet);
		nn_detector_free(&state.detector);
		state.loaded = 0;
	}
	if (nn_facenet_load(&state.facenet, dir, nerr) != 0)
	{
		snprintf(err, errlen, "face networks unavailable in \"%s\": %s", dir, nerr);
		return -1;
	}
	if (nn_detector_load(&state.detector, dir, nerr) != 0)
	{
		nn_facenet_free(&state.facenet);
		snprintf(err, errlen, "face networks unavailable in \"%s\": %s", dir, nerr);
		return -1;
	}
	snprintf(state.dir, sizeof(state.dir), "%s", dir);
	state.loaded = 1;
	return 0;
}

/* The image as the networks read it, in place (no RGB copy of a grey image). */
static nn_image
image_view(const tr_image *img)
{
	nn_image	im = {img->pixels, img->width, img->height, img->channels, 0};

	return im;
}

/*
 * The network input's crop of region r: the region itself, or for a large
 * region only the pixels the network's resize to `size` reads
 * (nn_crop_for_input): at most (3 x size)^2 x 3 bytes, whatever the region.
 */
static uint8_t *
region_crop(const tr_image *img, tr_box r, int size, int *cw, int *ch)
{
	nn_image	im = image_view(img);
	int			rect[4] = {r.x, r.y, r.w, r.h};

	return nn_crop_for_input(&im, rect, size, cw, ch);
}

static int
deep_extract(const tr_features *self, const tr_image *img, tr_box r, float *out,
			 char *err, size_t errlen)
{
	char		nerr[NN_ERRLEN];
	uint8_t    *rgb;
	int			rc,
				cw,
				ch;

	(void) self;
	if (ensure_loaded(err, errlen) != 0)
		return -1;
	if (r.w <= 0 || r.h <= 0 || r.x < 0 || r.y < 0 ||
		r.x + r.w > img->width || r.y + r.h > img->height)
	{
		snprintf(err, errlen, "face region outside the image");
		return -1;
	}
	rgb = region_crop(img, r, NN_FACENET_INPUT, &cw, &ch);
	if (!rgb)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = nn_facenet_descriptor(&state.facenet, rgb, cw, ch, out, nerr);
	free(rgb);
	if (rc != 0)
	{
		snprintf(err, errlen, "%s", nerr);
		return -1;
	}
	tr_l2_normalize(out, NN_DESCRIPTOR_DIM);
	return 0;
}

static int
area_desc(const void *a, const void *b)
{
	const tr_box *p = a,
			   *q = b;
	long		pa = (long) p->w * p->h,
				qa = (long) q->w * q->h;

	return pa > qa ? -1 : pa < qa ? 1 : 0;
}

static int
deep_locate(const tr_features *self, const tr_image *img, tr_box *faces, int max,
			char *err, size_t errlen)
{
	nn_image	im = image_view(img);
	char		nerr[NN_ERRLEN];
	nn_box	   *boxes;
	int			n,
				kept = 0;

	(void) self;
	if (ensure_loaded(err, errlen) != 0)
		return -1;
	/* The detector reads the decoded image in place, grey or RGB. */
	n = nn_locate_faces_image(&state.detector, &im, &boxes, nerr);
	if (n < 0)
	{
		snprintf(err, errlen, "%s", nerr);
		return -1;
	}
	for (int i = 0; i < n; i++)
	{
		tr_box		b = {(int) boxes[i].x, (int) boxes[i].y,
		(int) boxes[i].width, (int) boxes[i].height};

		if (b.w > 0 && b.h > 0)
			faces[kept++] = b;
		if (kept == max)
			break;
	}
	free(boxes);
	qsort(faces, kept, sizeof(tr_box), area_desc);
	return kept;
}

int
tr_deep_gender(const tr_image *img, tr_box r, double *p_male, char *err, size_t errlen)
{
	const char *dir = state.model_dir ? state.model_dir() : "";
	char		nerr[NN_ERRLEN];
	uint8_t    *rgb;
	float		pm,
				pf,
				age;
	int			rc,
				cw,
				ch;

	if (state.gender_loaded && strcmp(dir, state.gender_dir) != 0)
	{
		nn_agegender_free(&state.agegender);
		state.gender_loaded = 0;
	}
	if (!state.gender_loaded)
	{
		if (nn_agegender_load(&state.agegender, dir, nerr) != 0)
		{
			snprintf(err, errlen, "gender network unavailable in \"%s\": %s", dir, nerr);
			return -1;
		}
		snprintf(state.gender_dir, sizeof(state.gender_dir), "%s", dir);
		state.gender_loaded = 1;
	}
	if (r.w <= 0 || r.h <= 0 || r.x < 0 || r.y < 0 ||
		r.x + r.w > img->width || r.y + r.h > img->height)
	{
		snprintf(err, errlen, "face region outside the image");
		return -1;
	}
	rgb = region_crop(img, r, NN_AGEGENDER_INPUT, &cw, &ch);
	if (!rgb)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = nn_agegender_predict(&state.agegender, rgb, cw, ch, &pm, &pf, &age, nerr);
	free(rgb);
	if (rc != 0)
	{
		snprintf(err, errlen, "%s", nerr);
		return -1;
	}
	*p_male = pm;
	return 0;
}

static tr_features deep_kind = {
	TR_DEEP_FEATURES_NAME, NN_DESCRIPTOR_DIM, deep_extract, &state, deep_locate, 1
};

const tr_features *
tr_deep_features(const char *(*model_dir) (void))
{
	state.model_dir = model_dir;
	return &deep_kind;
}

int
tr_deep_models_present(const char *dir)
{
	static const char *const files[] = {
		"face_recognition_model-weights_manifest.json", "face_recognition_model.bin",
		"tiny_face_detector_model-weights_manifest.json", "tiny_face_detector_model.bin",
	};
	char		path[1100];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
	{
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (access(path, R_OK) != 0)
			return 0;
	}
	return 1;
}
