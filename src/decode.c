/*
 * decode.c: JPEG (libjpeg-turbo), PNG (libpng) and PGM/PPM (by hand) into 8-bit pixels.
 *
 * Both libraries report fatal errors by calling an error handler that must not
 * return; ours longjmps back into the decode function, which frees what it
 * allocated and returns TR_DECODE_CORRUPT. libjpeg warnings (truncated data,
 * corrupt entropy data) are fatal too: a half-grey image is not a usable image.
 * The pixel limit is checked on the header, before the pixel buffer exists.
 */
#include "decode.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

#define TR_MAX_SIDE 65535

static void set_err(char *err, size_t errlen, const char *fmt,...) __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *
tr_format_name(tr_format fmt)
{
	switch (fmt)
	{
		case TR_FMT_JPEG:
			return "jpeg";
		case TR_FMT_PNG:
			return "png";
		case TR_FMT_PGM:
			return "pgm";
		case TR_FMT_PPM:
			return "ppm";
		default:
			return "unknown";
	}
}

tr_format
tr_sniff_format(const uint8_t *data, size_t len)
{
	static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

	if (data == NULL)
		return TR_FMT_UNKNOWN;
	if (len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
		return TR_FMT_JPEG;
	if (len >= 8 && memcmp(data, png_sig, 8) == 0)
		return TR_FMT_PNG;
	if (len >= 2 && data[0] == 'P' && (data[1] == '2' || data[1] == '5'))
		return TR_FMT_PGM;
	if (len >= 2 && data[0] == 'P' && (data[1] == '3' || data[1] == '6'))
		return TR_FMT_PPM;
	return TR_FMT_UNKNOWN;
}

void
tr_image_free(tr_image *img)
{
	if (img == NULL)
		return;
	free(img->pixels);
	memset(img, 0, sizeof(*img));
}

/* Check dimensions against the pixel limit; 0 if fine. */
static int
check_size(size_t w, size_t h, size_t max_pixels, char *err, size_t errlen)
{
	if (w == 0 || h == 0 || w > TR_MAX_SIDE || h > TR_MAX_SIDE)
	{
		set_err(err, errlen, "invalid image dimensions %zux%zu", w, h);
		return TR_DECODE_CORRUPT;
	}
	if (max_pixels > 0 && w * h > max_pixels)
	{
		set_err(err, errlen, "image of %zux%zu = %zu pixels exceeds training.max_image_pixels (%zu)",
				w, h, w * h, max_pixels);
		return TR_DECODE_TOO_LARGE;
	}
	return TR_DECODE_OK;
}

/* ---------- EXIF orientation ---------- */

static unsigned
rd16(const uint8_t *p, int le)
{
	return le ? (unsigned) (p[0] | (p[1] << 8)) : (unsigned) ((p[0] << 8) | p[1]);
}

static uint32_t
rd32(const uint8_t *p, int le)
{
	return le ? ((uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24))
		: (((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | (uint32_t) p[3]);
}

int
tr_exif_orientation(const uint8_t *app1, size_t len)
{
	const uint8_t *t;
	size_t		tlen;
	int			le;
	uint32_t	ifd;
	unsigned	n;

	if (app1 == NULL || len < 6 + 8 || memcmp(app1, "Exif\0\0", 6) != 0)
		return 1;
	t = app1 + 6;
	tlen = len - 6;
	if (t[0] == 'I' && t[1] == 'I')
		le = 1;
	else if (t[0] == 'M' && t[1] == 'M')
		le = 0;
	else
		return 1;
	if (rd16(t + 2, le) != 42)
		return 1;
	ifd = rd32(t + 4, le);
	if (ifd > tlen || tlen - ifd < 2)
		return 1;
	n = rd16(t + ifd, le);
	for (unsigned i = 0; i < n; i++)
	{
		size_t		off = (size_t) ifd + 2 + (size_t) i * 12;

		if (off + 12 > tlen)
			break;
		if (rd16(t + off, le) == 0x0112 && rd16(t + off + 2, le) == 3)
		{
			unsigned	v = rd16(t + off + 8, le);

			return (v >= 1 && v <= 8) ? (int) v : 1;
		}
	}
	return 1;
}

int
tr_image_orient(tr_image *img, int o)
{
	int			w = img->width,
				h = img->height,
				c = img->channels;
	int			W,
				H;
	uint8_t    *dst;

	if (o <= 1 || o > 8)
		return 0;
	W = (o >= 5) ? h : w;
	H = (o >= 5) ? w : h;
	dst = malloc((size_t) W * H * c);
	if (dst == NULL)
		return -1;
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
		{
			int			sx,
						sy;

			switch (o)
			{
				case 2:
					sx = w - 1 - x;
					sy = y;
					break;
				case 3:
					sx = w - 1 - x;
					sy = h - 1 - y;
					break;
				case 4:
					sx = x;
					sy = h - 1 - y;
					break;
				case 5:
					sx = y;
					sy = x;
					break;
				case 6:
					sx = y;
					sy = h - 1 - x;
					break;
				case 7:
					sx = w - 1 - y;
					sy = h - 1 - x;
					break;
				default:		/* 8 */
					sx = w - 1 - y;
					sy = x;
					break;
			}
			memcpy(dst + ((size_t) y * W + x) * c, img->pixels + ((size_t) sy * w + sx) * c, c);
		}
	free(img->pixels);
	img->pixels = dst;
	img->width = W;
	img->height = H;
	return 0;
}

/* ---------- JPEG ---------- */

typedef struct jpeg_err
{
	struct jpeg_error_mgr pub;
	jmp_buf		jb;
	char		msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void
jpeg_error_exit_cb(j_common_ptr cinfo)
{
	jpeg_err   *e = (jpeg_err *) cinfo->err;

	(*cinfo->err->format_message) (cinfo, e->msg);
	longjmp(e->jb, 1);
}

/* Warnings mean corrupt or truncated data: fatal. Trace messages are ignored. */
static void
jpeg_emit_message_cb(j_common_ptr cinfo, int level)
{
	if (level < 0)
		jpeg_error_exit_cb(cinfo);
}

static int
decode_jpeg(const uint8_t *data, size_t len, size_t max_pixels, tr_image *img,
			char *err, size_t errlen)
{
	struct jpeg_decompress_struct cinfo;
	jpeg_err	jerr;
	uint8_t    *volatile pixels = NULL;
	volatile int orientation = 1;
	int			rc;

	memset(&cinfo, 0, sizeof(cinfo));
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = jpeg_error_exit_cb;
	jerr.pub.emit_message = jpeg_emit_message_cb;
	jerr.msg[0] = '\0';
	if (setjmp(jerr.jb))
	{
		set_err(err, errlen, "corrupt JPEG data: %s", jerr.msg);
		jpeg_destroy_decompress(&cinfo);
		free(pixels);
		return TR_DECODE_CORRUPT;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, (const unsigned char *) data, (unsigned long) len);
	jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
	jpeg_read_header(&cinfo, TRUE);
	for (jpeg_saved_marker_ptr m = cinfo.marker_list; m != NULL; m = m->next)
		if (m->marker == JPEG_APP0 + 1)
		{
			orientation = tr_exif_orientation(m->data, m->data_length);
			if (orientation != 1)
				break;
		}
	rc = check_size(cinfo.image_width, cinfo.image_height, max_pixels, err, errlen);
	if (rc != TR_DECODE_OK)
	{
		jpeg_destroy_decompress(&cinfo);
		return rc;
	}
	cinfo.out_color_space = (cinfo.num_components == 1) ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_start_decompress(&cinfo);
	if (cinfo.output_components != 1 && cinfo.output_components != 3)
	{
		set_err(err, errlen, "unsupported JPEG with %d components", cinfo.output_components);
		jpeg_destroy_decompress(&cinfo);
		return TR_DECODE_CORRUPT;
	}
	{
		size_t		stride = (size_t) cinfo.output_width * cinfo.output_components;

		pixels = malloc(stride * cinfo.output_height);
		if (pixels == NULL)
		{
			set_err(err, errlen, "out of memory decoding a %ux%u JPEG",
					cinfo.output_width, cinfo.output_height);
			jpeg_destroy_decompress(&cinfo);
			return TR_DECODE_CORRUPT;
		}
		while (cinfo.output_scanline < cinfo.output_height)
		{
			JSAMPROW	row = pixels + stride * cinfo.output_scanline;

			jpeg_read_scanlines(&cinfo, &row, 1);
		}
	}
	jpeg_finish_decompress(&cinfo);
	img->width = cinfo.output_width;
	img->height = cinfo.output_height;
	img->channels = cinfo.output_components;
	img->pixels = pixels;
	jpeg_destroy_decompress(&cinfo);
	if (tr_image_orient(img, orientation) != 0)
	{
		tr_image_free(img);
		set_err(err, errlen, "out of memory orienting a JPEG");
		return TR_DECODE_CORRUPT;
	}
	return TR_DECODE_OK;
}

/* ---------- PNG ---------- */

typedef struct png_src
{
	const uint8_t *data;
	size_t		len;
	size_t		pos;
	char		msg[256];
} png_src;

static void
png_error_cb(png_structp png, png_const_charp msg)
{
	png_src    *src = (png_src *) png_get_error_ptr(png);

	snprintf(src->msg, sizeof(src->msg), "%s", msg);
	png_longjmp(png, 1);
}

static void
png_warning_cb(png_structp png, png_const_charp msg)
{
	(void) png;
	(void) msg;
}

static void
png_read_cb(png_structp png, png_bytep out, size_t n)
{
	png_src    *src = (png_src *) png_get_io_ptr(png);

	if (n > src->len - src->pos)
		png_error(png, "truncated PNG data");
	memcpy(out, src->data + src->pos, n);
	src->pos += n;
}

static int
decode_png(const uint8_t *data, size_t len, size_t max_pixels, tr_image *img,
		   char *err, size_t errlen)
{
	png_src		src = {data, len, 0, ""};
	png_structp png;
	png_infop	info = NULL;
	uint8_t    *volatile pixels = NULL;
	png_bytep  *volatile rows = NULL;
	png_uint_32 w,
				h;
	int			depth,
				ctype,
				channels,
				rc;

	png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_error_cb, png_warning_cb);
	if (png == NULL)
	{
		set_err(err, errlen, "out of memory decoding a PNG");
		return TR_DECODE_CORRUPT;
	}
	info = png_create_info_struct(png);
	if (info == NULL)
	{
		png_destroy_read_struct(&png, NULL, NULL);
		set_err(err, errlen, "out of memory decoding a PNG");
		return TR_DECODE_CORRUPT;
	}
	if (setjmp(png_jmpbuf(png)))
	{
		set_err(err, errlen, "corrupt PNG data: %s", src.msg);
		png_destroy_read_struct(&png, &info, NULL);
		free(pixels);
		free(rows);
		return TR_DECODE_CORRUPT;
	}
	png_set_read_fn(png, &src, png_read_cb);
	png_read_info(png, info);
	png_get_IHDR(png, info, &w, &h, &depth, &ctype, NULL, NULL, NULL);
	rc = check_size(w, h, max_pixels, err, errlen);
	if (rc != TR_DECODE_OK)
	{
		png_destroy_read_struct(&png, &info, NULL);
		return rc;
	}
	/* Everything to 8-bit grey or RGB without alpha. */
	if (depth == 16)
		png_set_scale_16(png);
	if (ctype == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(png);
	if (ctype & PNG_COLOR_MASK_ALPHA)
		png_set_strip_alpha(png);
	png_set_interlace_handling(png);
	png_read_update_info(png, info);
	channels = png_get_channels(png, info);
	if ((channels != 1 && channels != 3) || png_get_bit_depth(png, info) != 8)
		png_error(png, "unsupported PNG pixel layout");
	{
		size_t		stride = (size_t) w * channels;

		pixels = malloc(stride * h);
		rows = malloc(sizeof(png_bytep) * h);
		if (pixels == NULL || rows == NULL)
			png_error(png, "out of memory");
		for (png_uint_32 y = 0; y < h; y++)
			rows[y] = pixels + stride * y;
	}
	png_read_image(png, rows);
	png_read_end(png, NULL);
	png_destroy_read_struct(&png, &info, NULL);
	free(rows);
	img->width = w;
	img->height = h;
	img->channels = channels;
	img->pixels = pixels;
	return TR_DECODE_OK;
}

/* ---------- PGM / PPM ---------- */

/* Skip whitespace and comments; read an unsigned decimal. -1 when missing. */
static long
pnm_number(const uint8_t *d, size_t len, size_t *pos)
{
	long		v = 0;
	int			digits = 0;

	for (;;)
	{
		if (*pos >= len)
			return -1;
		if (d[*pos] == '#')
		{
			while (*pos < len && d[*pos] != '\n' && d[*pos] != '\r')
				(*pos)++;
		}
		else if (d[*pos] == ' ' || d[*pos] == '\t' || d[*pos] == '\n' || d[*pos] == '\r' ||
				 d[*pos] == '\v' || d[*pos] == '\f')
			(*pos)++;
		else
			break;
	}
	while (*pos < len && d[*pos] >= '0' && d[*pos] <= '9')
	{
		v = v * 10 + (d[*pos] - '0');
		if (v > 100000000L)
			return -1;
		(*pos)++;
		digits++;
	}
	return digits ? v : -1;
}

static int
decode_pnm(const uint8_t *d, size_t len, size_t max_pixels, tr_image *img,
		   char *err, size_t errlen)
{
	int			kind = d[1] - '0';	/* 2, 3, 5, 6 */
	int			channels = (kind == 3 || kind == 6) ? 3 : 1;
	size_t		pos = 2;
	long		w,
				h,
				maxval;
	size_t		n;
	int			rc;
	uint8_t    *pixels;

	w = pnm_number(d, len, &pos);
	h = pnm_number(d, len, &pos);
	maxval = pnm_number(d, len, &pos);
	if (w <= 0 || h <= 0 || maxval <= 0 || maxval > 65535)
	{
		set_err(err, errlen, "corrupt P%d header", kind);
		return TR_DECODE_CORRUPT;
	}
	rc = check_size(w, h, max_pixels, err, errlen);
	if (rc != TR_DECODE_OK)
		return rc;
	n = (size_t) w * h * channels;
	pixels = malloc(n);
	if (pixels == NULL)
	{
		set_err(err, errlen, "out of memory decoding a %ldx%ld image", w, h);
		return TR_DECODE_CORRUPT;
	}
	if (kind == 5 || kind == 6)
	{
		size_t		bps = maxval > 255 ? 2 : 1;

		/* Exactly one whitespace byte separates the header from the samples. */
		if (pos >= len)
			goto truncated;
		pos++;
		if (len - pos < n * bps)
			goto truncated;
		for (size_t i = 0; i < n; i++)
		{
			long		v = bps == 2 ? (d[pos + 2 * i] << 8) | d[pos + 2 * i + 1] : d[pos + i];

			if (v > maxval)
				v = maxval;
			pixels[i] = (uint8_t) ((v * 255 + maxval / 2) / maxval);
		}
	}
	else
	{
		for (size_t i = 0; i < n; i++)
		{
			long		v = pnm_number(d, len, &pos);

			if (v < 0)
				goto truncated;
			if (v > maxval)
				v = maxval;
			pixels[i] = (uint8_t) ((v * 255 + maxval / 2) / maxval);
		}
	}
	img->width = (int) w;
	img->height = (int) h;
	img->channels = channels;
	img->pixels = pixels;
	return TR_DECODE_OK;

truncated:
	free(pixels);
	set_err(err, errlen, "truncated P%d data (%ldx%ld)", kind, w, h);
	return TR_DECODE_CORRUPT;
}

int
tr_decode(const uint8_t *data, size_t len, size_t max_pixels,
		  tr_image *img, tr_format *fmt, char *err, size_t errlen)
{
	tr_format	f = tr_sniff_format(data, len);
	int			rc;

	memset(img, 0, sizeof(*img));
	if (fmt)
		*fmt = f;
	switch (f)
	{
		case TR_FMT_JPEG:
			rc = decode_jpeg(data, len, max_pixels, img, err, errlen);
			break;
		case TR_FMT_PNG:
			rc = decode_png(data, len, max_pixels, img, err, errlen);
			break;
		case TR_FMT_PGM:
		case TR_FMT_PPM:
			rc = decode_pnm(data, len, max_pixels, img, err, errlen);
			break;
		default:
			set_err(err, errlen, "unrecognised image format (accepted: " TR_ACCEPTED_FORMATS ")");
			return TR_DECODE_CORRUPT;
	}
	if (rc != TR_DECODE_OK)
		memset(img, 0, sizeof(*img));
	return rc;
}
