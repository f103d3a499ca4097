/*
 * gflops.c: GFLOP/s of the training loop (tr_fit) next to cblas_sgemm's peak, in one run.
 *
 *   bench/gflops [ROWS [DIM [CLASSES]]]       (defaults 4000 7546 100: ORL-size features)
 *
 * Peak: square cblas_sgemm of 2048 (best of 5). The loop: tr_fit on Gaussian clusters,
 * (a) with the defaults (randomized PCA, LDA, class centres by Adam on the fixed
 * embedding) and (b) also training the projection by gradient descent (every step
 * a forward and backward pass through W1 in sgemm). GFLOP counts only sgemm work.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cblas.h>

#include "trainloop.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
	int			n = argc > 1 ? atoi(argv[1]) : 4000,
				d = argc > 2 ? atoi(argv[2]) : 7546,
				c = argc > 3 ? atoi(argv[3]) : 100,
				m = 2048;
	float	   *A = malloc(sizeof(float) * m * m),
			   *B = malloc(sizeof(float) * m * m),
			   *C = malloc(sizeof(float) * m * m);
	float	   *X = malloc(sizeof(float) * (size_t) n * d),
			   *centres = malloc(sizeof(float) * (size_t) c * d);
	int		   *y = malloc(sizeof(int) * n);
	double		best = 1e30;
	uint64_t	s = 42;
	char		err[256];

	for (int i = 0; i < m * m; i++)
	{
		A[i] = (float) (i % 17) / 17.0f;
		B[i] = (float) (i % 13) / 13.0f;
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0f, A, m, B, m, 0.0f, C, m);
	for (int r = 0; r < 5; r++)
	{
		double		t0 = now();

		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0f, A, m, B, m, 0.0f, C, m);
		if (now() - t0 < best)
			best = now() - t0;
	}
	printf("sgemm peak     %7.1f GFLOP/s  (%dx%d x %dx%d, %d OpenBLAS threads)\n",
		   2.0 * m * m * m / best * 1e-9, m, m, m, m, openblas_get_num_threads());

	for (size_t i = 0; i < (size_t) c * d; i++)
	{
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		centres[i] = (float) ((s >> 40) % 1000) / 1000.0f;
	}
	for (int i = 0; i < n; i++)
	{
		y[i] = i % c;
		for (int j = 0; j < d; j++)
		{
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			X[(size_t) i * d + j] = centres[(size_t) y[i] * d + j] + (float) ((s >> 40) % 1000) / 700.0f;
		}
	}
	for (int variant = 0; variant < 2; variant++)
	{
		tr_fit_params p;
		tr_fit_report rep;
		tr_net		net;

		tr_fit_params_default(&p);
		if (variant == 1)
		{
			p.train_projection = 1;
			p.max_epochs = 10;
			p.min_epochs = 10;
		}
		if (tr_fit(X, y, n, d, c, &p, &net, &rep, NULL, NULL, err, sizeof(err)) != 0)
		{
			fprintf(stderr, "tr_fit: %s\n", err);
			return 1;
		}
		printf("training loop  %7.1f GFLOP/s  (%s: %d x %d features, %d classes, %d epochs, %.1f GFLOP in %.2f s, "
			   "train accuracy %.3f)\n",
			   rep.gflop / rep.seconds,
			   variant == 0 ? "defaults: PCA + LDA + class centres" : "also training the projection",
			   n, d, c, rep.epochs_run, rep.gflop, rep.seconds, rep.train_accuracy);
		tr_net_free(&net);
	}
	free(A);
	free(B);
	free(C);
	free(X);
	free(centres);
	free(y);
	return 0;
}
