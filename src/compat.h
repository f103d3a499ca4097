/*
 * compat.h: differences between the PostgreSQL versions the server code builds against.
 * Developed and tested on PostgreSQL 15; include it after postgres.h.
 */
#ifndef TRAINING_COMPAT_H
#define TRAINING_COMPAT_H

#if PG_VERSION_NUM < 150000
/* PostgreSQL 15 renamed it and made the prefix reserved, not only warned about. */
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

#endif
