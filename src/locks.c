/*
 * locks.c: advisory locks in the extension's own lock space (locks.h), and the models_delete
 * trigger, which takes one.
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

PG_FUNCTION_INFO_V1(training_models_delete);

int64
tr_model_lock_key(const char *owner, const text *name)
{
	Oid			role = get_role_oid(owner, true);	/* InvalidOid for a dropped role */
	uint32		hash = DatumGetUInt32(hash_any((const unsigned char *) VARDATA_ANY(name),
											   VARSIZE_ANY_EXHDR(name)));

	return (int64) (((uint64) role << 32) | hash) | (role == InvalidOid && hash == 0);
}

int64
tr_dataset_lock_key(Datum dataset_id)
{
	return DatumGetInt64(hash_any_extended(DatumGetUUIDP(dataset_id)->data, UUID_LEN, 0));
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
