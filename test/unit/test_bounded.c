/*
 * test_bounded.c - memory of the core paths does not grow beyond the decoded
 * image (issue 13): decoding, the face filters (sharpness), features
 * (classic and deep), face location (with the border retry for tightly
 * cropped faces), gender and recognition on a 1x65535 and a 65535x1 grey
 * image and on a 7000x7000 RGB JPEG (49 MP). The peak resident memory of
 * each call (VmHWM after resetting it through /proc/self/clear_refs, else
 * ru_maxrss) must stay under BOUND_MB, and each call must give a result (a
 * usable image or a skip reason), not an out-of-memory failure.
 *
 * The deep part runs when the face networks are in $TRAINING_MODEL_DIR or
 * models/ (make models); it is skipped otherwise. Under valgrind the RGB image
 * is 1200x1000, the deep paths run on the 1x65535 image only (the border retry,
 * the grey view, the compact crops; a detection takes seconds there) and peaks
 * are not checked (valgrind's own memory is counted).
 */
#include "unit.h"

#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "deepfeat.h"
#include "trfeatures.h"
#include "nn/nn.h"
#include "pipeline.h"

#define BOUND_MB 300.0
#define BOUND_MAX_PIXELS 50000000

static int	measure;			/* 0 under valgrind */
static const char *model_dir_value = "models";

/* The kind face trainings use here: the classic one, then the deep one. */
static const char *face_kind = "face-lbp-hog-v1";

/* A config of the type with the kind under test and the model directory. */
static void
test_config(tr_config *cfg, tr_type type)
{
	char		err[TR_ERRLEN];

	tr_config_default(cfg, type);
	CHECK_MSG(tr_config_set_features(cfg, type == TR_FACE ? face_kind : NULL, model_dir_value,
									 err, sizeof(err)) == 0, "%s", err);
}

/* ---------- peak resident memory ---------- */

static long
status_kb(const char *key)
{
	FILE	   *f = fopen("/proc/self/status", "r");
	char		line[256];
	long		v = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = atol(line + strlen(key));
	fclose(f);
	return v;
}

typedef struct peak
{
	long		base_kb;
	double		t0;
	int			hwm;			/* 1: VmHWM was reset; 0: ru_maxrss, an upper bound */
} peak;

static void
peak_begin(peak *p)
{
	FILE	   *f;
	struct timespec ts;

	/* Free heap pages go back to the system, so that a call's own allocations count. */
	malloc_trim(0);
	f = fopen("/proc/self/clear_refs", "w");
	clock_gettime(CLOCK_MONOTONIC, &ts);
	p->t0 = ts.tv_sec + ts.tv_nsec * 1e-9;
	/* "5" resets the peak resident set size (VmHWM) to the current one. */
	p->hwm = f != NULL && fputs("5", f) >= 0;
	if (f != NULL && fclose(f) != 0)
		p->hwm = 0;
	p->base_kb = status_kb("VmRSS:");
}

static double
peak_mb(const peak *p)
{
	long		top;

	if (p->hwm)
		top = status_kb("VmHWM:");
	else
	{
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		top = ru.ru_maxrss;
	}
	return (top - p->base_kb) / 1024.0;
}

static void
check_peak(const peak *p, const char *what, const char *image)
{
	double		mb = peak_mb(p);
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (getenv("TRAINING_BOUNDED_VERBOSE"))
		fprintf(stderr, "bounded: %-34s %-10s peak %7.1f MB %6.2f s\n", what, image, mb,
				ts.tv_sec + ts.tv_nsec * 1e-9 - p->t0);
	if (measure)
		CHECK_MSG(mb < BOUND_MB, "%s on %s: peak %.1f MB above %.0f MB", what, image, mb, BOUND_MB);
}

/* ---------- images ---------- */

static uint8_t *
grey_line(int w, int h, size_t *len)
{
	uint8_t    *px = malloc((size_t) w * h);
	uint8_t    *enc;

	for (size_t i = 0; i < (size_t) w * h; i++)
		px[i] = (uint8_t) (128 + 90 * sin(i * 0.7) + (i * 7919 % 23));
	enc = unit_encode_pnm(px, w, h, 1, 0, len);
	free(px);
	return enc;
}

static uint8_t *
rgb_jpeg(int w, int h, size_t *len)
{
	uint8_t    *px = malloc((size_t) w * h * 3);
	uint8_t    *enc;

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
		{
			uint8_t    *p = px + ((size_t) y * w + x) * 3;
			double		v = 70 * sin(x * 0.05) * cos(y * 0.03);

			p[0] = (uint8_t) (128 + v + ((x ^ y) & 15));
			p[1] = (uint8_t) (120 - v / 2 + ((x * 3 + y) & 7));
			p[2] = (uint8_t) (100 + v / 3);
		}
	enc = unit_encode_jpeg(px, w, h, 3, 80, 0, len);
	free(px);
	return enc;
}

/* 96x96 grey textures of two classes, for small models. */
static uint8_t *
texture(int cls, int idx, size_t *len)
{
	uint8_t		px[96 * 96];

	for (int y = 0; y < 96; y++)
		for (int x = 0; x < 96; x++)
			px[y * 96 + x] = (uint8_t) (128 + 80 * sin((0.2 + 0.15 * cls) * x + idx * 0.3) *
										cos((0.1 + 0.2 * cls) * y) + ((x * 31 + y * 17 + idx * 5) % 21));
	return unit_encode_pnm(px, 96, 96, 1, 0, len);
}

/* ---------- a small model to recognize with ---------- */

typedef struct feed
{
	int			pos;
	uint8_t    *data;
} feed;

static int
next_image(void *ctx, tr_image_ref *out)
{
	feed	   *f = ctx;
	size_t		len;

	free(f->data);
	f->data = NULL;
	if (f->pos >= 8)
		return 0;
	f->data = texture(f->pos % 2, f->pos, &len);
	out->data = f->data;
	out->len = len;
	out->class_index = f->pos % 2;
	f->pos++;
	return 1;
}

static int
small_model(tr_type type, tr_model *model)
{
	static const char *const labels[] = {"a", "b"};
	static const char *const ids[] = {"11111111-1111-1111-1111-111111111111",
	"22222222-2222-2222-2222-222222222222"};
	feed		f = {0, NULL};
	tr_callbacks cb = {&f, next_image, NULL, NULL};
	tr_config	cfg;
	tr_result	res;
	char		err[TR_ERRLEN];
	int			rc;

	test_config(&cfg, type);
	cfg.min_face_size = 1;
	cfg.sharpness_threshold = 0;
	rc = tr_train(&cfg, 2, labels, ids, &cb, &res, err, sizeof(err));
	free(f.data);
	CHECK_MSG(rc == 0, "%s", err);
	if (rc != 0)
		return -1;
	rc = tr_model_parse(res.parameters, res.parameters_len, model, err, sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	tr_result_free(&res);
	return rc;
}

/* ---------- the paths ---------- */

/* A skip reason or a usable image, never a failure to decode or out of memory. */
static void
check_result(tr_skip s, const char *err, const char *what, const char *image)
{
	CHECK_MSG(s != TR_SKIP_UNDECODABLE && s != TR_SKIP_TOO_LARGE, "%s on %s: %s", what, image, err);
	CHECK_MSG(strstr(err, "out of memory") == NULL, "%s on %s: %s", what, image, err);
}

/* tr_check_image as a training does it, then the features of a usable image. */
static void
check_and_extract(const uint8_t *data, size_t len, const char *image, tr_type type, int lenient,
				  const int *box, const char *what, int gender)
{
	tr_config	cfg;
	tr_image	img;
	tr_box		r;
	double		sharpness;
	char		err[TR_ERRLEN] = "";
	tr_skip		s;
	peak		p;

	test_config(&cfg, type);
	cfg.max_image_pixels = BOUND_MAX_PIXELS;
	if (lenient)
	{
		cfg.min_face_size = 1;
		cfg.sharpness_threshold = 0;
	}
	peak_begin(&p);
	s = tr_check_image(&cfg, data, len, box, &img, &r, &sharpness, err, sizeof(err));
	check_result(s, err, what, image);
	if (lenient)
		CHECK_MSG(s == TR_SKIP_NONE, "%s on %s: %s", what, image, err);
	if (s == TR_SKIP_NONE)
	{
		tr_features kind = *tr_features_find(cfg.features);
		const tr_features *feat = &kind;
		float	   *x = malloc(sizeof(float) * feat->dim);
		double		norm = 0;

		kind.model_dir = model_dir_value;
		CHECK_MSG(feat->extract(feat, &img, r, x, err, sizeof(err)) == 0, "%s on %s: %s", what, image, err);
		for (int i = 0; i < feat->dim; i++)
			norm += (double) x[i] * x[i];
		CHECK_MSG(fabs(norm - 1) < 1e-3, "%s on %s: feature norm %g", what, image, norm);
		if (gender)
		{
			double		p_male = -1;

			CHECK_MSG(tr_deep_gender(model_dir_value, &img, r, &p_male, err, sizeof(err)) == 0 && p_male >= 0 && p_male <= 1,
					  "%s on %s: %s", what, image, err);
		}
		free(x);
		tr_image_free(&img);
	}
	check_peak(&p, what, image);
}

static void
recognize(const tr_model *model, const uint8_t *data, size_t len, const char *image, const char *what)
{
	tr_box		regions[TR_MAX_FACES];
	tr_match	matches[TR_MAX_FACES * 2];
	int			nmatches[TR_MAX_FACES],
				nfaces = 0,
				rc;
	char		err[TR_ERRLEN] = "";
	peak		p;

	peak_begin(&p);
	rc = tr_recognize_faces(model, model_dir_value, data, len, BOUND_MAX_PIXELS, NULL, 2, regions, matches, nmatches,
							&nfaces, err, sizeof(err));
	CHECK_MSG(rc == TR_DECODE_OK && nfaces >= 1 && nmatches[0] == 2, "%s on %s: %d %s", what, image, rc, err);
	check_peak(&p, what, image);
}

/* What training.detect_faces does: faces of the decoded image, then the gender of each. */
static void
detect_faces(const nn_detector *det, const nn_agegender *ag, const uint8_t *data, size_t len,
			 const char *image)
{
	tr_image	img;
	char		err[TR_ERRLEN];
	char		nerr[NN_ERRLEN];
	nn_box	   *boxes = NULL;
	int			n;
	peak		p;

	peak_begin(&p);
	CHECK_MSG(tr_decode(data, len, BOUND_MAX_PIXELS, &img, NULL, err, sizeof(err)) == TR_DECODE_OK,
			  "%s: %s", image, err);
	if (img.pixels == NULL)
		return;
	{
		nn_image	im = {img.pixels, img.width, img.height, img.channels, 0};

		n = nn_locate_faces_image(det, &im, &boxes, nerr);
		CHECK_MSG(n >= 0, "detection on %s: %s", image, nerr);
		for (int i = 0; i < n && ag; i++)
		{
			int			r[4] = {(int) boxes[i].x, (int) boxes[i].y, (int) boxes[i].width, (int) boxes[i].height};
			int			cw,
						ch;
			uint8_t    *crop = nn_crop_for_input(&im, r, NN_AGEGENDER_INPUT, &cw, &ch);
			float		pm,
						pf,
						age;

			CHECK(crop != NULL && nn_agegender_predict(ag, crop, cw, ch, &pm, &pf, &age, nerr) == 0);
			free(crop);
		}
	}
	free(boxes);
	tr_image_free(&img);
	check_peak(&p, "nn_locate_faces_image + gender", image);
}

/* The crop for a network input is the full crop's input, bit for bit, at a bounded size. */
static void
crop_for_input(void)
{
	uint64_t	s = 7;
	int			cases[][6] = {
		/* image w, h, channels, rect w, h, size */
		{2000, 1500, 3, 1700, 1300, 150}, {1200, 3000, 1, 900, 2999, 150}, {5000, 40, 3, 4999, 3, 112},
		{700, 700, 1, 451, 452, 150}, {400, 400, 3, 300, 200, 150}, {3000, 3000, 3, 3000, 1000, 112},
	};

	for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++)
	{
		int			w = cases[t][0],
					h = cases[t][1],
					c = cases[t][2],
					size = cases[t][5];
		int			rect[4] = {w - cases[t][3], h - cases[t][4], cases[t][3], cases[t][4]};
		uint8_t    *px = malloc((size_t) w * h * c);
		uint8_t    *full = malloc((size_t) rect[2] * rect[3] * 3);
		uint8_t    *crop;
		nn_image	im = {px, w, h, c, 0};
		const float mean[3] = {100, 110, 120};
		nn_map		a,
					b;
		int			cw = 0,
					ch = 0,
					same = 1;

		for (size_t i = 0; i < (size_t) w * h * c; i++)
		{
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			px[i] = (uint8_t) (s >> 56);
		}
		for (int y = 0; y < rect[3]; y++)
			for (int x = 0; x < rect[2]; x++)
				for (int k = 0; k < 3; k++)
					full[((size_t) y * rect[2] + x) * 3 + k] =
						px[((size_t) (rect[1] + y) * w + rect[0] + x) * c + (c == 3 ? k : 0)];
		crop = nn_crop_for_input(&im, rect, size, &cw, &ch);
		CHECK(crop != NULL);
		if (crop == NULL)
			continue;
		if ((rect[2] > rect[3] ? rect[2] : rect[3]) > 3 * size)
			CHECK_MSG(cw == ch && cw > 2 * size && cw <= 3 * size, "compact crop %dx%d", cw, ch);
		else
			CHECK(cw == rect[2] && ch == rect[3] && memcmp(crop, full, (size_t) cw * ch * 3) == 0);
		CHECK(nn_prepare(full, rect[2], rect[3], size, 1, mean, &a) == 0);
		CHECK(nn_prepare(crop, cw, ch, size, 1, mean, &b) == 0);
		for (int i = 0; i < size * size * 3; i++)
			same &= a.d[i] == b.d[i];
		CHECK_MSG(same, "case %zu: the network input differs", t);
		nn_map_free(&a);
		nn_map_free(&b);
		free(crop);
		free(full);
		free(px);
	}
}

void
test_bounded(void)
{
	const char *preload = getenv("LD_PRELOAD");
	int			valgrind = preload != NULL && strstr(preload, "vgpreload") != NULL;
	int			big_w = valgrind ? 1200 : 7000,
				big_h = valgrind ? 1000 : 7000;
	struct
	{
		const char *name;
		uint8_t    *data;
		size_t		len;
	}			img[3] = {{"1x65535", NULL, 0}, {"65535x1", NULL, 0}, {"big RGB", NULL, 0}};
	int			whole[3][4] = {{0, 0, 1, 65535}, {0, 0, 65535, 1}, {0, 0, big_w, big_h}};
	int			deep;
	tr_model	face_model,
				landmark_model;

	measure = !valgrind;
	if (getenv("TRAINING_MODEL_DIR"))
		model_dir_value = getenv("TRAINING_MODEL_DIR");
	deep = tr_deep_models_present(model_dir_value);

	crop_for_input();

	img[0].data = grey_line(1, 65535, &img[0].len);
	img[1].data = grey_line(65535, 1, &img[1].len);
	img[2].data = rgb_jpeg(big_w, big_h, &img[2].len);

	/* Classic features (the default face kind here). */
	CHECK(small_model(TR_FACE, &face_model) == 0);
	CHECK(small_model(TR_LANDMARK, &landmark_model) == 0);
	for (int i = 0; i < 3; i++)
	{
		check_and_extract(img[i].data, img[i].len, img[i].name, TR_FACE, 0, NULL, "check_image face", 0);
		check_and_extract(img[i].data, img[i].len, img[i].name, TR_FACE, 1, NULL, "check_image face + features", 0);
		check_and_extract(img[i].data, img[i].len, img[i].name, TR_FACE, 1, whole[i], "face box + features", 0);
		check_and_extract(img[i].data, img[i].len, img[i].name, TR_LANDMARK, 0, NULL, "landmark + features", 0);
		recognize(&face_model, img[i].data, img[i].len, img[i].name, "recognize (classic face)");
		recognize(&landmark_model, img[i].data, img[i].len, img[i].name, "recognize (landmark)");
	}
	tr_model_free(&face_model);
	tr_model_free(&landmark_model);

	/* The deep kind: the face locator with its border retry, descriptors, gender. */
	if (!deep)
		fprintf(stderr, "bounded: no face networks in %s (make models): deep paths skipped\n", model_dir_value);
	else
	{
		char		err[NN_ERRLEN];
		nn_detector det;
		nn_agegender ag;
		int			have_ag;
		tr_model	deep_model;

		face_kind = TR_DEEP_FEATURES_NAME;
		CHECK(nn_detector_load(&det, model_dir_value, err) == 0);
		have_ag = nn_agegender_load(&ag, model_dir_value, err) == 0;
		/* Loads the networks, before any peak is measured. */
		if (!valgrind)
			CHECK(small_model(TR_FACE, &deep_model) == 0);
		for (int i = 0; i < (valgrind ? 1 : 3); i++)
		{
			check_and_extract(img[i].data, img[i].len, img[i].name, TR_FACE, 1, NULL,
							  "deep check_image + features", have_ag);
			detect_faces(&det, have_ag ? &ag : NULL, img[i].data, img[i].len, img[i].name);
			if (valgrind)
				continue;
			check_and_extract(img[i].data, img[i].len, img[i].name, TR_FACE, 0, NULL, "deep check_image", 0);
			check_and_extract(img[i].data, img[i].len, img[i].name, TR_FACE, 1, whole[i],
							  "deep face box + features", have_ag);
			recognize(&deep_model, img[i].data, img[i].len, img[i].name, "recognize (deep)");
		}
		if (!valgrind)
			tr_model_free(&deep_model);
		nn_detector_free(&det);
		if (have_ag)
			nn_agegender_free(&ag);
		face_kind = "face-lbp-hog-v1";
	}
	for (int i = 0; i < 3; i++)
		free(img[i].data);
}
