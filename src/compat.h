/*
 * compat.h: differences between the PostgreSQL versions the server code builds against.
 * Developed and tested on PostgreSQL 15; include it after postgres.h. Code that depends on the
 * server version uses these names instead of testing PG_VERSION_NUM itself.
 */
#ifndef TRAINING_COMPAT_H
#define TRAINING_COMPAT_H

#if PG_VERSION_NUM < 150000
/* PostgreSQL 15 renamed it and made the prefix reserved, not only warned about. */
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/*
 * PostgreSQL 15 asks for shared memory and LWLocks in shmem_request_hook; before, _PG_init asked
 * directly (src/shmem.c).
 */
#if PG_VERSION_NUM >= 150000
#define TR_HAVE_SHMEM_REQUEST_HOOK 1
#endif

/* PostgreSQL 16 made the owner checks one function for every kind of object (src/hooks.c). */
#if PG_VERSION_NUM >= 160000
#define pg_database_ownercheck(db, role) object_ownercheck(DatabaseRelationId, (db), (role))
#endif

/* The ProcessUtility hook's parameters (readOnlyTree since PostgreSQL 14), src/hooks.c. */
#if PG_VERSION_NUM >= 140000
#define TR_PROCESS_UTILITY_PARAMS \
	PlannedStmt *pstmt, const char *queryString, bool readOnlyTree, \
	ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *queryEnv, \
	DestReceiver *dest, QueryCompletion *qc
#define TR_PROCESS_UTILITY_ARGS \
	pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc
#else
#define TR_PROCESS_UTILITY_PARAMS \
	PlannedStmt *pstmt, const char *queryString, \
	ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *queryEnv, \
	DestReceiver *dest, QueryCompletion *qc
#define TR_PROCESS_UTILITY_ARGS \
	pstmt, queryString, context, params, queryEnv, dest, qc
#endif

/*
 * pg_database.datconnlimit of a database left invalid by an interrupted DROP DATABASE (minor
 * releases of November 2023 on); older headers lack the name (src/launcher.c). Spelt as
 * catalog/pg_database.h spells it, so that either may come first.
 */
#ifndef DATCONNLIMIT_INVALID_DB
#define DATCONNLIMIT_INVALID_DB -2
#endif

#endif
