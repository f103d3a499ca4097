/*
 * deepfeat.h - the learned face embedding as a feature kind (contract 10):
 * "face-api-resnet-v1", 128 floats, L2-normalised descriptors of
 * face-api's face recognition network, with the tiny face detector as the
 * kind's face locator.  Pure C, no PostgreSQL headers.
 */
#ifndef TRAINING_DEEPFEAT_H
#define TRAINING_DEEPFEAT_H

#include "features.h"

#define TR_DEEP_FEATURES_NAME "face-api-resnet-v1"

/*
 * The kind; its networks are loaded on first use from the directory that
 * model_dir() returns at that time (reloaded when it changes).
 */
extern const tr_features *tr_deep_features(const char *(*model_dir) (void));

/* Whether the model files of the kind are present in dir. */
extern int	tr_deep_models_present(const char *dir);

#endif
