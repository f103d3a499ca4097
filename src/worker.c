/*
 * worker.c: a dynamic background worker that runs the trainings of one database.
 *
 * It recovers trainings left 'processing' by workers that are gone, claims the oldest waiting
 * training (FOR UPDATE SKIP LOCKED, committed at once), runs the pipeline outside any
 * transaction, streaming images in short transactions and writing progress in short transactions
 * of its own, and claims the next one until none is left. Deleting the training stops it; SIGTERM
 * ends the process and queues the training again.
 */
#include "postgres.h"

#include <cblas.h>
#include <signal.h>

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "deep.h"
#include "deepfeat.h"
#include "extract.h"
#include "interrupt.h"
#include "pipeline.h"
#include "store.h"
#include "trconfig.h"
#include "worker.h"

/* Images fetched per short transaction. */
#define TR_IMAGE_BATCH 16

/* One running training as the pipeline's callbacks see it. */
typedef struct TrRun
{
	TrClaim    *claim;
	char		idstr[UUID_LEN * 2 + 5];
	TimestampTz started;
	int			nclasses;
	char	  **labels;
	char	  **ids;
	int			cls;			/* class being streamed */
	bool		class_done;		/* its last batch has been fetched */
	TrImageKey	key;
	TrBatchNeeds needs;			/* the feature kind, resolved, and what its measurements need */
	TrImageRow *rows;
	int			nrows;
	int			pos;
	MemoryContext batch_cxt;
	double		fraction;
	char		stage[64];
	TimestampTz last_write;
	bool		canceled;
	bool		helper_asked;	/* a second worker was asked to measure from the other end */
	TrKeep	   *keep;			/* measured by this training, to keep (keep_cxt) */
	int			nkeep;
	int			keep_cap;
	long		kept;
	MemoryContext keep_cxt;
	MemoryContext run_cxt;		/* where a callback keeps the error it caught */
	ErrorData  *error;			/* the error that made a callback say "stop" */
} TrRun;

static void set_db_flags(bool set_pending, bool pending, bool set_ext, bool has_extension);

static int	my_slotno = -1;
static Oid	my_dboid = InvalidOid;
static volatile sig_atomic_t got_sigterm = false;
static bool training_open = false;	/* a claimed training not yet settled */
static pg_uuid_t open_training;
static int	open_attempt;			/* its claim's attempt */

static TrWorkerSlot *
my_slot(void)
{
	return &tr_shared->slots[my_slotno];
}

static void
worker_sigterm(SIGNAL_ARGS)
{
	got_sigterm = true;
	die(postgres_signal_arg);
}

/* on_shmem_exit: tell the launcher this process is gone. */
static void
worker_detach(int code, Datum arg)
{
	Latch	   *latch;

	(void) code;
	(void) arg;
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	my_slot()->exited = true;
	my_slot()->latch = NULL;
	{
		TrDbEntry  *e = tr_db_entry(my_dboid, false);

		if (e)
			tr_extract_forget(e);
	}
	latch = tr_shared->launcher_latch;
	LWLockRelease(tr_shared->lock);
	if (latch)
		SetLatch(latch);
}

/*
 * before_shmem_exit: the process is ending (SIGTERM, fast shutdown, FATAL) with a training
 * claimed: queue it again, or fail it at the last attempt, so it is never left 'processing'.
 */
static void
worker_release(int code, Datum arg)
{
	const char *cause;
	bool		skip;
	bool		requeued = false;

	(void) code;
	(void) arg;
	if (!training_open)
		return;
	training_open = false;
	LWLockAcquire(tr_shared->lock, LW_SHARED);
	/* Deleted, or its database is being dropped: there is nothing to write. */
	skip = my_slot()->cancel || my_slot()->dropping;
	LWLockRelease(tr_shared->lock);
	if (skip)
		return;
	cause = got_sigterm
		? "its worker was terminated (pg_terminate_backend or server shutdown)"
		: "its worker process exited with an error";
	AbortOutOfAnyTransaction();
	if (store_release(&open_training, open_attempt, tr_max_attempts, cause, &requeued) == TR_STORE_OK)
	{
		ereport(LOG,
				(errmsg("training %s interrupted: %s; %s",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&open_training))),
						cause, requeued ? "queued again" : "failed (training.max_attempts reached)")));
		LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
		my_slot()->clean_exit = true;
		LWLockRelease(tr_shared->lock);
		/* Another worker takes it over at once (after a restart, the new launcher does). */
		if (requeued)
			tr_wake_database(MyDatabaseId, true);
	}
}

/* Publish the claim in shared memory before it commits (see store_claim). */
static void
on_claim(const pg_uuid_t *id, int attempt)
{
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	my_slot()->phase = TR_SLOT_RUNNING;
	my_slot()->training = *id;
	my_slot()->has_training = true;
	my_slot()->cancel = false;
	memset(&my_slot()->dataset, 0, sizeof(pg_uuid_t));
	{
		/* Its background pass is another worker's to take now (src/extract.c). */
		TrDbEntry  *e = tr_db_entry(my_dboid, false);

		if (e)
			tr_extract_forget(e);
	}
	LWLockRelease(tr_shared->lock);
	open_training = *id;
	open_attempt = attempt;
	training_open = true;
}

/* The training is settled (completed, failed or gone): nothing to release any more. */
static void
settle(void)
{
	training_open = false;
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	my_slot()->has_training = false;
	my_slot()->cancel = false;
	LWLockRelease(tr_shared->lock);
}

static void
report_activity(TrRun *r)
{
	char		buf[160];

	snprintf(buf, sizeof(buf), "training %s: %s (%d%%)", r->idstr, r->stage,
			 (int) (r->fraction * 100.0 + 0.5));
	pgstat_report_activity(STATE_RUNNING, buf);
}

static void
handle_signals(void)
{
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/*
 * Write progress when due (training.progress_interval) or when told the training was deleted;
 * a training that is no longer ours stops here by an ERROR caught in run_training.
 */
static void
sync_progress(TrRun *r, bool force)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		cancel;

	LWLockAcquire(tr_shared->lock, LW_SHARED);
	cancel = my_slot()->cancel;
	LWLockRelease(tr_shared->lock);
	/* At least three writes per lease: each renews it (training.lease_timeout). */
	if (!cancel && !force &&
		!TimestampDifferenceExceeds(r->last_write, now, Min(tr_progress_interval, tr_lease_timeout * 1000 / 3)))
		return;
	r->last_write = now;
	/* TR_STORE_BUSY: another session holds the row; the next write tries again. */
	if (store_progress(&r->claim->id, MyProcPid, r->fraction, r->stage) == TR_STORE_GONE)
	{
		r->canceled = true;
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("training %s was deleted while processing, or its lease expired", r->idstr)));
	}
}

/* The core's cancel check in a worker: also a deletion of its training (interrupt.h). */
static int
worker_interrupted(void)
{
	return QueryCancelPending || ProcDiePending || (tr_shared != NULL && my_slot()->cancel);
}

/* A worker's lock waits end at lock_timeout: a tenant's lock on its rows is skipped or outwaited, never waited for. */
#define TR_LOCK_TIMEOUT "2s"
#define TR_FINISH_TRIES 5

/* The metrics of a training as model_versions.metrics (the core's rendering). */
static Jsonb *
metrics_jsonb(const tr_metrics *m, bool has_metrics)
{
	char		buf[TR_METRICS_JSON_LEN];

	if (tr_metrics_json(m, has_metrics, buf, sizeof(buf)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("the metrics of the training do not fit in %d bytes", TR_METRICS_JSON_LEN)));
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf)));
}

/* Run store_finish; a lock_timeout (another session's lock) is TR_STORE_BUSY, not an error. */
static TrStoreResult
finish_once(TrRun *r, const char *params, size_t params_len, Jsonb *metrics, int *version)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile TrStoreResult st = TR_STORE_BUSY;

	PG_TRY();
	{
		st = store_finish(&r->claim->id, MyProcPid, params, params_len, metrics, version);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		FreeErrorData(edata);
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		st = TR_STORE_BUSY;
	}
	PG_END_TRY();
	return st;
}

/* Write the model version; while another session holds a row it needs, try a few times. */
static TrStoreResult
finish(TrRun *r, const char *params, size_t params_len, Jsonb *metrics, int *version)
{
	TrStoreResult st = TR_STORE_BUSY;

	for (int i = 0; i < TR_FINISH_TRIES && st == TR_STORE_BUSY; i++)
	{
		if (i > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 500, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			handle_signals();
			/* The tries take seconds: keep the lease (a row still locked is only skipped here). */
			if (store_progress(&r->claim->id, MyProcPid, r->fraction, r->stage) == TR_STORE_GONE)
				return TR_STORE_GONE;
		}
		st = finish_once(r, params, params_len, metrics, version);
	}
	return st;
}

/* A training of this database waits for recovery (re-queued by the next worker that visits). */
static void
mark_needs_recovery(void)
{
	TrDbEntry  *e;

	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	e = tr_db_entry(my_dboid, false);
	if (e)
		e->needs_recovery = true;
	LWLockRelease(tr_shared->lock);
}

static double seconds_since(TimestampTz t);

/*
 * Write the training's failure and log what became of it. A row another session holds is
 * skipped, not waited for: tried again for about 2 s (a recovery in another worker locks every
 * processing row for a moment), then left to recovery, which queues it again.
 */
static void
fail_training(const TrRun *r, const char *error)
{
	TrStoreResult st = store_fail(&r->claim->id, MyProcPid, error);

	for (int i = 1; i < TR_FINISH_TRIES && st == TR_STORE_BUSY; i++)
	{
		(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 500, PG_WAIT_EXTENSION);
		st = store_fail(&r->claim->id, MyProcPid, error);
	}
	if (st == TR_STORE_OK)
		ereport(LOG, (errmsg("training %s failed after %.1f s: %s", r->idstr, seconds_since(r->started), error)));
	else if (st == TR_STORE_BUSY)
	{
		/* Recovery queues it again (as an attempt) once the lock is gone. */
		ereport(LOG, (errmsg("training %s failed (%s), but another session holds its row; it is queued again once released",
							 r->idstr, error)));
		mark_needs_recovery();
	}
	else
		ereport(LOG, (errmsg("training %s canceled: it was deleted while processing", r->idstr)));
}

/*
 * Keep what this training measured in the embedding store. A failure to keep (a store that
 * cannot be written) costs a later measurement, not the training: it is logged; a cancel is not
 * swallowed.
 */
static void
flush_keep(TrRun *r, bool pass_cancel)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (r->nkeep == 0)
		return;
	PG_TRY();
	{
		r->kept += store_keep_measures(r->keep, r->nkeep);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (pass_cancel &&
			(edata->sqlerrcode == ERRCODE_QUERY_CANCELED || edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN))
		{
			FreeErrorData(edata);
			PG_RE_THROW();
		}
		FlushErrorState();
		AbortCurrentTransaction();
		/* The abort leaves TopMemoryContext current. */
		MemoryContextSwitchTo(cxt);
		ereport(LOG, (errmsg("training %s: could not keep %d measurements in the embedding store: %s",
							 r->idstr, r->nkeep, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	r->nkeep = 0;
	MemoryContextReset(r->keep_cxt);
	r->keep = NULL;
	r->keep_cap = 0;
}

/* The next image, streamed class by class in keyset batches; may throw. */
static int
next_image(TrRun *r, tr_image_ref *out)
{
	int			fetched;

	if (tr_test_image_delay > 0)
	{
		/* The latch is set by a cancel or a signal: they end the pause at once. */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 tr_test_image_delay, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	handle_signals();
	sync_progress(r, false);
	for (;;)
	{
		if (r->pos < r->nrows)
		{
			TrImageRow *row = &r->rows[r->pos++];

			out->measure = row->has_measure ? &row->measure : NULL;
			out->data = row->data ? (const uint8_t *) VARDATA_ANY(row->data) : NULL;
			out->len = row->data ? VARSIZE_ANY_EXHDR(row->data) : 0;
			out->class_index = r->cls;
			out->has_box = row->has_box;
			memcpy(out->box, row->box, sizeof(out->box));
			return 1;
		}
		if (r->class_done)
		{
			r->cls++;
			r->class_done = false;
			memset(&r->key, 0, sizeof(r->key));
		}
		if (r->cls >= r->nclasses)
			return 0;
		fetched = 0;
		flush_keep(r, true);
		MemoryContextReset(r->batch_cxt);
		{
			MemoryContext old = MemoryContextSwitchTo(r->batch_cxt);

			r->nrows = store_image_batch(r->ids[r->cls], &r->key, TR_IMAGE_BATCH, &r->needs, &r->rows,
										 &fetched);
			MemoryContextSwitchTo(old);
		}
		r->pos = 0;
		if (fetched < TR_IMAGE_BATCH)
			r->class_done = true;
		/*
		 * Images to measure: a free worker measures the dataset's from the newest down meanwhile
		 * (src/extract.c), on the other core; the launcher starts one when a slot is free.
		 */
		if (!r->helper_asked && tr_background_features)
			for (int i = 0; i < r->nrows && !r->helper_asked; i++)
				if (r->rows[i].data != NULL)
				{
					r->helper_asked = true;
					set_db_flags(true, true, false, false);
				}
	}
}

/* Progress (kept monotonic) and stage; may throw (cancel, deleted training). */
static void
progress(TrRun *r, double fraction, const char *stage)
{
	bool		changed = false;

	handle_signals();
	if (fraction > r->fraction)
		r->fraction = fraction > 1.0 ? 1.0 : fraction;
	if (stage && strncmp(stage, r->stage, sizeof(r->stage)) != 0)
	{
		strlcpy(r->stage, stage, sizeof(r->stage));
		changed = true;
	}
	report_activity(r);
	sync_progress(r, changed && r->last_write == 0);
}

/*
 * An error thrown in a callback must not longjmp through the core (it would leave the core's
 * memory allocated): keep a copy in r->error, clean up, and tell the core to stop. run_training
 * throws it again once tr_train has returned.
 */
static void
save_callback_error(TrRun *r)
{
	MemoryContextSwitchTo(r->run_cxt);
	r->error = CopyErrorData();
	FlushErrorState();
	AbortOutOfAnyTransaction();
	MemoryContextSwitchTo(r->run_cxt);
}

/* Pipeline callback: the next image (1), the end (0), or stop (-1) after an error. */
static int
cb_next_image(void *ctx, tr_image_ref *out)
{
	TrRun	   *r = ctx;
	volatile int rc = -1;

	if (r->error)
		return -1;
	PG_TRY();
	{
		rc = next_image(r, out);
	}
	PG_CATCH();
	{
		save_callback_error(r);
		rc = -1;
	}
	PG_END_TRY();
	return rc;
}

/* Pipeline callback: copy a measurement of the image just handed over, to keep it. */
static int
cb_keep_measure(void *ctx, const tr_image_ref *ref, const tr_measure *m)
{
	TrRun	   *r = ctx;
	const TrImageRow *row;
	TrKeep	   *k;
	MemoryContext old;

	(void) ref;
	if (r->error || r->pos <= 0 || r->pos > r->nrows)
		return r->error ? 1 : 0;
	row = &r->rows[r->pos - 1];
	/* Allocation failures end the process (palloc's ERROR would jump through the core). */
	old = MemoryContextSwitchTo(r->keep_cxt);
	if (r->nkeep == r->keep_cap)
	{
		int			cap = r->keep_cap ? r->keep_cap * 2 : TR_IMAGE_BATCH;

		TrKeep	   *grown = palloc_extended(sizeof(TrKeep) * cap, MCXT_ALLOC_NO_OOM);

		if (grown == NULL)
		{
			MemoryContextSwitchTo(old);
			return 0;			/* not kept: measured again next time */
		}
		if (r->nkeep > 0)
			memcpy(grown, r->keep, sizeof(TrKeep) * r->nkeep);
		r->keep = grown;
		r->keep_cap = cap;
	}
	k = &r->keep[r->nkeep];
	k->id = row->id;
	k->content_version = row->content_version;
	strlcpy(k->kind, r->needs.kind, sizeof(k->kind));
	k->measure = *m;
	k->measure.features = NULL;
	if (m->features && m->dim > 0)
	{
		k->measure.features = palloc_extended(sizeof(float) * m->dim * m->nregions, MCXT_ALLOC_NO_OOM);
		if (k->measure.features == NULL)
		{
			MemoryContextSwitchTo(old);
			return 0;
		}
		memcpy(k->measure.features, m->features, sizeof(float) * m->dim * m->nregions);
	}
	r->nkeep++;
	MemoryContextSwitchTo(old);
	return 0;
}

/* Pipeline callback: progress; nonzero (stop) after an error (cancel, SIGTERM, deleted). */
static int
cb_progress(void *ctx, double fraction, const char *stage)
{
	TrRun	   *r = ctx;
	volatile int rc = 1;

	if (r->error)
		return 1;
	PG_TRY();
	{
		progress(r, fraction, stage);
		rc = 0;
	}
	PG_CATCH();
	{
		save_callback_error(r);
		rc = 1;
	}
	PG_END_TRY();
	return rc;
}

static double
seconds_since(TimestampTz t)
{
	return (double) (GetCurrentTimestamp() - t) / 1000000.0;
}


/*
 * Run one claimed training to its end: completed with a new model version, failed with a
 * readable error, or stopped because it was deleted. The pipeline is never left by a longjmp
 * (the callbacks catch errors and say "stop"), so the process takes the next training after
 * any of these. Returns false when this process must exit afterwards (the extension was dropped).
 */
static bool
run_training(TrClaim *claim, MemoryContext worker_cxt)
{
	TrRun	   *volatile r;
	volatile bool keep_going = true;
	MemoryContext run_cxt;

	run_cxt = AllocSetContextCreate(worker_cxt, "training run", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(run_cxt);
	r = palloc0(sizeof(TrRun));
	r->claim = claim;
	r->started = GetCurrentTimestamp();
	strlcpy(r->idstr, DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&claim->id))),
			sizeof(r->idstr));
	r->run_cxt = run_cxt;
	r->batch_cxt = AllocSetContextCreate(run_cxt, "training images", ALLOCSET_DEFAULT_SIZES);
	r->keep_cxt = AllocSetContextCreate(run_cxt, "training measurements", ALLOCSET_DEFAULT_SIZES);
	strlcpy(r->stage, "loading classes", sizeof(r->stage));
	report_activity(r);
	ereport(LOG, (errmsg("training %s started (attempt %d)", r->idstr, claim->attempts)));

	PG_TRY();
	{
		tr_config	cfg;
		tr_callbacks cb;
		tr_result	res;
		char		err[TR_ERRLEN];
		int			rc;

		tr_config_error cerr;
		int			type = tr_type_parse(claim->type);

		/* The one config reader, as validate_config() at creation. */
		if (type < 0 || tr_config_read(&cfg, (tr_type) type, claim->config, &cerr) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s", type < 0 ? "unknown training type" : cerr.message)));
		/* The feature kind: training.face_features, "auto" decided now, for this training. */
		tr_config_resolve_server(&cfg);
		ereport(DEBUG1, (errmsg("training %s uses the feature kind %s", r->idstr, cfg.features)));
		/* Not the gender (a third network per face): the background pass adds it later. */
		cfg.measure_gender = 0;
		{
			tr_features kind;

			tr_config_kind(&cfg, &kind);
			r->needs.kind = pstrdup(cfg.features);
			r->needs.dim = kind.dim;
			r->needs.max_pixels = cfg.max_image_pixels;
			r->needs.gender = false;
		}
		if (!claim->has_dataset)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the source dataset of this training was deleted")));
		/* A worker measuring in the background meanwhile takes this dataset's images. */
		LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
		my_slot()->dataset = claim->dataset_id;
		LWLockRelease(tr_shared->lock);
		r->nclasses = store_load_classes(&claim->dataset_id, &r->labels, &r->ids,
										 &cfg.expected_images);
		sync_progress(r, true);

		memset(&cb, 0, sizeof(cb));
		memset(&res, 0, sizeof(res));
		err[0] = '\0';
		cb.ctx = r;
		cb.next_image = cb_next_image;
		cb.progress = cb_progress;
		cb.keep_measure = cb_keep_measure;
		rc = tr_train(&cfg, r->nclasses, (const char *const *) r->labels,
					  (const char *const *) r->ids, &cb, &res, err, sizeof(err));
		MemoryContextReset(r->batch_cxt);
		r->nrows = 0;

		/* A callback caught an error and the core unwound: report the error now. */
		if (r->error)
		{
			tr_result_free(&res);
			ReThrowError(r->error);
		}
		if (rc != 0)
		{
			tr_result_free(&res);
			/* What it measured is kept whatever the outcome. */
			if (!tr_interrupted())
				flush_keep(r, true);
			/* Stopped by a cancel request: report it (deleted: an ERROR caught below; SIGTERM: die). */
			if (tr_interrupted())
			{
				handle_signals();
				sync_progress(r, true);
			}
			fail_training(r, err[0] ? err : "training failed");
		}
		else
		{
			int			version = 0;
			TrStoreResult st;
			char	   *params;
			size_t		params_len;
			Jsonb	   *metrics;

			strlcpy(r->stage, "saving model", sizeof(r->stage));
			report_activity(r);
			/* Copy the result into palloc'd memory, so an error cannot leak it. */
			params = palloc(res.parameters_len + 1);
			if (res.parameters_len > 0)
				memcpy(params, res.parameters, res.parameters_len);
			params_len = res.parameters_len;
			{
				tr_metrics	m = res.metrics;
				bool		has_metrics = res.has_metrics;

				/* Free the core's result first: building the JSON may raise an error. */
				tr_result_free(&res);
				metrics = metrics_jsonb(&m, has_metrics);
			}
			/* A fresh lease for the write (finish renews it between its tries too). */
			st = store_progress(&r->claim->id, MyProcPid, r->fraction, r->stage) == TR_STORE_GONE
				? TR_STORE_GONE : finish(r, params, params_len, metrics, &version);
			/* What it measured, kept once the model version is safe (nothing to cancel then). */
			flush_keep(r, false);
			if (st == TR_STORE_OK)
				ereport(LOG, (errmsg("training %s completed in %.1f s: model version %d",
									 r->idstr, seconds_since(r->started), version)));
			else if (st == TR_STORE_BUSY)
			{
				/* Leave it to recovery, which re-queues it once the lock is gone. */
				ereport(LOG, (errmsg("training %s: its row stays locked by another session; it is queued again once released",
									 r->idstr)));
				mark_needs_recovery();
			}
			else
				ereport(LOG, (errmsg("training %s canceled: it was deleted while processing, or its lease expired; no model version written",
									 r->idstr)));
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(worker_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		if (r->canceled)
			ereport(LOG, (errmsg("training %s canceled after %.1f s: it was deleted while processing, or its lease expired; no model version written",
								 r->idstr, seconds_since(r->started))));
		else if (!store_extension_installed())
		{
			ereport(LOG, (errmsg("training %s stopped: the extension was dropped", r->idstr)));
			keep_going = false;
		}
		else
			fail_training(r, edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();

	settle();
	MemoryContextSwitchTo(worker_cxt);
	MemoryContextDelete(run_cxt);
	return keep_going;
}

/*
 * Trainings whose worker is gone: looked for at the first visit after the server started (then
 * the cause is the restart itself), after a worker exited leaving one behind, and while rows
 * locked by another session wait to be queued again (before each claim).
 */
static void
recover_orphans(void)
{
	bool		first_recovery;
	bool		recover;
	int			n;
	int			skipped;

	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	{
		TrDbEntry  *e = tr_db_entry(my_dboid, false);

		first_recovery = e == NULL || !e->recovered;
		recover = first_recovery || e->needs_recovery;
		if (e)
		{
			e->recovered = true;
			e->needs_recovery = false;
		}
	}
	LWLockRelease(tr_shared->lock);
	if (!recover)
		return;
	n = store_recover_orphans(tr_training_is_live, tr_max_attempts,
							  first_recovery
							  ? "the server restarted while it was processing (crash or immediate shutdown)"
							  : "its worker process ended unexpectedly or left it locked by another session",
							  &skipped);
	if (n > 0)
		ereport(LOG, (errmsg("training: recovered %d training%s left processing by a worker that is gone",
							 n, n == 1 ? "" : "s")));
	/* Rows locked by another session are looked at again at the next visit (training.naptime). */
	if (skipped > 0)
		mark_needs_recovery();
}

/*
 * Nothing to claim: wait up to training.worker_idle_timeout for the launcher to hand this worker
 * the next training of its database. Returns true when woken for one, false to exit.
 */
static bool
wait_idle(void)
{
	TimestampTz deadline;
	Latch	   *latch;

	if (tr_worker_idle_timeout <= 0)
		return false;
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	if (my_slot()->quit)
	{
		LWLockRelease(tr_shared->lock);
		return false;
	}
	my_slot()->phase = TR_SLOT_IDLE;
	latch = tr_shared->launcher_latch;
	LWLockRelease(tr_shared->lock);
	/* A database that waits for a slot gets this one (the launcher makes an idle worker quit). */
	if (latch)
		SetLatch(latch);
	pgstat_report_activity(STATE_IDLE, "training worker: waiting for the next training");
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), tr_worker_idle_timeout);

	for (;;)
	{
		long		left = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		bool		woken,
					leave;

		if (left > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 left, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		handle_signals();
		LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
		woken = my_slot()->phase == TR_SLOT_STARTING;
		leave = !woken && (my_slot()->quit || left <= 0 || !tr_enabled);
		if (leave)
			my_slot()->phase = TR_SLOT_RUNNING;	/* exiting: the launcher hands it nothing */
		LWLockRelease(tr_shared->lock);
		if (woken)
		{
			pgstat_report_activity(STATE_RUNNING, "training worker: looking for waiting trainings");
			return true;
		}
		if (leave)
			return false;
	}
}

/*
 * After a training, before claiming another one by itself: whether this worker is beyond
 * training.max_workers (lowered by a reload while workers ran, which now also survive a cancel).
 * The workers in the lowest slots stay, so exactly max_workers of them go on.
 */
static bool
beyond_max_workers(void)
{
	int			before = 0;

	LWLockAcquire(tr_shared->lock, LW_SHARED);
	for (int i = 0; i < my_slotno; i++)
		if (tr_shared->slots[i].phase != TR_SLOT_FREE && !tr_shared->slots[i].exited)
			before++;
	LWLockRelease(tr_shared->lock);
	return before >= tr_max_workers;
}

/* Attach to the slot the launcher prepared; false when the database is being dropped. */
static bool
attach_slot(void)
{
	bool		ok;
	TrDbEntry  *e;

	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	e = tr_db_entry(my_dboid, false);
	ok = my_slot()->phase == TR_SLOT_STARTING && my_slot()->dboid == my_dboid &&
		!my_slot()->dropping && !(e && e->dropping);
	my_slot()->pid = MyProcPid;
	my_slot()->latch = MyLatch;
	/* Cleared before the first claim: a later commit wakes the launcher again. */
	if (e)
		e->pending = e->trainings = false;
	LWLockRelease(tr_shared->lock);
	return ok;
}

static void
set_db_flags(bool set_pending, bool pending, bool set_ext, bool has_extension)
{
	TrDbEntry  *e;
	Latch	   *latch;

	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	e = tr_db_entry(my_dboid, false);
	/* Pending again: for trainings (a claim looks at all of them, clearing it). */
	if (e && set_pending)
		e->pending = e->trainings = pending;
	if (e && set_ext)
		e->has_extension = has_extension;
	latch = tr_shared->launcher_latch;
	LWLockRelease(tr_shared->lock);
	if (set_pending && pending && latch)
		SetLatch(latch);
}

static void
exit_clean(void)
{
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	my_slot()->clean_exit = true;
	LWLockRelease(tr_shared->lock);
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}

/* Main of a worker: bgw_main_arg is its slot, bgw_extra the database oid. */
void
tr_worker_main(Datum arg)
{
	MemoryContext worker_cxt;
	bool		ran_one = false;

	my_slotno = DatumGetInt32(arg);
	memcpy(&my_dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	pqsignal(SIGTERM, worker_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	if (tr_shared == NULL || my_slotno < 0 || my_slotno >= TR_MAX_WORKERS)
		proc_exit(0);
	on_shmem_exit(worker_detach, (Datum) 0);
	if (!attach_slot())
		exit_clean();

	BackgroundWorkerInitializeConnectionByOid(my_dboid, InvalidOid, 0);
	/*
	 * Before any SQL: a search_path of the database's or role's settings could let a tenant's
	 * objects (say public.format(text, int, int, text)) run as this superuser process.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", TR_LOCK_TIMEOUT, PGC_SUSET, PGC_S_OVERRIDE);
	tr_interrupt_hook = worker_interrupted;
	pgstat_report_appname("training worker");
	pgstat_report_activity(STATE_RUNNING, "training worker: looking for waiting trainings");
	before_shmem_exit(worker_release, (Datum) 0);

	/* OpenBLAS threads belong to this process only, never to the postmaster. */
	if (tr_blas_threads > 0)
		openblas_set_num_threads(tr_blas_threads);

	worker_cxt = AllocSetContextCreate(TopMemoryContext, "training worker",
									   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(worker_cxt);

	if (!store_extension_installed())
	{
		set_db_flags(false, false, true, false);
		exit_clean();
	}
	set_db_flags(false, false, true, true);

	recover_orphans();
	/* training.enabled may be off for this database only (ALTER DATABASE ... SET); recovery ran anyway. */
	if (!tr_enabled)
		exit_clean();

	for (;;)
	{
		TrClaim		claim;
		bool		more = false;

		handle_signals();
		if (!tr_enabled)
			break;
		if (ran_one && beyond_max_workers())
		{
			/* The launcher looks again; a worker within the limit takes what is waiting. */
			set_db_flags(true, true, false, false);
			break;
		}
		if (tr_blas_threads > 0)
			openblas_set_num_threads(tr_blas_threads);

		set_db_flags(true, false, false, false);
		recover_orphans();
		memset(&claim, 0, sizeof(claim));
		if (!store_claim(MyProcPid, on_claim, &claim, &more))
		{
			/* Nothing waits: measure a batch of new images, then look for trainings again. */
			bool		yield;

			if (tr_extract_batch(my_dboid, &yield))
			{
				ran_one = true;
				MemoryContextReset(worker_cxt);
				continue;
			}
			/* Another database waits for this slot: leave it (this one is pending again). */
			if (yield)
				break;
			/* Only a worker that ran something waits for more; a probe leaves at once. */
			if (ran_one && wait_idle())
				continue;
			break;
		}
		ran_one = true;
		if (more)
			set_db_flags(true, true, false, false);
		if (!run_training(&claim, worker_cxt))
		{
			set_db_flags(true, true, false, false);
			break;
		}
		pgstat_report_activity(STATE_RUNNING, "training worker: looking for waiting trainings");
		MemoryContextReset(worker_cxt);
	}
	exit_clean();
}
