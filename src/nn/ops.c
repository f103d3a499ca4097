/*
 * ops.c - the few tensor operations face-api's networks need, with
 * TensorFlow's padding rules: convolution (im2col + cblas_sgemm),
 * depthwise convolution, max / average pooling, activations, and the
 * input preparation of face-api's NetInput.
 */
#include "nn.h"

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

	if (nn_map_alloc(out, oh, ow, cout) != 0)
		return -1;
	m = oh * ow;
	pt += extra_pad;
	pl += extra_pad;

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
	for (int oy = 0; oy < oh; oy++)
		for (int ox = 0; ox < ow; ox++)
		{
			float	   *row = col + ((size_t) oy * ow + ox) * k;

			for (int ky = 0; ky < kh; ky++)
			{
				int			iy = oy * stride - pt + ky;

				for (int kx = 0; kx < kw; kx++)
				{
					int			ix = ox * stride - pl + kx;
					float	   *dst = row + (ky * kw + kx) * c;

					if (iy < 0 || iy >= in->h || ix < 0 || ix >= in->w)
						memset(dst, 0, c * sizeof(float));
					else
						memcpy(dst, in->d + ((size_t) iy * in->w + ix) * c,
							   c * sizeof(float));
				}
			}
		}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, cout, k,
				1.0f, col, k, filt, cout, 1.0f, out->d, cout);
	free(col);
	return 0;
}

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
	memset(out->d, 0, (size_t) oh * ow * c * sizeof(float));
	for (int oy = 0; oy < oh; oy++)
		for (int ox = 0; ox < ow; ox++)
		{
			float	   *o = out->d + ((size_t) oy * ow + ox) * c;

			for (int ky = 0; ky < kh; ky++)
			{
				int			iy = oy * stride - pt + ky;

				if (iy < 0 || iy >= in->h)
					continue;
				for (int kx = 0; kx < kw; kx++)
				{
					int			ix = ox * stride - pl + kx;
					const float *x,
							   *f;

					if (ix < 0 || ix >= in->w)
						continue;
					x = in->d + ((size_t) iy * in->w + ix) * c;
					f = filt + (size_t) (ky * kw + kx) * c;
					for (int ch = 0; ch < c; ch++)
						o[ch] += x[ch] * f[ch];
				}
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
						if (x[ch] > o[ch])
							o[ch] = x[ch];
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

	for (size_t i = 0; i < n; i++)
		if (m->d[i] < 0.0f)
			m->d[i] = 0.0f;
}

void
nn_leaky(nn_map *m, float alpha)
{
	size_t		n = (size_t) m->h * m->w * m->c;

	for (size_t i = 0; i < n; i++)
		if (m->d[i] < 0.0f)
			m->d[i] *= alpha;
}

/* Pixel channel of the zero-padded square image, as float. */
static inline float
padded_px(const uint8_t *rgb, int width, int height, int off_x, int off_y,
		  int y, int x, int ch)
{
	x -= off_x;
	y -= off_y;
	if (x < 0 || y < 0 || x >= width || y >= height)
		return 0.0f;
	return (float) rgb[((size_t) y * width + x) * 3 + ch];
}

int
nn_prepare(const uint8_t *rgb, int width, int height, int size, int center,
		   const float mean[3], nn_map *out)
{
	int			side = width > height ? width : height;
	int			diff = abs(width - height);
	/* padToSquare appends round(diff / 2) when centring, the rest before. */
	int			before = center ? diff - (int) floor(diff * 0.5 + 0.5) : 0;
	int			off_x = width < height ? before : 0;
	int			off_y = height < width ? before : 0;
	double		ratio = (double) side / size;
	float		m[3] = {mean[0], mean[1], mean[2]};

	if (width <= 0 || height <= 0 || size <= 0)
		return -1;
	if (nn_map_alloc(out, size, size, 3) != 0)
		return -1;
	for (int r = 0; r < size; r++)
	{
		double		fr = side == size ? r : ratio * r;
		int			r0 = (int) floor(fr);
		int			r1 = (int) ceil(fr);
		double		rf;

		if (r0 < 0)
			r0 = 0;
		rf = fr - r0;
		if (r1 > side - 1)
			r1 = side - 1;
		for (int c = 0; c < size; c++)
		{
			double		fc = side == size ? c : ratio * c;
			int			c0 = (int) floor(fc);
			int			c1 = (int) ceil(fc);
			double		cf;

			if (c0 < 0)
				c0 = 0;
			cf = fc - c0;
			if (c1 > side - 1)
				c1 = side - 1;
			for (int ch = 0; ch < 3; ch++)
			{
				double		tl = padded_px(rgb, width, height, off_x, off_y, r0, c0, ch);
				double		tr = padded_px(rgb, width, height, off_x, off_y, r0, c1, ch);
				double		bl = padded_px(rgb, width, height, off_x, off_y, r1, c0, ch);
				double		br = padded_px(rgb, width, height, off_x, off_y, r1, c1, ch);
				double		top = tl + (tr - tl) * cf;
				double		bot = bl + (br - bl) * cf;
				float		v = (float) (top + (bot - top) * rf);

				v = v - m[ch];
				out->d[((size_t) r * size + c) * 3 + ch] = v / 255.0f;
			}
		}
	}
	return 0;
}
