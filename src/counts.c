/*
 * counts.c: the trainings_count trigger, which keeps training.training_counts (the number of
 * trainings per owner and state) so that list_trainings' total is a sum over a few rows instead
 * of a count of every training (sql/install/70_counts.sql). Each backend writes its own slot.
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "store.h"

PG_FUNCTION_INFO_V1(training_trainings_count);

/* The owner and state of a trainings row. */
static void
owner_state(Relation rel, HeapTuple tuple, Datum *owner, Datum *state)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool		isnull;

	*owner = heap_getattr(tuple, store_attnum(desc, "owner"), desc, &isnull);
	if (isnull)
		elog(ERROR, "training: a training without owner");
	*state = heap_getattr(tuple, store_attnum(desc, "state"), desc, &isnull);
	if (isnull)
		elog(ERROR, "training: a training without state");
}

/* AFTER INSERT OR DELETE OR UPDATE OF owner, state (row) and AFTER TRUNCATE (statement). */
Datum
training_trainings_count(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Datum		owner,
				state,
				old_owner,
				old_state;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event))
		elog(ERROR, "training: _trainings_count must be an AFTER trigger");
	/* The counts are not dumped: a restore counts the trainings it writes, like any insert. */
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		store_counts_clear();
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "training: _trainings_count must be a row trigger, or a TRUNCATE trigger");
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		owner_state(td->tg_relation, td->tg_trigtuple, &owner, &state);
		store_count_add(owner, state, 1);
	}
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		owner_state(td->tg_relation, td->tg_trigtuple, &owner, &state);
		store_count_add(owner, state, -1);
	}
	else
	{
		owner_state(td->tg_relation, td->tg_trigtuple, &old_owner, &old_state);
		owner_state(td->tg_relation, td->tg_newtuple, &owner, &state);
		if (strcmp(NameStr(*DatumGetName(owner)), NameStr(*DatumGetName(old_owner))) != 0
			|| strcmp(TextDatumGetCString(state), TextDatumGetCString(old_state)) != 0)
		{
			store_count_add(old_owner, old_state, -1);
			store_count_add(owner, state, 1);
		}
	}
	return PointerGetDatum(NULL);
}
