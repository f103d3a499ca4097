/*
 * pipeline.c: tr_train (stream, filter, extract, train, serialize) and tr_recognize.
 *
 * Memory stays bounded by the features: each image is decoded, filtered, turned
 * into one feature vector and freed before the next one is read.
 */
#include "pipeline.h"
#include "interrupt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deepfeat.h"
#include "measure.h"
#include "netcache.h"
#include "trfeatures.h"
#include "quality.h"
#include "trainloop.h"

static const char *const skip_names[TR_SKIP_COUNT] = {
	"undecodable", "too_large", "box_outside_image",
	"smaller_than_min_face_size", "below_sharpness_threshold"
};

const char *
tr_skip_name(tr_skip reason)
{
	return (reason >= 0 && reason < TR_SKIP_COUNT) ? skip_names[reason] : "none";
}

void
tr_config_default(tr_config *cfg, tr_type type)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->type = type;
	cfg->min_face_size = TR_DEFAULT_MIN_FACE_SIZE;
	cfg->sharpness_threshold = TR_DEFAULT_SHARPNESS_THRESHOLD;
	cfg->max_image_pixels = TR_DEFAULT_MAX_IMAGE_PIXELS;
	cfg->seed = 1;
	snprintf(cfg->features, sizeof(cfg->features), "%s",
			 tr_features_default(type == TR_LANDMARK ? TR_FEATURES_LANDMARK : TR_FEATURES_FACE)->name);
}

static int
is_alias(const char *name)
{
	return strcmp(name, TR_FEATURES_AUTO) == 0 || strcmp(name, TR_FEATURES_DEEP) == 0 ||
		strcmp(name, TR_FEATURES_CLASSIC) == 0;
}

int
tr_config_set_features(tr_config *cfg, const char *features, const char *model_dir,
					   char *err, size_t errlen)
{
	if (features != NULL)
	{
		if (strlen(features) >= sizeof(cfg->features) ||
			(!is_alias(features) && tr_features_find(features) == NULL))
		{
			snprintf(err, errlen, "unknown feature kind \"%.64s\"", features);
			return -1;
		}
		snprintf(cfg->features, sizeof(cfg->features), "%s", features);
	}
	if (model_dir != NULL)
	{
		if (strlen(model_dir) >= sizeof(cfg->model_dir))
		{
			snprintf(err, errlen, "model directory name too long (%zu bytes)", strlen(model_dir));
			return -1;
		}
		snprintf(cfg->model_dir, sizeof(cfg->model_dir), "%s", model_dir);
	}
	return 0;
}

/* Whether the deep kind's networks load from dir (into the network cache). */
static int
deep_loads(const char *dir, const char *kind, char *err, size_t errlen)
{
	const nn_facenet *fn;
	const nn_detector *det;
	const nn_landmarks *lm;
	char		nerr[NN_ERRLEN];

	if (tr_netcache_facenet(dir, &fn, nerr, sizeof(nerr)) == 0 &&
		tr_netcache_detector(dir, &det, nerr, sizeof(nerr)) == 0 &&
		(strcmp(kind, TR_DEEP_ALIGNED_NAME) != 0 ||
		 tr_netcache_landmarks(dir, &lm, nerr, sizeof(nerr)) == 0))
		return 1;
	snprintf(err, errlen, "face networks unavailable in \"%s\": %s", dir, nerr);
	return 0;
}

/* The best deep kind of a model directory: aligned when the landmark network loads. */
static const char *
deep_kind(const char *dir)
{
	return tr_deep_aligned_available(dir) ? TR_DEEP_ALIGNED_NAME : TR_DEEP_FEATURES_NAME;
}

static int
is_deep(const char *kind)
{
	return strcmp(kind, TR_DEEP_FEATURES_NAME) == 0 || strcmp(kind, TR_DEEP_ALIGNED_NAME) == 0;
}

int
tr_resolve_features(tr_config *cfg, char *err, size_t errlen)
{
	const char *classic = tr_features_default(cfg->type == TR_LANDMARK ? TR_FEATURES_LANDMARK
											  : TR_FEATURES_FACE)->name;
	const char *kind = cfg->features;
	char		why[TR_ERRLEN];

	if (strcmp(kind, TR_FEATURES_CLASSIC) == 0)
		kind = classic;
	else if (strcmp(kind, TR_FEATURES_AUTO) == 0)
		kind = cfg->type == TR_FACE && cfg->model_dir[0] != '\0' &&
			tr_deep_models_present(cfg->model_dir) &&
			deep_loads(cfg->model_dir, TR_DEEP_FEATURES_NAME, why, sizeof(why))
			? deep_kind(cfg->model_dir) : classic;
	else if (strcmp(kind, TR_FEATURES_DEEP) == 0)
	{
		if (cfg->type != TR_FACE)
		{
			snprintf(err, errlen, "deep features are for face trainings only");
			return -1;
		}
		kind = cfg->model_dir[0] != '\0' ? deep_kind(cfg->model_dir) : TR_DEEP_FEATURES_NAME;
	}
	else if (tr_features_find(kind) == NULL)
	{
		snprintf(err, errlen, "unknown feature kind \"%s\"", kind);
		return -1;
	}
	if (is_deep(kind) && !deep_loads(cfg->model_dir, kind, why, sizeof(why)))
	{
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	if (kind != cfg->features)
		snprintf(cfg->features, sizeof(cfg->features), "%s", kind);
	return 0;
}

/* A kind that cannot be used is the classic one, whose face region is the box or the image. */
void
tr_config_kind(const tr_config *cfg, tr_features *out)
{
	const tr_features *f = tr_features_find(cfg->features);

	if (f == NULL)
	{
		tr_config	rcfg = *cfg;
		char		why[TR_ERRLEN];

		if (tr_resolve_features(&rcfg, why, sizeof(why)) == 0)
			f = tr_features_find(rcfg.features);
		if (f == NULL)
			f = tr_features_default(cfg->type == TR_LANDMARK ? TR_FEATURES_LANDMARK : TR_FEATURES_FACE);
	}
	*out = *f;
	out->model_dir = cfg->model_dir;
}

void
tr_result_free(tr_result *res)
{
	if (res == NULL)
		return;
	free(res->parameters);
	memset(res, 0, sizeof(*res));
}

/* "12 smaller than min_face_size 80, 28 below sharpness_threshold 40" */
static void
describe_skips(const tr_config *cfg, const long *skipped, char *buf, size_t len)
{
	size_t		pos = 0;

	buf[0] = '\0';
	for (int k = 0; k < TR_SKIP_COUNT; k++)
	{
		const char *sep = pos ? ", " : "";
		int			n = 0;

		if (skipped[k] == 0)
			continue;
		switch (k)
		{
			case TR_SKIP_TOO_SMALL:
				n = snprintf(buf + pos, len - pos, "%s%ld smaller than min_face_size %d",
							 sep, skipped[k], cfg->min_face_size);
				break;
			case TR_SKIP_BLURRY:
				n = snprintf(buf + pos, len - pos, "%s%ld below sharpness_threshold %d",
							 sep, skipped[k], cfg->sharpness_threshold);
				break;
			case TR_SKIP_TOO_LARGE:
				n = snprintf(buf + pos, len - pos, "%s%ld above training.max_image_pixels %zu",
							 sep, skipped[k], cfg->max_image_pixels);
				break;
			case TR_SKIP_UNDECODABLE:
				n = snprintf(buf + pos, len - pos, "%s%ld undecodable", sep, skipped[k]);
				break;
			default:
				n = snprintf(buf + pos, len - pos, "%s%ld with a face box outside the image",
							 sep, skipped[k]);
				break;
		}
		if (n < 0 || (size_t) n >= len - pos)
			break;
		pos += n;
	}
}

typedef struct progress_ctx
{
	tr_callbacks *cb;
	int			max_epochs;
} progress_ctx;

/* Loading is 0..0.5 of the progress, phase 0 0.5..0.8, the refit 0.8..0.98. Nonzero: stop. */
static int
epoch_progress(void *vctx, int phase, int epoch, int max_epochs, double loss, double val_acc)
{
	progress_ctx *p = vctx;

	(void) loss;
	(void) val_acc;
	if (p->cb->progress == NULL || max_epochs <= 0)
		return 0;
	if (phase == 0)
		return p->cb->progress(p->cb->ctx, 0.5 + 0.3 * epoch / max_epochs, "training");
	return p->cb->progress(p->cb->ctx, 0.8 + 0.18 * epoch / max_epochs, "training");
}

int
tr_train(const tr_config *cfg_in, int nclasses, const char *const *class_labels,
		 const char *const *class_ids, tr_callbacks *cb,
		 tr_result *out, char *err, size_t errlen)
{
	tr_config	rcfg = *cfg_in;
	const tr_config *cfg = &rcfg;
	tr_features kind;
	const tr_features *feat = &kind;
	const char *what = cfg->type == TR_FACE ? "face" : "image";
	int			d;
	float	   *X = NULL;
	int		   *y = NULL;
	int		   *per_class = calloc(nclasses > 0 ? nclasses : 1, sizeof(int));
	int		   *remap = malloc(sizeof(int) * (nclasses > 0 ? nclasses : 1));
	size_t		n = 0,
				cap = 0,
				seen = 0,
				measured = 0;
	long		skipped[TR_SKIP_COUNT] = {0};
	long		nskipped = 0;
	int			used_classes = 0,
				fit_rc,
				rc = -1;
	char		skips[300],
				why[TR_ERRLEN];
	tr_fit_params fp;
	tr_fit_report rep;
	progress_ctx pctx = {cb, 0};
	tr_model	model;

	memset(out, 0, sizeof(*out));
	memset(&model, 0, sizeof(model));
	/* The feature kind, resolved once (the caller usually did already). */
	if (tr_resolve_features(&rcfg, why, sizeof(why)) != 0)
	{
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	tr_config_kind(cfg, &kind);
	d = feat->dim;
	if (per_class == NULL || remap == NULL)
		goto oom;
	if (cb->progress && cb->progress(cb->ctx, 0.0, "loading") != 0)
		goto stopped;

	/* Load: one image at a time into one feature row. */
	for (;;)
	{
		tr_image_ref ref;
		tr_measure	fresh;
		const tr_measure *m;
		tr_skip		why_skip;
		int			k,
					more;

		memset(&ref, 0, sizeof(ref));
		memset(&fresh, 0, sizeof(fresh));
		more = cb->next_image(cb->ctx, &ref);
		if (more < 0)
			goto stopped;		/* the caller knows why (e.g. reading the images failed) */
		if (more == 0)
			break;
		seen++;
		if (ref.class_index < 0 || ref.class_index >= nclasses)
		{
			snprintf(err, errlen, "image of class index %d outside 0..%d", ref.class_index, nclasses - 1);
			goto fail;
		}
		/* A kept measurement of this kind, else the image measured now (and offered to keep). */
		m = ref.measure;
		why_skip = TR_SKIP_REMEASURE;
		if (m != NULL && (m->status != TR_SKIP_NONE || m->dim == d))
			why_skip = tr_measure_choose(cfg, m, &k, NULL, why, sizeof(why));
		if (why_skip == TR_SKIP_REMEASURE)
		{
			int			mrc;

			if (ref.data == NULL)
			{
				snprintf(err, errlen, "image %d of class index %d came without its data", (int) seen, ref.class_index);
				goto fail;
			}
			mrc = tr_measure_image(cfg, ref.data, ref.len, ref.has_box ? ref.box : NULL,
								   TR_MEASURE_FEATURES | (cfg->measure_gender ? TR_MEASURE_GENDER : 0),
								   &fresh, NULL, why, sizeof(why));
			if (mrc == TR_CANCELED || tr_interrupted())
			{
				tr_measure_free(&fresh);
				goto canceled;
			}
			if (mrc != 0)
			{
				snprintf(err, errlen, "feature extraction failed: %s", why);
				goto fail;
			}
			m = &fresh;
			measured++;
			if (cb->keep_measure && cb->keep_measure(cb->ctx, &ref, m) != 0)
			{
				tr_measure_free(&fresh);
				goto stopped;
			}
			why_skip = tr_measure_choose(cfg, m, &k, NULL, why, sizeof(why));
		}
		if (why_skip == TR_SKIP_NONE)
		{
			if (n == cap)
			{
				size_t		ncap = cap ? cap * 2 : (cfg->expected_images > 0 ? cfg->expected_images : 256);
				float	   *nX = realloc(X, sizeof(float) * ncap * d);
				int		   *ny;

				if (nX != NULL)
					X = nX;
				ny = nX ? realloc(y, sizeof(int) * ncap) : NULL;
				if (ny == NULL)
				{
					tr_measure_free(&fresh);
					goto oom;
				}
				y = ny;
				cap = ncap;
			}
			memcpy(X + n * d, m->features + (size_t) k * d, sizeof(float) * d);
			y[n++] = ref.class_index;
			per_class[ref.class_index]++;
		}
		else
		{
			skipped[why_skip]++;
			nskipped++;
		}
		tr_measure_free(&fresh);
		/* Every image: the worker writes it when training.progress_interval has passed. */
		if (cb->progress)
		{
			double		f = cfg->expected_images > 0 ? (double) seen / cfg->expected_images : 0;

			if (cb->progress(cb->ctx, 0.5 * (f < 1 ? f : 1), "loading") != 0)
				goto stopped;
		}
	}

	/* Classes with usable images become the model's classes. */
	for (int k = 0; k < nclasses; k++)
		remap[k] = per_class[k] > 0 ? used_classes++ : -1;
	describe_skips(cfg, skipped, skips, sizeof(skips));
	if (n == 0)
	{
		if (seen == 0)
			snprintf(err, errlen, "no usable %s: the dataset has no active image", what);
		else
			snprintf(err, errlen, "no usable %s: %ld images skipped (%s)", what, nskipped, skips);
		goto fail;
	}
	if (used_classes < 2)
	{
		if (nskipped > 0)
			snprintf(err, errlen, "fewer than two classes with a usable %s (found %d): %ld images skipped (%s)",
					 what, used_classes, nskipped, skips);
		else
			snprintf(err, errlen, "fewer than two classes with a usable %s (found %d): add images to another class",
					 what, used_classes);
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		y[i] = remap[y[i]];

	/* Train. */
	if (cfg->fit)
		fp = *cfg->fit;
	else
	{
		tr_fit_params_default(&fp);
		/* A metric embedding: class centres in its own space (ORL 5/5: 100 % vs 97 %). */
		if (feat->metric)
			fp.embed_dim = 0;
	}
	fp.seed = cfg->seed;
	/* Large sets get fewer epochs rather than hours (bench/scale.sh). */
	if (fp.max_gflop <= 0)
		fp.max_gflop = TR_TRAINING_MAX_GFLOP;
	/* No more principal directions than the images can span. */
	if (fp.embed_dim > (int) n - 1)
		fp.embed_dim = n > 1 ? (int) n - 1 : 1;
	pctx.max_epochs = fp.max_epochs;
	fit_rc = tr_fit(X, y, (int) n, d, used_classes, &fp, &model.net, &rep, epoch_progress, &pctx,
					why, sizeof(why));
	if (fit_rc != 0)
	{
		if (fit_rc == TR_STOPPED)
			goto stopped;
		if (tr_interrupted())
			goto canceled;
		snprintf(err, errlen, "training failed: %s", why);
		goto fail;
	}

	/* Model version. */
	model.format_version = TR_MODEL_FORMAT_VERSION;
	model.type = cfg->type;
	snprintf(model.feature_kind, sizeof(model.feature_kind), "%s", feat->name);
	model.min_face_size = cfg->type == TR_FACE ? cfg->min_face_size : 0;
	model.sharpness_threshold = cfg->type == TR_FACE ? cfg->sharpness_threshold : 0;
	model.class_ids = calloc(used_classes, sizeof(char *));
	model.labels = calloc(used_classes, sizeof(char *));
	if (model.class_ids == NULL || model.labels == NULL)
		goto oom;
	for (int k = 0; k < nclasses; k++)
		if (remap[k] >= 0)
		{
			model.class_ids[remap[k]] = (char *) (class_ids ? class_ids[k] : "");
			model.labels[remap[k]] = (char *) (class_labels ? class_labels[k] : "");
		}
	if (tr_model_serialize(&model, &out->parameters, &out->parameters_len) != 0)
		goto oom;
	{
		tr_metrics *m = &out->metrics;

		m->train_accuracy = rep.train_accuracy;
		m->validation_accuracy = rep.validation_accuracy;
		m->validation_images = rep.validation_images;
		m->images_used = n;
		m->images_measured = measured;
		for (int k = 0; k < TR_SKIP_COUNT; k++)
			m->images_skipped[k] = skipped[k];
		m->images_skipped_total = nskipped;
		m->epochs = rep.epochs;
		m->epochs_run = rep.epochs_run;
		m->classes = used_classes;
		m->classes_without_usable_images = nclasses - used_classes;
		snprintf(m->feature_kind, sizeof(m->feature_kind), "%s", feat->name);
		m->feature_dim = d;
		m->embedding_dim = model.net.e;
		m->train_seconds = rep.seconds;
		m->gflop = rep.gflop;
		out->has_metrics = true;
	}
	if (cb->progress && cb->progress(cb->ctx, 1.0, "completed") != 0)
		goto stopped;
	rc = 0;
	goto done;

stopped:
	snprintf(err, errlen, "stopped");
	rc = TR_STOPPED;
	goto fail;
canceled:
	snprintf(err, errlen, "canceled");
	rc = TR_CANCELED;
	goto fail;
oom:
	snprintf(err, errlen, "out of memory in the training pipeline");
fail:
	tr_result_free(out);
done:
	/* The strings belong to the caller. */
	free(model.class_ids);
	free(model.labels);
	model.class_ids = model.labels = NULL;
	tr_net_free(&model.net);
	free(X);
	free(y);
	free(per_class);
	free(remap);
	return rc;
}

/* Scores of one face region of a decoded image: top_k matches, best first. */
static int
score_region(const tr_model *model, const tr_features *feat, const tr_image *img, tr_box r,
			 int top_k, tr_match *matches, int *nmatches, char *err, size_t errlen)
{
	const tr_net *net = &model->net;
	int			E = TR_NET_EDIM(net),
				c = net->c,
				rc;
	float	   *x,
			   *u,
			   *cos;
	double		m,
				sum = 0;

	*nmatches = 0;
	x = malloc(sizeof(float) * net->d);
	u = malloc(sizeof(float) * E);
	cos = malloc(sizeof(float) * c);
	if (x == NULL || u == NULL || cos == NULL)
	{
		snprintf(err, errlen, "out of memory");
		rc = TR_MODEL_UNUSABLE;
		goto out;
	}
	if (feat->extract(feat, img, r, x, err, errlen) != 0)
	{
		rc = TR_MODEL_UNUSABLE;
		goto out;
	}
	tr_net_embed(net, x, 1, u);
	tr_net_cosines(net, u, 1, cos);
	m = cos[0];
	for (int k = 1; k < c; k++)
		if (cos[k] > m)
			m = cos[k];
	for (int k = 0; k < c; k++)
		sum += exp(net->s * (cos[k] - m));
	if (top_k > c)
		top_k = c;
	/* Selection of the top_k by cosine (ties: lower class index first). */
	for (int t = 0; t < top_k; t++)
	{
		int			best = -1;

		for (int k = 0; k < c; k++)
		{
			int			taken = 0;

			for (int j = 0; j < t; j++)
				taken |= matches[j].class_index == k;
			if (!taken && (best < 0 || cos[k] > cos[best]))
				best = k;
		}
		matches[t].class_index = best;
		matches[t].confidence = exp(net->s * (cos[best] - m)) / sum;
		{
			double		d2 = 2.0 - 2.0 * cos[best];

			matches[t].distance = d2 > 0 ? sqrt(d2) : 0;
		}
	}
	*nmatches = top_k;
	rc = TR_DECODE_OK;
out:
	free(x);
	free(u);
	free(cos);
	return rc;
}

/* Decode and find the face regions to recognize (see tr_recognize_faces). */
static int
recognize_regions(const tr_model *model, const tr_features *feat, const uint8_t *data, size_t len,
				  size_t max_pixels, const int *box, int max_regions, tr_image *img,
				  tr_box *regions, int *nregions, char *err, size_t errlen)
{
	int			rc;

	*nregions = 0;
	if (feat == NULL || feat->dim != model->net.d)
	{
		snprintf(err, errlen, "model uses feature kind \"%s\", unknown to this build", model->feature_kind);
		return TR_MODEL_UNUSABLE;
	}
	rc = tr_decode(data, len, max_pixels, img, NULL, err, errlen);
	if (rc != TR_DECODE_OK)
		return rc;
	if (model->type == TR_FACE && box == NULL && feat->locate != NULL)
	{
		char		why[TR_ERRLEN];
		int			n = feat->locate(feat, img, regions, max_regions, why, sizeof(why));

		if (n > 0)
		{
			*nregions = n;
			return TR_DECODE_OK;
		}
	}
	if (tr_face_region(img, model->type == TR_FACE ? box : NULL, &regions[0]) != 0)
	{
		snprintf(err, errlen, "face box is outside the %dx%d image", img->width, img->height);
		tr_image_free(img);
		return TR_BOX_OUTSIDE;
	}
	*nregions = 1;
	return TR_DECODE_OK;
}

/* The model's kind bound to model_dir, or NULL when this build does not know it. */
static const tr_features *
model_kind(const tr_model *model, const char *model_dir, tr_features *buf)
{
	const tr_features *f = tr_features_find(model->feature_kind);

	if (f == NULL)
		return NULL;
	*buf = *f;
	buf->model_dir = model_dir;
	return buf;
}

int
tr_recognize(const tr_model *model, const char *model_dir, const uint8_t *data, size_t len,
			 size_t max_pixels, const int *box, int top_k, tr_box *region, tr_match *matches,
			 int *nmatches, char *err, size_t errlen)
{
	tr_features kind;
	const tr_features *feat = model_kind(model, model_dir, &kind);
	tr_image	img;
	tr_box		r;
	int			n,
				rc;

	*nmatches = 0;
	/* The largest face found (or the face box, or the whole image). */
	rc = recognize_regions(model, feat, data, len, max_pixels, box, 1, &img, &r, &n, err, errlen);
	if (rc != TR_DECODE_OK)
		return rc;
	rc = score_region(model, feat, &img, r, top_k, matches, nmatches, err, errlen);
	if (rc == TR_DECODE_OK && region)
		*region = r;
	tr_image_free(&img);
	return rc;
}

int
tr_recognize_faces(const tr_model *model, const char *model_dir, const uint8_t *data, size_t len,
				   size_t max_pixels, const int *box, int top_k, tr_box *regions,
				   tr_match *matches, int *nmatches, int *nfaces, char *err, size_t errlen)
{
	tr_features kind;
	const tr_features *feat = model_kind(model, model_dir, &kind);
	tr_image	img;
	int			n,
				rc;

	*nfaces = 0;
	rc = recognize_regions(model, feat, data, len, max_pixels, box, TR_MAX_FACES, &img,
						   regions, &n, err, errlen);
	if (rc != TR_DECODE_OK)
		return rc;
	for (int i = 0; i < n && rc == TR_DECODE_OK; i++)
		rc = score_region(model, feat, &img, regions[i], top_k, matches + (size_t) i * top_k,
						  &nmatches[i], err, errlen);
	if (rc == TR_DECODE_OK)
		*nfaces = n;
	tr_image_free(&img);
	return rc;
}

/* A number with decimals; JSON has no NaN or infinity: they are strings, as the server writes them. */
static int
json_fixed(char *buf, size_t len, double f, int decimals)
{
	if (isnan(f))
		return snprintf(buf, len, "\"NaN\"");
	if (isinf(f))
		return snprintf(buf, len, f > 0 ? "\"Infinity\"" : "\"-Infinity\"");
	return snprintf(buf, len, "%.*f", decimals, f);
}

int
tr_metrics_json(const tr_metrics *m, bool has_metrics, char *buf, size_t len)
{
	size_t		o = 0;
	int			w;

#define PUT(...) \
	do { \
		w = snprintf(buf + o, len - o, __VA_ARGS__); \
		if (w < 0 || (size_t) w >= len - o) \
			return -1; \
		o += (size_t) w; \
	} while (0)
#define PUT_FIXED(f, d) \
	do { \
		w = json_fixed(buf + o, len - o, (f), (d)); \
		if (w < 0 || (size_t) w >= len - o) \
			return -1; \
		o += (size_t) w; \
	} while (0)

	if (len == 0)
		return -1;
	if (!has_metrics)
	{
		PUT("{}");
		return (int) o;
	}
	PUT("{\"train_accuracy\": ");
	PUT_FIXED(m->train_accuracy, 6);
	PUT(", \"validation_accuracy\": ");
	if (m->validation_accuracy >= 0)
		PUT_FIXED(m->validation_accuracy, 6);
	else
		PUT("null");
	PUT(", \"validation_images\": %d, \"images_used\": %zu, \"images_measured\": %zu, \"images_skipped\": {",
		m->validation_images, m->images_used, m->images_measured);
	for (int k = 0; k < TR_SKIP_COUNT; k++)
		PUT("%s\"%s\": %ld", k ? ", " : "", tr_skip_name((tr_skip) k), m->images_skipped[k]);
	PUT("}, \"images_skipped_total\": %ld, \"epochs\": %d, \"epochs_run\": %d, \"classes\": %d, "
		"\"classes_without_usable_images\": %d, \"feature_kind\": \"",
		m->images_skipped_total, m->epochs, m->epochs_run, m->classes, m->classes_without_usable_images);
	/* A kind's name is letters, digits and dashes; anything else is left out rather than escaped. */
	for (const char *c = m->feature_kind; *c && c < m->feature_kind + sizeof(m->feature_kind); c++)
		if (*c != '"' && *c != '\\' && (unsigned char) *c >= 0x20)
			PUT("%c", *c);
	PUT("\", \"feature_dim\": %d, \"embedding_dim\": %d, \"train_seconds\": ", m->feature_dim, m->embedding_dim);
	PUT_FIXED(m->train_seconds, 3);
	PUT(", \"gflop\": ");
	PUT_FIXED(m->gflop, 3);
	PUT("}");
#undef PUT
#undef PUT_FIXED
	return (int) o;
}
