/*
 * deep.h - the pretrained face networks inside the server: the model directory of
 * training.model_path, the feature kind of training.face_features, and the networks of the
 * core's cache (src/core/netcache.h) with PostgreSQL errors.
 */
#ifndef TRAINING_DEEP_H
#define TRAINING_DEEP_H

#include "nn/nn.h"
#include "pipeline.h"

/* The directory the models are read from (training.model_path, or the installation's default). */
extern const char *tr_model_dir(void);

/*
 * Fill a config's feature kind from training.face_features (face trainings; "auto" stays
 * "auto" until tr_resolve_features) and its model directory; ereport(ERROR) when it does not fit.
 */
extern void tr_config_set_server_features(tr_config *cfg);

/*
 * A config as the server runs it: training.max_image_pixels, the feature kind of
 * training.face_features resolved now ("auto" decided), the model directory; ereport(ERROR, 55000)
 * when the kind cannot be used.
 */
extern void tr_config_resolve_server(tr_config *cfg);

/* The networks, from the core's cache; ereport(ERROR) when the files are unusable. */
extern const nn_detector *tr_detector(void);
extern const nn_agegender *tr_agegender(void);

#endif							/* TRAINING_DEEP_H */
