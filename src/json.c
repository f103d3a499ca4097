/*
 * json.c: the one JSON builder of the extension's C code (see json.h).
 *
 * Values are pushed as JsonbValues, so a document is never printed and parsed again; the
 * scalars are formatted as the seed writes them (times in UTC with microseconds, version
 * numbers with one decimal, uuids in canonical form).
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/uuid.h"

#include "json.h"

void
jb_init(JsonBuilder *b)
{
	b->ps = NULL;
	b->result = NULL;
	b->depth = 0;
}

static void
begin(JsonBuilder *b, bool object)
{
	JsonbIteratorToken tok = object ? WJB_BEGIN_OBJECT : WJB_BEGIN_ARRAY;

	if (b->depth >= JB_MAX_DEPTH)
		elog(ERROR, "training: JSON nested deeper than %d levels", JB_MAX_DEPTH);
	b->in_object[b->depth++] = object;
	b->result = pushJsonbValue(&b->ps, tok, NULL);
}

static void
end(JsonBuilder *b, bool object)
{
	Assert(b->depth > 0 && b->in_object[b->depth - 1] == object);
	b->depth--;
	b->result = pushJsonbValue(&b->ps, object ? WJB_END_OBJECT : WJB_END_ARRAY, NULL);
}

void
jb_begin_object(JsonBuilder *b)
{
	begin(b, true);
}

void
jb_end_object(JsonBuilder *b)
{
	end(b, true);
}

void
jb_begin_array(JsonBuilder *b)
{
	begin(b, false);
}

void
jb_end_array(JsonBuilder *b)
{
	end(b, false);
}

void
jb_key(JsonBuilder *b, const char *key)
{
	JsonbValue	k;

	Assert(b->depth > 0 && b->in_object[b->depth - 1]);
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(&b->ps, WJB_KEY, &k);
}

/* Push a scalar (or a binary container) where the builder stands. */
static void
push(JsonBuilder *b, JsonbValue *v)
{
	Assert(b->depth > 0);
	pushJsonbValue(&b->ps, b->in_object[b->depth - 1] ? WJB_VALUE : WJB_ELEM, v);
}

void
jb_null(JsonBuilder *b)
{
	JsonbValue	v;

	v.type = jbvNull;
	push(b, &v);
}

void
jb_bool(JsonBuilder *b, bool value)
{
	JsonbValue	v;

	v.type = jbvBool;
	v.val.boolean = value;
	push(b, &v);
}

void
jb_string(JsonBuilder *b, const char *s, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = len;
	push(b, &v);
}

void
jb_cstring(JsonBuilder *b, const char *s)
{
	if (s == NULL)
		jb_null(b);
	else
		jb_string(b, s, strlen(s));
}

void
jb_text(JsonBuilder *b, text *t)
{
	if (t == NULL)
		jb_null(b);
	else
		jb_string(b, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

void
jb_numeric(JsonBuilder *b, Numeric n)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = n;
	push(b, &v);
}

void
jb_int(JsonBuilder *b, int64 i)
{
	jb_numeric(b, int64_to_numeric(i));
}

void
jb_float(JsonBuilder *b, double f)
{
	if (isnan(f) || isinf(f))
		jb_cstring(b, DatumGetCString(DirectFunctionCall1(float8out, Float8GetDatum(f))));
	else if (f == floor(f) && fabs(f) < 1e15)
		jb_numeric(b, int64_to_numeric((int64) f));	/* the same number, without printing it */
	else
		jb_numeric(b, DatumGetNumeric(DirectFunctionCall1(float8_numeric, Float8GetDatum(f))));
}

void
jb_float_fixed(JsonBuilder *b, double f, int decimals)
{
	char		buf[64];

	if (isnan(f) || isinf(f))
	{
		jb_float(b, f);
		return;
	}
	snprintf(buf, sizeof(buf), "%.*f", decimals, f);
	jb_numeric(b, DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
													  ObjectIdGetDatum(InvalidOid),
													  Int32GetDatum(-1))));
}

char *
jb_uuid_string(Datum d, const char *prefix)
{
	static const char hex[] = "0123456789abcdef";
	pg_uuid_t  *u = DatumGetUUIDP(d);
	size_t		plen = prefix ? strlen(prefix) : 0;
	char	   *s = palloc(plen + 37);
	char	   *p = s + plen;

	if (plen)
		memcpy(s, prefix, plen);
	for (int i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u->data[i] >> 4];
		*p++ = hex[u->data[i] & 0x0f];
	}
	*p = '\0';
	return s;
}

void
jb_uuid(JsonBuilder *b, Datum d, const char *prefix)
{
	jb_cstring(b, jb_uuid_string(d, prefix));
}

/* Write n as exactly width decimal digits (n >= 0, n < 10^width) and return the end. */
static char *
digits(char *p, int n, int width)
{
	for (int i = width - 1; i >= 0; i--)
	{
		p[i] = '0' + n % 10;
		n /= 10;
	}
	return p + width;
}

void
jb_time(JsonBuilder *b, TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;
	char		buf[64];
	char	   *p;

	if (TIMESTAMP_NOT_FINITE(t))
	{
		jb_cstring(b, TIMESTAMP_IS_NOBEGIN(t) ? "-infinity" : "infinity");
		return;
	}
	/* No time zone argument: the broken-down time is UTC. */
	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	if (tm.tm_year < 1 || tm.tm_year > 9999)
	{
		/* Outside four-digit years (BC or far future): let snprintf widen the year. */
		snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d.%06d", tm.tm_year, tm.tm_mon,
				 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
		jb_string(b, pstrdup(buf), strlen(buf));
		return;
	}
	p = palloc(27);
	{
		char	   *q = digits(p, tm.tm_year, 4);

		*q++ = '-';
		q = digits(q, tm.tm_mon, 2);
		*q++ = '-';
		q = digits(q, tm.tm_mday, 2);
		*q++ = ' ';
		q = digits(q, tm.tm_hour, 2);
		*q++ = ':';
		q = digits(q, tm.tm_min, 2);
		*q++ = ':';
		q = digits(q, tm.tm_sec, 2);
		*q++ = '.';
		q = digits(q, (int) fsec, 6);
		*q = '\0';
	}
	jb_string(b, p, 26);
}

void
jb_jsonb(JsonBuilder *b, Jsonb *j)
{
	JsonbValue	v;

	v.type = jbvBinary;
	v.val.binary.data = &j->root;
	v.val.binary.len = VARSIZE(j) - VARHDRSZ;
	push(b, &v);
}

Jsonb *
jb_finish(JsonBuilder *b)
{
	Assert(b->depth == 0 && b->result != NULL);
	return JsonbValueToJsonb(b->result);
}

char *
jb_finish_cstring(JsonBuilder *b)
{
	Jsonb	   *j = jb_finish(b);

	return JsonbToCString(NULL, &j->root, VARSIZE(j));
}
