/*
 * hooks.h: the code of the extension that runs in client backends (src/hooks.c).
 */
#ifndef TRAINING_HOOKS_H
#define TRAINING_HOOKS_H

/* Install the ProcessUtility hook (_PG_init, shared_preload_libraries only). */
extern void tr_hooks_init(void);

#endif
