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

/* Where a compact crop's position j goes in the full crop (-1: padding or unused). */
static void
compact_axis(int size, int side, int compact, int off, int len, int *map)
{
	int			m = (side - compact) / size;

	for (int j = 0; j < compact; j++)
		map[j] = -1;
	for (int k = 0; k < size; k++)
	{
		int			lo,
					hi;
		double		f;

		nn_resize_index(k, compact, size, &lo, &hi, &f);
		/* Sample k of the compact side is sample k of the full side moved by k * m pixels. */
		for (int j = lo; j <= hi; j++)
		{
			long		p = (long) j + (long) k * m - off;

			map[j] = (p >= 0 && p < len) ? (int) p : -1;
		}
	}
}

uint8_t *
nn_crop_for_input(const nn_image *im, const int rect[4], int size, int *cw, int *ch)
{
	int			w = rect[2],
				h = rect[3],
				c = im->channels;
	int			side = w > h ? w : h;
	size_t		stride = im->stride ? im->stride : (size_t) im->width * c;
	const uint8_t *base;
	uint8_t    *out;
	int			compact,
				diff,
				before;
	int		   *rmap,
			   *cmap;

	if (w <= 0 || h <= 0 || size <= 0 || (c != 1 && c != 3) || rect[0] < 0 || rect[1] < 0 ||
		rect[0] > im->width - w || rect[1] > im->height - h)
		return NULL;
	base = im->pixels + (size_t) rect[1] * stride + (size_t) rect[0] * c;
	if (side <= 3 * size)
	{
		/* Small enough: the crop itself. */
		out = malloc((size_t) w * h * 3);
		if (!out)
			return NULL;
		for (int y = 0; y < h; y++)
		{
			const uint8_t *p = base + (size_t) y * stride;
			uint8_t    *o = out + (size_t) y * w * 3;

			if (c == 3)
				memcpy(o, p, (size_t) w * 3);
			else
				for (int x = 0; x < w; x++)
					o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = p[x];
		}
		*cw = w;
		*ch = h;
		return out;
	}

	/*
	 * A square of side compact = side (mod size) in (2 size, 3 size]: the
	 * resize samples it at k * compact / size, the full padded square at
	 * k * side / size, the same fractions k pixels * (side - compact) / size
	 * apart.  Samples are more than 2 pixels apart, so no pixel serves two.
	 * The padding to a square (centred, zeros) is written out.
	 */
	compact = 2 * size + 1 + (side - 2 * size - 1) % size;
	diff = abs(w - h);
	before = diff - (int) floor(diff * 0.5 + 0.5);
	rmap = malloc(sizeof(int) * compact);
	cmap = malloc(sizeof(int) * compact);
	out = calloc((size_t) compact * compact, 3);
	if (!rmap || !cmap || !out)
	{
		free(rmap);
		free(cmap);
		free(out);
		return NULL;
	}
	compact_axis(size, side, compact, h < w ? before : 0, h, rmap);
	compact_axis(size, side, compact, w < h ? before : 0, w, cmap);
	for (int y = 0; y < compact; y++)
	{
		const uint8_t *p;
		uint8_t    *o = out + (size_t) y * compact * 3;

		if (rmap[y] < 0)
			continue;
		p = base + (size_t) rmap[y] * stride;
		for (int x = 0; x < compact; x++)
		{
			const uint8_t *q;

			if (cmap[x] < 0)
				continue;
			q = p + (size_t) cmap[x] * c;
			o[3 * x] = q[0];
			o[3 * x + 1] = c == 3 ? q[1] : q[0];
			o[3 * x + 2] = c == 3 ? q[2] : q[0];
		}
	}
	free(rmap);
	free(cmap);
	*cw = compact;
	*ch = compact;
	return out;
}

int
nn_find_faces(const nn_detector *net, const uint8_t *rgb, int width, int height,
			  int border, int input_size, double score_threshold,
			  nn_box **boxes, char *err)
{
	nn_image	im = {rgb, width, height, 3, 0};

	return nn_find_faces_image(net, &im, border, input_size, score_threshold, boxes, err);
}

int
nn_find_faces_image(const nn_detector *net, const nn_image *im, int border,
					int input_size, double score_threshold, nn_box **boxes, char *err)
{
	int			n,
				kept = 0;

	*boxes = NULL;
	if (border < 0 || im->width <= 0 || im->height <= 0)
	{
		snprintf(err, NN_ERRLEN, "invalid image %dx%d", im->width, im->height);
		return -1;
	}
	/* The border (edge pixels repeated) exists only in the detector's resampled input. */
	n = nn_detect_image(net, im, border, input_size, score_threshold, boxes, err);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++)
	{
		nn_box		b = (*boxes)[i];
		int			r[4];

		b.x -= border;
		b.y -= border;
		if (!nn_crop_rect(&b, im->width, im->height, r))
			continue;
		(*boxes)[kept].x = r[0];
		(*boxes)[kept].y = r[1];
		(*boxes)[kept].width = r[2];
		(*boxes)[kept].height = r[3];
		(*boxes)[kept].score = b.score;
		(*boxes)[kept].dx = b.x - r[0];
		(*boxes)[kept].dy = b.y - r[1];
		kept++;
	}
	return kept;
}

/* Detector input for an image side: a multiple of 32 in 160..416. */
static int
input_for(long side)
{
	long		in = ((side + 31) / 32) * 32;

	return in < 160 ? 160 : in > 416 ? 416 : (int) in;
}

int
nn_locate_faces(const nn_detector *net, const uint8_t *rgb, int width,
				int height, nn_box **boxes, char *err)
{
	nn_image	im = {rgb, width, height, 3, 0};

	return nn_locate_faces_image(net, &im, boxes, err);
}

int
nn_locate_faces_image(const nn_detector *net, const nn_image *im, nn_box **boxes, char *err)
{
	long		side = im->width > im->height ? im->width : im->height;
	long		border = side / 4 > 60 ? side / 4 : 60;
	int			n = nn_find_faces_image(net, im, 0, input_for(side), 0.5, boxes, err);

	if (n != 0)
		return n;
	free(*boxes);
	if (side > (1L << 28))
	{
		*boxes = NULL;
		snprintf(err, NN_ERRLEN, "image %dx%d is too large for face detection", im->width, im->height);
		return -1;
	}
	return nn_find_faces_image(net, im, (int) border, input_for(side + 2 * border),
							   0.5, boxes, err);
}

int
nn_face_landmarks(const nn_landmarks *net, const nn_image *im, const nn_box *det,
				  double pts[2 * NN_LANDMARK_POINTS], int crop_wh[2], char *err)
{
	int			rect[4],
				cw,
				ch;
	uint8_t    *crop;
	float		raw[2 * NN_LANDMARK_POINTS];
	double		sx,
				sy;
	int			rc;

	if (!nn_crop_rect(det, im->width, im->height, rect))
		return nn_fail(err, "face box outside the image");
	/* The network sees the crop resized to its input: only those pixels are copied. */
	crop = nn_crop_for_input(im, rect, NN_LANDMARKS_INPUT, &cw, &ch);
	if (!crop)
		return nn_fail(err, "out of memory in landmark network");
	rc = nn_landmarks_forward(net, crop, cw, ch, raw, err);
	free(crop);
	if (rc != 0)
		return -1;
	/* Positions relative to the full crop, whatever was copied of it. */
	nn_landmarks_relative(raw, rect[2], rect[3], pts);
	/*
	 * Moved by the detection's corner, unrounded (face-api's way), but clipped
	 * to the image: face-api moves them by a corner outside the image too, off
	 * the pixels the network saw (by the whole border for a face found only
	 * with the border); here they stay on the face.
	 */
	sx = fmax(det->x + det->dx, 0);
	sy = fmax(det->y + det->dy, 0);
	for (int i = 0; i < NN_LANDMARK_POINTS; i++)
	{
		pts[2 * i] = pts[2 * i] * rect[2] + sx;
		pts[2 * i + 1] = pts[2 * i + 1] * rect[3] + sy;
	}
	crop_wh[0] = rect[2];
	crop_wh[1] = rect[3];
	return 0;
}

/* Mean of points first..last-1 of pts. */
static void
centre(const double *pts, int first, int last, double *x, double *y)
{
	double		sx = 0,
				sy = 0;

	for (int i = first; i < last; i++)
	{
		sx += pts[2 * i];
		sy += pts[2 * i + 1];
	}
	*x = sx / (last - first);
	*y = sy / (last - first);
}

void
nn_align_dlib(const double pts[2 * NN_LANDMARK_POINTS], const int crop_wh[2], nn_box *rect)
{
	double		lx,
				ly,
				rx,
				ry,
				mx,
				my,
				eye_mouth,
				size,
				x,
				y;

	/* Left eye 36..41, right eye 42..47, mouth 48..67. */
	centre(pts, 36, 42, &lx, &ly);
	centre(pts, 42, 48, &rx, &ry);
	centre(pts, 48, 68, &mx, &my);
	eye_mouth = (hypot(mx - lx, my - ly) + hypot(mx - rx, my - ry)) / 2;
	size = floor(eye_mouth / 0.45);
	x = floor(fmax(0, (lx + rx + mx) / 3 - 0.5 * size));
	y = floor(fmax(0, (ly + ry + my) / 3 - 0.43 * size));
	rect->x = x;
	rect->y = y;
	rect->width = fmin(size, crop_wh[0] + x);
	rect->height = fmin(size, crop_wh[1] + y);
	rect->score = 0;
	rect->dx = rect->dy = 0;
}

int
nn_aligned_descriptor(const nn_landmarks *lm, const nn_facenet *fn, const nn_image *im,
					  const nn_box *det, double *pts, nn_box *aligned,
					  float desc[NN_DESCRIPTOR_DIM], char *err)
{
	double		p[2 * NN_LANDMARK_POINTS];
	int			wh[2],
				rect[4],
				cw,
				ch,
				rc;
	nn_box		a;
	uint8_t    *crop;

	if (nn_face_landmarks(lm, im, det, p, wh, err) != 0)
		return -1;
	nn_align_dlib(p, wh, &a);
	if (pts)
		memcpy(pts, p, sizeof(p));
	if (aligned)
		*aligned = a;
	/* extractFaceTensors: clipped to the image and floored; an empty square has no face. */
	if (!nn_crop_rect(&a, im->width, im->height, rect))
		return 1;
	crop = nn_crop_for_input(im, rect, NN_FACENET_INPUT, &cw, &ch);
	if (!crop)
		return nn_fail(err, "out of memory in face network");
	rc = nn_facenet_descriptor(fn, crop, cw, ch, desc, err);
	free(crop);
	return rc;
}
