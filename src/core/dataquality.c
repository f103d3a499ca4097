/*
 * dataquality.c: mislabelled images, near-duplicates and two-group classes from feature vectors.
 *
 * Every vector is taken as its direction (unit length); distances are between unit vectors (0..2).
 * Products with the class sums and with the other images are cblas_sgemm on blocks of rows, so
 * the extra memory is the class sums plus one block of products.
 */
#include "dataquality.h"
#include "interrupt.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 256
#define KMEANS_ITERS 10

void
tr_quality_params_default(tr_quality_params *p)
{
	p->mislabel_margin = 0.05f;
	p->duplicate_distance = 0.05f;
	p->max_duplicate_images = 20000;
	p->max_duplicates = 1000;
}

void
tr_quality_report_free(tr_quality_report *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < r->n_splits; i++)
		free(r->splits[i].second);
	free(r->mislabelled);
	free(r->duplicates);
	free(r->splits);
	memset(r, 0, sizeof(*r));
}

static float
unit_distance(double sim)
{
	double		d2 = 2.0 - 2.0 * sim;

	return d2 > 0 ? (float) sqrt(d2) : 0.0f;
}

static double
dot(const float *a, const float *b, int d)
{
	return cblas_sdot(d, a, 1, b, 1);
}

/* Images closer to another class's centre than to their own (itself left out). */
static int
find_mislabelled(const float *X, const int *y, int n, int d, int nclasses, const float *inv,
				 const float *S, const double *snorm2, const int *count, const tr_quality_params *p,
				 tr_quality_report *out)
{
	/* Rows per block: at most BLOCK, and a block of products of at most 4M floats (16 MB). */
	int			rows = nclasses > 0 && (4 << 20) / nclasses < BLOCK ? ((4 << 20) / nclasses > 0 ? (4 << 20) / nclasses : 1) : BLOCK;
	float	   *G = malloc(sizeof(float) * (size_t) rows * (nclasses > 0 ? nclasses : 1));
	double	   *inv_snorm = malloc(sizeof(double) * (nclasses > 0 ? nclasses : 1));
	int			cap = 0;

	if (G == NULL || inv_snorm == NULL)
	{
		free(G);
		free(inv_snorm);
		return -1;
	}
	for (int k = 0; k < nclasses; k++)
		inv_snorm[k] = snorm2[k] > 1e-12 ? 1.0 / sqrt(snorm2[k]) : 0;
	for (int i0 = 0; i0 < n; i0 += rows)
	{
		int			b = n - i0 < rows ? n - i0 : rows;

		if (tr_interrupted())
		{
			free(G);
			free(inv_snorm);
			return TR_CANCELED;
		}
		/* G = X[i0..i0+b) S^T: raw rows against the class sums of unit rows. */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, nclasses, d, 1.0f,
					X + (size_t) i0 * d, d, S, d, 0.0f, G, nclasses);
		for (int r = 0; r < b; r++)
		{
			int			i = i0 + r,
						c = y[i],
						best = -1;
			double		g_own,
						own2,
						sim_own,
						best_sim = -2;
			const float *g = G + (size_t) r * nclasses;

			if (inv[i] == 0 || count[c] < 2)
				continue;
			g_own = g[c] * inv[i];
			own2 = snorm2[c] - 2.0 * g_own + 1.0;	/* |S_c - x|^2 */
			if (own2 <= 1e-12)
				continue;
			sim_own = (g_own - 1.0) / sqrt(own2);
			for (int k = 0; k < nclasses; k++)
			{
				double		sim;

				if (k == c || count[k] == 0 || inv_snorm[k] == 0)
					continue;
				sim = g[k] * inv[i] * inv_snorm[k];
				if (sim > best_sim)
				{
					best_sim = sim;
					best = k;
				}
			}
			if (best < 0 || unit_distance(best_sim) + p->mislabel_margin >= unit_distance(sim_own))
				continue;
			if (out->n_mislabelled == cap)
			{
				int			ncap = cap ? cap * 2 : 16;
				tr_mislabel *nm = realloc(out->mislabelled, sizeof(tr_mislabel) * ncap);

				if (nm == NULL)
				{
					free(G);
					free(inv_snorm);
					return -1;
				}
				out->mislabelled = nm;
				cap = ncap;
			}
			out->mislabelled[out->n_mislabelled].image = i;
			out->mislabelled[out->n_mislabelled].closer_class = best;
			out->mislabelled[out->n_mislabelled].own_distance = unit_distance(sim_own);
			out->mislabelled[out->n_mislabelled].other_distance = unit_distance(best_sim);
			out->n_mislabelled++;
		}
	}
	free(G);
	free(inv_snorm);
	return 0;
}

/* Pairs of images closer than duplicate_distance (each pair once, a < b). */
static int
find_duplicates(const float *X, int n, int d, const float *inv, const tr_quality_params *p,
				tr_quality_report *out)
{
	float	   *G;
	double		min_sim = 1.0 - 0.5 * (double) p->duplicate_distance * p->duplicate_distance;

	if (n > p->max_duplicate_images || p->max_duplicates <= 0)
		return 0;
	out->duplicates = malloc(sizeof(tr_duplicate) * p->max_duplicates);
	G = malloc(sizeof(float) * BLOCK * (size_t) (n > 0 ? n : 1));
	if (out->duplicates == NULL || G == NULL)
	{
		free(G);
		return -1;
	}
	out->duplicates_searched = 1;
	for (int i0 = 0; i0 < n; i0 += BLOCK)
	{
		int			b = n - i0 < BLOCK ? n - i0 : BLOCK,
					m = n - i0;

		if (tr_interrupted())
		{
			free(G);
			return TR_CANCELED;
		}
		/* G = X[i0..i0+b) X[i0..n)^T */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, m, d, 1.0f,
					X + (size_t) i0 * d, d, X + (size_t) i0 * d, d, 0.0f, G, m);
		for (int r = 0; r < b; r++)
			for (int j = r + 1; j < m; j++)
			{
				int			a = i0 + r,
							c = i0 + j;
				double		sim = (double) G[(size_t) r * m + j] * inv[a] * inv[c];

				if (inv[a] == 0 || inv[c] == 0 || sim < min_sim)
					continue;
				if (out->n_duplicates == p->max_duplicates)
				{
					out->duplicates_truncated = 1;
					continue;
				}
				out->duplicates[out->n_duplicates].a = a;
				out->duplicates[out->n_duplicates].b = c;
				out->duplicates[out->n_duplicates].distance = unit_distance(sim);
				out->n_duplicates++;
			}
	}
	free(G);
	return 0;
}

static int
cmp_float(const void *a, const void *b)
{
	float		x = *(const float *) a,
				y = *(const float *) b;

	return (x > y) - (x < y);
}

/* The median distance between the centres of two classes (all pairs, or a fixed sample). */
static float
typical_distance(const float *S, const double *snorm2, int nclasses, int d)
{
	enum
	{
		MAX_PAIRS = 20000
	};
	float	   *dist = malloc(sizeof(float) * MAX_PAIRS);
	int			k = 0;
	uint64_t	s = 0x9e3779b97f4a7c15ULL;
	float		med = 2.0f;
	int64_t		pairs = (int64_t) nclasses * (nclasses - 1) / 2;

	if (dist == NULL)
		return med;
	if (pairs <= MAX_PAIRS)
	{
		for (int a = 0; a < nclasses && !tr_interrupted(); a++)
			for (int b = a + 1; b < nclasses; b++)
				if (snorm2[a] > 1e-12 && snorm2[b] > 1e-12)
					dist[k++] = unit_distance(dot(S + (size_t) a * d, S + (size_t) b * d, d) /
											  sqrt(snorm2[a] * snorm2[b]));
	}
	else
		for (int t = 0; t < MAX_PAIRS; t++)
		{
			int			a,
						b;

			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			a = (int) ((s >> 33) % (uint64_t) nclasses);
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			b = (int) ((s >> 33) % (uint64_t) nclasses);
			if (a != b && snorm2[a] > 1e-12 && snorm2[b] > 1e-12)
				dist[k++] = unit_distance(dot(S + (size_t) a * d, S + (size_t) b * d, d) /
										  sqrt(snorm2[a] * snorm2[b]));
		}
	if (k > 0)
	{
		qsort(dist, k, sizeof(float), cmp_float);
		med = dist[k / 2];
	}
	free(dist);
	return med;
}

/*
 * Split one class's m members into two groups (2-means on directions, started from the member
 * farthest from the class centre and the member farthest from that one). Returns the distance
 * between the groups' centres and the larger of the groups' mean distances of members to their
 * centre; group[j] is 0 or 1.
 */
static int
two_means(const float *X, const float *inv, const int *members, int m, int d, const float *centre,
		  double centre_norm, char *group, float *sep, float *spread)
{
	float	   *c0 = calloc(d, sizeof(float)),
			   *c1 = calloc(d, sizeof(float));
	int			a = -1,
				b = -1;
	double		worst = 3;

	if (c0 == NULL || c1 == NULL)
	{
		free(c0);
		free(c1);
		return -1;
	}
	for (int j = 0; j < m; j++)
	{
		double		sim = dot(X + (size_t) members[j] * d, centre, d) * inv[members[j]] / centre_norm;

		if (sim < worst)
		{
			worst = sim;
			a = j;
		}
	}
	worst = 3;
	for (int j = 0; j < m; j++)
	{
		double		sim = dot(X + (size_t) members[j] * d, X + (size_t) members[a] * d, d) *
			inv[members[j]] * inv[members[a]];

		if (j != a && sim < worst)
		{
			worst = sim;
			b = j;
		}
	}
	cblas_scopy(d, X + (size_t) members[a] * d, 1, c0, 1);
	cblas_sscal(d, inv[members[a]], c0, 1);
	cblas_scopy(d, X + (size_t) members[b] * d, 1, c1, 1);
	cblas_sscal(d, inv[members[b]], c1, 1);
	for (int it = 0; it < KMEANS_ITERS && !tr_interrupted(); it++)
	{
		double		n0 = sqrt(dot(c0, c0, d)),
					n1 = sqrt(dot(c1, c1, d));
		int			changed = it == 0;

		for (int j = 0; j < m; j++)
		{
			const float *x = X + (size_t) members[j] * d;
			char		g = dot(x, c1, d) / (n1 > 0 ? n1 : 1) > dot(x, c0, d) / (n0 > 0 ? n0 : 1);

			changed |= it == 0 || g != group[j];
			group[j] = g;
		}
		if (!changed)
			break;
		memset(c0, 0, sizeof(float) * d);
		memset(c1, 0, sizeof(float) * d);
		for (int j = 0; j < m; j++)
			cblas_saxpy(d, inv[members[j]], X + (size_t) members[j] * d, 1, group[j] ? c1 : c0, 1);
	}
	{
		double		n0 = sqrt(dot(c0, c0, d)),
					n1 = sqrt(dot(c1, c1, d)),
					sum = 0;

		double		sum1 = 0;
		int			m1 = 0;

		*sep = (n0 > 0 && n1 > 0) ? unit_distance(dot(c0, c1, d) / (n0 * n1)) : 0;
		for (int j = 0; j < m; j++)
		{
			double		nn = group[j] ? n1 : n0;
			double		dj = nn > 0 ? unit_distance(dot(X + (size_t) members[j] * d, group[j] ? c1 : c0, d) *
												 inv[members[j]] / nn) : 0;

			if (group[j])
			{
				sum1 += dj;
				m1++;
			}
			else
				sum += dj;
		}
		/* The looser group's mean distance to its centre. */
		*spread = (float) fmax(m - m1 > 0 ? sum / (m - m1) : 0, m1 > 0 ? sum1 / m1 : 0);
	}
	free(c0);
	free(c1);
	return 0;
}

/*
 * Classes whose members form two groups of at least 2 images each, at least 3/4 as far apart
 * as two classes typically are, and each tighter than half that distance.
 */
static int
find_splits(const float *X, const int *y, int n, int d, int nclasses, const float *inv,
			const float *S, const double *snorm2, tr_quality_report *out)
{
	int		   *start = calloc(nclasses + 1, sizeof(int)),
			   *order = malloc(sizeof(int) * (n > 0 ? n : 1)),
			   *fill = calloc(nclasses, sizeof(int));
	char	   *group = malloc(n > 0 ? n : 1);
	float		typical;
	int			rc = 0;

	if (start == NULL || order == NULL || fill == NULL || group == NULL)
	{
		rc = -1;
		goto done;
	}
	/* Members of each class, in row order. */
	for (int i = 0; i < n; i++)
		if (inv[i] > 0)
			start[y[i] + 1]++;
	for (int k = 0; k < nclasses; k++)
		start[k + 1] += start[k];
	for (int i = 0; i < n; i++)
		if (inv[i] > 0)
			order[start[y[i]] + fill[y[i]]++] = i;
	typical = typical_distance(S, snorm2, nclasses, d);
	for (int k = 0; k < nclasses; k++)
	{
		int			m = start[k + 1] - start[k],
					n1 = 0;
		float		sep,
					spread;
		tr_split   *sp;

		if (m < 4 || snorm2[k] <= 1e-12)
			continue;
		if (tr_interrupted())
		{
			rc = TR_CANCELED;
			goto done;
		}
		if (two_means(X, inv, order + start[k], m, d, S + (size_t) k * d, sqrt(snorm2[k]), group,
					  &sep, &spread) != 0)
		{
			rc = -1;
			goto done;
		}
		for (int j = 0; j < m; j++)
			n1 += group[j];
		if (n1 < 2 || m - n1 < 2 || sep < 0.75f * typical || spread >= 0.5f * sep)
			continue;
		sp = realloc(out->splits, sizeof(tr_split) * (out->n_splits + 1));
		if (sp == NULL)
		{
			rc = -1;
			goto done;
		}
		out->splits = sp;
		sp = &out->splits[out->n_splits];
		memset(sp, 0, sizeof(*sp));
		sp->cls = k;
		/* The smaller group is the one reported ("second"); ties: group 1. */
		{
			char		small = n1 <= m - n1 ? 1 : 0;

			sp->n_second = small ? n1 : m - n1;
			sp->n_first = m - sp->n_second;
			sp->second = malloc(sizeof(int) * sp->n_second);
			if (sp->second == NULL)
			{
				rc = -1;
				goto done;
			}
			out->n_splits++;
			for (int j = 0, t = 0; j < m; j++)
				if (group[j] == small)
					sp->second[t++] = order[start[k] + j];
		}
		sp->distance = sep;
		sp->typical = typical;
	}
done:
	free(start);
	free(order);
	free(fill);
	free(group);
	return rc;
}

int
tr_data_quality(const float *X, const int *y, int n, int d, int nclasses, const tr_quality_params *p,
				tr_quality_report *out, char *err, size_t errlen)
{
	float	   *inv = malloc(sizeof(float) * (n > 0 ? n : 1));
	float	   *S = calloc((size_t) (nclasses > 0 ? nclasses : 1) * d, sizeof(float));
	double	   *snorm2 = calloc(nclasses > 0 ? nclasses : 1, sizeof(double));
	int		   *count = calloc(nclasses > 0 ? nclasses : 1, sizeof(int));
	int			rc = -1;

	memset(out, 0, sizeof(*out));
	if (inv == NULL || S == NULL || snorm2 == NULL || count == NULL)
		goto done;
	for (int i = 0; i < n; i++)
	{
		double		nn = sqrt(dot(X + (size_t) i * d, X + (size_t) i * d, d));

		inv[i] = nn > 0 && y[i] >= 0 && y[i] < nclasses ? (float) (1.0 / nn) : 0.0f;
		if (inv[i] == 0)
			continue;
		cblas_saxpy(d, inv[i], X + (size_t) i * d, 1, S + (size_t) y[i] * d, 1);
		count[y[i]]++;
	}
	for (int k = 0; k < nclasses; k++)
		snorm2[k] = dot(S + (size_t) k * d, S + (size_t) k * d, d);
	rc = find_mislabelled(X, y, n, d, nclasses, inv, S, snorm2, count, p, out);
	if (rc == 0)
		rc = find_duplicates(X, n, d, inv, p, out);
	if (rc == 0)
		rc = find_splits(X, y, n, d, nclasses, inv, S, snorm2, out);
done:
	if (rc == -1)
		snprintf(err, errlen, "out of memory in the data-quality checks");
	else if (rc == TR_CANCELED)
		snprintf(err, errlen, "canceled");
	free(inv);
	free(S);
	free(snorm2);
	free(count);
	return rc;
}
