/*
 * locks.c: advisory locks in the extension's own lock space (locks.h), and the models_delete
 * trigger, which takes one.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "locks.h"

PG_FUNCTION_INFO_V1(training_models_delete);

static int64
text_key(const char *data, int len)
{
	return DatumGetInt64(DirectFunctionCall2Coll(hashtextextended, DEFAULT_COLLATION_OID,
												 PointerGetDatum(cstring_to_text_with_len(data, len)),
												 Int64GetDatum(0)));
}

int64
tr_model_lock_key(bool live, const char *owner, const text *name)
{
	StringInfoData key;

	initStringInfo(&key);
	appendStringInfo(&key, "%s%s:", live ? "training.model-live:" : "training.model:", owner);
	appendBinaryStringInfo(&key, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
	return text_key(key.data, key.len);
}

void
tr_lock_xact(int64 key, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (key >> 32), (uint32) key, TR_LOCK_SPACE);
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
		tr_lock_xact(tr_model_lock_key(true, NameStr(*DatumGetName(owner)), DatumGetTextPP(name)),
					 ExclusiveLock);
	return PointerGetDatum(td->tg_trigtuple);
}
