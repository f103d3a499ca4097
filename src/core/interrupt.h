/*
 * interrupt.h: a cancel request from outside the core (statement_timeout, pg_cancel_backend, a
 * training deleted while it runs). Long loops of the core poll tr_interrupted() and unwind with
 * TR_CANCELED, freeing what they hold; the caller then reports the cancel its own way.
 *
 * The server installs the hook once, at load; it only reads flags (it never jumps), so the core
 * stays free of PostgreSQL headers and of longjmp. Without a hook nothing is ever interrupted.
 */
#ifndef TRAINING_INTERRUPT_H
#define TRAINING_INTERRUPT_H

/* Returned by core functions that stopped because tr_interrupted() said so. */
#define TR_CANCELED (-5)
/*
 * Returned by core functions that stopped because a callback of the caller said "stop"
 * (pipeline.h, trainloop.h): the caller knows why (e.g. it saved an error to report).
 * Either way the core has freed everything it allocated.
 */
#define TR_STOPPED (-6)

typedef int (*tr_interrupt_fn) (void);

extern tr_interrupt_fn tr_interrupt_hook;

static inline int
tr_interrupted(void)
{
	return tr_interrupt_hook != 0 && tr_interrupt_hook();
}

#endif
