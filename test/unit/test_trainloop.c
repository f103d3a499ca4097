/*
 * test_trainloop.c: gradient check against finite differences, loss decreasing,
 * determinism, stratified split.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainloop.h"
#include "unit.h"

static uint64_t rs = 99;

static double
rnd(void)
{
	rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
	return ((rs >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
}

static void
gradient_check(int e)
{
	int			d = 7,
				c = 4,
				n = 6,
				E = e > 0 ? e : d;
	tr_net		net;
	float		X[6 * 7];
	int			y[6] = {0, 1, 2, 3, 1, 2};
	float	   *g1,
			   *g2;
	double		num2 = 0,
				diff2 = 0;
	const float h = 1e-2f,
				wd = 0.05f;

	CHECK(tr_net_alloc(&net, d, e, c, 4.0f) == 0);
	for (int i = 0; i < n * d; i++)
		X[i] = (float) rnd();
	for (int j = 0; j < d; j++)
		net.mean[j] = (float) (0.1 * rnd());
	for (int k = 0; k < e * d; k++)
		net.W1[k] = (float) rnd();
	for (int k = 0; k < c * E; k++)
		net.W2[k] = (float) rnd();
	g1 = calloc(e * d + 1, sizeof(float));
	g2 = calloc(c * E, sizeof(float));
	tr_net_loss_grad(&net, X, y, n, wd, e > 0 ? g1 : NULL, g2);

	/* Central differences on every parameter of W1 and W2. */
	for (int which = 0; which < 2; which++)
	{
		float	   *P = which == 0 ? net.W1 : net.W2;
		float	   *G = which == 0 ? g1 : g2;
		int			np = which == 0 ? e * d : c * E;

		for (int k = 0; k < np; k++)
		{
			float		keep = P[k];
			double		lp,
						lm,
						num;

			P[k] = keep + h;
			lp = tr_net_loss_grad(&net, X, y, n, wd, NULL, NULL);
			P[k] = keep - h;
			lm = tr_net_loss_grad(&net, X, y, n, wd, NULL, NULL);
			P[k] = keep;
			num = (lp - lm) / (2 * h);
			num2 += num * num;
			diff2 += (num - G[k]) * (num - G[k]);
			CHECK_MSG(fabs(num - G[k]) < 2e-3 + 2e-2 * fabs(num),
					  "e=%d W%d[%d]: numeric %.6f analytic %.6f", e, which + 1, k, num, G[k]);
		}
	}
	CHECK_MSG(sqrt(diff2 / (num2 + 1e-30)) < 1e-2, "e=%d: relative gradient error %.2e", e,
			  sqrt(diff2 / (num2 + 1e-30)));
	CHECK(num2 > 1e-6);
	free(g1);
	free(g2);
	tr_net_free(&net);
}

typedef struct losses
{
	double		first,
				last;
	int			n0,
				n1,
				inits;
} losses;

static int
record(void *ctx, int phase, int epoch, int max_epochs, double loss, double val_acc)
{
	losses	   *l = ctx;

	(void) max_epochs;
	(void) val_acc;
	if (epoch == 0)
	{
		l->inits++;
		return 0;
	}
	if (phase == 0)
	{
		if (epoch == 1)
			l->first = loss;
		l->last = loss;
		l->n0++;
	}
	else
		l->n1++;
	return 0;
}

/* Gaussian clusters: c classes around random centres in d dimensions. */
static void
clusters(float *X, int *y, int n, int d, int c, double spread)
{
	float	   *centres = malloc(sizeof(float) * c * d);

	for (int i = 0; i < c * d; i++)
		centres[i] = (float) rnd();
	for (int i = 0; i < n; i++)
	{
		y[i] = i % c;
		for (int j = 0; j < d; j++)
			X[i * d + j] = centres[y[i] * d + j] + (float) (spread * rnd());
	}
	free(centres);
}

/* Principal directions of data stretched along known axes. */
static void
pca_check(void)
{
	int			n = 400,
				d = 6,
				nsub = 0;
	float	   *X = malloc(sizeof(float) * n * d);
	int		   *idx = malloc(sizeof(int) * n);
	float		mean[6] = {0},
				dirs[3 * 6];
	double		var[3];
	const double sd[6] = {0.1, 5.0, 0.2, 2.0, 0.1, 1.0};	/* axes 1, 3, 5 lead */

	for (int i = 0; i < n; i++)
		for (int j = 0; j < d; j++)
			X[i * d + j] = (float) (3.0 + sd[j] * sqrt(3.0) * rnd());	/* uniform: variance sd^2 */
	/* Every other row, through idx, without copying X. */
	for (int i = 0; i < n; i += 2)
		idx[nsub++] = i;
	for (int i = 0; i < nsub; i++)
		for (int j = 0; j < d; j++)
			mean[j] += X[idx[i] * d + j] / nsub;
	CHECK(tr_pca(X, n, d, idx, nsub, mean, 3, 7, dirs, var) == 3);
	CHECK_MSG(fabs(dirs[0 * d + 1]) > 0.99, "first direction %.3f", dirs[1]);
	CHECK_MSG(fabs(dirs[1 * d + 3]) > 0.99, "second direction %.3f", dirs[d + 3]);
	CHECK_MSG(fabs(dirs[2 * d + 5]) > 0.99, "third direction %.3f", dirs[2 * d + 5]);
	CHECK_NEAR(var[0], 25.0, 4.0);
	CHECK_NEAR(var[1], 4.0, 0.8);
	CHECK_NEAR(var[2], 1.0, 0.25);
	for (int a = 0; a < 3; a++)
		for (int b = 0; b < 3; b++)
		{
			double		dot = 0;

			for (int j = 0; j < d; j++)
				dot += dirs[a * d + j] * dirs[b * d + j];
			CHECK_NEAR(dot, a == b ? 1.0 : 0.0, 1e-3);
		}
	free(X);
	free(idx);
}

void
test_trainloop(void)
{
	gradient_check(3);
	gradient_check(0);
	pca_check();

	{
		int			n = 150,
					d = 20,
					c = 3;
		float	   *X = malloc(sizeof(float) * n * d);
		int		   *y = malloc(sizeof(int) * n);
		tr_fit_params p;
		tr_net		a,
					b,
					s2;
		tr_fit_report ra,
					rb,
					r2;
		losses		l = {0, 0, 0, 0, 0};
		char		err[256];

		clusters(X, y, n, d, c, 0.8);
		/* Plain gradient descent from a random projection: the loss must fall. */
		tr_fit_params_default(&p);
		p.pca_init = 0;
		p.lda = 0;
		p.train_projection = 1;
		p.embed_dim = 8;
		p.min_epochs = 15;
		p.patience = 100;		/* run all epochs: the loss must keep decreasing */
		p.max_epochs = 15;
		p.seed = 42;
		CHECK(tr_fit(X, y, n, d, c, &p, &a, &ra, record, &l, err, sizeof(err)) == 0);
		CHECK_MSG(l.last < 0.5 * l.first, "loss %.4f -> %.4f", l.first, l.last);
		CHECK(l.n0 == 15);
		CHECK(l.inits == 4);	/* before and after the initialisation of both phases */
		CHECK(l.n1 == ra.epochs);
		CHECK_MSG(ra.train_accuracy > 0.95, "train accuracy %.3f", ra.train_accuracy);
		CHECK(ra.validation_images == c * (int) floorf((n / c) * p.val_fraction));
		CHECK(ra.validation_accuracy > 0.9);
		CHECK(ra.gflop > 0);

		/* Same seed, same network; another seed, another network. */
		CHECK(tr_fit(X, y, n, d, c, &p, &b, &rb, NULL, NULL, err, sizeof(err)) == 0);
		CHECK(memcmp(a.W1, b.W1, sizeof(float) * p.embed_dim * d) == 0);
		CHECK(memcmp(a.W2, b.W2, sizeof(float) * c * p.embed_dim) == 0);
		p.seed = 43;
		CHECK(tr_fit(X, y, n, d, c, &p, &s2, &r2, NULL, NULL, err, sizeof(err)) == 0);
		CHECK(memcmp(a.W1, s2.W1, sizeof(float) * p.embed_dim * d) != 0);
		tr_net_free(&b);
		tr_net_free(&s2);

		/*
		 * The defaults: whitened principal directions rotated onto the c - 1
		 * discriminant directions, then the class centres trained on the fixed
		 * embedding: deterministic, and the loss does not rise.
		 */
		{
			tr_fit_params q;
			losses		l2 = {0, 0, 0, 0, 0};

			tr_fit_params_default(&q);
			q.seed = 42;
			CHECK(tr_fit(X, y, n, d, c, &q, &b, &rb, record, &l2, err, sizeof(err)) == 0);
			CHECK_MSG(b.e == c - 1, "embedding of %d dimensions", b.e);
			CHECK_MSG(l2.last <= l2.first + 1e-4, "loss %.5f -> %.5f after %d epochs", l2.first, l2.last, l2.n0);
			CHECK(rb.train_accuracy > 0.95 && rb.validation_accuracy > 0.9);
			CHECK(tr_fit(X, y, n, d, c, &q, &s2, &r2, NULL, NULL, err, sizeof(err)) == 0);
			CHECK(s2.e == b.e && memcmp(b.W1, s2.W1, sizeof(float) * b.e * d) == 0 &&
				  memcmp(b.W2, s2.W2, sizeof(float) * c * b.e) == 0);
		}

		/* Embeddings are unit vectors; distances 0..2. */
		{
			float		U[8],
						cos[3];

			tr_net_embed(&a, X, 1, U);
			tr_net_cosines(&a, U, 1, cos);
			double		s = 0;

			for (int k = 0; k < 8; k++)
				s += U[k] * U[k];
			CHECK_NEAR(s, 1.0, 1e-5);
			for (int k = 0; k < 3; k++)
				CHECK(cos[k] >= -1.0001f && cos[k] <= 1.0001f);
		}
		tr_net_free(&a);
		tr_net_free(&b);
		tr_net_free(&s2);

		/* Too few rows per class for a validation split: trained on all. */
		CHECK(tr_fit(X, y, 6, d, c, &p, &a, &ra, NULL, NULL, err, sizeof(err)) == 0);
		CHECK(ra.validation_images == 0 && ra.validation_accuracy < 0);
		CHECK(ra.train_accuracy > 0.6);
		tr_net_free(&a);

		/*
		 * A budget that pays for no epoch: the network as initialised (class centres of the
		 * default projection), still a classifier; one that pays for a few: at most those.
		 */
		tr_fit_params_default(&p);
		p.max_gflop = 1e-9;
		CHECK(tr_fit(X, y, n, d, c, &p, &a, &ra, NULL, NULL, err, sizeof(err)) == 0);
		CHECK_MSG(ra.epochs_run == 0 && ra.epochs == 0, "%d epochs", ra.epochs_run);
		CHECK_MSG(ra.train_accuracy > 0.9 && ra.validation_accuracy > 0.9, "%.3f %.3f", ra.train_accuracy,
				  ra.validation_accuracy);
		tr_net_free(&a);
		{
			/* An epoch: 6 x 120 training rows x E x c, plus the 30 validation rows. */
			double		epoch = (6.0 * 120 + 2.0 * 30) * 19 * c;

			p.max_gflop = 2 * 3.5 * epoch * 1e-9;	/* 3 epochs per phase */
			p.embed_dim = 19;
			CHECK(tr_fit(X, y, n, d, c, &p, &a, &ra, NULL, NULL, err, sizeof(err)) == 0);
			CHECK_MSG(ra.epochs_run >= 3 && ra.epochs_run <= 6 && ra.epochs <= 3, "%d epochs run, %d kept",
					  ra.epochs_run, ra.epochs);
			tr_net_free(&a);
		}
		free(X);
		free(y);
	}
}
