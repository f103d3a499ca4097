/*
 * landmarks.c - face-api's FaceLandmark68Net: a DenseNet-like feature
 * extractor (112x112 input, four dense blocks of separable convolutions)
 * and a fully connected layer giving 68 (x, y) points of a face crop.
 */
#include "nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float lm_mean[3] = {122.782f, 117.001f, 104.298f};

#define LM_FEATURES 256

int
nn_landmarks_load(nn_landmarks *net, const char *dir, char *err)
{
	if (nn_weights_load(dir, "face_landmark_68_model", &net->w, err) != 0)
		return -1;
	if (!nn_weights_find(&net->w, "dense0/conv0/filters", 3 * 3 * 3 * 32, err) ||
		!nn_weights_find(&net->w, "fc/weights", LM_FEATURES * 2 * NN_LANDMARK_POINTS, err) ||
		!nn_weights_find(&net->w, "fc/bias", 2 * NN_LANDMARK_POINTS, err))
	{
		nn_weights_free(&net->w);
		return -1;
	}
	return 0;
}

void
nn_landmarks_free(nn_landmarks *net)
{
	nn_weights_free(&net->w);
}

/* The first layer: conv 3x3 stride 2 SAME + bias. */
static int
first_conv(const nn_landmarks *net, const nn_map *x, nn_map *out, char *err)
{
	const nn_tensor *f = nn_weights_getf(&net->w, err, "dense0/conv0/filters");
	const nn_tensor *b = f ? nn_weights_getf(&net->w, err, "dense0/conv0/bias") : NULL;

	if (!b)
		return -1;
	if (f->ndim != 4 || f->shape[2] != x->c || b->size != (size_t) f->shape[3])
		return nn_fail(err, "layer \"dense0/conv0\" does not match its input");
	if (nn_conv2d(x, f->data, f->shape[0], f->shape[1], f->shape[3], b->data, 2, NN_SAME, 0, out) != 0)
		return nn_fail(err, "out of memory in landmark network");
	return 0;
}

/* out = relu(acc). */
static void
relu_into(nn_map *out, const nn_map *acc)
{
	size_t		len = (size_t) acc->h * acc->w * acc->c;
	float	   *restrict o = out->d;
	const float *restrict a = acc->d;

	for (size_t i = 0; i < len; i++)
		o[i] = a[i] > 0 ? a[i] : 0;
}

/* acc += part. */
static void
add_into(nn_map *acc, const nn_map *part)
{
	size_t		len = (size_t) acc->h * acc->w * acc->c;
	float	   *restrict a = acc->d;
	const float *restrict p = part->d;

	for (size_t i = 0; i < len; i++)
		a[i] += p[i];
}

/*
 * denseBlock4: out1 = relu(conv0(x)) at stride 2, out_k = conv_k(relu(out1 +
 * ... + out_{k-1})) for k = 2..4, and the block's result relu(out1 + ... + out4).
 * Replaces *x.
 */
static int
dense_block(const nn_landmarks *net, int block, nn_map *x, char *err)
{
	nn_map		acc,
				in,
				o;
	char		p[64];
	int			rc;

	if (block == 0)
		rc = first_conv(net, x, &acc, err);
	else
	{
		snprintf(p, sizeof(p), "dense%d/conv0", block);
		rc = nn_separable(&net->w, p, x, 2, &acc, err);
	}
	if (rc != 0)
		return -1;
	nn_relu(&acc);
	if (nn_map_alloc(&in, acc.h, acc.w, acc.c) != 0)
	{
		nn_map_free(&acc);
		return nn_fail(err, "out of memory in landmark network");
	}
	for (int k = 1; k < 4; k++)
	{
		/* out1 is already non-negative: the first input is out1 itself. */
		relu_into(&in, &acc);
		snprintf(p, sizeof(p), "dense%d/conv%d", block, k);
		if (nn_separable(&net->w, p, &in, 1, &o, err) != 0)
		{
			rc = -1;
			break;
		}
		if (o.h != acc.h || o.w != acc.w || o.c != acc.c)
		{
			nn_map_free(&o);
			rc = nn_fail(err, "block \"dense%d\" changes the shape", block);
			break;
		}
		add_into(&acc, &o);
		nn_map_free(&o);
	}
	if (rc == 0)
	{
		relu_into(&in, &acc);
		nn_map_free(x);
		*x = in;
	}
	else
		nn_map_free(&in);
	nn_map_free(&acc);
	return rc;
}

int
nn_landmarks_forward(const nn_landmarks *net, const uint8_t *rgb, int width, int height,
					 float out[2 * NN_LANDMARK_POINTS], char *err)
{
	char		ignore[NN_ERRLEN];
	const nn_tensor *fw = nn_weights_find(&net->w, "fc/weights", LM_FEATURES * 2 * NN_LANDMARK_POINTS, ignore);
	const nn_tensor *fb = nn_weights_find(&net->w, "fc/bias", 2 * NN_LANDMARK_POINTS, ignore);
	nn_map		x,
				pooled;

	if (!fw || !fb)
		return nn_fail(err, "landmark network not loaded");
	if (nn_prepare(rgb, width, height, NN_LANDMARKS_INPUT, 1, lm_mean, &x) != 0)
		return nn_fail(err, "invalid face image %dx%d", width, height);
	for (int b = 0; b < 4; b++)
		if (dense_block(net, b, &x, err) != 0)
		{
			nn_map_free(&x);
			return -1;
		}
	/* avgPool 7x7 stride 2 VALID over the 7x7x256 map. */
	if (nn_avgpool_valid(&x, 7, 2, &pooled) != 0 || pooled.h != 1 || pooled.w != 1 ||
		pooled.c != LM_FEATURES)
	{
		nn_map_free(&x);
		nn_map_free(&pooled);
		return nn_fail(err, "landmark network: unexpected feature shape");
	}
	nn_map_free(&x);
	for (int j = 0; j < 2 * NN_LANDMARK_POINTS; j++)
	{
		double		v = fb->data[j];

		for (int c = 0; c < LM_FEATURES; c++)
			v += (double) pooled.d[c] * fw->data[(size_t) c * 2 * NN_LANDMARK_POINTS + j];
		out[j] = (float) v;
	}
	nn_map_free(&pooled);
	return 0;
}

void
nn_landmarks_relative(const float raw[2 * NN_LANDMARK_POINTS], int width, int height,
					  double rel[2 * NN_LANDMARK_POINTS])
{
	double		scale = (double) NN_LANDMARKS_INPUT / (width > height ? width : height);
	double		w = width * scale,
				h = height * scale;
	double		px = w < h ? (h - w) / 2 : 0,
				py = h < w ? (w - h) / 2 : 0;

	for (int i = 0; i < NN_LANDMARK_POINTS; i++)
	{
		rel[2 * i] = ((double) raw[2 * i] * NN_LANDMARKS_INPUT - px) / w;
		rel[2 * i + 1] = ((double) raw[2 * i + 1] * NN_LANDMARKS_INPUT - py) / h;
	}
}
