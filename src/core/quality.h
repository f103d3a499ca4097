/*
 * quality.h: face region, grey resampling and the sharpness measure of DESIGN.md.
 *
 * Pure C, no PostgreSQL headers.
 */
#ifndef TRAINING_QUALITY_H
#define TRAINING_QUALITY_H

#include "decode.h"

/* A rectangle in pixels: x, y of the top-left corner, width, height. */
typedef struct tr_box
{
	int			x;
	int			y;
	int			w;
	int			h;
	/*
	 * Where the face detector put the box's corner, from (x, y): the box is
	 * clipped to the image and rounded, the landmarks of the aligned kind are
	 * moved by the detector's own corner (face-api's way). 0 for other boxes.
	 */
	float		dx;
	float		dy;
} tr_box;

/* Side of the square grey image the sharpness is measured on. */
#define TR_SHARPNESS_SIDE 128

/*
 * The face region: box (x, y, width, height) clipped to the image, or the whole
 * image when box is NULL. Returns 0, or -1 when the box does not overlap the
 * image or has a non-positive size.
 */
int			tr_face_region(const tr_image *img, const int *box, tr_box *out);

/* The side min_face_size judges; a detected face filling the image counts as the image. */
int			tr_face_side(const tr_image *img, tr_box r, int detected);

/*
 * Grey values (0..255, as float) of region r resampled to ow x oh: area average
 * along an axis that shrinks, bilinear (pixel centres aligned) along one that
 * grows; a same-size axis is copied exactly. out has ow*oh floats.
 * Grey of RGB is 0.299 R + 0.587 G + 0.114 B.
 */
void		tr_grey_resample(const tr_image *img, tr_box r, int ow, int oh, float *out);

/* Like tr_grey_resample for one channel: -1 grey, 0 red, 1 green, 2 blue (grey images: any). */
void		tr_resample_channel(const tr_image *img, tr_box r, int channel, int ow, int oh, float *out);

/*
 * tr_resample_channel of region r, or (mirror = 1) of the region's mirror image
 * (columns reversed: what mirroring the whole image and resampling the moved
 * region gives, bit for bit), without a copy of the image. Streams the region
 * row by row: memory is O(ow + oh) floats whatever the region's size, so the
 * resamplers (sharpness, features) cost nothing per pixel of the image. Returns
 * 0, or -1 when out of memory (out is then zeros).
 */
int			tr_resample_view(const tr_image *img, tr_box r, int channel, int mirror,
							 int ow, int oh, float *out);

/* Variance of the 4-neighbour Laplacian over the interior of a w x h grey image. */
double		tr_laplacian_variance(const float *g, int w, int h);

/*
 * Sharpness of DESIGN.md: the variance of the 4-neighbour Laplacian
 * (4 p(x,y) - p(x-1,y) - p(x+1,y) - p(x,y-1) - p(x,y+1)) over the interior
 * 126 x 126 pixels of the grey region resampled to 128 x 128 (values 0..255).
 */
double		tr_sharpness(const tr_image *img, tr_box r);

#endif
