/*
 * validate.c: the trainings_before trigger, the one gate of every write to training.trainings
 * outside the background worker: create_training, a direct INSERT (psql, an ORM, PostgREST) and
 * an UPDATE of a waiting training's settings all pass here.
 *
 *   - read-only columns (state, progress, times, the output model, ...) keep their defaults on
 *     INSERT and their values on UPDATE (contract 2); the owner is the current role;
 *   - the dataset exists, is visible to the caller (row-level security) and has two classes to
 *     learn (its row is locked by the foreign key check at the end of the statement, not here:
 *     a second lock of the row by the same transaction cost about a fifth of a creation
 *     at 8 clients);
 *   - the type comes from the dataset; names and texts are bounded; the config is read by the
 *     one config reader;
 *   - one type per model name: the model's, or, before it exists, that of the trainings queued
 *     for the name, under an advisory lock per owner and name held until commit.
 *
 * C rather than PL/pgSQL because create_training is benchmarked against a plain INSERT
 * (bench/api.sh). Errors are those of the SQL helpers the PL/pgSQL version called, word for
 * word; texts that the fast checks below cannot pass are handed to validate_text() itself.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/uuid.h"

#include "config.h"
#include "guard.h"
#include "hooks.h"
#include "locks.h"
#include "render.h"
#include "store.h"

PG_FUNCTION_INFO_V1(training_trainings_before);
PG_FUNCTION_INFO_V1(training_create_training);

#define RO_HINT "Only the training background worker sets it; delete the training to cancel it."

/* The columns the trigger reads, by name, and their attribute numbers in the trigger's relation. */
enum
{
	C_ID, C_OWNER, C_SOURCE_DATASET_ID, C_OUTPUT_MODEL_NAME, C_OUTPUT_MODEL_DESCRIPTION,
	C_OUTPUT_MODEL_CHANGELOG, C_CONFIG, C_TYPE, C_STATE, C_ERROR, C_PROGRESS, C_DURATION,
	C_STAGE, C_ATTEMPTS, C_WORKER_PID, C_OUTPUT_MODEL_ID, C_OUTPUT_MODEL_VERSION,
	C_OUTPUT_MODEL_VERSION_ID, C_TIME_CREATED, C_TIME_STARTED, C_TIME_COMPLETED, C_WORKER,
	C_LEASE_EXPIRES, C_NCOLS
};
static const char *const column_names[C_NCOLS] = {
	"id", "owner", "source_dataset_id", "output_model_name", "output_model_description",
	"output_model_changelog", "config", "type", "state", "error", "progress", "duration",
	"stage", "attempts", "worker_pid", "output_model_id", "output_model_version",
	"output_model_version_id", "time_created", "time_started", "time_completed", "worker",
	"lease_expires"
};

/* A row of the trigger: its values and nulls, by the enum above. */
typedef struct Row
{
	Datum		v[C_NCOLS];
	bool		n[C_NCOLS];
} Row;

static void
read_row(HeapTuple tuple, TupleDesc desc, const int *attnums, Row *r)
{
	for (int c = 0; c < C_NCOLS; c++)
		r->v[c] = heap_getattr(tuple, attnums[c], desc, &r->n[c]);
}

static void
refuse_read_only(const char *column, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("column \"%s\" of training.trainings is read-only", column),
			 errhint("%s", hint)));
}

/* a IS DISTINCT FROM b for column c, with the type's own equality (as SQL compares them). */
static bool
distinct(const Row *a, const Row *b, int c, TupleDesc desc, const int *attnums)
{
	Form_pg_attribute att;
	TypeCacheEntry *tc;

	if (a->n[c] || b->n[c])
		return a->n[c] != b->n[c];
	att = TupleDescAttr(desc, attnums[c] - 1);
	tc = lookup_type_cache(att->atttypid, TYPECACHE_EQ_OPR_FINFO);
	if (!OidIsValid(tc->eq_opr_finfo.fn_oid))
		elog(ERROR, "training: no equality for column %s", column_names[c]);
	return !DatumGetBool(FunctionCall2Coll(&tc->eq_opr_finfo, att->attcollation,
										   a->v[c], b->v[c]));
}

static bool
text_is(Datum d, const char *s)
{
	text	   *t = DatumGetTextPP(d);
	size_t		len = strlen(s);

	return VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), s, len) == 0;
}

/* quote_literal(left(s, 100)) */
static char *
quote_left(text *t)
{
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	return quote_literal_cstr(pnstrdup(s, pg_mbcharcliplen(s, len, 100)));
}

static char *
uuid_string(Datum d)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, d));
}

/*
 * training.validate_text(what, value, max_length, blank_ok). Passes here what it would pass:
 * a text with a visible ASCII character (or blank_ok) and no more characters than max_length.
 * Anything else is decided, and refused in its words, by validate_text() itself.
 */
static void
validate_text(const char *what, text *value, int max_length, bool blank_ok)
{
	Oid			args[4] = {TEXTOID, TEXTOID, INT4OID, BOOLOID};

	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what),
				 errhint("Give the %s at least one visible character.", what)));
	else
	{
		const char *s = VARDATA_ANY(value);
		int			len = VARSIZE_ANY_EXHDR(value);
		bool		visible = blank_ok;

		for (int i = 0; i < len && !visible; i++)
			visible = s[i] > ' ' && s[i] < 0x7f;
		if (visible && (len <= max_length || pg_mbstrlen_with_len(s, len) <= max_length))
			return;
	}
	/* Looked up each time (rarely): the extension may have been created again since. */
	OidFunctionCall4Coll(LookupFuncName(list_make2(makeString("training"), makeString("validate_text")),
										4, args, false),
						 DEFAULT_COLLATION_OID, CStringGetTextDatum(what),
						 PointerGetDatum(value), Int32GetDatum(max_length), BoolGetDatum(blank_ok));
}

/* INSERT: read-only columns at their defaults, the owner the current role. */
static void
check_new(const Row *r)
{
	const char *user = GetUserNameFromId(GetUserId(), false);
	TimestampTz created;

	if (r->n[C_OWNER] || strcmp(NameStr(*DatumGetName(r->v[C_OWNER])), user) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("owner of a row of training.trainings is set from the current role (%s), not %s",
						user, r->n[C_OWNER] ? "NULL"
						: quote_literal_cstr(NameStr(*DatumGetName(r->v[C_OWNER])))),
				 errhint("Omit owner; to create rows for another role, SET ROLE to it first.")));
	if (r->n[C_STATE] || !text_is(r->v[C_STATE], "waiting"))
		refuse_read_only("state", RO_HINT);
	if (r->n[C_ERROR] || !text_is(r->v[C_ERROR], ""))
		refuse_read_only("error", RO_HINT);
	if (r->n[C_PROGRESS] || DatumGetFloat8(r->v[C_PROGRESS]) != 0)
		refuse_read_only("progress", RO_HINT);
	if (r->n[C_DURATION] || DatumGetFloat8(r->v[C_DURATION]) != 0)
		refuse_read_only("duration", RO_HINT);
	if (r->n[C_STAGE] || !text_is(r->v[C_STAGE], ""))
		refuse_read_only("stage", RO_HINT);
	if (r->n[C_ATTEMPTS] || DatumGetInt32(r->v[C_ATTEMPTS]) != 0)
		refuse_read_only("attempts", RO_HINT);
	if (!r->n[C_WORKER_PID])
		refuse_read_only("worker_pid", RO_HINT);
	if (!r->n[C_OUTPUT_MODEL_ID])
		refuse_read_only("output_model_id", RO_HINT);
	if (!r->n[C_OUTPUT_MODEL_VERSION])
		refuse_read_only("output_model_version", RO_HINT);
	if (!r->n[C_OUTPUT_MODEL_VERSION_ID])
		refuse_read_only("output_model_version_id", RO_HINT);
	/* The default (clock_timestamp()) lies between the transaction start and now. */
	created = r->n[C_TIME_CREATED] ? 0 : DatumGetTimestampTz(r->v[C_TIME_CREATED]);
	if (r->n[C_TIME_CREATED] || created < GetCurrentTransactionStartTimestamp()
		|| created > GetCurrentTimestamp())
		refuse_read_only("time_created", RO_HINT);
	if (!r->n[C_TIME_STARTED])
		refuse_read_only("time_started", RO_HINT);
	if (!r->n[C_TIME_COMPLETED])
		refuse_read_only("time_completed", RO_HINT);
	if (!r->n[C_WORKER])
		refuse_read_only("worker", RO_HINT);
	if (!r->n[C_LEASE_EXPIRES])
		refuse_read_only("lease_expires", RO_HINT);
}

/*
 * UPDATE: read-only columns unchanged, except the links the foreign keys' ON DELETE SET NULL
 * (and _model_versions_unlink) clear after their row is deleted. Returns true when the update
 * needs no validation: it changes no setting, or it is the SET NULL of a deleted dataset.
 */
static bool
check_update(const Row *o, const Row *r, TupleDesc desc, const int *attnums)
{
	static const int in_order[] = {
		C_STATE, C_ERROR, C_PROGRESS, C_DURATION, C_STAGE, C_ATTEMPTS, C_WORKER_PID,
		C_OUTPUT_MODEL_VERSION, C_TIME_CREATED, C_TIME_STARTED, C_TIME_COMPLETED, C_WORKER,
		C_LEASE_EXPIRES
	};
	static const int settings[] = {
		C_SOURCE_DATASET_ID, C_OUTPUT_MODEL_NAME, C_OUTPUT_MODEL_DESCRIPTION,
		C_OUTPUT_MODEL_CHANGELOG, C_CONFIG
	};
	bool		changed = false;

	if (distinct(r, o, C_ID, desc, attnums))
		refuse_read_only("id", RO_HINT);
	if (distinct(r, o, C_OWNER, desc, attnums))
		refuse_read_only("owner", RO_HINT);
	if (distinct(r, o, C_TYPE, desc, attnums))
		refuse_read_only("type", "The type is copied from the source dataset.");
	for (int i = 0; i < (int) lengthof(in_order); i++)
		if (distinct(r, o, in_order[i], desc, attnums))
			refuse_read_only(column_names[in_order[i]], RO_HINT);
	/* Only the foreign key's ON DELETE SET NULL, after the model was deleted, may clear it. */
	if (distinct(r, o, C_OUTPUT_MODEL_ID, desc, attnums)
		&& (!r->n[C_OUTPUT_MODEL_ID] || store_row_exists(TR_ROW_MODEL, o->v[C_OUTPUT_MODEL_ID])))
		refuse_read_only("output_model_id", RO_HINT);
	/* Likewise for the version: only deleting that version clears it (_model_versions_unlink). */
	if (distinct(r, o, C_OUTPUT_MODEL_VERSION_ID, desc, attnums)
		&& (!r->n[C_OUTPUT_MODEL_VERSION_ID]
			|| store_row_exists(TR_ROW_VERSION, o->v[C_OUTPUT_MODEL_VERSION_ID])))
		refuse_read_only("output_model_version_id", RO_HINT);
	if (r->n[C_SOURCE_DATASET_ID] && !o->n[C_SOURCE_DATASET_ID]
		&& !store_row_exists(TR_ROW_DATASET, o->v[C_SOURCE_DATASET_ID]))
		return true;			/* ON DELETE SET NULL of a deleted dataset */
	for (int i = 0; i < (int) lengthof(settings) && !changed; i++)
		changed = distinct(r, o, settings[i], desc, attnums);
	if (!changed)
		return true;
	if (!text_is(o->v[C_STATE], "waiting"))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("training %s is %s: its settings can no longer change",
						uuid_string(o->v[C_ID]), TextDatumGetCString(o->v[C_STATE])),
				 errhint("Create a new training with the settings you want.")));
	return false;
}

/*
 * One type per model: the model's, or, before it exists, that of the trainings already queued
 * for the name. Two advisory locks per owner and name, held until commit, in the extension's own
 * lock spaces (locks.h: keyed by the owner's role, out of reach of SQL):
 *
 *   - the name lock (TR_LOCK_NAME), for names without a model, in a mode of the training's
 *     type: ShareLock for face, RowExclusiveLock for landmark. Each mode conflicts with the other
 *     and not with itself, so creations of one type run side by side, a creation of the other
 *     type waits for them, and the reads after it take their own snapshot, so they see the
 *     trainings that committed while it waited. A backend that has not yet seen the dataset
 *     (its type is read after the lock) takes the lock exclusive, which conflicts with both;
 *   - the model lock (TR_LOCK_MODEL), shared by creations of a name whose model exists,
 *     exclusive by a deletion of that model (trigger models_delete): the model, and so its type,
 *     stays until those creations commit, and they do not wait for each other. A deletion
 *     waits for them; a creation after it finds no model and takes the name lock, where it sees
 *     their trainings queued.
 *
 * Which one a creation takes first follows what this backend saw last time for the name, and
 * the name lock's mode the type this backend read last time for the dataset. Both are hints: a
 * creation that finds no model under the model lock, or a dataset of the other type under a
 * typed name lock, takes the name lock of its type and reads again. The reads after a lock take
 * the latest snapshot (also in REPEATABLE READ), so they see what committed while it waited.
 */
typedef enum NameLock
{
	LOCK_NAME,					/* the name has no model: exclusive */
	LOCK_NAME_FACE,				/* the same lock, by a face training of a dataset seen before */
	LOCK_NAME_LANDMARK,			/* the same lock, by a landmark training */
	LOCK_MODEL					/* shared: the name's model exists */
} NameLock;

static int64
name_key(const Row *r)
{
	return tr_model_lock_key(NameStr(*DatumGetName(r->v[C_OWNER])),
							 DatumGetTextPP(r->v[C_OUTPUT_MODEL_NAME]));
}

/* Names whose model this backend saw at its last creation for them (their name_key()). */
static int64 seen_models[32];
static int	seen_next = 0;

static bool
model_seen(int64 key)
{
	for (int i = 0; i < (int) lengthof(seen_models); i++)
		if (seen_models[i] == key && key != 0)
			return true;
	return false;
}

static void
remember_model(int64 key, bool exists)
{
	for (int i = 0; i < (int) lengthof(seen_models); i++)
		if (seen_models[i] == key)
		{
			if (!exists)
				seen_models[i] = 0;
			return;
		}
	if (exists)
	{
		seen_models[seen_next] = key;
		seen_next = (seen_next + 1) % lengthof(seen_models);
	}
}

/* Datasets whose type this backend read (the name lock's mode, see NameLock). */
static struct
{
	pg_uuid_t	id;
	NameLock	lock;
}			seen_datasets[16];
static int	seen_dataset_next = 0;

static NameLock
name_lock_of(Datum dataset_id)
{
	for (int i = 0; i < (int) lengthof(seen_datasets); i++)
		if (seen_datasets[i].lock != LOCK_NAME
			&& memcmp(&seen_datasets[i].id, DatumGetUUIDP(dataset_id), sizeof(pg_uuid_t)) == 0)
			return seen_datasets[i].lock;
	return LOCK_NAME;
}

static void
remember_dataset(Datum dataset_id, NameLock lock)
{
	int			slot = seen_dataset_next;

	for (int i = 0; i < (int) lengthof(seen_datasets); i++)
		if (memcmp(&seen_datasets[i].id, DatumGetUUIDP(dataset_id), sizeof(pg_uuid_t)) == 0)
			slot = i;
	if (slot == seen_dataset_next)
		seen_dataset_next = (seen_dataset_next + 1) % lengthof(seen_datasets);
	seen_datasets[slot].id = *DatumGetUUIDP(dataset_id);
	seen_datasets[slot].lock = lock;
}

/* Take the lock which of key (name_key()) until commit, in the extension's lock space. */
static void
lock_name(int64 key, NameLock which)
{
	static const LOCKMODE modes[] = {
		[LOCK_NAME] = ExclusiveLock,
		[LOCK_NAME_FACE] = ShareLock,
		[LOCK_NAME_LANDMARK] = RowExclusiveLock,
		[LOCK_MODEL] = ShareLock,
	};

	tr_lock_xact(key, which == LOCK_MODEL ? TR_LOCK_MODEL : TR_LOCK_NAME, modes[which]);
}

/* What the trigger reads after lock_name(), on one snapshot (the name again after a second lock). */
typedef struct Read
{
	ApiRow		ds;				/* the source dataset (D_NCOLS values) */
	Datum		ds_values[D_NCOLS];
	bool		ds_nulls[D_NCOLS];
	TrNameRead	name;			/* the model of that name, trainings queued for it */
} Read;

/*
 * Read the dataset, check that it exists and (checking_classes) has two classes to learn, and
 * return its type.
 */
static char *
dataset_type(const Row *r, bool checking_classes, TrNameGuess guess, Read *rd)
{
	Datum		dataset_id = r->v[C_SOURCE_DATASET_ID];
	ApiRow	   *ds = &rd->ds;
	int32		trainable;

	ds->values = rd->ds_values;
	ds->nulls = rd->ds_nulls;
	/*
	 * Not locked: the foreign key check locks the row FOR KEY SHARE at the end of the statement.
	 * A delete_dataset in progress is waited for there (then 23503), and a delete_dataset after
	 * that waits and sees this training (55000).
	 */
	if (!store_dataset_for_training(dataset_id, r->v[C_OWNER], r->v[C_OUTPUT_MODEL_NAME],
									r->n[C_OUTPUT_MODEL_NAME], r->v[C_ID], r->n[C_ID],
									guess, ds, &rd->name)
		|| ds->nulls[D_TYPE])
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("dataset %s not found", uuid_string(dataset_id)),
				 errhint("Check the id with training.list_datasets(), or create the dataset first.")));
	/* Created means trainable: a dataset with fewer than two classes to learn would fail the training. */
	if (checking_classes)
	{
		trainable = ds->nulls[D_TRAINABLE_CLASSES] ? 0 : DatumGetInt32(ds->values[D_TRAINABLE_CLASSES]);
		trainable -= (int32) rd->name.expired_trainable;
		if (trainable < 2)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("dataset %s has %d class(es) to train on; a training needs at least two",
							uuid_string(dataset_id), trainable),
					 errhint("A class counts when it is active, not expired and has active images: add classes and "
							 "images (training.create_class, training.add_image), then create the training.")));
	}
	return TextDatumGetCString(ds->values[D_TYPE]);
}

/* One type per model (see NameLock). */
static void
check_model_type(const Row *r, const char *type, const Read *rd)
{
	text	   *name = DatumGetTextPP(r->v[C_OUTPUT_MODEL_NAME]);
	const char *other = strcmp(type, "face") == 0 ? "landmark" : "face";

	if (rd->name.model_type != NULL && strcmp(rd->name.model_type, type) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model %s is a %s model, but dataset %s is of type %s",
						quote_left(name), rd->name.model_type, uuid_string(r->v[C_SOURCE_DATASET_ID]), type),
				 errhint("Choose another output_model_name, or train on a dataset of the model's type.")));
	if (rd->name.model_type == NULL && rd->name.queued)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a %s training of model %s is already queued; this %s training cannot share its name",
						other, quote_left(name), type),
				 errhint("Choose another output_model_name, or wait until that training has completed or failed.")));
}

/*
 * Trigger BEFORE INSERT OR UPDATE ON training.trainings (row): validate the settings and fill
 * what create_training fills (type, empty texts, config {}); refuse writes to the read-only
 * columns outside the background worker; keep the Training object with the row (render.c),
 * from the dataset row read here.
 */
Datum
training_trainings_before(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	static int	attnums[C_NCOLS];
	static int	natts = -1;
	static Oid	relid = InvalidOid;
	TriggerData *td = (TriggerData *) fcinfo->context;
	bool		inserting;
	HeapTuple	tuple;
	TupleDesc	desc;
	Row			r;
	Row			o;
	Read		rd;
	bool		named;
	bool		model_first;
	NameLock	name_lock;
	TrNameGuess guess;
	NameLock	type_lock;
	int64		model_key;
	char	   *type;
	Datum		description;
	Datum		changelog;
	Datum		config;
	int			cols[4];
	Datum		vals[4];
	bool		nulls[4] = {false, false, false, false};

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event)
		|| !TRIGGER_FIRED_FOR_ROW(td->tg_event) || TRIGGER_FIRED_BY_DELETE(td->tg_event))
		elog(ERROR, "training: _trainings_before must be a BEFORE INSERT OR UPDATE row trigger");
	inserting = TRIGGER_FIRED_BY_INSERT(td->tg_event);
	tuple = inserting ? td->tg_trigtuple : td->tg_newtuple;
	/* A restore writes the rows as dumped; the worker writes state, progress, times and the output model. */
	if (tr_restoring_dump())
	{
		if (inserting)
			tr_wake_at_commit();
		return PointerGetDatum(tuple);
	}
	if (tr_in_background_worker())
		return PointerGetDatum(tr_keep_object(td, tuple, NULL));

	desc = RelationGetDescr(td->tg_relation);
	/* Columns are found by name, and again after a catalog change. */
	if (natts != desc->natts || relid != RelationGetRelid(td->tg_relation))
	{
		for (int c = 0; c < C_NCOLS; c++)
			if ((attnums[c] = store_attnum(desc, column_names[c])) <= 0)
				elog(ERROR, "training: column trainings.%s is missing", column_names[c]);
		natts = desc->natts;
		relid = RelationGetRelid(td->tg_relation);
	}
	read_row(tuple, desc, attnums, &r);
	/* What create_training fills in (allocated here: SPI's memory is gone when we return). */
	description = r.n[C_OUTPUT_MODEL_DESCRIPTION] ? CStringGetTextDatum("") : r.v[C_OUTPUT_MODEL_DESCRIPTION];
	changelog = r.n[C_OUTPUT_MODEL_CHANGELOG] ? CStringGetTextDatum("") : r.v[C_OUTPUT_MODEL_CHANGELOG];
	config = r.n[C_CONFIG] ? DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")) : r.v[C_CONFIG];

	store_api_connect();
	if (inserting)
		check_new(&r);
	else
	{
		read_row(td->tg_trigtuple, desc, attnums, &o);
		if (check_update(&o, &r, desc, attnums))
		{
			store_api_finish();
			return PointerGetDatum(tr_keep_object(td, tuple, NULL));
		}
	}

	/* Writable columns: the same validation and defaults as create_training. */
	if (r.n[C_SOURCE_DATASET_ID])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source_dataset_id is required"),
				 errhint("Pass the id of the dataset to train on (see training.list_datasets()).")));
	/* No lock without a name or owner: they are refused below. */
	named = !r.n[C_OUTPUT_MODEL_NAME] && !r.n[C_OWNER];
	model_key = named ? name_key(&r) : 0;
	model_first = named && model_seen(model_key);
	name_lock = name_lock_of(r.v[C_SOURCE_DATASET_ID]);
	if (model_first)
		lock_name(model_key, LOCK_MODEL);
	else if (named)
		lock_name(name_key(&r), name_lock);
	/* Read what the locks taken make likely; a wrong guess is read again below. */
	guess = model_first ? TR_GUESS_MODEL
		: name_lock == LOCK_NAME_FACE ? TR_GUESS_FACE
		: name_lock == LOCK_NAME_LANDMARK ? TR_GUESS_LANDMARK : TR_GUESS_NONE;
	type = dataset_type(&r, inserting || distinct(&r, &o, C_SOURCE_DATASET_ID, desc, attnums),
						guess, &rd);
	type_lock = strcmp(type, "face") == 0 ? LOCK_NAME_FACE : LOCK_NAME_LANDMARK;
	remember_dataset(r.v[C_SOURCE_DATASET_ID], type_lock);
	if (named)
	{
		remember_model(model_key, rd.name.model_type != NULL);
		/*
		 * No lock that holds the name for our type: the model was deleted since we took its
		 * lock, or the name lock is of the other type (the hint was wrong; a dataset deleted and
		 * created again with its id and the other type). Take the name lock of our type and read
		 * again.
		 */
		if ((model_first && rd.name.model_type == NULL)
			|| (!model_first && name_lock != LOCK_NAME && name_lock != type_lock))
		{
			lock_name(name_key(&r), type_lock);
			store_name_check(r.v[C_OWNER], r.v[C_OUTPUT_MODEL_NAME],
							 CStringGetTextDatum(strcmp(type, "face") == 0 ? "landmark" : "face"),
							 r.v[C_ID], r.n[C_ID], &rd.name);
		}
	}
	if (inserting && !r.n[C_TYPE] && !text_is(r.v[C_TYPE], type))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("training type %s does not match the type %s of dataset %s",
						TextDatumGetCString(r.v[C_TYPE]), type, uuid_string(r.v[C_SOURCE_DATASET_ID])),
				 errhint("Omit type: it is copied from the source dataset.")));
	validate_text("output_model_name", r.n[C_OUTPUT_MODEL_NAME] ? NULL
				  : DatumGetTextPP(r.v[C_OUTPUT_MODEL_NAME]), 200, false);
	{
		text	   *name = DatumGetTextPP(r.v[C_OUTPUT_MODEL_NAME]);

		if (memmem(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name), "==", 2) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("output_model_name must not contain \"==\", got %s", quote_left(name)),
					 errhint("\"name==N\" refers to version N of a model: choose a name without \"==\".")));
	}
	validate_text("output_model_description", DatumGetTextPP(description), 10000, true);
	validate_text("output_model_changelog", DatumGetTextPP(changelog), 10000, true);
	check_model_type(&r, type, &rd);
	{
		tr_config	cfg;

		tr_config_from_sql(&cfg, cstring_to_text(type), DatumGetJsonbP(config));
	}

	if (inserting)
		tr_wake_at_commit();

	/* The row as validated, and its object from the dataset row read above (still SPI's). */
	MemoryContextSwitchTo(caller);
	cols[0] = attnums[C_TYPE];
	vals[0] = CStringGetTextDatum(type);
	cols[1] = attnums[C_OUTPUT_MODEL_DESCRIPTION];
	vals[1] = description;
	cols[2] = attnums[C_OUTPUT_MODEL_CHANGELOG];
	vals[2] = changelog;
	cols[3] = attnums[C_CONFIG];
	vals[3] = config;
	tuple = tr_keep_object(td, heap_modify_tuple_by_cols(tuple, desc, 4, cols, vals, nulls), &rd.ds);
	store_api_finish();
	MemoryContextSwitchTo(caller);
	return PointerGetDatum(tuple);
}

/*
 * training.create_training(source_dataset_id, output_model_name, output_model_description,
 * output_model_changelog, config) → the Training object. Only the INSERT: the trigger above
 * validates, fills in and renders, as it does for an INSERT from any client.
 */
Datum
training_create_training(PG_FUNCTION_ARGS)
{
	Datum		args[5];
	bool		nulls[5];

	Datum		object;

	for (int i = 0; i < 5; i++)
	{
		nulls[i] = PG_ARGISNULL(i);
		args[i] = nulls[i] ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
	if (!store_create_training(args, nulls, &object))
		PG_RETURN_NULL();		/* nothing rendered: a dump being restored writes rows as given */
	PG_RETURN_DATUM(object);
}
