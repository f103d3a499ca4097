/*
 * model.h: a trained model version and its serialized form (model_versions.parameters).
 *
 * Format (all integers uint32 and all reals float32, little-endian):
 *   magic "TRNM", format_version (1), type (0 face, 1 landmark),
 *   d (feature dim), e (projection dim, 0 = none), c (classes), scale s (float32),
 *   feature kind name (32 bytes, NUL-padded),
 *   min_face_size, sharpness_threshold (the filters the model was trained with),
 *   then per class: id length + bytes, label length + bytes (UTF-8, no NUL),
 *   then mean[d], W1[e*d] (row-major, only when e > 0), W2[c*E] (E = e or d).
 * The embedding of an image is u = W1 (x - mean) / |...|; the centre of class k
 * is W2[k] / |W2[k]|; distances between them are in 0..2 (see trainloop.h).
 * Pure C, no PostgreSQL headers.
 */
#ifndef TRAINING_MODEL_H
#define TRAINING_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "trfeatures.h"
#include "trainloop.h"

#define TR_MODEL_MAGIC "TRNM"
#define TR_MODEL_FORMAT_VERSION 1

typedef struct tr_model
{
	int			format_version;
	int			type;			/* 0 face, 1 landmark */
	char		feature_kind[32];
	int			min_face_size;
	int			sharpness_threshold;
	tr_net		net;
	char	  **class_ids;		/* c strings */
	char	  **labels;			/* c strings */
} tr_model;

/* Serialize into a malloc'd buffer. Returns 0, or -1 when out of memory. */
int			tr_model_serialize(const tr_model *m, uint8_t **out, size_t *len);

/*
 * Parse a serialized model (checked: magic, version, sizes). The feature kind
 * must be known to this build. Returns 0, or -1 with a message in err.
 */
int			tr_model_parse(const uint8_t *p, size_t len, tr_model *m, char *err, size_t errlen);

void		tr_model_free(tr_model *m);

#endif
