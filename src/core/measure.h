/*
 * measure.h: what a feature kind sees in one image, computed once and kept (the embedding store).
 *
 * A measurement depends only on the image (its bytes and face box) and the feature kind: the
 * decoded size, every candidate face region (the face box; else the faces the kind's locator
 * finds, largest first; else the whole image) with its side, sharpness and gender, and the
 * kind's feature vector of each region. A training's config (min_face_size,
 * sharpness_threshold, max_image_pixels) is applied afterwards by tr_measure_choose, which
 * gives the same answer as decoding and filtering the image again (tr_check_image is built on
 * the two). The server keeps measurements in training.image_features; a retraining then
 * decodes nothing. Pure C, no PostgreSQL headers.
 */
#ifndef TRAINING_MEASURE_H
#define TRAINING_MEASURE_H

#include "pipeline.h"

/* Floats per region as stored (tr_measure_region in this order). */
#define TR_REGION_FLOATS 8

/*
 * At most this many located faces are measured, the largest ones. The filters pick the first
 * that passes, largest first, so beyond them only a blurrier-but-sharper-than-all-larger face
 * could have been picked (tr_check_image looked at TR_MAX_FACES).
 */
#define TR_MEASURE_REGIONS 8

typedef struct tr_measure_region
{
	tr_box		box;
	int			detected;		/* 1: found by the kind's locator; 0: the face box or whole image */
	int			side;			/* what min_face_size is compared with (tr_face_side) */
	float		sharpness;		/* tr_sharpness of the region */
	float		p_male;			/* gender network's probability of male, or one of: */
#define TR_GENDER_UNKNOWN		(-1.0f)	/* the gender network is not available */
#define TR_GENDER_UNMEASURED	(-2.0f)	/* not asked for (TR_MEASURE_GENDER) */
} tr_measure_region;

typedef struct tr_measure
{
	/* TR_SKIP_NONE (decoded), TR_SKIP_UNDECODABLE, TR_SKIP_TOO_LARGE or TR_SKIP_BOX_OUTSIDE. */
	tr_skip		status;
	char		message[256];	/* why, when status is not TR_SKIP_NONE */
	size_t		max_pixels;		/* the limit it was decoded under (0: none) */
	int			width;			/* decoded size (0 when not decoded) */
	int			height;
	int			nregions;		/* 0 unless decoded */
	tr_measure_region regions[TR_MEASURE_REGIONS];
	int			dim;			/* floats per region in features; 0: no features */
	float	   *features;		/* nregions * dim; malloc'd by tr_measure_image */
} tr_measure;

/* What tr_measure_image computes besides the regions. */
#define TR_MEASURE_FEATURES	1	/* the kind's features of every region */
#define TR_MEASURE_GENDER	2	/* face: the gender of every region, when the network loads */

/*
 * Measure an image for cfg's feature kind (cfg->features resolved or not; the filters of cfg
 * are not applied, max_image_pixels is). flags: TR_MEASURE_*. When img is not NULL and the
 * image decoded, *img receives it (free with tr_image_free). Returns 0 (a skip status is a
 * measurement too), TR_CANCELED, or -1 with a message when features were asked for and the
 * kind could not extract them. Free with tr_measure_free.
 */
int			tr_measure_image(const tr_config *cfg, const uint8_t *data, size_t len, const int *box,
							 int flags, tr_measure *m, tr_image *img, char *err, size_t errlen);

void		tr_measure_free(tr_measure *m);

/* A skip reason meaning: measured under a lower max_image_pixels; measure the image again. */
#define TR_SKIP_REMEASURE	(-2)

/*
 * Apply cfg's filters to a measurement, as tr_check_image does to the image: returns
 * TR_SKIP_NONE and the chosen region's index in *region, or the reason it is skipped with a
 * message in err, or TR_SKIP_REMEASURE. *sharpness (may be NULL): as tr_check_image's.
 */
tr_skip		tr_measure_choose(const tr_config *cfg, const tr_measure *m, int *region,
							  double *sharpness, char *err, size_t errlen);

/*
 * The embedding store's row format (training.image_features), shared by the server (src/store.c)
 * and training-worker: the status column's text, the regions column (nregions rows of
 * TR_REGION_FLOATS: x, y, width, height, detected, side, sharpness, p_male).
 */
const char *tr_measure_status_name(tr_skip status);
/* The status of a status column's text; -1 when it names none. */
int			tr_measure_status_parse(const char *name, tr_skip *status);
/* Write m's regions as nregions * TR_REGION_FLOATS floats into out. */
void		tr_measure_region_floats(const tr_measure *m, float *out);
/* Set m's regions from n rows of floats; -1 when n is out of range (m's regions unset). */
int			tr_measure_set_regions(tr_measure *m, const float *rows, int n);

/*
 * Whether a kept measurement serves a reader of a kind with dim floats, decoding under
 * max_pixels, with (gender) or without the gender of each region; else the image is read and
 * measured again.
 */
int			tr_measure_serves(const tr_measure *m, int dim, size_t max_pixels, int gender);

#endif
