/*
 * test_deepfeat.c - the face locator hook of the feature interface as the
 * face filters use it (largest good face, reasons, fallbacks), and the
 * deep kind's model file check. The networks themselves are tested by
 * test/deep (golden test against face-api).
 */
#include "unit.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deepfeat.h"
#include "features.h"
#include "pipeline.h"

static tr_box fake_faces[4];
static int	fake_n;
static int	fake_calls;

static int
fake_locate(const tr_features *self, const tr_image *img, tr_box *faces, int max,
			char *err, size_t errlen)
{
	(void) self;
	(void) img;
	fake_calls++;
	if (fake_n < 0)
	{
		snprintf(err, errlen, "networks unavailable");
		return -1;
	}
	for (int i = 0; i < fake_n && i < max; i++)
		faces[i] = fake_faces[i];
	return fake_n;
}

static int
fake_extract(const tr_features *self, const tr_image *img, tr_box r, float *out,
			 char *err, size_t errlen)
{
	(void) self;
	(void) img;
	(void) err;
	(void) errlen;
	out[0] = (float) r.x;
	out[1] = (float) r.w;
	return 0;
}

static const tr_features fake_kind = {"unit-located", 2, fake_extract, NULL, fake_locate};

void
test_deepfeat(void)
{
	/* 200x160 grey: sharp noise on the left 120 columns, flat on the right. */
	int			w = 200,
				h = 160;
	uint8_t    *px = malloc(w * h);
	unsigned	seed = 5;
	size_t		len;
	uint8_t    *pgm;
	tr_config	cfg;
	tr_box		r;
	double		sh;
	char		err[TR_ERRLEN];
	int			box[4] = {0, 0, 100, 100};

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
		{
			seed = seed * 1103515245u + 12345u;
			px[y * w + x] = x < 120 ? (uint8_t) (seed >> 16) : 128;
		}
	pgm = unit_encode_pnm(px, w, h, 1, 0, &len);
	tr_config_default(&cfg, TR_FACE);
	cfg.min_face_size = 50;
	CHECK(tr_features_register(&fake_kind, TR_FEATURES_FACE) == 0);

	/* Largest first: blurry (flat), too small, then a good face: that one. */
	fake_faces[0] = (tr_box) {125, 10, 70, 70};
	fake_faces[1] = (tr_box) {5, 5, 40, 40};
	fake_faces[2] = (tr_box) {10, 50, 60, 60};
	fake_n = 3;
	CHECK(tr_check_image(&cfg, pgm, len, NULL, NULL, &r, &sh, err, sizeof(err)) == TR_SKIP_NONE);
	CHECK(r.x == 10 && r.y == 50 && r.w == 60 && sh > cfg.sharpness_threshold);

	/* Faces found but none good: the largest one's reason. */
	fake_n = 2;
	CHECK(tr_check_image(&cfg, pgm, len, NULL, NULL, &r, &sh, err, sizeof(err)) == TR_SKIP_BLURRY);
	CHECK_MSG(strstr(err, "sharpness") != NULL, "%s", err);
	fake_faces[0] = (tr_box) {5, 5, 40, 40};
	fake_n = 1;
	CHECK(tr_check_image(&cfg, pgm, len, NULL, NULL, &r, &sh, err, sizeof(err)) == TR_SKIP_TOO_SMALL);

	/* No face found, or no locator available: the whole image. */
	cfg.sharpness_threshold = 0;
	fake_n = 0;
	CHECK(tr_check_image(&cfg, pgm, len, NULL, NULL, &r, &sh, err, sizeof(err)) == TR_SKIP_NONE);
	CHECK(r.x == 0 && r.y == 0 && r.w == w && r.h == h);
	fake_n = -1;
	CHECK(tr_check_image(&cfg, pgm, len, NULL, NULL, &r, &sh, err, sizeof(err)) == TR_SKIP_NONE);
	CHECK(r.w == w && r.h == h);

	/* An annotated face box overrides the locator. */
	fake_calls = 0;
	CHECK(tr_check_image(&cfg, pgm, len, box, NULL, &r, &sh, err, sizeof(err)) == TR_SKIP_NONE);
	CHECK(fake_calls == 0 && r.w == 100);

	/* Back to the classic default for the other tests. */
	CHECK(tr_features_register(tr_features_find("face-lbp-hog-v1"), TR_FEATURES_FACE) == 0);
	CHECK(tr_features_default(TR_FEATURES_FACE)->locate == NULL);
	free(pgm);
	free(px);

	/* The deep kind: registered name and dimension; model files checked. */
	{
		char		dir[] = "/tmp/deepfeat-XXXXXX";
		const tr_features *k = tr_deep_features(NULL);
		const char *files[] = {
			"face_recognition_model-weights_manifest.json", "face_recognition_model.bin",
			"tiny_face_detector_model-weights_manifest.json", "tiny_face_detector_model.bin",
		};
		char		path[256];

		CHECK(strcmp(k->name, TR_DEEP_FEATURES_NAME) == 0 && k->dim == 128 && k->locate != NULL);
		CHECK(mkdtemp(dir) != NULL);
		CHECK(!tr_deep_models_present(dir));
		for (int i = 0; i < 4; i++)
		{
			FILE	   *f;

			snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
			f = fopen(path, "w");
			CHECK(f != NULL);
			if (f)
				fclose(f);
		}
		CHECK(tr_deep_models_present(dir));
		for (int i = 0; i < 4; i++)
		{
			snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
			unlink(path);
		}
		rmdir(dir);
	}
}
