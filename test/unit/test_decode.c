/*
 * test_decode.c: decoders on good, truncated, corrupt and oversized images: every
 * PNG colour type, depth, interlace and transparency; JPEG grey, RGB, CMYK, YCCK,
 * progressive, arithmetic, EXIF orientation; PGM/PPM.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

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

/*
 * Decode and compare with the expected pixels: the mean absolute error must be at
 * most tol and every pixel within maxerr. Then truncations, corruptions and the
 * pixel limit. Frees enc.
 */
static void
roundtrip(const char *what, uint8_t *enc, size_t len, const uint8_t *px, int w, int h, int ch,
		  tr_format want_fmt, double tol, int maxerr, size_t slack)
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
			size_t		n = (size_t) w * h * ch;

			CHECK_MSG(max_abs_diff(img.pixels, px, n) <= maxerr, "%s: pixels differ by up to %.0f",
					  what, max_abs_diff(img.pixels, px, n));
			CHECK_MSG(mean_abs_diff(img.pixels, px, n) <= tol,
					  "%s: mean error %.2f", what, mean_abs_diff(img.pixels, px, n));
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

	/* The pixel limit is enforced on the header (a 1-pixel image has no smaller limit). */
	if (w * h > 1)
	{
		rc = tr_decode(enc, len, (size_t) w * h - 1, &img, NULL, err, sizeof(err));
		CHECK_MSG(rc == TR_DECODE_TOO_LARGE, "%s: over the limit gave %d", what, rc);
		CHECK_MSG(strstr(err, "training.max_image_pixels") != NULL, "%s: %s", what, err);
		tr_image_free(&img);
	}
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

/* libpng's compositing of an 8-bit sample over white (png_composite). */
static uint8_t
over_white(unsigned v, unsigned a)
{
	unsigned	t = v * a + 255 * (255 - a) + 128;

	return (uint8_t) ((t + (t >> 8)) >> 8);
}

/* 16-bit sample over white, then rounded to 8 bits. */
static uint8_t
over_white16(unsigned v, unsigned a)
{
	double		c = ((double) v * a + 65535.0 * (65535 - a)) / 65535.0;

	return (uint8_t) (c / 257.0 + 0.5);
}

/* A reproducible pseudo-random sample in 0..n-1. */
static unsigned
rnd(unsigned n)
{
	static uint64_t s = 987654321;

	s = s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned) ((s >> 33) % n);
}

/*
 * Every PNG colour type, bit depth, interlace and kind of transparency. The
 * images are random samples (every value and alpha, including 0 and full); the
 * expected output is computed here: low depths scale to 0..255, 16 bits round
 * to 8, palettes expand to RGB, transparency is composited over white.
 */
static void
test_png_kinds(void)
{
	enum
	{
		W = 37, H = 29, N = W * H	/* odd sizes: Adam7 passes of uneven lengths */
	};
	uint16_t   *s = malloc(sizeof(uint16_t) * N * 4);
	uint8_t    *want = malloc((size_t) N * 3);
	uint8_t		plte[256 * 3];
	uint16_t	trns[256];
	size_t		len;
	char		what[96];

	for (int i = 0; i < 256 * 3; i++)
		plte[i] = (uint8_t) rnd(256);

	/* Palette, depths 1..8, with and without tRNS, plain and interlaced. */
	for (int depth = 1; depth <= 8; depth *= 2)
		for (int t = 0; t < 2; t++)
			for (int il = 0; il < 2; il++)
			{
				int			np = 1 << depth,
							nt = t ? (np > 4 ? np - 3 : np) : 0;	/* tRNS may be shorter */

				for (int i = 0; i < nt; i++)
					trns[i] = i == 0 ? 0 : i == 1 ? 255 : i == 2 ? 128 : rnd(256);
				for (int i = 0; i < N; i++)
				{
					unsigned	k = rnd(np),
								a = k < (unsigned) nt ? trns[k] : 255;

					s[i] = (uint16_t) k;
					for (int c = 0; c < 3; c++)
						want[i * 3 + c] = over_white(plte[k * 3 + c], a);
				}
				snprintf(what, sizeof(what), "PNG palette %d-bit%s%s", depth, t ? " tRNS" : "",
						 il ? " Adam7" : "");
				RT(what, unit_encode_png_ex(s, W, H, PNG_COLOR_TYPE_PALETTE, depth, il, plte, np,
											trns, nt, 0, &len),
				   want, W, H, 3, TR_FMT_PNG, 0, 0, 0);
			}

	/* Grey 1, 2, 4, 8, 16 bits, plain and interlaced, with and without a tRNS key. */
	for (int depth = 1; depth <= 16; depth *= 2)
		for (int t = 0; t < 2; t++)
			for (int il = 0; il < 2; il++)
			{
				unsigned	maxv = (1u << depth) - 1;

				trns[0] = (uint16_t) rnd(maxv + 1);
				for (int i = 0; i < N; i++)
				{
					/* the key value must occur: every 5th pixel */
					unsigned	v = (t && i % 5 == 0) ? trns[0] : rnd(maxv + 1);

					s[i] = (uint16_t) v;
					want[i] = (t && v == trns[0]) ? 255
						: depth == 16 ? (uint8_t) (v / 257.0 + 0.5) : (uint8_t) (v * 255 / maxv);
				}
				snprintf(what, sizeof(what), "PNG grey %d-bit%s%s", depth, t ? " tRNS" : "",
						 il ? " Adam7" : "");
				RT(what, unit_encode_png_ex(s, W, H, PNG_COLOR_TYPE_GRAY, depth, il, NULL, 0,
											trns, t, 0, &len),
				   want, W, H, 1, TR_FMT_PNG, 0, depth == 16, 0);
			}

	/* RGB 8 and 16 bits, with and without a tRNS key; grey+alpha; RGBA. */
	for (int depth = 8; depth <= 16; depth += 8)
		for (int kind = 0; kind < 4; kind++)
			for (int il = 0; il < 2; il++)
			{
				static const char *names[] = {"rgb", "rgb tRNS", "grey+alpha", "rgba"};
				static const int types[] = {PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB,
				PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGBA};
				int			col = kind == 2 ? 1 : 3,
							spp = kind == 2 ? 2 : kind == 3 ? 4 : 3;
				unsigned	maxv = (1u << depth) - 1;

				for (int c = 0; c < 3; c++)
					trns[c] = (uint16_t) rnd(maxv + 1);
				for (int i = 0; i < N; i++)
				{
					int			key = kind == 1 && i % 5 == 0;
					unsigned	a = maxv;

					for (int c = 0; c < spp; c++)
						s[i * spp + c] = key ? trns[c] : (uint16_t) rnd(maxv + 1);
					/* alpha: fully transparent, opaque and in between all occur */
					if (spp == 2 || spp == 4)
					{
						a = i % 7 == 0 ? 0 : i % 7 == 1 ? maxv : rnd(maxv + 1);
						s[i * spp + spp - 1] = (uint16_t) a;
					}
					for (int c = 0; c < col; c++)
					{
						unsigned	v = s[i * spp + c];

						if (key)
							want[i * col + c] = 255;
						else if (depth == 8)
							want[i * col + c] = over_white(v, a);
						else
							want[i * col + c] = over_white16(v, a);
					}
				}
				snprintf(what, sizeof(what), "PNG %s %d-bit%s", names[kind], depth, il ? " Adam7" : "");
				RT(what, unit_encode_png_ex(s, W, H, types[kind], depth, il, NULL, 0, trns,
											kind == 1 ? 3 : 0, 0, &len),
				   want, W, H, col, TR_FMT_PNG, depth == 16 ? 0.5 : 0, depth == 16, 0);
			}

	/* Tiny interlaced images: some Adam7 passes are empty. */
	for (int tw = 1; tw <= 3; tw++)
		for (int th = 1; th <= 3; th++)
		{
			for (int i = 0; i < tw * th * 4; i++)
				s[i] = (uint16_t) rnd(256);
			for (int i = 0; i < tw * th; i++)
				for (int c = 0; c < 3; c++)
					want[i * 3 + c] = over_white(s[i * 4 + c], s[i * 4 + 3]);
			snprintf(what, sizeof(what), "PNG rgba Adam7 %dx%d", tw, th);
			RT(what, unit_encode_png_ex(s, tw, th, PNG_COLOR_TYPE_RGBA, 8, 1, NULL, 0, NULL, 0, 0, &len),
			   want, tw, th, 3, TR_FMT_PNG, 0, 0, 0);
		}
	free(s);
	free(want);
}

/*
 * With a gAMA chunk libpng blends in linear light: opaque pixels keep their value,
 * transparent ones are white, and half-transparent ones lie between the colour
 * and white (lighter than a blend of the encoded values).
 */
static void
test_png_gamma(void)
{
	enum
	{
		W = 16, H = 4
	};
	uint16_t	s[W * H * 4];
	uint8_t		plte[3 * 4] = {10, 100, 200, 0, 0, 0, 250, 40, 5, 90, 90, 90};
	uint16_t	trns[4] = {255, 0, 128, 30};
	tr_image	img;
	char		err[256];
	size_t		len;
	uint8_t    *enc;
	int			rc;

	for (int i = 0; i < W * H; i++)
	{
		s[i * 4] = (uint16_t) (i * 4);
		s[i * 4 + 1] = (uint16_t) (255 - i * 3);
		s[i * 4 + 2] = 60;
		s[i * 4 + 3] = i % 3 == 0 ? 255 : i % 3 == 1 ? 0 : 128;
	}
	enc = unit_encode_png_ex(s, W, H, PNG_COLOR_TYPE_RGBA, 8, 0, NULL, 0, NULL, 0, 45455, &len);
	rc = tr_decode(enc, len, 0, &img, NULL, err, sizeof(err));
	CHECK_MSG(rc == TR_DECODE_OK, "PNG rgba gAMA: %s", err);
	if (rc == TR_DECODE_OK)
	{
		CHECK(img.channels == 3 && img.width == W && img.height == H);
		for (int i = 0; i < W * H; i++)
			for (int c = 0; c < 3; c++)
			{
				unsigned	v = s[i * 4 + c],
							got = img.pixels[i * 3 + c];

				if (i % 3 == 0)
					CHECK_MSG(got == v, "gAMA opaque pixel %d: %u, not %u", i, got, v);
				else if (i % 3 == 1)
					CHECK_MSG(got == 255, "gAMA transparent pixel %d: %u", i, got);
				else
					CHECK_MSG(got + 1 >= over_white(v, 128) && got <= 255,
							  "gAMA half pixel %d: %u below %u", i, got, over_white(v, 128));
			}
	}
	tr_image_free(&img);
	free(enc);

	/* Same for a palette with tRNS (libpng composites the palette itself). */
	for (int i = 0; i < W * H; i++)
		s[i] = (uint16_t) (i % 4);
	enc = unit_encode_png_ex(s, W, H, PNG_COLOR_TYPE_PALETTE, 8, 0, plte, 4, trns, 4, 45455, &len);
	rc = tr_decode(enc, len, 0, &img, NULL, err, sizeof(err));
	CHECK_MSG(rc == TR_DECODE_OK, "PNG palette gAMA: %s", err);
	if (rc == TR_DECODE_OK)
	{
		const uint8_t *p = img.pixels;

		CHECK(img.channels == 3);
		CHECK_MSG(p[0] == 10 && p[1] == 100 && p[2] == 200, "opaque entry %d,%d,%d", p[0], p[1], p[2]);
		CHECK_MSG(p[3] == 255 && p[4] == 255 && p[5] == 255, "transparent entry %d,%d,%d", p[3], p[4], p[5]);
		CHECK_MSG(p[6] >= over_white(250, 128) && p[7] >= over_white(40, 128) - 1 && p[8] >= over_white(5, 128) - 1,
				  "half entry %d,%d,%d", p[6], p[7], p[8]);
		CHECK_MSG(p[9] > 90 && p[9] < 255 && p[9] == p[10] && p[10] == p[11], "30/255 entry %d,%d,%d",
				  p[9], p[10], p[11]);
	}
	tr_image_free(&img);
	free(enc);
}

/* RGB to CMYK samples: K from the brightest channel; inverted (Adobe) or straight. */
static uint8_t *
rgb_to_cmyk(const uint8_t *rgb, int n, int inverted)
{
	uint8_t    *out = malloc((size_t) n * 4);

	for (int i = 0; i < n; i++)
	{
		const uint8_t *p = rgb + i * 3;
		unsigned	mx = p[0] > p[1] ? p[0] : p[1];
		uint8_t    *q = out + i * 4;

		mx = mx > p[2] ? mx : p[2];
		/* light let through: C' = R / max, K' = max (R = C' K') */
		for (int c = 0; c < 3; c++)
			q[c] = mx ? (uint8_t) ((p[c] * 255 + mx / 2) / mx) : 255;
		q[3] = (uint8_t) mx;
		if (!inverted)
			for (int c = 0; c < 4; c++)
				q[c] = (uint8_t) (255 - q[c]);
	}
	return out;
}

/*
 * CMYK and YCCK (Adobe inverted, and straight CMYK without the Adobe marker),
 * progressive and arithmetic-coded JPEGs, against the RGB they were made from.
 */
static void
test_jpeg_kinds(void)
{
	int			w = 48,
				h = 32;
	uint8_t    *rgb = pattern(w, h, 3);
	uint8_t    *grey = pattern(w, h, 1);
	uint8_t    *inv = rgb_to_cmyk(rgb, w * h, 1);
	uint8_t    *straight = rgb_to_cmyk(rgb, w * h, 0);
	uint8_t    *enc;
	size_t		len;

	RT("JPEG CMYK Adobe", unit_encode_jpeg_ex(inv, w, h, 4, 95, 0, 0, 1, 0, 0, &len),
	   rgb, w, h, 3, TR_FMT_JPEG, 3, 40, 0);
	RT("JPEG YCCK Adobe", unit_encode_jpeg_ex(inv, w, h, 4, 95, 0, 1, 1, 0, 0, &len),
	   rgb, w, h, 3, TR_FMT_JPEG, 10, 120, 0);
	RT("JPEG CMYK no Adobe marker", unit_encode_jpeg_ex(straight, w, h, 4, 95, 0, 0, 0, 0, 0, &len),
	   rgb, w, h, 3, TR_FMT_JPEG, 3, 40, 0);
	RT("JPEG CMYK Adobe progressive", unit_encode_jpeg_ex(inv, w, h, 4, 95, 0, 0, 1, 1, 0, &len),
	   rgb, w, h, 3, TR_FMT_JPEG, 3, 40, 0);
	RT("JPEG rgb progressive", unit_encode_jpeg_ex(rgb, w, h, 3, 95, 0, 0, 1, 1, 0, &len),
	   rgb, w, h, 3, TR_FMT_JPEG, 10, 120, 0);
	RT("JPEG grey progressive", unit_encode_jpeg_ex(grey, w, h, 1, 95, 0, 0, 1, 1, 0, &len),
	   grey, w, h, 1, TR_FMT_JPEG, 2, 40, 0);

	/* Which way the CMYK samples are read matters: inverted data without the marker is far off. */
	{
		tr_image	img;
		char		err[256];

		enc = unit_encode_jpeg_ex(inv, w, h, 4, 95, 0, 0, 0, 0, 0, &len);
		CHECK(tr_decode(enc, len, 0, &img, NULL, err, sizeof(err)) == TR_DECODE_OK);
		CHECK(img.pixels && img.channels == 3 && mean_abs_diff(img.pixels, rgb, (size_t) w * h * 3) > 40);
		tr_image_free(&img);
		free(enc);
	}

	/* Arithmetic coding: skipped if this libjpeg cannot encode it. */
	enc = unit_encode_jpeg_ex(rgb, w, h, 3, 95, 0, 0, 1, 0, 1, &len);
	if (enc == NULL)
		fprintf(stderr, "decode: libjpeg has no arithmetic encoder, arithmetic JPEG tests skipped\n");
	else
	{
		CHECK(len > 2);
		RT("JPEG rgb arithmetic", enc, rgb, w, h, 3, TR_FMT_JPEG, 10, 120, 0);
		RT("JPEG grey arithmetic progressive", unit_encode_jpeg_ex(grey, w, h, 1, 95, 0, 0, 1, 1, 1, &len),
		   grey, w, h, 1, TR_FMT_JPEG, 2, 40, 0);
		RT("JPEG YCCK arithmetic", unit_encode_jpeg_ex(inv, w, h, 4, 95, 0, 1, 1, 0, 1, &len),
		   rgb, w, h, 3, TR_FMT_JPEG, 10, 120, 0);
	}
	free(rgb);
	free(grey);
	free(inv);
	free(straight);
}

/*
 * The decoder applies EXIF orientation while storing rows; the result must equal
 * decoding unrotated and calling tr_image_orient, for every kind of JPEG path
 * (direct rows, CMYK conversion, progressive).
 */
static void
test_jpeg_orient(void)
{
	int			w = 24,
				h = 17;
	uint8_t    *rgb = pattern(w, h, 3);
	uint8_t    *grey = pattern(w, h, 1);
	uint8_t    *inv = rgb_to_cmyk(rgb, w * h, 1);

	for (int kind = 0; kind < 4; kind++)
	{
		const uint8_t *src = kind == 0 ? rgb : kind == 1 ? grey : kind == 2 ? inv : rgb;
		int			ch = kind == 0 || kind == 3 ? 3 : kind == 1 ? 1 : 4;
		int			prog = kind == 3;
		tr_image	ref;
		char		err[256];
		size_t		len;
		uint8_t    *enc = unit_encode_jpeg_ex(src, w, h, ch, 90, 0, 0, 1, prog, 0, &len);

		CHECK(tr_decode(enc, len, 0, &ref, NULL, err, sizeof(err)) == TR_DECODE_OK);
		free(enc);
		for (int o = 1; o <= 8 && ref.pixels; o++)
		{
			tr_image	img,
						want;
			int			rc;

			enc = unit_encode_jpeg_ex(src, w, h, ch, 90, o, 0, 1, prog, 0, &len);
			rc = tr_decode(enc, len, 0, &img, NULL, err, sizeof(err));
			want = ref;
			want.pixels = malloc((size_t) w * h * ref.channels);
			memcpy(want.pixels, ref.pixels, (size_t) w * h * ref.channels);
			CHECK(tr_image_orient(&want, o) == 0);
			CHECK_MSG(rc == TR_DECODE_OK && img.width == want.width && img.height == want.height &&
					  img.channels == want.channels &&
					  memcmp(img.pixels, want.pixels, (size_t) w * h * want.channels) == 0,
					  "kind %d orientation %d differs from tr_image_orient", kind, o);
			tr_image_free(&img);
			tr_image_free(&want);
			free(enc);
		}
		tr_image_free(&ref);
	}
	free(rgb);
	free(grey);
	free(inv);
}

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

	RT("P6", unit_encode_pnm(rgb, w, h, 3, 0, &len), rgb, w, h, 3, TR_FMT_PPM, 0, 0, 0);
	RT("P5", unit_encode_pnm(grey, w, h, 1, 0, &len), grey, w, h, 1, TR_FMT_PGM, 0, 0, 0);
	RT("P3", unit_encode_pnm(rgb, w, h, 3, 1, &len), rgb, w, h, 3, TR_FMT_PPM, 0, 0, 5);
	RT("P2", unit_encode_pnm(grey, w, h, 1, 1, &len), grey, w, h, 1, TR_FMT_PGM, 0, 0, 5);
	RT("PNG rgb", unit_encode_png(rgb, w, h, 3, 0, 0, &len), rgb, w, h, 3, TR_FMT_PNG, 0, 0, 0);
	RT("PNG grey", unit_encode_png(grey, w, h, 1, 0, 0, &len), grey, w, h, 1, TR_FMT_PNG, 0, 0, 0);
	/* unit_encode_png's alpha is 200 everywhere: composited over white. */
	{
		uint8_t    *rgb_w = malloc((size_t) w * h * 3),
				   *grey_w = malloc((size_t) w * h);

		for (int i = 0; i < w * h * 3; i++)
			rgb_w[i] = over_white(rgb[i], 200);
		for (int i = 0; i < w * h; i++)
			grey_w[i] = over_white(grey[i], 200);
		RT("PNG rgba", unit_encode_png(rgb, w, h, 3, 0, 1, &len), rgb_w, w, h, 3, TR_FMT_PNG, 0, 0, 0);
		RT("PNG grey+alpha 16-bit", unit_encode_png(grey, w, h, 1, 1, 1, &len), grey_w, w, h, 1,
		   TR_FMT_PNG, 0.5, 1, 0);
		free(rgb_w);
		free(grey_w);
	}
	RT("JPEG rgb", unit_encode_jpeg(rgb, w, h, 3, 95, 0, &len), rgb, w, h, 3, TR_FMT_JPEG, 10, 255, 0);
	RT("JPEG grey", unit_encode_jpeg(grey, w, h, 1, 95, 0, &len), grey, w, h, 1, TR_FMT_JPEG, 3, 255, 0);
	test_exif();
	test_png_kinds();
	test_png_gamma();
	test_jpeg_kinds();
	test_jpeg_orient();

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
