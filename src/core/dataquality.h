/*
 * dataquality.h: data-quality checks of a labelled set of feature vectors (the embedding store's
 * features of a dataset): images closer to another class than to their own (likely mislabelled),
 * near-duplicate images within and across classes, and classes whose images form two separate
 * groups (likely two people or places under one label). Pure C on cblas_sgemm, in blocks, so the
 * memory is bounded by the input plus the class centres.
 */
#ifndef TRAINING_DATAQUALITY_H
#define TRAINING_DATAQUALITY_H

#include <stddef.h>

typedef struct tr_quality_params
{
	/* Mislabelled: distance to another class's centre + margin < distance to its own (0..2). */
	float		mislabel_margin;
	/* Near-duplicates: two images closer than this (unit vectors, 0..2). */
	float		duplicate_distance;
	/* Above this many images the pairwise duplicate search is skipped (its cost is n^2 d). */
	int			max_duplicate_images;
	/* At most this many duplicate pairs are reported. */
	int			max_duplicates;
} tr_quality_params;

void		tr_quality_params_default(tr_quality_params *p);

typedef struct tr_mislabel
{
	int			image;			/* row of X */
	int			closer_class;	/* the class whose centre is closer */
	float		own_distance;	/* to its own class's centre, itself left out */
	float		other_distance;
} tr_mislabel;

typedef struct tr_duplicate
{
	int			a, b;			/* rows of X, a < b */
	float		distance;
} tr_duplicate;

typedef struct tr_split
{
	int			cls;
	int			n_first, n_second;	/* sizes of the two groups */
	float		distance;		/* between the groups' centres */
	float		typical;		/* the dataset's median distance between class centres (distance >= 3/4 of it) */
	int		   *second;			/* rows of X in the smaller group (n_second of them) */
} tr_split;

typedef struct tr_quality_report
{
	tr_mislabel *mislabelled;
	int			n_mislabelled;
	tr_duplicate *duplicates;
	int			n_duplicates;
	int			duplicates_searched;	/* 0: skipped (too many images) */
	int			duplicates_truncated;	/* more pairs than max_duplicates */
	tr_split   *splits;
	int			n_splits;
} tr_quality_report;

/*
 * Check n rows of X (d floats each, any norm; zero rows are ignored) labelled y (0..nclasses-1).
 * Returns 0, TR_CANCELED (interrupt.h), or -1 (out of memory) with a message; free the report
 * with tr_quality_report_free either way.
 */
int			tr_data_quality(const float *X, const int *y, int n, int d, int nclasses,
							const tr_quality_params *p, tr_quality_report *out, char *err, size_t errlen);

void		tr_quality_report_free(tr_quality_report *r);

#endif
