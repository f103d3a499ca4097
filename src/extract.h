/*
 * extract.h: the embedding store filled in the background (src/extract.c).
 */
#ifndef TRAINING_EXTRACT_H
#define TRAINING_EXTRACT_H

#include "postgres.h"

/*
 * In a worker with no training to run: measure one batch of the database's images that have no
 * kept measurement for the feature kind a training of their dataset would use, and keep them.
 * Returns true when it measured something (then look for trainings before the next batch),
 * false when nothing is left or another worker of the database does this.
 */
extern bool tr_extract_batch(Oid dboid);

#endif
