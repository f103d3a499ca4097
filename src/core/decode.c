/*
 * decode.c: JPEG (libjpeg-turbo), PNG (libpng) and PGM/PPM (by hand) into 8-bit pixels.
 *
 * What decodes (details above jpeg_run and png_run):
 *   JPEG  baseline, progressive, arithmetic-coded; grey -> grey, YCbCr/RGB -> RGB,
 *         CMYK and YCCK (Adobe inverted or straight) -> RGB; EXIF orientation applied.
 *   PNG   all colour types, bit depths 1..16, Adam7; palette -> RGB, grey(+alpha) ->
 *         grey; alpha and tRNS transparency composited over white.
 *   PGM/PPM  P2, P3, P5, P6, maxval up to 65535.
 *
 * Both libraries report fatal errors by calling an error handler that must not
 * return; ours longjmps back into the decode function, which frees what it
 * allocated and returns TR_DECODE_CORRUPT. libjpeg warnings (truncated data,
 * corrupt entropy data) are fatal too: a half-grey image is not a usable image.
 * The pixel limit is checked on the header, before the pixel buffer (or any of the
 * libraries' image-sized buffers) exists.
 *
 * Peak memory while decoding, in bytes per pixel of the image, not counting the
 * caller's input bytes; "+ rows" is O(width) scratch (a few rows), independent of
 * the height. The output is 1 B/px (grey) or 3 B/px (RGB).
 *   PGM/PPM             1 or 3: samples are read from the input into the output.
 *   PNG (any, Adam7     1 or 3 + rows: rows are decoded one at a time into the
 *     included)           output; libpng keeps two raw rows (at most 8 B per pixel
 *                         of width, 16-bit RGBA) and zlib's 32 KiB window. Adam7
 *                         passes write straight into the output rows, already
 *                         composited and 8-bit.
 *   JPEG sequential     1 or 3 + rows: libjpeg's MCU-row buffers; CMYK/YCCK and
 *     (Huffman or         EXIF-rotated images go through one scratch row (4 or
 *     arithmetic)         3 B per pixel of width) converted into the output.
 *   JPEG progressive    the same plus libjpeg's whole-image coefficient buffer, 2
 *     (or multi-scan)     bytes per coefficient: 2 B/px grey, 3 B/px YCbCr 4:2:0,
 *                         4 B/px 4:2:2, 6 B/px 4:4:4, 8 B/px CMYK/YCCK 4:4:4:4;
 *                         so peak 1+2 = 3 (grey), 3+3 .. 3+6 = 6..9 (colour),
 *                         3+8 = 11 (CMYK) B/px. libjpeg cannot decode those
 *                         without it.
 * tr_image_orient (for callers) copies the image once more; tr_decode does not
 * call it.
 */
#include "decode.h"
#include "interrupt.h"

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

/* ---------- Orientation ---------- */

/*
 * Where row sy of a w x h image lands once EXIF orientation o is applied: source
 * pixel sx becomes pixel (*base + sx * *step) of the oriented image, whose width is
 * h for o >= 5 (transposed) and w otherwise. The inverse of the mapping in
 * tr_image_orient's documentation: 2 mirrors, 3 turns 180 degrees, 4 flips, 5
 * transposes, 6 turns 90 degrees clockwise, 7 transverses, 8 turns 90 anticlockwise.
 */
static void
orient_row(int o, int w, int h, int sy, ptrdiff_t *base, ptrdiff_t *step)
{
	ptrdiff_t	W = (o >= 5) ? h : w;

	switch (o)
	{
		case 2:
			*base = sy * W + (w - 1);
			*step = -1;
			break;
		case 3:
			*base = (h - 1 - sy) * W + (w - 1);
			*step = -1;
			break;
		case 4:
			*base = (h - 1 - sy) * W;
			*step = 1;
			break;
		case 5:
			*base = sy;
			*step = W;
			break;
		case 6:
			*base = h - 1 - sy;
			*step = W;
			break;
		case 7:
			*base = (w - 1) * W + (h - 1 - sy);
			*step = -W;
			break;
		case 8:
			*base = (w - 1) * W + sy;
			*step = -W;
			break;
		default:				/* 1 */
			*base = sy * W;
			*step = 1;
			break;
	}
}

/* Store one decoded row of c-byte pixels into the oriented image. */
static void
put_row(uint8_t *dst, const uint8_t *src, int c, int o, int w, int h, int sy)
{
	ptrdiff_t	base,
				step;

	orient_row(o, w, h, sy, &base, &step);
	if (step == 1)
	{
		memcpy(dst + base * c, src, (size_t) w * c);
		return;
	}
	for (int sx = 0; sx < w; sx++)
		memcpy(dst + (base + sx * step) * c, src + (size_t) sx * c, c);
}

/*
 * The decoders apply the orientation while storing rows (no second buffer); this
 * is for callers holding an image already, and needs one.
 */
int
tr_image_orient(tr_image *img, int o)
{
	int			w = img->width,
				h = img->height,
				c = img->channels;
	uint8_t    *dst;

	if (o <= 1 || o > 8)
		return 0;
	dst = malloc((size_t) w * h * c);
	if (dst == NULL)
		return -1;
	for (int sy = 0; sy < h; sy++)
		put_row(dst, img->pixels + (size_t) sy * w * c, c, o, w, h, sy);
	free(img->pixels);
	img->pixels = dst;
	img->width = (o >= 5) ? h : w;
	img->height = (o >= 5) ? w : h;
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

/*
 * Bound the work of a crafted progressive file: libjpeg decodes every scan of it, and nothing else
 * limits their number (a real photo has about ten). More than TR_JPEG_MAX_SCANS is corrupt data.
 */
#define TR_JPEG_MAX_SCANS 256

static void
jpeg_progress_cb(j_common_ptr cinfo)
{
	j_decompress_ptr d = (j_decompress_ptr) cinfo;

	if (tr_interrupted() || (cinfo->is_decompressor && d->input_scan_number > TR_JPEG_MAX_SCANS))
	{
		jpeg_err   *e = (jpeg_err *) cinfo->err;

		snprintf(e->msg, sizeof(e->msg), "more than %d scans", TR_JPEG_MAX_SCANS);
		longjmp(e->jb, 1);
	}
}

/* Warnings mean corrupt or truncated data: fatal. Trace messages are ignored. */
static void
jpeg_emit_message_cb(j_common_ptr cinfo, int level)
{
	if (level < 0)
		jpeg_error_exit_cb(cinfo);
}

/*
 * One row of CMYK samples to RGB, stored into the oriented image. Inverted
 * (Adobe) samples are the light let through, 255 - ink; straight ones are ink.
 * R = (1 - C)(1 - K), likewise G with M and B with Y: the naive conversion, no
 * colour profile, which is what viewers without colour management show.
 */
static void
cmyk_row(uint8_t *dst, const uint8_t *src, int inverted, int o, int w, int h, int sy)
{
	ptrdiff_t	base,
				step;
	unsigned	flip = inverted ? 0 : 255;

	orient_row(o, w, h, sy, &base, &step);
	for (int sx = 0; sx < w; sx++)
	{
		const uint8_t *s = src + (size_t) sx * 4;
		uint8_t    *d = dst + (base + sx * step) * 3;
		unsigned	k = s[3] ^ flip;

		/* x ^ 255 == 255 - x for bytes */
		d[0] = (uint8_t) (((s[0] ^ flip) * k + 127) / 255);
		d[1] = (uint8_t) (((s[1] ^ flip) * k + 127) / 255);
		d[2] = (uint8_t) (((s[2] ^ flip) * k + 127) / 255);
	}
}

/*
 * libjpeg-turbo decodes baseline, extended (12-bit excluded), progressive and
 * arithmetic-coded JPEGs alike. Output colour spaces:
 *   greyscale -> grey; YCbCr or RGB -> RGB (libjpeg converts);
 *   CMYK, YCCK -> CMYK from libjpeg (it undoes YCCK itself), then RGB here, row
 *   by row. libjpeg chooses YCCK when the Adobe APP14 marker's transform flag is
 *   2, CMYK when it is 0 or there is no Adobe marker (other flags are warned about,
 *   hence refused). Photoshop, the usual writer of CMYK JPEGs, stores inverted
 *   CMYK (0 = full ink) and always writes the Adobe marker, so samples are read
 *   as inverted exactly when the marker was seen (saw_Adobe_marker) and as
 *   straight CMYK otherwise.
 */
static int
jpeg_run(struct jpeg_decompress_struct *cinfo, jpeg_err *jerr, uint8_t *volatile *pixels,
		 size_t max_pixels, tr_image *img, char *err, size_t errlen)
{
	JSAMPARRAY	scratch = NULL;
	uint8_t    *out;
	int			orientation = 1;
	int			cmyk,
				inverted,
				channels,
				w,
				h,
				rc;

	jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
	jpeg_read_header(cinfo, TRUE);
	for (jpeg_saved_marker_ptr m = cinfo->marker_list; m != NULL; m = m->next)
		if (m->marker == JPEG_APP0 + 1)
		{
			orientation = tr_exif_orientation(m->data, m->data_length);
			if (orientation != 1)
				break;
		}
	rc = check_size(cinfo->image_width, cinfo->image_height, max_pixels, err, errlen);
	if (rc != TR_DECODE_OK)
		return rc;
	cmyk = (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK);
	inverted = cmyk && cinfo->saw_Adobe_marker;
	if (cmyk)
		cinfo->out_color_space = JCS_CMYK;
	else
		cinfo->out_color_space = (cinfo->num_components == 1) ? JCS_GRAYSCALE : JCS_RGB;
	/* Allocates libjpeg's buffers (the whole-image coefficients if progressive). */
	jpeg_start_decompress(cinfo);
	if (cinfo->output_components != (cmyk ? 4 : cinfo->out_color_space == JCS_GRAYSCALE ? 1 : 3))
	{
		set_err(err, errlen, "unsupported JPEG with %d components", cinfo->output_components);
		return TR_DECODE_CORRUPT;
	}
	w = (int) cinfo->output_width;
	h = (int) cinfo->output_height;
	channels = cmyk ? 3 : cinfo->output_components;
	out = *pixels = malloc((size_t) w * h * channels);
	if (out == NULL)
	{
		set_err(err, errlen, "out of memory decoding a %dx%d JPEG", w, h);
		return TR_DECODE_CORRUPT;
	}
	/* Rows go straight into the output unless converted or reoriented first. */
	if (cmyk || orientation != 1)
		scratch = (*cinfo->mem->alloc_sarray) ((j_common_ptr) cinfo, JPOOL_IMAGE,
											   (JDIMENSION) w * cinfo->output_components, 1);
	while (cinfo->output_scanline < cinfo->output_height)
	{
		int			sy = (int) cinfo->output_scanline;
		JSAMPROW	row = scratch ? scratch[0] : out + (size_t) sy * w * channels;

		if ((sy & 63) == 0 && tr_interrupted())
		{
			snprintf(jerr->msg, sizeof(jerr->msg), "canceled");
			longjmp(jerr->jb, 1);
		}

		if (jpeg_read_scanlines(cinfo, &row, 1) != 1)
		{
			/* cannot happen with a memory source (it never suspends) */
			snprintf(jerr->msg, sizeof(jerr->msg), "no scanline %d", sy);
			longjmp(jerr->jb, 1);
		}
		if (cmyk)
			cmyk_row(out, row, inverted, orientation, w, h, sy);
		else if (scratch)
			put_row(out, row, channels, orientation, w, h, sy);
	}
	jpeg_finish_decompress(cinfo);
	img->width = (orientation >= 5) ? h : w;
	img->height = (orientation >= 5) ? w : h;
	img->channels = channels;
	img->pixels = out;
	return TR_DECODE_OK;
}

/* Error handling around jpeg_run, which does the work. */
static int
decode_jpeg(const uint8_t *data, size_t len, size_t max_pixels, tr_image *img,
			char *err, size_t errlen)
{
	struct jpeg_decompress_struct cinfo;
	struct jpeg_progress_mgr progress;
	jpeg_err	jerr;
	uint8_t    *volatile pixels = NULL;
	int			rc;

	memset(&cinfo, 0, sizeof(cinfo));
	memset(&progress, 0, sizeof(progress));
	progress.progress_monitor = jpeg_progress_cb;
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = jpeg_error_exit_cb;
	jerr.pub.emit_message = jpeg_emit_message_cb;
	jerr.msg[0] = '\0';
	if (setjmp(jerr.jb))
	{
		/* The scratch row is in libjpeg's image pool: destroying frees it. */
		set_err(err, errlen, "corrupt JPEG data: %s", jerr.msg);
		jpeg_destroy_decompress(&cinfo);
		free(pixels);
		return TR_DECODE_CORRUPT;
	}
	jpeg_create_decompress(&cinfo);
	cinfo.progress = &progress;
	jpeg_mem_src(&cinfo, (const unsigned char *) data, (unsigned long) len);
	rc = jpeg_run(&cinfo, &jerr, &pixels, max_pixels, img, err, errlen);
	jpeg_destroy_decompress(&cinfo);
	if (rc != TR_DECODE_OK)
		free(pixels);
	return rc;
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

/*
 * Every PNG colour type, bit depth and interlace, to 8-bit grey or RGB:
 *   grey 1/2/4-bit expand to 0..255 (v * 255 / (2^depth - 1));
 *   16-bit samples round to 8 bits (v / 257, libpng's png_set_scale_16);
 *   palette images become RGB;
 *   transparency (an alpha channel, or a tRNS chunk: palette alphas, or the one
 *   transparent grey or RGB value) is COMPOSITED OVER WHITE, not dropped: the
 *   colour under a transparent pixel is arbitrary (often black or junk), and white
 *   is what a viewer shows on a plain page. A bKGD chunk is ignored so that every
 *   file gets the same background. libpng blends in the file's sample space, or
 *   in linear light when the file has a gAMA/sRGB chunk; opaque pixels are
 *   unchanged either way. Grey+alpha stays grey.
 * Rows are read one at a time into the output; for Adam7 each pass writes its
 * (already composited, 8-bit) pixels into the output rows, so there is no
 * intermediate image.
 */
static int
png_run(png_structp png, png_infop info, uint8_t *volatile *pixels, size_t max_pixels,
		tr_image *img, char *err, size_t errlen)
{
	png_uint_32 w,
				h;
	uint8_t    *out;
	int			depth,
				ctype,
				channels,
				passes,
				rc;

	png_read_info(png, info);
	png_get_IHDR(png, info, &w, &h, &depth, &ctype, NULL, NULL, NULL);
	rc = check_size(w, h, max_pixels, err, errlen);
	if (rc != TR_DECODE_OK)
		return rc;
	if (ctype == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(png);
	if (png_get_valid(png, info, PNG_INFO_tRNS))
		png_set_tRNS_to_alpha(png);
	if (depth == 16)
		png_set_scale_16(png);
	if ((ctype & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS))
	{
		/* In the output's 8-bit space (need_expand 0); libpng scales it for 16-bit. */
		png_color_16 white = {.red = 255,.green = 255,.blue = 255,.gray = 255};

		png_set_background_fixed(png, &white, PNG_BACKGROUND_GAMMA_SCREEN, 0, PNG_FP_1);
	}
	passes = png_set_interlace_handling(png);
	png_read_update_info(png, info);
	channels = png_get_channels(png, info);
	if ((channels != 1 && channels != 3) || png_get_bit_depth(png, info) != 8 ||
		png_get_rowbytes(png, info) != (size_t) w * channels)
		png_error(png, "unsupported PNG pixel layout");
	out = *pixels = malloc((size_t) w * h * channels);
	if (out == NULL)
		png_error(png, "out of memory");
	for (int pass = 0; pass < passes; pass++)
		for (png_uint_32 y = 0; y < h; y++)
		{
			if ((y & 63) == 0 && tr_interrupted())
				png_error(png, "canceled");
			png_read_row(png, out + (size_t) w * channels * y, NULL);
		}
	png_read_end(png, NULL);
	img->width = w;
	img->height = h;
	img->channels = channels;
	img->pixels = out;
	return TR_DECODE_OK;
}

/* Error handling around png_run, which does the work. */
static int
decode_png(const uint8_t *data, size_t len, size_t max_pixels, tr_image *img,
		   char *err, size_t errlen)
{
	png_src		src = {data, len, 0, ""};
	png_structp png;
	png_infop	info;
	uint8_t    *volatile pixels = NULL;
	int			rc;

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
		return TR_DECODE_CORRUPT;
	}
	png_set_read_fn(png, &src, png_read_cb);
	rc = png_run(png, info, &pixels, max_pixels, img, err, errlen);
	png_destroy_read_struct(&png, &info, NULL);
	if (rc != TR_DECODE_OK)
		free(pixels);
	return rc;
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

			if ((i & 0xFFFFF) == 0 && tr_interrupted())
				goto truncated;		/* reported as TR_CANCELED by tr_decode */

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

			if (v < 0 || ((i & 0xFFFF) == 0 && tr_interrupted()))
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
	{
		memset(img, 0, sizeof(*img));
		/* The decoders stop on a cancel request through their error paths. */
		if (tr_interrupted())
		{
			set_err(err, errlen, "canceled");
			rc = TR_CANCELED;
		}
	}
	return rc;
}
