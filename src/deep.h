/*
 * deep.h - the pretrained face networks inside the server: the
 * training.model_path GUC and per-backend cached networks.
 */
#ifndef TRAINING_DEEP_H
#define TRAINING_DEEP_H

#include "nn/nn.h"

extern char *tr_model_path;

/* training.face_features */
#define TR_FACE_FEATURES_AUTO 0
#define TR_FACE_FEATURES_DEEP 1
#define TR_FACE_FEATURES_CLASSIC 2
extern int	tr_face_features;

/* Define training.model_path and training.face_features; register the deep kind (_PG_init). */
extern void tr_deep_init(void);
/* The directory the models are read from (GUC or the default). */
extern const char *tr_model_dir(void);

/* The networks, loaded on first use; ereport(ERROR) when the files are unusable. */
extern const nn_facenet *tr_facenet(void);
extern const nn_detector *tr_detector(void);
extern const nn_agegender *tr_agegender(void);

#endif							/* TRAINING_DEEP_H */
