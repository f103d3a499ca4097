/*
 * unit.h - the tiny assertion harness shared by the pure C unit tests.
 * Each test file exposes a void unit_NAME(void) registered in main.c.
 */
#ifndef TRAINING_UNIT_H
#define TRAINING_UNIT_H

#include <stdio.h>

extern int	unit_checks;
extern int	unit_failures;

#define UNIT_ASSERT(cond) do { \
	unit_checks++; \
	if (!(cond)) { unit_failures++; fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#endif
