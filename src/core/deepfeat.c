/*
 * deepfeat.c - the deep face feature kinds: face detection (tiny face
 * detector) as the face locator, and the 128-d descriptor of the face
 * recognition network, L2-normalised, as the feature vector: of the face's
 * region ("face-api-resnet-v1") or of the square the 68 landmarks align
 * ("face-api-resnet-aligned-v1", face-api's withFaceDescriptors()).
 * Memory does not grow with the image: the networks read the decoded image in
 * place (no RGB copy, no bordered copy: nn_locate_faces_image), and a face
 * region is handed to a network as the few pixels its input resize reads
 * (nn_crop_for_input, at most (3 x input side)^2 x 3 bytes).
 * The networks are the process's one cached copy (netcache.c), from the model
 * directory of the kind's copy at hand (tr_features.model_dir).
 */
#include "deepfeat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netcache.h"
#include "nn/nn.h"

static int
unavailable(const char *dir, const char *why, char *err, size_t errlen)
{
	snprintf(err, errlen, "face networks unavailable in \"%s\": %s", dir ? dir : "", why);
	return -1;
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
	const nn_facenet *net;
	uint8_t    *rgb;
	int			rc,
				cw,
				ch;

	if (tr_netcache_facenet(self->model_dir, &net, nerr, sizeof(nerr)) != 0)
		return unavailable(self->model_dir, nerr, err, errlen);
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
	rc = nn_facenet_descriptor(net, rgb, cw, ch, out, nerr);
	free(rgb);
	if (rc != 0)
	{
		snprintf(err, errlen, "%s", nerr);
		return -1;
	}
	tr_l2_normalize(out, NN_DESCRIPTOR_DIM);
	return 0;
}

/* Larger box first; equal areas by score, then position (a total order). */
static int
nn_area_desc(const void *a, const void *b)
{
	const nn_box *p = a,
			   *q = b;
	double		pa = p->width * p->height,
				qa = q->width * q->height;

	if (pa != qa)
		return pa > qa ? -1 : 1;
	if (p->score != q->score)
		return p->score > q->score ? -1 : 1;
	if (p->y != q->y)
		return p->y < q->y ? -1 : 1;
	return p->x < q->x ? -1 : p->x > q->x ? 1 : 0;
}

static int
deep_locate(const tr_features *self, const tr_image *img, tr_box *faces, int max,
			char *err, size_t errlen)
{
	nn_image	im = image_view(img);
	char		nerr[NN_ERRLEN];
	const nn_detector *det;
	nn_box	   *boxes;
	int			n,
				kept = 0;

	if (tr_netcache_detector(self->model_dir, &det, nerr, sizeof(nerr)) != 0)
		return unavailable(self->model_dir, nerr, err, errlen);
	/* The detector reads the decoded image in place, grey or RGB. */
	n = nn_locate_faces_image(det, &im, &boxes, nerr);
	if (n < 0)
	{
		snprintf(err, errlen, "%s", nerr);
		return -1;
	}
	/* The largest faces first, then cut to max (not the best scores, then the largest of those). */
	qsort(boxes, n, sizeof(nn_box), nn_area_desc);
	for (int i = 0; i < n && kept < max; i++)
	{
		tr_box		b = {(int) boxes[i].x, (int) boxes[i].y,
			(int) boxes[i].width, (int) boxes[i].height,
		(float) (boxes[i].x + boxes[i].dx - (int) boxes[i].x),
		(float) (boxes[i].y + boxes[i].dy - (int) boxes[i].y)};

		if (b.w > 0 && b.h > 0)
			faces[kept++] = b;
	}
	free(boxes);
	return kept;
}

int
tr_deep_gender(const char *model_dir, const tr_image *img, tr_box r, double *p_male,
			   char *err, size_t errlen)
{
	const nn_agegender *net;
	char		nerr[NN_ERRLEN];
	uint8_t    *rgb;
	float		pm,
				pf,
				age;
	int			rc,
				cw,
				ch;

	if (tr_netcache_agegender(model_dir, &net, nerr, sizeof(nerr)) != 0)
	{
		snprintf(err, errlen, "gender network unavailable in \"%s\": %s", model_dir ? model_dir : "", nerr);
		return -1;
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
	rc = nn_agegender_predict(net, rgb, cw, ch, &pm, &pf, &age, nerr);
	free(rgb);
	if (rc != 0)
	{
		snprintf(err, errlen, "%s", nerr);
		return -1;
	}
	*p_male = pm;
	return 0;
}

const tr_features tr_deep_kind = {
	TR_DEEP_FEATURES_NAME, NN_DESCRIPTOR_DIM, deep_extract, NULL, deep_locate, 1, NULL
};

/*
 * The aligned kind: face-api's detect -> 68 landmarks -> aligned square ->
 * descriptor. The region is the detection (its landmarks moved by the
 * detector's unrounded corner, clipped to the image), the face box, or the
 * whole image when no face was found: aligning a face crop the detector missed
 * helps too (bench/orl_tight.sh: 96.5 % top-1 aligned, 81.0 % as it is). A
 * region whose square is empty is embedded as it is, as the unaligned kind does.
 */
static int
aligned_extract(const tr_features *self, const tr_image *img, tr_box r, float *out,
				char *err, size_t errlen)
{
	char		nerr[NN_ERRLEN];
	const nn_facenet *net;
	const nn_landmarks *lm;
	nn_image	im = image_view(img);
	nn_box		det = {r.x, r.y, r.w, r.h, 0, r.dx, r.dy};
	int			rc;

	if (tr_netcache_facenet(self->model_dir, &net, nerr, sizeof(nerr)) != 0 ||
		tr_netcache_landmarks(self->model_dir, &lm, nerr, sizeof(nerr)) != 0)
		return unavailable(self->model_dir, nerr, err, errlen);
	if (r.w <= 0 || r.h <= 0 || r.x < 0 || r.y < 0 ||
		r.x + r.w > img->width || r.y + r.h > img->height)
	{
		snprintf(err, errlen, "face region outside the image");
		return -1;
	}
	rc = nn_aligned_descriptor(lm, net, &im, &det, NULL, NULL, out, nerr);
	if (rc == 1)
		return deep_extract(self, img, r, out, err, errlen);
	if (rc != 0)
	{
		snprintf(err, errlen, "%s", nerr);
		return -1;
	}
	tr_l2_normalize(out, NN_DESCRIPTOR_DIM);
	return 0;
}

const tr_features tr_deep_aligned_kind = {
	TR_DEEP_ALIGNED_NAME, NN_DESCRIPTOR_DIM, aligned_extract, NULL, deep_locate, 1, NULL
};

int
tr_deep_aligned_available(const char *model_dir)
{
	const nn_landmarks *lm;
	char		nerr[NN_ERRLEN];

	return model_dir != NULL && model_dir[0] != '\0' &&
		tr_netcache_landmarks(model_dir, &lm, nerr, sizeof(nerr)) == 0;
}

int
tr_deep_gender_available(const char *model_dir)
{
	const nn_agegender *net;
	char		nerr[NN_ERRLEN];

	return model_dir != NULL && model_dir[0] != '\0' &&
		tr_netcache_agegender(model_dir, &net, nerr, sizeof(nerr)) == 0;
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
