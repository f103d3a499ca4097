/*
 * detector.c - face-api's TinyFaceDetector: a Tiny-YOLOv2 with depthwise
 * separable convolutions, 5 anchors, one class, then score threshold and
 * non-maximum suppression as face-api does it.
 */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_ANCHORS 5
#define IOU_THRESHOLD 0.4

static const float det_mean[3] = {117.001f, 114.697f, 97.404f};
static const double anchors[NUM_ANCHORS][2] = {
	{1.603231, 2.094468}, {6.041143, 7.080126}, {2.882459, 3.518061},
	{4.266906, 5.178857}, {9.041765, 10.66308},
};

int
nn_detector_load(nn_detector *net, const char *dir, char *err)
{
	char		name[64];

	if (nn_weights_load(dir, "tiny_face_detector_model", &net->w, err) != 0)
		return -1;
	/* Check the layout once so that forward passes can rely on it. */
	if (!nn_weights_find(&net->w, "conv0/filters", 3 * 3 * 3 * 16, err) ||
		!nn_weights_find(&net->w, "conv0/bias", 16, err) ||
		!nn_weights_find(&net->w, "conv8/filters", 512 * 25, err) ||
		!nn_weights_find(&net->w, "conv8/bias", 25, err))
		goto bad;
	for (int i = 1, c = 16; i <= 5; i++, c *= 2)
	{
		snprintf(name, sizeof(name), "conv%d/depthwise_filter", i);
		if (!nn_weights_find(&net->w, name, (size_t) 9 * c, err))
			goto bad;
		snprintf(name, sizeof(name), "conv%d/pointwise_filter", i);
		if (!nn_weights_find(&net->w, name, (size_t) c * 2 * c, err))
			goto bad;
		snprintf(name, sizeof(name), "conv%d/bias", i);
		if (!nn_weights_find(&net->w, name, (size_t) 2 * c, err))
			goto bad;
	}
	return 0;
bad:
	nn_weights_free(&net->w);
	return -1;
}

void
nn_detector_free(nn_detector *net)
{
	nn_weights_free(&net->w);
}

static const float *
W(const nn_detector *net, const char *name)
{
	char		err[NN_ERRLEN];

	/* Presence and sizes were checked by nn_detector_load. */
	return nn_weights_find(&net->w, name, 0, err)->data;
}

/* Replace *x by op(*x); frees the input. */
static int
step_pool(nn_map *x, int stride)
{
	nn_map		y;

	if (nn_maxpool(x, 2, stride, NN_SAME, &y) != 0)
		return -1;
	nn_map_free(x);
	*x = y;
	return 0;
}

/* tf.pad 1 + separable conv VALID + bias, leaky ReLU. */
static int
step_separable(const nn_detector *net, int i, nn_map *x)
{
	char		name[64];
	nn_map		d,
				p;
	int			cout = x->c * 2;

	snprintf(name, sizeof(name), "conv%d/depthwise_filter", i);
	if (nn_depthwise(x, W(net, name), 3, 3, 1, NN_VALID, 1, &d) != 0)
		return -1;
	snprintf(name, sizeof(name), "conv%d/pointwise_filter", i);
	{
		char		bname[64];

		snprintf(bname, sizeof(bname), "conv%d/bias", i);
		if (nn_conv2d(&d, W(net, name), 1, 1, cout, W(net, bname), 1,
					  NN_VALID, 0, &p) != 0)
		{
			nn_map_free(&d);
			return -1;
		}
	}
	nn_map_free(&d);
	nn_leaky(&p, 0.1f);
	nn_map_free(x);
	*x = p;
	return 0;
}

int
nn_detector_forward(const nn_detector *net, const uint8_t *rgb, int width,
					int height, int input_size, nn_map *out, char *err)
{
	nn_image	im = {rgb, width, height, 3, 0};

	return nn_detector_forward_image(net, &im, 0, input_size, out, err);
}

int
nn_detector_forward_image(const nn_detector *net, const nn_image *im, int border,
						  int input_size, nn_map *out, char *err)
{
	nn_map		x,
				y;

	if (input_size < 64 || input_size > 2048 || input_size % 32 != 0)
		return nn_fail(err, "detector input size must be a multiple of 32 between 64 and 2048");
	/* The input is resampled from the image: the border is never built. */
	if (nn_prepare_image(im, border, input_size, 0, det_mean, &x) != 0)
		return nn_fail(err, "invalid image %dx%d", im->width, im->height);
	if (nn_conv2d(&x, W(net, "conv0/filters"), 3, 3, 16, W(net, "conv0/bias"),
				  1, NN_VALID, 0, &y) != 0)
		goto oom;
	nn_map_free(&x);
	x = y;
	nn_leaky(&x, 0.1f);
	for (int i = 1; i <= 5; i++)
	{
		if (step_pool(&x, 2) != 0 || step_separable(net, i, &x) != 0)
			goto oom;
	}
	if (step_pool(&x, 1) != 0)
		goto oom;
	if (nn_conv2d(&x, W(net, "conv8/filters"), 1, 1, 25, W(net, "conv8/bias"),
				  1, NN_VALID, 0, out) != 0)
		goto oom;
	nn_map_free(&x);
	return 0;
oom:
	nn_map_free(&x);
	return nn_fail(err, "out of memory in face detector");
}

static double
sigmoid(double v)
{
	return 1.0 / (1.0 + exp(-v));
}

typedef struct cand
{
	double		x0,
				y0,
				x1,
				y1;				/* relative to the image, 0..1 */
	double		score;
	int			index;
} cand;

static int
cand_cmp(const void *a, const void *b)
{
	const cand *p = a,
			   *q = b;

	/* Best first; face-api pops the last of a stable ascending sort. */
	if (p->score != q->score)
		return p->score > q->score ? -1 : 1;
	return q->index - p->index;
}

static double
iou(const cand *a, const cand *b)
{
	double		w = fmin(a->x1, b->x1) - fmax(a->x0, b->x0);
	double		h = fmin(a->y1, b->y1) - fmax(a->y0, b->y0);
	double		inter,
				area_a,
				area_b;

	if (w < 0)
		w = 0;
	if (h < 0)
		h = 0;
	inter = w * h;
	area_a = (a->x1 - a->x0) * (a->y1 - a->y0);
	area_b = (b->x1 - b->x0) * (b->y1 - b->y0);
	return inter / (area_a + area_b - inter);
}

int
nn_detect(const nn_detector *net, const uint8_t *rgb, int width, int height,
		  int input_size, double score_threshold, nn_box **boxes, char *err)
{
	nn_image	im = {rgb, width, height, 3, 0};

	return nn_detect_image(net, &im, 0, input_size, score_threshold, boxes, err);
}

int
nn_detect_image(const nn_detector *net, const nn_image *im, int border, int input_size,
				double score_threshold, nn_box **boxes, char *err)
{
	nn_map		out;
	cand	   *c;
	int			n = 0,
				kept = 0;
	int			cells;
	int			width,
				height;
	double		scale,
				rw,
				rh,
				side,
				cx,
				cy;
	char	   *dropped;

	*boxes = NULL;
	if (nn_detector_forward_image(net, im, border, input_size, &out, err) != 0)
		return -1;
	/* The bordered image's size (checked by the forward pass): boxes are in its coordinates. */
	width = im->width + 2 * border;
	height = im->height + 2 * border;
	cells = out.h;
	/* Boxes are relative to the resized (not padded) image. */
	scale = (double) input_size / (width > height ? width : height);
	rw = round(width * scale);
	rh = round(height * scale);
	side = rw > rh ? rw : rh;
	cx = side / rw;
	cy = side / rh;

	c = malloc(sizeof(cand) * (size_t) cells * cells * NUM_ANCHORS);
	dropped = calloc((size_t) cells * cells * NUM_ANCHORS, 1);
	if (!c || !dropped)
	{
		free(c);
		free(dropped);
		nn_map_free(&out);
		return nn_fail(err, "out of memory in face detector");
	}
	for (int row = 0; row < cells; row++)
		for (int col = 0; col < cells; col++)
			for (int a = 0; a < NUM_ANCHORS; a++)
			{
				const float *v = out.d + ((size_t) row * cells + col) * out.c + a * 5;
				double		score = sigmoid(v[4]);
				double		ctx,
							cty,
							bw,
							bh;

				if (!(score > score_threshold))
					continue;
				ctx = ((col + sigmoid(v[0])) / cells) * cx;
				cty = ((row + sigmoid(v[1])) / cells) * cy;
				bw = ((exp(v[2]) * anchors[a][0]) / cells) * cx;
				bh = ((exp(v[3]) * anchors[a][1]) / cells) * cy;
				c[n].x0 = ctx - bw / 2;
				c[n].y0 = cty - bh / 2;
				c[n].x1 = c[n].x0 + bw;
				c[n].y1 = c[n].y0 + bh;
				c[n].score = score;
				c[n].index = n;
				n++;
			}
	nn_map_free(&out);

	qsort(c, n, sizeof(cand), cand_cmp);
	for (int i = 0; i < n; i++)
	{
		if (dropped[i])
			continue;
		for (int j = i + 1; j < n; j++)
			if (!dropped[j] && iou(&c[i], &c[j]) > IOU_THRESHOLD)
				dropped[j] = 1;
		kept++;
	}
	*boxes = malloc(sizeof(nn_box) * (kept > 0 ? kept : 1));
	if (!*boxes)
	{
		free(c);
		free(dropped);
		return nn_fail(err, "out of memory in face detector");
	}
	kept = 0;
	for (int i = 0; i < n; i++)
	{
		if (dropped[i])
			continue;
		(*boxes)[kept].x = c[i].x0 * width;
		(*boxes)[kept].y = c[i].y0 * height;
		(*boxes)[kept].width = (c[i].x1 - c[i].x0) * width;
		(*boxes)[kept].height = (c[i].y1 - c[i].y0) * height;
		(*boxes)[kept].score = c[i].score;
		(*boxes)[kept].dx = (*boxes)[kept].dy = 0;
		kept++;
	}
	free(c);
	free(dropped);
	return kept;
}
