/*
 * features.c: classic features behind the tr_features interface.
 *
 * face-lbp-hog-v1: the grey face region resampled to 80x96; uniform LBP
 *   histograms (8 neighbours at radius 1 and 2) on a 7x7 grid, each cell
 *   Hellinger-normalised (square root of the normalised histogram); HOG
 *   (9 unsigned orientations, 10x12-pixel cells, 2x2-cell blocks, L2-Hys).
 * landmark-colour-hog-v1: the image resampled to 128x128; joint RGB histograms
 *   (4x4x4 bins) and uniform-LBP histograms on a 1x1 + 2x2 + 4x4 spatial
 *   pyramid, and HOG (16x16-pixel cells).
 * Each part is scaled to unit L2 norm, weighted, and the whole vector is then
 * L2-normalised, so that distances between vectors are in 0..2.
 */
#include "features.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LBP_BINS 59

int
tr_lbp_uniform_bin(unsigned pattern)
{
	static int	table[256];
	static int	ready = 0;

	if (!ready)
	{
		int			next = 0;

		for (unsigned p = 0; p < 256; p++)
		{
			int			transitions = 0;

			for (int k = 0; k < 8; k++)
				transitions += ((p >> k) & 1) != ((p >> ((k + 1) & 7)) & 1);
			table[p] = (transitions <= 2) ? next++ : -1;
		}
		for (unsigned p = 0; p < 256; p++)
			if (table[p] < 0)
				table[p] = LBP_BINS - 1;
		ready = 1;
	}
	return table[pattern & 255];
}

void
tr_l2_normalize(float *v, int n)
{
	double		s = 0;

	for (int i = 0; i < n; i++)
		s += (double) v[i] * v[i];
	if (s <= 0)
		return;
	s = 1.0 / sqrt(s);
	for (int i = 0; i < n; i++)
		v[i] = (float) (v[i] * s);
}

/* LBP codes (8 neighbours at radius rad, bilinear) of a w x h image; -1 near the border. */
static void
lbp_codes(const float *g, int w, int h, int rad, int *codes)
{
	float		dx[8],
				dy[8];

	for (int k = 0; k < 8; k++)
	{
		double		a = 2 * M_PI * k / 8;

		dx[k] = (float) (rad * cos(a));
		dy[k] = (float) (-rad * sin(a));
		if (fabsf(dx[k]) < 1e-6f)
			dx[k] = 0;
		if (fabsf(dy[k]) < 1e-6f)
			dy[k] = 0;
	}
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
		{
			unsigned	code = 0;
			float		c;

			if (x < rad || y < rad || x >= w - rad || y >= h - rad)
			{
				codes[y * w + x] = -1;
				continue;
			}
			c = g[y * w + x];
			for (int k = 0; k < 8; k++)
			{
				float		sx = x + dx[k],
							sy = y + dy[k];
				int			x0 = (int) floorf(sx),
							y0 = (int) floorf(sy);
				float		fx = sx - x0,
							fy = sy - y0;
				int			x1 = fx > 0 ? x0 + 1 : x0,
							y1 = fy > 0 ? y0 + 1 : y0;
				float		v = (1 - fx) * (1 - fy) * g[y0 * w + x0] + fx * (1 - fy) * g[y0 * w + x1] +
					(1 - fx) * fy * g[y1 * w + x0] + fx * fy * g[y1 * w + x1];

				if (v >= c + 1e-3f)
					code |= 1u << k;
			}
			codes[y * w + x] = tr_lbp_uniform_bin(code);
		}
}

/* Hellinger-normalised LBP histograms of cell (cx, cy) of an nx x ny grid. */
static void
lbp_cell(const int *codes, int w, int h, int nx, int ny, int cx, int cy, float *hist)
{
	int			x0 = cx * w / nx,
				x1 = (cx + 1) * w / nx,
				y0 = cy * h / ny,
				y1 = (cy + 1) * h / ny;
	float		total = 0;

	memset(hist, 0, sizeof(float) * LBP_BINS);
	for (int y = y0; y < y1; y++)
		for (int x = x0; x < x1; x++)
			if (codes[y * w + x] >= 0)
			{
				hist[codes[y * w + x]] += 1;
				total += 1;
			}
	if (total > 0)
		for (int b = 0; b < LBP_BINS; b++)
			hist[b] = sqrtf(hist[b] / total);
}

/* LBP grid nx x ny; returns floats written. */
static int
lbp_grid(const int *codes, int w, int h, int nx, int ny, float *out)
{
	for (int cy = 0; cy < ny; cy++)
		for (int cx = 0; cx < nx; cx++)
			lbp_cell(codes, w, h, nx, ny, cx, cy, out + (cy * nx + cx) * LBP_BINS);
	return nx * ny * LBP_BINS;
}

#define HOG_BINS 9

/* HOG: cells of cw x ch pixels, 2x2-cell blocks (stride 1 cell), L2-Hys. Returns floats written. */
static int
hog(const float *g, int w, int h, int cw, int ch, float *out)
{
	int			ncx = w / cw,
				ncy = h / ch;
	float	   *cells = calloc((size_t) ncx * ncy * HOG_BINS, sizeof(float));
	int			n = 0;

	for (int y = 0; y < ncy * ch; y++)
		for (int x = 0; x < ncx * cw; x++)
		{
			float		gx = g[y * w + (x + 1 < w ? x + 1 : x)] - g[y * w + (x > 0 ? x - 1 : x)];
			float		gy = g[(y + 1 < h ? y + 1 : y) * w + x] - g[(y > 0 ? y - 1 : y) * w + x];
			float		mag = sqrtf(gx * gx + gy * gy);
			float		ang = atan2f(gy, gx);
			float		pos;
			int			b0,
						b1;
			float		f;
			float	   *c;

			if (ang < 0)
				ang += (float) M_PI;
			pos = ang / (float) M_PI * HOG_BINS - 0.5f;
			if (pos < 0)
				pos += HOG_BINS;
			b0 = (int) floorf(pos);
			f = pos - b0;
			b0 %= HOG_BINS;
			b1 = (b0 + 1) % HOG_BINS;
			c = cells + ((y / ch) * ncx + (x / cw)) * HOG_BINS;
			c[b0] += mag * (1 - f);
			c[b1] += mag * f;
		}
	for (int by = 0; by + 1 < ncy; by++)
		for (int bx = 0; bx + 1 < ncx; bx++)
		{
			float	   *o = out + n;
			double		s = 0;

			for (int k = 0; k < 4; k++)
				memcpy(o + k * HOG_BINS, cells + ((by + k / 2) * ncx + bx + k % 2) * HOG_BINS,
					   sizeof(float) * HOG_BINS);
			for (int i = 0; i < 4 * HOG_BINS; i++)
				s += (double) o[i] * o[i];
			s = 1.0 / sqrt(s + 1e-6);
			for (int i = 0; i < 4 * HOG_BINS; i++)
			{
				o[i] = (float) (o[i] * s);
				if (o[i] > 0.2f)
					o[i] = 0.2f;
			}
			tr_l2_normalize(o, 4 * HOG_BINS);
			n += 4 * HOG_BINS;
		}
	free(cells);
	return n;
}

/* ---------- face-lbp-hog-v1 ---------- */

#define FACE_W 80
#define FACE_H 96
#define FACE_GRID 7
#define FACE_HOG_CW 10
#define FACE_HOG_CH 12
#define FACE_LBP_DIM (FACE_GRID * FACE_GRID * LBP_BINS)
#define FACE_DIM (2 * FACE_LBP_DIM + (FACE_W / FACE_HOG_CW - 1) * (FACE_H / FACE_HOG_CH - 1) * 4 * HOG_BINS)

static int
face_extract(const tr_features *self, const tr_image *img, tr_box r, float *out,
			 char *err, size_t errlen)
{
	float	   *g = malloc(sizeof(float) * FACE_W * FACE_H);
	int		   *codes = malloc(sizeof(int) * FACE_W * FACE_H);
	int			n = 0,
				k;

	if (g == NULL || codes == NULL)
	{
		free(g);
		free(codes);
		snprintf(err, errlen, "out of memory extracting features");
		return -1;
	}
	tr_grey_resample(img, r, FACE_W, FACE_H, g);
	for (int rad = 1; rad <= 2; rad++)
	{
		lbp_codes(g, FACE_W, FACE_H, rad, codes);
		k = lbp_grid(codes, FACE_W, FACE_H, FACE_GRID, FACE_GRID, out + n);
		tr_l2_normalize(out + n, k);
		n += k;
	}
	k = hog(g, FACE_W, FACE_H, FACE_HOG_CW, FACE_HOG_CH, out + n);
	tr_l2_normalize(out + n, k);
	n += k;
	free(g);
	free(codes);
	if (n != self->dim)
	{
		snprintf(err, errlen, "feature size mismatch (%d, expected %d)", n, self->dim);
		return -1;
	}
	tr_l2_normalize(out, n);
	return 0;
}

static const tr_features face_v1 = {"face-lbp-hog-v1", FACE_DIM, face_extract, NULL, NULL};

/* ---------- landmark-colour-hog-v1 ---------- */

#define LM_SIDE 128
#define LM_COLOUR_BINS 64		/* 4 x 4 x 4 */
#define LM_PYR_CELLS 21			/* 1 + 4 + 16 */
#define LM_HOG_CELL 16
#define LM_DIM (LM_PYR_CELLS * LM_COLOUR_BINS + LM_PYR_CELLS * LBP_BINS + \
				(LM_SIDE / LM_HOG_CELL - 1) * (LM_SIDE / LM_HOG_CELL - 1) * 4 * HOG_BINS)

static int
landmark_extract(const tr_features *self, const tr_image *img, tr_box r, float *out,
				 char *err, size_t errlen)
{
	const int	np = LM_SIDE * LM_SIDE;
	float	   *rgb = malloc(sizeof(float) * np * 3);
	float	   *g = malloc(sizeof(float) * np);
	int		   *codes = malloc(sizeof(int) * np);
	int			n = 0,
				start,
				k;

	if (rgb == NULL || g == NULL || codes == NULL)
	{
		free(rgb);
		free(g);
		free(codes);
		snprintf(err, errlen, "out of memory extracting features");
		return -1;
	}
	for (int c = 0; c < 3; c++)
		tr_resample_channel(img, r, c, LM_SIDE, LM_SIDE, rgb + c * np);
	for (int i = 0; i < np; i++)
		g[i] = 0.299f * rgb[i] + 0.587f * rgb[np + i] + 0.114f * rgb[2 * np + i];

	/* Colour histograms on the pyramid. */
	start = n;
	for (int level = 1; level <= 4; level *= 2)
		for (int cy = 0; cy < level; cy++)
			for (int cx = 0; cx < level; cx++)
			{
				float	   *h = out + n;
				float		total = 0;

				memset(h, 0, sizeof(float) * LM_COLOUR_BINS);
				for (int y = cy * LM_SIDE / level; y < (cy + 1) * LM_SIDE / level; y++)
					for (int x = cx * LM_SIDE / level; x < (cx + 1) * LM_SIDE / level; x++)
					{
						int			i = y * LM_SIDE + x;
						int			rb = (int) (rgb[i] / 64.0f),
									gb = (int) (rgb[np + i] / 64.0f),
									bb = (int) (rgb[2 * np + i] / 64.0f);

						rb = rb > 3 ? 3 : rb;
						gb = gb > 3 ? 3 : gb;
						bb = bb > 3 ? 3 : bb;
						h[rb * 16 + gb * 4 + bb] += 1;
						total += 1;
					}
				for (int b = 0; b < LM_COLOUR_BINS; b++)
					h[b] = total > 0 ? sqrtf(h[b] / total) : 0;
				n += LM_COLOUR_BINS;
			}
	tr_l2_normalize(out + start, n - start);

	/* LBP on the pyramid. */
	lbp_codes(g, LM_SIDE, LM_SIDE, 1, codes);
	start = n;
	for (int level = 1; level <= 4; level *= 2)
		n += lbp_grid(codes, LM_SIDE, LM_SIDE, level, level, out + n);
	tr_l2_normalize(out + start, n - start);

	/* HOG. */
	k = hog(g, LM_SIDE, LM_SIDE, LM_HOG_CELL, LM_HOG_CELL, out + n);
	tr_l2_normalize(out + n, k);
	n += k;

	free(rgb);
	free(g);
	free(codes);
	if (n != self->dim)
	{
		snprintf(err, errlen, "feature size mismatch (%d, expected %d)", n, self->dim);
		return -1;
	}
	tr_l2_normalize(out, n);
	return 0;
}

static const tr_features landmark_v1 = {"landmark-colour-hog-v1", LM_DIM, landmark_extract, NULL, NULL};

/* ---------- registry ---------- */

#define MAX_KINDS 16

static const tr_features *kinds[MAX_KINDS] = {&face_v1, &landmark_v1};
static int	nkinds = 2;
static const tr_features *defaults[2] = {&face_v1, &landmark_v1};

const tr_features *
tr_features_default(int type)
{
	return (type == TR_FEATURES_LANDMARK) ? defaults[1] : defaults[0];
}

const tr_features *
tr_features_find(const char *name)
{
	for (int i = 0; i < nkinds; i++)
		if (strcmp(kinds[i]->name, name) == 0)
			return kinds[i];
	return NULL;
}

int
tr_features_register(const tr_features *f, int default_for_type)
{
	const tr_features *old = tr_features_find(f->name);

	if (old != NULL && old != f)
		return -1;
	if (old == NULL)
	{
		if (nkinds >= MAX_KINDS)
			return -1;
		kinds[nkinds++] = f;
	}
	if (default_for_type == TR_FEATURES_FACE || default_for_type == TR_FEATURES_LANDMARK)
		defaults[default_for_type] = f;
	return 0;
}
