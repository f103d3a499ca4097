/*
 * guard.c: who may write the read-only columns of training.trainings.
 *
 * Only the extension's own background workers (the launcher and the training workers, which
 * src/launcher.c registers with bgw_library_name "training"), and training-worker through the
 * training_worker.* functions, may change a training's state,
 * progress, times and so on (contract 2). The guard trigger (src/validate.c) asks tr_in_background_worker().
 * A client backend cannot pretend to be one, whatever it sets; nor can another extension's
 * background worker (pg_cron's job runners, for one) or a parallel worker.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/guc.h"
#include "utils/rls.h"

#include "guard.h"
#include "settings.h"

PG_FUNCTION_INFO_V1(training_in_background_worker);

/*
 * True in a background worker of this extension, and inside the training_worker.* functions
 * that training-worker calls: they are owned by a superuser, executable only by the
 * training_worker role, and set training.worker_scope (PGC_SUSET, so no other role can) in
 * their SET clause, which PostgreSQL undoes when they return or fail.
 */
bool
tr_in_background_worker(void)
{
	if (tr_worker_scope && superuser())
		return true;
	return MyBackendType == B_BG_WORKER
		&& !IsParallelWorker()
		&& MyBgworkerEntry != NULL
		&& strcmp(MyBgworkerEntry->bgw_library_name, "training") == 0;
}

Datum
training_in_background_worker(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(tr_in_background_worker());
}

PG_FUNCTION_INFO_V1(training_restoring_dump);

/*
 * True while a superuser restores a dump: pg_dump's scripts and pg_restore turn off
 * check_function_bodies and row_security for the whole session, which ordinary sessions do not.
 * (Not search_path: every function of the extension pins its own, so it cannot see the
 * session's.) A restore then writes the rows as they were dumped (states, times, other roles'
 * rows) without the guard; a superuser could disable the triggers anyway, so this opens nothing
 * to other roles.
 */
bool
tr_restoring_dump(void)
{
	/* The settings' own variables, not their values read back as text. */
	return superuser() && !check_function_bodies && !row_security;
}

Datum
training_restoring_dump(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(tr_restoring_dump());
}
