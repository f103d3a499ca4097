/*
 * unit.h - the tiny assertion harness shared by the pure C unit tests.
 * Each test file exposes a void function registered in main.c.
 */
#ifndef TRAINING_UNIT_H
#define TRAINING_UNIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int	unit_checks;
extern int	unit_failures;

#define UNIT_ASSERT(cond) do { \
	unit_checks++; \
	if (!(cond)) { unit_failures++; fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK(cond) UNIT_ASSERT(cond)

#define CHECK_MSG(cond, ...) do { \
	unit_checks++; \
	if (!(cond)) { unit_failures++; \
		fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
} while (0)

#define CHECK_NEAR(a, b, tol) CHECK_MSG(fabs((double) (a) - (double) (b)) <= (tol), \
	"%s = %.9g, %s = %.9g, tolerance %g", #a, (double) (a), #b, (double) (b), (double) (tol))

/* Test image encoders (test_images.c); return malloc'd bytes. */
uint8_t    *unit_encode_pnm(const uint8_t *px, int w, int h, int channels, int ascii, size_t *len);
uint8_t    *unit_encode_png(const uint8_t *px, int w, int h, int channels, int depth16, int alpha, size_t *len);
uint8_t    *unit_encode_jpeg(const uint8_t *px, int w, int h, int channels, int quality,
							 int exif_orientation, size_t *len);
uint8_t    *unit_encode_png_ex(const uint16_t *samples, int w, int h, int color_type, int bit_depth,
								int interlace, const uint8_t *plte, int nplte, const uint16_t *trns,
								int ntrns, int gama, size_t *len);
uint8_t    *unit_encode_jpeg_ex(const uint8_t *px, int w, int h, int channels, int quality,
								 int exif_orientation, int ycck, int adobe, int progressive,
								 int arith, size_t *len);

#endif
