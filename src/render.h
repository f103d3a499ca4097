/*
 * render.h: the Training object kept with its row (see render.c).
 */
#ifndef TRAINING_RENDER_H
#define TRAINING_RENDER_H

#include "postgres.h"

#include "access/htup.h"
#include "commands/trigger.h"

#include "store.h"

/*
 * The row being written by trigger td (tuple: its new row) with its Training object and
 * object_stale_at set. dataset: the source dataset's row (D_NCOLS values) when the caller read
 * it already, else NULL.
 */
extern HeapTuple tr_keep_object(TriggerData *td, HeapTuple tuple, const ApiRow *dataset);

#endif
