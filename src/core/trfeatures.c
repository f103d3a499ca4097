/*
 * trfeatures.c: classic features behind the tr_features interface.
 *
 * face-lbp-hog-v1: the grey face region resampled to 80x96; uniform LBP
 *   histograms (8 neighbours at radius 1 and 2) on a 7x7 grid, each cell
 *   Hellinger-normalised (square root of the normalised histogram); HOG
 *   (9 unsigned orientations, 10x12-pixel cells, 2x2-cell blocks, L2-Hys).
 * landmark-colour-hog-v1: joint RGB histograms (4x4x4 bins) of the image at
 *   64x64 and uniform-LBP histograms (radius 1 and 2) at 256x256, each on a
 *   1x1 + 2x2 + 4x4 spatial pyramid, and HOG (16-pixel cells) at 128x128.
 * Each part is scaled to unit L2 norm and the whole vector is then
 * L2-normalised, so that distances between vectors are in 0..2. Both kinds are
 * mirror-invariant: the features of the region and of its mirror image are summed.
 */
#include "trfeatures.h"
#include "deepfeat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GCC: no errno for sqrtf and friends in hot loops (arguments are never negative). */
#if defined(__GNUC__) && !defined(__clang__)
#define TR_FAST_MATH __attribute__((optimize("O3", "no-math-errno")))
#else
#define TR_FAST_MATH
#endif

#define LBP_BINS 59

static int	lbp_table[256];
static int	lbp_table_ready = 0;

static void
lbp_table_build(void)
{
	int		   *table = lbp_table;

	if (!lbp_table_ready)
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
		lbp_table_ready = 1;
	}
}

int
tr_lbp_uniform_bin(unsigned pattern)
{
	lbp_table_build();
	return lbp_table[pattern & 255];
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

/*
 * LBP codes (8 neighbours on a circle of radius rad, bilinear) of a w x h image;
 * -1 near the border. The sampling offsets and weights are the same for every
 * pixel, so they are computed once.
 */
TR_FAST_MATH
static void
lbp_codes(const float *g, int w, int h, int rad, int *codes)
{
	int			o00[8],
				o01[8],
				o10[8],
				o11[8];
	float		w00[8],
				w01[8],
				w10[8],
				w11[8];

	for (int k = 0; k < 8; k++)
	{
		double		a = 2 * M_PI * k / 8;
		double		dx = rad * cos(a),
					dy = -rad * sin(a);
		int			x0,
					y0;
		double		fx,
					fy;

		if (fabs(dx) < 1e-6)
			dx = 0;
		if (fabs(dy) < 1e-6)
			dy = 0;
		x0 = (int) floor(dx);
		y0 = (int) floor(dy);
		fx = dx - x0;
		fy = dy - y0;
		w00[k] = (float) ((1 - fx) * (1 - fy));
		w01[k] = (float) (fx * (1 - fy));
		w10[k] = (float) ((1 - fx) * fy);
		w11[k] = (float) (fx * fy);
		/* A term of weight 0 reads the o00 sample again: never outside the image. */
		o00[k] = y0 * w + x0;
		o01[k] = w01[k] != 0 ? y0 * w + x0 + 1 : o00[k];
		o10[k] = w10[k] != 0 ? (y0 + 1) * w + x0 : o00[k];
		o11[k] = w11[k] != 0 ? (y0 + 1) * w + x0 + 1 : o00[k];
	}
	lbp_table_build();
	for (int i = 0; i < w * h; i++)
		codes[i] = -1;
	for (int y = rad; y < h - rad; y++)
		for (int x = rad; x < w - rad; x++)
		{
			const float *p = g + y * w + x;
			float		c = p[0] + 1e-3f;
			unsigned	code = 0;

			for (int k = 0; k < 8; k++)
			{
				float		v = w00[k] * p[o00[k]] + w01[k] * p[o01[k]] +
					w10[k] * p[o10[k]] + w11[k] * p[o11[k]];

				code |= (unsigned) (v >= c) << k;
			}
			codes[y * w + x] = lbp_table[code];
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

/* atan2 by a minimax polynomial (error below 1e-5 rad): HOG binning needs no more. */
TR_FAST_MATH
static inline float
fast_atan2f(float y, float x)
{
	float		ax = fabsf(x),
				ay = fabsf(y);
	float		mx = ax > ay ? ax : ay,
				mn = ax > ay ? ay : ax;
	float		z,
				z2,
				a;

	if (mx == 0)
		return 0;
	z = mn / mx;
	z2 = z * z;
	a = z * (0.9998660f + z2 * (-0.3302995f + z2 * (0.1801410f + z2 * (-0.0851330f + z2 * 0.0208351f))));
	if (ay > ax)
		a = (float) M_PI_2 - a;
	if (x < 0)
		a = (float) M_PI - a;
	return y < 0 ? -a : a;
}

/* HOG: cells of cw x ch pixels, 2x2-cell blocks (stride 1 cell), L2-Hys. Returns floats written. */
TR_FAST_MATH
static int
hog(const float *g, int w, int h, int cw, int ch, float *out)
{
	int			ncx = w / cw,
				ncy = h / ch;
	float	   *cells = calloc((size_t) ncx * ncy * HOG_BINS, sizeof(float));
	int			n = 0;
	int		   *xl = malloc(sizeof(int) * w),
			   *xr = malloc(sizeof(int) * w),
			   *cx = malloc(sizeof(int) * w);

	/* Clamped neighbours and the cell of each column, once per image. */
	for (int x = 0; x < w; x++)
	{
		xl[x] = x > 0 ? x - 1 : x;
		xr[x] = x + 1 < w ? x + 1 : x;
		cx[x] = (x / cw) * HOG_BINS;
	}
	for (int y = 0; y < ncy * ch; y++)
	{
		const float *row = g + y * w,
				   *up = g + (y > 0 ? y - 1 : y) * w,
				   *dn = g + (y + 1 < h ? y + 1 : y) * w;
		float	   *crow = cells + (y / ch) * ncx * HOG_BINS;

		for (int x = 0; x < ncx * cw; x++)
		{
			float		gx = row[xr[x]] - row[xl[x]];
			float		gy = dn[x] - up[x];
			float		mag = sqrtf(gx * gx + gy * gy);
			float		ang = fast_atan2f(gy, gx);
			float		pos;
			int			b0,
						b1;
			float		f;
			float	   *cc = crow + cx[x];

			if (ang < 0)
				ang += (float) M_PI;
			pos = ang / (float) M_PI * HOG_BINS - 0.5f;
			if (pos < 0)
				pos += HOG_BINS;
			b0 = (int) pos;
			f = pos - b0;
			if (b0 >= HOG_BINS)
				b0 -= HOG_BINS;
			b1 = b0 + 1 < HOG_BINS ? b0 + 1 : 0;
			cc[b0] += mag * (1 - f);
			cc[b1] += mag * f;
		}
	}
	free(xl);
	free(xr);
	free(cx);
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

/* Features of one grey face image g (FACE_W x FACE_H) into out (dim floats, normalised). */
static int
face_from_grey(const tr_features *self, const float *g, int *codes, float *out, char *err, size_t errlen)
{
	int			n = 0,
				k;

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
	if (n != self->dim)
	{
		snprintf(err, errlen, "feature size mismatch (%d, expected %d)", n, self->dim);
		return -1;
	}
	tr_l2_normalize(out, n);
	return 0;
}

/*
 * The face resampled once; its features plus those of its mirror image (the
 * resampled grey image flipped, as resampling and mirroring commute).
 */
static int
face_extract(const tr_features *self, const tr_image *img, tr_box r, float *out,
			 char *err, size_t errlen)
{
	float	   *g = malloc(sizeof(float) * FACE_W * FACE_H);
	float	   *m = malloc(sizeof(float) * FACE_W * FACE_H);
	float	   *tmp = malloc(sizeof(float) * self->dim);
	int		   *codes = malloc(sizeof(int) * FACE_W * FACE_H);
	int			rc = -1;

	if (g == NULL || m == NULL || tmp == NULL || codes == NULL)
	{
		snprintf(err, errlen, "out of memory extracting features");
		goto out;
	}
	tr_grey_resample(img, r, FACE_W, FACE_H, g);
	for (int y = 0; y < FACE_H; y++)
		for (int x = 0; x < FACE_W; x++)
			m[y * FACE_W + x] = g[y * FACE_W + FACE_W - 1 - x];
	if (face_from_grey(self, g, codes, out, err, errlen) != 0 ||
		face_from_grey(self, m, codes, tmp, err, errlen) != 0)
		goto out;
	for (int i = 0; i < self->dim; i++)
		out[i] += tmp[i];
	tr_l2_normalize(out, self->dim);
	rc = 0;
out:
	free(g);
	free(m);
	free(tmp);
	free(codes);
	return rc;
}

static const tr_features face_v1 = {"face-lbp-hog-v1", FACE_DIM, face_extract, NULL, NULL, 0, NULL};

/* ---------- landmark-colour-hog-v1 ---------- */

#ifndef LM_COLOUR_SIDE
#define LM_COLOUR_SIDE 64
#endif
#ifndef LM_LBP_SIDE
#define LM_LBP_SIDE 256
#endif
#ifndef LM_LBP_RADII
#define LM_LBP_RADII 2
#endif
#ifndef LM_HOG_SIDE
#define LM_HOG_SIDE 128
#endif
#ifndef LM_HOG_CELL
#define LM_HOG_CELL 16
#endif
#define LM_COLOUR_BINS 64		/* 4 x 4 x 4 */
#define LM_PYR_CELLS 21			/* 1 + 4 + 16 */
#define LM_DIM (LM_PYR_CELLS * LM_COLOUR_BINS + LM_LBP_RADII * LM_PYR_CELLS * LBP_BINS + \
				(LM_HOG_SIDE / LM_HOG_CELL - 1) * (LM_HOG_SIDE / LM_HOG_CELL - 1) * 4 * HOG_BINS)

/* Features of region r of img, or (mirror = 1) of the region's mirror image. */
static int
landmark_extract_once(const tr_features *self, const tr_image *img, tr_box r, int mirror,
					  float *out, char *err, size_t errlen)
{
	const int	nc = LM_COLOUR_SIDE * LM_COLOUR_SIDE;
	const int	nl = LM_LBP_SIDE * LM_LBP_SIDE;
	const int	nh = LM_HOG_SIDE * LM_HOG_SIDE;
	float	   *rgb = malloc(sizeof(float) * nc * 3);
	float	   *g = malloc(sizeof(float) * (nl > nh ? nl : nh));
	int		   *codes = malloc(sizeof(int) * nl);
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
		tr_resample_view(img, r, c, mirror, LM_COLOUR_SIDE, LM_COLOUR_SIDE, rgb + c * nc);

	/* Colour histograms on the pyramid. */
	start = n;
	for (int level = 1; level <= 4; level *= 2)
		for (int cy = 0; cy < level; cy++)
			for (int cx = 0; cx < level; cx++)
			{
				float	   *h = out + n;
				float		total = 0;

				memset(h, 0, sizeof(float) * LM_COLOUR_BINS);
				for (int y = cy * LM_COLOUR_SIDE / level; y < (cy + 1) * LM_COLOUR_SIDE / level; y++)
					for (int x = cx * LM_COLOUR_SIDE / level; x < (cx + 1) * LM_COLOUR_SIDE / level; x++)
					{
						int			i = y * LM_COLOUR_SIDE + x;
						int			rb = (int) (rgb[i] / 64.0f),
									gb = (int) (rgb[nc + i] / 64.0f),
									bb = (int) (rgb[2 * nc + i] / 64.0f);

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

	/* LBP on the pyramid, at a finer resolution. */
	tr_resample_view(img, r, -1, mirror, LM_LBP_SIDE, LM_LBP_SIDE, g);
	start = n;
	for (int rad = 1; rad <= LM_LBP_RADII; rad++)
	{
		lbp_codes(g, LM_LBP_SIDE, LM_LBP_SIDE, rad, codes);
		for (int level = 1; level <= 4; level *= 2)
			n += lbp_grid(codes, LM_LBP_SIDE, LM_LBP_SIDE, level, level, out + n);
	}
	tr_l2_normalize(out + start, n - start);

	/* HOG. */
	tr_resample_view(img, r, -1, mirror, LM_HOG_SIDE, LM_HOG_SIDE, g);
	k = hog(g, LM_HOG_SIDE, LM_HOG_SIDE, LM_HOG_CELL, LM_HOG_CELL, out + n);
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

/*
 * Mirror-invariant features: the sum of the features of the region and of its
 * mirror image, L2-normalised. (Faces and buildings are near-symmetric; the
 * mirror image is what another viewpoint or a selfie camera shows.) The mirror
 * image is read in place (tr_resample_view), never copied.
 */
static int
landmark_extract(const tr_features *self, const tr_image *img, tr_box r, float *out,
				 char *err, size_t errlen)
{
	float	   *tmp = malloc(sizeof(float) * self->dim);
	int			rc;

	if (tmp == NULL)
	{
		snprintf(err, errlen, "out of memory extracting features");
		return -1;
	}
	rc = landmark_extract_once(self, img, r, 0, out, err, errlen);
	if (rc == 0)
		rc = landmark_extract_once(self, img, r, 1, tmp, err, errlen);
	if (rc == 0)
	{
		for (int i = 0; i < self->dim; i++)
			out[i] += tmp[i];
		tr_l2_normalize(out, self->dim);
	}
	free(tmp);
	return rc;
}

static const tr_features landmark_v1 = {"landmark-colour-hog-v1", LM_DIM, landmark_extract, NULL, NULL, 0, NULL};

/* ---------- registry ---------- */

#define MAX_KINDS 16

static const tr_features *kinds[MAX_KINDS] = {&face_v1, &landmark_v1, &tr_deep_kind, &tr_deep_aligned_kind};
static int	nkinds = 4;

const tr_features *
tr_features_default(int type)
{
	return (type == TR_FEATURES_LANDMARK) ? &landmark_v1 : &face_v1;
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
tr_features_register(const tr_features *f)
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
	return 0;
}
