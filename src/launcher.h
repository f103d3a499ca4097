/*
 * launcher.h: the launcher process (src/launcher.c).
 */
#ifndef TRAINING_LAUNCHER_H
#define TRAINING_LAUNCHER_H

#include "postgres.h"

/* Register the launcher as a background worker (_PG_init, shared_preload_libraries only). */
extern void tr_launcher_register(void);

PGDLLEXPORT void tr_launcher_main(Datum arg);

#endif
