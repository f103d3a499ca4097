/*
 * training.c: module entry point.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "compat.h"
#include "interrupt.h"
#include "settings.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * The core's cancel check (interrupt.h): a statement_timeout or pg_cancel_backend, or the end of
 * the process. It only reads the flags; the caller's CHECK_FOR_INTERRUPTS() reports them once
 * the core has unwound. (Training workers add their own cancel flag, src/worker.c.)
 */
static int
server_interrupted(void)
{
	return QueryCancelPending || ProcDiePending;
}

/* Register each concern's GUCs and the background worker launcher; reserve the prefix last. */
void
_PG_init(void)
{
	tr_interrupt_hook = server_interrupted;
	tr_guc_init();
	tr_launcher_init();
	MarkGUCPrefixReserved("training");
}
