/*
 * netcache.h: the one cache of the pretrained face networks (src/core/nn) in a process.
 *
 * The training features (deepfeat.c) and the server's face functions (src/deep.c) both take
 * their networks from here, so a process holds at most one copy of each network's weights. The
 * networks of one model directory are kept; asking for another directory drops them and loads
 * that one's. tr_netcache_bytes() says how much memory the cache holds, tr_netcache_free()
 * gives it back (a process may call it at any time between two uses; tests call it at the end).
 *
 * Pure C, no PostgreSQL headers, single-threaded like the rest of the core. The pointers
 * returned are valid until the next call naming another directory, or tr_netcache_free().
 */
#ifndef TRAINING_NETCACHE_H
#define TRAINING_NETCACHE_H

#include <stddef.h>

#include "nn/nn.h"

/* The networks read from model_dir: 0 and *out, or -1 with the loader's message in err. */
extern int	tr_netcache_facenet(const char *model_dir, const nn_facenet **out, char *err, size_t errlen);
extern int	tr_netcache_detector(const char *model_dir, const nn_detector **out, char *err, size_t errlen);
extern int	tr_netcache_agegender(const char *model_dir, const nn_agegender **out, char *err, size_t errlen);
extern int	tr_netcache_landmarks(const char *model_dir, const nn_landmarks **out, char *err, size_t errlen);

/* Bytes of network weights the cache holds, and how many networks. */
extern size_t tr_netcache_bytes(void);
extern int	tr_netcache_count(void);

/* The directory the cached networks come from ("" when none is loaded). */
extern const char *tr_netcache_dir(void);

/* Free every cached network. */
extern void tr_netcache_free(void);

#endif
