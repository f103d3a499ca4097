/*
 * trconfig.h: the one reader of a training's config (JSON), for every caller: validate_config()
 * and the triggers (through it), the worker, check_image() and evaluate_dataset().
 *
 * Pure computation (no PostgreSQL headers). The rules, per dataset type:
 *   face:     min_face_size (integer >= 1, default 80), sharpness_threshold (integer >= 0, default 40)
 *   landmark: no keys
 * A JSON number is an integer when its value is integral: 80, 80.0 and 8e1 all mean 80. Values
 * up to 2147483647. Unknown keys, other JSON types and fractions are refused, naming the key.
 */
#ifndef TRAINING_TRCONFIG_H
#define TRAINING_TRCONFIG_H

#include <stddef.h>

#include "pipeline.h"

/* Longest user input quoted in a message (characters are bytes here; UTF-8 is cut safely). */
#define TR_QUOTE_MAX 100

/* Why a config was refused: a message and a hint, in the caller's buffers. */
typedef struct tr_config_error
{
	char		message[TR_ERRLEN];
	char		hint[TR_ERRLEN];
} tr_config_error;

/* Parse a dataset type ("face" or "landmark"); -1 when it is neither. */
int			tr_type_parse(const char *type);

/*
 * Read config (JSON text of an object) for a dataset type into cfg, over the defaults of that
 * type (tr_config_default). Returns 0, or -1 with *e filled in.
 */
int			tr_config_read(tr_config *cfg, tr_type type, const char *json, tr_config_error *e);

#endif
