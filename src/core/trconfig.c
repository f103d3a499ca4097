/*
 * trconfig.c: the one reader of a training's config; see trconfig.h for the rules.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "trconfig.h"

/* The keys of a face config; their defaults are tr_config_default's. */
typedef struct key_rule
{
	const char *name;
	int			min;
	size_t		offset;			/* of the int in tr_config */
} key_rule;

static const key_rule face_keys[] = {
	{"min_face_size", 1, offsetof(tr_config, min_face_size)},
	{"sharpness_threshold", 0, offsetof(tr_config, sharpness_threshold)},
};

int
tr_type_parse(const char *type)
{
	if (type != NULL && strcmp(type, "face") == 0)
		return TR_FACE;
	if (type != NULL && strcmp(type, "landmark") == 0)
		return TR_LANDMARK;
	return -1;
}

/* Copy at most TR_QUOTE_MAX bytes of s, not cutting a UTF-8 sequence, with "..." when cut. */
static void
quote(char *dst, size_t len, const char *s)
{
	size_t		n = strlen(s);

	if (n <= TR_QUOTE_MAX)
	{
		snprintf(dst, len, "%s", s);
		return;
	}
	n = TR_QUOTE_MAX;
	while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
		n--;
	snprintf(dst, len, "%.*s...", (int) n, s);
}

static const char *
json_type_name(const cJSON *v)
{
	if (cJSON_IsString(v))
		return "string";
	if (cJSON_IsBool(v))
		return "boolean";
	if (cJSON_IsNull(v))
		return "null";
	if (cJSON_IsArray(v))
		return "array";
	if (cJSON_IsObject(v))
		return "object";
	return "number";
}

static int
refuse(tr_config_error *e, const char *hint, const char *fmt, const char *a, const char *b)
{
	snprintf(e->message, sizeof(e->message), fmt, a, b);
	snprintf(e->hint, sizeof(e->hint), "%s", hint);
	return -1;
}

/* One face key: an integral JSON number from rule->min to INT32_MAX. */
static int
read_int(const cJSON *v, const key_rule *rule, int *out, tr_config_error *e)
{
	double		d;
	char		hint[TR_ERRLEN];
	tr_config	defaults;
	int			dflt;

	tr_config_default(&defaults, TR_FACE);
	dflt = *(const int *) ((const char *) &defaults + rule->offset);
	snprintf(hint, sizeof(hint), "Pass %s as a whole number from %d to 2147483647 (default %d), e.g. {\"%s\": %d}.",
			 rule->name, rule->min, dflt, rule->name, dflt);
	if (!cJSON_IsNumber(v))
		return refuse(e, hint, "config key \"%s\" must be an integer, got a JSON %s",
					  rule->name, json_type_name(v));
	d = v->valuedouble;
	if (!isfinite(d) || d != floor(d) || d < rule->min || d > 2147483647.0)
	{
		char		got[64];

		if (isfinite(d))
			snprintf(got, sizeof(got), "%.17g", d);
		else
			snprintf(got, sizeof(got), "a number out of range");
		snprintf(e->message, sizeof(e->message), "config key \"%s\" must be an integer >= %d, got %s",
				 rule->name, rule->min, got);
		snprintf(e->hint, sizeof(e->hint), "%s", hint);
		return -1;
	}
	*out = (int) d;
	return 0;
}

int
tr_config_read(tr_config *cfg, tr_type type, const char *json, tr_config_error *e)
{
	cJSON	   *root;
	const cJSON *item;
	int			rc = 0;

	tr_config_default(cfg, type);
	root = cJSON_Parse(json ? json : "");
	if (root == NULL || !cJSON_IsObject(root))
	{
		rc = refuse(e, type == TR_FACE
					? "Pass an object such as {\"min_face_size\": 80, \"sharpness_threshold\": 40}, or {}."
					: "Pass {} (landmark trainings take no parameters).",
					"config must be a JSON object, got %s%s", root ? json_type_name(root) : "invalid JSON", "");
		cJSON_Delete(root);
		return rc;
	}
	cJSON_ArrayForEach(item, root)
	{
		const key_rule *rule = NULL;
		char		key[TR_QUOTE_MAX + 8];

		quote(key, sizeof(key), item->string ? item->string : "");
		if (type == TR_LANDMARK)
		{
			rc = refuse(e, "Landmark trainings take no parameters: pass config => '{}'.",
						"unknown config key \"%s\" for a landmark training%s", key, "");
			break;
		}
		for (size_t i = 0; i < sizeof(face_keys) / sizeof(face_keys[0]); i++)
			if (item->string && strcmp(item->string, face_keys[i].name) == 0)
				rule = &face_keys[i];
		if (rule == NULL)
		{
			rc = refuse(e, "Face trainings accept min_face_size (integer >= 1) and sharpness_threshold (integer >= 0).",
						"unknown config key \"%s\" for a face training%s", key, "");
			break;
		}
		if ((rc = read_int(item, rule, (int *) ((char *) cfg + rule->offset), e)) != 0)
			break;
	}
	cJSON_Delete(root);
	return rc;
}
