/*
 * agegender.c - face-api's AgeGenderNet: a TinyXception feature extractor
 * (112x112 input, 2 middle blocks) with age regression and gender softmax.
 */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float ag_mean[3] = {122.782f, 117.001f, 104.298f};

/* conv (SAME) + bias. */
static int
conv(const nn_agegender *net, const char *prefix, const nn_map *x, int stride,
	 nn_map *out, char *err)
{
	const nn_tensor *f = nn_weights_getf(&net->w, err, "%s/filters", prefix);
	const nn_tensor *b = f ? nn_weights_getf(&net->w, err, "%s/bias", prefix) : NULL;

	if (!b)
		return -1;
	if (f->ndim != 4 || f->shape[2] != x->c || b->size != (size_t) f->shape[3])
		return nn_fail(err, "layer \"%s\" does not match its input", prefix);
	if (nn_conv2d(x, f->data, f->shape[0], f->shape[1], f->shape[3], b->data,
				  stride, NN_SAME, 0, out) != 0)
		return nn_fail(err, "out of memory in gender network");
	return 0;
}

/* Replace *x by relu(*x) copy-free when allowed. */
static int
relu_copy(const nn_map *x, nn_map *out)
{
	if (nn_map_alloc(out, x->h, x->w, x->c) != 0)
		return -1;
	memcpy(out->d, x->d, (size_t) x->h * x->w * x->c * sizeof(float));
	nn_relu(out);
	return 0;
}

static int
reduction_block(const nn_agegender *net, const char *prefix, nn_map *x,
				int activate, char *err)
{
	char		p[160];
	nn_map		in,
				a,
				b,
				pool,
				e;
	size_t		n;

	if (activate)
	{
		if (relu_copy(x, &in) != 0)
			return nn_fail(err, "out of memory in gender network");
	}
	else
		in = *x;
	snprintf(p, sizeof(p), "%s/separable_conv0", prefix);
	if (nn_separable(&net->w, p, &in, 1, &a, err) != 0)
		goto fail_in;
	nn_relu(&a);
	snprintf(p, sizeof(p), "%s/separable_conv1", prefix);
	if (nn_separable(&net->w, p, &a, 1, &b, err) != 0)
	{
		nn_map_free(&a);
		goto fail_in;
	}
	nn_map_free(&a);
	if (nn_maxpool(&b, 3, 2, NN_SAME, &pool) != 0)
	{
		nn_map_free(&b);
		nn_fail(err, "out of memory in gender network");
		goto fail_in;
	}
	nn_map_free(&b);
	snprintf(p, sizeof(p), "%s/expansion_conv", prefix);
	if (conv(net, p, x, 2, &e, err) != 0)
	{
		nn_map_free(&pool);
		goto fail_in;
	}
	if (e.h != pool.h || e.w != pool.w || e.c != pool.c)
	{
		nn_map_free(&pool);
		nn_map_free(&e);
		nn_fail(err, "block \"%s\" has unexpected shapes", prefix);
		goto fail_in;
	}
	n = (size_t) e.h * e.w * e.c;
	for (size_t i = 0; i < n; i++)
		pool.d[i] += e.d[i];
	nn_map_free(&e);
	if (activate)
		nn_map_free(&in);
	nn_map_free(x);
	*x = pool;
	return 0;
fail_in:
	if (activate)
		nn_map_free(&in);
	return -1;
}

static int
main_block(const nn_agegender *net, const char *prefix, nn_map *x, char *err)
{
	char		p[160];
	nn_map		cur,
				nxt;
	size_t		n;

	if (relu_copy(x, &cur) != 0)
		return nn_fail(err, "out of memory in gender network");
	for (int i = 0; i < 3; i++)
	{
		if (i > 0)
			nn_relu(&cur);
		snprintf(p, sizeof(p), "%s/separable_conv%d", prefix, i);
		if (nn_separable(&net->w, p, &cur, 1, &nxt, err) != 0)
		{
			nn_map_free(&cur);
			return -1;
		}
		nn_map_free(&cur);
		cur = nxt;
	}
	if (cur.h != x->h || cur.w != x->w || cur.c != x->c)
	{
		nn_map_free(&cur);
		return nn_fail(err, "block \"%s\" changes the shape", prefix);
	}
	n = (size_t) cur.h * cur.w * cur.c;
	for (size_t i = 0; i < n; i++)
		x->d[i] += cur.d[i];
	nn_map_free(&cur);
	return 0;
}

int
nn_agegender_load(nn_agegender *net, const char *dir, char *err)
{
	if (nn_weights_load(dir, "age_gender_model", &net->w, err) != 0)
		return -1;
	if (!nn_weights_find(&net->w, "fc/gender/weights", 512 * 2, err) ||
		!nn_weights_find(&net->w, "fc/gender/bias", 2, err) ||
		!nn_weights_find(&net->w, "fc/age/weights", 512, err) ||
		!nn_weights_find(&net->w, "fc/age/bias", 1, err))
	{
		nn_weights_free(&net->w);
		return -1;
	}
	return 0;
}

void
nn_agegender_free(nn_agegender *net)
{
	nn_weights_free(&net->w);
}

int
nn_agegender_predict(const nn_agegender *net, const uint8_t *rgb, int width,
					 int height, float *p_male, float *p_female, float *age,
					 char *err)
{
	nn_map		x,
				y;
	char		ignore[NN_ERRLEN];
	const nn_tensor *gw = nn_weights_find(&net->w, "fc/gender/weights", 512 * 2, ignore);
	const nn_tensor *gb = nn_weights_find(&net->w, "fc/gender/bias", 2, ignore);
	const nn_tensor *aw = nn_weights_find(&net->w, "fc/age/weights", 512, ignore);
	const nn_tensor *ab = nn_weights_find(&net->w, "fc/age/bias", 1, ignore);
	double		g[2],
				a,
				mx,
				e0,
				e1;
	float		pooled[512];

	if (nn_prepare(rgb, width, height, NN_AGEGENDER_INPUT, 1, ag_mean, &x) != 0)
		return nn_fail(err, "invalid face image %dx%d", width, height);
	if (conv(net, "entry_flow/conv_in", &x, 2, &y, err) != 0)
	{
		nn_map_free(&x);
		return -1;
	}
	nn_map_free(&x);
	x = y;
	nn_relu(&x);
	if (reduction_block(net, "entry_flow/reduction_block_0", &x, 0, err) != 0 ||
		reduction_block(net, "entry_flow/reduction_block_1", &x, 1, err) != 0 ||
		main_block(net, "middle_flow/main_block_0", &x, err) != 0 ||
		main_block(net, "middle_flow/main_block_1", &x, err) != 0 ||
		reduction_block(net, "exit_flow/reduction_block", &x, 1, err) != 0 ||
		nn_separable(&net->w, "exit_flow/separable_conv", &x, 1, &y, err) != 0)
	{
		nn_map_free(&x);
		return -1;
	}
	nn_map_free(&x);
	nn_relu(&y);
	/* avgPool 7x7 stride 2 VALID over the 7x7x512 map. */
	if (nn_avgpool_valid(&y, 7, 2, &x) != 0 || x.h != 1 || x.w != 1 || x.c != 512)
	{
		nn_map_free(&y);
		nn_map_free(&x);
		return nn_fail(err, "gender network: unexpected feature shape");
	}
	nn_map_free(&y);
	memcpy(pooled, x.d, sizeof(pooled));
	nn_map_free(&x);

	g[0] = gb->data[0];
	g[1] = gb->data[1];
	a = ab->data[0];
	for (int c = 0; c < 512; c++)
	{
		g[0] += (double) pooled[c] * gw->data[c * 2];
		g[1] += (double) pooled[c] * gw->data[c * 2 + 1];
		a += (double) pooled[c] * aw->data[c];
	}
	mx = g[0] > g[1] ? g[0] : g[1];
	e0 = exp(g[0] - mx);
	e1 = exp(g[1] - mx);
	*p_male = (float) (e0 / (e0 + e1));
	*p_female = (float) (e1 / (e0 + e1));
	*age = (float) a;
	return 0;
}
