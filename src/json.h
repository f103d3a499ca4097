/*
 * json.h: the one JSON builder of the extension's C code (see json.c).
 *
 * Every object, array, NOTIFY payload and metrics document the server side emits is built
 * here, as jsonb values pushed in order; the pure core (src/core) emits no JSON, it returns
 * structs. Keys are written as given; jsonb sorts them when the object is closed.
 *
 *	JsonBuilder b;
 *	jb_init(&b);
 *	jb_begin_object(&b);
 *	jb_key(&b, "id"); jb_uuid(&b, id, NULL);
 *	jb_end_object(&b);
 *	Jsonb *j = jb_finish(&b);
 */
#ifndef TRAINING_JSON_H
#define TRAINING_JSON_H

#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#define JB_MAX_DEPTH 16

typedef struct JsonBuilder
{
	JsonbParseState *ps;
	JsonbValue *result;			/* the value, once the outermost container is closed */
	int			depth;
	bool		in_object[JB_MAX_DEPTH];
} JsonBuilder;

extern void jb_init(JsonBuilder *b);
extern void jb_begin_object(JsonBuilder *b);
extern void jb_end_object(JsonBuilder *b);
extern void jb_begin_array(JsonBuilder *b);
extern void jb_end_array(JsonBuilder *b);

/* The key of the next value (objects only). */
extern void jb_key(JsonBuilder *b, const char *key);

/* Values: the value of the last key in an object, or the next element of an array. */
extern void jb_null(JsonBuilder *b);
extern void jb_bool(JsonBuilder *b, bool v);
extern void jb_string(JsonBuilder *b, const char *s, int len);
extern void jb_cstring(JsonBuilder *b, const char *s);	/* NULL: null */
extern void jb_text(JsonBuilder *b, text *t);			/* NULL: null */
extern void jb_int(JsonBuilder *b, int64 v);
extern void jb_numeric(JsonBuilder *b, Numeric n);
/* A double, shortest exact form; NaN and infinities as strings, as to_jsonb writes them. */
extern void jb_float(JsonBuilder *b, double v);
/* A double rounded to `decimals` places (scores, distances, seconds). */
extern void jb_float_fixed(JsonBuilder *b, double v, int decimals);
/* A uuid as its 36-character form, after an optional prefix ("image://"). */
extern void jb_uuid(JsonBuilder *b, Datum uuid, const char *prefix);
/* A time as the seed writes it: UTC, "YYYY-MM-DD HH:MM:SS.ffffff". */
extern void jb_time(JsonBuilder *b, TimestampTz t);
/* A jsonb document, embedded as it is. */
extern void jb_jsonb(JsonBuilder *b, Jsonb *j);

/* The document, once the outermost container is closed (in the current memory context). */
extern Jsonb *jb_finish(JsonBuilder *b);
/* The same as text, e.g. for a NOTIFY payload. */
extern char *jb_finish_cstring(JsonBuilder *b);

/* The uuid's canonical text, after an optional prefix (palloc'd). */
extern char *jb_uuid_string(Datum uuid, const char *prefix);

#endif
