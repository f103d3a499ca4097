/*
 * golden.c - compare the C networks of src/nn with face-api's JavaScript
 * implementation on the cases written by golden.js.
 *
 * usage: golden MODEL_DIR CASE_DIR   (exit status 0 when every case agrees)
 *        golden --ppm IMAGE OUT.ppm   (decode a photo as the server does, for golden.js)
 * With GOLDEN_ONE_PER_KIND=1 only the first case of each kind runs (for
 * valgrind, which makes a forward pass some hundred times slower).
 */
#include "nn/nn.h"
#include "decode.h"
#include "deepfeat.h"
#include "netcache.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	failures;
static int	kind_checked;
static const char *model_dir;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf("FAIL: " __VA_ARGS__); printf("\n"); } } while (0)

static uint8_t *
read_ppm(const char *dir, const char *name, int *w, int *h)
{
	char		path[4096];
	FILE	   *f;
	int			maxv;
	uint8_t    *img;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f || fscanf(f, "P6 %d %d %d", w, h, &maxv) != 3 || maxv != 255 || fgetc(f) == EOF)
	{
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	img = malloc((size_t) *w * *h * 3);
	if (!img || fread(img, 1, (size_t) *w * *h * 3, f) != (size_t) *w * *h * 3)
	{
		fprintf(stderr, "short PPM %s\n", path);
		exit(2);
	}
	fclose(f);
	return img;
}

static char *
slurp(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	long		n;
	char	   *s;

	if (!f)
	{
		fprintf(stderr, "cannot open %s\n", path);
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = malloc(n + 1);
	if (!s || fread(s, 1, n, f) != (size_t) n)
		exit(2);
	s[n] = 0;
	fclose(f);
	return s;
}

/* Decode an image file with the server's decoder and write it as a colour PPM. */
static int
to_ppm(const char *in, const char *out)
{
	FILE	   *f = fopen(in, "rb");
	uint8_t    *data;
	long		n;
	tr_image	im;
	char		err[256];
	int			rc;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0 ||
		!(data = malloc(n)) || fread(data, 1, n, f) != (size_t) n)
	{
		fprintf(stderr, "cannot read %s\n", in);
		return 2;
	}
	fclose(f);
	rc = tr_decode(data, n, 0, &im, NULL, err, sizeof(err));
	free(data);
	if (rc != TR_DECODE_OK)
	{
		fprintf(stderr, "%s: %s\n", in, err);
		return 2;
	}
	f = fopen(out, "wb");
	if (!f)
	{
		tr_image_free(&im);
		fprintf(stderr, "cannot write %s\n", out);
		return 2;
	}
	fprintf(f, "P6\n%d %d\n255\n", im.width, im.height);
	for (size_t i = 0; i < (size_t) im.width * im.height; i++)
		for (int ch = 0; ch < 3; ch++)
			fputc(im.pixels[i * im.channels + (im.channels == 3 ? ch : 0)], f);
	rc = fclose(f) == 0 ? 0 : 2;
	tr_image_free(&im);
	return rc;
}

static double
num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Largest distance between 68 points and face-api's (x, y pairs). */
static double
points_diff(const double *pts, const cJSON *exp)
{
	double		worst = 0;
	int			i = 0;
	const cJSON *v;

	if (cJSON_GetArraySize(exp) != 2 * NN_LANDMARK_POINTS)
		return INFINITY;
	cJSON_ArrayForEach(v, exp)
	{
		worst = fmax(worst, fabs(pts[i] - v->valuedouble));
		i++;
	}
	return worst;
}

static double
cosine(const float *d, const cJSON *exp)
{
	double		dot = 0,
				na = 0,
				nb = 0;
	int			i = 0;
	const cJSON *v;

	if (cJSON_GetArraySize(exp) != NN_DESCRIPTOR_DIM)
		return -1;
	cJSON_ArrayForEach(v, exp)
	{
		dot += d[i] * v->valuedouble;
		na += (double) d[i] * d[i];
		nb += v->valuedouble * v->valuedouble;
		i++;
	}
	return dot / sqrt(na * nb);
}

static double
box_iou(const nn_box *a, double x, double y, double w, double h)
{
	double		iw = fmin(a->x + a->width, x + w) - fmax(a->x, x);
	double		ih = fmin(a->y + a->height, y + h) - fmax(a->y, y);
	double		inter = (iw > 0 ? iw : 0) * (ih > 0 ? ih : 0);

	return inter / (a->width * a->height + w * h - inter);
}

int
main(int argc, char **argv)
{
	char		err[NN_ERRLEN];
	nn_facenet	fn;
	nn_detector det;
	nn_agegender ag;
	nn_landmarks lm;
	char		path[4096];
	char	   *text;
	cJSON	   *root;
	const cJSON *c;
	int			ncases = 0;
	char		seen[256] = "";
	int			one_per_kind = getenv("GOLDEN_ONE_PER_KIND") != NULL;
	double		worst_cos = 1,
				worst_gender = 0,
				worst_raw = 0,
				worst_iou = 1,
				worst_point = 0,
				worst_aligned_cos = 1;

	if (argc == 4 && strcmp(argv[1], "--ppm") == 0)
		return to_ppm(argv[2], argv[3]);
	if (argc != 3)
	{
		fprintf(stderr, "usage: %s MODEL_DIR CASE_DIR\n", argv[0]);
		return 2;
	}
	model_dir = argv[1];
	if (nn_facenet_load(&fn, argv[1], err) != 0 ||
		nn_detector_load(&det, argv[1], err) != 0 ||
		nn_agegender_load(&ag, argv[1], err) != 0 ||
		nn_landmarks_load(&lm, argv[1], err) != 0)
	{
		fprintf(stderr, "loading models: %s\n", err);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/expected.json", argv[2]);
	text = slurp(path);
	root = cJSON_Parse(text);
	free(text);
	if (!root)
	{
		fprintf(stderr, "bad expected.json\n");
		return 2;
	}
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "cases"))
	{
		const char *kind = cJSON_GetObjectItemCaseSensitive(c, "kind")->valuestring;
		const char *image = cJSON_GetObjectItemCaseSensitive(c, "image")->valuestring;
		int			w,
					h;
		uint8_t    *img;
		char		tag[64];

		snprintf(tag, sizeof(tag), "<%s>", kind);
		if (one_per_kind && strstr(seen, tag))
			continue;
		if (strlen(seen) + strlen(tag) < sizeof(seen))
			strcat(seen, tag);
		img = read_ppm(argv[2], image, &w, &h);

		ncases++;
		if (strcmp(kind, "descriptor") == 0)
		{
			float		d[NN_DESCRIPTOR_DIM];
			const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, "descriptor");
			double		dot = 0,
						na = 0,
						nb = 0,
						cosv;
			int			i = 0;
			const cJSON *v;

			CHECK(nn_facenet_descriptor(&fn, img, w, h, d, err) == 0, "%s: %s", image, err);
			CHECK(cJSON_GetArraySize(e) == NN_DESCRIPTOR_DIM, "%s: descriptor size", image);
			cJSON_ArrayForEach(v, e)
			{
				if (i >= NN_DESCRIPTOR_DIM)
					break;
				dot += d[i] * v->valuedouble;
				na += (double) d[i] * d[i];
				nb += v->valuedouble * v->valuedouble;
				i++;
			}
			cosv = dot / sqrt(na * nb);
			if (!(cosv >= worst_cos))
				worst_cos = cosv;
			CHECK(cosv >= 0.9999, "%s (%dx%d): descriptor cosine %.6f < 0.9999", image, w, h, cosv);
			/* The pipeline's feature kind: the same descriptor, L2-normalised. */
			{
				tr_features kind = tr_deep_kind;
				const tr_features *k = &kind;
				tr_image	ti = {w, h, 3, img};
				tr_box		whole = {0, 0, w, h, 0, 0};
				float		f[NN_DESCRIPTOR_DIM];
				double		fdot = 0,
							fn2 = 0;

				kind.model_dir = model_dir;
				CHECK(k->extract(k, &ti, whole, f, err, sizeof(err)) == 0, "%s: %s", image, err);
				i = 0;
				cJSON_ArrayForEach(v, e)
				{
					if (i >= NN_DESCRIPTOR_DIM)
						break;
					fdot += f[i] * v->valuedouble;
					fn2 += (double) f[i] * f[i];
					i++;
				}
				CHECK(fabs(fn2 - 1) < 1e-4 && fdot / sqrt(nb) >= 0.9999,
					  "%s: feature kind descriptor differs (norm %.6f, cosine %.6f)", image, fn2, fdot / sqrt(nb));
			}
		}
		else if (strcmp(kind, "gender") == 0)
		{
			float		pm,
						pf,
						age;
			double		diff;

			CHECK(nn_agegender_predict(&ag, img, w, h, &pm, &pf, &age, err) == 0, "%s: %s", image, err);
			diff = fabs(pm - num(c, "male"));
			if (!(diff <= worst_gender))
				worst_gender = diff;
			CHECK(diff <= 1e-3, "%s: P(male) %.6f vs face-api %.6f", image, pm, num(c, "male"));
			CHECK(fabs(pm + pf - 1) < 1e-5, "%s: probabilities do not sum to 1", image);
			{
				tr_image	ti = {w, h, 3, img};
				tr_box		whole = {0, 0, w, h, 0, 0};
				double		p;

				CHECK(tr_deep_gender(model_dir, &ti, whole, &p, err, sizeof(err)) == 0 &&
					  fabs(p - num(c, "male")) <= 1e-3, "%s: tr_deep_gender %.6f vs face-api %.6f (%s)",
					  image, p, num(c, "male"), err);
			}
		}
		else if (strcmp(kind, "detector_raw") == 0)
		{
			nn_map		out;
			const cJSON *vals = cJSON_GetObjectItemCaseSensitive(c, "values");
			const cJSON *shape = cJSON_GetObjectItemCaseSensitive(c, "shape");
			int			size = (int) num(c, "input_size");
			double		maxdiff = 0,
						maxabs = 0;
			int			i = 0;
			const cJSON *v;

			CHECK(nn_detector_forward(&det, img, w, h, size, &out, err) == 0, "%s: %s", image, err);
			CHECK(out.h == cJSON_GetArrayItem(shape, 0)->valueint &&
				  out.w == cJSON_GetArrayItem(shape, 1)->valueint &&
				  out.c == cJSON_GetArrayItem(shape, 2)->valueint,
				  "%s: detector output %dx%dx%d has the wrong shape", image, out.h, out.w, out.c);
			if (cJSON_GetArraySize(vals) == out.h * out.w * out.c)
				cJSON_ArrayForEach(v, vals)
				{
					maxdiff = fmax(maxdiff, fabs(out.d[i] - v->valuedouble));
					maxabs = fmax(maxabs, fabs(v->valuedouble));
					i++;
				}
			nn_map_free(&out);
			worst_raw = fmax(worst_raw, maxdiff);
			CHECK(maxdiff <= 1e-3 * fmax(1, maxabs), "%s: detector output differs by %.3g (max |v| %.3g)",
				  image, maxdiff, maxabs);
		}
		else if (strcmp(kind, "detect") == 0)
		{
			nn_box	   *boxes;
			const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c, "boxes");
			int			n = nn_detect(&det, img, w, h, (int) num(c, "input_size"),
									  num(c, "threshold"), &boxes, err);
			int			i = 0;
			const cJSON *b;

			CHECK(n == cJSON_GetArraySize(exp), "%s: %d faces, face-api found %d (%s)", image, n,
				  cJSON_GetArraySize(exp), n < 0 ? err : "");
			CHECK(cJSON_GetArraySize(exp) > 0, "%s: face-api found no face in the scene", image);
			if (n == cJSON_GetArraySize(exp))
				cJSON_ArrayForEach(b, exp)
				{
					double		iou = box_iou(&boxes[i], num(b, "x"), num(b, "y"),
											  num(b, "width"), num(b, "height"));

					worst_iou = fmin(worst_iou, iou);
					CHECK(iou >= 0.98, "%s: box %d IoU %.4f < 0.98", image, i, iou);
					CHECK(fabs(boxes[i].score - num(b, "score")) < 1e-3, "%s: box %d score %.5f vs %.5f",
						  image, i, boxes[i].score, num(b, "score"));
					i++;
				}
			free(boxes);
		}
		else if (strcmp(kind, "landmarks") == 0)
		{
			/* detectLandmarks on a whole crop: points in crop pixels. */
			nn_image	im = {img, w, h, 3, 0};
			nn_box		whole = {0, 0, w, h, 0, 0, 0};
			double		pts[2 * NN_LANDMARK_POINTS];
			int			wh[2];

			CHECK(nn_face_landmarks(&lm, &im, &whole, pts, wh, err) == 0, "%s: %s", image, err);
			worst_point = fmax(worst_point, points_diff(pts, cJSON_GetObjectItemCaseSensitive(c, "points")));
			CHECK(points_diff(pts, cJSON_GetObjectItemCaseSensitive(c, "points")) <= 0.01,
				  "%s: landmarks differ by %.4f px", image,
				  points_diff(pts, cJSON_GetObjectItemCaseSensitive(c, "points")));
		}
		else if (strcmp(kind, "aligned") == 0)
		{
			/* withFaceLandmarks().withFaceDescriptors() from face-api's detection box. */
			nn_image	im = {img, w, h, 3, 0};
			const cJSON *bx = cJSON_GetObjectItemCaseSensitive(c, "box");
			const cJSON *sq = cJSON_GetObjectItemCaseSensitive(c, "square");
			nn_box		det = {num(bx, "x"), num(bx, "y"), num(bx, "width"), num(bx, "height"), 0, 0, 0},
						square;
			double		pts[2 * NN_LANDMARK_POINTS],
						pd,
						cosv;
			float		d[NN_DESCRIPTOR_DIM];

			CHECK(nn_aligned_descriptor(&lm, &fn, &im, &det, pts, &square, d, err) == 0, "%s: %s", image, err);
			pd = points_diff(pts, cJSON_GetObjectItemCaseSensitive(c, "points"));
			worst_point = fmax(worst_point, pd);
			CHECK(pd <= 0.01, "%s: landmarks differ by %.4f px", image, pd);
			CHECK(square.x == num(sq, "x") && square.y == num(sq, "y") &&
				  square.width == num(sq, "width") && square.height == num(sq, "height"),
				  "%s: aligned square %g,%g %gx%g, face-api %g,%g %gx%g", image, square.x, square.y,
				  square.width, square.height, num(sq, "x"), num(sq, "y"), num(sq, "width"), num(sq, "height"));
			cosv = cosine(d, cJSON_GetObjectItemCaseSensitive(c, "descriptor"));
			worst_aligned_cos = fmin(worst_aligned_cos, cosv);
			CHECK(cosv >= 0.9999, "%s: aligned descriptor cosine %.6f < 0.9999", image, cosv);
			/*
			 * The pipeline's aligned kind on the detection as the locator hands it
			 * over: clipped and rounded, with the detector's own corner in dx, dy.
			 */
			{
				tr_features kind = tr_deep_aligned_kind;
				tr_image	ti = {w, h, 3, img};
				int			r[4];
				float		f[NN_DESCRIPTOR_DIM];

				kind.model_dir = model_dir;
				if (nn_crop_rect(&det, w, h, r))
				{
					tr_box		tb = {r[0], r[1], r[2], r[3], (float) (det.x - r[0]), (float) (det.y - r[1])};
					nn_box		rounded = {r[0], r[1], r[2], r[3], 0, det.x - r[0], det.y - r[1]};
					double		p2[2 * NN_LANDMARK_POINTS];
					float		d2[NN_DESCRIPTOR_DIM];

					CHECK(nn_aligned_descriptor(&lm, &fn, &im, &rounded, p2, NULL, d2, err) == 0 &&
						  points_diff(p2, cJSON_GetObjectItemCaseSensitive(c, "points")) <= 0.01 &&
						  cosine(d2, cJSON_GetObjectItemCaseSensitive(c, "descriptor")) >= 0.9999,
						  "%s: the rounded box with its corner in dx, dy differs", image);
					CHECK(kind.extract(&kind, &ti, tb, f, err, sizeof(err)) == 0 &&
						  cosine(f, cJSON_GetObjectItemCaseSensitive(c, "descriptor")) >= 0.9999,
						  "%s: aligned feature kind differs (%s)", image, err);
					kind_checked++;
				}
			}
		}
		else
			CHECK(0, "unknown case kind %s", kind);
		free(img);
	}
	cJSON_Delete(root);
	nn_facenet_free(&fn);
	nn_detector_free(&det);
	nn_agegender_free(&ag);
	nn_landmarks_free(&lm);
	tr_netcache_free();
	CHECK(one_per_kind || kind_checked > 0, "no aligned case checked the aligned feature kind");
	printf("golden: %d cases, worst descriptor cosine %.7f, worst P(male) diff %.2g, "
		   "worst raw detector diff %.2g, worst box IoU %.5f, worst landmark diff %.4f px, "
		   "worst aligned descriptor cosine %.7f, %d failures\n",
		   ncases, worst_cos, worst_gender, worst_raw, worst_iou, worst_point, worst_aligned_cos, failures);
	return failures == 0 && ncases > 0 ? 0 : 1;
}
