/*
 * faces.c - benchmark of the C face networks on the ORL faces: detect +
 * (landmarks +) embed throughput, ORL 5/5 accuracy with the 128-d
 * descriptors (nearest class centre and 1-NN on L2-normalised descriptors),
 * the networks' GFLOP/s next to cblas_sgemm's peak, and memory figures.
 * Run through bench/faces.sh, which also runs face-api on tfjs as the peer.
 *
 * usage: faces MODEL_DIR ORL_DIR [BORDER [ALIGNED [JOBS]]]
 *   BORDER >= 0: detect at input 416 with that border (face-api's way);
 *   BORDER = -1: nn_locate_faces, as the face pipeline does.
 *   ALIGNED = 1: withFaceLandmarks().withFaceDescriptors(): 68 landmarks,
 *     the aligned square, its descriptor (the aligned feature kind).
 *   JOBS: images processed at once, one thread each (run with
 *     OPENBLAS_NUM_THREADS=1): how two workers share the two cores.
 */
#include "blas.h"
#include "nn/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <pthread.h>

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

typedef struct job
{
	int			id;
	double		t_det,
				t_emb;
	int			found;
	int			failed;
	char		err[NN_ERRLEN];
} job;

static nn_facenet fn;
static nn_detector det;
static nn_landmarks lm;
static int	border = 60,
			aligned = 0,
			njobs = 1;
static uint8_t *images[CLASSES * PER_CLASS];
static int	widths[CLASSES * PER_CLASS],
			heights[CLASSES * PER_CLASS];
static float desc[CLASSES][PER_CLASS][NN_DESCRIPTOR_DIM];

/* Detect, then embed the largest face (else the whole image), of every njobs-th image. */
static void *
run_job(void *arg)
{
	job		   *j = arg;
	char	   *err = j->err;

	for (int k = j->id; k < CLASSES * PER_CLASS; k += njobs)
	{
		int			w = widths[k],
					h = heights[k],
					n,
					rc,
					rect[4];
		const uint8_t *rgb = images[k];
		nn_image	im = {rgb, w, h, 3, 0};
		nn_box	   *boxes,
					best = {0, 0, w, h, 0, 0, 0};
		float	   *d = desc[k / PER_CLASS][k % PER_CLASS];
		double		t0 = now(),
					t1;

		n = border < 0 ? nn_locate_faces(&det, rgb, w, h, &boxes, err)
			: nn_find_faces(&det, rgb, w, h, border, 416, 0.5, &boxes, err);
		if (n < 0)
		{
			j->failed = 1;
			return NULL;
		}
		for (int b = 0; b < n; b++)
			if (boxes[b].width * boxes[b].height > best.width * best.height || b == 0)
				best = boxes[b];
		j->found += n > 0;
		free(boxes);
		t1 = now();
		rc = 1;
		if (aligned)
			rc = nn_aligned_descriptor(&lm, &fn, &im, &best, NULL, NULL, d, err);
		if (rc == 1)
		{
			uint8_t    *crop;

			nn_crop_rect(&best, w, h, rect);
			crop = nn_crop_rgb(rgb, w, rect);
			rc = nn_facenet_descriptor(&fn, crop, rect[2], rect[3], d, err);
			free(crop);
		}
		if (rc != 0)
		{
			j->failed = 1;
			return NULL;
		}
		j->t_det += t1 - t0;
		j->t_emb += now() - t1;
		normalize(d);
	}
	return NULL;
}

/* GFLOP/s of a square cblas_sgemm of 1024 on this thread, best of 5. */
static double
sgemm_peak(void)
{
	int			n = 1024;
	float	   *a = calloc((size_t) n * n, sizeof(float)),
			   *b = calloc((size_t) n * n, sizeof(float)),
			   *c = calloc((size_t) n * n, sizeof(float));
	double		best = 0;

	for (size_t i = 0; i < (size_t) n * n; i++)
		a[i] = b[i] = (float) (i % 7) * 0.01f;
	for (int r = 0; r < 5; r++)
	{
		double		t = now();

		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
		t = now() - t;
		if (2.0 * n * n * n / t / 1e9 > best)
			best = 2.0 * n * n * n / t / 1e9;
	}
	free(a);
	free(b);
	free(c);
	return best;
}

int
main(int argc, char **argv)
{
	char		err[NN_ERRLEN];
	static float centre[CLASSES][NN_DESCRIPTOR_DIM];
	job			jobs[8];
	pthread_t	threads[8];
	int			found = 0,
				total = CLASSES * PER_CLASS,
				ok_centre = 0,
				ok_nn = 0;
	double		t_det = 0,
				t_emb = 0,
				wall,
				peak;
	uint64_t	flops;

	if (argc < 3)
	{
		fprintf(stderr, "usage: %s MODEL_DIR ORL_DIR [BORDER [ALIGNED [JOBS]]]\n", argv[0]);
		return 2;
	}
	border = argc > 3 ? atoi(argv[3]) : 60;
	aligned = argc > 4 && atoi(argv[4]) == 1;
	njobs = argc > 5 ? atoi(argv[5]) : 1;
	if (njobs < 1 || njobs > 8)
		njobs = 1;
	if (nn_facenet_load(&fn, argv[1], err) != 0 || nn_detector_load(&det, argv[1], err) != 0 ||
		(aligned && nn_landmarks_load(&lm, argv[1], err) != 0))
	{
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	for (int k = 0; k < total; k++)
	{
		char		path[4096];

		snprintf(path, sizeof(path), "%s/s%d/%d.pgm", argv[2], k / PER_CLASS + 1, k % PER_CLASS + 1);
		images[k] = read_pgm_rgb(path, &widths[k], &heights[k]);
	}
	/* Warm up (first-touch of the weights, OpenBLAS buffers), not timed. */
	{
		static job	warm;
		int			saved = njobs;

		njobs = total;
		run_job(&warm);
		njobs = saved;
		if (warm.failed)
		{
			fprintf(stderr, "%s\n", warm.err);
			return 1;
		}
	}
	/* The peak before and after the timed run, the better of the two (a busy host varies). */
	peak = sgemm_peak();
	flops = nn_flops();
	wall = now();
	for (int t = 0; t < njobs; t++)
	{
		jobs[t] = (job) {.id = t};
		if (pthread_create(&threads[t], NULL, run_job, &jobs[t]) != 0)
			return 2;
	}
	for (int t = 0; t < njobs; t++)
	{
		pthread_join(threads[t], NULL);
		if (jobs[t].failed)
		{
			fprintf(stderr, "%s\n", jobs[t].err);
			return 1;
		}
		t_det += jobs[t].t_det;
		t_emb += jobs[t].t_emb;
		found += jobs[t].found;
	}
	wall = now() - wall;
	flops = nn_flops() - flops;
	for (int k = 0; k < total; k++)
		free(images[k]);

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
	printf("C (src/nn, OpenBLAS %s kernels):  %d faces, detector found %d (%s), %s, %d image(s) at once\n",
		   tr_blas_core(), total, found, border >= 0 ? "border, input 416" : "the pipeline's nn_locate_faces",
		   aligned ? "landmarks + aligned descriptor" : "descriptor of the box", njobs);
	printf("C faces/s:             %.1f  (per face on one core: detect %.1f ms, %s %.1f ms)\n",
		   total / wall, 1000 * t_det / total, aligned ? "landmarks + embed" : "embed", 1000 * t_emb / total);
	printf("ORL 5/5 accuracy:      nearest class centre %.1f %%, 1-NN %.1f %%\n",
		   100.0 * ok_centre / 200, 100.0 * ok_nn / 200);
	peak = fmax(peak, sgemm_peak());
	printf("networks:              %.2f GFLOP/face, %.1f GFLOP/s per core = %.0f %% of cblas_sgemm 1024^3 on one core (%.1f GFLOP/s)\n",
		   flops / 1e9 / total, flops / 1e9 / (t_det + t_emb),
		   100 * flops / 1e9 / (t_det + t_emb) / peak, peak);
	printf("memory:                descriptor %zu bytes/face; weights: face recognition %.1f MB, detector %.2f MB, "
		   "landmarks %.2f MB (float32); class centres of a 40-class version %zu bytes\n",
		   sizeof(float) * NN_DESCRIPTOR_DIM, fn.w.bytes / 1048576.0, det.w.bytes / 1048576.0,
		   aligned ? lm.w.bytes / 1048576.0 : 0.0, sizeof(centre));
	if (aligned)
		nn_landmarks_free(&lm);
	nn_facenet_free(&fn);
	nn_detector_free(&det);
	return 0;
}
