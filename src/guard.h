/*
 * guard.h: who may write what (see guard.c).
 */
#ifndef TRAINING_GUARD_H
#define TRAINING_GUARD_H

/* True in a background worker of this extension (the launcher, the training workers). */
extern bool tr_in_background_worker(void);

/* True while a superuser restores a dump: rows are then written as dumped. */
extern bool tr_restoring_dump(void);

#endif
