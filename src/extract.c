/*
 * extract.c: the embedding store filled in the background.
 *
 * A worker with no training to run measures a batch of images that have no kept measurement
 * for the feature kind a training of their dataset would use now (training.face_features
 * resolved as a training resolves it; the classic kind for landmarks), keeps them, and looks
 * for waiting trainings before the next batch, so trainings always go first. One pass walks the
 * images once in (time_created, id) order; one worker per database runs it at a time. While a
 * training of the database runs in another worker, the pass walks from the newest image down:
 * the training reads from the oldest up, so the two meet in the middle and share the work on
 * two cores. Images that change during a pass are found by the next one.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "deep.h"
#include "deepfeat.h"
#include "extract.h"
#include "settings.h"
#include "shmem.h"
#include "store.h"

/* Images measured per batch (a few seconds of work at most before trainings are looked at). */
#define TR_EXTRACT_BATCH 8

/* Where this process's pass stands (ascending; descending while a training runs). */
static TrImageKey pass_key;
static TrImageKey back_key;

/* Whether the ascending pass has kept anything. */
static bool pass_kept;

/*
 * Become (or stay) the database's extractor; false when another worker is, or while another
 * database waits for a worker and every slot is taken (stepping back gives up the role).
 * *training: a training of the database runs in another worker, on *dataset (zero: not known yet).
 */
static bool
take_turn(Oid dboid, bool release, bool *training, pg_uuid_t *dataset)
{
	TrDbEntry  *e;
	bool		mine;
	bool		busy = false;
	int			used = 0;

	*training = false;
	memset(dataset, 0, sizeof(*dataset));
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < TR_MAX_WORKERS && !release; i++)
	{
		TrWorkerSlot *sl = &tr_shared->slots[i];

		if (sl->phase == TR_SLOT_FREE || sl->exited)
			continue;
		used++;
		if (sl->dboid == dboid && sl->has_training && sl->pid != MyProcPid)
		{
			*training = true;
			*dataset = sl->dataset;
		}
	}
	for (int i = 0; i < TR_MAX_DBS && !release && used >= tr_max_workers; i++)
		busy |= tr_shared->dbs[i].dboid != InvalidOid && tr_shared->dbs[i].dboid != dboid &&
			tr_shared->dbs[i].pending && tr_shared->dbs[i].has_extension;
	e = tr_db_entry(dboid, false);
	mine = e != NULL && !release && !busy && (e->extractor == 0 || e->extractor == MyProcPid);
	if (e != NULL && e->extractor == MyProcPid && !mine)
		e->extractor = 0;
	else if (mine)
		e->extractor = MyProcPid;
	LWLockRelease(tr_shared->lock);
	return mine;
}

/* The config a training of the type would measure with (its feature kind resolved). */
static void
server_config(tr_config *cfg, tr_type type)
{
	char		err[TR_ERRLEN];

	tr_config_default(cfg, type);
	cfg->max_image_pixels = (size_t) tr_max_image_pixels;
	tr_config_set_server_features(cfg);
	/* training.face_features = deep without its networks: trainings fail, nothing to measure for. */
	if (tr_resolve_features(cfg, err, sizeof(err)) != 0)
		cfg->features[0] = '\0';
	/* Faces with their gender, when its network is there (a training leaves it out). */
	cfg->measure_gender = type == TR_FACE && tr_deep_gender_available(cfg->model_dir);
}

/* Whether a commit woke the database since this worker last looked for trainings. */
static bool
woken(Oid dboid)
{
	TrDbEntry  *e;
	bool		pending;

	LWLockAcquire(tr_shared->lock, LW_SHARED);
	e = tr_db_entry(dboid, false);
	pending = e != NULL && e->pending;
	LWLockRelease(tr_shared->lock);
	return pending;
}

/* Measure the rows into keep[] (stopping early when woken); returns how many. */
static int
measure_rows(Oid dboid, TrImageRow *rows, int n, const tr_config *face, const tr_config *landmark,
			 TrKeep *keep, int *done)
{
	int			nk = 0;

	*done = 0;
	for (int i = 0; i < n; i++, (*done)++)
	{
		const tr_config *cfg = strcmp(rows[i].type, "face") == 0 ? face : landmark;
		TrKeep	   *k = &keep[nk];
		char		err[TR_ERRLEN];
		int			rc;

		CHECK_FOR_INTERRUPTS();
		/* Something woke the database (a new training, say): keep what is measured, look first. */
		if (i > 0 && woken(dboid))
			break;
		if (cfg->features[0] == '\0')
			continue;
		rc = tr_measure_image(cfg, (const uint8_t *) VARDATA_ANY(rows[i].data),
							  VARSIZE_ANY_EXHDR(rows[i].data), rows[i].has_box ? rows[i].box : NULL,
							  TR_MEASURE_FEATURES | (cfg->measure_gender ? TR_MEASURE_GENDER : 0),
							  &k->measure, NULL, err, sizeof(err));
		if (rc == TR_CANCELED)
			CHECK_FOR_INTERRUPTS();
		if (rc != 0)
		{
			/* Not kept: a training measures it again and reports the error. */
			ereport(LOG, (errmsg("training: could not measure image %s: %s",
								 DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&rows[i].id))),
								 err)));
			continue;
		}
		if (k->measure.features != NULL)
		{
			size_t		bytes = sizeof(float) * k->measure.dim * k->measure.nregions;
			float	   *copy = palloc_extended(bytes, MCXT_ALLOC_NO_OOM);

			if (copy != NULL)
				memcpy(copy, k->measure.features, bytes);
			free(k->measure.features);
			k->measure.features = copy;
			if (copy == NULL)
				continue;
		}
		k->id = rows[i].id;
		k->content_version = rows[i].content_version;
		strlcpy(k->kind, cfg->features, sizeof(k->kind));
		nk++;
	}
	return nk;
}

bool
tr_extract_batch(Oid dboid)
{
	MemoryContext cxt,
				old;
	volatile int n = 0;
	tr_config	face,
				landmark;

	bool		training;
	pg_uuid_t	dataset;
	TrImageKey *key;

	if (!tr_background_features)
	{
		take_turn(dboid, true, &training, &dataset);
		return false;
	}
	if (!take_turn(dboid, false, &training, &dataset))
		return false;
	{
		pg_uuid_t	zero;

		memset(&zero, 0, sizeof(zero));
		if (training && memcmp(&dataset, &zero, sizeof(zero)) == 0)
			return false;		/* its dataset is not published yet: look again later */
	}
	key = training ? &back_key : &pass_key;
	if (!training)
		memset(&back_key, 0, sizeof(back_key));
	cxt = AllocSetContextCreate(CurrentMemoryContext, "training extraction", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		TrImageRow *rows;
		TrKeep	   *keep;

		server_config(&face, TR_FACE);
		server_config(&landmark, TR_LANDMARK);
		/* Beside a training: its dataset's images, without the gender (it takes them as they are). */
		if (training)
			face.measure_gender = false;
		n = store_unmeasured_batch(face.features[0] ? face.features : NULL, landmark.features,
								   face.measure_gender, training ? &dataset : NULL,
								   key, TR_EXTRACT_BATCH, &rows);
		if (n > 0)
		{
			pgstat_report_activity(STATE_RUNNING, "training worker: measuring images for the embedding store");
			int			done;

			keep = palloc0(sizeof(TrKeep) * n);
			if (store_keep_measures(keep, measure_rows(dboid, rows, n, &face, &landmark, keep, &done)) > 0 &&
				!training)
				pass_kept = true;
			/* Stopped early: the pass goes on after the last image measured. */
			if (done < n)
			{
				key->time_created = rows[done - 1].time_created;
				key->id = rows[done - 1].id;
			}
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		ereport(LOG, (errmsg("training: measuring images in the background stopped: %s", edata->message)));
		FreeErrorData(edata);
		n = 0;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	if (n == 0 && training)
	{
		/* Nothing left behind the training: it measures the rest itself. */
		memset(&back_key, 0, sizeof(back_key));
		take_turn(dboid, true, &training, &dataset);
		return false;
	}
	if (n == 0)
	{
		/*
		 * The pass is over: the next one starts from the first image. A pass that kept something
		 * is followed by one more, for images changed behind it meanwhile; a pass that keeps
		 * nothing ends the work (images that cannot be measured are not looked at again until
		 * the next wake).
		 */
		bool		again = pass_kept;

		memset(&pass_key, 0, sizeof(pass_key));
		pass_kept = false;
		if (!again)
			take_turn(dboid, true, &training, &dataset);
		return again;
	}
	return true;
}
