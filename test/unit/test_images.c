/*
 * test_images.c: encoders that make the test images (PGM/PPM; PNG of any colour type,
 * depth, interlace and transparency; JPEG grey/RGB/CMYK/YCCK, progressive, arithmetic, EXIF).
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

#include "unit.h"

uint8_t *
unit_encode_pnm(const uint8_t *px, int w, int h, int channels, int ascii, size_t *len)
{
	size_t		n = (size_t) w * h * channels;
	size_t		cap = 64 + (ascii ? n * 4 : n);
	uint8_t    *buf = malloc(cap);
	int			pos;

	pos = snprintf((char *) buf, cap, "P%d\n# test image\n%d %d\n255\n",
				   channels == 3 ? (ascii ? 3 : 6) : (ascii ? 2 : 5), w, h);
	if (ascii)
		for (size_t i = 0; i < n; i++)
			pos += snprintf((char *) buf + pos, cap - pos, "%d%c", px[i], (i % 16 == 15) ? '\n' : ' ');
	else
	{
		memcpy(buf + pos, px, n);
		pos += (int) n;
	}
	*len = pos;
	return buf;
}

typedef struct membuf
{
	uint8_t    *p;
	size_t		len,
				cap;
} membuf;

static void
png_write_cb(png_structp png, png_bytep data, size_t n)
{
	membuf	   *b = png_get_io_ptr(png);

	if (b->len + n > b->cap)
	{
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void
png_flush_cb(png_structp png)
{
	(void) png;
}

uint8_t *
unit_encode_png(const uint8_t *px, int w, int h, int channels, int depth16, int alpha, size_t *len)
{
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop	info = png_create_info_struct(png);
	membuf		b = {NULL, 0, 0};
	int			oc = channels + (alpha ? 1 : 0);
	int			bps = depth16 ? 2 : 1;
	uint8_t    *row = malloc((size_t) w * oc * bps);

	if (setjmp(png_jmpbuf(png)))
		abort();
	png_set_write_fn(png, &b, png_write_cb, png_flush_cb);
	png_set_IHDR(png, info, w, h, depth16 ? 16 : 8,
				 channels == 3 ? (alpha ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB)
				 : (alpha ? PNG_COLOR_TYPE_GRAY_ALPHA : PNG_COLOR_TYPE_GRAY),
				 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < h; y++)
	{
		for (int x = 0; x < w; x++)
			for (int c = 0; c < oc; c++)
			{
				uint8_t		v = c < channels ? px[((size_t) y * w + x) * channels + c] : 200;

				if (depth16)
				{
					row[(x * oc + c) * 2] = v;
					row[(x * oc + c) * 2 + 1] = v;
				}
				else
					row[x * oc + c] = v;
			}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(row);
	*len = b.len;
	return b.p;
}

/*
 * Any PNG: color_type and bit_depth as in png_set_IHDR, samples one uint16 each
 * (the raw value: palette index, 0..2^depth-1 grey, 0..65535 when 16-bit),
 * interlace 0 or 1 (Adam7). plte: nplte RGB triplets; trns: ntrns palette alphas,
 * or the transparent grey value (1) or RGB value (3); gama: file gamma * 100000,
 * 0 for no gAMA chunk.
 */
uint8_t *
unit_encode_png_ex(const uint16_t *samples, int w, int h, int color_type, int bit_depth,
				   int interlace, const uint8_t *plte, int nplte, const uint16_t *trns,
				   int ntrns, int gama, size_t *len)
{
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop	info = png_create_info_struct(png);
	membuf		b = {NULL, 0, 0};
	int			spp = color_type == PNG_COLOR_TYPE_RGB ? 3 : color_type == PNG_COLOR_TYPE_RGBA ? 4
		: color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
	size_t		rowlen = (size_t) w * spp;
	uint8_t    *row = malloc(rowlen * 2);
	int			passes;

	if (setjmp(png_jmpbuf(png)))
		abort();
	png_set_write_fn(png, &b, png_write_cb, png_flush_cb);
	png_set_IHDR(png, info, w, h, bit_depth, color_type,
				 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
				 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (color_type == PNG_COLOR_TYPE_PALETTE)
	{
		png_color	pal[256];

		for (int i = 0; i < nplte; i++)
		{
			pal[i].red = plte[3 * i];
			pal[i].green = plte[3 * i + 1];
			pal[i].blue = plte[3 * i + 2];
		}
		png_set_PLTE(png, info, pal, nplte);
	}
	if (ntrns > 0)
	{
		png_byte	alphas[256];
		png_color_16 key = {0};

		if (color_type == PNG_COLOR_TYPE_PALETTE)
			for (int i = 0; i < ntrns; i++)
				alphas[i] = (png_byte) trns[i];
		else if (color_type == PNG_COLOR_TYPE_GRAY)
			key.gray = trns[0];
		else
		{
			key.red = trns[0];
			key.green = trns[1];
			key.blue = trns[2];
		}
		png_set_tRNS(png, info, color_type == PNG_COLOR_TYPE_PALETTE ? alphas : NULL,
					 ntrns, color_type == PNG_COLOR_TYPE_PALETTE ? NULL : &key);
	}
	if (gama > 0)
		png_set_gAMA_fixed(png, info, gama);
	png_write_info(png, info);
	if (bit_depth < 8)
		png_set_packing(png);	/* one sample per byte in, packed out */
	passes = png_set_interlace_handling(png);
	for (int pass = 0; pass < passes; pass++)
		for (int y = 0; y < h; y++)
		{
			const uint16_t *s = samples + (size_t) y * rowlen;

			for (size_t i = 0; i < rowlen; i++)
			{
				if (bit_depth == 16)
				{
					row[2 * i] = (uint8_t) (s[i] >> 8);
					row[2 * i + 1] = (uint8_t) s[i];
				}
				else
					row[i] = (uint8_t) s[i];
			}
			png_write_row(png, row);
		}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(row);
	*len = b.len;
	return b.p;
}

uint8_t *
unit_encode_jpeg(const uint8_t *px, int w, int h, int channels, int quality,
				 int exif_orientation, size_t *len)
{
	return unit_encode_jpeg_ex(px, w, h, channels, quality, exif_orientation, 0, 1, 0, 0, len);
}

typedef struct enc_err
{
	struct jpeg_error_mgr pub;
	jmp_buf		jb;
} enc_err;

static void
enc_error_exit(j_common_ptr cinfo)
{
	longjmp(((enc_err *) cinfo->err)->jb, 1);
}

/*
 * JPEG with options: channels 1 (grey), 3 (RGB) or 4 (CMYK samples written as
 * given: pass inverted CMYK to mimic Photoshop); ycck: store 4 channels as YCCK
 * (libjpeg writes an Adobe marker with transform 2); adobe 0: no Adobe marker
 * (CMYK only); progressive and arith (arithmetic coding) as libjpeg names them.
 * NULL when libjpeg refuses (e.g. arithmetic coding not compiled in).
 */
uint8_t *
unit_encode_jpeg_ex(const uint8_t *px, int w, int h, int channels, int quality,
					int exif_orientation, int ycck, int adobe, int progressive, int arith,
					size_t *len)
{
	struct jpeg_compress_struct cinfo;
	enc_err		jerr;
	unsigned char *volatile out = NULL;
	unsigned long outlen = 0;
	uint8_t    *res;

	memset(&cinfo, 0, sizeof(cinfo));
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = enc_error_exit;
	if (setjmp(jerr.jb))
	{
		jpeg_destroy_compress(&cinfo);
		free(out);
		return NULL;
	}
	jpeg_create_compress(&cinfo);
	jpeg_mem_dest(&cinfo, (unsigned char **) &out, &outlen);
	cinfo.image_width = w;
	cinfo.image_height = h;
	cinfo.input_components = channels;
	cinfo.in_color_space = channels == 4 ? JCS_CMYK : channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
	jpeg_set_defaults(&cinfo);
	if (channels == 4 && ycck)
		jpeg_set_colorspace(&cinfo, JCS_YCCK);
	if (channels == 4 && !adobe)
		cinfo.write_Adobe_marker = FALSE;
	jpeg_set_quality(&cinfo, quality, TRUE);
	if (progressive)
		jpeg_simple_progression(&cinfo);
	cinfo.arith_code = arith ? TRUE : FALSE;
	jpeg_start_compress(&cinfo, TRUE);
	if (exif_orientation > 0)
	{
		uint8_t		app1[6 + 8 + 2 + 12 + 4] = {
			'E', 'x', 'i', 'f', 0, 0,
			'I', 'I', 42, 0, 8, 0, 0, 0,
			1, 0,
			0x12, 0x01, 3, 0, 1, 0, 0, 0, (uint8_t) exif_orientation, 0, 0, 0,
			0, 0, 0, 0
		};

		jpeg_write_marker(&cinfo, JPEG_APP0 + 1, app1, sizeof(app1));
	}
	while (cinfo.next_scanline < cinfo.image_height)
	{
		JSAMPROW	r = (JSAMPROW) px + (size_t) cinfo.next_scanline * w * channels;

		jpeg_write_scanlines(&cinfo, &r, 1);
	}
	jpeg_finish_compress(&cinfo);
	jpeg_destroy_compress(&cinfo);
	res = malloc(outlen);
	memcpy(res, out, outlen);
	free(out);
	*len = outlen;
	return res;
}
