/*
 * test_trconfig.c: the one config reader: integral numbers, defaults, refusals naming the key,
 * and user input quoted at most TR_QUOTE_MAX bytes without cutting a UTF-8 character.
 */
#include <string.h>

#include "trconfig.h"
#include "unit.h"

static int
reads(tr_type type, const char *json, tr_config *cfg, tr_config_error *e)
{
	memset(e, 0, sizeof(*e));
	return tr_config_read(cfg, type, json, e);
}

void
test_trconfig(void)
{
	tr_config	cfg;
	tr_config_error e;
	char		json[1024];

	CHECK(tr_type_parse("face") == TR_FACE);
	CHECK(tr_type_parse("landmark") == TR_LANDMARK);
	CHECK(tr_type_parse("voice") == -1);
	CHECK(tr_type_parse(NULL) == -1);

	/* Defaults, and integral numbers written any way mean the same. */
	CHECK(reads(TR_FACE, "{}", &cfg, &e) == 0);
	CHECK(cfg.min_face_size == 80 && cfg.sharpness_threshold == 40);
	CHECK(reads(TR_FACE, "{\"min_face_size\": 80.0, \"sharpness_threshold\": 4e1}", &cfg, &e) == 0);
	CHECK(cfg.min_face_size == 80 && cfg.sharpness_threshold == 40);
	CHECK(reads(TR_FACE, "{\"min_face_size\": 1, \"sharpness_threshold\": 0}", &cfg, &e) == 0);
	CHECK(cfg.min_face_size == 1 && cfg.sharpness_threshold == 0);
	CHECK(reads(TR_FACE, "{\"min_face_size\": 2147483647}", &cfg, &e) == 0);
	CHECK(cfg.min_face_size == 2147483647);
	CHECK(cfg.sharpness_threshold == 40);
	CHECK(reads(TR_LANDMARK, "{}", &cfg, &e) == 0);

	/* Refusals name the key and what is allowed. */
	CHECK(reads(TR_FACE, "{\"min_face_size\": 80.5}", &cfg, &e) == -1);
	CHECK(strstr(e.message, "\"min_face_size\" must be an integer >= 1, got 80.5") != NULL);
	CHECK(strstr(e.hint, "default 80") != NULL);
	CHECK(reads(TR_FACE, "{\"min_face_size\": 0}", &cfg, &e) == -1);
	CHECK(reads(TR_FACE, "{\"sharpness_threshold\": -1}", &cfg, &e) == -1);
	CHECK(reads(TR_FACE, "{\"min_face_size\": 2147483648}", &cfg, &e) == -1);
	CHECK(reads(TR_FACE, "{\"min_face_size\": 1e400}", &cfg, &e) == -1);
	CHECK(strstr(e.message, "out of range") != NULL);
	CHECK(reads(TR_FACE, "{\"min_face_size\": \"80\"}", &cfg, &e) == -1);
	CHECK(strstr(e.message, "got a JSON string") != NULL);
	CHECK(reads(TR_FACE, "{\"min_face_size\": null}", &cfg, &e) == -1);
	CHECK(strstr(e.message, "got a JSON null") != NULL);
	CHECK(reads(TR_FACE, "{\"min_size\": 3}", &cfg, &e) == -1);
	CHECK(strstr(e.message, "unknown config key \"min_size\" for a face training") != NULL);
	CHECK(reads(TR_LANDMARK, "{\"min_face_size\": 80}", &cfg, &e) == -1);
	CHECK(strstr(e.message, "landmark") != NULL);
	CHECK(reads(TR_FACE, "[]", &cfg, &e) == -1);
	CHECK(strstr(e.message, "must be a JSON object, got array") != NULL);
	CHECK(reads(TR_FACE, "not json", &cfg, &e) == -1);
	CHECK(reads(TR_FACE, NULL, &cfg, &e) == -1);

	/* A long key is quoted at most TR_QUOTE_MAX bytes, whole UTF-8 characters only. */
	strcpy(json, "{\"");
	for (int i = 0; i < 150; i++)
		strcat(json, "\xc3\xa9");		/* é: two bytes each */
	strcat(json, "\": 1}");
	CHECK(reads(TR_FACE, json, &cfg, &e) == -1);
	{
		const char *q = strchr(e.message, '"') + 1;
		const char *end = strstr(q, "...\"");

		CHECK(end != NULL && end - q <= TR_QUOTE_MAX && (end - q) % 2 == 0);
	}
}
