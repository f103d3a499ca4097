/*
 * training.c: module entry point.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "deep.h"
#include "recognize.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Register each concern's GUCs and the background worker launcher; reserve the prefix last. */
void
_PG_init(void)
{
	tr_deep_init();
	tr_pipeline_init();
	tr_worker_guc_init();
	tr_launcher_init();
	MarkGUCPrefixReserved("training");
}
