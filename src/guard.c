/*
 * guard.c: who may write the read-only columns of training.trainings.
 *
 * Only the extension's background workers may change a training's state, progress, times
 * and so on (contract 2). The SQL guard trigger asks in_background_worker(); a client
 * backend cannot pretend to be one, whatever it sets.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

PG_FUNCTION_INFO_V1(training_in_background_worker);

/* True in a background worker backend (the training launcher and workers). */
Datum
training_in_background_worker(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(MyBackendType == B_BG_WORKER);
}
