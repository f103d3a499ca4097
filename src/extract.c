/*
 * extract.c: the embedding store filled in the background.
 *
 * A worker with no training to run measures a batch of images that have no kept measurement
 * for the feature kind a training of their dataset would use now (training.face_features
 * resolved as a training resolves it; the classic kind for landmarks), keeps them, and looks
 * for waiting trainings before the next batch, so trainings always go first. One pass walks the
 * images once in (time_created, id) order; one worker per database runs it at a time. When more
 * than a batch waits, the pass asks the launcher for a helper (a second worker, within
 * training.max_workers, after any database's waiting trainings), which walks from the newest
 * image down; each publishes in shared memory how far it has fetched and stops short of the
 * other's edge, so the two meet in the middle and share the work on two cores. While a training
 * of the database runs in another worker, there is no helper, and the extractor walks that
 * dataset's images from the newest down: the training reads from the oldest up. Images that
 * change during a pass are found by the next one.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "deep.h"
#include "deepfeat.h"
#include "extract.h"
#include "settings.h"
#include "shmem.h"
#include "store.h"

/* Images measured per batch (a few seconds of work at most before trainings are looked at). */
#define TR_EXTRACT_BATCH 8

/*
 * How long the pass measures, at least, before it makes room for another database waiting for a
 * slot: databases with images to measure take turns of this length, not of a process start.
 */
#define TR_EXTRACT_TURN_MS 5000

/* What this worker measures in a database (take_turn). */
typedef enum Turn
{
	TURN_NONE,					/* nothing: another worker does, or it is time to step back */
	TURN_PASS,					/* the pass, from the oldest image up */
	TURN_HELPER,				/* beside the pass, from the newest image down */
	TURN_BEHIND,				/* beside a training, its dataset's images from the newest down */
} Turn;

/*
 * This process's role at its last batch, and where its walk stands: up (the pass) or down (a
 * helper, or behind a training of back_dataset). A new role starts a new walk.
 */
static Turn my_turn = TURN_NONE;
static TimestampTz my_turn_since;
static pg_uuid_t back_dataset;
static TrImageKey pass_key;
static TrImageKey back_key;

void
tr_extract_forget(TrDbEntry *e)
{
	if (e->extractor == MyProcPid)
	{
		e->extractor = 0;
		e->want_helper = false;
		e->pass_edge.set = false;
	}
	if (e->helper == MyProcPid)
	{
		e->helper = 0;
		e->helper_edge.set = false;
	}
	my_turn = TURN_NONE;
}

/*
 * Walk the worker slots once (tr_shared->lock held): whether a training of the database runs in
 * another worker (on *dataset), and whether every slot is taken while another database, not
 * being served yet, waits for one (*trainings_wait: one waits for trainings, not only to measure).
 * A database is served by a worker on its way there or by its extractor, which looks for
 * trainings between its batches; an idle worker gives its slot up to a database that waits.
 */
static void
look_around(Oid dboid, bool *training, pg_uuid_t *dataset, bool *others_wait, bool *trainings_wait)
{
	int			used = 0;
	Oid			served[TR_MAX_WORKERS];
	int			nserved = 0;

	*training = false;
	*others_wait = false;
	*trainings_wait = false;
	memset(dataset, 0, sizeof(*dataset));
	for (int i = 0; i < TR_MAX_WORKERS; i++)
	{
		TrWorkerSlot *sl = &tr_shared->slots[i];

		if (sl->phase == TR_SLOT_FREE || sl->exited)
			continue;
		if (sl->phase != TR_SLOT_IDLE)
			used++;
		if (sl->phase == TR_SLOT_STARTING)
			served[nserved++] = sl->dboid;
		if (sl->dboid == dboid && sl->has_training && sl->pid != MyProcPid)
		{
			*training = true;
			*dataset = sl->dataset;
		}
	}
	if (used < tr_max_workers)
		return;
	for (int i = 0; i < TR_MAX_DBS && !*trainings_wait; i++)
	{
		TrDbEntry  *o = &tr_shared->dbs[i];
		bool		on_its_way = o->extractor != 0;

		if (o->dboid == InvalidOid || o->dboid == dboid || !o->pending || !o->has_extension || o->dropping)
			continue;
		for (int k = 0; k < nserved; k++)
			on_its_way |= served[k] == o->dboid;
		if (on_its_way)
			continue;
		*others_wait = true;
		*trainings_wait = o->trainings;
	}
}

/*
 * Become (or stay) the database's extractor, or its helper; none when others are, when the walks
 * are done, or when another database waits for a slot (stepping back gives up the role). While a
 * training of the database runs in another worker there is one extractor, behind it, on its
 * *dataset (zero: not known yet).
 */
static Turn
take_turn(Oid dboid, bool release, pg_uuid_t *dataset, bool *yield)
{
	TrDbEntry  *e;
	Turn		turn = TURN_NONE;
	bool		training;
	bool		others_wait;
	bool		trainings_wait;
	bool		pass_steps_back;

	*yield = false;
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	look_around(dboid, &training, dataset, &others_wait, &trainings_wait);
	/*
	 * A helper makes room at once; a pass (or a walk behind a training) for a training at once,
	 * for measuring after its turn (a fresh one measures a batch first).
	 */
	pass_steps_back = trainings_wait ||
		(others_wait && my_turn != TURN_NONE &&
		 TimestampDifferenceExceeds(my_turn_since, GetCurrentTimestamp(), TR_EXTRACT_TURN_MS));
	e = tr_db_entry(dboid, false);
	if (e != NULL && !release)
	{
		bool		helped = e->helper != 0 && e->helper != MyProcPid;
		bool		extractor = e->extractor == 0 || e->extractor == MyProcPid;
		bool		done = false;

		if (training)
			turn = extractor && !pass_steps_back ? TURN_BEHIND : TURN_NONE;
		else if (extractor)
		{
			/*
			 * A helper whose pass ended becomes the pass, for images added or changed since the
			 * pass began; when nothing was (nor kept), the walks are done.
			 */
			if (my_turn == TURN_HELPER && e->extractor == 0 && !e->rewalk)
				done = true;
			else
				turn = !pass_steps_back || helped ? TURN_PASS : TURN_NONE;
		}
		else if ((e->helper == 0 || e->helper == MyProcPid) && !others_wait)
			turn = TURN_HELPER;
		/* Made room for another database: this one is looked at again when a slot is free. */
		if (turn == TURN_NONE && !done && (extractor ? pass_steps_back : others_wait))
		{
			*yield = true;
			if (extractor)
				e->pending = true;
		}
		/* A new pass: what happens from now on decides whether another one follows. */
		if (turn == TURN_PASS && my_turn != TURN_PASS)
			e->rewalk = false;
	}
	if (e != NULL)
	{
		if (e->extractor == MyProcPid && turn != TURN_PASS && turn != TURN_BEHIND)
			e->extractor = 0;
		if (e->helper == MyProcPid && turn != TURN_HELPER)
		{
			e->helper = 0;
			e->helper_edge.set = false;
		}
		if (turn == TURN_PASS || turn == TURN_BEHIND)
			e->extractor = MyProcPid;
		if (turn == TURN_HELPER)
			e->helper = MyProcPid;
		/* No pass: no helper asked for, no edge to stop at. */
		if (e->extractor == 0 || turn == TURN_BEHIND)
		{
			e->want_helper = false;
			e->pass_edge.set = false;
		}
	}
	LWLockRelease(tr_shared->lock);
	return turn;
}

static int
key_cmp(TimestampTz t, const pg_uuid_t *id, const TrEdge *edge)
{
	if (t != edge->time_created)
		return t < edge->time_created ? -1 : 1;
	return memcmp(id, &edge->id, sizeof(pg_uuid_t));
}

/*
 * Of the n rows a walk fetched (the pass: ascending; the helper: descending), keep those short
 * of the other walk's edge and publish how far this one reaches, in one step under the lock:
 * whichever walk comes second sees the other's edge, so no image is measured by both. Returns
 * how many rows are kept.
 */
static int
claim_rows(Oid dboid, Turn turn, const TrImageRow *rows, int n)
{
	TrDbEntry  *e;
	int			kept = n;

	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	e = tr_db_entry(dboid, false);
	if (e != NULL)
	{
		TrEdge	   *mine = turn == TURN_PASS ? &e->pass_edge : &e->helper_edge;
		const TrEdge *other = turn == TURN_PASS ? &e->helper_edge : &e->pass_edge;
		int			sign = turn == TURN_PASS ? 1 : -1;

		if (other->set)
			for (kept = 0; kept < n; kept++)
				if (sign * key_cmp(rows[kept].time_created, &rows[kept].id, other) >= 0)
					break;
		if (kept > 0)
		{
			mine->set = true;
			mine->time_created = rows[kept - 1].time_created;
			mine->id = rows[kept - 1].id;
		}
	}
	LWLockRelease(tr_shared->lock);
	return kept;
}

/*
 * More than a batch waits and nobody helps the pass: ask the launcher for a second worker (one
 * idle in the database, or a new one within training.max_workers).
 */
static void
ask_helper(Oid dboid)
{
	TrDbEntry  *e;
	Latch	   *latch = NULL;

	if (tr_max_workers < 2)
		return;
	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	e = tr_db_entry(dboid, false);
	if (e != NULL && e->extractor == MyProcPid && e->helper == 0 && !e->want_helper)
	{
		e->want_helper = true;
		latch = tr_shared->launcher_latch;
	}
	LWLockRelease(tr_shared->lock);
	if (latch)
		SetLatch(latch);
}

/* A helper makes room at once when another database waits for a slot. */
static bool
make_room(Oid dboid)
{
	bool		training;
	bool		others_wait;
	bool		trainings_wait;
	pg_uuid_t	dataset;

	LWLockAcquire(tr_shared->lock, LW_SHARED);
	look_around(dboid, &training, &dataset, &others_wait, &trainings_wait);
	LWLockRelease(tr_shared->lock);
	return others_wait;
}

/*
 * Set the database's rewalk flag (true: something was kept, or rows were left, so a pass that
 * reaches the last image goes round once more; false: that round starts); returns what it was.
 */
static bool
swap_rewalk(Oid dboid, bool value)
{
	TrDbEntry  *e;
	bool		was = false;

	LWLockAcquire(tr_shared->lock, LW_EXCLUSIVE);
	e = tr_db_entry(dboid, false);
	if (e != NULL)
	{
		was = e->rewalk;
		e->rewalk = value;
	}
	LWLockRelease(tr_shared->lock);
	return was;
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

/* Whether a training may wait since this worker last looked (new images wait their turn). */
static bool
woken(Oid dboid)
{
	TrDbEntry  *e;
	bool		pending;

	LWLockAcquire(tr_shared->lock, LW_SHARED);
	e = tr_db_entry(dboid, false);
	pending = e != NULL && e->pending && e->trainings;
	LWLockRelease(tr_shared->lock);
	return pending;
}

/*
 * Measure the rows into keep[] (stopping early when woken, or, a helper, when another database
 * waits for a slot); returns how many.
 */
static int
measure_rows(Oid dboid, bool helper, TrImageRow *rows, int n, const tr_config *face,
			 const tr_config *landmark, TrKeep *keep, int *done)
{
	int			nk = 0;

	*done = 0;
	for (int i = 0; i < n; i++, (*done)++)
	{
		const tr_config *cfg = strcmp(rows[i].type, "face") == 0 ? face : landmark;
		TrKeep	   *k = &keep[nk];
		char		err[TR_ERRLEN];
		int			rc;

		if (tr_test_image_delay > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 tr_test_image_delay, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
		/*
		 * Something woke the database (a new training, say): keep what is measured, look first.
		 * A helper makes room for another database before its first image too.
		 */
		if ((i > 0 && woken(dboid)) || (helper && make_room(dboid)))
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
tr_extract_batch(Oid dboid, bool *yield)
{
	MemoryContext cxt,
				old;
	volatile int n = 0;
	volatile bool bounded = false;
	tr_config	face,
				landmark;
	Turn		turn;
	pg_uuid_t	dataset;
	TrImageKey *key;

	if (!tr_background_features)
	{
		take_turn(dboid, true, &dataset, yield);
		my_turn = TURN_NONE;
		return false;
	}
	turn = take_turn(dboid, false, &dataset, yield);
	if (turn == TURN_BEHIND)
	{
		pg_uuid_t	zero;

		memset(&zero, 0, sizeof(zero));
		/* Its dataset is not published yet: look again later, leaving the role to whoever looks. */
		if (memcmp(&dataset, &zero, sizeof(zero)) == 0)
		{
			bool		ignored;

			take_turn(dboid, true, &dataset, &ignored);
			turn = TURN_NONE;
		}
	}
	/* A new role (or another training's dataset) starts a new walk. */
	if (turn != my_turn || (turn == TURN_BEHIND && memcmp(&dataset, &back_dataset, sizeof(dataset)) != 0))
	{
		memset(&pass_key, 0, sizeof(pass_key));
		memset(&back_key, 0, sizeof(back_key));
		my_turn_since = GetCurrentTimestamp();
	}
	my_turn = turn;
	back_dataset = dataset;
	if (turn == TURN_NONE)
		return false;
	key = turn == TURN_PASS ? &pass_key : &back_key;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "training extraction", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		TrImageRow *rows;
		TrKeep	   *keep;
		int			done;
		int			fetched;

		server_config(&face, TR_FACE);
		server_config(&landmark, TR_LANDMARK);
		/* Beside a training: its dataset's images, without the gender (it takes them as they are). */
		if (turn == TURN_BEHIND)
			face.measure_gender = false;
		/* The pass fetches one image more than it measures: is there more than a batch? */
		fetched = store_unmeasured_batch(face.features[0] ? face.features : NULL, landmark.features,
										 face.measure_gender, turn == TURN_BEHIND ? &dataset : NULL,
										 turn != TURN_PASS, key, TR_EXTRACT_BATCH + (turn == TURN_PASS), &rows);
		n = Min(fetched, TR_EXTRACT_BATCH);
		/* The pass and its helper measure only what the other has not fetched. */
		if (turn != TURN_BEHIND && n > 0)
		{
			int			mine = claim_rows(dboid, turn, rows, n);

			bounded = mine < n;
			n = mine;
		}
		if (n > 0)
		{
			if (turn == TURN_PASS && fetched > TR_EXTRACT_BATCH && !bounded)
				ask_helper(dboid);
			pgstat_report_activity(STATE_RUNNING, turn == TURN_PASS
								   ? "training worker: measuring images for the embedding store"
								   : "training worker: measuring images for the embedding store, newest first");
			keep = palloc0(sizeof(TrKeep) * n);
			if (store_keep_measures(keep, measure_rows(dboid, turn == TURN_HELPER, rows, n, &face, &landmark,
													   keep, &done)) > 0 &&
				turn != TURN_BEHIND)
				(void) swap_rewalk(dboid, true);
			/*
			 * Stopped early, or rows fetched beyond what was measured: go on after the last one.
			 * A helper that made room before its first image starts where it was, and the rows
			 * it claimed are walked again (its pass may have ended at its edge).
			 */
			if (done == 0 && turn == TURN_HELPER)
				(void) swap_rewalk(dboid, true);
			if (done > 0 && done < fetched)
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
		bounded = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	if (n > 0)
		return true;
	/*
	 * Nothing left on this walk. A walk down ends: the pass or the training measures the rest. A
	 * pass that met its helper ends too: the helper, the pass once this role is free, goes on
	 * with a whole pass of its own (take_turn). A pass that went to the last image is followed
	 * by one more, for images changed behind it meanwhile, if either walk kept something or a
	 * commit woke the database since it began; otherwise the work ends (images that cannot be
	 * measured, or kept, are not looked at again until the next wake).
	 */
	if (turn == TURN_PASS && !bounded && swap_rewalk(dboid, false))
	{
		memset(&pass_key, 0, sizeof(pass_key));
		return true;
	}
	take_turn(dboid, true, &dataset, yield);
	my_turn = TURN_NONE;
	return false;
}
