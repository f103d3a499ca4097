/*
 * deepfeat.h - the learned face embedding as feature kinds (contract 10):
 * "face-api-resnet-v1" and "face-api-resnet-aligned-v1", 128 floats,
 * L2-normalised descriptors of face-api's face recognition network (of the
 * face's region, or of the square its 68 landmarks align), with the tiny
 * face detector as the kinds' face locator.  The networks come from the process's one cache
 * (netcache.h), read from the model directory of the training or recognition
 * at hand (tr_features.model_dir).  Pure C, no PostgreSQL headers.
 */
#ifndef TRAINING_DEEPFEAT_H
#define TRAINING_DEEPFEAT_H

#include "trfeatures.h"

#define TR_DEEP_FEATURES_NAME "face-api-resnet-v1"
/* The same network on the face aligned by face-api's 68-point landmark network. */
#define TR_DEEP_ALIGNED_NAME "face-api-resnet-aligned-v1"

/* The kinds, as registered (model_dir NULL: copy one and set model_dir to use it). */
extern const tr_features tr_deep_kind;
extern const tr_features tr_deep_aligned_kind;

/* Whether the landmark network of the aligned kind loads from model_dir. */
extern int	tr_deep_aligned_available(const char *model_dir);

/*
 * Gender of a face region (face-api's age/gender network, from model_dir):
 * *p_male in 0..1 (female = 1 - p_male). For dataset evaluation's
 * gender_statistics. Returns 0, or -1 with a message.
 */
extern int	tr_deep_gender(const char *model_dir, const tr_image *img, tr_box r, double *p_male,
						   char *err, size_t errlen);

/* Whether the gender network loads from model_dir (into the network cache). */
extern int	tr_deep_gender_available(const char *model_dir);

/* Whether the model files of the kind are present in dir. */
extern int	tr_deep_models_present(const char *dir);

#endif
