/*
 * deep.h - the pretrained face networks inside the server: the
 * training.model_path GUC and per-backend cached networks.
 */
#ifndef TRAINING_DEEP_H
#define TRAINING_DEEP_H

#include "nn/nn.h"

/* Register the deep feature kind (_PG_init); the settings are in guc.c. */
extern void tr_deep_init(void);
/* Assign hooks of training.face_features and training.model_path. */
extern void tr_assign_face_features(int newval, void *extra);
extern void tr_assign_model_path(const char *newval, void *extra);
/* The directory the models are read from (GUC or the default). */
extern const char *tr_model_dir(void);

/* The networks, loaded on first use; ereport(ERROR) when the files are unusable. */
extern const nn_facenet *tr_facenet(void);
extern const nn_detector *tr_detector(void);
extern const nn_agegender *tr_agegender(void);

#endif							/* TRAINING_DEEP_H */
