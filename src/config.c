/*
 * config.c: the SQL face of the config reader (src/core/trconfig.c): validate_config() and
 * effective_config(). The triggers, check_image() and evaluate_dataset() call these, and the
 * worker calls the reader directly, so a config means the same everywhere.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "config.h"
#include "json.h"
#include "trconfig.h"

PG_FUNCTION_INFO_V1(training_validate_config);
PG_FUNCTION_INFO_V1(training_effective_config);

/* The largest config accepted, in bytes of its jsonb (a few settings take a hundred). */
#define TR_CONFIG_MAX_BYTES 65536

tr_type
tr_config_from_sql(tr_config *cfg, text *type, Jsonb *config)
{
	char	   *t = type ? text_to_cstring(type) : NULL;
	int			ty = tr_type_parse(t);
	tr_config_error e;
	char	   *json;

	if (ty < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dataset type must be face or landmark, got %s",
						t ? quote_literal_cstr(pnstrdup(t, Min(strlen(t), TR_QUOTE_MAX))) : "NULL"),
				 errhint("Pass type => 'face' or type => 'landmark'.")));
	if (config == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config must be a JSON object, got NULL"),
				 errhint("Pass {} for the defaults.")));
	/* A few numbers: refuse a large object before it is printed and parsed (memory, time). */
	if (VARSIZE(config) > TR_CONFIG_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("config is too large: %zu bytes, at most %d", (size_t) VARSIZE(config), TR_CONFIG_MAX_BYTES),
				 errhint("A config holds a few settings, e.g. {\"min_face_size\": 40}; see training.validate_config().")));
	json = JsonbToCString(NULL, &config->root, VARSIZE(config));
	if (tr_config_read(cfg, (tr_type) ty, json, &e) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", e.message),
				 errhint("%s", e.hint)));
	pfree(json);
	return (tr_type) ty;
}

/* training.validate_config(type text, config jsonb) → void; 22023 naming the key. */
Datum
training_validate_config(PG_FUNCTION_ARGS)
{
	tr_config	cfg;

	tr_config_from_sql(&cfg, PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
					   PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1));
	PG_RETURN_VOID();
}

/* training.effective_config(type text, config jsonb) → jsonb with the defaults filled in. */
Datum
training_effective_config(PG_FUNCTION_ARGS)
{
	tr_config	cfg;
	JsonBuilder b;

	tr_config_from_sql(&cfg, PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
					   PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1));
	jb_init(&b);
	jb_begin_object(&b);
	if (cfg.type == TR_FACE)
	{
		jb_key(&b, "min_face_size");
		jb_int(&b, cfg.min_face_size);
		jb_key(&b, "sharpness_threshold");
		jb_int(&b, cfg.sharpness_threshold);
	}
	jb_end_object(&b);
	PG_RETURN_JSONB_P(jb_finish(&b));
}
