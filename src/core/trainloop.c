/*
 * trainloop.c: cosine-softmax classifier trained by mini-batch Adam on cblas_sgemm.
 */
#include "trainloop.h"
#include "interrupt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

/* GCC: no errno for sqrtf and friends in hot loops (arguments are never negative). */
#if defined(__GNUC__) && !defined(__clang__)
#define TR_FAST_MATH __attribute__((optimize("O3", "no-math-errno")))
#else
#define TR_FAST_MATH
#endif

void
tr_fit_params_default(tr_fit_params *p)
{
	p->embed_dim = 128;
	p->scale = 16.0f;
	p->lr = 3e-3f;
	p->weight_decay = 1e-4f;
	p->batch = 32;
	p->max_epochs = 60;
	p->min_epochs = 10;
	p->patience = 8;
	p->val_fraction = 0.2f;
	p->refit = 1;
	p->pca_init = 1;
	p->whiten = 0.5f;
	p->train_projection = 0;
	p->lda = 1;
	p->max_gflop = 0;
	p->seed = 1;
}

/* ---------- deterministic random numbers ---------- */

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t	z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static double
rng_uniform(uint64_t *s)
{
	return ((rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double
rng_gauss(uint64_t *s)
{
	double		u1 = rng_uniform(s),
				u2 = rng_uniform(s);

	return sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2);
}

static void
shuffle(int *a, int n, uint64_t *s)
{
	for (int i = n - 1; i > 0; i--)
	{
		int			j = (int) (rng_next(s) % (uint64_t) (i + 1));
		int			t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------- the network ---------- */

int
tr_net_alloc(tr_net *net, int d, int e, int c, float s)
{
	int			E = e > 0 ? e : d;

	memset(net, 0, sizeof(*net));
	net->d = d;
	net->e = e;
	net->c = c;
	net->s = s;
	net->mean = calloc(d, sizeof(float));
	net->W1 = e > 0 ? calloc((size_t) e * d, sizeof(float)) : NULL;
	net->W2 = calloc((size_t) c * E, sizeof(float));
	if (net->mean == NULL || net->W2 == NULL || (e > 0 && net->W1 == NULL))
	{
		tr_net_free(net);
		return -1;
	}
	return 0;
}

void
tr_net_free(tr_net *net)
{
	free(net->mean);
	free(net->W1);
	free(net->W2);
	net->mean = net->W1 = net->W2 = NULL;
}

static double
row_norm(const float *v, int n)
{
	double		s = 0;

	for (int i = 0; i < n; i++)
		s += (double) v[i] * v[i];
	return sqrt(s + 1e-12);
}

/* Z = (X - mean) W1^T, or X - mean; Xc receives X - mean (n x d). */
static void
project(const tr_net *net, const float *X, int n, float *Xc, float *Z)
{
	int			d = net->d;

	for (int i = 0; i < n; i++)
		for (int j = 0; j < d; j++)
			Xc[(size_t) i * d + j] = X[(size_t) i * d + j] - net->mean[j];
	if (net->e > 0)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, net->e, d,
					1.0f, Xc, d, net->W1, d, 0.0f, Z, net->e);
	else
		memcpy(Z, Xc, sizeof(float) * n * d);
}

void
tr_net_embed(const tr_net *net, const float *X, int n, float *U)
{
	int			E = TR_NET_EDIM(net);
	float	   *Xc = malloc(sizeof(float) * (size_t) n * net->d);

	project(net, X, n, Xc, U);
	for (int i = 0; i < n; i++)
	{
		float	   *u = U + (size_t) i * E;
		double		nz = row_norm(u, E);

		for (int k = 0; k < E; k++)
			u[k] = (float) (u[k] / nz);
	}
	free(Xc);
}

/* Rows of W2 normalised into W2n; norms into nw. */
static void
normalised_classes(const tr_net *net, float *W2n, double *nw)
{
	int			E = TR_NET_EDIM(net);

	for (int c = 0; c < net->c; c++)
	{
		const float *w = net->W2 + (size_t) c * E;
		double		n = row_norm(w, E);

		if (nw)
			nw[c] = n;
		for (int k = 0; k < E; k++)
			W2n[(size_t) c * E + k] = (float) (w[k] / n);
	}
}

void
tr_net_cosines(const tr_net *net, const float *U, int n, float *cos)
{
	int			E = TR_NET_EDIM(net);
	float	   *W2n = malloc(sizeof(float) * (size_t) net->c * E);

	normalised_classes(net, W2n, NULL);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, net->c, E,
				1.0f, U, E, W2n, E, 0.0f, cos, net->c);
	free(W2n);
}

/* Work buffers for a batch of up to bmax rows. */
typedef struct work
{
	float	   *Xc,
			   *Z,
			   *U,
			   *W2n,
			   *P,
			   *dU,
			   *dW2n;
	double	   *nz,
			   *nw;
} work;

static int
work_alloc(work *w, const tr_net *net, int bmax)
{
	int			E = TR_NET_EDIM(net);

	w->Xc = malloc(sizeof(float) * (size_t) bmax * net->d);
	w->Z = malloc(sizeof(float) * (size_t) bmax * E);
	w->U = malloc(sizeof(float) * (size_t) bmax * E);
	w->W2n = malloc(sizeof(float) * (size_t) net->c * E);
	w->P = malloc(sizeof(float) * (size_t) bmax * net->c);
	w->dU = malloc(sizeof(float) * (size_t) bmax * E);
	w->dW2n = malloc(sizeof(float) * (size_t) net->c * E);
	w->nz = malloc(sizeof(double) * bmax);
	w->nw = malloc(sizeof(double) * net->c);
	return (w->Xc && w->Z && w->U && w->W2n && w->P && w->dU && w->dW2n && w->nz && w->nw) ? 0 : -1;
}

static void
work_free(work *w)
{
	free(w->Xc);
	free(w->Z);
	free(w->U);
	free(w->W2n);
	free(w->P);
	free(w->dU);
	free(w->dW2n);
	free(w->nz);
	free(w->nw);
}

static double
loss_grad(const tr_net *net, const float *X, const int *y, int n, float wd,
		  float *gW1, float *gW2, work *w, double *flop)
{
	int			d = net->d,
				c = net->c,
				E = TR_NET_EDIM(net);
	double		loss = 0;

	project(net, X, n, w->Xc, w->Z);
	for (int i = 0; i < n; i++)
	{
		w->nz[i] = row_norm(w->Z + (size_t) i * E, E);
		for (int k = 0; k < E; k++)
			w->U[(size_t) i * E + k] = (float) (w->Z[(size_t) i * E + k] / w->nz[i]);
	}
	normalised_classes(net, w->W2n, w->nw);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, c, E,
				net->s, w->U, E, w->W2n, E, 0.0f, w->P, c);
	*flop += 2.0 * n * c * E + (net->e > 0 ? 2.0 * n * net->e * d : 0);
	/* Softmax cross-entropy; P becomes dLoss/dlogits. */
	for (int i = 0; i < n; i++)
	{
		float	   *p = w->P + (size_t) i * c;
		float		m = p[0];
		double		sum = 0;

		for (int k = 1; k < c; k++)
			if (p[k] > m)
				m = p[k];
		for (int k = 0; k < c; k++)
			sum += exp(p[k] - m);
		loss += -(p[y[i]] - m - log(sum));
		for (int k = 0; k < c; k++)
			p[k] = (float) (exp(p[k] - m) / sum / n);
		p[y[i]] -= 1.0f / n;
	}
	loss /= n;
	if (net->e > 0 && wd > 0)
	{
		double		s = 0;

		for (size_t k = 0; k < (size_t) net->e * d; k++)
			s += (double) net->W1[k] * net->W1[k];
		loss += 0.5 * wd * s;
	}
	if (gW1 == NULL && gW2 == NULL)
		return loss;

	/* Through the logits: dU = s G W2n, dW2n = s G^T U. */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, E, c,
				net->s, w->P, c, w->W2n, E, 0.0f, w->dU, E);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c, E, n,
				net->s, w->P, c, w->U, E, 0.0f, w->dW2n, E);
	*flop += 4.0 * n * c * E;
	/* Through the normalisations. */
	if (gW2)
		for (int k = 0; k < c; k++)
		{
			const float *wn = w->W2n + (size_t) k * E;
			const float *g = w->dW2n + (size_t) k * E;
			double		dot = 0;

			for (int j = 0; j < E; j++)
				dot += (double) wn[j] * g[j];
			for (int j = 0; j < E; j++)
				gW2[(size_t) k * E + j] = (float) ((g[j] - wn[j] * dot) / w->nw[k]);
		}
	if (net->e > 0 && gW1)
	{
		/* dZ in place of dU. */
		for (int i = 0; i < n; i++)
		{
			const float *u = w->U + (size_t) i * E;
			float	   *g = w->dU + (size_t) i * E;
			double		dot = 0;

			for (int j = 0; j < E; j++)
				dot += (double) u[j] * g[j];
			for (int j = 0; j < E; j++)
				g[j] = (float) ((g[j] - u[j] * dot) / w->nz[i]);
		}
		memcpy(gW1, net->W1, sizeof(float) * (size_t) net->e * d);
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, net->e, d, n,
					1.0f, w->dU, E, w->Xc, d, wd, gW1, d);
		*flop += 2.0 * n * net->e * d;
	}
	return loss;
}

double
tr_net_loss_grad(const tr_net *net, const float *X, const int *y, int n,
				 float weight_decay, float *gW1, float *gW2)
{
	work		w;
	double		flop = 0,
				loss = NAN;

	if (work_alloc(&w, net, n) == 0)
		loss = loss_grad(net, X, y, n, weight_decay, gW1, gW2, &w, &flop);
	work_free(&w);
	return loss;
}

/* sgemm work of the initialisation (principal and discriminant directions, centres). */
static double init_flop = 0;

/*
 * Z = W1[0..rows) (X[idx] - mean)^T for n rows, by chunks gathered into one sgemm
 * each; rows of Z L2-normalised when normalise. Z is n x rows. Returns 0 or -1.
 */
static int
embed_rows(const tr_net *net, const float *X, const int *idx, int n, int rows, int normalise, float *Z)
{
	const int	chunk = 256;
	int			d = net->d;
	float	   *Xb = malloc(sizeof(float) * (size_t) chunk * d);

	if (Xb == NULL)
		return -1;
	for (int s0 = 0; s0 < n; s0 += chunk)
	{
		int			b = n - s0 < chunk ? n - s0 : chunk;

		for (int i = 0; i < b; i++)
		{
			const float *x = X + (size_t) idx[s0 + i] * d;
			float	   *o = Xb + (size_t) i * d;

			for (int j = 0; j < d; j++)
				o[j] = x[j] - net->mean[j];
		}
		if (net->e > 0)
		{
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, rows, d, 1.0f, Xb, d, net->W1, d,
						0.0f, Z + (size_t) s0 * rows, rows);
			init_flop += 2.0 * b * rows * d;
		}
		else
			memcpy(Z + (size_t) s0 * rows, Xb, sizeof(float) * (size_t) b * d);
		if (normalise)
			for (int i = 0; i < b; i++)
			{
				float	   *z = Z + (size_t) (s0 + i) * rows;
				double		nz = row_norm(z, rows);

				for (int k = 0; k < rows; k++)
					z[k] = (float) (z[k] / nz);
			}
	}
	free(Xb);
	return 0;
}

/* ---------- principal directions ---------- */

/*
 * Orthonormalise the columns of A (n x l, row-major) in place by Cholesky QR,
 * twice (CholeskyQR2): G = A^T A (sgemm), G = L L^T, A <- A L^-T (strsm).
 * A tiny ridge keeps rank-deficient inputs finite. Returns 0, or -1 (out of memory).
 */
static int
orthonormalise_columns(float *A, int n, int l)
{
	float	   *G = malloc(sizeof(float) * l * l);
	double	   *L = malloc(sizeof(double) * l * l);

	if (G == NULL || L == NULL)
	{
		free(G);
		free(L);
		return -1;
	}
	for (int pass = 0; pass < 2; pass++)
	{
		double		trace = 0;

		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l, l, n, 1.0f, A, l, A, l, 0.0f, G, l);
		for (int i = 0; i < l; i++)
			trace += G[i * l + i];
		if (trace <= 0)
			break;
		/* Cholesky in double, lower triangle. */
		for (int j = 0; j < l; j++)
		{
			double		s = G[j * l + j] + 1e-6 * trace / l;

			for (int k = 0; k < j; k++)
				s -= L[j * l + k] * L[j * l + k];
			L[j * l + j] = sqrt(s > 1e-30 ? s : 1e-30);
			for (int i = j + 1; i < l; i++)
			{
				double		t = 0.5 * ((double) G[i * l + j] + G[j * l + i]);

				for (int k = 0; k < j; k++)
					t -= L[i * l + k] * L[j * l + k];
				L[i * l + j] = t / L[j * l + j];
			}
			for (int i = 0; i < j; i++)
				L[i * l + j] = 0;
		}
		for (int i = 0; i < l * l; i++)
			G[i] = (float) L[i];
		/* A <- A L^-T. */
		cblas_strsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, n, l, 1.0f, G, l, A, l);
	}
	free(G);
	free(L);
	return 0;
}

/* Eigen-decomposition of a symmetric l x l matrix (cyclic Jacobi): values w, vectors as columns of V. */
static void
jacobi_eigen(double *A, int l, double *w, double *V)
{
	for (int i = 0; i < l; i++)
		for (int j = 0; j < l; j++)
			V[i * l + j] = (i == j);
	for (int sweep = 0; sweep < 60; sweep++)
	{
		double		off = 0,
					total = 0;

		for (int i = 0; i < l; i++)
			for (int j = 0; j < l; j++)
			{
				total += A[i * l + j] * A[i * l + j];
				if (i != j)
					off += A[i * l + j] * A[i * l + j];
			}
		if (off <= 1e-22 * total || off == 0)
			break;
		for (int p = 0; p < l; p++)
			for (int q = p + 1; q < l; q++)
			{
				double		apq = A[p * l + q],
							theta,
							t,
							cs,
							sn;

				if (fabs(apq) < 1e-300)
					continue;
				theta = (A[q * l + q] - A[p * l + p]) / (2 * apq);
				t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
				cs = 1 / sqrt(t * t + 1);
				sn = t * cs;
				for (int k = 0; k < l; k++)
				{
					double		akp = A[k * l + p],
								akq = A[k * l + q];

					A[k * l + p] = cs * akp - sn * akq;
					A[k * l + q] = sn * akp + cs * akq;
				}
				for (int k = 0; k < l; k++)
				{
					double		apk = A[p * l + k],
								aqk = A[q * l + k];

					A[p * l + k] = cs * apk - sn * aqk;
					A[q * l + k] = sn * apk + cs * aqk;
				}
				for (int k = 0; k < l; k++)
				{
					double		vkp = V[k * l + p],
								vkq = V[k * l + q];

					V[k * l + p] = cs * vkp - sn * vkq;
					V[k * l + q] = sn * vkp + cs * vkq;
				}
			}
	}
	for (int i = 0; i < l; i++)
		w[i] = A[i * l + i];
}

int
tr_pca(const float *X, int nall, int d, const int *idx, int n, const float *mean,
	   int k, uint64_t seed, float *dirs, double *variances)
{
	int			l = k + 10,
				found = 0;
	float	   *Om,
			   *Y,
			   *Z,
			   *B,
			   *mrow;
	char	   *in;
	double	   *C,
			   *w,
			   *V;
	uint64_t	s = seed ^ 0xC0FFEEULL;

	if (l > n)
		l = n;
	if (l > d)
		l = d;
	if (k > l)
		k = l;
	if (k <= 0)
		return 0;
	Om = malloc(sizeof(float) * (size_t) d * l);
	Y = calloc((size_t) nall * l, sizeof(float));
	Z = malloc(sizeof(float) * (size_t) d * l);
	B = malloc(sizeof(float) * (size_t) l * d);
	mrow = malloc(sizeof(float) * l);
	in = calloc(nall, 1);
	C = malloc(sizeof(double) * l * l);
	w = malloc(sizeof(double) * l);
	V = malloc(sizeof(double) * l * l);
	if (!Om || !Y || !Z || !B || !mrow || !in || !C || !w || !V)
	{
		found = -1;
		goto out;
	}
	for (int i = 0; i < n; i++)
		in[idx[i]] = 1;
	for (size_t i = 0; i < (size_t) d * l; i++)
		Om[i] = (float) rng_gauss(&s);

	/* Y = Xc Om on the rows in the set (others zero); then q power iterations. */
	for (int iter = 0; iter < 3; iter++)
	{
		const float *M = iter == 0 ? Om : Z;

		if (tr_interrupted())
		{
			found = -1;			/* tr_fit reports the cancel */
			goto out;
		}

		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nall, l, d, 1.0f, X, d, M, l, 0.0f, Y, l);
		init_flop += 2.0 * nall * l * d;
		cblas_sgemv(CblasRowMajor, CblasTrans, d, l, 1.0f, M, l, mean, 1, 0.0f, mrow, 1);
		for (int i = 0; i < nall; i++)
			for (int j = 0; j < l; j++)
				Y[(size_t) i * l + j] = in[i] ? Y[(size_t) i * l + j] - mrow[j] : 0.0f;
		if (orthonormalise_columns(Y, nall, l) != 0)
		{
			found = -1;
			goto out;
		}
		if (iter == 2)
			break;
		/* Z = Xc^T Y = X^T Y - mean (1^T Y). */
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, l, nall, 1.0f, X, d, Y, l, 0.0f, Z, l);
		init_flop += 2.0 * nall * l * d;
		for (int j = 0; j < l; j++)
		{
			double		cs = 0;

			for (int i = 0; i < nall; i++)
				cs += Y[(size_t) i * l + j];
			mrow[j] = (float) cs;
		}
		for (int r = 0; r < d; r++)
			for (int j = 0; j < l; j++)
				Z[(size_t) r * l + j] -= mean[r] * mrow[j];
		if (orthonormalise_columns(Z, d, l) != 0)
		{
			found = -1;
			goto out;
		}
	}
	/* B = Y^T Xc (l x d); C = B B^T. */
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l, d, nall, 1.0f, Y, l, X, d, 0.0f, B, d);
	init_flop += 2.0 * nall * l * d;
	for (int j = 0; j < l; j++)
	{
		double		cs = 0;

		for (int i = 0; i < nall; i++)
			cs += Y[(size_t) i * l + j];
		for (int r = 0; r < d; r++)
			B[(size_t) j * d + r] -= (float) (cs * mean[r]);
	}
	{
		float	   *Cf = malloc(sizeof(float) * l * l);

		if (Cf == NULL)
		{
			found = -1;
			goto out;
		}
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l, l, d, 1.0f, B, d, B, d, 0.0f, Cf, l);
		init_flop += 2.0 * l * l * d;
		for (int a = 0; a < l; a++)
			for (int b = 0; b < l; b++)
				C[a * l + b] = 0.5 * ((double) Cf[a * l + b] + Cf[b * l + a]);
		free(Cf);
	}
	jacobi_eigen(C, l, w, V);
	/* Directions by decreasing eigenvalue: v = B^T u / sigma, as one sgemm (U^T B). */
	{
		float	   *Ut = calloc((size_t) k * l, sizeof(float));
		double		top = -1;

		if (Ut == NULL)
		{
			found = -1;
			goto out;
		}
		for (int t = 0; t < k; t++)
		{
			int			best = -1;

			for (int j = 0; j < l; j++)
				if (w[j] > -1 && (best < 0 || w[j] > w[best]))
					best = j;
			if (best < 0 || w[best] <= 0 || (top > 0 && w[best] <= 1e-9 * top))
				break;
			if (top < 0)
				top = w[best];
			for (int j = 0; j < l; j++)
				Ut[(size_t) t * l + j] = (float) (V[j * l + best] / sqrt(w[best]));
			variances[t] = w[best] / n;
			w[best] = -2;
			found++;
		}
		if (found > 0)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, found, d, l, 1.0f, Ut, l, B, d,
						0.0f, dirs, d);
		free(Ut);
	}
out:
	free(Om);
	free(Y);
	free(Z);
	free(B);
	free(mrow);
	free(in);
	free(C);
	free(w);
	free(V);
	return found;
}

/* ---------- training ---------- */

/* Top-1 accuracy of the network on rows idx of X. */
static double
accuracy(const tr_net *net, const float *X, const int *y, const int *idx, int n)
{
	int			E = TR_NET_EDIM(net),
				chunk = 256,
				correct = 0;
	float	   *Xb = malloc(sizeof(float) * (size_t) chunk * net->d);
	float	   *U = malloc(sizeof(float) * (size_t) chunk * E);
	float	   *C = malloc(sizeof(float) * (size_t) chunk * net->c);

	for (int s = 0; s < n; s += chunk)
	{
		int			b = (n - s) < chunk ? (n - s) : chunk;

		for (int i = 0; i < b; i++)
			memcpy(Xb + (size_t) i * net->d, X + (size_t) idx[s + i] * net->d, sizeof(float) * net->d);
		tr_net_embed(net, Xb, b, U);
		tr_net_cosines(net, U, b, C);
		for (int i = 0; i < b; i++)
		{
			int			best = 0;

			for (int k = 1; k < net->c; k++)
				if (C[(size_t) i * net->c + k] > C[(size_t) i * net->c + best])
					best = k;
			correct += (best == y[idx[s + i]]);
		}
	}
	free(Xb);
	free(U);
	free(C);
	return n > 0 ? (double) correct / n : 0;
}

/*
 * Linear discriminant directions in the whitened principal space: keep at most
 * n - classes principal directions (so that the within-class scatter is not
 * singular), then rotate W1 onto the top classes - 1 eigenvectors of the
 * between-class scatter of the embedded rows. Rows of W1 beyond them are zero.
 */
static int
lda_rotate(tr_net *net, const float *X, const int *y, const int *idx, int n, int found,
		   const tr_fit_params *p)
{
	int			d = net->d,
				e = net->e,
				c = net->c,
				present = 0,
				kp,
				k,
				rc = -1;
	int		   *count = calloc(c, sizeof(int));
	double	   *M = calloc((size_t) c * e, sizeof(double));
	double	   *Sb = calloc((size_t) e * e, sizeof(double));
	double	   *w = malloc(sizeof(double) * e);
	double	   *V = malloc(sizeof(double) * e * e);
	float	   *Q = NULL,
			   *W = NULL;

	if (!count || !M || !Sb || !w || !V)
		goto out;
	for (int i = 0; i < n; i++)
		count[y[idx[i]]]++;
	for (int k2 = 0; k2 < c; k2++)
		present += count[k2] > 0;
	kp = n - present < found ? n - present : found;
	k = present - 1 < kp ? present - 1 : kp;
	if (k < 1)
	{
		rc = 0;					/* nothing to discriminate: keep the principal directions */
		goto out;
	}
	for (int r = kp; r < e; r++)
		memset(net->W1 + (size_t) r * d, 0, sizeof(float) * d);
	/* Class means of the embedded rows. */
	{
		float	   *Z = malloc(sizeof(float) * (size_t) n * kp);

		if (Z == NULL || embed_rows(net, X, idx, n, kp, 0, Z) != 0)
		{
			free(Z);
			goto out;
		}
		for (int i = 0; i < n; i++)
			for (int a = 0; a < kp; a++)
				M[(size_t) y[idx[i]] * e + a] += Z[(size_t) i * kp + a];
		free(Z);
	}
	for (int k2 = 0; k2 < c; k2++)
		for (int a = 0; a < kp && count[k2] > 0; a++)
			M[(size_t) k2 * e + a] /= count[k2];
	/* Between-class scatter (the rows are centred, so the overall mean is 0). */
	for (int k2 = 0; k2 < c; k2++)
		for (int a = 0; a < kp; a++)
			for (int b = 0; b < kp; b++)
				Sb[a * kp + b] += (double) count[k2] / n * M[(size_t) k2 * e + a] * M[(size_t) k2 * e + b];
	jacobi_eigen(Sb, kp, w, V);
	/* Q (k x kp): the top k eigenvectors as rows; W1 <- Q W1. */
	Q = calloc((size_t) k * kp, sizeof(float));
	W = malloc(sizeof(float) * (size_t) k * d);
	if (Q == NULL || W == NULL)
		goto out;
	for (int t = 0; t < k; t++)
	{
		int			best = -1;

		for (int j = 0; j < kp; j++)
			if (w[j] > -1 && (best < 0 || w[j] > w[best]))
				best = j;
		for (int j = 0; j < kp; j++)
			Q[(size_t) t * kp + j] = (float) V[j * kp + best];
		w[best] = -2;
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, d, kp, 1.0f, Q, kp, net->W1, d, 0.0f, W, d);
	memset(net->W1, 0, sizeof(float) * (size_t) e * d);
	memcpy(net->W1, W, sizeof(float) * (size_t) k * d);
	(void) p;
	rc = 0;
out:
	free(count);
	free(M);
	free(Sb);
	free(w);
	free(V);
	free(Q);
	free(W);
	return rc;
}

/*
 * Initialise: mean of the rows; W1 = (whitened) principal directions, or random;
 * W2 = class centres of the embeddings. Returns 0, or -1 when out of memory.
 */
static int
init_net(tr_net *net, const float *X, int nall, const int *y, const int *idx, int n,
		 const tr_fit_params *p)
{
	uint64_t	seed = p->seed;
	int			d = net->d,
				E = TR_NET_EDIM(net);
	uint64_t	s = seed;
	float	   *U;

	memset(net->mean, 0, sizeof(float) * d);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < d; j++)
			net->mean[j] += X[(size_t) idx[i] * d + j];
	for (int j = 0; j < d; j++)
		net->mean[j] /= (n > 0 ? n : 1);
	if (net->e > 0 && p->pca_init)
	{
		double	   *var = malloc(sizeof(double) * net->e);
		int			found;

		if (var == NULL)
			return -1;
		memset(net->W1, 0, sizeof(float) * (size_t) net->e * d);
		found = tr_interrupted() ? -1 : tr_pca(X, nall, d, idx, n, net->mean, net->e, seed, net->W1, var);
		if (found < 0)
		{
			free(var);
			return -1;
		}
		/* Scale by variance^-whiten, relative to the first so that sizes stay near 1. */
		for (int i = 0; i < found; i++)
		{
			double		f = pow((var[i] + 1e-3 * var[0]) / var[0], -p->whiten);

			for (int j = 0; j < d; j++)
				net->W1[(size_t) i * d + j] *= (float) f;
		}
		free(var);
		if (tr_interrupted() || (p->lda && lda_rotate(net, X, y, idx, n, found, p) != 0))
			return -1;
	}
	else if (net->e > 0)
	{
		double		sd = 1.0 / sqrt((double) d);

		for (size_t k = 0; k < (size_t) net->e * d; k++)
			net->W1[k] = (float) (rng_gauss(&s) * sd);
	}
	memset(net->W2, 0, sizeof(float) * (size_t) net->c * E);
	U = malloc(sizeof(float) * (size_t) (n > 0 ? n : 1) * E);
	if (U == NULL || embed_rows(net, X, idx, n, E, 1, U) != 0)
	{
		free(U);
		return -1;
	}
	for (int i = 0; i < n; i++)
		for (int k = 0; k < E; k++)
			net->W2[(size_t) y[idx[i]] * E + k] += U[(size_t) i * E + k];
	/* A class without rows gets a small random direction. */
	for (int c = 0; c < net->c; c++)
		if (row_norm(net->W2 + (size_t) c * E, E) < 1e-5)
			for (int k = 0; k < E; k++)
				net->W2[(size_t) c * E + k] = (float) (rng_gauss(&s) * 1e-2);
	free(U);
	return 0;
}

typedef struct adam
{
	float	   *m,
			   *v;
	size_t		n;
	long		t;
} adam;

static int
adam_init(adam *a, size_t n)
{
	a->m = calloc(n ? n : 1, sizeof(float));
	a->v = calloc(n ? n : 1, sizeof(float));
	a->n = n;
	a->t = 0;
	return (a->m && a->v) ? 0 : -1;
}

static void
adam_free(adam *a)
{
	free(a->m);
	free(a->v);
}

/* Vectorised: no errno for sqrtf (the argument is never negative). */
TR_FAST_MATH
static void
adam_step(adam *a, float *p, const float *g, float lr)
{
	const float b1 = 0.9f,
				b2 = 0.999f,
				eps = 1e-8f;
	float		c1 = 1.0f - powf(b1, (float) a->t),
				c2 = 1.0f - powf(b2, (float) a->t);
	float		step = lr * sqrtf(c2) / c1;

	for (size_t i = 0; i < a->n; i++)
	{
		/* Tiny values are flushed to 0: denormal arithmetic is ~100 times slower. */
		float		gi = fabsf(g[i]) < 1e-18f ? 0.0f : g[i];
		float		m = b1 * a->m[i] + (1 - b1) * gi;
		float		v = b2 * a->v[i] + (1 - b2) * gi * gi;

		a->m[i] = fabsf(m) < 1e-30f ? 0.0f : m;
		a->v[i] = v < 1e-30f ? 0.0f : v;
		p[i] -= step * a->m[i] / (sqrtf(a->v[i]) + eps);
	}
}

/*
 * One training run on rows tr (ntr) for up to max_epochs epochs; with a
 * validation set (nval > 0), stop after patience epochs without improvement and
 * leave the best network in net. Returns epochs of the returned network, or -1.
 */
static int
run(tr_net *net, const float *X, int nall, const int *y, const int *tr, int ntr, const int *val, int nval,
	const tr_fit_params *p, int max_epochs, int phase, double *best_val, double *flop,
	int *epochs_run, tr_epoch_fn cb, void *ctx, int *stopped)
{
	int			E = TR_NET_EDIM(net),
				B = p->batch < ntr ? p->batch : ntr;
	int			frozen = net->e > 0 && !p->train_projection;
	size_t		n1 = frozen ? 0 : (size_t) net->e * net->d,
				n2 = (size_t) net->c * E;
	tr_net		view;
	tr_net	   *tn = net;		/* the network the loop trains */
	const float *Xin = X;		/* its input rows */
	float	   *Uall = NULL,
			   *zero = NULL;
	float	   *Xb = NULL;
	int		   *yb = malloc(sizeof(int) * B);
	int		   *order = malloc(sizeof(int) * ntr);
	float	   *g1 = n1 ? malloc(sizeof(float) * n1) : NULL;
	float	   *g2 = malloc(sizeof(float) * n2);
	float	   *best1 = NULL,
			   *best2 = NULL;
	adam		a1,
				a2;
	work		w;
	uint64_t	s = p->seed ^ 0x5DEECE66DULL;
	int			best_epoch = 0,
				rc = -1;
	double		best_acc = -1,
				best_loss = INFINITY;

	memset(&a1, 0, sizeof(a1));
	memset(&a2, 0, sizeof(a2));
	memset(&w, 0, sizeof(w));
	/* Epoch 0: around the initialisation, which takes long on large sets (cancel checks). */
	if (cb && cb(ctx, phase, 0, max_epochs, NAN, -1) != 0)
		goto stop;
	if (init_net(net, X, nall, y, tr, ntr, p) != 0)
		goto out;
	if (cb && cb(ctx, phase, 0, max_epochs, NAN, -1) != 0)
		goto stop;

	/*
	 * A fixed projection: embed every row once (one sgemm), then train the
	 * class centres on the embeddings through a view of the network without W1.
	 */
	if (frozen)
	{
		Uall = malloc(sizeof(float) * (size_t) nall * E);
		zero = calloc(E, sizeof(float));
		if (Uall == NULL || zero == NULL)
			goto out;
		for (int s0 = 0; s0 < nall; s0 += 1024)
		{
			int			b = nall - s0 < 1024 ? nall - s0 : 1024;

			if (tr_interrupted())
				goto out;

			tr_net_embed(net, X + (size_t) s0 * net->d, b, Uall + (size_t) s0 * E);
		}
		*flop += 2.0 * nall * net->d * net->e;
		view = *net;
		view.d = E;
		view.e = 0;
		view.mean = zero;
		view.W1 = NULL;
		tn = &view;
		Xin = Uall;
	}
	Xb = malloc(sizeof(float) * (size_t) B * tn->d);
	if (nval > 0)
	{
		best1 = n1 ? malloc(sizeof(float) * n1) : NULL;
		best2 = malloc(sizeof(float) * n2);
	}
	if (Xb == NULL || yb == NULL || order == NULL || (n1 && g1 == NULL) || g2 == NULL ||
		adam_init(&a1, n1) != 0 || adam_init(&a2, n2) != 0 || work_alloc(&w, tn, B) != 0 ||
		(nval > 0 && (best2 == NULL || (n1 && best1 == NULL))))
		goto out;
	memcpy(order, tr, sizeof(int) * ntr);
	/* The network as initialised is the first candidate (a tie goes to a trained epoch). */
	if (nval > 0)
	{
		best_acc = accuracy(tn, Xin, y, val, nval);
		best_epoch = 0;
		if (n1)
			memcpy(best1, net->W1, sizeof(float) * n1);
		memcpy(best2, net->W2, sizeof(float) * n2);
	}
	for (int epoch = 1; epoch <= max_epochs; epoch++)
	{
		double		loss = 0,
					vacc = -1;
		int			batches = 0;

		shuffle(order, ntr, &s);
		for (int start = 0; start + B <= ntr; start += B)
		{
			if ((batches & 7) == 0 && tr_interrupted())
				goto out;		/* rc -1: tr_fit reports the cancel */
			for (int i = 0; i < B; i++)
			{
				memcpy(Xb + (size_t) i * tn->d, Xin + (size_t) order[start + i] * tn->d,
					   sizeof(float) * tn->d);
				yb[i] = y[order[start + i]];
			}
			loss += loss_grad(tn, Xb, yb, B, p->weight_decay, g1, g2, &w, flop);
			batches++;
			a1.t++;
			a2.t++;
			if (n1)
				adam_step(&a1, net->W1, g1, p->lr);
			adam_step(&a2, net->W2, g2, p->lr);
		}
		loss /= batches > 0 ? batches : 1;
		(*epochs_run)++;
		if (nval > 0)
		{
			vacc = accuracy(tn, Xin, y, val, nval);
			if (vacc > best_acc || (vacc == best_acc && loss < best_loss))
			{
				best_acc = vacc;
				best_loss = loss;
				best_epoch = epoch;
				if (n1)
					memcpy(best1, net->W1, sizeof(float) * n1);
				memcpy(best2, net->W2, sizeof(float) * n2);
			}
		}
		else
			best_epoch = epoch;
		if (cb && cb(ctx, phase, epoch, max_epochs, loss, vacc) != 0)
			goto stop;
		if (nval > 0 && epoch >= p->min_epochs && epoch - best_epoch >= p->patience)
			break;
	}
	if (nval > 0)
	{
		if (n1)
			memcpy(net->W1, best1, sizeof(float) * n1);
		memcpy(net->W2, best2, sizeof(float) * n2);
		*best_val = best_acc;
	}
	rc = best_epoch;
	goto out;
stop:
	*stopped = 1;				/* rc -1: tr_fit reports the stop */
out:
	free(Uall);
	free(zero);
	free(Xb);
	free(yb);
	free(order);
	free(g1);
	free(g2);
	free(best1);
	free(best2);
	adam_free(&a1);
	adam_free(&a2);
	work_free(&w);
	return rc;
}

/* Drop the rows of W1 that are zero (and their columns of W2): they embed nothing. */
static void
compact(tr_net *net)
{
	int			d = net->d,
				e = net->e,
				keep = 0;

	if (e <= 0)
		return;
	for (int r = 0; r < e; r++)
	{
		int			nonzero = 0;

		for (int j = 0; j < d && !nonzero; j++)
			nonzero = net->W1[(size_t) r * d + j] != 0.0f;
		if (!nonzero)
			continue;
		if (keep != r)
		{
			memmove(net->W1 + (size_t) keep * d, net->W1 + (size_t) r * d, sizeof(float) * d);
			for (int k = 0; k < net->c; k++)
				net->W2[(size_t) k * e + keep] = net->W2[(size_t) k * e + r];
		}
		keep++;
	}
	if (keep == e || keep == 0)
		return;
	/* W2 from c x e to c x keep, row by row (in place, forwards). */
	for (int k = 0; k < net->c; k++)
		memmove(net->W2 + (size_t) k * keep, net->W2 + (size_t) k * e, sizeof(float) * keep);
	net->e = keep;
}

/*
 * The parameters within max_gflop: as many epochs (per phase) as the budget pays for, counting
 * an epoch's sgemm work (forward and backward over the training rows, the validation rows).
 */
static tr_fit_params
within_budget(const tr_fit_params *p, int n, int d, int c)
{
	tr_fit_params q = *p;
	double		E = p->embed_dim > 0 ? p->embed_dim : d,
				epoch = 6.0 * n * (1 - p->val_fraction) * E * c + 2.0 * n * p->val_fraction * E * c;
	double		allowed;

	if (p->train_projection && p->embed_dim > 0)
		epoch += 6.0 * n * d * p->embed_dim;
	if (p->max_gflop <= 0 || epoch <= 0)
		return q;
	allowed = floor(p->max_gflop * 1e9 / (epoch * (p->refit ? 2 : 1)));
	if (allowed < q.max_epochs)
		q.max_epochs = (int) allowed;
	if (q.min_epochs > q.max_epochs)
		q.min_epochs = q.max_epochs;
	return q;
}

/* Evenly spread rows of idx (at most max of them) into out; returns how many. */
static int
spread_rows(const int *idx, int n, int max, int *out)
{
	int			k = 0;

	if (n <= max)
	{
		memcpy(out, idx, sizeof(int) * n);
		return n;
	}
	for (int i = 0; i < max; i++)
		out[k++] = idx[(int) ((long) i * n / max)];
	return k;
}

int
tr_fit(const float *X, const int *y, int n, int d, int c, const tr_fit_params *p_in,
	   tr_net *net, tr_fit_report *rep, tr_epoch_fn cb, void *ctx, char *err, size_t errlen)
{
	tr_fit_params budget = within_budget(p_in, n, d, c);
	const tr_fit_params *p = &budget;
	int		   *count = calloc(c, sizeof(int));
	int		   *all = malloc(sizeof(int) * (n > 0 ? n : 1));
	int		   *tr = malloc(sizeof(int) * (n > 0 ? n : 1));
	int		   *val = malloc(sizeof(int) * (n > 0 ? n : 1));
	int			ntr = 0,
				nval = 0,
				epochs,
				rc = -1;
	uint64_t	s = p->seed;
	double		t0 = now_seconds(),
				flop = 0,
				best_val = -1;
	int			stopped = 0;

	memset(rep, 0, sizeof(*rep));
	memset(net, 0, sizeof(*net));
	init_flop = 0;
	if (count == NULL || all == NULL || tr == NULL || val == NULL)
	{
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (tr_net_alloc(net, d, p->embed_dim, c, p->scale) != 0)
	{
		snprintf(err, errlen, "out of memory for a network of %d x %d x %d", d, p->embed_dim, c);
		goto out;
	}
	/* Stratified split: per class, a shuffled val_fraction (rounded down) validates. */
	for (int i = 0; i < n; i++)
	{
		all[i] = i;
		count[y[i]]++;
	}
	shuffle(all, n, &s);
	{
		int		   *taken = calloc(c, sizeof(int));

		for (int i = 0; i < n; i++)
		{
			int			k = y[all[i]];
			int			nv = (int) floorf(count[k] * p->val_fraction);

			if (taken[k] < nv && count[k] - nv >= 1)
			{
				val[nval++] = all[i];
				taken[k]++;
			}
			else
				tr[ntr++] = all[i];
		}
		free(taken);
	}
	if (nval > 0)
	{
		epochs = run(net, X, n, y, tr, ntr, val, nval, p, p->max_epochs, 0, &best_val, &flop,
					 &rep->epochs_run, cb, ctx, &stopped);
		if (epochs < 0)
			goto oom;
		rep->validation_accuracy = best_val;
		rep->validation_images = nval;
		if (p->refit)
		{
			for (int i = 0; i < n; i++)
				all[i] = i;
			epochs = run(net, X, n, y, all, n, NULL, 0, p, epochs, 1, &best_val, &flop,
						 &rep->epochs_run, cb, ctx, &stopped);
			if (epochs < 0)
				goto oom;
			ntr = n;
			memcpy(tr, all, sizeof(int) * n);
		}
	}
	else
	{
		rep->validation_accuracy = -1;
		for (int i = 0; i < n; i++)
			all[i] = i;
		epochs = run(net, X, n, y, all, n, NULL, 0, p, p->min_epochs, 1, &best_val, &flop,
					 &rep->epochs_run, cb, ctx, &stopped);
		if (epochs < 0)
			goto oom;
		ntr = n;
		memcpy(tr, all, sizeof(int) * n);
	}
	compact(net);
	rep->epochs = epochs;
	/* On at most TR_TRAIN_ACCURACY_ROWS rows: on a large set it costs as much as an epoch. */
	rep->train_accuracy = accuracy(net, X, y, val, spread_rows(tr, ntr, TR_TRAIN_ACCURACY_ROWS, val));
	rep->gflop = (flop + init_flop) * 1e-9;
	rep->seconds = now_seconds() - t0;
	rc = 0;
	goto out;
oom:
	/* The loops stop with -1 on a stop of the callback or a cancel request too. */
	if (stopped)
	{
		snprintf(err, errlen, "stopped");
		rc = TR_STOPPED;
	}
	else if (tr_interrupted())
	{
		snprintf(err, errlen, "canceled");
		rc = TR_CANCELED;
	}
	else
		snprintf(err, errlen, "out of memory in the training loop");
	tr_net_free(net);
out:
	free(count);
	free(all);
	free(tr);
	free(val);
	return rc;
}
