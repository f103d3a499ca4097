/*
 * decode.h: image decoding (JPEG via libjpeg-turbo, PNG via libpng, PGM/PPM by hand).
 *
 * Pure C, no PostgreSQL headers. Decoded images are 8-bit, row-major, interleaved,
 * with 1 (grey) or 3 (RGB) channels: 16-bit and low-depth samples are scaled to 8
 * bits, palettes become RGB, JPEG CMYK/YCCK becomes RGB, and PNG transparency
 * (alpha or tRNS) is composited over white. JPEG EXIF orientation is applied, so width,
 * height and pixels are those of the image as a viewer shows it (face boxes are in
 * these coordinates). Corrupt or truncated data returns an error; nothing longjmps
 * out of these functions. Peak memory per format: see decode.c.
 */
#ifndef TRAINING_DECODE_H
#define TRAINING_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "interrupt.h"

typedef enum tr_format
{
	TR_FMT_UNKNOWN = 0,
	TR_FMT_JPEG,
	TR_FMT_PNG,
	TR_FMT_PGM,
	TR_FMT_PPM
} tr_format;

/* Results of tr_decode / tr_image_info. */
#define TR_DECODE_OK		0
#define TR_DECODE_CORRUPT	(-1)	/* not an accepted format, truncated or corrupt */
#define TR_DECODE_TOO_LARGE	(-2)	/* width*height above max_pixels */
/* TR_CANCELED (interrupt.h): stopped by a cancel request */

/* The formats accepted, as said in error messages. */
#define TR_ACCEPTED_FORMATS "JPEG (baseline, progressive, arithmetic; grey, colour or CMYK), PNG (any), PGM (P2/P5) or PPM (P3/P6)"

typedef struct tr_image
{
	int			width;
	int			height;
	int			channels;		/* 1 or 3 */
	uint8_t    *pixels;			/* malloc'd, width*height*channels bytes */
} tr_image;

/* "jpeg", "png", "pgm", "ppm" or "unknown". */
const char *tr_format_name(tr_format fmt);

/* Format from the leading bytes (magic numbers) only. */
tr_format	tr_sniff_format(const uint8_t *data, size_t len);

/*
 * Decode data completely. max_pixels = 0 means no limit. On success fills *img
 * (free with tr_image_free) and *fmt (may be NULL). On failure returns
 * TR_DECODE_CORRUPT or TR_DECODE_TOO_LARGE with a message in err; *img is empty.
 */
int			tr_decode(const uint8_t *data, size_t len, size_t max_pixels,
					  tr_image *img, tr_format *fmt, char *err, size_t errlen);

void		tr_image_free(tr_image *img);

/* Parse the EXIF orientation (1..8) from an APP1 payload; 1 if absent or invalid. */
int			tr_exif_orientation(const uint8_t *app1, size_t len);

/* Apply an EXIF orientation (1..8) in place (reallocates pixels). Returns 0 or -1 (out of memory). */
int			tr_image_orient(tr_image *img, int orientation);

#endif
