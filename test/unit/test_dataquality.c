/*
 * test_dataquality.c: the data-quality checks on generated clusters: moved images are found
 * with the class they belong to, copies are found within and across classes, a class made of
 * two clusters is split, and a clean dataset reports nothing.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataquality.h"
#include "unit.h"

#define D 64
#define C 10
#define PER 8

static uint64_t rng = 42;

static double
gauss(void)
{
	double		u1,
				u2;

	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	u1 = ((rng >> 11) + 1.0) / 9007199254740993.0;
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	u2 = (rng >> 11) / 9007199254740992.0;
	return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

/* C clusters of PER points around random directions (noise 0.25 per unit of norm). */
static void
make(float *X, int *y)
{
	float		centre[C][D];

	for (int k = 0; k < C; k++)
	{
		double		nn = 0;

		for (int j = 0; j < D; j++)
		{
			centre[k][j] = (float) gauss();
			nn += centre[k][j] * centre[k][j];
		}
		for (int j = 0; j < D; j++)
			centre[k][j] /= (float) sqrt(nn);
	}
	for (int i = 0; i < C * PER; i++)
	{
		y[i] = i / PER;
		for (int j = 0; j < D; j++)
			X[i * D + j] = centre[y[i]][j] + 0.25f * (float) gauss() / sqrtf(D);
	}
}

void
test_dataquality(void)
{
	float		X[C * PER * D];
	int			y[C * PER];
	tr_quality_params p;
	tr_quality_report r;
	char		err[128];

	tr_quality_params_default(&p);
	make(X, y);

	/* Clean: nothing to report. */
	CHECK_MSG(tr_data_quality(X, y, C * PER, D, C, &p, &r, err, sizeof(err)) == 0, "%s", err);
	CHECK_MSG(r.n_mislabelled == 0 && r.n_duplicates == 0 && r.n_splits == 0,
			  "clean: %d mislabelled, %d duplicates, %d splits", r.n_mislabelled, r.n_duplicates, r.n_splits);
	CHECK(r.duplicates_searched == 1);
	tr_quality_report_free(&r);

	/* Two images moved to another class; a copy within class 3 and one across (4 → 5);
	 * classes 8 and 9 merged under label 8. */
	y[1] = 2;					/* from class 0 */
	y[13] = 6;					/* from class 1 */
	memcpy(X + (3 * PER + 1) * D, X + (3 * PER) * D, sizeof(float) * D);
	memcpy(X + (5 * PER + 2) * D, X + (4 * PER + 3) * D, sizeof(float) * D);
	for (int i = 9 * PER; i < 10 * PER; i++)
		y[i] = 8;
	CHECK_MSG(tr_data_quality(X, y, C * PER, D, C, &p, &r, err, sizeof(err)) == 0, "%s", err);
	{
		int			found1 = 0,
					found13 = 0,
					other = 0;

		for (int i = 0; i < r.n_mislabelled; i++)
		{
			const tr_mislabel *m = &r.mislabelled[i];

			if (m->image == 1 && m->closer_class == 0)
				found1 = 1;
			else if (m->image == 13 && m->closer_class == 1)
				found13 = 1;
			else if (m->image != 5 * PER + 2)	/* the copy of a class-4 image in class 5 */
				other++;
			CHECK(m->other_distance + p.mislabel_margin < m->own_distance);
		}
		CHECK_MSG(found1 && found13 && other == 0, "mislabelled: %d found, 1:%d 13:%d, %d others",
				  r.n_mislabelled, found1, found13, other);
	}
	CHECK_MSG(r.n_duplicates == 2, "%d duplicates", r.n_duplicates);
	for (int i = 0; i < r.n_duplicates; i++)
	{
		const tr_duplicate *dp = &r.duplicates[i];

		CHECK((dp->a == 3 * PER && dp->b == 3 * PER + 1) || (dp->a == 4 * PER + 3 && dp->b == 5 * PER + 2));
		CHECK(dp->distance < 1e-3);
	}
	CHECK_MSG(r.n_splits == 1 && r.splits[0].cls == 8 && r.splits[0].n_first == PER &&
			  r.splits[0].n_second == PER, "%d splits", r.n_splits);
	if (r.n_splits == 1)
	{
		int			first = r.splits[0].second[0] / PER;

		for (int j = 0; j < r.splits[0].n_second; j++)
			CHECK(r.splits[0].second[j] / PER == first);
		CHECK(r.splits[0].distance >= 0.75f * r.splits[0].typical);
	}
	tr_quality_report_free(&r);

	/* Above max_duplicate_images the pairwise search is skipped, and says so. */
	p.max_duplicate_images = 10;
	CHECK(tr_data_quality(X, y, C * PER, D, C, &p, &r, err, sizeof(err)) == 0);
	CHECK(r.duplicates_searched == 0 && r.n_duplicates == 0);
	tr_quality_report_free(&r);

	/* Zero rows and one class: nothing, no crash. */
	memset(X, 0, sizeof(float) * D * 4);
	CHECK(tr_data_quality(X, y, 4, D, 1, &p, &r, err, sizeof(err)) == 0);
	CHECK(r.n_mislabelled == 0 && r.n_splits == 0);
	tr_quality_report_free(&r);
}
