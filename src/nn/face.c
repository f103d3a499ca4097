/*
 * face.c - faces of a whole image: detection with a border for tightly
 * cropped faces, and face-api's crop of a detected box.
 */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
nn_crop_rect(const nn_box *b, int width, int height, int rect[4])
{
	double		x = fmax(b->x, 0),
				y = fmax(b->y, 0);
	double		w = fmin(b->x + b->width - x, width - x);
	double		h = fmin(b->y + b->height - y, height - y);

	rect[0] = (int) floor(x);
	rect[1] = (int) floor(y);
	rect[2] = w > 0 ? (int) floor(w) : 0;
	rect[3] = h > 0 ? (int) floor(h) : 0;
	/* Keep the rectangle inside the image whatever the rounding did. */
	if (rect[0] >= width || rect[1] >= height)
		return 0;
	if (rect[0] + rect[2] > width)
		rect[2] = width - rect[0];
	if (rect[1] + rect[3] > height)
		rect[3] = height - rect[1];
	return rect[2] > 0 && rect[3] > 0;
}

uint8_t *
nn_crop_rgb(const uint8_t *rgb, int width, const int rect[4])
{
	uint8_t    *out = malloc((size_t) rect[2] * rect[3] * 3);

	if (!out)
		return NULL;
	for (int y = 0; y < rect[3]; y++)
		memcpy(out + (size_t) y * rect[2] * 3,
			   rgb + ((size_t) (rect[1] + y) * width + rect[0]) * 3,
			   (size_t) rect[2] * 3);
	return out;
}

int
nn_find_faces(const nn_detector *net, const uint8_t *rgb, int width, int height,
			  int border, int input_size, double score_threshold,
			  nn_box **boxes, char *err)
{
	int			pw = width + 2 * border,
				ph = height + 2 * border;
	uint8_t    *padded;
	int			n,
				kept = 0;

	*boxes = NULL;
	if (border < 0 || width <= 0 || height <= 0)
	{
		snprintf(err, NN_ERRLEN, "invalid image %dx%d", width, height);
		return -1;
	}
	padded = malloc((size_t) pw * ph * 3);
	if (!padded)
	{
		snprintf(err, NN_ERRLEN, "out of memory in face detection");
		return -1;
	}
	/* Repeat the edge pixels into the border. */
	for (int y = 0; y < ph; y++)
	{
		int			sy = y < border ? 0 : (y >= border + height ? height - 1 : y - border);

		for (int x = 0; x < pw; x++)
		{
			int			sx = x < border ? 0 : (x >= border + width ? width - 1 : x - border);

			memcpy(padded + ((size_t) y * pw + x) * 3, rgb + ((size_t) sy * width + sx) * 3, 3);
		}
	}
	n = nn_detect(net, padded, pw, ph, input_size, score_threshold, boxes, err);
	free(padded);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++)
	{
		nn_box		b = (*boxes)[i];
		int			r[4];

		b.x -= border;
		b.y -= border;
		if (!nn_crop_rect(&b, width, height, r))
			continue;
		(*boxes)[kept].x = r[0];
		(*boxes)[kept].y = r[1];
		(*boxes)[kept].width = r[2];
		(*boxes)[kept].height = r[3];
		(*boxes)[kept].score = b.score;
		kept++;
	}
	return kept;
}

/* Detector input for an image side: a multiple of 32 in 160..416. */
static int
input_for(int side)
{
	int			in = ((side + 31) / 32) * 32;

	return in < 160 ? 160 : in > 416 ? 416 : in;
}

int
nn_locate_faces(const nn_detector *net, const uint8_t *rgb, int width,
				int height, nn_box **boxes, char *err)
{
	int			side = width > height ? width : height;
	int			border = side / 4 > 60 ? side / 4 : 60;
	int			n = nn_find_faces(net, rgb, width, height, 0, input_for(side), 0.5, boxes, err);

	if (n != 0)
		return n;
	free(*boxes);
	return nn_find_faces(net, rgb, width, height, border, input_for(side + 2 * border),
						 0.5, boxes, err);
}
