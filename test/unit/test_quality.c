/*
 * test_quality.c: face region, resampling and sharpness against hand-computed values.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quality.h"
#include "unit.h"

static tr_image
make_grey(int w, int h)
{
	tr_image	img;

	img.width = w;
	img.height = h;
	img.channels = 1;
	img.pixels = calloc((size_t) w * h, 1);
	return img;
}

/* 3x3 box blur, n times. */
static void
blur(tr_image *img, int times)
{
	int			w = img->width,
				h = img->height;
	uint8_t    *t = malloc((size_t) w * h);

	for (int k = 0; k < times; k++)
	{
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++)
			{
				int			s = 0,
							n = 0;

				for (int dy = -1; dy <= 1; dy++)
					for (int dx = -1; dx <= 1; dx++)
						if (x + dx >= 0 && x + dx < w && y + dy >= 0 && y + dy < h)
						{
							s += img->pixels[(y + dy) * w + x + dx];
							n++;
						}
				t[y * w + x] = (uint8_t) ((s + n / 2) / n);
			}
		memcpy(img->pixels, t, (size_t) w * h);
	}
	free(t);
}

void
test_quality(void)
{
	tr_image	img = make_grey(128, 128);
	tr_box		r;
	int			box[4];

	/* Constant image: Laplacian 0 everywhere. */
	memset(img.pixels, 77, 128 * 128);
	tr_face_region(&img, NULL, &r);
	CHECK(r.x == 0 && r.y == 0 && r.w == 128 && r.h == 128);
	CHECK_NEAR(tr_sharpness(&img, r), 0, 1e-9);

	/* Horizontal ramp: the Laplacian of a linear function is 0. */
	for (int y = 0; y < 128; y++)
		for (int x = 0; x < 128; x++)
			img.pixels[y * 128 + x] = (uint8_t) (2 * x);
	CHECK_NEAR(tr_sharpness(&img, r), 0, 1e-6);

	/*
	 * One white pixel on black, at 128x128 (no resampling): interior Laplacian
	 * values are 1020 once and -255 four times, 0 elsewhere, over 126*126 = 15876
	 * pixels: mean 0, variance (1020^2 + 4 * 255^2) / 15876 = 1300500 / 15876.
	 */
	memset(img.pixels, 0, 128 * 128);
	img.pixels[64 * 128 + 64] = 255;
	CHECK_NEAR(tr_sharpness(&img, r), 1300500.0 / 15876.0, 1e-6);

	/* Checkerboard 0/255: Laplacian +-1020 everywhere, variance 1020^2. */
	for (int y = 0; y < 128; y++)
		for (int x = 0; x < 128; x++)
			img.pixels[y * 128 + x] = ((x + y) & 1) ? 255 : 0;
	CHECK_NEAR(tr_sharpness(&img, r), 1040400.0, 1e-3);
	tr_image_free(&img);

	/*
	 * Resampling by area: a 256x256 image of 2x2 blocks alternating 0/255 shrinks
	 * to the 128x128 checkerboard exactly; the same in a colour image (grey =
	 * 0.299 R + 0.587 G + 0.114 B of a grey pixel is that grey).
	 */
	img = make_grey(256, 256);
	for (int y = 0; y < 256; y++)
		for (int x = 0; x < 256; x++)
			img.pixels[y * 256 + x] = ((x / 2 + y / 2) & 1) ? 255 : 0;
	tr_face_region(&img, NULL, &r);
	CHECK_NEAR(tr_sharpness(&img, r), 1040400.0, 1e-1);
	{
		tr_image	c;

		c.width = c.height = 256;
		c.channels = 3;
		c.pixels = malloc(256 * 256 * 3);
		for (int i = 0; i < 256 * 256; i++)
			c.pixels[3 * i] = c.pixels[3 * i + 1] = c.pixels[3 * i + 2] = img.pixels[i];
		CHECK_NEAR(tr_sharpness(&c, r), 1040400.0, 1e1);
		tr_image_free(&c);
	}

	/* Bilinear upsampling of a 2x1 image [0, 255] to 4x1: 0, 63.75, 191.25, 255. */
	{
		tr_image	s = make_grey(2, 1);
		float		out[4];
		tr_box		all = {0, 0, 2, 1, 0, 0};

		s.pixels[1] = 255;
		tr_grey_resample(&s, all, 4, 1, out);
		CHECK_NEAR(out[0], 0, 1e-4);
		CHECK_NEAR(out[1], 63.75, 1e-3);
		CHECK_NEAR(out[2], 191.25, 1e-3);
		CHECK_NEAR(out[3], 255, 1e-4);
		tr_image_free(&s);
	}
	/* Area average of 3 pixels into 1: the mean. */
	{
		tr_image	s = make_grey(3, 1);
		float		out[1];
		tr_box		all = {0, 0, 3, 1, 0, 0};

		s.pixels[0] = 10;
		s.pixels[1] = 20;
		s.pixels[2] = 60;
		tr_grey_resample(&s, all, 1, 1, out);
		CHECK_NEAR(out[0], 30, 1e-4);
		tr_image_free(&s);
	}

	/* Blurring lowers sharpness monotonically; a face region is measured alone. */
	{
		double		prev;
		uint64_t	s = 7;

		for (int i = 0; i < 256 * 256; i++)
		{
			s = s * 6364136223846793005ULL + 1;
			img.pixels[i] = (uint8_t) ((s >> 40) & 255);
		}
		box[0] = 64;
		box[1] = 64;
		box[2] = 128;
		box[3] = 128;
		CHECK(tr_face_region(&img, box, &r) == 0);
		prev = tr_sharpness(&img, r);
		CHECK(prev > 1000);
		for (int k = 0; k < 3; k++)
		{
			double		now;

			blur(&img, 2);
			now = tr_sharpness(&img, r);
			CHECK_MSG(now < prev, "blur %d: %.1f not below %.1f", k, now, prev);
			prev = now;
		}
	}

	/* Face boxes: clipped to the image; outside or empty is an error. */
	box[0] = -10; box[1] = 200; box[2] = 50; box[3] = 100;
	CHECK(tr_face_region(&img, box, &r) == 0);
	CHECK(r.x == 0 && r.y == 200 && r.w == 40 && r.h == 56);
	box[0] = 300; box[1] = 0; box[2] = 10; box[3] = 10;
	CHECK(tr_face_region(&img, box, &r) == -1);
	box[0] = 0; box[1] = 0; box[2] = 0; box[3] = 10;
	CHECK(tr_face_region(&img, box, &r) == -1);
	box[0] = 2147483600; box[1] = 0; box[2] = 2147483600; box[3] = 10;
	CHECK(tr_face_region(&img, box, &r) == -1);
	tr_image_free(&img);

	/* min_face_size's side: a detected face filling a crop counts as the crop. */
	{
		tr_image	crop = {92, 112, 1, NULL};
		tr_box		face = {9, 20, 75, 80, 0, 0};
		tr_box		small = {30, 40, 40, 45, 0, 0};

		CHECK(tr_face_side(&crop, face, 1) == 92);
		CHECK(tr_face_side(&crop, face, 0) == 75);
		CHECK(tr_face_side(&crop, small, 1) == 40);
	}
	{
		tr_image	photo = {640, 480, 3, NULL};
		tr_box		face = {200, 100, 150, 180, 0, 0};

		CHECK(tr_face_side(&photo, face, 1) == 150);
	}
}
