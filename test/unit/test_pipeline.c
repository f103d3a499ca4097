/*
 * test_pipeline.c: tr_train end to end on generated images (filters, skip counts,
 * failure messages, progress), the model format, and tr_recognize.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interrupt.h"
#include "measure.h"
#include "pipeline.h"
#include "unit.h"

/* A generated "face": a class-specific pattern, per-image noise and shift; blur > 0 smooths it. */
static uint8_t *
face_image(int cls, int idx, int w, int h, int blur, size_t *len)
{
	uint8_t    *px = malloc((size_t) w * h);
	uint64_t	s = (uint64_t) cls * 1000 + idx + 1;
	double		fx = 0.15 + 0.07 * cls,
				fy = 0.1 + 0.05 * ((cls * 7) % 5),
				ph = idx * 0.2;

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
		{
			double		v;

			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			v = 128 + 70 * sin(fx * x + ph) * cos(fy * y - ph) + (double) ((s >> 40) % 30) - 15;
			px[y * w + x] = (uint8_t) (v < 0 ? 0 : v > 255 ? 255 : v);
		}
	for (int b = 0; b < blur; b++)
		for (int y = 1; y < h - 1; y++)
			for (int x = 1; x < w - 1; x++)
				px[y * w + x] = (uint8_t) ((px[y * w + x - 1] + px[y * w + x + 1] + px[(y - 1) * w + x] +
											px[(y + 1) * w + x] + 4 * px[y * w + x] + 4) / 8);
	{
		uint8_t    *enc = unit_encode_pnm(px, w, h, 1, 0, len);

		free(px);
		return enc;
	}
}

typedef struct item
{
	uint8_t    *data;
	size_t		len;
	int			cls;
	int			has_box;
	int			box[4];
	tr_measure	kept;			/* what keep_measure was given (status -1 and no features: none) */
	int			has_kept;
} item;

typedef struct feed
{
	item	   *items;
	int			n,
				pos;
	double		last_progress;
	int			progress_calls,
				progress_backwards;
	char		last_stage[32];
	int			stop_after;		/* progress says stop from this call on (0: never) */
	int			stop_image;		/* next_image says stop at this image (0: never) */
	int			stop_calls;		/* callbacks called after they said stop */
	int			use_kept;		/* hand over the kept measurements, without the data */
	int			kept_calls;
} feed;

static int
next_image(void *ctx, tr_image_ref *out)
{
	feed	   *f = ctx;
	item	   *it;

	if (f->stop_image > 0 && f->pos + 1 >= f->stop_image)
	{
		f->stop_calls++;
		return -1;
	}
	if (f->pos >= f->n)
		return 0;
	it = &f->items[f->pos++];
	out->measure = f->use_kept && it->has_kept ? &it->kept : NULL;
	out->data = out->measure ? NULL : it->data;
	out->len = out->measure ? 0 : it->len;
	out->class_index = it->cls;
	out->has_box = it->has_box;
	memcpy(out->box, it->box, sizeof(out->box));
	return 1;
}

/* keep_measure: a deep copy into the item just handed over. */
static int
keep(void *ctx, const tr_image_ref *ref, const tr_measure *m)
{
	feed	   *f = ctx;
	item	   *it = &f->items[f->pos - 1];

	CHECK(ref->data == it->data);
	tr_measure_free(&it->kept);
	it->kept = *m;
	if (m->features)
	{
		it->kept.features = malloc(sizeof(float) * m->dim * m->nregions);
		memcpy(it->kept.features, m->features, sizeof(float) * m->dim * m->nregions);
	}
	it->has_kept = 1;
	f->kept_calls++;
	return 0;
}

static int
progress(void *ctx, double fraction, const char *stage)
{
	feed	   *f = ctx;

	if (fraction < f->last_progress)
		f->progress_backwards++;
	f->last_progress = fraction;
	f->progress_calls++;
	snprintf(f->last_stage, sizeof(f->last_stage), "%s", stage);
	/* "stop" from the stop_after-th call on (0: never), as a worker's callback after an error. */
	if (f->stop_after > 0 && f->progress_calls >= f->stop_after)
	{
		f->stop_calls++;
		return 1;
	}
	return 0;
}

/* A cancel hook that answers "stop" from its cancel_after-th poll on. */
static int	cancel_after;

static int
cancel_countdown(void)
{
	return --cancel_after <= 0;
}

static int
train(feed *f, const tr_config *cfg, int nclasses, tr_result *res, char *err)
{
	static const char *const labels[] = {"alice", "bob", "carol", "dave"};
	static const char *const ids[] = {"11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222",
	"33333333-3333-3333-3333-333333333333", "44444444-4444-4444-4444-444444444444"};
	tr_callbacks cb = {f, next_image, progress, keep};

	f->pos = 0;
	f->last_progress = 0;
	f->progress_calls = 0;
	f->progress_backwards = 0;
	return tr_train(cfg, nclasses, labels, ids, &cb, res, err, TR_ERRLEN);
}

static void
free_items(feed *f)
{
	for (int i = 0; i < f->n; i++)
	{
		free(f->items[i].data);
		tr_measure_free(&f->items[i].kept);
	}
	free(f->items);
	f->items = NULL;
	f->n = 0;
}

static void
add(feed *f, uint8_t *data, size_t len, int cls, const int *box)
{
	item	   *it;

	f->items = realloc(f->items, sizeof(item) * (f->n + 1));
	it = &f->items[f->n++];
	memset(it, 0, sizeof(*it));
	it->data = data;
	it->len = len;
	it->cls = cls;
	it->has_box = box != NULL;
	if (box)
		memcpy(it->box, box, sizeof(it->box));
}

static int
failing_extract(const tr_features *self, const tr_image *img, tr_box r, float *out, char *err, size_t errlen)
{
	(void) self;
	(void) img;
	(void) r;
	(void) out;
	snprintf(err, errlen, "networks missing");
	return -1;
}

/* Encode first, then add (argument evaluation order is unspecified). */
#define ADD(enc, ...) do { uint8_t *e_ = (enc); add(&f, e_, len, __VA_ARGS__); } while (0)

void
test_pipeline(void)
{
	feed		f = {0};
	tr_config	cfg;
	tr_result	res;
	tr_model	model;
	char		err[TR_ERRLEN];
	size_t		len;
	int			small_box[4] = {0, 0, 60, 112};
	int			outside_box[4] = {500, 500, 90, 90};

	tr_config_default(&cfg, TR_FACE);
	CHECK(cfg.min_face_size == 80 && cfg.sharpness_threshold == 40);

	/* 3 classes x 8 sharp faces, and images each filter must skip. */
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < 8; i++)
		{
			uint8_t    *d = face_image(c, i, 92, 112, 0, &len);

			add(&f, d, len, c, NULL);
		}
	ADD(face_image(0, 20, 92, 112, 0, &len), 0, small_box);	/* 60 px wide box */
	ADD(face_image(1, 21, 64, 64, 0, &len), 1, NULL);	/* 64 px image */
	ADD(face_image(2, 22, 92, 112, 12, &len), 2, NULL);	/* blurred */
	ADD(face_image(2, 23, 92, 112, 0, &len), 2, outside_box);
	{
		uint8_t    *d = face_image(1, 24, 92, 112, 0, &len);

		add(&f, d, len / 2, 1, NULL);	/* truncated */
	}
	add(&f, (uint8_t *) strdup("not an image"), 12, 0, NULL);
	cfg.expected_images = f.n;

	CHECK_MSG(train(&f, &cfg, 4, &res, err) == 0, "%s", err);
	CHECK(res.has_metrics);
	if (res.has_metrics)
	{
		const tr_metrics *m = &res.metrics;

		CHECK_MSG(m->images_used == 24, "%zu", m->images_used);
		CHECK(m->images_skipped[TR_SKIP_TOO_SMALL] == 2);
		CHECK(m->images_skipped[TR_SKIP_BLURRY] == 1);
		CHECK(m->images_skipped[TR_SKIP_BOX_OUTSIDE] == 1);
		CHECK(m->images_skipped[TR_SKIP_UNDECODABLE] == 2);
		CHECK(m->images_skipped_total == 6);
		CHECK(m->classes == 3);
		CHECK(m->classes_without_usable_images == 1);
		CHECK(m->train_accuracy == 1.0);
	}
	CHECK(f.progress_calls > 3 && f.progress_backwards == 0);
	CHECK(f.last_progress == 1.0 && strcmp(f.last_stage, "completed") == 0);

	/* The model: header, classes that had images, round trip. */
	CHECK_MSG(tr_model_parse(res.parameters, res.parameters_len, &model, err, sizeof(err)) == 0, "%s", err);
	CHECK(memcmp(res.parameters, "TRNM", 4) == 0 && res.parameters[4] == 1 && res.parameters[5] == 0);
	CHECK(model.net.c == 3 && model.type == TR_FACE);
	CHECK(strcmp(model.labels[2], "carol") == 0);
	CHECK(strcmp(model.class_ids[0], "11111111-1111-1111-1111-111111111111") == 0);
	CHECK(strcmp(model.feature_kind, "face-lbp-hog-v1") == 0);
	CHECK(model.min_face_size == 80 && model.sharpness_threshold == 40);
	{
		uint8_t    *again;
		size_t		again_len;

		CHECK(tr_model_serialize(&model, &again, &again_len) == 0);
		CHECK(again_len == res.parameters_len && memcmp(again, res.parameters, again_len) == 0);
		free(again);
	}

	/*
	 * Kept measurements: every image was measured once and offered to keep; a retraining on
	 * them alone (no image data) decodes nothing and writes the same model, and another
	 * config's filters on them skip what that config skips on the images.
	 */
	CHECK_MSG(f.kept_calls == f.n, "%d kept of %d", f.kept_calls, f.n);
	CHECK(res.metrics.images_measured == (size_t) f.n);
	{
		tr_result	again;
		tr_config	strict = cfg;
		tr_result	fresh;
		int			calls = f.kept_calls;

		f.use_kept = 1;
		CHECK_MSG(train(&f, &cfg, 4, &again, err) == 0, "%s", err);
		CHECK(f.kept_calls == calls && again.metrics.images_measured == 0);
		CHECK(again.parameters_len == res.parameters_len &&
			  memcmp(again.parameters, res.parameters, res.parameters_len) == 0);
		for (int k = 0; k < TR_SKIP_COUNT; k++)
			CHECK(again.metrics.images_skipped[k] == res.metrics.images_skipped[k]);
		tr_result_free(&again);

		strict.min_face_size = 90;
		strict.sharpness_threshold = 45;
		CHECK_MSG(train(&f, &strict, 4, &again, err) == 0, "%s", err);
		f.use_kept = 0;
		CHECK_MSG(train(&f, &strict, 4, &fresh, err) == 0, "%s", err);
		CHECK(again.metrics.images_measured == 0 && fresh.metrics.images_measured == (size_t) f.n);
		CHECK(again.metrics.images_used == fresh.metrics.images_used);
		for (int k = 0; k < TR_SKIP_COUNT; k++)
			CHECK(again.metrics.images_skipped[k] == fresh.metrics.images_skipped[k]);
		CHECK(again.parameters_len == fresh.parameters_len &&
			  memcmp(again.parameters, fresh.parameters, fresh.parameters_len) == 0);
		tr_result_free(&again);
		tr_result_free(&fresh);
	}
	/* Choosing from a measurement says what tr_check_image says, message included. */
	for (int i = 0; i < f.n; i++)
	{
		tr_measure	m;
		tr_config	c2 = cfg;
		char		e1[TR_ERRLEN] = "",
					e2[TR_ERRLEN] = "";
		double		s1,
					s2;
		int			k;
		tr_skip		a,
					b;

		c2.min_face_size = 30 + 10 * (i % 8);
		CHECK(tr_measure_image(&c2, f.items[i].data, f.items[i].len, f.items[i].has_box ? f.items[i].box : NULL,
							   0, &m, NULL, e1, sizeof(e1)) == 0);
		a = tr_measure_choose(&c2, &m, &k, &s1, e1, sizeof(e1));
		b = tr_check_image(&c2, f.items[i].data, f.items[i].len, f.items[i].has_box ? f.items[i].box : NULL,
						   NULL, NULL, &s2, e2, sizeof(e2));
		CHECK_MSG(a == b && s1 == s2 && (a == TR_SKIP_NONE || strcmp(e1, e2) == 0), "image %d: %d/%d", i, a, b);
		tr_measure_free(&m);
	}
	/* Too large: known for the limit it was measured under, measured again for another. */
	{
		tr_measure	m;
		tr_config	c2 = cfg;
		int			k;

		c2.max_image_pixels = 1000;
		CHECK(tr_measure_image(&c2, f.items[0].data, f.items[0].len, NULL, TR_MEASURE_FEATURES, &m, NULL,
							   err, sizeof(err)) == 0);
		CHECK(m.status == TR_SKIP_TOO_LARGE && m.features == NULL);
		CHECK(tr_measure_choose(&c2, &m, &k, NULL, err, sizeof(err)) == TR_SKIP_TOO_LARGE);
		CHECK(strstr(err, "exceeds training.max_image_pixels (1000)") != NULL);
		c2.max_image_pixels = 0;
		CHECK(tr_measure_choose(&c2, &m, &k, NULL, err, sizeof(err)) == TR_SKIP_REMEASURE);
		CHECK(tr_measure_image(&c2, f.items[0].data, f.items[0].len, NULL, TR_MEASURE_FEATURES, &m, NULL,
							   err, sizeof(err)) == 0);
		CHECK(m.status == TR_SKIP_NONE && m.nregions == 1 && m.dim > 0 && m.features != NULL);
		c2.max_image_pixels = 5000;
		CHECK(tr_measure_choose(&c2, &m, &k, NULL, err, sizeof(err)) == TR_SKIP_TOO_LARGE);
		CHECK_MSG(strcmp(err, "image of 92x112 = 10304 pixels exceeds training.max_image_pixels (5000)") == 0, "%s", err);
		tr_measure_free(&m);
	}

	/* Recognize new images of each class. */
	for (int c = 0; c < 3; c++)
	{
		uint8_t    *d = face_image(c, 9, 92, 112, 0, &len);
		tr_match	m[5];
		tr_box		r;
		int			nm;

		CHECK_MSG(tr_recognize(&model, NULL, d, len, 0, NULL, 5, &r, m, &nm, err, sizeof(err)) == 0, "%s", err);
		CHECK(nm == 3);			/* top_k is capped by the classes */
		CHECK_MSG(m[0].class_index == c, "class %d recognized as %d", c, m[0].class_index);
		CHECK(r.w == 92 && r.h == 112);
		CHECK(m[0].confidence >= m[1].confidence && m[1].confidence >= m[2].confidence);
		CHECK(m[0].distance <= m[1].distance && m[1].distance <= m[2].distance);
		CHECK(m[0].distance >= 0 && m[2].distance <= 2);
		CHECK_MSG(m[0].distance < 1.0, "distance %.3f", m[0].distance);
		CHECK_NEAR(m[0].confidence + m[1].confidence + m[2].confidence, 1.0, 1e-5);
		free(d);
	}
	/* Recognizing garbage is an error, not a crash. */
	{
		tr_match	m[3];
		int			nm;

		CHECK(tr_recognize(&model, NULL, (const uint8_t *) "P5 1", 4, 0, NULL, 3, NULL, m, &nm, err, sizeof(err))
			  == TR_DECODE_CORRUPT && nm == 0);
	}
	/* A face box outside the image, and a feature kind that fails, are their own errors. */
	{
		tr_match	m[3];
		int			nm;
		int			far_box[4] = {500, 500, 10, 10};
		uint8_t    *d = face_image(0, 9, 92, 112, 0, &len);
		static const tr_features failing = {"unit-failing", 3, failing_extract, NULL, NULL, 0, NULL};
		tr_model	fm;

		CHECK(tr_recognize(&model, NULL, d, len, 0, far_box, 3, NULL, m, &nm, err, sizeof(err)) == TR_BOX_OUTSIDE);
		CHECK(tr_features_register(&failing) == 0);
		memset(&fm, 0, sizeof(fm));
		snprintf(fm.feature_kind, sizeof(fm.feature_kind), "unit-failing");
		CHECK(tr_net_alloc(&fm.net, 3, 0, 2, 16.0f) == 0);
		fm.net.W2[0] = fm.net.W2[4] = 1.0f;
		CHECK(tr_recognize(&fm, NULL, d, len, 0, NULL, 2, NULL, m, &nm, err, sizeof(err)) == TR_MODEL_UNUSABLE);
		CHECK_MSG(strstr(err, "networks missing") != NULL, "%s", err);
		tr_net_free(&fm.net);
		free(d);
	}

	/* Same seed, same bytes. */
	{
		tr_result	res2;

		CHECK(train(&f, &cfg, 4, &res2, err) == 0);
		CHECK(res2.parameters_len == res.parameters_len &&
			  memcmp(res2.parameters, res.parameters, res.parameters_len) == 0);
		tr_result_free(&res2);
	}

	/* A corrupt model is refused cleanly: every truncation, a wrong magic, a wrong version. */
	{
		tr_model	bad;
		uint8_t    *copy = malloc(res.parameters_len);

		for (size_t cut = 0; cut < res.parameters_len; cut += res.parameters_len / 50 + 1)
			CHECK(tr_model_parse(res.parameters, cut, &bad, err, sizeof(err)) == -1);
		memcpy(copy, res.parameters, res.parameters_len);
		copy[0] = 'X';
		CHECK(tr_model_parse(copy, res.parameters_len, &bad, err, sizeof(err)) == -1);
		copy[0] = 'T';
		copy[4] = 9;
		CHECK(tr_model_parse(copy, res.parameters_len, &bad, err, sizeof(err)) == -1);
		CHECK(strstr(err, "version 9") != NULL);
		free(copy);
	}
	tr_model_free(&model);
	tr_result_free(&res);

	/*
	 * Cancel requests (interrupt.h) at many points of a training: loading, features, the
	 * principal directions, batches. The training stops with TR_CANCELED and an empty result,
	 * and (under valgrind) nothing is left allocated.
	 */
	{
		static const int after[] = {1, 3, 10, 30, 100, 300, 1000, 3000};
		int			canceled = 0;

		for (size_t k = 0; k < sizeof(after) / sizeof(after[0]); k++)
		{
			int			rc;

			cancel_after = after[k];
			tr_interrupt_hook = cancel_countdown;
			rc = train(&f, &cfg, 4, &res, err);
			tr_interrupt_hook = NULL;
			CHECK_MSG(rc == 0 || rc == TR_CANCELED, "cancel after %d polls: rc %d (%s)", after[k], rc, err);
			if (rc == TR_CANCELED)
			{
				canceled++;
				CHECK(strcmp(err, "canceled") == 0);
				CHECK(res.parameters == NULL && !res.has_metrics);
			}
			tr_result_free(&res);
		}
		CHECK_MSG(canceled >= 4, "only %d of the trainings were canceled", canceled);
	}

	/*
	 * A callback that says "stop" (as a worker's callback does after catching an error): at
	 * the first image, while loading, in every epoch phase and at the last report. The
	 * training returns TR_STOPPED with an empty result, never calls a callback again after
	 * the stop, and (under valgrind) leaves nothing allocated.
	 */
	{
		int			full,
					stopped = 0;

		CHECK(train(&f, &cfg, 4, &res, err) == 0);
		full = f.progress_calls;
		tr_result_free(&res);
		CHECK(full > 10);
		for (int at = 1; at <= full; at += (at < 12 ? 1 : 7))
		{
			int			rc;

			f.stop_after = at;
			f.stop_calls = 0;
			rc = train(&f, &cfg, 4, &res, err);
			CHECK_MSG(rc == TR_STOPPED, "stop at progress call %d of %d: rc %d (%s)", at, full, rc, err);
			CHECK_MSG(f.stop_calls == 1 && f.progress_calls == at, "stop at %d: %d calls, %d after the stop",
					  at, f.progress_calls, f.stop_calls - 1);
			CHECK(res.parameters == NULL && !res.has_metrics);
			stopped += rc == TR_STOPPED;
			tr_result_free(&res);
		}
		f.stop_after = 0;
		CHECK(stopped > 10);
		for (int at = 1; at <= f.n; at += 5)
		{
			int			rc;

			f.stop_image = at;
			f.stop_calls = 0;
			rc = train(&f, &cfg, 4, &res, err);
			CHECK_MSG(rc == TR_STOPPED && f.stop_calls == 1, "stop at image %d: rc %d (%s)", at, rc, err);
			CHECK(res.parameters == NULL && !res.has_metrics);
			tr_result_free(&res);
		}
		f.stop_image = 0;
	}
	free_items(&f);

	/* No usable face: the message counts each reason. */
	ADD(face_image(0, 1, 70, 70, 0, &len), 0, NULL);
	ADD(face_image(1, 1, 92, 112, 0, &len), 1, small_box);
	ADD(face_image(0, 2, 92, 112, 12, &len), 0, NULL);
	ADD(face_image(1, 2, 92, 112, 12, &len), 1, NULL);
	CHECK(train(&f, &cfg, 2, &res, err) == -1);
	CHECK_MSG(strcmp(err, "no usable face: 4 images skipped (2 smaller than min_face_size 80, "
					 "2 below sharpness_threshold 40)") == 0, "%s", err);
	CHECK(res.parameters == NULL && !res.has_metrics);

	/* Lower thresholds accept them; one class only is refused. */
	cfg.min_face_size = 10;
	cfg.sharpness_threshold = 0;
	for (int i = 1; i < f.n; i++)
	{
		free(f.items[i].data);
		tr_measure_free(&f.items[i].kept);
	}
	f.n = 1;
	CHECK(train(&f, &cfg, 2, &res, err) == -1);
	CHECK_MSG(strstr(err, "fewer than two classes") != NULL, "%s", err);
	free_items(&f);
	CHECK(train(&f, &cfg, 2, &res, err) == -1);
	CHECK_MSG(strcmp(err, "no usable face: the dataset has no active image") == 0, "%s", err);

	/* tr_check_image reports the sharpness it measured. */
	{
		uint8_t    *d = face_image(0, 1, 92, 112, 0, &len);
		double		sh;
		tr_box		r;
		tr_image	img;

		tr_config_default(&cfg, TR_FACE);
		CHECK(tr_check_image(&cfg, d, len, NULL, &img, &r, &sh, err, sizeof(err)) == TR_SKIP_NONE);
		CHECK(sh > 40 && img.width == 92 && r.h == 112);
		tr_image_free(&img);
		cfg.max_image_pixels = 1000;
		CHECK(tr_check_image(&cfg, d, len, NULL, NULL, NULL, &sh, err, sizeof(err)) == TR_SKIP_TOO_LARGE);
		CHECK(strcmp(tr_skip_name(TR_SKIP_TOO_LARGE), "too_large") == 0);
		free(d);
	}

	/* Landmarks: whole colour images, no face filters. */
	{
		tr_config_default(&cfg, TR_LANDMARK);
		for (int c = 0; c < 2; c++)
			for (int i = 0; i < 6; i++)
			{
				uint8_t    *px = malloc(64 * 48 * 3);
				uint64_t	s = c * 100 + i + 1;

				for (int k = 0; k < 64 * 48 * 3; k++)
				{
					s = s * 6364136223846793005ULL + 1;
					px[k] = (uint8_t) ((k % 3 == c ? 180 : 40) + ((s >> 40) % 40));
				}
				ADD(unit_encode_jpeg(px, 64, 48, 3, 90, 0, &len), c, NULL);
				free(px);
			}
		CHECK_MSG(train(&f, &cfg, 2, &res, err) == 0, "%s", err);
		CHECK(tr_model_parse(res.parameters, res.parameters_len, &model, err, sizeof(err)) == 0);
		CHECK(model.type == TR_LANDMARK && strcmp(model.feature_kind, "landmark-colour-hog-v1") == 0);
		{
			tr_match	m[2];
			int			nm;

			CHECK(tr_recognize(&model, NULL, f.items[7].data, f.items[7].len, 0, NULL, 2, NULL, m, &nm, err,
							   sizeof(err)) == 0);
			CHECK(nm == 2 && m[0].class_index == 1);
		}
		tr_model_free(&model);
		tr_result_free(&res);
		free_items(&f);
	}
}
