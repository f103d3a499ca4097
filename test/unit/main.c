/*
 * main.c - the one entry point of the unit tests (make unit): every test
 * file's function is listed here. `run_unit NAME` runs one of them.
 */
#include <string.h>

#include "netcache.h"
#include "unit.h"

int			unit_checks;
int			unit_failures;

extern void unit_nn(void);
extern void test_decode(void);
extern void test_quality(void);
extern void test_features(void);
extern void test_trainloop(void);
extern void test_pipeline(void);
extern void test_deepfeat(void);
extern void test_trconfig(void);
extern void test_bounded(void);
extern void test_dataquality(void);
extern void test_storeformat(void);

static const struct
{
	const char *name;
	void		(*fn) (void);
}			tests[] = {
	{"nn", unit_nn},
	{"decode", test_decode},
	{"quality", test_quality},
	{"features", test_features},
	{"trainloop", test_trainloop},
	{"pipeline", test_pipeline},
	{"deepfeat", test_deepfeat},
	{"trconfig", test_trconfig},
	{"bounded", test_bounded},
	{"dataquality", test_dataquality},
	{"storeformat", test_storeformat},
};

int
main(int argc, char **argv)
{
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
	{
		int			before = unit_failures;

		if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
			continue;
		tests[i].fn();
		printf("%-12s %s\n", tests[i].name, unit_failures == before ? "ok" : "FAILED");
	}
	/* The process's network cache (netcache.h): given back, so valgrind sees no leak. */
	tr_netcache_free();
	printf("%d checks, %d failures\n", unit_checks, unit_failures);
	return unit_failures == 0 ? 0 : 1;
}
