/*
 * deepfeat.h - the learned face embedding as a feature kind (contract 10):
 * "face-api-resnet-v1", 128 floats, L2-normalised descriptors of
 * face-api's face recognition network, with the tiny face detector as the
 * kind's face locator.  Pure C, no PostgreSQL headers.
 */
#ifndef TRAINING_DEEPFEAT_H
#define TRAINING_DEEPFEAT_H

#include "trfeatures.h"

#define TR_DEEP_FEATURES_NAME "face-api-resnet-v1"

/*
 * The kind; its networks are loaded on first use from the directory that
 * model_dir() returns at that time (reloaded when it changes).
 */
extern const tr_features *tr_deep_features(const char *(*model_dir) (void));

/*
 * Gender of a face region (face-api's age/gender network, loaded on first use
 * from the same directory): *p_male in 0..1 (female = 1 - p_male). For
 * dataset evaluation's gender_statistics. Returns 0, or -1 with a message.
 */
extern int	tr_deep_gender(const tr_image *img, tr_box r, double *p_male,
						   char *err, size_t errlen);

/* Whether the model files of the kind are present in dir. */
extern int	tr_deep_models_present(const char *dir);

#endif
