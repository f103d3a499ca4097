/*
 * guc.c: every setting of the extension (training.*), defined once with its default.
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "blas.h"
#include "pipeline.h"
#include "settings.h"
#include "shmem.h"

int			tr_max_workers = TR_DEFAULT_MAX_WORKERS;
int			tr_naptime = TR_DEFAULT_NAPTIME;
int			tr_progress_interval = TR_DEFAULT_PROGRESS_INTERVAL;
int			tr_max_attempts = TR_DEFAULT_MAX_ATTEMPTS;
int			tr_blas_threads = TR_DEFAULT_BLAS_THREADS;
bool		tr_enabled = TR_DEFAULT_ENABLED;
bool		tr_background_features = TR_DEFAULT_BACKGROUND_FEATURES;
int			tr_test_image_delay = TR_DEFAULT_TEST_IMAGE_DELAY;
int			tr_worker_idle_timeout = TR_DEFAULT_WORKER_IDLE_TIMEOUT;
int			tr_lease_timeout = TR_DEFAULT_LEASE_TIMEOUT;
bool		tr_worker_scope = false;
int			tr_max_image_pixels = TR_DEFAULT_MAX_IMAGE_PIXELS;
char	   *tr_model_path = NULL;
static char *blas_core = NULL;
int			tr_face_features = TR_FACE_FEATURES_AUTO;

static const struct config_enum_entry face_features_options[] = {
	{"auto", TR_FACE_FEATURES_AUTO, false},
	{"deep", TR_FACE_FEATURES_DEEP, false},
	{"classic", TR_FACE_FEATURES_CLASSIC, false},
	{NULL, 0, false}
};

/* Define every setting; the worker's can be changed with a reload (SIGHUP). */
void
tr_guc_init(void)
{
	DefineCustomIntVariable("training.max_image_pixels",
							"Largest image, in pixels (width x height), that is stored, trained on or recognized.",
							"Larger images are refused by add_image and recognize, and skipped by trainings. "
							"A call or a training needs about 3 bytes per pixel of the largest image (1 for grey), plus about 100 MB.",
							&tr_max_image_pixels, TR_DEFAULT_MAX_IMAGE_PIXELS, 1, INT_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("training.model_path",
							   "Directory of the pretrained face networks (tfjs weights manifests and .bin files).",
							   "Empty means the training_models directory under the extension directory of the installation.",
							   &tr_model_path, "", PGC_SUSET, 0,
							   NULL, NULL, NULL);
	DefineCustomEnumVariable("training.face_features",
							 "Features of new face trainings: deep (detector + 128-d embedding), classic (LBP/HOG), or auto.",
							 "auto uses the deep networks when they load from training.model_path when the training starts, else the classic features.",
							 &tr_face_features, TR_FACE_FEATURES_AUTO, face_features_options, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("training.enabled",
							 "Whether the background worker starts trainings.",
							 "When off, waiting trainings stay waiting; running ones finish. "
							 "Can also be set per database (ALTER DATABASE ... SET).",
							 &tr_enabled, TR_DEFAULT_ENABLED, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("training.max_workers",
							"Maximum number of trainings running at the same time (cluster-wide).",
							"Each running training uses one background worker process "
							"(max_worker_processes must leave room for them).",
							&tr_max_workers, TR_DEFAULT_MAX_WORKERS, 0, TR_MAX_WORKERS, PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("training.naptime",
							"Fallback poll interval of the launcher.",
							"New trainings wake the launcher at commit; the poll only catches "
							"trainings inserted without the wake-up trigger (e.g. with triggers "
							"disabled) or by a prepared transaction.",
							&tr_naptime, TR_DEFAULT_NAPTIME, 1, 3600, PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("training.worker_idle_timeout",
							"How long a worker with nothing to do waits for the next training of its database.",
							"A waiting worker picks up a new training within a millisecond instead of a "
							"process start. At most 4 s: commands that need a database without "
							"connections (CREATE DATABASE ... TEMPLATE, ALTER DATABASE) wait up to 5 s, "
							"and DROP DATABASE stops the worker at once.",
							&tr_worker_idle_timeout, TR_DEFAULT_WORKER_IDLE_TIMEOUT, 0, 4000, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("training.lease_timeout",
							"How long a claim on a processing training lasts unless its worker renews it.",
							"Workers renew their lease with every progress write; a training whose "
							"lease expired (its worker died, froze or lost its connection) is queued "
							"again by the next claim, and its old worker can write nothing more.",
							&tr_lease_timeout, TR_DEFAULT_LEASE_TIMEOUT, 2, 3600, PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	/* Set only by the SET clause of the training_worker.* functions (superuser-owned). */
	DefineCustomBoolVariable("training.worker_scope",
							 "Internal: set while a training_worker.* function runs.",
							 NULL,
							 &tr_worker_scope, false, PGC_SUSET,
							 GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_NO_RESET_ALL | GUC_DISALLOW_IN_FILE,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("training.progress_interval",
							"Minimum time between two progress writes of a training.",
							NULL,
							&tr_progress_interval, TR_DEFAULT_PROGRESS_INTERVAL, 10, 60000, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("training.max_attempts",
							"Number of starts of a training before an interrupted one is failed.",
							"A training whose worker crashed or was terminated is queued again "
							"until it has been started this many times.",
							&tr_max_attempts, TR_DEFAULT_MAX_ATTEMPTS, 1, 100, PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("training.test_image_delay",
							"Fault injection for tests: pause this long before each image a worker streams or measures.",
							"Makes a small training (or a background measurement) last long enough to "
							"cancel, kill or shut down in the middle; leave at 0 in production.",
							&tr_test_image_delay, TR_DEFAULT_TEST_IMAGE_DELAY, 0, 10000, PGC_SUSET,
							GUC_UNIT_MS | GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomBoolVariable("training.background_features",
							 "Whether workers with no training to run measure new images for the embedding store.",
							 "Off: the first training or evaluation that needs an image's features measures it.",
							 &tr_background_features, TR_DEFAULT_BACKGROUND_FEATURES, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("training.blas_threads",
							"OpenBLAS threads used by each training worker.",
							"Set in the worker process only; 0 keeps OpenBLAS's default.",
							&tr_blas_threads, TR_DEFAULT_BLAS_THREADS, 0, 64, PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("training.blas_core",
							   "The OpenBLAS kernels this server runs: chosen from the CPU, or by OPENBLAS_CORETYPE in its environment.",
							   NULL, &blas_core, tr_blas_core(), PGC_INTERNAL, GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
}
