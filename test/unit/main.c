/*
 * main.c - the one entry point of the unit tests (make unit): every test
 * file's unit_NAME function is listed here.
 */
#include "unit.h"

int			unit_checks;
int			unit_failures;

extern void unit_nn(void);

static const struct
{
	const char *name;
	void		(*fn) (void);
}			tests[] = {
	{"nn", unit_nn},
};

int
main(void)
{
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
	{
		int			before = unit_failures;

		tests[i].fn();
		printf("%-12s %s\n", tests[i].name, unit_failures == before ? "ok" : "FAILED");
	}
	printf("%d checks, %d failures\n", unit_checks, unit_failures);
	return unit_failures == 0 ? 0 : 1;
}
