/*
 * pipeline.h: the training pipeline as the worker sees it, and recognition.
 *
 * Pure computation: no PostgreSQL headers here or in the files that implement it
 * (decode.c, quality.c, features.c, trainloop.c, model.c, pipeline.c). Errors are
 * return codes plus a message in a caller buffer; nothing here longjmps. Memory is
 * malloc'd and freed here; the caller owns only what a function documents as returned.
 */
#ifndef TRAINING_PIPELINE_H
#define TRAINING_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "model.h"
#include "trfeatures.h"

struct tr_measure;				/* measure.h */

#define TR_ERRLEN 512

/* The sgemm work a training's epochs may take (tr_fit_params.max_gflop), when its config does not say. */
#define TR_TRAINING_MAX_GFLOP 200.0

/* Default of training.max_image_pixels. */
#define TR_DEFAULT_MAX_IMAGE_PIXELS 40000000
/* Defaults of a face training's filters (config keys min_face_size, sharpness_threshold). */
#define TR_DEFAULT_MIN_FACE_SIZE 80
#define TR_DEFAULT_SHARPNESS_THRESHOLD 40

typedef enum tr_type
{
	TR_FACE = 0,
	TR_LANDMARK = 1
} tr_type;

/* The feature kinds a config may name besides a kind's own name (tr_resolve_features). */
#define TR_FEATURES_AUTO	"auto"		/* face: deep when its networks load from model_dir, else classic */
#define TR_FEATURES_DEEP	"deep"		/* face: the deep kind (deepfeat.h); an error without its networks */
#define TR_FEATURES_CLASSIC	"classic"	/* the classic kind of the dataset type (trfeatures.h) */

#define TR_FEATURES_NAMELEN 32
#define TR_PATHLEN 1024

/*
 * Training configuration: every parameter of a training (dataset type, the validated config,
 * the feature kind and where its networks are). The core keeps no other setting.
 */
typedef struct tr_config
{
	tr_type		type;
	/* A feature kind's name, or TR_FEATURES_AUTO/DEEP/CLASSIC until tr_resolve_features. */
	char		features[TR_FEATURES_NAMELEN];
	char		model_dir[TR_PATHLEN];	/* directory of the face networks; "" = none */
	int			min_face_size;		/* face: smallest side of the face box, pixels */
	int			sharpness_threshold;	/* face: minimum Laplacian-variance sharpness */
	size_t		max_image_pixels;	/* larger images are skipped; 0 = no limit */
	uint64_t	seed;				/* determinism */
	size_t		expected_images;	/* for progress while loading; 0 if unknown */
	const tr_fit_params *fit;		/* training loop parameters; NULL: the defaults */
	int			measure_gender;		/* face: measure the gender of images measured afresh */
} tr_config;

/* Fill cfg with the defaults of DESIGN.md for a dataset type (the classic features, no model_dir). */
void		tr_config_default(tr_config *cfg, tr_type type);

/*
 * Set the feature kind (features: a kind's name, TR_FEATURES_AUTO, _DEEP or _CLASSIC; NULL keeps
 * cfg->features) and the model directory (NULL keeps cfg->model_dir) of cfg. Returns 0, or -1
 * when a name does not fit or is not a feature kind of this build.
 */
int			tr_config_set_features(tr_config *cfg, const char *features, const char *model_dir,
								   char *err, size_t errlen);

/*
 * Resolve cfg->features into the name of the kind the training uses: "auto" becomes the deep
 * kind when its networks load from cfg->model_dir (they are then in the network cache,
 * netcache.h), else the classic kind; "deep" and the deep kind's name require the networks;
 * "classic" is the classic kind of the type. Called when a training starts (tr_train calls it
 * on its own copy when the caller did not). Returns 0, or -1 with a message.
 */
int			tr_resolve_features(tr_config *cfg, char *err, size_t errlen);

/*
 * One image as the store hands it over; pointers are valid until the next call. measure: its
 * kept measurement (measure.h) for the training's feature kind, or NULL; data may then be NULL.
 */
typedef struct tr_image_ref
{
	const struct tr_measure *measure;
	const uint8_t *data;
	size_t		len;
	int			class_index;		/* 0..nclasses-1, dense */
	int			has_box;
	int			box[4];				/* x, y, width, height */
} tr_image_ref;

/*
 * What the caller (the worker) provides. Callbacks must return (never longjmp through the
 * core): to stop the training they return "stop" (next_image: -1, progress: nonzero), and
 * tr_train then frees everything it allocated and returns TR_STOPPED without calling them
 * again. A caller that turned an error into "stop" reports it after tr_train returned.
 */
typedef struct tr_callbacks
{
	void	   *ctx;
	/* Fill *out with the next image; return 1, or 0 at the end, or -1 to stop. */
	int			(*next_image) (void *ctx, tr_image_ref *out);
	/*
	 * Report progress (0..1) and the current stage ("loading", "training",
	 * "validating"). Called at least once per epoch and every few images. Returns 0 to
	 * go on, nonzero to stop. May be NULL.
	 */
	int			(*progress) (void *ctx, double fraction, const char *stage);
	/*
	 * An image that came without a usable measurement has been measured (with its features):
	 * the caller may keep a copy for later trainings. Returns 0, nonzero to stop. May be NULL.
	 */
	int			(*keep_measure) (void *ctx, const tr_image_ref *ref, const struct tr_measure *m);
} tr_callbacks;

/* Why an image is not used for training (metrics keys are tr_skip_name()). */
typedef enum tr_skip
{
	TR_SKIP_NONE = -1,
	TR_SKIP_UNDECODABLE = 0,	/* "undecodable" */
	TR_SKIP_TOO_LARGE,			/* "too_large" */
	TR_SKIP_BOX_OUTSIDE,		/* "box_outside_image" */
	TR_SKIP_TOO_SMALL,			/* "smaller_than_min_face_size" */
	TR_SKIP_BLURRY,				/* "below_sharpness_threshold" */
	TR_SKIP_COUNT
} tr_skip;

const char *tr_skip_name(tr_skip reason);

/*
 * What a training measured. The core emits no JSON: the server renders this as
 * model_versions.metrics (src/worker.c), a tool prints it as it likes.
 */
typedef struct tr_metrics
{
	double		train_accuracy;
	double		validation_accuracy;	/* < 0: no validation split */
	int			validation_images;
	size_t		images_used;
	size_t		images_measured;	/* decoded and measured by this training (not kept before) */
	long		images_skipped[TR_SKIP_COUNT];	/* by reason, keys tr_skip_name() */
	long		images_skipped_total;
	int			epochs;
	int			epochs_run;
	int			classes;
	int			classes_without_usable_images;
	char		feature_kind[32];
	int			feature_dim;
	int			embedding_dim;
	double		train_seconds;
	double		gflop;
} tr_metrics;

/*
 * The metrics as a JSON object (model_versions.metrics; "{}" without metrics), the one rendering
 * of the server and training-worker. Returns the length written, or -1 when len is too small.
 */
#define TR_METRICS_JSON_LEN 1024
int			tr_metrics_json(const tr_metrics *m, bool has_metrics, char *buf, size_t len);

/* What a training produces: the serialized model version and its metrics. */
typedef struct tr_result
{
	uint8_t    *parameters;		/* malloc'd; the bytea of model_versions.parameters */
	size_t		parameters_len;
	bool		has_metrics;
	tr_metrics	metrics;
} tr_result;

/*
 * Run a whole training: stream images, filter, extract features, train.
 * nclasses: number of classes; class_labels[i] and class_ids[i] are carried in the
 * model (only classes with at least one usable image become model classes).
 * Returns 0 on success, -1 with a readable message in err (e.g. "no usable face: ..."),
 * TR_CANCELED (interrupt.h) when a cancel request stopped it, or TR_STOPPED when a callback
 * said stop; everything is freed either way, and nothing longjmps.
 */
int			tr_train(const tr_config *cfg, int nclasses, const char *const *class_labels,
					 const char *const *class_ids, tr_callbacks *cb,
					 tr_result *out, char *err, size_t errlen);

void		tr_result_free(tr_result *res);


/*
 * Apply the filters of a training to one image, as tr_train does. Returns the
 * reason it would be skipped, or TR_SKIP_NONE. If img is not NULL and the image is
 * usable, *img receives the decoded image (free with tr_image_free) and *region the
 * face region (or whole image). *sharpness (may be NULL) receives the sharpness of
 * a face image that got as far as the sharpness test, else -1. err says why.
 */
tr_skip		tr_check_image(const tr_config *cfg, const uint8_t *data, size_t len, const int *box,
						   tr_image *img, tr_box *region, double *sharpness,
						   char *err, size_t errlen);

/*
 * The kind cfg names, as a copy bound to cfg's model directory. A name still to resolve is
 * resolved on the way (outside a training): a kind that cannot be used is then the classic one.
 */
void		tr_config_kind(const tr_config *cfg, tr_features *out);

/* Results of recognition besides the TR_DECODE_* codes of decode.h. */
#define TR_MODEL_UNUSABLE	(-3)	/* feature kind unknown here, or its extraction failed */
#define TR_BOX_OUTSIDE		(-4)	/* the face box does not overlap the image */

/* One scored class of a recognition. */
typedef struct tr_match
{
	int			class_index;	/* into model->class_ids / labels */
	double		confidence;		/* softmax probability, 0..1 */
	double		distance;		/* |u - centre| in the normalised embedding space, 0..2 */
} tr_match;

/*
 * Recognize one image with a parsed model: decode, face region (box or the whole
 * image), features, scores. Fills up to top_k matches, best first (*nmatches), and
 * the region used. model_dir: where a kind that reads networks finds them (NULL: none).
 * Returns TR_DECODE_OK, or a TR_DECODE_*, TR_MODEL_UNUSABLE or
 * TR_BOX_OUTSIDE error with a message.
 */
int			tr_recognize(const tr_model *model, const char *model_dir, const uint8_t *data, size_t len, size_t max_pixels,
						 const int *box, int top_k, tr_box *region, tr_match *matches, int *nmatches,
						 char *err, size_t errlen);

/* At most this many faces per image are located and recognized. */
#define TR_MAX_FACES 32

/*
 * Recognize every face of an image: the face box when given; else, for a face
 * model whose feature kind locates faces, each face found, largest first (the
 * whole image when none is found); else the whole image. For face i < *nfaces:
 * regions[i], and nmatches[i] matches at matches[i * top_k], best first.
 * regions, nmatches hold TR_MAX_FACES entries, matches TR_MAX_FACES * top_k.
 * Returns TR_DECODE_OK, or a TR_DECODE_*, TR_MODEL_UNUSABLE or TR_BOX_OUTSIDE error.
 */
int			tr_recognize_faces(const tr_model *model, const char *model_dir, const uint8_t *data, size_t len,
							   size_t max_pixels, const int *box, int top_k, tr_box *regions,
							   tr_match *matches, int *nmatches, int *nfaces,
							   char *err, size_t errlen);

#endif
