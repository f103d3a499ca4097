/*
 * pipeline.h: the training pipeline as the worker sees it.
 *
 * Pure computation: no PostgreSQL headers here or in the files that implement it
 * (decode, face quality, features, training loop, model format). Errors are return
 * codes plus a message in a caller buffer; nothing here longjmps. Memory is malloc'd
 * and freed here; the caller owns only what a function documents as returned.
 */
#ifndef TRAINING_PIPELINE_H
#define TRAINING_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#define TR_ERRLEN 512

typedef enum tr_type
{
	TR_FACE = 0,
	TR_LANDMARK = 1
} tr_type;

/* Training configuration: dataset type and the validated config of the training. */
typedef struct tr_config
{
	tr_type		type;
	int			min_face_size;		/* face: smallest side of the face box, pixels */
	int			sharpness_threshold;	/* face: minimum Laplacian-variance sharpness */
	size_t		max_image_pixels;	/* larger images are skipped */
	uint64_t	seed;				/* determinism */
} tr_config;

/* One image as the store hands it over; pointers are valid until the next call. */
typedef struct tr_image_ref
{
	const uint8_t *data;
	size_t		len;
	int			class_index;		/* 0..nclasses-1, dense */
	int			has_box;
	int			box[4];				/* x, y, width, height */
} tr_image_ref;

/* What the caller (the worker) provides. */
typedef struct tr_callbacks
{
	void	   *ctx;
	/* Fill *out with the next image; return 1, or 0 at the end, or -1 on error. */
	int			(*next_image) (void *ctx, tr_image_ref *out);
	/* Report progress (0..1) and the current stage; may not return (cancel). */
	void		(*progress) (void *ctx, double fraction, const char *stage);
} tr_callbacks;

/* What a training produces: the serialized model version and its metrics. */
typedef struct tr_result
{
	uint8_t    *parameters;		/* malloc'd; the bytea of model_versions.parameters */
	size_t		parameters_len;
	char	   *metrics_json;		/* malloc'd JSON object for model_versions.metrics */
} tr_result;

/*
 * Run a whole training: stream images, filter, extract features, train.
 * nclasses: number of classes; class_labels[i] is carried in the model header.
 * Returns 0 on success, -1 with a readable message in err (e.g. "no usable face: ...").
 */
int			tr_train(const tr_config *cfg, int nclasses, const char *const *class_labels,
					 const char *const *class_ids, tr_callbacks *cb,
					 tr_result *out, char *err, size_t errlen);

void		tr_result_free(tr_result *res);

#endif
