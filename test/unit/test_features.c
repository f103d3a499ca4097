/*
 * test_features.c: the feature interface and the classic feature kinds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trfeatures.h"
#include "unit.h"

static tr_image
texture(int w, int h, int channels, uint64_t seed, int shift)
{
	tr_image	img;
	uint64_t	s = seed;

	img.width = w;
	img.height = h;
	img.channels = channels;
	img.pixels = malloc((size_t) w * h * channels);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < channels; c++)
			{
				int			v;

				s = s * 6364136223846793005ULL + 1442695040888963407ULL;
				v = 40 + (int) ((s >> 40) % 60) + (int) (60 * sin(x * 0.3 + c) * cos(y * 0.2)) + shift;
				img.pixels[((size_t) y * w + x) * channels + c] = (uint8_t) (v < 0 ? 0 : v > 255 ? 255 : v);
			}
	return img;
}

static double
dist(const float *a, const float *b, int n)
{
	double		s = 0;

	for (int i = 0; i < n; i++)
		s += (double) (a[i] - b[i]) * (a[i] - b[i]);
	return sqrt(s);
}

static double
norm(const float *a, int n)
{
	double		s = 0;

	for (int i = 0; i < n; i++)
		s += (double) a[i] * a[i];
	return sqrt(s);
}

static int
dummy_extract(const tr_features *self, const tr_image *img, tr_box r, float *out, char *err, size_t errlen)
{
	(void) img;
	(void) err;
	(void) errlen;
	for (int i = 0; i < self->dim; i++)
		out[i] = (float) (r.w + i);
	return 0;
}

void
test_features(void)
{
	/* Uniform LBP: 58 uniform patterns in distinct bins, the rest share bin 58. */
	{
		int			seen[59] = {0},
					distinct = 0;

		for (unsigned p = 0; p < 256; p++)
		{
			int			b = tr_lbp_uniform_bin(p);

			CHECK(b >= 0 && b < 59);
			if (b >= 0 && b < 59 && !seen[b]++)
				distinct++;
		}
		CHECK(distinct == 59);
		CHECK(tr_lbp_uniform_bin(0x00) != 58 && tr_lbp_uniform_bin(0xFF) != 58);
		CHECK(tr_lbp_uniform_bin(0x0F) != 58 && tr_lbp_uniform_bin(0x81) != 58);
		CHECK(tr_lbp_uniform_bin(0x55) == 58 && tr_lbp_uniform_bin(0x05) == 58);
		CHECK(seen[58] == 256 - 58);
	}

	for (int type = 0; type <= 1; type++)
	{
		const tr_features *f = tr_features_default(type);
		int			ch = type == 0 ? 1 : 3;
		tr_image	a = texture(92, 112, ch, 1, 0),
					a2 = texture(92, 112, ch, 1, 25),
					b = texture(92, 112, ch, 2, 0);
		tr_box		r = {0, 0, 92, 112, 0, 0};
		float	   *fa = malloc(sizeof(float) * f->dim),
				   *fa2 = malloc(sizeof(float) * f->dim),
				   *fa3 = malloc(sizeof(float) * f->dim),
				   *fb = malloc(sizeof(float) * f->dim);
		char		err[256];

		CHECK(f != NULL && f->dim > 0);
		CHECK(tr_features_find(f->name) == f);
		CHECK(f->extract(f, &a, r, fa, err, sizeof(err)) == 0);
		CHECK(f->extract(f, &a, r, fa3, err, sizeof(err)) == 0);
		CHECK(f->extract(f, &a2, r, fa2, err, sizeof(err)) == 0);
		CHECK(f->extract(f, &b, r, fb, err, sizeof(err)) == 0);
		CHECK_NEAR(norm(fa, f->dim), 1.0, 1e-4);
		CHECK(memcmp(fa, fa3, sizeof(float) * f->dim) == 0);	/* deterministic */
		for (int i = 0; i < f->dim; i++)
			CHECK_MSG(isfinite(fa[i]) && fa[i] >= 0, "%s[%d] = %g", f->name, i, fa[i]);
		/* Face features: a brighter copy stays close, closer than another texture. */
		if (type == 0)
			CHECK_MSG(dist(fa, fa2, f->dim) < dist(fa, fb, f->dim), "%s: %.3f vs %.3f", f->name,
					  dist(fa, fa2, f->dim), dist(fa, fb, f->dim));
		if (type == 0)
			CHECK_MSG(dist(fa, fa2, f->dim) < 0.1, "face features not brightness invariant: %.3f",
					  dist(fa, fa2, f->dim));
		/* A sub-region and a tiny 1x1 region work too. */
		{
			tr_box		sub = {10, 20, 40, 50, 0, 0},
						one = {5, 5, 1, 1, 0, 0};

			CHECK(f->extract(f, &a, sub, fb, err, sizeof(err)) == 0);
			CHECK_NEAR(norm(fb, f->dim), 1.0, 1e-4);
			CHECK(f->extract(f, &a, one, fb, err, sizeof(err)) == 0);
		}
		/* Landmark features accept grey images. */
		if (type == 1)
		{
			tr_image	g = texture(50, 40, 1, 3, 0);
			tr_box		gr = {0, 0, 50, 40, 0, 0};

			CHECK(f->extract(f, &g, gr, fb, err, sizeof(err)) == 0);
			CHECK_NEAR(norm(fb, f->dim), 1.0, 1e-4);
			tr_image_free(&g);
		}
		tr_image_free(&a);
		tr_image_free(&a2);
		tr_image_free(&b);
		free(fa);
		free(fa2);
		free(fa3);
		free(fb);
	}

	/* Another implementation plugs in by name; the defaults stay the classic kinds. */
	{
		static const tr_features dummy = {"unit-dummy", 3, dummy_extract, NULL, NULL, 0, NULL};
		static const tr_features clash = {"face-lbp-hog-v1", 3, dummy_extract, NULL, NULL, 0, NULL};
		const tr_features *old = tr_features_default(TR_FEATURES_FACE);

		CHECK(tr_features_find("unit-dummy") == NULL);
		CHECK(tr_features_register(&dummy) == 0);
		CHECK(tr_features_find("unit-dummy") == &dummy);
		CHECK(tr_features_register(&dummy) == 0);
		CHECK(tr_features_default(TR_FEATURES_FACE) == old);
		CHECK(tr_features_register(&clash) == -1);
		CHECK(tr_features_find("face-lbp-hog-v1") == old);
	}
}
