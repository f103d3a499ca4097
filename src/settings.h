/*
 * settings.h: every setting (GUC) of the extension, defined in guc.c. Their defaults are
 * written there once; the pure core's own defaults (tr_config_default) are the ones the
 * settings have no say in.
 */
#ifndef TRAINING_SETTINGS_H
#define TRAINING_SETTINGS_H

/* Defaults of the worker's settings (guc.c; docs/worker.md's table repeats them). */
#define TR_DEFAULT_MAX_WORKERS 2
#define TR_DEFAULT_NAPTIME 60				/* seconds */
#define TR_DEFAULT_PROGRESS_INTERVAL 500	/* milliseconds */
#define TR_DEFAULT_MAX_ATTEMPTS 3
#define TR_DEFAULT_BLAS_THREADS 1
#define TR_DEFAULT_ENABLED true
#define TR_DEFAULT_BACKGROUND_FEATURES true
#define TR_DEFAULT_TEST_IMAGE_DELAY 0		/* milliseconds */
#define TR_DEFAULT_WORKER_IDLE_TIMEOUT 2000	/* milliseconds */
#define TR_DEFAULT_LEASE_TIMEOUT 30		/* seconds */

/* The worker (src/worker.c, src/launcher.c, src/hooks.c, src/shmem.c). */
extern int	tr_max_workers;
extern int	tr_naptime;				/* seconds */
extern int	tr_progress_interval;	/* milliseconds */
extern int	tr_max_attempts;
extern int	tr_blas_threads;
extern bool tr_enabled;
extern bool tr_background_features;	/* idle workers fill the embedding store (src/extract.c) */
extern int	tr_test_image_delay;	/* milliseconds, tests only */
extern int	tr_worker_idle_timeout;	/* milliseconds */
extern int	tr_lease_timeout;		/* seconds */
extern bool tr_worker_scope;		/* inside a training_worker.* function (src/guard.c) */

/* Images: largest width x height stored, trained on or recognized. */
extern int	tr_max_image_pixels;

/* The face networks (src/deep.c). */
extern char *tr_model_path;

#define TR_FACE_FEATURES_AUTO 0
#define TR_FACE_FEATURES_DEEP 1
#define TR_FACE_FEATURES_CLASSIC 2
extern int	tr_face_features;

/* Define every setting (_PG_init). */
extern void tr_guc_init(void);

#endif
