/*
 * nn.h - pretrained face networks (face-api's tfjs models) in pure C.
 *
 * No PostgreSQL headers here: the server glue, the unit tests and the
 * golden tests link the same code.  Tensors are single images in HWC
 * layout (TensorFlow's NHWC with N = 1), float32.  Filters keep the tfjs
 * layout: conv [kh][kw][cin][cout], depthwise [kh][kw][c][1].
 *
 * Errors are reported through a caller buffer (char err[NN_ERRLEN]); every
 * function that can fail returns 0 on success and -1 on failure.
 */
#ifndef TRAINING_NN_H
#define TRAINING_NN_H

#include <stddef.h>
#include <stdint.h>

#define NN_ERRLEN 256

/* ---- weights (tfjs weights manifest + .bin shards) ---- */

typedef struct nn_tensor
{
	char	   *name;
	int			ndim;
	int			shape[4];
	size_t		size;			/* number of elements */
	float	   *data;			/* dequantized float32 values */
} nn_tensor;

typedef struct nn_weights
{
	int			n;
	nn_tensor  *t;
	size_t		bytes;			/* memory held by the float32 values */
} nn_weights;

/* Load <dir>/<model>-weights_manifest.json and its shards. */
extern int	nn_weights_load(const char *dir, const char *model, nn_weights *w,
							char *err);

/*
 * Parse a manifest of mlen bytes whose shards are in memory: shard path names[i] is data[i]
 * (lens[i] bytes). The loader above reads files into this; tests and fuzzing call it directly.
 */
extern int	nn_weights_parse_mem(const char *manifest, size_t mlen, int nshards,
								 const char *const *names, const unsigned char *const *data,
								 const size_t *lens, nn_weights *w, char *err);
/* Parse a manifest text whose shards are read relative to dir. */
extern int	nn_weights_parse(const char *manifest, const char *dir,
							 nn_weights *w, char *err);
extern void nn_weights_free(nn_weights *w);
/* Find a tensor by name with the expected number of elements (0: any). */
extern const nn_tensor *nn_weights_find(const nn_weights *w, const char *name,
										size_t size, char *err);
/* nn_weights_find by a printf-formatted name, any size. */
extern const nn_tensor *nn_weights_getf(const nn_weights *w, char *err, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));
/* Format an error message into err (NN_ERRLEN) and return -1. */
extern int	nn_fail(char *err, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/* ---- operations ---- */

typedef struct nn_map
{
	int			h,
				w,
				c;
	float	   *d;				/* h*w*c floats, malloc'ed */
} nn_map;

typedef enum nn_pad
{
	NN_VALID,
	NN_SAME
} nn_pad;

extern int	nn_map_alloc(nn_map *m, int h, int w, int c);
extern void nn_map_free(nn_map *m);

/* Output size and leading pad of TensorFlow's VALID / SAME padding. */
extern int	nn_out_size(int in, int k, int stride, nn_pad pad, int *pad_before);

/*
 * Convolution (im2col + cblas_sgemm), bias may be NULL.  pad_t/pad_l/pad_b/pad_r
 * are explicit zero pads used when pad is NN_VALID (tf.pad + VALID conv).
 */
extern int	nn_conv2d(const nn_map *in, const float *filt, int kh, int kw,
					  int cout, const float *bias, int stride, nn_pad pad,
					  int extra_pad, nn_map *out);
/* Depthwise convolution, channel multiplier 1 (direct loop). */
extern int	nn_depthwise(const nn_map *in, const float *filt, int kh, int kw,
						 int stride, nn_pad pad, int extra_pad, nn_map *out);
/*
 * tf.separableConv2d(x, <prefix>/depthwise_filter (3x3), <prefix>/pointwise_filter,
 * stride, 'same') + <prefix>/bias, with the tensors of w.
 */
extern int	nn_separable(const nn_weights *w, const char *prefix, const nn_map *x, int stride,
						 nn_map *out, char *err);
extern int	nn_maxpool(const nn_map *in, int k, int stride, nn_pad pad, nn_map *out);
extern int	nn_avgpool_valid(const nn_map *in, int k, int stride, nn_map *out);
extern void nn_relu(nn_map *m);
/* FLOPs (2 x multiply-adds) of the convolutions run so far in this process (all threads). */
extern uint64_t nn_flops(void);
extern void nn_leaky(nn_map *m, float alpha);

/*
 * Output position out of tf.image.resizeBilinear from side to size pixels (no
 * align corners, no half pixel centres): it reads source pixels *i0 and *i1
 * with weight 1 - *frac and *frac.
 */
extern void nn_resize_index(int out, int side, int size, int *i0, int *i1, double *frac);

/*
 * An 8-bit image read in place (never copied): grey (1 channel, read as
 * R = G = B) or RGB (3), rows `stride` bytes apart (0: width * channels).
 * A rectangle of a larger image is a view with that image's stride.
 */
typedef struct nn_image
{
	const uint8_t *pixels;
	int			width,
				height,
				channels;
	size_t		stride;
} nn_image;

/*
 * face-api's NetInput.toBatchTensor for a tensor input: pad the RGB image
 * with zeros to a square (centred or at the end), resize bilinearly to
 * size x size (tf.image.resizeBilinear, no align corners, no half pixel
 * centres), then subtract mean and divide by 255.
 */
extern int	nn_prepare(const uint8_t *rgb, int width, int height, int size,
					   int center, const float mean[3], nn_map *out);

/*
 * nn_prepare of an image view surrounded by `border` edge-replicated pixels
 * on every side, without building the bordered image: the bilinear resize
 * reads at most 2 x size rows and columns, which are mapped back into the
 * image.  Equal to nn_prepare on the bordered RGB image, bit for bit; memory
 * is the size x size x 3 output whatever the image size.
 */
extern int	nn_prepare_image(const nn_image *im, int border, int size, int center,
							 const float mean[3], nn_map *out);

/* ---- networks ---- */

typedef struct nn_facenet
{
	nn_weights	w;
} nn_facenet;

#define NN_DESCRIPTOR_DIM 128
#define NN_FACENET_INPUT 150

extern int	nn_facenet_load(nn_facenet *net, const char *dir, char *err);
extern void nn_facenet_free(nn_facenet *net);
/* 128-d face descriptor of an RGB face crop (not normalised). */
extern int	nn_facenet_descriptor(const nn_facenet *net, const uint8_t *rgb,
								  int width, int height, float *desc, char *err);

typedef struct nn_box
{
	double		x,
				y,
				width,
				height;			/* pixels of the input image */
	double		score;
	/*
	 * The detector's own corner minus (x, y) when the box was clipped to the
	 * image and rounded (nn_find_faces); face-api moves a face's landmarks by
	 * that corner. 0 for a box as the detector gave it.
	 */
	double		dx,
				dy;
} nn_box;

typedef struct nn_detector
{
	nn_weights	w;
} nn_detector;

extern int	nn_detector_load(nn_detector *net, const char *dir, char *err);
extern void nn_detector_free(nn_detector *net);
/* Raw 13x13x25 style output grid of the tiny face detector. */
extern int	nn_detector_forward(const nn_detector *net, const uint8_t *rgb,
								int width, int height, int input_size,
								nn_map *out, char *err);
/* The same for an image view with an edge-replicated border (nn_prepare_image). */
extern int	nn_detector_forward_image(const nn_detector *net, const nn_image *im,
									  int border, int input_size, nn_map *out,
									  char *err);
/*
 * Faces found in an RGB image (TinyFaceDetector.locateFaces): boxes with
 * score > score_threshold after non-maximum suppression (IoU 0.4), best
 * first.  *boxes is malloc'ed; returns the count or -1.
 */
extern int	nn_detect(const nn_detector *net, const uint8_t *rgb, int width,
					  int height, int input_size, double score_threshold,
					  nn_box **boxes, char *err);
/*
 * nn_detect of an image view with an edge-replicated border of `border`
 * pixels: boxes are in the coordinates of the bordered image.
 */
extern int	nn_detect_image(const nn_detector *net, const nn_image *im, int border,
							int input_size, double score_threshold,
							nn_box **boxes, char *err);

typedef struct nn_agegender
{
	nn_weights	w;
} nn_agegender;

extern int	nn_agegender_load(nn_agegender *net, const char *dir, char *err);
extern void nn_agegender_free(nn_agegender *net);
/* The side the gender network resizes its input to. */
#define NN_AGEGENDER_INPUT 112

/* P(male), P(female) and age of an RGB face crop. */
extern int	nn_agegender_predict(const nn_agegender *net, const uint8_t *rgb,
								 int width, int height, float *p_male,
								 float *p_female, float *age, char *err);

typedef struct nn_landmarks
{
	nn_weights	w;
} nn_landmarks;

#define NN_LANDMARK_POINTS 68
/* The side the landmark network resizes its input to. */
#define NN_LANDMARKS_INPUT 112

extern int	nn_landmarks_load(nn_landmarks *net, const char *dir, char *err);
extern void nn_landmarks_free(nn_landmarks *net);
/*
 * The raw output of FaceLandmark68Net for an RGB face crop: 68 (x, y) pairs
 * relative to the network's padded square input.
 */
extern int	nn_landmarks_forward(const nn_landmarks *net, const uint8_t *rgb, int width,
								 int height, float out[2 * NN_LANDMARK_POINTS], char *err);
/*
 * FaceLandmark68Net.postProcess: the raw output for a crop of width x height
 * pixels as points relative to that crop (0..1 inside it).
 */
extern void nn_landmarks_relative(const float raw[2 * NN_LANDMARK_POINTS], int width, int height,
								  double rel[2 * NN_LANDMARK_POINTS]);

/* ---- faces in an image (face.c) ---- */

/*
 * face-api's extractFaceTensors crop of a box: clipped to the image, then
 * x, y, width and height floored.  Returns 0 when nothing is left.
 */
extern int	nn_crop_rect(const nn_box *b, int width, int height, int rect[4]);
/* A malloc'ed RGB copy of rect (x, y, width, height) of an image, or NULL. */
extern uint8_t *nn_crop_rgb(const uint8_t *rgb, int width, const int rect[4]);

/*
 * The crop of rect (x, y, width, height) of an image view for a network whose
 * input is nn_prepare(crop, *cw, *ch, size, center = 1, ...): facenet
 * (NN_FACENET_INPUT) and the gender network (NN_AGEGENDER_INPUT).  A malloc'ed
 * RGB image of *cw x *ch pixels (grey repeated), or NULL when out of memory.
 * When the crop's longer side is at most 3 x size, it is the plain RGB copy of
 * rect.  A larger crop is never copied: the result is a square of 2..3 x size
 * pixels holding only the pixels the resize reads (with the same interpolation
 * weights: a side congruent modulo size), so that the network sees the input
 * it would see for the full crop (equal up to double rounding of the sample
 * positions) in at most 9 x size^2 x 3 bytes.
 */
extern uint8_t *nn_crop_for_input(const nn_image *im, const int rect[4], int size,
								  int *cw, int *ch);

/*
 * Faces of an image found with a border of `border` pixels (edge pixels
 * repeated) around it, which lets the detector find faces filling the frame.
 * Boxes are in image coordinates, clipped to the image (nn_crop_rect), best
 * score first.  Returns the count (boxes malloc'ed) or -1.
 */
extern int	nn_find_faces(const nn_detector *net, const uint8_t *rgb, int width,
						  int height, int border, int input_size,
						  double score_threshold, nn_box **boxes, char *err);
/* nn_find_faces of an image view (grey or RGB, read in place). */
extern int	nn_find_faces_image(const nn_detector *net, const nn_image *im, int border,
								int input_size, double score_threshold,
								nn_box **boxes, char *err);

/*
 * Faces of a whole image, as the face pipeline looks for them: the image as
 * it is first; when nothing is found, once more with a border of
 * max(60, longer side / 4) pixels (tightly cropped faces).  The detector
 * input is the (bordered) image's longer side rounded up to a multiple of 32,
 * within 160..416 (small images are not upscaled to 416: same faces found on
 * ORL, 5x faster); score > 0.5.  Returns the count (boxes malloc'ed, best
 * score first) or -1.
 * Memory does not grow with the image: the border is never materialised (the
 * detector's input is resampled from the image, nn_prepare_image), so a
 * detection costs the same few tens of MB for a 100 x 100 or a 40 MP image,
 * and nothing for the border of a 1 x 65535 one.
 */
extern int	nn_locate_faces(const nn_detector *net, const uint8_t *rgb, int width,
							int height, nn_box **boxes, char *err);
/* nn_locate_faces of an image view (grey or RGB, read in place: no RGB copy). */
extern int	nn_locate_faces_image(const nn_detector *net, const nn_image *im,
								  nn_box **boxes, char *err);

/*
 * face-api's withFaceLandmarks() for one detected face: the landmark network
 * on the face's crop (nn_crop_rect of det), its points scaled to the crop and
 * moved by the detection's own corner (det x + dx, y + dy, unrounded) clipped
 * to the image, in image coordinates. (face-api does not clip that corner: for
 * a box crossing the image's edge its points leave the face.)  Writes
 * the crop's size to crop_wh.  Returns 0, or -1 with a message.
 */
extern int	nn_face_landmarks(const nn_landmarks *net, const nn_image *im, const nn_box *det,
							  double pts[2 * NN_LANDMARK_POINTS], int crop_wh[2], char *err);

/*
 * FaceLandmarks.align(null, {useDlibAlignment: true}): the square around the
 * eyes and the mouth that withFaceDescriptors() embeds (x, y floored, side
 * the eye-to-mouth distance / 0.45).  crop_wh is the landmarks' crop size.
 */
extern void nn_align_dlib(const double pts[2 * NN_LANDMARK_POINTS], const int crop_wh[2],
						  nn_box *rect);

/*
 * withFaceLandmarks().withFaceDescriptors() for one detected face: the
 * landmarks, the aligned square (nn_align_dlib) and the descriptor of its
 * crop (not normalised).  pts and aligned may be NULL.  Returns 0, 1 when the
 * aligned square is empty (no descriptor), or -1 with a message.
 */
extern int	nn_aligned_descriptor(const nn_landmarks *lm, const nn_facenet *fn, const nn_image *im,
								  const nn_box *det, double *pts, nn_box *aligned,
								  float desc[NN_DESCRIPTOR_DIM], char *err);

#endif							/* TRAINING_NN_H */
