/*
 * netcache.c: the process's one cache of the face networks; see netcache.h.
 */
#include "netcache.h"

#include <stdio.h>
#include <string.h>

static struct
{
	char		dir[1024];
	int			have_facenet,
				have_detector,
				have_agegender,
				have_landmarks;
	nn_facenet	facenet;
	nn_detector detector;
	nn_agegender agegender;
	nn_landmarks landmarks;
} cache;

void
tr_netcache_free(void)
{
	if (cache.have_facenet)
		nn_facenet_free(&cache.facenet);
	if (cache.have_detector)
		nn_detector_free(&cache.detector);
	if (cache.have_agegender)
		nn_agegender_free(&cache.agegender);
	if (cache.have_landmarks)
		nn_landmarks_free(&cache.landmarks);
	memset(&cache, 0, sizeof(cache));
}

/* Keep the networks of model_dir only; -1 when the name does not fit. */
static int
use_dir(const char *model_dir, char *err, size_t errlen)
{
	const char *dir = model_dir ? model_dir : "";

	if (dir[0] == '\0')
	{
		snprintf(err, errlen, "no model directory given");
		return -1;
	}
	if (strlen(dir) >= sizeof(cache.dir))
	{
		snprintf(err, errlen, "model directory name too long (%zu bytes)", strlen(dir));
		return -1;
	}
	if (strcmp(dir, cache.dir) != 0)
	{
		tr_netcache_free();
		snprintf(cache.dir, sizeof(cache.dir), "%s", dir);
	}
	return 0;
}

#define CACHED(fn, type, field) \
int \
fn(const char *model_dir, const type **out, char *err, size_t errlen) \
{ \
	char		nerr[NN_ERRLEN]; \
\
	*out = NULL; \
	if (use_dir(model_dir, err, errlen) != 0) \
		return -1; \
	if (!cache.have_##field) \
	{ \
		if (type##_load(&cache.field, cache.dir, nerr) != 0) \
		{ \
			snprintf(err, errlen, "%s", nerr); \
			return -1; \
		} \
		cache.have_##field = 1; \
	} \
	*out = &cache.field; \
	return 0; \
}

CACHED(tr_netcache_facenet, nn_facenet, facenet)
CACHED(tr_netcache_detector, nn_detector, detector)
CACHED(tr_netcache_agegender, nn_agegender, agegender)
CACHED(tr_netcache_landmarks, nn_landmarks, landmarks)

size_t
tr_netcache_bytes(void)
{
	return (cache.have_facenet ? cache.facenet.w.bytes : 0) +
		(cache.have_detector ? cache.detector.w.bytes : 0) +
		(cache.have_agegender ? cache.agegender.w.bytes : 0) +
		(cache.have_landmarks ? cache.landmarks.w.bytes : 0);
}

int
tr_netcache_count(void)
{
	return cache.have_facenet + cache.have_detector + cache.have_agegender + cache.have_landmarks;
}

const char *
tr_netcache_dir(void)
{
	return cache.dir;
}
