/*
 * facenet.c - face-api's FaceRecognitionNet (a ResNet-34 like network from
 * dlib, 150x150 input) computing a 128-d face descriptor.
 */
#include "nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float facenet_mean[3] = {122.782f, 117.001f, 104.298f};

/* conv + bias, then the scale layer (x * weights + biases), then ReLU. */
static int
conv_layer(const nn_facenet *net, const char *prefix, const nn_map *in,
		   int stride, nn_pad pad, int relu, nn_map *out, char *err)
{
	const nn_tensor *f = nn_weights_getf(&net->w, err, "%s/conv/filters", prefix);
	const nn_tensor *b = f ? nn_weights_getf(&net->w, err, "%s/conv/bias", prefix) : NULL;
	const nn_tensor *sw = b ? nn_weights_getf(&net->w, err, "%s/scale/weights", prefix) : NULL;
	const nn_tensor *sb = sw ? nn_weights_getf(&net->w, err, "%s/scale/biases", prefix) : NULL;
	int			cout;
	size_t		n;

	if (!sb)
		return -1;
	if (f->ndim != 4 || f->shape[2] != in->c)
		return nn_fail(err, "tensor \"%s/conv/filters\" does not match its input", prefix);
	cout = f->shape[3];
	if ((int) b->size != cout || (int) sw->size != cout || (int) sb->size != cout)
		return nn_fail(err, "layer \"%s\" has inconsistent tensor sizes", prefix);
	if (nn_conv2d(in, f->data, f->shape[0], f->shape[1], cout, b->data,
				  stride, pad, 0, out) != 0)
		return nn_fail(err, "out of memory in layer \"%s\"", prefix);
	n = (size_t) out->h * out->w;
	for (size_t i = 0; i < n; i++)
	{
		float	   *restrict o = out->d + i * cout;
		const float *restrict w = sw->data;
		const float *restrict bias = sb->data;

		for (int c = 0; c < cout; c++)
			o[c] = o[c] * w[c] + bias[c];
		if (relu)
			for (int c = 0; c < cout; c++)
				o[c] = o[c] < 0.0f ? 0.0f : o[c];
	}
	return 0;
}

/* relu(conv2(relu(conv1(x))) + x) */
static int
residual(const nn_facenet *net, const char *name, nn_map *x, char *err)
{
	char		p[128];
	nn_map		a,
				b;
	size_t		n;

	snprintf(p, sizeof(p), "%s/conv1", name);
	if (conv_layer(net, p, x, 1, NN_SAME, 1, &a, err) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/conv2", name);
	if (conv_layer(net, p, &a, 1, NN_SAME, 0, &b, err) != 0)
	{
		nn_map_free(&a);
		return -1;
	}
	nn_map_free(&a);
	if (b.h != x->h || b.w != x->w || b.c != x->c)
	{
		nn_map_free(&b);
		return nn_fail(err, "residual block \"%s\" changes the shape", name);
	}
	n = (size_t) b.h * b.w * b.c;
	{
		float	   *restrict xd = x->d;
		const float *restrict bd = b.d;

		for (size_t i = 0; i < n; i++)
		{
			float		v = bd[i] + xd[i];

			xd[i] = v < 0.0f ? 0.0f : v;
		}
	}
	nn_map_free(&b);
	return 0;
}

/*
 * Down-sampling residual block: the shortcut is a 2x2 average pool whose
 * channels are zero-padded to the new depth; the convolution branch is
 * zero-padded at the bottom/right when it came out smaller.
 */
static int
residual_down(const nn_facenet *net, const char *name, nn_map *x, char *err)
{
	char		p[128];
	nn_map		a,
				b,
				pool,
				r;

	snprintf(p, sizeof(p), "%s/conv1", name);
	if (conv_layer(net, p, x, 2, NN_VALID, 1, &a, err) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/conv2", name);
	if (conv_layer(net, p, &a, 1, NN_SAME, 0, &b, err) != 0)
	{
		nn_map_free(&a);
		return -1;
	}
	nn_map_free(&a);
	if (nn_avgpool_valid(x, 2, 2, &pool) != 0)
	{
		nn_map_free(&b);
		return nn_fail(err, "out of memory in block \"%s\"", name);
	}
	if (b.h > pool.h || b.w > pool.w || b.c < pool.c ||
		nn_map_alloc(&r, pool.h, pool.w, b.c) != 0)
	{
		nn_map_free(&b);
		nn_map_free(&pool);
		return nn_fail(err, "block \"%s\" has unexpected shapes", name);
	}
	for (int y = 0; y < r.h; y++)
		for (int xx = 0; xx < r.w; xx++)
			for (int c = 0; c < r.c; c++)
			{
				float		s = c < pool.c ? pool.d[((size_t) y * pool.w + xx) * pool.c + c] : 0.0f;
				float		o = (y < b.h && xx < b.w) ? b.d[((size_t) y * b.w + xx) * b.c + c] : 0.0f;
				float		v = s + o;

				r.d[((size_t) y * r.w + xx) * r.c + c] = v < 0.0f ? 0.0f : v;
			}
	nn_map_free(&b);
	nn_map_free(&pool);
	nn_map_free(x);
	*x = r;
	return 0;
}

int
nn_facenet_load(nn_facenet *net, const char *dir, char *err)
{
	const nn_tensor *fc;

	if (nn_weights_load(dir, "face_recognition_model", &net->w, err) != 0)
		return -1;
	fc = nn_weights_find(&net->w, "fc", 256 * NN_DESCRIPTOR_DIM, err);
	if (!fc)
	{
		nn_weights_free(&net->w);
		return -1;
	}
	return 0;
}

void
nn_facenet_free(nn_facenet *net)
{
	nn_weights_free(&net->w);
}

int
nn_facenet_descriptor(const nn_facenet *net, const uint8_t *rgb, int width,
					  int height, float *desc, char *err)
{
	static const char *const blocks[] = {
		"conv32_1", "conv32_2", "conv32_3",
		"+conv64_down", "conv64_1", "conv64_2", "conv64_3",
		"+conv128_down", "conv128_1", "conv128_2",
		"+conv256_down", "conv256_1", "conv256_2", "+conv256_down_out",
	};
	nn_map		x,
				y;
	const nn_tensor *fc;
	double		sum[256];
	float		avg[256];

	if (nn_prepare(rgb, width, height, NN_FACENET_INPUT, 1, facenet_mean, &x) != 0)
		return nn_fail(err, "invalid face image %dx%d", width, height);
	if (conv_layer(net, "conv32_down", &x, 2, NN_VALID, 1, &y, err) != 0)
	{
		nn_map_free(&x);
		return -1;
	}
	nn_map_free(&x);
	if (nn_maxpool(&y, 3, 2, NN_VALID, &x) != 0)
	{
		nn_map_free(&y);
		return nn_fail(err, "out of memory in face descriptor");
	}
	nn_map_free(&y);
	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++)
	{
		int			rc = blocks[i][0] == '+'
			? residual_down(net, blocks[i] + 1, &x, err)
			: residual(net, blocks[i], &x, err);

		if (rc != 0)
		{
			nn_map_free(&x);
			return -1;
		}
	}
	fc = nn_weights_find(&net->w, "fc", 256 * NN_DESCRIPTOR_DIM, err);
	if (!fc || x.c != 256)
	{
		nn_map_free(&x);
		return fc ? nn_fail(err, "face descriptor: unexpected depth %d", x.c) : -1;
	}
	/* Global average pool, then the fully connected layer. */
	memset(sum, 0, sizeof(sum));
	for (int i = 0; i < x.h * x.w; i++)
		for (int c = 0; c < 256; c++)
			sum[c] += x.d[(size_t) i * 256 + c];
	for (int c = 0; c < 256; c++)
		avg[c] = (float) (sum[c] / (x.h * x.w));
	nn_map_free(&x);
	for (int j = 0; j < NN_DESCRIPTOR_DIM; j++)
	{
		double		s = 0.0;

		for (int c = 0; c < 256; c++)
			s += (double) avg[c] * fc->data[c * NN_DESCRIPTOR_DIM + j];
		desc[j] = (float) s;
	}
	return 0;
}
