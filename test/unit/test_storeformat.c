/*
 * test_storeformat.c: the embedding store's row format and the metrics JSON, as the server
 * (src/store.c, src/worker.c) and training-worker both write and read them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "measure.h"
#include "pipeline.h"
#include "unit.h"

/* Regions to floats and back give the same regions (the offsets dx, dy are not stored). */
static void
test_regions_round_trip(void)
{
	tr_measure	m,
				back;
	float		rows[TR_MEASURE_REGIONS * TR_REGION_FLOATS];
	tr_skip		st;

	memset(&m, 0, sizeof(m));
	m.status = TR_SKIP_NONE;
	m.nregions = 2;
	m.regions[0].box.x = 3;
	m.regions[0].box.y = 4;
	m.regions[0].box.w = 50;
	m.regions[0].box.h = 60;
	m.regions[0].detected = 1;
	m.regions[0].side = 50;
	m.regions[0].sharpness = 123.5f;
	m.regions[0].p_male = TR_GENDER_UNMEASURED;
	m.regions[1].box.w = 96;
	m.regions[1].box.h = 96;
	m.regions[1].side = 96;
	m.regions[1].p_male = 0.25f;
	tr_measure_region_floats(&m, rows);
	CHECK(rows[0] == 3 && rows[1] == 4 && rows[2] == 50 && rows[3] == 60 && rows[4] == 1 && rows[5] == 50);
	CHECK(rows[6] == 123.5f && rows[7] == TR_GENDER_UNMEASURED && rows[8 + 7] == 0.25f);

	memset(&back, 0, sizeof(back));
	CHECK(tr_measure_set_regions(&back, rows, 2) == 0);
	CHECK(back.nregions == 2);
	CHECK(memcmp(&back.regions[0], &m.regions[0], sizeof(tr_measure_region)) == 0);
	CHECK(memcmp(&back.regions[1], &m.regions[1], sizeof(tr_measure_region)) == 0);
	CHECK(tr_measure_set_regions(&back, rows, TR_MEASURE_REGIONS + 1) == -1);
	CHECK(tr_measure_set_regions(&back, rows, -1) == -1);

	/* Status names both ways, and an unknown one. */
	CHECK(strcmp(tr_measure_status_name(TR_SKIP_NONE), "measured") == 0);
	for (int k = 0; k < TR_SKIP_COUNT; k++)
	{
		CHECK(tr_measure_status_parse(tr_measure_status_name((tr_skip) k), &st) == 0);
		CHECK(st == (tr_skip) k);
	}
	CHECK(tr_measure_status_parse("measured", &st) == 0 && st == TR_SKIP_NONE);
	CHECK(tr_measure_status_parse("blurry", &st) == -1);
}

/* Which kept measurements serve a reader, and which make it read the image again. */
static void
test_serves(void)
{
	tr_measure	m;
	float		f[2 * 4] = {0};

	memset(&m, 0, sizeof(m));
	m.status = TR_SKIP_NONE;
	m.nregions = 2;
	m.dim = 4;
	m.features = f;
	m.regions[0].p_male = 0.5f;
	m.regions[1].p_male = TR_GENDER_UNKNOWN;
	CHECK(tr_measure_serves(&m, 4, 1000, 0));
	CHECK(tr_measure_serves(&m, 4, 1000, 1));
	CHECK(!tr_measure_serves(&m, 5, 1000, 0));	/* another kind's length */
	m.regions[1].p_male = TR_GENDER_UNMEASURED;
	CHECK(!tr_measure_serves(&m, 4, 1000, 1));	/* gender asked for, not measured */
	CHECK(tr_measure_serves(&m, 4, 1000, 0));
	m.features = NULL;
	CHECK(!tr_measure_serves(&m, 4, 1000, 0));	/* no features */

	memset(&m, 0, sizeof(m));
	m.status = TR_SKIP_TOO_LARGE;
	m.max_pixels = 1000;
	CHECK(tr_measure_serves(&m, 4, 1000, 0));
	CHECK(!tr_measure_serves(&m, 4, 2000, 0));	/* decoded under another limit */
	m.status = TR_SKIP_UNDECODABLE;
	CHECK(tr_measure_serves(&m, 4, 2000, 1));
}

/* The metrics object: every key, fixed decimals, null without validation, {} without metrics. */
static void
test_metrics_json(void)
{
	tr_metrics	m;
	char		buf[TR_METRICS_JSON_LEN];
	char		tiny[16];
	int			n;

	memset(&m, 0, sizeof(m));
	CHECK(tr_metrics_json(&m, false, buf, sizeof(buf)) == 2 && strcmp(buf, "{}") == 0);
	m.train_accuracy = 0.5;
	m.validation_accuracy = -1;
	m.images_used = 15;
	m.images_skipped[TR_SKIP_BLURRY] = 1;
	m.images_skipped_total = 1;
	m.epochs = 40;
	strcpy(m.feature_kind, "face-\"lbp");
	m.train_seconds = 1.23456;
	m.gflop = NAN;
	n = tr_metrics_json(&m, true, buf, sizeof(buf));
	CHECK(n > 0 && (size_t) n == strlen(buf));
	CHECK(strstr(buf, "\"train_accuracy\": 0.500000") != NULL);
	CHECK(strstr(buf, "\"validation_accuracy\": null") != NULL);
	CHECK(strstr(buf, "\"images_used\": 15") != NULL);
	CHECK(strstr(buf, "\"below_sharpness_threshold\": 1") != NULL);
	CHECK(strstr(buf, "\"feature_kind\": \"face-lbp\"") != NULL);	/* a quote is left out */
	CHECK(strstr(buf, "\"train_seconds\": 1.235") != NULL);
	CHECK(strstr(buf, "\"gflop\": \"NaN\"") != NULL);
	CHECK(buf[0] == '{' && buf[n - 1] == '}');
	CHECK(tr_metrics_json(&m, true, tiny, sizeof(tiny)) == -1);
	CHECK(tr_metrics_json(&m, true, tiny, 0) == -1);
}

void
test_storeformat(void)
{
	test_regions_round_trip();
	test_serves();
	test_metrics_json();
}
