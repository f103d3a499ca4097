/*
 * test_nn.c - unit tests of the pure C network code (src/nn): the tfjs
 * weights loader and the convolution / pooling operations against direct
 * reference loops with TensorFlow's padding rules.
 */
#include "unit.h"
#include "nn/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static float
frand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return ((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void
fill(nn_map *m, int h, int w, int c, unsigned seed)
{
	nn_map_alloc(m, h, w, c);
	for (int i = 0; i < h * w * c; i++)
		m->d[i] = frand(&seed);
}

/* Direct convolution with explicit leading pads, zero outside. */
static float
ref_conv_at(const nn_map *in, const float *f, int kh, int kw, int cout,
			int stride, int pt, int pl, int oy, int ox, int o)
{
	double		s = 0;

	for (int ky = 0; ky < kh; ky++)
		for (int kx = 0; kx < kw; kx++)
		{
			int			iy = oy * stride - pt + ky,
						ix = ox * stride - pl + kx;

			if (iy < 0 || ix < 0 || iy >= in->h || ix >= in->w)
				continue;
			for (int c = 0; c < in->c; c++)
				s += in->d[(iy * in->w + ix) * in->c + c] * f[((ky * kw + kx) * in->c + c) * cout + o];
		}
	return (float) s;
}

static void
test_out_size(void)
{
	int			p;

	UNIT_ASSERT(nn_out_size(150, 7, 2, NN_VALID, &p) == 72 && p == 0);
	UNIT_ASSERT(nn_out_size(35, 3, 2, NN_VALID, &p) == 17);
	UNIT_ASSERT(nn_out_size(207, 2, 2, NN_SAME, &p) == 104 && p == 0);
	UNIT_ASSERT(nn_out_size(13, 2, 1, NN_SAME, &p) == 13 && p == 0);
	UNIT_ASSERT(nn_out_size(8, 3, 1, NN_SAME, &p) == 8 && p == 1);
	/* SAME with an even input and odd kernel, stride 2: pad 1 total, 0 before. */
	UNIT_ASSERT(nn_out_size(56, 3, 2, NN_SAME, &p) == 28 && p == 0);
	UNIT_ASSERT(nn_out_size(57, 3, 2, NN_SAME, &p) == 29 && p == 1);
	UNIT_ASSERT(nn_out_size(2, 3, 1, NN_VALID, &p) == 0);
}

static void
check_conv(int h, int w, int c, int k, int cout, int stride, nn_pad pad, int extra)
{
	nn_map		in,
				out;
	unsigned	seed = 7;
	float	   *f = malloc(sizeof(float) * k * k * c * cout);
	float	   *b = malloc(sizeof(float) * cout);
	int			pt,
				pl;
	double		maxd = 0;

	fill(&in, h, w, c, 3);
	for (int i = 0; i < k * k * c * cout; i++)
		f[i] = frand(&seed);
	for (int i = 0; i < cout; i++)
		b[i] = frand(&seed);
	UNIT_ASSERT(nn_conv2d(&in, f, k, k, cout, b, stride, pad, extra, &out) == 0);
	UNIT_ASSERT(out.h == nn_out_size(h + 2 * extra, k, stride, pad, &pt));
	UNIT_ASSERT(out.w == nn_out_size(w + 2 * extra, k, stride, pad, &pl));
	for (int oy = 0; oy < out.h; oy++)
		for (int ox = 0; ox < out.w; ox++)
			for (int o = 0; o < cout; o++)
			{
				float		r = b[o] + ref_conv_at(&in, f, k, k, cout, stride, pt + extra, pl + extra, oy, ox, o);

				maxd = fmax(maxd, fabs(r - out.d[(oy * out.w + ox) * cout + o]));
			}
	UNIT_ASSERT(maxd < 1e-4);
	nn_map_free(&in);
	nn_map_free(&out);
	free(f);
	free(b);
}

static void
test_conv(void)
{
	check_conv(9, 7, 3, 3, 4, 1, NN_SAME, 0);
	check_conv(9, 8, 3, 3, 5, 2, NN_SAME, 0);
	check_conv(15, 15, 2, 7, 3, 2, NN_VALID, 0);
	check_conv(6, 5, 4, 3, 2, 1, NN_VALID, 1);	/* tf.pad 1 + VALID */
	check_conv(6, 5, 8, 1, 6, 1, NN_VALID, 0);	/* pointwise, sgemm only */
	check_conv(6, 6, 8, 1, 6, 2, NN_SAME, 0);	/* strided 1x1 */
}

static void
test_depthwise(void)
{
	nn_map		in,
				out;
	unsigned	seed = 11;
	float		f[3 * 3 * 5];
	double		maxd = 0;
	int			pt,
				pl;

	fill(&in, 7, 6, 5, 5);
	for (int i = 0; i < 45; i++)
		f[i] = frand(&seed);
	UNIT_ASSERT(nn_depthwise(&in, f, 3, 3, 2, NN_SAME, 0, &out) == 0);
	nn_out_size(7, 3, 2, NN_SAME, &pt);
	nn_out_size(6, 3, 2, NN_SAME, &pl);
	UNIT_ASSERT(out.h == 4 && out.w == 3 && out.c == 5);
	for (int oy = 0; oy < out.h; oy++)
		for (int ox = 0; ox < out.w; ox++)
			for (int c = 0; c < 5; c++)
			{
				double		s = 0;

				for (int ky = 0; ky < 3; ky++)
					for (int kx = 0; kx < 3; kx++)
					{
						int			iy = oy * 2 - pt + ky,
									ix = ox * 2 - pl + kx;

						if (iy >= 0 && ix >= 0 && iy < 7 && ix < 6)
							s += in.d[(iy * 6 + ix) * 5 + c] * f[(ky * 3 + kx) * 5 + c];
					}
				maxd = fmax(maxd, fabs(s - out.d[(oy * 3 + ox) * 5 + c]));
			}
	UNIT_ASSERT(maxd < 1e-5);
	nn_map_free(&in);
	nn_map_free(&out);
}

static void
test_pool(void)
{
	nn_map		in,
				out;

	/* All negative: SAME max pooling must never pick the padding. */
	nn_map_alloc(&in, 3, 3, 1);
	for (int i = 0; i < 9; i++)
		in.d[i] = -1.0f - i;
	UNIT_ASSERT(nn_maxpool(&in, 2, 2, NN_SAME, &out) == 0);
	UNIT_ASSERT(out.h == 2 && out.w == 2);
	UNIT_ASSERT(out.d[0] == -1.0f && out.d[1] == -3.0f && out.d[2] == -7.0f && out.d[3] == -9.0f);
	nn_map_free(&out);
	UNIT_ASSERT(nn_avgpool_valid(&in, 2, 2, &out) == 0);
	UNIT_ASSERT(out.h == 1 && out.w == 1 && fabsf(out.d[0] + 3.0f) < 1e-6);
	nn_map_free(&out);
	nn_map_free(&in);
}

static void
test_prepare(void)
{
	/* 1 wide, 3 high: centred padding puts the column in the middle. */
	uint8_t		rgb[9] = {30, 30, 30, 60, 60, 60, 90, 90, 90};
	const float mean[3] = {0, 0, 0};
	nn_map		m;

	UNIT_ASSERT(nn_prepare(rgb, 1, 3, 3, 1, mean, &m) == 0);
	UNIT_ASSERT(m.d[(0 * 3 + 0) * 3] == 0.0f && fabsf(m.d[(0 * 3 + 1) * 3] - 30 / 255.0f) < 1e-7);
	UNIT_ASSERT(fabsf(m.d[(2 * 3 + 1) * 3 + 2] - 90 / 255.0f) < 1e-7 && m.d[(2 * 3 + 2) * 3] == 0.0f);
	nn_map_free(&m);
	/* Not centred: padding goes to the right; resized 3 -> 6 by halves. */
	UNIT_ASSERT(nn_prepare(rgb, 1, 3, 6, 0, mean, &m) == 0);
	UNIT_ASSERT(fabsf(m.d[0] - 30 / 255.0f) < 1e-7);
	UNIT_ASSERT(fabsf(m.d[(1 * 6 + 0) * 3] - 45 / 255.0f) < 1e-6);	/* row 0.5 */
	UNIT_ASSERT(fabsf(m.d[(0 * 6 + 1) * 3] - 15 / 255.0f) < 1e-6);	/* column 0.5 */
	nn_map_free(&m);
	UNIT_ASSERT(nn_prepare(rgb, 0, 3, 6, 0, mean, &m) != 0);
}

static void
test_weights(void)
{
	char		dir[] = "/tmp/nn-unit-XXXXXX";
	char		path[256];
	char		err[NN_ERRLEN];
	nn_weights	w;
	FILE	   *f;
	float		fl[2] = {1.5f, -2.25f};
	unsigned char q[4] = {0, 1, 2, 255};
	const char *manifest =
		"[{\"paths\":[\"m.bin\"],\"weights\":["
		"{\"name\":\"a\",\"shape\":[2,2],\"dtype\":\"float32\","
		"\"quantization\":{\"dtype\":\"uint8\",\"scale\":0.5,\"min\":-1}},"
		"{\"name\":\"b\",\"shape\":[2],\"dtype\":\"float32\"}]}]";

	UNIT_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/m.bin", dir);
	f = fopen(path, "wb");
	fwrite(q, 1, 4, f);
	fwrite(fl, 4, 2, f);
	fclose(f);

	UNIT_ASSERT(nn_weights_parse(manifest, dir, &w, err) == 0);
	UNIT_ASSERT(w.n == 2 && w.bytes == 6 * sizeof(float));
	{
		const nn_tensor *a = nn_weights_find(&w, "a", 4, err);
		const nn_tensor *b = nn_weights_find(&w, "b", 2, err);

		UNIT_ASSERT(a && a->ndim == 2 && a->shape[0] == 2);
		UNIT_ASSERT(a && a->data[0] == -1.0f && a->data[1] == -0.5f && a->data[3] == 126.5f);
		UNIT_ASSERT(b && b->data[0] == 1.5f && b->data[1] == -2.25f);
		UNIT_ASSERT(nn_weights_find(&w, "b", 3, err) == NULL && strstr(err, "expected 3"));
		UNIT_ASSERT(nn_weights_find(&w, "c", 0, err) == NULL && strstr(err, "missing"));
	}
	nn_weights_free(&w);

	/* A truncated shard, a missing shard and a missing manifest are errors. */
	f = fopen(path, "wb");
	fwrite(q, 1, 4, f);
	fclose(f);
	UNIT_ASSERT(nn_weights_parse(manifest, dir, &w, err) != 0 && strstr(err, "too short"));
	UNIT_ASSERT(unlink(path) == 0);
	UNIT_ASSERT(nn_weights_parse(manifest, dir, &w, err) != 0 && strstr(err, "m.bin"));
	UNIT_ASSERT(nn_weights_load(dir, "face_recognition_model", &w, err) != 0 &&
				strstr(err, "face_recognition_model-weights_manifest.json"));
	UNIT_ASSERT(nn_weights_parse("{\"x\":1}", dir, &w, err) != 0);
	UNIT_ASSERT(nn_weights_parse("[{\"paths\":[\"../etc/passwd\"],\"weights\":[]}]", dir, &w, err) != 0);
	{
		nn_facenet	fn;

		UNIT_ASSERT(nn_facenet_load(&fn, dir, err) != 0 && strstr(err, "could not open"));
	}
	rmdir(dir);
}

static void
test_crop(void)
{
	nn_box		b = {-5.5, 10.7, 50.9, 200.2, 0.9, 0, 0};
	int			r[4];
	uint8_t		img[4 * 3 * 3];
	uint8_t    *c;

	/* Clipped to the image, then floored, as face-api's extractFaceTensors. */
	UNIT_ASSERT(nn_crop_rect(&b, 100, 120, r) == 1);
	UNIT_ASSERT(r[0] == 0 && r[1] == 10 && r[2] == 45 && r[3] == 109);
	b.x = 150;
	UNIT_ASSERT(nn_crop_rect(&b, 100, 120, r) == 0);
	for (int i = 0; i < 36; i++)
		img[i] = (uint8_t) i;
	r[0] = 1;
	r[1] = 1;
	r[2] = 2;
	r[3] = 2;
	c = nn_crop_rgb(img, 4, r);
	UNIT_ASSERT(c && c[0] == 15 && c[3] == 18 && c[6] == 27 && c[11] == 32);
	free(c);
}

void
unit_nn(void)
{
	test_crop();
	test_out_size();
	test_conv();
	test_depthwise();
	test_pool();
	test_prepare();
	test_weights();
}
