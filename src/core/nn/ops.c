/*
 * ops.c - the few tensor operations face-api's networks need, with
 * TensorFlow's padding rules: convolution (im2col + cblas_sgemm),
 * depthwise convolution, max / average pooling, activations, and the
 * input preparation of face-api's NetInput.
 */
/* The element-wise loops below rely on the vectorizer. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

#include "nn.h"
#include "interrupt.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int
nn_map_alloc(nn_map *m, int h, int w, int c)
{
	m->h = h;
	m->w = w;
	m->c = c;
	m->d = NULL;
	if (h <= 0 || w <= 0 || c <= 0)
		return -1;
	m->d = malloc((size_t) h * w * c * sizeof(float));
	return m->d ? 0 : -1;
}

void
nn_map_free(nn_map *m)
{
	free(m->d);
	m->d = NULL;
}

int
nn_out_size(int in, int k, int stride, nn_pad pad, int *pad_before)
{
	int			out;

	if (pad == NN_VALID)
	{
		*pad_before = 0;
		return in < k ? 0 : (in - k) / stride + 1;
	}
	out = (in + stride - 1) / stride;
	{
		int			total = (out - 1) * stride + k - in;

		*pad_before = total > 0 ? total / 2 : 0;
	}
	return out;
}

/* Multiply-adds x 2 of the convolutions run in this process, for the benches. */
static uint64_t flop_count;

uint64_t
nn_flops(void)
{
	return __atomic_load_n(&flop_count, __ATOMIC_RELAXED);
}

/*
 * Unfold the input for a convolution: one row per output pixel, (ky, kx, c)
 * per column, zeros where the window leaves the input.  The kw pixels of a
 * window row are adjacent in the input, so each window row is one copy.
 */
static void
im2col(const nn_map *in, int kh, int kw, int stride, int pt, int pl, int oh, int ow,
	   float *col)
{
	int			c = in->c;
	size_t		k = (size_t) kh * kw * c;

	for (int oy = 0; oy < oh; oy++)
		for (int ox = 0; ox < ow; ox++)
		{
			float	   *row = col + ((size_t) oy * ow + ox) * k;
			int			ix0 = ox * stride - pl;
			int			lo = ix0 < 0 ? -ix0 : 0;	/* first kx inside the input */
			int			hi = in->w - ix0;	/* one past the last */

			if (hi > kw)
				hi = kw;
			if (hi < lo)
				hi = lo;
			for (int ky = 0; ky < kh; ky++)
			{
				float	   *dst = row + (size_t) ky * kw * c;
				int			iy = oy * stride - pt + ky;

				if (iy < 0 || iy >= in->h || hi == lo)
				{
					memset(dst, 0, (size_t) kw * c * sizeof(float));
					continue;
				}
				if (lo > 0)
					memset(dst, 0, (size_t) lo * c * sizeof(float));
				memcpy(dst + (size_t) lo * c, in->d + ((size_t) iy * in->w + ix0 + lo) * c,
					   (size_t) (hi - lo) * c * sizeof(float));
				if (hi < kw)
					memset(dst + (size_t) hi * c, 0, (size_t) (kw - hi) * c * sizeof(float));
			}
		}
}

int
nn_conv2d(const nn_map *in, const float *filt, int kh, int kw, int cout,
		  const float *bias, int stride, nn_pad pad, int extra_pad, nn_map *out)
{
	int			pt,
				pl;
	int			oh = nn_out_size(in->h + 2 * extra_pad, kh, stride, pad, &pt);
	int			ow = nn_out_size(in->w + 2 * extra_pad, kw, stride, pad, &pl);
	int			c = in->c;
	int			m,
				k = kh * kw * c;
	float	   *col;

	/* A layer at a time: a cancel request (interrupt.h) fails the network, whose caller reports it. */
	if (tr_interrupted() || nn_map_alloc(out, oh, ow, cout) != 0)
		return -1;
	m = oh * ow;
	pt += extra_pad;
	pl += extra_pad;
	__atomic_add_fetch(&flop_count, (uint64_t) 2 * m * cout * k, __ATOMIC_RELAXED);

	/* Start from the bias, then accumulate the product. */
	for (int i = 0; i < m; i++)
	{
		if (bias)
			memcpy(out->d + (size_t) i * cout, bias, cout * sizeof(float));
		else
			memset(out->d + (size_t) i * cout, 0, cout * sizeof(float));
	}

	if (kh == 1 && kw == 1 && stride == 1 && pt == 0 && pl == 0)
	{
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, cout, c,
					1.0f, in->d, c, filt, cout, 1.0f, out->d, cout);
		return 0;
	}

	/* im2col: one row per output pixel, (ky, kx, c) per column. */
	col = malloc((size_t) m * k * sizeof(float));
	if (!col)
	{
		nn_map_free(out);
		return -1;
	}
	im2col(in, kh, kw, stride, pt, pl, oh, ow, col);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, cout, k,
				1.0f, col, k, filt, cout, 1.0f, out->d, cout);
	free(col);
	return 0;
}

/* Channels a depthwise convolution sums at once. */
#define DW_BLOCK 16

int
nn_depthwise(const nn_map *in, const float *filt, int kh, int kw, int stride,
			 nn_pad pad, int extra_pad, nn_map *out)
{
	int			pt,
				pl;
	int			oh = nn_out_size(in->h + 2 * extra_pad, kh, stride, pad, &pt);
	int			ow = nn_out_size(in->w + 2 * extra_pad, kw, stride, pad, &pl);
	int			c = in->c;

	if (nn_map_alloc(out, oh, ow, c) != 0)
		return -1;
	pt += extra_pad;
	pl += extra_pad;
	__atomic_add_fetch(&flop_count, (uint64_t) 2 * oh * ow * c * kh * kw, __ATOMIC_RELAXED);
	for (int oy = 0; oy < oh; oy++)
		for (int ox = 0; ox < ow; ox++)
		{
			float	   *o = out->d + ((size_t) oy * ow + ox) * c;
			int			iy0 = oy * stride - pt,
						ix0 = ox * stride - pl;
			int			ky0 = iy0 < 0 ? -iy0 : 0,
						kx0 = ix0 < 0 ? -ix0 : 0;
			int			ky1 = in->h - iy0 < kh ? in->h - iy0 : kh,
						kx1 = in->w - ix0 < kw ? in->w - ix0 : kw;
			int			ch = 0;

			/*
			 * A block of channels at a time, summed in registers over the
			 * window (taps in the same order as one at a time, so the sums
			 * are bit-identical).
			 */
			for (; ch + DW_BLOCK <= c; ch += DW_BLOCK)
			{
				float		acc[DW_BLOCK] = {0};

				for (int ky = ky0; ky < ky1; ky++)
					for (int kx = kx0; kx < kx1; kx++)
					{
						const float *x = in->d + ((size_t) (iy0 + ky) * in->w + ix0 + kx) * c + ch;
						const float *f = filt + (size_t) (ky * kw + kx) * c + ch;

						for (int j = 0; j < DW_BLOCK; j++)
							acc[j] += x[j] * f[j];
					}
				memcpy(o + ch, acc, sizeof(acc));
			}
			for (; ch < c; ch++)
			{
				float		acc = 0.0f;

				for (int ky = ky0; ky < ky1; ky++)
					for (int kx = kx0; kx < kx1; kx++)
						acc += in->d[((size_t) (iy0 + ky) * in->w + ix0 + kx) * c + ch] *
							filt[(size_t) (ky * kw + kx) * c + ch];
				o[ch] = acc;
			}
		}
	return 0;
}

int
nn_maxpool(const nn_map *in, int k, int stride, nn_pad pad, nn_map *out)
{
	int			pt,
				pl;
	int			oh = nn_out_size(in->h, k, stride, pad, &pt);
	int			ow = nn_out_size(in->w, k, stride, pad, &pl);
	int			c = in->c;

	if (nn_map_alloc(out, oh, ow, c) != 0)
		return -1;
	for (int oy = 0; oy < oh; oy++)
		for (int ox = 0; ox < ow; ox++)
		{
			float	   *o = out->d + ((size_t) oy * ow + ox) * c;

			for (int ch = 0; ch < c; ch++)
				o[ch] = -FLT_MAX;
			/* Padded positions never win (TensorFlow pads with -inf). */
			for (int ky = 0; ky < k; ky++)
			{
				int			iy = oy * stride - pt + ky;

				if (iy < 0 || iy >= in->h)
					continue;
				for (int kx = 0; kx < k; kx++)
				{
					int			ix = ox * stride - pl + kx;
					const float *x;

					if (ix < 0 || ix >= in->w)
						continue;
					x = in->d + ((size_t) iy * in->w + ix) * c;
					for (int ch = 0; ch < c; ch++)
						o[ch] = x[ch] > o[ch] ? x[ch] : o[ch];
				}
			}
		}
	return 0;
}

int
nn_avgpool_valid(const nn_map *in, int k, int stride, nn_map *out)
{
	int			p;
	int			oh = nn_out_size(in->h, k, stride, NN_VALID, &p);
	int			ow = nn_out_size(in->w, k, stride, NN_VALID, &p);
	int			c = in->c;

	if (nn_map_alloc(out, oh, ow, c) != 0)
		return -1;
	memset(out->d, 0, (size_t) oh * ow * c * sizeof(float));
	for (int oy = 0; oy < oh; oy++)
		for (int ox = 0; ox < ow; ox++)
		{
			float	   *o = out->d + ((size_t) oy * ow + ox) * c;

			for (int ky = 0; ky < k; ky++)
				for (int kx = 0; kx < k; kx++)
				{
					const float *x = in->d +
						((size_t) (oy * stride + ky) * in->w + ox * stride + kx) * c;

					for (int ch = 0; ch < c; ch++)
						o[ch] += x[ch];
				}
			for (int ch = 0; ch < c; ch++)
				o[ch] /= (float) (k * k);
		}
	return 0;
}

void
nn_relu(nn_map *m)
{
	size_t		n = (size_t) m->h * m->w * m->c;
	float	   *restrict d = m->d;

	for (size_t i = 0; i < n; i++)
		d[i] = d[i] > 0.0f ? d[i] : 0.0f;
}

void
nn_leaky(nn_map *m, float alpha)
{
	size_t		n = (size_t) m->h * m->w * m->c;
	float	   *restrict d = m->d;

	/* max(v, alpha v) is v for v >= 0 and alpha v below (0 < alpha < 1): branch-free. */
	for (size_t i = 0; i < n; i++)
	{
		float		v = d[i],
					s = v * alpha;

		d[i] = v > s ? v : s;
	}
}

/* Source index pair and fraction of tf.image.resizeBilinear (no half pixel). */
void
nn_resize_index(int out, int side, int size, int *i0, int *i1, double *frac)
{
	double		f = side == size ? out : ((double) side / size) * out;
	int			lo = (int) floor(f);
	int			hi = (int) ceil(f);

	if (lo < 0)
		lo = 0;
	if (hi > side - 1)
		hi = side - 1;
	*i0 = lo;
	*i1 = hi;
	*frac = f - lo;
}

/*
 * Byte offset in the image of a position of the padded square (-1: zero
 * padding).  The square has side `side`, the bordered image starts at off
 * and is len + 2 * border long; border positions repeat the edge pixels.
 */
static long
square_to_image(int p, int off, int len, int border)
{
	int			b = p - off;

	if (b < 0 || b >= len + 2 * border)
		return -1;
	b -= border;
	return b < 0 ? 0 : b >= len ? len - 1 : b;
}

int
nn_prepare_image(const nn_image *im, int border, int size, int center,
				 const float mean[3], nn_map *out)
{
	int			width,
				height,
				side,
				diff,
				before,
				off_x,
				off_y,
				ch3;
	size_t		stride;
	float		m[3] = {mean[0], mean[1], mean[2]};
	long	   *ci;
	double	   *cf;

	if (!im || !im->pixels || im->width <= 0 || im->height <= 0 || size <= 0 || border < 0 ||
		(im->channels != 1 && im->channels != 3) ||
		(long) im->width + 2L * border > 1L << 30 || (long) im->height + 2L * border > 1L << 30)
		return -1;
	width = im->width + 2 * border;
	height = im->height + 2 * border;
	side = width > height ? width : height;
	diff = abs(width - height);
	/* padToSquare appends round(diff / 2) when centring, the rest before. */
	before = center ? diff - (int) floor(diff * 0.5 + 0.5) : 0;
	off_x = width < height ? before : 0;
	off_y = height < width ? before : 0;
	ch3 = im->channels == 3;
	stride = im->stride ? im->stride : (size_t) im->width * im->channels;
	if (nn_map_alloc(out, size, size, 3) != 0)
		return -1;
	ci = malloc(sizeof(long) * 2 * size);
	cf = malloc(sizeof(double) * size);
	if (!ci || !cf)
	{
		free(ci);
		free(cf);
		nn_map_free(out);
		return -1;
	}
	/* Columns of the padded square as byte offsets in an image row (-1: padding). */
	for (int c = 0; c < size; c++)
	{
		int			c0,
					c1;
		long		x0,
					x1;

		nn_resize_index(c, side, size, &c0, &c1, &cf[c]);
		x0 = square_to_image(c0, off_x, im->width, border);
		x1 = square_to_image(c1, off_x, im->width, border);
		ci[2 * c] = x0 < 0 ? -1 : x0 * im->channels;
		ci[2 * c + 1] = x1 < 0 ? -1 : x1 * im->channels;
	}
	for (int r = 0; r < size; r++)
	{
		int			r0,
					r1;
		long		y0,
					y1;
		double		rf;
		const uint8_t *row0,
				   *row1;

		nn_resize_index(r, side, size, &r0, &r1, &rf);
		y0 = square_to_image(r0, off_y, im->height, border);
		y1 = square_to_image(r1, off_y, im->height, border);
		row0 = y0 < 0 ? NULL : im->pixels + (size_t) y0 * stride;
		row1 = y1 < 0 ? NULL : im->pixels + (size_t) y1 * stride;
		for (int c = 0; c < size; c++)
		{
			long		c0 = ci[2 * c],
						c1 = ci[2 * c + 1];
			float	   *o = out->d + ((size_t) r * size + c) * 3;

			for (int ch = 0; ch < 3; ch++)
			{
				int			k = ch3 ? ch : 0;

				/* Padding pixels are 0, as in padToSquare. */
				double		tl = (row0 && c0 >= 0) ? row0[c0 + k] : 0.0;
				double		tr = (row0 && c1 >= 0) ? row0[c1 + k] : 0.0;
				double		bl = (row1 && c0 >= 0) ? row1[c0 + k] : 0.0;
				double		br = (row1 && c1 >= 0) ? row1[c1 + k] : 0.0;
				double		top = tl + (tr - tl) * cf[c];
				double		bot = bl + (br - bl) * cf[c];
				float		v = (float) (top + (bot - top) * rf);

				v = v - m[ch];
				o[ch] = v / 255.0f;
			}
		}
	}
	free(ci);
	free(cf);
	return 0;
}

int
nn_prepare(const uint8_t *rgb, int width, int height, int size, int center,
		   const float mean[3], nn_map *out)
{
	nn_image	im = {rgb, width, height, 3, 0};

	return nn_prepare_image(&im, 0, size, center, mean, out);
}

int
nn_separable(const nn_weights *w, const char *prefix, const nn_map *x, int stride,
			 nn_map *out, char *err)
{
	const nn_tensor *dw = nn_weights_getf(w, err, "%s/depthwise_filter", prefix);
	const nn_tensor *pw = dw ? nn_weights_getf(w, err, "%s/pointwise_filter", prefix) : NULL;
	const nn_tensor *b = pw ? nn_weights_getf(w, err, "%s/bias", prefix) : NULL;
	nn_map		d;
	int			rc;

	if (!b)
		return -1;
	if (dw->size != (size_t) 9 * x->c || pw->ndim != 4 || pw->shape[2] != x->c ||
		b->size != (size_t) pw->shape[3])
		return nn_fail(err, "layer \"%s\" does not match its input", prefix);
	if (nn_depthwise(x, dw->data, 3, 3, stride, NN_SAME, 0, &d) != 0)
		return nn_fail(err, "out of memory in layer \"%s\"", prefix);
	rc = nn_conv2d(&d, pw->data, 1, 1, pw->shape[3], b->data, 1, NN_VALID, 0, out);
	nn_map_free(&d);
	return rc != 0 ? nn_fail(err, "out of memory in layer \"%s\"", prefix) : 0;
}
