/*
 * faces.c - benchmark of the C face networks on the ORL faces: detect +
 * embed throughput, ORL 5/5 accuracy with 128-d descriptors (nearest class
 * centre and 1-NN on L2-normalised descriptors), and memory figures.
 * Run through bench/faces.sh, which also runs face-api on tfjs as the peer.
 *
 * usage: faces MODEL_DIR ORL_DIR [BORDER]
 *   BORDER >= 0: detect at input 416 with that border (face-api's way);
 *   BORDER = -1: nn_locate_faces, as the face pipeline does.
 */
#include "nn/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLASSES 40
#define PER_CLASS 10

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint8_t *
read_pgm_rgb(const char *path, int *w, int *h)
{
	FILE	   *f = fopen(path, "rb");
	int			maxv;
	uint8_t    *g,
			   *rgb;

	if (!f || fscanf(f, "P5 %d %d %d", w, h, &maxv) != 3 || maxv != 255 || fgetc(f) == EOF)
	{
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	g = malloc((size_t) *w * *h);
	rgb = malloc((size_t) *w * *h * 3);
	if (!g || !rgb || fread(g, 1, (size_t) *w * *h, f) != (size_t) *w * *h)
		exit(2);
	fclose(f);
	for (int i = 0; i < *w * *h; i++)
		rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = g[i];
	free(g);
	return rgb;
}

static void
normalize(float *v)
{
	double		s = 0;

	for (int i = 0; i < NN_DESCRIPTOR_DIM; i++)
		s += (double) v[i] * v[i];
	s = sqrt(s);
	if (s > 0)
		for (int i = 0; i < NN_DESCRIPTOR_DIM; i++)
			v[i] /= s;
}

static double
dist2(const float *a, const float *b)
{
	double		s = 0;

	for (int i = 0; i < NN_DESCRIPTOR_DIM; i++)
		s += (double) (a[i] - b[i]) * (a[i] - b[i]);
	return s;
}

int
main(int argc, char **argv)
{
	char		err[NN_ERRLEN];
	nn_facenet	fn;
	nn_detector det;
	static float desc[CLASSES][PER_CLASS][NN_DESCRIPTOR_DIM];
	static float centre[CLASSES][NN_DESCRIPTOR_DIM];
	int			border = argc > 3 ? atoi(argv[3]) : 60;
	int			found = 0,
				total = 0,
				ok_centre = 0,
				ok_nn = 0;
	double		t_det = 0,
				t_emb = 0;

	if (argc < 3)
	{
		fprintf(stderr, "usage: %s MODEL_DIR ORL_DIR [BORDER]\n", argv[0]);
		return 2;
	}
	if (nn_facenet_load(&fn, argv[1], err) != 0 || nn_detector_load(&det, argv[1], err) != 0)
	{
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	for (int c = 0; c < CLASSES; c++)
		for (int i = 0; i < PER_CLASS; i++)
		{
			char		path[4096];
			int			w,
						h,
						n,
						rect[4];
			uint8_t    *rgb,
					   *crop;
			nn_box	   *boxes;
			double		t0,
						t1,
						t2;

			snprintf(path, sizeof(path), "%s/s%d/%d.pgm", argv[2], c + 1, i + 1);
			rgb = read_pgm_rgb(path, &w, &h);
			t0 = now();
			n = border < 0 ? nn_locate_faces(&det, rgb, w, h, &boxes, err)
				: nn_find_faces(&det, rgb, w, h, border, 416, 0.5, &boxes, err);
			t1 = now();
			if (n < 0)
			{
				fprintf(stderr, "%s: %s\n", path, err);
				return 1;
			}
			/* The largest face, else the whole image. */
			rect[0] = rect[1] = 0;
			rect[2] = w;
			rect[3] = h;
			if (n > 0)
			{
				int			best = 0;

				for (int k = 1; k < n; k++)
					if (boxes[k].width * boxes[k].height > boxes[best].width * boxes[best].height)
						best = k;
				rect[0] = (int) boxes[best].x;
				rect[1] = (int) boxes[best].y;
				rect[2] = (int) boxes[best].width;
				rect[3] = (int) boxes[best].height;
				found++;
			}
			free(boxes);
			crop = nn_crop_rgb(rgb, w, rect);
			t1 = now();
			if (nn_facenet_descriptor(&fn, crop, rect[2], rect[3], desc[c][i], err) != 0)
			{
				fprintf(stderr, "%s: %s\n", path, err);
				return 1;
			}
			t2 = now();
			t_det += t1 - t0;
			t_emb += t2 - t1;
			normalize(desc[c][i]);
			free(crop);
			free(rgb);
			total++;
		}

	/* ORL 5/5: images 1-5 train, 6-10 test. */
	for (int c = 0; c < CLASSES; c++)
	{
		memset(centre[c], 0, sizeof(centre[c]));
		for (int i = 0; i < 5; i++)
			for (int k = 0; k < NN_DESCRIPTOR_DIM; k++)
				centre[c][k] += desc[c][i][k] / 5;
		normalize(centre[c]);
	}
	for (int c = 0; c < CLASSES; c++)
		for (int i = 5; i < PER_CLASS; i++)
		{
			int			bc = -1,
						bn = -1;
			double		dc = 1e9,
						dn = 1e9;

			for (int o = 0; o < CLASSES; o++)
			{
				double		d = dist2(desc[c][i], centre[o]);

				if (d < dc)
				{
					dc = d;
					bc = o;
				}
				for (int j = 0; j < 5; j++)
				{
					d = dist2(desc[c][i], desc[o][j]);
					if (d < dn)
					{
						dn = d;
						bn = o;
					}
				}
			}
			ok_centre += bc == c;
			ok_nn += bn == c;
		}
	if (border >= 0)
		printf("C (src/nn, OpenBLAS):  %d faces, detector found %d (border %d, input 416)\n", total, found, border);
	else
		printf("C (src/nn, OpenBLAS):  %d faces, detector found %d (pipeline's nn_locate_faces)\n", total, found);
	printf("C detect+embed:        %.1f faces/s  (detect %.1f ms, embed %.1f ms per face)\n",
		   total / (t_det + t_emb), 1000 * t_det / total, 1000 * t_emb / total);
	printf("ORL 5/5 accuracy:      nearest class centre %.1f %%, 1-NN %.1f %%\n",
		   100.0 * ok_centre / 200, 100.0 * ok_nn / 200);
	printf("memory:                descriptor %zu bytes/face; weights: face recognition %.1f MB, detector %.2f MB "
		   "(float32); class centres of a 40-class version %zu bytes\n",
		   sizeof(float) * NN_DESCRIPTOR_DIM, fn.w.bytes / 1048576.0, det.w.bytes / 1048576.0,
		   sizeof(centre));
	nn_facenet_free(&fn);
	nn_detector_free(&det);
	return 0;
}
