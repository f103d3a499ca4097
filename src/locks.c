/*
 * locks.c: advisory locks in the extension's own lock space (locks.h), and the SQL entry points
 * that take them: the models_delete trigger and lock_dataset().
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#include "locks.h"
#include "store.h"

PG_FUNCTION_INFO_V1(training_models_delete);
PG_FUNCTION_INFO_V1(training_lock_dataset);

/* An owner's key: the role's OID (InvalidOid for a dropped role) and a hash; never 0. */
static int64
owner_key(const char *owner, const void *data, int len)
{
	Oid			role = get_role_oid(owner, true);
	uint32		hash = DatumGetUInt32(hash_any((const unsigned char *) data, len));

	return (int64) (((uint64) role << 32) | hash) | (role == InvalidOid && hash == 0);
}

int64
tr_model_lock_key(const char *owner, const text *name)
{
	return owner_key(owner, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
}

int64
tr_dataset_lock_key(const char *owner, Datum dataset_id)
{
	return owner_key(owner, DatumGetUUIDP(dataset_id)->data, UUID_LEN);
}

void
tr_lock_xact(int64 key, int space, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) ((uint64) key >> 32), (uint32) key, space);
	(void) LockAcquire(&tag, mode, false, false);
}

/* A column of a table by name (the trigger's table is the extension's own). */
static AttrNumber
column(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped &&
			strcmp(NameStr(TupleDescAttr(desc, i)->attname), name) == 0)
			return i + 1;
	elog(ERROR, "training: column \"%s\" not found", name);
	return InvalidAttrNumber;	/* not reached */
}

/*
 * Trigger models_delete (BEFORE DELETE ON training.models): a model is deleted only after the
 * creations of trainings that found it have committed. They hold its live lock shared
 * (src/validate.c); this takes it exclusive.
 */
Datum
training_models_delete(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	Datum		owner,
				name;
	bool		owner_null,
				name_null;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_DELETE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("training._models_delete() must run as a row trigger on DELETE")));
	desc = RelationGetDescr(td->tg_relation);
	owner = heap_getattr(td->tg_trigtuple, column(desc, "owner"), desc, &owner_null);
	name = heap_getattr(td->tg_trigtuple, column(desc, "name"), desc, &name_null);
	if (!owner_null && !name_null)
		tr_lock_xact(tr_model_lock_key(NameStr(*DatumGetName(owner)), DatumGetTextPP(name)),
					 TR_LOCK_MODEL, ExclusiveLock);
	return PointerGetDatum(td->tg_trigtuple);
}

/*
 * training.lock_dataset(dataset_id uuid): hold the dataset's evaluation lock until the end of the
 * transaction. evaluate_dataset() takes it first, so evaluations of a dataset take turns (two
 * would lock its images in different orders); a client may take it to keep evaluations out while
 * it changes the dataset. Only for a dataset the caller can see (P0002 otherwise).
 */
Datum
training_lock_dataset(PG_FUNCTION_ARGS)
{
	Datum		id = PG_GETARG_DATUM(0);
	char	   *owner;

	store_api_connect();
	owner = store_api_dataset_owner(id);
	if (owner == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("dataset %s not found", DatumGetCString(DirectFunctionCall1(uuid_out, id))),
				 errhint("Check the id with training.list_datasets().")));
	store_api_finish();
	tr_lock_xact(tr_dataset_lock_key(owner, id), TR_LOCK_DATASET, ExclusiveLock);
	PG_RETURN_VOID();
}
