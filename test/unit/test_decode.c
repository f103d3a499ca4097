/*
 * test_decode.c: decoders on good, truncated, corrupt and oversized images.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "unit.h"

/* An RGB test pattern: red grows to the right, green downwards, blue in blocks. */
static uint8_t *
pattern(int w, int h, int channels)
{
	uint8_t    *px = malloc((size_t) w * h * channels);

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
		{
			uint8_t    *p = px + ((size_t) y * w + x) * channels;
			int			r = x * 255 / (w - 1),
						g = y * 255 / (h - 1),
						b = ((x / 8 + y / 8) % 2) ? 220 : 30;

			if (channels == 1)
				p[0] = (uint8_t) ((r + g) / 2);
			else
			{
				p[0] = (uint8_t) r;
				p[1] = (uint8_t) g;
				p[2] = (uint8_t) b;
			}
		}
	return px;
}

static double
max_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	double		m = 0;

	for (size_t i = 0; i < n; i++)
		if (fabs((double) a[i] - b[i]) > m)
			m = fabs((double) a[i] - b[i]);
	return m;
}

static double
mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	double		s = 0;

	for (size_t i = 0; i < n; i++)
		s += fabs((double) a[i] - b[i]);
	return s / n;
}

/* Decode and compare with the original; tol is the largest mean error allowed. */
static void
roundtrip(const char *what, uint8_t *enc, size_t len, const uint8_t *px, int w, int h, int ch,
		  tr_format want_fmt, double tol, int exact, size_t slack)
{
	tr_image	img;
	tr_format	fmt;
	char		err[256] = "";
	int			rc = tr_decode(enc, len, 0, &img, &fmt, err, sizeof(err));

	CHECK_MSG(rc == TR_DECODE_OK, "%s: %s", what, err);
	CHECK_MSG(fmt == want_fmt, "%s: format %s", what, tr_format_name(fmt));
	if (rc == TR_DECODE_OK)
	{
		CHECK_MSG(img.width == w && img.height == h && img.channels == ch,
				  "%s: %dx%dx%d", what, img.width, img.height, img.channels);
		if (img.width == w && img.height == h && img.channels == ch)
		{
			if (exact)
				CHECK_MSG(max_abs_diff(img.pixels, px, (size_t) w * h * ch) == 0, "%s: pixels differ", what);
			else
				CHECK_MSG(mean_abs_diff(img.pixels, px, (size_t) w * h * ch) <= tol,
						  "%s: mean error %.2f", what, mean_abs_diff(img.pixels, px, (size_t) w * h * ch));
		}
	}
	tr_image_free(&img);

	/* Every strict prefix is an error, never a crash (header-only prefixes included). */
	/* (ASCII PNM: a cut inside the last number still reads as a number, hence slack.) */
	for (size_t cut = 0; cut + slack < len; cut += (len > 400 ? len / 97 + 1 : 1))
	{
		rc = tr_decode(enc, cut, 0, &img, NULL, err, sizeof(err));
		CHECK_MSG(rc == TR_DECODE_CORRUPT, "%s truncated to %zu of %zu bytes decoded", what, cut, len);
		CHECK(img.pixels == NULL);
		tr_image_free(&img);
	}

	/* Corrupted bytes: any result but a crash or a leak (valgrind checks). */
	{
		uint8_t    *bad = malloc(len);
		uint64_t	s = 12345;

		for (int trial = 0; trial < 40; trial++)
		{
			memcpy(bad, enc, len);
			for (int k = 0; k < 8; k++)
			{
				s = s * 6364136223846793005ULL + 1442695040888963407ULL;
				bad[(s >> 33) % len] ^= (uint8_t) (1 + ((s >> 20) & 0x7f));
			}
			rc = tr_decode(bad, len, 0, &img, NULL, err, sizeof(err));
			CHECK(rc == TR_DECODE_OK || rc == TR_DECODE_CORRUPT);
			if (rc == TR_DECODE_OK)
				CHECK(img.width > 0 && img.height > 0 && img.pixels != NULL);
			tr_image_free(&img);
		}
		free(bad);
	}

	/* The pixel limit is enforced on the header. */
	rc = tr_decode(enc, len, (size_t) w * h - 1, &img, NULL, err, sizeof(err));
	CHECK_MSG(rc == TR_DECODE_TOO_LARGE, "%s: over the limit gave %d", what, rc);
	CHECK_MSG(strstr(err, "training.max_image_pixels") != NULL, "%s: %s", what, err);
	tr_image_free(&img);
	rc = tr_decode(enc, len, (size_t) w * h, &img, NULL, err, sizeof(err));
	CHECK_MSG(rc == TR_DECODE_OK, "%s: at the limit: %s", what, err);
	tr_image_free(&img);
	free(enc);
}

static void
test_exif(void)
{
	/* 32x16 colour image: left half red, right half blue, top rows green-tinted. */
	int			w = 32,
				h = 16;
	uint8_t    *px = malloc(w * h * 3);

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
		{
			uint8_t    *p = px + (y * w + x) * 3;

			p[0] = x < w / 2 ? 230 : 20;
			p[1] = y < h / 2 ? 200 : 20;
			p[2] = x < w / 2 ? 20 : 230;
		}
	for (int o = 1; o <= 8; o++)
	{
		size_t		len;
		uint8_t    *enc = unit_encode_jpeg(px, w, h, 3, 95, o, &len);
		tr_image	img;
		char		err[256];
		int			rc = tr_decode(enc, len, 0, &img, NULL, err, sizeof(err));

		CHECK_MSG(rc == TR_DECODE_OK, "orientation %d: %s", o, err);
		if (rc == TR_DECODE_OK)
		{
			int			W = o >= 5 ? h : w,
						H = o >= 5 ? w : h;

			CHECK_MSG(img.width == W && img.height == H, "orientation %d: %dx%d", o, img.width, img.height);
			/* Where does the source's top-left corner (red, green-tinted) land? */
			{
				int			cx,
							cy;
				const uint8_t *p;

				switch (o)
				{
					case 1: cx = 0; cy = 0; break;
					case 2: cx = W - 1; cy = 0; break;
					case 3: cx = W - 1; cy = H - 1; break;
					case 4: cx = 0; cy = H - 1; break;
					case 5: cx = 0; cy = 0; break;
					case 6: cx = W - 1; cy = 0; break;
					case 7: cx = W - 1; cy = H - 1; break;
					default: cx = 0; cy = H - 1; break;
				}
				p = img.pixels + ((size_t) cy * img.width + cx) * 3;
				CHECK_MSG(p[0] > 150 && p[1] > 120 && p[2] < 100,
						  "orientation %d: corner (%d,%d) is %d,%d,%d", o, cx, cy, p[0], p[1], p[2]);
			}
		}
		tr_image_free(&img);
		free(enc);
	}
	free(px);

	/* Malformed EXIF payloads read as orientation 1. */
	{
		const uint8_t bad1[] = "Exif\0\0MM\0*\0\0\0\x08";	/* IFD count missing */
		const uint8_t bad2[] = "Exif\0\0II*\0\xff\xff\xff\x7f";	/* IFD far outside */
		const uint8_t big_endian[] = {'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8,
		0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0};

		CHECK(tr_exif_orientation(bad1, sizeof(bad1) - 1) == 1);
		CHECK(tr_exif_orientation(bad2, sizeof(bad2) - 1) == 1);
		CHECK(tr_exif_orientation((const uint8_t *) "Exif", 4) == 1);
		CHECK(tr_exif_orientation(big_endian, sizeof(big_endian)) == 6);
	}
}

/* Encode first, then round-trip (argument evaluation order is unspecified). */
#define RT(what, enc, ...) do { uint8_t *e_ = (enc); roundtrip(what, e_, len, __VA_ARGS__); } while (0)

void
test_decode(void)
{
	int			w = 40,
				h = 30;
	uint8_t    *rgb = pattern(w, h, 3);
	uint8_t    *grey = pattern(w, h, 1);
	size_t		len;
	char		err[256];
	tr_image	img;

	RT("P6", unit_encode_pnm(rgb, w, h, 3, 0, &len), rgb, w, h, 3, TR_FMT_PPM, 0, 1, 0);
	RT("P5", unit_encode_pnm(grey, w, h, 1, 0, &len), grey, w, h, 1, TR_FMT_PGM, 0, 1, 0);
	RT("P3", unit_encode_pnm(rgb, w, h, 3, 1, &len), rgb, w, h, 3, TR_FMT_PPM, 0, 1, 5);
	RT("P2", unit_encode_pnm(grey, w, h, 1, 1, &len), grey, w, h, 1, TR_FMT_PGM, 0, 1, 5);
	RT("PNG rgb", unit_encode_png(rgb, w, h, 3, 0, 0, &len), rgb, w, h, 3, TR_FMT_PNG, 0, 1, 0);
	RT("PNG grey", unit_encode_png(grey, w, h, 1, 0, 0, &len), grey, w, h, 1, TR_FMT_PNG, 0, 1, 0);
	RT("PNG rgba", unit_encode_png(rgb, w, h, 3, 0, 1, &len), rgb, w, h, 3, TR_FMT_PNG, 0, 1, 0);
	RT("PNG grey+alpha 16-bit", unit_encode_png(grey, w, h, 1, 1, 1, &len), grey, w, h, 1,
			  TR_FMT_PNG, 0, 1, 0);
	RT("JPEG rgb", unit_encode_jpeg(rgb, w, h, 3, 95, 0, &len), rgb, w, h, 3, TR_FMT_JPEG, 10, 0, 0);
	RT("JPEG grey", unit_encode_jpeg(grey, w, h, 1, 95, 0, &len), grey, w, h, 1, TR_FMT_JPEG, 3, 0, 0);
	test_exif();

	/* PGM with maxval 65535 (two bytes per sample) scales to 8 bits. */
	{
		const uint8_t p[] = "P5 2 1 65535\n\xff\xff\x80\x00";

		CHECK(tr_decode(p, sizeof(p) - 1, 0, &img, NULL, err, sizeof(err)) == TR_DECODE_OK);
		CHECK(img.width == 2 && img.pixels && img.pixels[0] == 255 && img.pixels[1] == 128);
		tr_image_free(&img);
	}
	/* Unknown data names the accepted formats. */
	{
		const uint8_t junk[] = "GIF89a not accepted";

		CHECK(tr_decode(junk, sizeof(junk) - 1, 0, &img, NULL, err, sizeof(err)) == TR_DECODE_CORRUPT);
		CHECK(strstr(err, "JPEG") && strstr(err, "PNG") && strstr(err, "PGM"));
		CHECK(tr_decode(NULL, 0, 0, &img, NULL, err, sizeof(err)) == TR_DECODE_CORRUPT);
		CHECK(tr_sniff_format(junk, sizeof(junk) - 1) == TR_FMT_UNKNOWN);
	}
	/* Headers with absurd sizes are refused before any allocation. */
	{
		const uint8_t huge[] = "P5 99999999 99999999 255\n";
		const uint8_t zero[] = "P6 0 10 255\n";

		CHECK(tr_decode(huge, sizeof(huge) - 1, 0, &img, NULL, err, sizeof(err)) == TR_DECODE_CORRUPT);
		CHECK(tr_decode(zero, sizeof(zero) - 1, 0, &img, NULL, err, sizeof(err)) == TR_DECODE_CORRUPT);
	}
	free(rgb);
	free(grey);
}
