/*
 * config.h: a training config from SQL values, read by the one config reader (trconfig.h).
 */
#ifndef TRAINING_CONFIG_H
#define TRAINING_CONFIG_H

#include "postgres.h"

#include "utils/jsonb.h"

#include "pipeline.h"

/* Read type and config (NULL: refused) into cfg; ereports 22023 naming the key. Returns the type. */
extern tr_type tr_config_from_sql(tr_config *cfg, text *type, Jsonb *config);

#endif
