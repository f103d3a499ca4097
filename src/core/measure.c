/*
 * measure.c: measure an image once (regions, sharpness, gender, features), apply a config's
 * filters to the measurement, and tr_check_image built on the two.
 */
#include "measure.h"
#include "interrupt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deepfeat.h"
#include "quality.h"
#include "trfeatures.h"

void
tr_measure_free(tr_measure *m)
{
	if (m == NULL)
		return;
	free(m->features);
	m->features = NULL;
	m->dim = 0;
}

static void
add_region(tr_measure *m, const tr_image *img, tr_box r, int detected)
{
	tr_measure_region *g = &m->regions[m->nregions++];

	g->box = r;
	g->detected = detected;
	g->side = tr_face_side(img, r, detected);
	g->sharpness = (float) tr_sharpness(img, r);
	g->p_male = TR_GENDER_UNMEASURED;
}

/* The candidate regions: the face box; else the faces found, largest first; else the image. */
static tr_skip
find_regions(const tr_config *cfg, const tr_features *kind, const tr_image *img, const int *box,
			 tr_measure *m)
{
	tr_box		r;

	if (cfg->type == TR_FACE && box != NULL)
	{
		if (tr_face_region(img, box, &r) != 0)
		{
			snprintf(m->message, sizeof(m->message),
					 "face box (%d, %d, %d, %d) is outside the %dx%d image",
					 box[0], box[1], box[2], box[3], img->width, img->height);
			return TR_SKIP_BOX_OUTSIDE;
		}
		add_region(m, img, r, 0);
		return TR_SKIP_NONE;
	}
	if (cfg->type == TR_FACE && kind->locate != NULL)
	{
		tr_box		faces[TR_MEASURE_REGIONS];
		char		why[TR_ERRLEN];
		/* n < 0 (networks unavailable): the whole image; extraction reports the error. */
		int			n = kind->locate(kind, img, faces, TR_MEASURE_REGIONS, why, sizeof(why));

		for (int i = 0; i < n && i < TR_MEASURE_REGIONS; i++)
			add_region(m, img, faces[i], 1);
		if (m->nregions > 0)
			return TR_SKIP_NONE;
	}
	tr_face_region(img, NULL, &r);
	add_region(m, img, r, 0);
	return TR_SKIP_NONE;
}

int
tr_measure_image(const tr_config *cfg, const uint8_t *data, size_t len, const int *box,
				 int flags, tr_measure *m, tr_image *out, char *err, size_t errlen)
{
	tr_features kind;
	tr_image	img;
	int			rc;

	memset(m, 0, sizeof(*m));
	if (out)
		memset(out, 0, sizeof(*out));
	m->max_pixels = cfg->max_image_pixels;
	rc = tr_decode(data, len, cfg->max_image_pixels, &img, NULL, m->message, sizeof(m->message));
	if (rc == TR_CANCELED)
		return TR_CANCELED;
	if (rc != TR_DECODE_OK)
	{
		m->status = rc == TR_DECODE_TOO_LARGE ? TR_SKIP_TOO_LARGE : TR_SKIP_UNDECODABLE;
		return 0;
	}
	m->width = img.width;
	m->height = img.height;
	tr_config_kind(cfg, &kind);
	m->status = find_regions(cfg, &kind, &img, box, m);
	if (tr_interrupted())
		goto canceled;
	if (m->status == TR_SKIP_NONE && (flags & TR_MEASURE_GENDER) && cfg->type == TR_FACE)
	{
		for (int i = 0; i < m->nregions; i++)
		{
			double		p = TR_GENDER_UNKNOWN;
			char		why[TR_ERRLEN];

			/* Without the gender network no region has a gender. */
			if (m->regions[0].p_male != TR_GENDER_UNKNOWN &&
				tr_deep_gender(cfg->model_dir, &img, m->regions[i].box, &p, why, sizeof(why)) != 0)
				p = TR_GENDER_UNKNOWN;
			m->regions[i].p_male = (float) p;
		}
		if (tr_interrupted())
			goto canceled;
	}
	if (m->status == TR_SKIP_NONE && (flags & TR_MEASURE_FEATURES))
	{
		m->features = malloc(sizeof(float) * kind.dim * m->nregions);
		if (m->features == NULL)
		{
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		m->dim = kind.dim;
		for (int i = 0; i < m->nregions; i++)
		{
			char		why[TR_ERRLEN];

			if (kind.extract(&kind, &img, m->regions[i].box, m->features + (size_t) i * kind.dim,
							 why, sizeof(why)) != 0)
			{
				if (tr_interrupted())
					goto canceled;
				snprintf(err, errlen, "%s", why);
				goto fail;
			}
		}
	}
	if (out && m->status == TR_SKIP_NONE)
		*out = img;
	else
		tr_image_free(&img);
	return 0;

canceled:
	snprintf(err, errlen, "canceled");
	tr_image_free(&img);
	tr_measure_free(m);
	return TR_CANCELED;
fail:
	tr_image_free(&img);
	tr_measure_free(m);
	return -1;
}

/* The face filters on one region: min_face_size, then sharpness. */
static tr_skip
check_region(const tr_config *cfg, const tr_measure_region *g, double *sharpness,
			 char *err, size_t errlen)
{
	if (g->side < cfg->min_face_size)
	{
		snprintf(err, errlen, "face of %dx%d is smaller than min_face_size %d",
				 g->box.w, g->box.h, cfg->min_face_size);
		return TR_SKIP_TOO_SMALL;
	}
	*sharpness = g->sharpness;
	if (g->sharpness < cfg->sharpness_threshold)
	{
		snprintf(err, errlen, "face sharpness %.1f is below sharpness_threshold %d",
				 g->sharpness, cfg->sharpness_threshold);
		return TR_SKIP_BLURRY;
	}
	return TR_SKIP_NONE;
}

tr_skip
tr_measure_choose(const tr_config *cfg, const tr_measure *m, int *region, double *sharpness,
				  char *err, size_t errlen)
{
	double		sh = -1;
	tr_skip		first = TR_SKIP_NONE;
	char		why[TR_ERRLEN];

	*region = -1;
	if (sharpness)
		*sharpness = -1;
	if (m->status == TR_SKIP_TOO_LARGE)
	{
		/* Too large for another limit says nothing about this one. */
		if (cfg->max_image_pixels != m->max_pixels)
			return TR_SKIP_REMEASURE;
		snprintf(err, errlen, "%s", m->message);
		return TR_SKIP_TOO_LARGE;
	}
	/* Decoding checks the size first (a box outside a too large image: too large). */
	if (m->width > 0 && cfg->max_image_pixels > 0 &&
		(size_t) m->width * m->height > cfg->max_image_pixels)
	{
		snprintf(err, errlen, "image of %dx%d = %zu pixels exceeds training.max_image_pixels (%zu)",
				 m->width, m->height, (size_t) m->width * m->height, cfg->max_image_pixels);
		return TR_SKIP_TOO_LARGE;
	}
	if (m->status != TR_SKIP_NONE)
	{
		snprintf(err, errlen, "%s", m->message);
		return m->status;
	}
	if (cfg->type != TR_FACE || m->nregions == 0)
	{
		*region = 0;
		return m->nregions > 0 ? TR_SKIP_NONE : TR_SKIP_UNDECODABLE;
	}
	/* The first region (largest face found) that passes; else the first one's reason. */
	for (int i = 0; i < m->nregions; i++)
	{
		double		s_i = -1;
		tr_skip		s = check_region(cfg, &m->regions[i], &s_i, why, sizeof(why));

		if (s == TR_SKIP_NONE)
		{
			*region = i;
			if (sharpness)
				*sharpness = s_i;
			return TR_SKIP_NONE;
		}
		if (i == 0)
		{
			first = s;
			sh = s_i;
			snprintf(err, errlen, "%s", why);
		}
	}
	if (sharpness)
		*sharpness = sh;
	return first;
}

tr_skip
tr_check_image(const tr_config *cfg, const uint8_t *data, size_t len, const int *box,
			   tr_image *out, tr_box *region, double *sharpness, char *err, size_t errlen)
{
	tr_measure	m;
	tr_image	img;
	tr_skip		s;
	int			k;

	if (sharpness)
		*sharpness = -1;
	if (out)
		memset(out, 0, sizeof(*out));
	if (tr_measure_image(cfg, data, len, box, 0, &m, &img, err, errlen) != 0)
		return TR_SKIP_UNDECODABLE;		/* canceled: the caller polls tr_interrupted() */
	s = tr_measure_choose(cfg, &m, &k, sharpness, err, errlen);
	if (s == TR_SKIP_NONE)
	{
		if (region)
			*region = m.regions[k].box;
		if (out)
			*out = img;
		else
			tr_image_free(&img);
	}
	else
		tr_image_free(&img);
	tr_measure_free(&m);
	return s;
}

const char *
tr_measure_status_name(tr_skip status)
{
	return status == TR_SKIP_NONE ? "measured" : tr_skip_name(status);
}

int
tr_measure_status_parse(const char *name, tr_skip *status)
{
	if (strcmp(name, "measured") == 0)
	{
		*status = TR_SKIP_NONE;
		return 0;
	}
	for (int k = 0; k < TR_SKIP_COUNT; k++)
		if (strcmp(name, tr_skip_name((tr_skip) k)) == 0)
		{
			*status = (tr_skip) k;
			return 0;
		}
	return -1;
}

void
tr_measure_region_floats(const tr_measure *m, float *out)
{
	for (int i = 0; i < m->nregions; i++)
	{
		const tr_measure_region *r = &m->regions[i];
		float	   *g = out + i * TR_REGION_FLOATS;

		g[0] = r->box.x;
		g[1] = r->box.y;
		g[2] = r->box.w;
		g[3] = r->box.h;
		g[4] = r->detected;
		g[5] = r->side;
		g[6] = r->sharpness;
		g[7] = r->p_male;
	}
}

int
tr_measure_set_regions(tr_measure *m, const float *rows, int n)
{
	if (n < 0 || n > TR_MEASURE_REGIONS)
		return -1;
	m->nregions = n;
	for (int i = 0; i < n; i++)
	{
		const float *g = rows + i * TR_REGION_FLOATS;
		tr_measure_region *r = &m->regions[i];

		memset(r, 0, sizeof(*r));
		r->box.x = (int) g[0];
		r->box.y = (int) g[1];
		r->box.w = (int) g[2];
		r->box.h = (int) g[3];
		r->box.dx = r->box.dy = 0;	/* the features were made with them */
		r->detected = g[4] != 0;
		r->side = (int) g[5];
		r->sharpness = g[6];
		r->p_male = g[7];
	}
	return 0;
}

int
tr_measure_serves(const tr_measure *m, int dim, size_t max_pixels, int gender)
{
	if (m->status == TR_SKIP_TOO_LARGE)
		return m->max_pixels == max_pixels;
	if (m->status != TR_SKIP_NONE)
		return 1;
	if (m->features == NULL || m->dim != dim)
		return 0;
	for (int k = 0; gender && k < m->nregions; k++)
		if (m->regions[k].p_male == TR_GENDER_UNMEASURED)
			return 0;
	return 1;
}
