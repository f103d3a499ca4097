/*
 * test_images.c: encoders that make the test images (PGM/PPM, PNG, JPEG with EXIF).
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

uint8_t *
unit_encode_jpeg(const uint8_t *px, int w, int h, int channels, int quality,
				 int exif_orientation, size_t *len)
{
	struct jpeg_compress_struct cinfo;
	struct jpeg_error_mgr jerr;
	unsigned char *out = NULL;
	unsigned long outlen = 0;
	uint8_t    *res;

	cinfo.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&cinfo);
	jpeg_mem_dest(&cinfo, &out, &outlen);
	cinfo.image_width = w;
	cinfo.image_height = h;
	cinfo.input_components = channels;
	cinfo.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
	jpeg_set_defaults(&cinfo);
	jpeg_set_quality(&cinfo, quality, TRUE);
	jpeg_start_compress(&cinfo, TRUE);
	if (exif_orientation > 0)
	{
		/* Exif header, little-endian TIFF, IFD0 with one Orientation entry. */
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
