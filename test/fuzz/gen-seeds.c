/*
 * gen-seeds.c - writes the seed corpus of the fuzz targets (run by
 * make-corpus.sh): tiny valid JPEG (libjpeg), PNG (libpng), PGM and PPM
 * images into OUT/corpus-decode, models written by the core's own
 * tr_model_serialize into OUT/corpus-model, and weights manifests with
 * their shards in fuzz_weights' input format into OUT/corpus-weights.
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

static const char *outdir;

static FILE *
open_out(const char *sub, const char *name)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/corpus-%s/seed-%s", outdir, sub, name);
	f = fopen(path, "wb");
	if (!f)
	{
		perror(path);
		exit(1);
	}
	return f;
}

static void
write_bytes(const char *sub, const char *name, const void *p, size_t n)
{
	FILE	   *f = open_out(sub, name);

	if (fwrite(p, 1, n, f) != n || fclose(f) != 0)
	{
		perror(name);
		exit(1);
	}
}

/* A w x h test pattern with ch channels (values fit in 8 bits). */
static unsigned char *
pattern(int w, int h, int ch)
{
	unsigned char *p = malloc((size_t) w * h * ch);

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < ch; c++)
				p[((size_t) y * w + x) * ch + c] = (unsigned char) (x * 29 + y * 13 + c * 71);
	return p;
}

/* mode: 0 baseline Huffman, 1 progressive, 2 arithmetic-coded; ch 4 is CMYK. */
static void
jpeg(const char *name, int w, int h, int ch, int mode, int orientation)
{
	struct jpeg_compress_struct ci;
	struct jpeg_error_mgr jerr;
	unsigned char *px = pattern(w, h, ch);
	FILE	   *f = open_out("decode", name);

	ci.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&ci);
	jpeg_stdio_dest(&ci, f);
	ci.image_width = w;
	ci.image_height = h;
	ci.input_components = ch;
	ci.in_color_space = ch == 1 ? JCS_GRAYSCALE : ch == 4 ? JCS_CMYK : JCS_RGB;
	jpeg_set_defaults(&ci);
	jpeg_set_quality(&ci, 75, TRUE);
	if (mode == 1)
		jpeg_simple_progression(&ci);
	ci.arith_code = mode == 2;
	jpeg_start_compress(&ci, TRUE);
	if (orientation)
	{
		/* EXIF APP1: little-endian TIFF, one IFD entry 0x0112 (SHORT). */
		unsigned char exif[] = {'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0,
			1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, (unsigned char) orientation, 0, 0, 0,
		0, 0, 0, 0};

		jpeg_write_marker(&ci, JPEG_APP0 + 1, exif, sizeof(exif));
	}
	while (ci.next_scanline < ci.image_height)
	{
		JSAMPROW	row = px + (size_t) ci.next_scanline * w * ch;

		jpeg_write_scanlines(&ci, &row, 1);
	}
	jpeg_finish_compress(&ci);
	jpeg_destroy_compress(&ci);
	fclose(f);
	free(px);
}

static void
png(const char *name, int w, int h, int color_type, int depth, int interlace)
{
	FILE	   *f = open_out("decode", name);
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop	info = png_create_info_struct(png);
	int			ch = color_type == PNG_COLOR_TYPE_GRAY ? 1 :
		color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 :
		color_type == PNG_COLOR_TYPE_RGB ? 3 :
		color_type == PNG_COLOR_TYPE_RGBA ? 4 : 1;
	int			bps = depth == 16 ? 2 : 1;
	unsigned char *px = pattern(w * bps, h, ch);

	if (setjmp(png_jmpbuf(png)))
	{
		fprintf(stderr, "libpng error writing %s\n", name);
		exit(1);
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, w, h, depth, color_type,
				 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
				 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (color_type == PNG_COLOR_TYPE_PALETTE)
	{
		png_color	pal[16];

		for (int i = 0; i < 16; i++)
		{
			pal[i].red = (png_byte) (i * 16);
			pal[i].green = (png_byte) (255 - i * 16);
			pal[i].blue = (png_byte) (i * 7);
		}
		png_set_PLTE(png, info, pal, 16);
		for (size_t i = 0; i < (size_t) w * h; i++)
			px[i] &= 15;
	}
	png_write_info(png, info);
	{
		int			passes = interlace ? png_set_interlace_handling(png) : 1;

		for (int pass = 0; pass < passes; pass++)
			for (int y = 0; y < h; y++)
				png_write_row(png, px + (size_t) y * w * bps * ch);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	fclose(f);
	free(px);
}

static void
pnm(const char *name, int magic, int w, int h, int maxval)
{
	FILE	   *f = open_out("decode", name);
	int			ch = (magic == 3 || magic == 6) ? 3 : 1;
	unsigned char *px = pattern(w, h, ch);

	fprintf(f, "P%d\n# seed\n%d %d\n%d\n", magic, w, h, maxval);
	for (size_t i = 0; i < (size_t) w * h * ch; i++)
	{
		unsigned	v = px[i] % (maxval + 1);

		if (magic == 2 || magic == 3)
			fprintf(f, "%u%c", v, (i + 1) % 12 ? ' ' : '\n');
		else if (maxval > 255)
		{
			fputc((int) (v >> 8), f);
			fputc((int) (v & 255), f);
		}
		else
			fputc((int) v, f);
	}
	fclose(f);
	free(px);
}

static void
model(const char *name, const char *kind, int type, int e, int c)
{
	const tr_features *f = tr_features_find(kind);
	tr_model	m;
	uint8_t    *b;
	size_t		n;
	char	   *ids[4] = {"a", "class-2", "", "x"};
	char	   *labels[4] = {"Alice", "", "\xc3\xa9t\xc3\xa9", "y"};

	if (!f)
	{
		fprintf(stderr, "gen-seeds: unknown feature kind %s\n", kind);
		exit(1);
	}
	memset(&m, 0, sizeof(m));
	m.format_version = TR_MODEL_FORMAT_VERSION;
	m.type = type;
	snprintf(m.feature_kind, sizeof(m.feature_kind), "%s", kind);
	m.min_face_size = 24;
	m.sharpness_threshold = 10;
	if (tr_net_alloc(&m.net, f->dim, e, c, 16.0f) != 0)
		exit(1);
	for (int i = 0; i < f->dim; i++)
		m.net.mean[i] = (float) i / f->dim;
	for (size_t i = 0; e > 0 && i < (size_t) e * f->dim; i++)
		m.net.W1[i] = (float) ((i * 7919) % 101) / 50.0f - 1.0f;
	for (size_t i = 0; i < (size_t) c * TR_NET_EDIM(&m.net); i++)
		m.net.W2[i] = (float) ((i * 104729) % 97) / 48.0f - 1.0f;
	m.class_ids = ids;
	m.labels = labels;
	if (tr_model_serialize(&m, &b, &n) != 0)
		exit(1);
	write_bytes("model", name, b, n);
	free(b);
	tr_net_free(&m.net);
}

/* A weights seed: manifest, then each shard after "\n--\n". */
static void
weights(const char *name, const char *manifest, int nshards,
		const unsigned char *const *shards, const size_t *lens)
{
	FILE	   *f = open_out("weights", name);

	fputs(manifest, f);
	for (int i = 0; i < nshards; i++)
	{
		fputs("\n--\n", f);
		fwrite(shards[i], 1, lens[i], f);
	}
	fclose(f);
}

int
main(int argc, char **argv)
{
	if (argc != 2)
	{
		fprintf(stderr, "usage: gen-seeds OUTDIR\n");
		return 2;
	}
	outdir = argv[1];

	jpeg("grey.jpg", 8, 8, 1, 0, 0);
	jpeg("rgb.jpg", 16, 8, 3, 0, 0);
	jpeg("progressive.jpg", 9, 7, 3, 1, 0);
	jpeg("exif6.jpg", 12, 5, 3, 0, 6);
	jpeg("exif3-grey.jpg", 5, 3, 1, 0, 3);
	jpeg("cmyk.jpg", 6, 5, 4, 0, 0);
	jpeg("arith.jpg", 7, 6, 3, 2, 8);
	png("grey.png", 7, 5, PNG_COLOR_TYPE_GRAY, 8, 0);
	png("rgb.png", 6, 4, PNG_COLOR_TYPE_RGB, 8, 0);
	png("rgba.png", 5, 5, PNG_COLOR_TYPE_RGBA, 8, 0);
	png("greyalpha.png", 3, 4, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0);
	png("palette.png", 8, 3, PNG_COLOR_TYPE_PALETTE, 8, 0);
	png("rgb16.png", 4, 3, PNG_COLOR_TYPE_RGB, 16, 0);
	png("grey16-interlaced.png", 9, 9, PNG_COLOR_TYPE_GRAY, 16, 1);
	pnm("p5.pgm", 5, 6, 4, 255);
	pnm("p5-16.pgm", 5, 3, 2, 1000);
	pnm("p2.pgm", 2, 4, 3, 15);
	pnm("p6.ppm", 6, 4, 4, 255);
	pnm("p3.ppm", 3, 3, 2, 255);

	model("face.trnm", "face-lbp-hog-v1", 0, 0, 2);
	model("face-proj.trnm", "face-lbp-hog-v1", 0, 2, 3);
	model("landmark.trnm", "landmark-colour-hog-v1", 1, 0, 1);

	{
		/* As test/unit/test_nn.c: uint8-quantized "a", float32 "b". */
		static const unsigned char s0[] = {0, 1, 2, 255,
			0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x10, 0xc0};
		static const unsigned char s1[] = {1, 0, 2, 0, 0xff, 0xff,
			0x00, 0x00, 0x80, 0x3f};
		const unsigned char *sh[2] = {s0, s1};
		size_t		len[2] = {sizeof(s0), sizeof(s1)};

		weights("simple.wm",
				"[{\"paths\":[\"0\"],\"weights\":["
				"{\"name\":\"a\",\"shape\":[2,2],\"dtype\":\"float32\","
				"\"quantization\":{\"dtype\":\"uint8\",\"scale\":0.5,\"min\":-1}},"
				"{\"name\":\"b\",\"shape\":[2],\"dtype\":\"float32\"}]}]",
				1, sh, len);
		weights("two-groups.wm",
				"[{\"paths\":[\"0\"],\"weights\":["
				"{\"name\":\"conv/filters\",\"shape\":[1,1,1,3],\"dtype\":\"float32\"}]},"
				"{\"paths\":[\"1\"],\"weights\":["
				"{\"name\":\"q16\",\"shape\":[3],\"dtype\":\"float32\","
				"\"quantization\":{\"dtype\":\"uint16\",\"scale\":0.25,\"min\":0}},"
				"{\"name\":\"scalar\",\"shape\":[],\"dtype\":\"float32\"}]}]",
				2, sh, len);
		weights("multi-shard.wm",
				"[{\"paths\":[\"0\",\"1\"],\"weights\":["
				"{\"name\":\"all\",\"shape\":[22],\"dtype\":\"float32\","
				"\"quantization\":{\"dtype\":\"uint8\",\"scale\":1,\"min\":0}}]}]",
				2, sh, len);
		/* Shape products that wrap around size_t (must be rejected). */
		weights("overflow.wm",
				"[{\"paths\":[\"0\"],\"weights\":["
				"{\"name\":\"f\",\"shape\":[65536,65536,65536,65536],\"dtype\":\"float32\"}]}]",
				1, sh, len);
		weights("overflow-noshard.wm",
				"[{\"paths\":[],\"weights\":["
				"{\"name\":\"conv0/filters\",\"shape\":[4194304,4194304,3,1048576],"
				"\"dtype\":\"float32\",\"quantization\":{\"dtype\":\"uint8\",\"scale\":1,\"min\":0}}]}]",
				0, sh, len);
	}
	return 0;
}
