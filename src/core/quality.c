/*
 * quality.c: face region, grey resampling and Laplacian-variance sharpness.
 */
#include "quality.h"
#include "interrupt.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

int
tr_face_region(const tr_image *img, const int *box, tr_box *out)
{
	long		x0,
				y0,
				x1,
				y1;

	out->dx = out->dy = 0;
	if (box == NULL)
	{
		out->x = 0;
		out->y = 0;
		out->w = img->width;
		out->h = img->height;
		return 0;
	}
	if (box[2] <= 0 || box[3] <= 0)
		return -1;
	x0 = box[0] < 0 ? 0 : box[0];
	y0 = box[1] < 0 ? 0 : box[1];
	x1 = (long) box[0] + box[2];
	y1 = (long) box[1] + box[3];
	if (x1 > img->width)
		x1 = img->width;
	if (y1 > img->height)
		y1 = img->height;
	if (x1 <= x0 || y1 <= y0)
		return -1;
	out->x = (int) x0;
	out->y = (int) y0;
	out->w = (int) (x1 - x0);
	out->h = (int) (y1 - y0);
	return 0;
}

/*
 * Resampling weights of one axis (n source pixels to m): output i reads
 * src[first[i] .. first[i]+count[i]-1] with weights w0[i], then wmid for
 * the inner pixels, then wlast[i] for the last one (count >= 2). Inner
 * pixels of an area average all weigh m / n, so nothing here grows with n.
 */
typedef struct axis_weights
{
	int		   *first;
	int		   *count;
	float	   *w0;
	float	   *wlast;
	float		wmid;
} axis_weights;

/* Weight of source pixel j in the area [s0, s1) of an output pixel. */
static float
area_weight(int j, double s0, double s1, int n, int m)
{
	double		lo = j > s0 ? j : s0,
				hi = (j + 1) < s1 ? (j + 1) : s1;

	return (float) ((hi - lo) * m / n);
}

static int
axis_build(int n, int m, axis_weights *a)
{
	a->first = malloc(sizeof(int) * m);
	a->count = malloc(sizeof(int) * m);
	a->w0 = malloc(sizeof(float) * m);
	a->wlast = malloc(sizeof(float) * m);
	a->wmid = (float) (1.0 * m / n);
	if (!a->first || !a->count || !a->w0 || !a->wlast)
		return -1;
	for (int i = 0; i < m; i++)
	{
		if (m == n)
		{
			a->first[i] = i;
			a->count[i] = 1;
			a->w0[i] = 1.0f;
			a->wlast[i] = 0.0f;
		}
		else if (m < n)
		{
			/* Area average over [i*n/m, (i+1)*n/m). */
			double		s0 = (double) i * n / m,
						s1 = (double) (i + 1) * n / m;
			int			j0 = (int) floor(s0),
						j1 = (int) ceil(s1);

			if (j1 > n)
				j1 = n;
			a->first[i] = j0;
			a->count[i] = j1 - j0;
			a->w0[i] = area_weight(j0, s0, s1, n, m);
			a->wlast[i] = area_weight(j1 - 1, s0, s1, n, m);
		}
		else
		{
			/* Bilinear with pixel centres aligned. */
			double		s = (i + 0.5) * n / m - 0.5;
			int			j0;
			double		f;

			if (s < 0)
				s = 0;
			if (s > n - 1)
				s = n - 1;
			j0 = (int) floor(s);
			f = s - j0;
			if (j0 >= n - 1)
			{
				j0 = n - 1;
				f = 0;
			}
			a->first[i] = j0;
			a->count[i] = (f > 0) ? 2 : 1;
			a->w0[i] = (float) (1.0 - f);
			a->wlast[i] = (float) f;
		}
	}
	return 0;
}

static void
axis_free(axis_weights *a)
{
	free(a->first);
	free(a->count);
	free(a->w0);
	free(a->wlast);
}

/* Weight k of output i. */
static inline float
axis_weight(const axis_weights *a, int i, int k)
{
	return k == 0 ? a->w0[i] : k == a->count[i] - 1 ? a->wlast[i] : a->wmid;
}

void
tr_grey_resample(const tr_image *img, tr_box r, int ow, int oh, float *out)
{
	tr_resample_view(img, r, -1, 0, ow, oh, out);
}

void
tr_resample_channel(const tr_image *img, tr_box r, int channel, int ow, int oh, float *out)
{
	tr_resample_view(img, r, channel, 0, ow, oh, out);
}

/*
 * Horizontal pass of region row y into ow floats, reading the pixels in place
 * (mirror: from the right). Same weights and order of additions as a pass over
 * a float copy of the row, so the same floats.
 */
#define RESAMPLE_ROW(VALUE) \
	for (int i = 0; i < ow; i++) \
	{ \
		int			n = ax->count[i]; \
		const uint8_t *q = base + (ptrdiff_t) ax->first[i] * step; \
		float		s = 0; \
\
		s += ax->w0[i] * (VALUE); \
		for (int k = 1; k < n - 1; k++) \
		{ \
			q += step; \
			s += ax->wmid * (VALUE); \
		} \
		if (n > 1) \
		{ \
			q = base + (ptrdiff_t) (ax->first[i] + n - 1) * step; \
			s += ax->wlast[i] * (VALUE); \
		} \
		t[i] = s; \
	}

static void
resample_row(const tr_image *img, tr_box r, int channel, int mirror, const axis_weights *ax,
			 int ow, int y, float *t)
{
	int			c = img->channels;
	const uint8_t *p = img->pixels + ((size_t) (r.y + y) * img->width + r.x) * c;
	const uint8_t *base = mirror ? p + (size_t) (r.w - 1) * c : p;
	ptrdiff_t	step = mirror ? -c : c;

	if (c == 1)
		RESAMPLE_ROW((float) q[0])
	else if (channel >= 0 && channel < 3)
		RESAMPLE_ROW((float) q[channel])
	else
		RESAMPLE_ROW(0.299f * q[0] + 0.587f * q[1] + 0.114f * q[2])
}

int
tr_resample_view(const tr_image *img, tr_box r, int channel, int mirror, int ow, int oh, float *out)
{
	axis_weights ax = {0},
				ay = {0};
	float	   *rows = malloc(sizeof(float) * 2 * ow);
	int			cached[2] = {-1, -1},
				next = 0,
				rc = -1;

	if (rows == NULL || axis_build(r.w, ow, &ax) != 0 || axis_build(r.h, oh, &ay) != 0)
		goto out;

	/*
	 * Output rows read source rows in nondecreasing order, each at most a few
	 * times in a row: the horizontal pass of the last two rows read is kept,
	 * never a pass of the whole region (memory is 2 x ow floats whatever the
	 * region's size).
	 */
	for (int j = 0; j < oh; j++)
	{
		float	   *o = out + (size_t) j * ow;

		/* An output row of a huge region reads many source rows: a cancel stops it (zeros out). */
		if (tr_interrupted())
			goto out;
		for (int i = 0; i < ow; i++)
			o[i] = 0;
		for (int k = 0; k < ay.count[j]; k++)
		{
			int			y = ay.first[j] + k;
			float		w = axis_weight(&ay, j, k);
			const float *t;

			if (cached[0] == y)
				t = rows;
			else if (cached[1] == y)
				t = rows + ow;
			else
			{
				resample_row(img, r, channel, mirror, &ax, ow, y, rows + (size_t) next * ow);
				cached[next] = y;
				t = rows + (size_t) next * ow;
				next ^= 1;
			}
			for (int i = 0; i < ow; i++)
				o[i] += w * t[i];
		}
	}
	rc = 0;
out:
	if (rc != 0)
		for (size_t i = 0; i < (size_t) ow * oh; i++)
			out[i] = 0;
	axis_free(&ax);
	axis_free(&ay);
	free(rows);
	return rc;
}

double
tr_laplacian_variance(const float *g, int w, int h)
{
	double		sum = 0,
				sum2 = 0;
	long		n = 0;

	for (int y = 1; y < h - 1; y++)
		for (int x = 1; x < w - 1; x++)
		{
			const float *p = g + (size_t) y * w + x;
			double		l = 4.0 * p[0] - p[-1] - p[1] - p[-w] - p[w];

			sum += l;
			sum2 += l * l;
			n++;
		}
	if (n == 0)
		return 0;
	sum /= n;
	return sum2 / n - sum * sum;
}

double
tr_sharpness(const tr_image *img, tr_box r)
{
	float		g[TR_SHARPNESS_SIDE * TR_SHARPNESS_SIDE];

	tr_grey_resample(img, r, TR_SHARPNESS_SIDE, TR_SHARPNESS_SIDE, g);
	return tr_laplacian_variance(g, TR_SHARPNESS_SIDE, TR_SHARPNESS_SIDE);
}

/*
 * The size min_face_size judges: the smaller side of the face region. A detected
 * face that fills most of the image (a face crop, such as ORL's) is judged by the
 * image, as the whole image is the face region of an undetected crop.
 */
int
tr_face_side(const tr_image *img, tr_box r, int detected)
{
	if (detected && r.w * 10 >= img->width * 6 && r.h * 10 >= img->height * 5)
		r = (tr_box) {0, 0, img->width, img->height, 0, 0};
	return r.w < r.h ? r.w : r.h;
}
