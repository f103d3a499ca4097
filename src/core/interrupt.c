/*
 * interrupt.c: the hook behind tr_interrupted() (interrupt.h).
 */
#include "interrupt.h"

tr_interrupt_fn tr_interrupt_hook = 0;
