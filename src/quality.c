/*
 * quality.c: face region, grey resampling and Laplacian-variance sharpness.
 */
#include "quality.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int
tr_face_region(const tr_image *img, const int *box, tr_box *out)
{
	long		x0,
				y0,
				x1,
				y1;

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

/* Sparse resampling weights: output i reads src[first[i] .. first[i]+count[i]-1]. */
typedef struct axis_weights
{
	int		   *first;
	int		   *count;
	float	   *w;				/* count[i] weights from offset i*maxc */
	int			maxc;
} axis_weights;

static void
axis_build(int n, int m, axis_weights *a)
{
	a->maxc = (m < n) ? (n + m - 1) / m + 2 : 2;
	a->first = malloc(sizeof(int) * m);
	a->count = malloc(sizeof(int) * m);
	a->w = calloc((size_t) m * a->maxc, sizeof(float));
	for (int i = 0; i < m; i++)
	{
		float	   *w = a->w + (size_t) i * a->maxc;

		if (m == n)
		{
			a->first[i] = i;
			a->count[i] = 1;
			w[0] = 1.0f;
		}
		else if (m < n)
		{
			/* Area average over [i*n/m, (i+1)*n/m). */
			double		s0 = (double) i * n / m,
						s1 = (double) (i + 1) * n / m;
			int			j0 = (int) floor(s0),
						j1 = (int) ceil(s1);
			int			c = 0;

			if (j1 > n)
				j1 = n;
			a->first[i] = j0;
			for (int j = j0; j < j1 && c < a->maxc; j++, c++)
			{
				double		lo = j > s0 ? j : s0,
							hi = (j + 1) < s1 ? (j + 1) : s1;

				w[c] = (float) ((hi - lo) * m / n);
			}
			a->count[i] = c;
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
			w[0] = (float) (1.0 - f);
			w[1] = (float) f;
		}
	}
}

static void
axis_free(axis_weights *a)
{
	free(a->first);
	free(a->count);
	free(a->w);
}

void
tr_grey_resample(const tr_image *img, tr_box r, int ow, int oh, float *out)
{
	tr_resample_channel(img, r, -1, ow, oh, out);
}

void
tr_resample_channel(const tr_image *img, tr_box r, int channel, int ow, int oh, float *out)
{
	axis_weights ax,
				ay;
	float	   *row = malloc(sizeof(float) * r.w);
	float	   *tmp = malloc(sizeof(float) * (size_t) r.h * ow);
	int			c = img->channels;

	axis_build(r.w, ow, &ax);
	axis_build(r.h, oh, &ay);
	/* Horizontal pass on grey rows of the region. */
	for (int y = 0; y < r.h; y++)
	{
		const uint8_t *p = img->pixels + ((size_t) (r.y + y) * img->width + r.x) * c;

		if (c == 1)
			for (int x = 0; x < r.w; x++)
				row[x] = p[x];
		else if (channel >= 0 && channel < 3)
			for (int x = 0; x < r.w; x++)
				row[x] = p[3 * x + channel];
		else
			for (int x = 0; x < r.w; x++)
				row[x] = 0.299f * p[3 * x] + 0.587f * p[3 * x + 1] + 0.114f * p[3 * x + 2];
		for (int i = 0; i < ow; i++)
		{
			const float *w = ax.w + (size_t) i * ax.maxc;
			float		s = 0;

			for (int k = 0; k < ax.count[i]; k++)
				s += w[k] * row[ax.first[i] + k];
			tmp[(size_t) y * ow + i] = s;
		}
	}
	/* Vertical pass. */
	for (int j = 0; j < oh; j++)
	{
		const float *w = ay.w + (size_t) j * ay.maxc;
		float	   *o = out + (size_t) j * ow;

		for (int i = 0; i < ow; i++)
			o[i] = 0;
		for (int k = 0; k < ay.count[j]; k++)
		{
			const float *t = tmp + (size_t) (ay.first[j] + k) * ow;

			for (int i = 0; i < ow; i++)
				o[i] += w[k] * t[i];
		}
	}
	axis_free(&ax);
	axis_free(&ay);
	free(row);
	free(tmp);
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
		r = (tr_box) {0, 0, img->width, img->height};
	return r.w < r.h ? r.w : r.h;
}
