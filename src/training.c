/*
 * training.c: module entry point.
 */
#include "postgres.h"

#include "fmgr.h"

#include "deep.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Register GUCs and the background worker launcher. */
void
_PG_init(void)
{
	tr_deep_init();
}
