/*
 * training.c: module entry point.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "compat.h"
#include "hooks.h"
#include "interrupt.h"
#include "launcher.h"
#include "settings.h"
#include "shmem.h"

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

/*
 * Define the settings; with shared_preload_libraries, also the shared memory, the hooks of client
 * backends and the launcher. Reserve the prefix last.
 */
void
_PG_init(void)
{
	tr_interrupt_hook = server_interrupted;
	tr_guc_init();
	if (process_shared_preload_libraries_in_progress)
	{
		tr_shmem_init();		/* src/shmem.c: the state shared by every process */
		tr_hooks_init();		/* src/hooks.c: ProcessUtility hook of client backends */
		tr_launcher_register();	/* src/launcher.c: the launcher background worker */
	}
	MarkGUCPrefixReserved("training");
}
