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
#include "trfeatures.h"
#include "netcache.h"
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

static const tr_features fake_kind = {"unit-located", 2, fake_extract, NULL, fake_locate, 0, NULL};

/* Features of the region's brightness, for a model that can tell regions apart. */
static int
bright_extract(const tr_features *self, const tr_image *img, tr_box r, float *out,
			   char *err, size_t errlen)
{
	double		s = 0;

	(void) self;
	(void) err;
	(void) errlen;
	for (int y = r.y; y < r.y + r.h; y++)
		for (int x = r.x; x < r.x + r.w; x++)
			s += img->pixels[((size_t) y * img->width + x) * img->channels];
	s /= (double) r.w * r.h * 255.0;
	out[0] = (float) s;
	out[1] = (float) (1.0 - s);
	out[2] = 0.5f;
	return 0;
}

static const tr_features bright_kind = {"unit-bright-located", 3, bright_extract, NULL, fake_locate, 1, NULL};

/* A w x h grey PGM: level on columns below split, level2 from there, plus noise. */
static uint8_t *
two_level_pgm(int w, int h, int split, int level, int level2, unsigned seed, size_t *len)
{
	uint8_t    *px = malloc((size_t) w * h);
	uint8_t    *out;

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
		{
			seed = seed * 1103515245u + 12345u;
			px[y * w + x] = (uint8_t) ((x < split ? level : level2) + (int) ((seed >> 16) % 21) - 10);
		}
	out = unit_encode_pnm(px, w, h, 1, 0, len);
	free(px);
	return out;
}

typedef struct feed
{
	int			i;
	uint8_t    *data[16];
	size_t		len[16];
} feed;

static int
feed_next(void *ctx, tr_image_ref *out)
{
	feed	   *f = ctx;

	if (f->i >= 16)
		return 0;
	out->data = f->data[f->i];
	out->len = f->len[f->i];
	out->class_index = f->i % 2;
	out->has_box = 0;
	f->i++;
	return 1;
}

/* Training on whole images, then one recognition per located face. */
static void
test_recognize_faces(void)
{
	feed		f = {0};
	tr_config	cfg;
	tr_callbacks cb = {&f, feed_next, NULL, NULL};
	tr_result	res;
	tr_model	model;
	char		err[TR_ERRLEN];
	const char *labels[2] = {"dark", "bright"};
	const char *ids[2] = {"d", "b"};
	tr_box		regions[TR_MAX_FACES];
	tr_match	matches[TR_MAX_FACES * 2];
	int			nmatches[TR_MAX_FACES];
	int			nfaces,
				nm;
	tr_box		r;
	size_t		len;
	uint8_t    *scene;
	int			box[4] = {0, 0, 100, 100};

	for (int i = 0; i < 16; i++)
		f.data[i] = two_level_pgm(64, 64, 64, i % 2 ? 210 : 40, 0, 100 + i, &f.len[i]);
	CHECK(tr_features_register(&bright_kind) == 0);
	tr_config_default(&cfg, TR_FACE);
	CHECK(tr_config_set_features(&cfg, bright_kind.name, NULL, err, sizeof(err)) == 0);
	cfg.min_face_size = 10;
	cfg.sharpness_threshold = 0;
	fake_n = 0;
	CHECK_MSG(tr_train(&cfg, 2, labels, ids, &cb, &res, err, sizeof(err)) == 0, "%s", err);
	for (int i = 0; i < 16; i++)
		free(f.data[i]);
	CHECK_MSG(tr_model_parse(res.parameters, res.parameters_len, &model, err, sizeof(err)) == 0, "%s", err);
	tr_result_free(&res);
	CHECK(strcmp(model.feature_kind, "unit-bright-located") == 0);
	CHECK(model.net.e == 0 && model.net.W1 == NULL);	/* metric kind: no projection */

	/* Dark left half, bright right half; the locator finds both, larger first. */
	scene = two_level_pgm(200, 100, 100, 40, 210, 7, &len);
	fake_faces[0] = (tr_box) {100, 0, 100, 100, 0, 0};
	fake_faces[1] = (tr_box) {0, 10, 90, 90, 0, 0};
	fake_n = 2;
	CHECK(tr_recognize_faces(&model, NULL, scene, len, 0, NULL, 2, regions, matches, nmatches, &nfaces,
							 err, sizeof(err)) == TR_DECODE_OK);
	CHECK(nfaces == 2 && nmatches[0] == 2 && nmatches[1] == 2);
	CHECK(regions[0].x == 100 && regions[1].y == 10);
	CHECK(strcmp(model.labels[matches[0].class_index], "bright") == 0);
	CHECK(strcmp(model.labels[matches[2].class_index], "dark") == 0);
	CHECK(matches[0].distance >= 0 && matches[0].distance <= matches[1].distance);

	/* tr_recognize: the largest face only. */
	CHECK(tr_recognize(&model, NULL, scene, len, 0, NULL, 1, &r, matches, &nm, err, sizeof(err)) == TR_DECODE_OK);
	CHECK(nm == 1 && r.x == 100 && strcmp(model.labels[matches[0].class_index], "bright") == 0);

	/* A face box: that face, the locator is not asked. */
	fake_calls = 0;
	CHECK(tr_recognize_faces(&model, NULL, scene, len, 0, box, 2, regions, matches, nmatches, &nfaces,
							 err, sizeof(err)) == TR_DECODE_OK);
	CHECK(fake_calls == 0 && nfaces == 1 && regions[0].w == 100);
	CHECK(strcmp(model.labels[matches[0].class_index], "dark") == 0);

	/* No face found: the whole image, one detection. */
	fake_n = 0;
	CHECK(tr_recognize_faces(&model, NULL, scene, len, 0, NULL, 2, regions, matches, nmatches, &nfaces,
							 err, sizeof(err)) == TR_DECODE_OK);
	CHECK(nfaces == 1 && regions[0].w == 200 && regions[0].h == 100);
	free(scene);
	tr_model_free(&model);
}

/*
 * The feature kind of a config: "auto" resolved when the training starts, with the networks
 * of its own model directory; one network cache, whose memory is reported and freed.
 */
static void
test_resolve(void)
{
	const char *dir = getenv("TRAINING_MODEL_DIR") ? getenv("TRAINING_MODEL_DIR") : "models";
	tr_config	cfg;
	char		err[TR_ERRLEN];

	tr_netcache_free();
	CHECK(tr_netcache_bytes() == 0 && tr_netcache_count() == 0);

	/* classic, and auto without networks: the classic kind of the type. */
	tr_config_default(&cfg, TR_FACE);
	CHECK(tr_config_set_features(&cfg, TR_FEATURES_CLASSIC, "", err, sizeof(err)) == 0);
	CHECK(tr_resolve_features(&cfg, err, sizeof(err)) == 0 && strcmp(cfg.features, "face-lbp-hog-v1") == 0);
	CHECK(tr_config_set_features(&cfg, TR_FEATURES_AUTO, "/nonexistent/models", err, sizeof(err)) == 0);
	CHECK(tr_resolve_features(&cfg, err, sizeof(err)) == 0 && strcmp(cfg.features, "face-lbp-hog-v1") == 0);
	tr_config_default(&cfg, TR_LANDMARK);
	CHECK(tr_config_set_features(&cfg, TR_FEATURES_AUTO, dir, err, sizeof(err)) == 0);
	CHECK(tr_resolve_features(&cfg, err, sizeof(err)) == 0 && strcmp(cfg.features, "landmark-colour-hog-v1") == 0);

	/* deep without networks, or for landmarks: an error naming the directory. */
	tr_config_default(&cfg, TR_FACE);
	CHECK(tr_config_set_features(&cfg, TR_FEATURES_DEEP, "/nonexistent/models", err, sizeof(err)) == 0);
	CHECK(tr_resolve_features(&cfg, err, sizeof(err)) == -1);
	CHECK_MSG(strstr(err, "face networks unavailable in \"/nonexistent/models\"") != NULL, "%s", err);
	tr_config_default(&cfg, TR_LANDMARK);
	CHECK(tr_config_set_features(&cfg, TR_FEATURES_DEEP, dir, err, sizeof(err)) == 0);
	CHECK(tr_resolve_features(&cfg, err, sizeof(err)) == -1);

	/* Unknown names are refused when set. */
	CHECK(tr_config_set_features(&cfg, "no-such-kind", NULL, err, sizeof(err)) == -1);
	CHECK(strstr(err, "no-such-kind") != NULL);

	if (!tr_deep_models_present(dir))
	{
		fprintf(stderr, "deepfeat: no face networks in %s (make models): deep resolution skipped\n", dir);
		return;
	}
	/* auto with the networks: the deep kind, its networks now in the one cache. */
	tr_config_default(&cfg, TR_FACE);
	CHECK(tr_config_set_features(&cfg, TR_FEATURES_AUTO, dir, err, sizeof(err)) == 0);
	CHECK_MSG(tr_resolve_features(&cfg, err, sizeof(err)) == 0, "%s", err);
	if (!tr_deep_aligned_available(dir))
	{
		CHECK(strcmp(cfg.features, TR_DEEP_FEATURES_NAME) == 0);
		CHECK(tr_netcache_count() == 2 && tr_netcache_bytes() > 1000000);
	}
	else
	{
		/* With the landmark network: the aligned kind, three networks cached. */
		CHECK_MSG(strcmp(cfg.features, TR_DEEP_ALIGNED_NAME) == 0, "%s", cfg.features);
		CHECK(tr_netcache_count() == 3 && tr_netcache_bytes() > 1000000);
		/* The unaligned kind stays usable by name (older model versions). */
		tr_config_default(&cfg, TR_FACE);
		CHECK(tr_config_set_features(&cfg, TR_DEEP_FEATURES_NAME, dir, err, sizeof(err)) == 0);
		CHECK_MSG(tr_resolve_features(&cfg, err, sizeof(err)) == 0 &&
				  strcmp(cfg.features, TR_DEEP_FEATURES_NAME) == 0, "%s", err);
	}
	CHECK(strcmp(tr_netcache_dir(), dir) == 0);
	{
		const nn_facenet *a,
				   *b;
		size_t		bytes = tr_netcache_bytes();

		/* The same copy for every user in the process. */
		CHECK(tr_netcache_facenet(dir, &a, err, sizeof(err)) == 0);
		CHECK(tr_netcache_facenet(dir, &b, err, sizeof(err)) == 0 && a == b);
		CHECK(tr_netcache_bytes() == bytes);
	}
	/* Another directory replaces the networks; free gives everything back. */
	{
		const nn_facenet *a;

		CHECK(tr_netcache_facenet("/nonexistent/models", &a, err, sizeof(err)) == -1 && a == NULL);
		CHECK(tr_netcache_bytes() == 0);
	}
	tr_netcache_free();
	CHECK(tr_netcache_bytes() == 0 && tr_netcache_count() == 0 && tr_netcache_dir()[0] == '\0');
}

void
test_deepfeat(void)
{
	test_resolve();
	test_recognize_faces();

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
	CHECK(tr_features_register(&fake_kind) == 0);
	CHECK(tr_config_set_features(&cfg, fake_kind.name, NULL, err, sizeof(err)) == 0);

	/* Largest first: blurry (flat), too small, then a good face: that one. */
	fake_faces[0] = (tr_box) {125, 10, 70, 70, 0, 0};
	fake_faces[1] = (tr_box) {5, 5, 40, 40, 0, 0};
	fake_faces[2] = (tr_box) {10, 50, 60, 60, 0, 0};
	fake_n = 3;
	CHECK(tr_check_image(&cfg, pgm, len, NULL, NULL, &r, &sh, err, sizeof(err)) == TR_SKIP_NONE);
	CHECK(r.x == 10 && r.y == 50 && r.w == 60 && sh > cfg.sharpness_threshold);

	/* Faces found but none good: the largest one's reason. */
	fake_n = 2;
	CHECK(tr_check_image(&cfg, pgm, len, NULL, NULL, &r, &sh, err, sizeof(err)) == TR_SKIP_BLURRY);
	CHECK_MSG(strstr(err, "sharpness") != NULL, "%s", err);
	fake_faces[0] = (tr_box) {5, 5, 40, 40, 0, 0};
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

	/* The default config of a face training: the classic kind, without a locator. */
	tr_config_default(&cfg, TR_FACE);
	CHECK(strcmp(cfg.features, "face-lbp-hog-v1") == 0);
	CHECK(tr_features_default(TR_FEATURES_FACE)->locate == NULL);
	free(pgm);
	free(px);

	/* The deep kind: registered name and dimension; model files checked. */
	{
		char		dir[] = "/tmp/deepfeat-XXXXXX";
		const tr_features *k = tr_features_find(TR_DEEP_FEATURES_NAME);
		const char *files[] = {
			"face_recognition_model-weights_manifest.json", "face_recognition_model.bin",
			"tiny_face_detector_model-weights_manifest.json", "tiny_face_detector_model.bin",
		};
		char		path[256];

		CHECK(k == &tr_deep_kind && strcmp(k->name, TR_DEEP_FEATURES_NAME) == 0 && k->dim == 128 && k->locate != NULL && k->metric);
		k = tr_features_find(TR_DEEP_ALIGNED_NAME);
		CHECK(k == &tr_deep_aligned_kind && k->dim == 128 && k->locate != NULL && k->metric);
		k = tr_features_find(TR_DEEP_FEATURES_NAME);
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
