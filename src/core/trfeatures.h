/*
 * trfeatures.h: the feature interface (contract 10).
 *
 * A feature kind turns a decoded image and its face region (or the whole image)
 * into a fixed-length float vector. The model stores the kind's name, and
 * recognition looks the same kind up again by that name, so a kind's output must
 * never change under the same name: change the name (e.g. "-v2") instead.
 * The kinds are built in (classic face and landmark features, and the deep face
 * embedding of deepfeat.h); a training names its kind in tr_config.features.
 * Nothing here is changed by the server. Pure C, no PostgreSQL headers.
 */
#ifndef TRAINING_TRFEATURES_H
#define TRAINING_TRFEATURES_H

#include <stddef.h>

#include "decode.h"
#include "quality.h"

typedef struct tr_features tr_features;

struct tr_features
{
	const char *name;			/* stable identifier stored in models, <= 31 bytes */
	int			dim;			/* length of the vector */
	/*
	 * Write dim floats to out for region r of img. Returns 0, or -1 with a
	 * message in err. Must be deterministic and must not keep pointers to img.
	 */
	int			(*extract) (const tr_features *self, const tr_image *img, tr_box r,
							float *out, char *err, size_t errlen);
	void	   *priv;			/* implementation data (e.g. network weights) */
	/*
	 * Optional face locator (NULL: the face is the face box or the whole
	 * image). Writes up to max candidate face boxes of img, largest first,
	 * and returns how many (0: none found), or -1 with a message in err.
	 */
	int			(*locate) (const tr_features *self, const tr_image *img, tr_box *faces,
						   int max, char *err, size_t errlen);
	/*
	 * 1: the vectors already are a metric embedding (e.g. a face descriptor);
	 * the classifier then learns class centres without a projection.
	 */
	int			metric;
	/*
	 * Directory of the networks a kind reads (deepfeat.c), set on the copy of the
	 * kind a training or a recognition uses (the caller's string); NULL otherwise.
	 */
	const char *model_dir;
};

/* Dataset types, as tr_type of pipeline.h. */
#define TR_FEATURES_FACE		0
#define TR_FEATURES_LANDMARK	1

/* The classic kind of a dataset type (tr_config_default's). */
const tr_features *tr_features_default(int type);

/* A kind by name, or NULL. */
const tr_features *tr_features_find(const char *name);

/*
 * Register another kind (kept by pointer; must stay valid), for tests and tools
 * that plug in their own kind; trainings use it when their config names it.
 * Returns 0, or -1 when the table is full or the name is taken by another kind.
 */
int			tr_features_register(const tr_features *f);

/* Building blocks, exposed for tests. */
/* Uniform LBP code (0..58) of an 8-bit pattern: 58 uniform patterns, 58 for the rest. */
int			tr_lbp_uniform_bin(unsigned pattern);
/* L2-normalise v in place (no-op for a zero vector). */
void		tr_l2_normalize(float *v, int n);

#endif
