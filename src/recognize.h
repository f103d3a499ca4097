/*
 * recognize.h: the pipeline's server side (recognize.c).
 */
#ifndef TRAINING_RECOGNIZE_H
#define TRAINING_RECOGNIZE_H

#include "postgres.h"

#include "utils/jsonb.h"

/*
 * What a training would do with one image, as check_image() and evaluate_dataset() show it:
 * {"usable", "reason", "message", "sharpness", "gender"}. why: a tr_skip; sharpness < 0 and
 * p_male < 0: unknown (null).
 */
extern Jsonb *tr_check_result_jsonb(int why, const char *err, double sharpness, double p_male);

#endif
