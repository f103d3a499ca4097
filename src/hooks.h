/*
 * hooks.h: the code of the extension that runs in client backends (src/hooks.c).
 */
#ifndef TRAINING_HOOKS_H
#define TRAINING_HOOKS_H

/*
 * A training was inserted: wake the launcher when the transaction commits, or warn, once per
 * statement, that nothing will process it (no preloaded library, training.enabled off).
 */
extern void tr_wake_at_commit(void);

/* Install the ProcessUtility hook (_PG_init, shared_preload_libraries only). */
extern void tr_hooks_init(void);

#endif
