/*
 * training-worker: run the trainings of the training extension outside the database server.
 *
 *   training-worker [options] CONNINFO...
 *
 * Each CONNINFO (a libpq connection string or URI; several hosts with
 * target_session_attrs=read-write work too) names a database with the extension (0.7.0 or
 * later) and a role granted training_worker. The worker claims the oldest waiting training of
 * each database in turn (training_worker.claim), runs it here with the core library (the same
 * pipeline as the in-server background worker, src/worker.c), streaming the images in batches
 * and keeping what it measured in the embedding store, renews its lease with its progress, and
 * writes the model version (training_worker.finish) or the failure. When nothing waits it
 * sleeps until a notification (training_waiting, training_state) or --poll seconds. A lost
 * connection is opened again (1 s to 10 s apart), mid-training too while the lease lasts.
 *
 * Options (also in --config FILE as "name = value" lines, with "conninfo = ..." lines when none
 * is given here; the file is read again on SIGHUP, the command line wins):
 *   -j, --jobs N              concurrent trainings, one process each (default 1)
 *   --blas-threads N          OpenBLAS threads per training (default 1; 0: OpenBLAS's own)
 *   --poll SECONDS            look for trainings this often without a notification (default 5)
 *   --progress-interval MS    write progress at most this often (default 500)
 *   --model-dir DIR           the face networks (default $TRAINING_MODEL_DIR, else
 *                             /usr/share/postgresql/15/extension/training_models)
 *   --face-features KIND      auto, deep or classic (default: the server's training.face_features)
 *   --max-image-pixels N      larger images are skipped (0: no limit; default: the server's
 *                             training.max_image_pixels)
 *   --config FILE, -v/--verbose, --once (exit when nothing waits), -h/--help
 *   --test-image-delay MS     pause before each image (tests), as training.test_image_delay
 *
 * The in-server workers share the queue (training.max_workers = 0 leaves it to training-worker).
 * --face-features and --max-image-pixels default to the server's settings of those names (each
 * claim says them), so a training resolves as the in-server worker's would; --model-dir stands for
 * training.model_path: keep the same networks on both, or the trainings of either measure again
 * what the other kept. The
 * lease is renewed from the pipeline's callbacks (every image, every epoch). Progress shows in
 * pg_stat_activity: each statement of a training starts with a comment "training ID: STAGE
 * (PCT%)". Log lines go to standard error. SIGTERM or SIGINT stops a running training and
 * queues it again (training_worker.release), then exits with 0; SIGHUP re-reads the options.
 * Exit status: 0, 1 on a fatal error (--once: also a database it could not reach), 2 on bad
 * usage.
 */
#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "interrupt.h"
#include "measure.h"
#include "netcache.h"
#include "pipeline.h"
#include "trconfig.h"

/* Images fetched per statement (the server's worker reads as many per transaction). */
#define IMAGE_BATCH 16
/* Tries of a write that found its row locked by another session, 500 ms apart. */
#define BUSY_TRIES 5
/* The installation's extension/training_models (the Makefile passes it), as training.model_path's default. */
#ifndef DEFAULT_MODEL_DIR
#define DEFAULT_MODEL_DIR "/usr/share/postgresql/15/extension/training_models"
#endif
#define MAX_JOBS 64
#define UUID_STRLEN 37

/* Type oids of the parameters (fixed in every PostgreSQL). */
#define BYTEAOID 17
#define INT8OID 20
#define INT4OID 23
#define TEXTOID 25
#define FLOAT4OID 700
#define FLOAT8OID 701
#define FLOAT4ARRAYOID 1021
#define TIMESTAMPTZOID 1184
#define UUIDOID 2950
#define UUIDARRAYOID 2951
#define JSONBOID 3802

typedef struct options
{
	int			jobs;
	int			blas_threads;
	double		poll;			/* seconds */
	int			progress_interval;	/* milliseconds */
	char		model_dir[TR_PATHLEN];
	char		face_features[TR_FEATURES_NAMELEN];	/* "": the server's training.face_features */
	size_t		max_image_pixels;
	bool		max_image_pixels_set;	/* else the server's training.max_image_pixels */
	int			test_image_delay;	/* milliseconds before each image (tests) */
	bool		verbose;
	bool		once;
} options;

/* One option as given on the command line, applied over the config file's. */
typedef struct setting
{
	const char *name;
	const char *value;
} setting;

/* A database served, and its connection (NULL while it is down). */
typedef struct database
{
	char	   *conninfo;
	char		label[128];		/* for the log: no password */
	PGconn	   *conn;
	double		retry_at;		/* when down: next connection attempt (monotonic seconds) */
	double		backoff;		/* seconds, 1 to 10 */
	bool		outage_logged;	/* the current outage was logged */
	bool		idle;			/* its last claim found nothing */
	char		claim_error[512];	/* the last claim error logged (logged once) */
} database;

/* A claimed training. */
typedef struct claim
{
	char		id[UUID_STRLEN];
	char		type[16];
	char	   *config;
	bool		has_dataset;
	char		dataset_id[UUID_STRLEN];
	int			attempt;
	int			lease;			/* seconds */
	char		face_features[TR_FEATURES_NAMELEN];	/* the server's settings ("", 0: unknown) */
	size_t		max_image_pixels;
} claim;

/* One image of a batch. */
typedef struct image_row
{
	char		id[UUID_STRLEN];
	unsigned char uuid[16];
	long long	content_version;
	bool		has_box;
	int			box[4];
	bool		has_measure;	/* measure holds its kept measurement (features malloc'd) */
	tr_measure	measure;
	bool		need_data;		/* no kept measurement serves: data is read */
	const uint8_t *data;		/* in the run's data_res */
	size_t		len;
} image_row;

/* A measurement made by this training, to keep. */
typedef struct keep_item
{
	char		id[UUID_STRLEN];
	long long	content_version;
	tr_measure	measure;		/* features malloc'd */
} keep_item;

/* One running training as the pipeline's callbacks see it. */
typedef struct run
{
	database   *db;
	const claim *c;
	char		attempt[16];
	double		started;
	int			nclasses;
	char	  **labels;
	char	  **ids;
	char		kind[TR_FEATURES_NAMELEN];
	int			dim;
	size_t		max_pixels;
	int			cls;			/* class being streamed */
	bool		class_done;		/* its last batch has been fetched */
	bool		key_started;
	unsigned char after_time[8];	/* keyset: the last row's time_created (binary) and id */
	unsigned char after_id[16];
	image_row	rows[IMAGE_BATCH];
	int			nrows;
	int			pos;
	PGresult   *data_res;		/* the batch's image data */
	keep_item	keep[IMAGE_BATCH];
	int			nkeep;
	long		kept;
	double		fraction;
	char		stage[64];
	double		last_write;		/* last progress write (monotonic seconds) */
	double		last_renewed;	/* last write that renewed the lease */
	bool		progress_error_logged;
	bool		keep_error_logged;
	bool		gone;			/* the claim is lost: write nothing */
	bool		lost;			/* the connection is lost for good */
	char		error[TR_ERRLEN];	/* an error that made a callback say stop */
} run;

static options opt;
static setting *settings;
static int	nsettings;
static const char *config_file;
static char worker_name[300];
static volatile sig_atomic_t got_term;	/* the signal */
static volatile sig_atomic_t got_hup;
static int	wake_pipe[2] = {-1, -1};
static bool auto_classic_logged;

/* ------------------------------------------------------------------------------------------
 * Logging, time, signals
 * ------------------------------------------------------------------------------------------
 */

static void logmsg(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* One line to standard error, written at once (the jobs share it). */
static void
vlogmsg(const char *fmt, va_list ap)
{
	char		line[4096];
	time_t		now = time(NULL);
	struct tm	tm;
	size_t		o;
	int			w;

	localtime_r(&now, &tm);
	o = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	w = snprintf(line + o, sizeof(line) - o, " training-worker[%d]: ", (int) getpid());
	if (w > 0)
		o += (size_t) w;
	w = vsnprintf(line + o, sizeof(line) - o - 1, fmt, ap);
	if (w > 0)
		o += (size_t) w < sizeof(line) - o - 1 ? (size_t) w : sizeof(line) - o - 2;
	line[o++] = '\n';
	(void) !write(STDERR_FILENO, line, o);
}

static void
logmsg(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vlogmsg(fmt, ap);
	va_end(ap);
}

static void debugmsg(const char *fmt,...) __attribute__((format(printf, 1, 2)));

static void
debugmsg(const char *fmt,...)
{
	va_list		ap;

	if (!opt.verbose)
		return;
	va_start(ap, fmt);
	vlogmsg(fmt, ap);
	va_end(ap);
}

/* A libpq message on one line, in buf. */
static const char *
oneline(const char *msg, char *buf, size_t len)
{
	size_t		o = 0;

	if (msg == NULL || msg[0] == '\0')
		msg = "unknown error";
	for (; *msg && o + 1 < len; msg++)
		buf[o++] = (*msg == '\n' || *msg == '\r' || *msg == '\t') ? ' ' : *msg;
	while (o > 0 && buf[o - 1] == ' ')
		o--;
	buf[o] = '\0';
	return buf;
}

/* An error result in one line: its message, SQLSTATE and hint (not the statement's position). */
static const char *
result_error(const PGresult *res, char *buf, size_t len)
{
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	char		line[1024];

	if (primary == NULL)
		return oneline(PQresultErrorMessage(res), buf, len);
	snprintf(line, sizeof(line), "%s (SQLSTATE %s)%s%s", primary, state ? state : "?",
			 hint ? "; hint: " : "", hint ? hint : "");
	return oneline(line, buf, len);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
on_signal(int sig)
{
	int			save = errno;

	if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGTERM || sig == SIGINT)
		got_term = sig;
	if (wake_pipe[1] >= 0)
		(void) !write(wake_pipe[1], "", 1);
	errno = save;
}

/* Without SA_RESTART: a wait wakes up at once. */
static void
set_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* Wakes the parent of the jobs (supervise). */
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static void
drain_wake_pipe(void)
{
	char		buf[64];

	while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
		;
}

/* The core's cancel check: SIGTERM or SIGINT (interrupt.h). */
static int
worker_interrupted(void)
{
	return got_term != 0;
}

/* Sleep; a termination ends it early when interruptible. */
static void
nap(double seconds, bool interruptible)
{
	double		end = now_s() + seconds;

	for (;;)
	{
		double		left = end - now_s();
		struct timeval tv;
		fd_set		rfds;

		if (left <= 0 || (interruptible && got_term))
			return;
		tv.tv_sec = (time_t) left;
		tv.tv_usec = (suseconds_t) ((left - (double) tv.tv_sec) * 1e6);
		FD_ZERO(&rfds);
		FD_SET(wake_pipe[0], &rfds);
		if (select(wake_pipe[0] + 1, &rfds, NULL, NULL, &tv) > 0)
			drain_wake_pipe();
	}
}

static const char *
signame(int sig)
{
	return sig == SIGINT ? "SIGINT" : "SIGTERM";
}

/* ------------------------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------------------------
 */

static char *
trim(char *s)
{
	char	   *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/*
 * The face networks of the installation this program belongs to: SHAREDIR/extension/
 * training_models, SHAREDIR as the pg_config beside it says (make install puts both in the
 * server's bindir); else the Debian path. Looked up once.
 */
static const char *
installed_model_dir(void)
{
	static char dir[TR_PATHLEN];
	char		exe[TR_PATHLEN],
				cmd[TR_PATHLEN + 64],
				share[TR_PATHLEN];
	ssize_t		n;
	char	   *slash;
	FILE	   *p;

	if (dir[0] != '\0')
		return dir;
	snprintf(dir, sizeof(dir), "%s", DEFAULT_MODEL_DIR);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return dir;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL || strchr(exe, '\'') != NULL)
		return dir;
	*slash = '\0';
	snprintf(cmd, sizeof(cmd), "%s/pg_config", exe);
	if (access(cmd, X_OK) != 0)
		return dir;
	snprintf(cmd, sizeof(cmd), "'%s/pg_config' --sharedir 2>/dev/null", exe);
	p = popen(cmd, "r");
	if (p == NULL)
		return dir;
	if (fgets(share, sizeof(share), p) != NULL)
	{
		char	   *s = trim(share);

		if (s[0] == '/' && strlen(s) + sizeof("/extension/training_models") <= sizeof(dir))
			snprintf(dir, sizeof(dir), "%s/extension/training_models", s);
	}
	pclose(p);
	return dir;
}

static void
options_default(options *o)
{
	const char *dir = getenv("TRAINING_MODEL_DIR");

	memset(o, 0, sizeof(*o));
	o->jobs = 1;
	o->blas_threads = 1;
	o->poll = 5;
	o->progress_interval = 500;
	snprintf(o->model_dir, sizeof(o->model_dir), "%s", dir && dir[0] ? dir : installed_model_dir());
	/* The server's settings unless given here: a training then resolves as the in-server worker's would. */
	o->face_features[0] = '\0';
	o->max_image_pixels = TR_DEFAULT_MAX_IMAGE_PIXELS;
	o->max_image_pixels_set = false;
}

static bool
parse_long(const char *s, long long min, long long max, long long *out)
{
	char	   *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return s[0] != '\0' && *end == '\0' && errno == 0 && *out >= min && *out <= max;
}

static bool
parse_bool(const char *s, bool *out)
{
	if (s == NULL || strcmp(s, "on") == 0 || strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 ||
		strcmp(s, "1") == 0)
		*out = true;
	else if (strcmp(s, "off") == 0 || strcmp(s, "false") == 0 || strcmp(s, "no") == 0 ||
			 strcmp(s, "0") == 0)
		*out = false;
	else
		return false;
	return true;
}

/* Set one option by its long name; -1 with a message when the value is not valid. */
static int
set_option(options *o, const char *name, const char *value, char *err, size_t errlen)
{
	long long	v;

	if (strcmp(name, "verbose") == 0 || strcmp(name, "once") == 0)
	{
		if (!parse_bool(value, strcmp(name, "verbose") == 0 ? &o->verbose : &o->once))
			goto bad;
		return 0;
	}
	if (value == NULL)
		goto bad;
	if (strcmp(name, "jobs") == 0)
	{
		if (!parse_long(value, 1, MAX_JOBS, &v))
			goto bad;
		o->jobs = (int) v;
	}
	else if (strcmp(name, "blas-threads") == 0)
	{
		if (!parse_long(value, 0, 1024, &v))
			goto bad;
		o->blas_threads = (int) v;
	}
	else if (strcmp(name, "poll") == 0)
	{
		char	   *end;
		double		d = strtod(value, &end);

		if (value[0] == '\0' || *end != '\0' || !(d >= 0.1 && d <= 86400))
			goto bad;
		o->poll = d;
	}
	else if (strcmp(name, "progress-interval") == 0)
	{
		if (!parse_long(value, 10, 3600000, &v))
			goto bad;
		o->progress_interval = (int) v;
	}
	else if (strcmp(name, "model-dir") == 0)
	{
		if (value[0] == '\0' || strlen(value) >= sizeof(o->model_dir))
			goto bad;
		snprintf(o->model_dir, sizeof(o->model_dir), "%s", value);
	}
	else if (strcmp(name, "face-features") == 0)
	{
		if (strcmp(value, TR_FEATURES_AUTO) != 0 && strcmp(value, TR_FEATURES_DEEP) != 0 &&
			strcmp(value, TR_FEATURES_CLASSIC) != 0)
			goto bad;
		snprintf(o->face_features, sizeof(o->face_features), "%s", value);
	}
	else if (strcmp(name, "max-image-pixels") == 0)
	{
		if (!parse_long(value, 0, LLONG_MAX, &v))
			goto bad;
		o->max_image_pixels = (size_t) v;
		o->max_image_pixels_set = true;
	}
	else if (strcmp(name, "test-image-delay") == 0)
	{
		if (!parse_long(value, 0, 3600000, &v))
			goto bad;
		o->test_image_delay = (int) v;
	}
	else
	{
		snprintf(err, errlen, "unknown option \"%s\"", name);
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "invalid value for %s: \"%s\"", name, value ? value : "");
	return -1;
}


/*
 * Read the config file into o ("name = value" lines, # comments); its conninfo lines go to
 * *conninfos when conninfos is not NULL. Returns 0, or -1 with a message.
 */
static int
read_config(const char *path, options *o, char ***conninfos, int *nconn, char *err, size_t errlen)
{
	FILE	   *f = fopen(path, "r");
	char		line[4096];
	int			lineno = 0;

	if (f == NULL)
	{
		snprintf(err, errlen, "could not open %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL)
	{
		char	   *s = trim(line),
				   *eq,
				   *name,
				   *value;
		char		why[512];

		lineno++;
		if (s[0] == '\0' || s[0] == '#')
			continue;
		eq = strchr(s, '=');
		if (eq == NULL)
		{
			snprintf(err, errlen, "%s:%d: expected \"name = value\"", path, lineno);
			fclose(f);
			return -1;
		}
		*eq = '\0';
		name = trim(s);
		value = trim(eq + 1);
		if (strcmp(name, "conninfo") == 0)
		{
			if (conninfos != NULL)
			{
				char	  **grown = realloc(*conninfos, sizeof(char *) * (*nconn + 1));

				if (grown == NULL || (grown[*nconn] = strdup(value)) == NULL)
				{
					*conninfos = grown ? grown : *conninfos;
					snprintf(err, errlen, "out of memory");
					fclose(f);
					return -1;
				}
				*conninfos = grown;
				(*nconn)++;
			}
			continue;
		}
		if (strcmp(name, "config") == 0 || set_option(o, name, value, why, sizeof(why)) != 0)
		{
			snprintf(err, errlen, "%s:%d: %s", path, lineno,
					 strcmp(name, "config") == 0 ? "config cannot be set in a config file" : why);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

/* The defaults, the config file, then the command line. Returns 0, or -1 with a message. */
static int
load_options(options *o, char ***conninfos, int *nconn, char *err, size_t errlen)
{
	options_default(o);
	if (config_file && read_config(config_file, o, conninfos, nconn, err, errlen) != 0)
		return -1;
	for (int i = 0; i < nsettings; i++)
		if (set_option(o, settings[i].name, settings[i].value, err, errlen) != 0)
			return -1;
	return 0;
}

/* SIGHUP: the options again (not --jobs nor the databases). */
static void
reload_options(void)
{
	options		o;
	char		err[1024];
	int			jobs = opt.jobs;

	if (load_options(&o, NULL, NULL, err, sizeof(err)) != 0)
	{
		logmsg("configuration not reloaded: %s", err);
		return;
	}
	o.jobs = jobs;
	opt = o;
	if (opt.blas_threads > 0)
		openblas_set_num_threads(opt.blas_threads);
	logmsg("configuration reloaded");
}

static void
usage(FILE *out)
{
	fprintf(out,
			"training-worker runs the trainings of the training extension outside the database server.\n\n"
			"usage: training-worker [options] CONNINFO...\n\n"
			"CONNINFO: a libpq connection string or URI of a database with the extension (0.7.0 or later),\n"
			"as a role granted training_worker. Several are served in turn.\n\n"
			"options:\n"
			"  -j, --jobs N              concurrent trainings, one process each (default 1)\n"
			"      --blas-threads N      OpenBLAS threads per training (default 1; 0: OpenBLAS's own)\n"
			"      --poll SECONDS        look for trainings this often without a notification (default 5)\n"
			"      --progress-interval MS  write progress at most this often (default 500)\n"
			"      --model-dir DIR       the face networks (default $TRAINING_MODEL_DIR, else\n"
			"                            " DEFAULT_MODEL_DIR ")\n"
			"      --face-features KIND  auto, deep or classic (default: the server's training.face_features)\n"
			"      --max-image-pixels N  larger images are skipped (0: no limit; default: the server's, else %d)\n"
			"      --config FILE         options as \"name = value\" lines (long names; \"conninfo = ...\"\n"
			"                            lines when none is given here); read again on SIGHUP\n"
			"      --once                exit when nothing waits\n"
			"      --test-image-delay MS pause before each image (tests), as training.test_image_delay\n"
			"  -v, --verbose             log more\n"
			"  -h, --help                this help\n\n"
			"SIGTERM or SIGINT stops a running training and queues it again; SIGHUP reloads the options.\n"
			"Exit status: 0, 1 on a fatal error, 2 on bad usage.\n",
			TR_DEFAULT_MAX_IMAGE_PIXELS);
}

/* ------------------------------------------------------------------------------------------
 * Binary values (results in binary format)
 * ------------------------------------------------------------------------------------------
 */

static uint32_t
get_u32(const unsigned char *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}

static int64_t
get_i64(const unsigned char *p)
{
	return (int64_t) (((uint64_t) get_u32(p) << 32) | get_u32(p + 4));
}

static void
put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char) (v >> 24);
	p[1] = (unsigned char) (v >> 16);
	p[2] = (unsigned char) (v >> 8);
	p[3] = (unsigned char) v;
}

static void
uuid_text(const unsigned char *u, char *out)
{
	static const char hex[] = "0123456789abcdef";
	int			o = 0;

	for (int i = 0; i < 16; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[u[i] >> 4];
		out[o++] = hex[u[i] & 15];
	}
	out[o] = '\0';
}

/* A binary int4[] of 4 elements into box; false when it is not one. */
static bool
bin_box(const unsigned char *p, int len, int *box)
{
	int			off = 20;

	if (len < 20 || get_u32(p) != 1 || get_u32(p + 8) != INT4OID || get_u32(p + 12) != 4)
		return false;
	for (int k = 0; k < 4; k++)
	{
		if (off + 8 > len || get_u32(p + off) != 4)
			return false;
		box[k] = (int) (int32_t) get_u32(p + off + 4);
		off += 8;
	}
	return true;
}

/*
 * A binary float4[] matrix: *rows x *cols floats, malloc'd in *out (NULL for an empty array).
 * cols > 0: the columns it must have. False when it is not one (or memory ran out).
 */
static bool
bin_floats(const unsigned char *p, int len, int max_rows, int cols, int *rows, int *ncols, float **out)
{
	uint32_t	ndim;
	int64_t		r,
				c;
	float	   *v;

	*rows = *ncols = 0;
	*out = NULL;
	if (len < 12 || get_u32(p + 4) != 0 || get_u32(p + 8) != FLOAT4OID)
		return false;
	ndim = get_u32(p);
	if (ndim == 0)
		return len == 12;
	if (ndim != 2 || len < 28)
		return false;
	r = (int32_t) get_u32(p + 12);
	c = (int32_t) get_u32(p + 20);
	if (r < 1 || r > max_rows || c < 1 || c > 65536 || (cols > 0 && c != cols) ||
		(int64_t) len != 28 + r * c * 8)
		return false;
	v = malloc(sizeof(float) * (size_t) (r * c));
	if (v == NULL)
		return false;
	for (int64_t i = 0; i < r * c; i++)
	{
		const unsigned char *e = p + 28 + i * 8;
		uint32_t	bits = get_u32(e + 4);

		if (get_u32(e) != 4)
		{
			free(v);
			return false;
		}
		memcpy(&v[i], &bits, sizeof(float));
	}
	*rows = (int) r;
	*ncols = (int) c;
	*out = v;
	return true;
}

/* A rows x cols float4[] in binary (rows 0: an empty array), malloc'd; *len its length. */
static char *
bin_float_matrix(const float *v, int rows, int cols, int *len)
{
	size_t		n = rows > 0 ? (size_t) rows * cols : 0;
	unsigned char *b = malloc(28 + n * 8);
	unsigned char *e;

	if (b == NULL)
		return NULL;
	put_u32(b, rows > 0 ? 2 : 0);
	put_u32(b + 4, 0);
	put_u32(b + 8, FLOAT4OID);
	if (rows == 0)
	{
		*len = 12;
		return (char *) b;
	}
	put_u32(b + 12, (uint32_t) rows);
	put_u32(b + 16, 1);
	put_u32(b + 20, (uint32_t) cols);
	put_u32(b + 24, 1);
	e = b + 28;
	for (size_t i = 0; i < n; i++, e += 8)
	{
		uint32_t	bits;

		memcpy(&bits, &v[i], sizeof(bits));
		put_u32(e, 4);
		put_u32(e + 4, bits);
	}
	*len = (int) (28 + n * 8);
	return (char *) b;
}

static const unsigned char *
bval(const PGresult *res, int row, int col, int *len)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	*len = PQgetlength(res, row, col);
	return (const unsigned char *) PQgetvalue(res, row, col);
}

/*
 * The kept measurement in binary columns first..first+6 of a result row (status, message,
 * max_pixels, width, height, regions, features), as src/store.c reads it. False when there is
 * none or it is malformed (then the image is measured again).
 */
static bool
measure_from_result(const PGresult *res, int row, int first, tr_measure *m)
{
	const unsigned char *p;
	int			len,
				n,
				nf,
				cols;
	float	   *fl;
	float		none = 0;

	memset(m, 0, sizeof(*m));
	if (PQgetisnull(res, row, first) ||
		tr_measure_status_parse(PQgetvalue(res, row, first), &m->status) != 0)
		return false;
	if (!PQgetisnull(res, row, first + 1))
		snprintf(m->message, sizeof(m->message), "%s", PQgetvalue(res, row, first + 1));
	if ((p = bval(res, row, first + 2, &len)) != NULL && len == 8)
		m->max_pixels = (size_t) get_i64(p);
	if ((p = bval(res, row, first + 3, &len)) != NULL && len == 4)
		m->width = (int) (int32_t) get_u32(p);
	if ((p = bval(res, row, first + 4, &len)) != NULL && len == 4)
		m->height = (int) (int32_t) get_u32(p);
	if ((p = bval(res, row, first + 5, &len)) == NULL ||
		!bin_floats(p, len, TR_MEASURE_REGIONS, TR_REGION_FLOATS, &n, &cols, &fl))
		return false;
	if (tr_measure_set_regions(m, fl ? fl : &none, n) != 0)
	{
		free(fl);
		return false;
	}
	free(fl);
	if (m->status == TR_SKIP_NONE && n == 0)
		return false;
	if ((p = bval(res, row, first + 6, &len)) != NULL)
	{
		if (!bin_floats(p, len, TR_MEASURE_REGIONS, 0, &nf, &cols, &fl) || nf != n || fl == NULL)
		{
			free(fl);
			return false;
		}
		m->dim = cols;
		m->features = fl;
	}
	return true;
}

/* ------------------------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------------------------
 */

/* A label of a conninfo without its password (dbname@host); false when it does not parse. */
static bool
conninfo_label(const char *conninfo, char *label, size_t len, char *err, size_t errlen)
{
	char	   *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	const char *dbname = NULL,
			   *host = NULL;

	if (opts == NULL)
	{
		snprintf(err, errlen, "%s", perr ? perr : "out of memory");
		PQfreemem(perr);
		return false;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && o->val[0])
		{
			if (strcmp(o->keyword, "dbname") == 0)
				dbname = o->val;
			else if (strcmp(o->keyword, "host") == 0)
				host = o->val;
		}
	snprintf(label, len, "%s%s%s", dbname ? dbname : "(default database)", host ? "@" : "",
			 host ? host : "");
	PQconninfoFree(opts);
	return true;
}

static void
db_down(database *d)
{
	PQfinish(d->conn);
	d->conn = NULL;
	d->retry_at = now_s() + d->backoff;
	d->backoff = d->backoff * 2 > 10 ? 10 : d->backoff * 2;
}

/* The connection was lost: log it once per outage and close it. */
static void
db_lost(database *d, const char *msg)
{
	char		buf[512];

	if (!d->outage_logged)
		logmsg("connection to %s lost: %s; connecting again", d->label,
			   oneline(msg, buf, sizeof(buf)));
	d->outage_logged = true;
	d->backoff = 1;
	db_down(d);
}

/*
 * Connect (the user's conninfo, with our application_name and timeouts unless it sets them),
 * then set a safe search_path and listen. Returns whether it is up.
 */
static bool
db_connect(database *d)
{
	/* Keywords before dbname are overridden by the expanded conninfo's. */
	const char *keys[] = {"application_name", "connect_timeout", "keepalives_idle",
	"keepalives_interval", "keepalives_count", "dbname", NULL};
	const char *vals[] = {worker_name, "10", "30", "10", "3", d->conninfo, NULL};
	PGresult   *res;
	const char *enc;
	char		buf[512];

	d->conn = PQconnectdbParams(keys, vals, 1);
	if (d->conn == NULL || PQstatus(d->conn) != CONNECTION_OK)
	{
		if (!d->outage_logged)
			logmsg("could not connect to %s: %s; trying again every 1 to 10 s", d->label,
				   oneline(d->conn ? PQerrorMessage(d->conn) : "out of memory", buf, sizeof(buf)));
		d->outage_logged = true;
		db_down(d);
		return false;
	}
	/*
	 * The database's encoding: the labels go into the model as the in-server worker writes them,
	 * whatever PGCLIENTENCODING says.
	 */
	enc = PQparameterStatus(d->conn, "server_encoding");
	if (enc != NULL && PQsetClientEncoding(d->conn, enc) != 0)
		res = NULL;
	else
		res = PQexec(d->conn, "SET search_path = pg_catalog, pg_temp; "
					 /* As the in-server worker: a lock is never waited for long. */
					 "SET lock_timeout = '2s'; "
					 "LISTEN training_waiting; LISTEN training_state");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		if (!d->outage_logged)
			logmsg("could not set up the connection to %s: %s", d->label,
				   oneline(PQerrorMessage(d->conn), buf, sizeof(buf)));
		d->outage_logged = true;
		PQclear(res);
		db_down(d);
		return false;
	}
	PQclear(res);
	if (d->outage_logged)
		logmsg("connected to %s again", d->label);
	else
		debugmsg("connected to %s (database %s, server %d)", d->label, PQdb(d->conn),
				 PQserverVersion(d->conn));
	d->outage_logged = false;
	d->backoff = 1;
	return true;
}

/*
 * Wait for a notification on any connection, a signal, the poll interval, or the next
 * connection attempt of a database that is down.
 */
static void
wait_for_work(database *dbs, int ndb)
{
	double		deadline = now_s() + opt.poll;

	for (int i = 0; i < ndb; i++)
		if (dbs[i].conn == NULL && dbs[i].retry_at < deadline)
			deadline = dbs[i].retry_at;
	for (;;)
	{
		fd_set		rfds;
		int			maxfd = wake_pipe[0];
		bool		woken = false;
		double		left;
		struct timeval tv;
		int			rc;

		if (got_term || got_hup)
			return;
		FD_ZERO(&rfds);
		FD_SET(wake_pipe[0], &rfds);
		for (int i = 0; i < ndb; i++)
		{
			database   *d = &dbs[i];
			PGnotify   *n;
			int			sock;

			if (d->conn == NULL)
				continue;
			if (!PQconsumeInput(d->conn))
			{
				db_lost(d, PQerrorMessage(d->conn));
				woken = true;	/* its retry time may be sooner */
				continue;
			}
			while ((n = PQnotifies(d->conn)) != NULL)
			{
				debugmsg("notification %s from %s", n->relname, d->label);
				PQfreemem(n);
				woken = true;
			}
			sock = PQsocket(d->conn);
			if (sock >= 0)
			{
				FD_SET(sock, &rfds);
				if (sock > maxfd)
					maxfd = sock;
			}
		}
		if (woken)
			return;
		left = deadline - now_s();
		if (left <= 0)
			return;
		tv.tv_sec = (time_t) left;
		tv.tv_usec = (suseconds_t) ((left - (double) tv.tv_sec) * 1e6);
		rc = select(maxfd + 1, &rfds, NULL, NULL, &tv);
		if (rc < 0 && errno != EINTR)
		{
			logmsg("select failed: %s", strerror(errno));
			nap(1, true);
			return;
		}
		if (rc > 0 && FD_ISSET(wake_pipe[0], &rfds))
			drain_wake_pipe();
		/* Input on a socket: read at the top of the loop. */
	}
}

/* ------------------------------------------------------------------------------------------
 * A training's statements
 * ------------------------------------------------------------------------------------------
 */

/* The comment that shows the training in pg_stat_activity.query. */
static void
activity_comment(const run *r, char *buf, size_t len)
{
	char		stage[sizeof(r->stage)];
	size_t		o = 0;

	/* Nothing that could end the comment. */
	for (const char *s = r->stage; *s && o + 1 < sizeof(stage); s++)
		stage[o++] = (*s == '*' || *s == '/' || (unsigned char) *s < ' ') ? ' ' : *s;
	stage[o] = '\0';
	snprintf(buf, len, "/* training %s: %s (%d%%) */ ", r->c->id, stage,
			 (int) (r->fraction * 100.0 + 0.5));
}

/*
 * Connect again mid-training (1 s to 10 s apart) until its lease has run out; false when given
 * up. Whether the claim still holds is the server's to say, at the next statement.
 */
static bool
reconnect_in_run(run *r)
{
	database   *d = r->db;

	if (d->conn != NULL)
		db_lost(d, PQerrorMessage(d->conn));
	for (;;)
	{
		double		wait = d->retry_at - now_s();

		if (wait > 0)
			nap(wait, true);
		if (got_term)
		{
			logmsg("training %s: terminated without a connection to %s; it is queued again when its lease expires",
				   r->c->id, d->label);
			r->lost = true;
			return false;
		}
		if (db_connect(d))
			return true;
		if (now_s() > r->last_renewed + r->c->lease)
		{
			logmsg("training %s: no connection to %s for longer than its lease (%d s); it is queued again by the next claim",
				   r->c->id, d->label, r->c->lease);
			r->lost = true;
			return false;
		}
	}
}

/*
 * Run a statement of the training (with its activity comment); on a lost connection, connect
 * again and run it again (every statement of a claim can be repeated). NULL when the connection
 * is lost for good (r->lost) or memory ran out.
 */
static PGresult *
run_exec(run *r, const char *sql, int nparams, const Oid *types, const char *const *values,
		 const int *lengths, const int *formats, int result_format)
{
	size_t		len = strlen(sql) + 256;
	char	   *text = malloc(len);
	PGresult   *res = NULL;

	if (text == NULL)
		return NULL;
	for (;;)
	{
		if (r->db->conn == NULL && !reconnect_in_run(r))
			break;
		activity_comment(r, text, len);
		strcat(text, sql);
		res = PQexecParams(r->db->conn, text, nparams, types, values, lengths, formats, result_format);
		if (PQstatus(r->db->conn) != CONNECTION_BAD)
			break;
		PQclear(res);
		res = NULL;
		if (!reconnect_in_run(r))
			break;
	}
	free(text);
	return res;
}

/*
 * Whether res has status want; else note why in r: SQLSTATE 55000 is the claim lost (a read
 * of a claim no longer ours), another error is the training's error.
 */
static bool
run_ok(run *r, const PGresult *res, ExecStatusType want, const char *what)
{
	const char *state;
	char		buf[TR_ERRLEN];

	if (res == NULL)
	{
		if (!r->lost)
			snprintf(r->error, sizeof(r->error), "%s: out of memory", what);
		return false;
	}
	if (PQresultStatus(res) == want)
		return true;
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (state && strcmp(state, "55000") == 0)
		r->gone = true;
	else
	{
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		logmsg("training %s: %s failed: %s", r->c->id, what,
			   result_error(res, buf, sizeof(buf)));
		snprintf(r->error, sizeof(r->error), "%s", primary ? primary : result_error(res, buf, sizeof(buf)));
	}
	return false;
}

/* Whether the training must stop (nothing more to read or measure). */
static bool
stopping(const run *r)
{
	return r->gone || r->lost || r->error[0] != '\0' || got_term;
}

static void
log_claim_lost(const run *r)
{
	logmsg("training %s: claim lost (deleted, finished elsewhere, or lease expired); nothing written", r->c->id);
}

/* A one-word answer of a write ('ok', 'busy', 'gone', ...); "" on an error (logged). */
static void
text_answer(run *r, PGresult *res, const char *what, char *out, size_t len)
{
	char		buf[512];

	out[0] = '\0';
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		snprintf(out, len, "%s", PQgetisnull(res, 0, 0) ? "gone" : PQgetvalue(res, 0, 0));
	else if (res && !r->lost)
		logmsg("training %s: %s failed: %s", r->c->id, what,
			   result_error(res, buf, sizeof(buf)));
}

/*
 * Write progress when due: at most every --progress-interval, and at least every third of the
 * lease (the heartbeat that renews it); force writes it now.
 */
static void
sync_progress(run *r, bool force)
{
	double		now = now_s();
	double		interval = opt.progress_interval / 1000.0;
	char		progress[32];
	const char *values[4];
	Oid			types[4] = {UUIDOID, INT4OID, FLOAT8OID, TEXTOID};
	PGresult   *res;
	char		answer[16];

	if (interval > r->c->lease / 3.0)
		interval = r->c->lease / 3.0;
	if (!force && now - r->last_write < interval)
		return;
	r->last_write = now;
	snprintf(progress, sizeof(progress), "%.6f", r->fraction);
	values[0] = r->c->id;
	values[1] = r->attempt;
	values[2] = progress;
	values[3] = r->stage;
	res = run_exec(r, "SELECT training_worker.progress($1, $2, $3, $4)", 4, types, values, NULL, NULL, 0);
	if (res == NULL)
		return;
	answer[0] = '\0';
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		text_answer(r, res, "writing progress", answer, sizeof(answer));
	else if (!r->progress_error_logged)
	{
		/* Not fatal: the next write tries again (the lease expires if none succeeds). */
		text_answer(r, res, "writing progress", answer, sizeof(answer));
		r->progress_error_logged = true;
	}
	PQclear(res);
	if (strcmp(answer, "ok") == 0)
		r->last_renewed = now;
	else if (strcmp(answer, "gone") == 0)
		r->gone = true;
	else if (strcmp(answer, "busy") == 0)
		debugmsg("training %s: progress not written (its row is locked); trying at the next interval", r->c->id);
}

/* ------------------------------------------------------------------------------------------
 * Images and measurements
 * ------------------------------------------------------------------------------------------
 */

static void
free_batch(run *r)
{
	for (int i = 0; i < r->nrows; i++)
		tr_measure_free(&r->rows[i].measure);
	memset(r->rows, 0, sizeof(r->rows));
	r->nrows = r->pos = 0;
	PQclear(r->data_res);
	r->data_res = NULL;
}

static void
free_keep(run *r)
{
	for (int i = 0; i < r->nkeep; i++)
		tr_measure_free(&r->keep[i].measure);
	r->nkeep = 0;
}

/* The parameters of worker_keep for one measurement (regions, features: malloc'd binary). */
static bool
keep_params(run *r, const keep_item *k, char bufs[][32], const char **values, int *lengths,
			char **regions, char **features)
{
	const tr_measure *m = &k->measure;
	float		rf[TR_MEASURE_REGIONS * TR_REGION_FLOATS];
	int			len = 0;

	tr_measure_region_floats(m, rf);
	values[0] = r->c->id;
	values[1] = r->attempt;
	values[2] = k->id;
	snprintf(bufs[0], 32, "%lld", k->content_version);
	values[3] = bufs[0];
	values[4] = r->kind;
	values[5] = tr_measure_status_name(m->status);
	values[6] = m->status == TR_SKIP_NONE ? "" : m->message;
	snprintf(bufs[1], 32, "%lld", (long long) m->max_pixels);
	values[7] = bufs[1];
	snprintf(bufs[2], 32, "%d", m->width);
	values[8] = bufs[2];
	snprintf(bufs[3], 32, "%d", m->height);
	values[9] = bufs[3];
	*regions = bin_float_matrix(rf, m->nregions, TR_REGION_FLOATS, &len);
	values[10] = *regions;
	lengths[10] = len;
	*features = NULL;
	values[11] = NULL;
	lengths[11] = 0;
	if (m->features != NULL && m->dim > 0 && m->nregions > 0)
	{
		*features = bin_float_matrix(m->features, m->nregions, m->dim, &len);
		values[11] = *features;
		lengths[11] = len;
		if (*features == NULL)
			return false;
	}
	return *regions != NULL;
}

/*
 * Send the measurements to keep in one pipeline: in one transaction (together), or each in its
 * own. Returns how many were kept (*nfailed: how many failed, the first one's message in err),
 * or -1 when the pipeline could not be run or, in one transaction, one failed (none is kept).
 */
static int
keep_pipeline(run *r, bool together, int *nfailed, char *err, size_t errlen)
{
	static const char *sql_tail =
		"SELECT training_worker.keep($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
	Oid			types[12] = {UUIDOID, INT4OID, UUIDOID, INT8OID, TEXTOID, TEXTOID, TEXTOID,
	INT8OID, INT4OID, INT4OID, FLOAT4ARRAYOID, FLOAT4ARRAYOID};
	int			formats[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1};
	PGconn	   *conn = r->db->conn;
	char		sql[512];
	const char *state;
	int			kept = 0,
				sent = 0,
				syncs,
				nulls = 0;
	bool		failed = false;

	err[0] = '\0';
	*nfailed = 0;
	if (conn == NULL || !PQenterPipelineMode(conn))
	{
		snprintf(err, errlen, "%s", conn ? PQerrorMessage(conn) : "no connection");
		return -1;
	}
	activity_comment(r, sql, sizeof(sql));
	strncat(sql, sql_tail, sizeof(sql) - strlen(sql) - 1);
	for (int i = 0; i < r->nkeep; i++)
	{
		char		bufs[4][32];
		const char *values[12];
		int			lengths[12] = {0};
		char	   *regions,
				   *features;
		bool		made = keep_params(r, &r->keep[i], bufs, values, lengths, &regions, &features);
		bool		ok = made && PQsendQueryParams(conn, sql, 12, types, values, lengths, formats, 0);

		free(regions);
		free(features);
		if (!ok)
		{
			snprintf(err, errlen, "%s", made ? PQerrorMessage(conn) : "out of memory");
			failed = true;
			break;
		}
		sent++;
		if (!together)
			PQpipelineSync(conn);
	}
	if (together || sent == 0)
		PQpipelineSync(conn);
	/* The results: each statement's then NULL, and a sync's after each transaction. */
	syncs = together || sent == 0 ? 1 : sent;
	while (syncs > 0 && PQstatus(conn) == CONNECTION_OK)
	{
		PGresult   *res = PQgetResult(conn);

		if (res == NULL)
		{
			if (++nulls > 1)
				break;			/* nothing more is coming */
			continue;
		}
		nulls = 0;
		switch (PQresultStatus(res))
		{
			case PGRES_PIPELINE_SYNC:
				syncs--;
				break;
			case PGRES_TUPLES_OK:
				kept += PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
				break;
			default:
				state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
				if (state && strcmp(state, "55000") == 0)
					r->gone = true;	/* the claim is lost: not a failure to keep */
				else if (err[0] == '\0' && PQresultStatus(res) != PGRES_PIPELINE_ABORTED)
					result_error(res, err, errlen);
				failed = true;
				(*nfailed)++;
				break;
		}
		PQclear(res);
	}
	/* Lost, or results left: the connection is closed, and the next statement connects again. */
	if (PQstatus(conn) != CONNECTION_OK || !PQexitPipelineMode(conn))
	{
		if (err[0] == '\0')
			snprintf(err, errlen, "%s", PQerrorMessage(conn));
		db_lost(r->db, PQerrorMessage(conn));
		return -1;
	}
	return failed && together ? -1 : kept;
}

/*
 * Keep what this training measured in the embedding store: one transaction per batch, each
 * measurement alone when that fails. A failure to keep costs a later measurement, not the
 * training: it is logged.
 */
static void
flush_keep(run *r)
{
	char		err[1024],
				buf[1024];
	int			n,
				nfailed;

	if (r->nkeep == 0 || r->lost || r->db->conn == NULL)
	{
		free_keep(r);
		return;
	}
	n = keep_pipeline(r, true, &nfailed, err, sizeof(err));
	/* The connection lost: connect again (as any statement of the training would), once. */
	if (n < 0 && r->db->conn == NULL && reconnect_in_run(r))
		n = keep_pipeline(r, true, &nfailed, err, sizeof(err));
	if (n < 0 && r->db->conn != NULL && !r->gone)
		n = keep_pipeline(r, false, &nfailed, err, sizeof(err));
	/* Logged once per training (then with --verbose): the same cause usually repeats. */
	if ((n < 0 || nfailed > 0) && !r->gone && !r->lost && (opt.verbose || !r->keep_error_logged))
		logmsg("training %s: could not keep %d of %d measurements in the embedding store: %s",
			   r->c->id, n < 0 ? r->nkeep : nfailed, r->nkeep, oneline(err, buf, sizeof(buf)));
	if (n < 0 || nfailed > 0)
		r->keep_error_logged = true;
	if (n > 0)
		r->kept += n;
	free_keep(r);
}

/* Read one row of worker_images (binary) into row; false when it is malformed. */
static bool
image_from_result(run *r, const PGresult *res, int i, image_row *row)
{
	const unsigned char *p;
	int			len;

	memset(row, 0, sizeof(*row));
	if ((p = bval(res, i, 0, &len)) == NULL || len != 16)
		return false;
	memcpy(row->uuid, p, 16);
	uuid_text(p, row->id);
	if ((p = bval(res, i, 1, &len)) == NULL || len != 8)
		return false;
	memcpy(r->after_time, p, 8);
	memcpy(r->after_id, row->uuid, 16);
	r->key_started = true;
	if ((p = bval(res, i, 2, &len)) == NULL || len != 8)
		return false;
	row->content_version = get_i64(p);
	if ((p = bval(res, i, 3, &len)) != NULL)
		row->has_box = bin_box(p, len, row->box);
	row->has_measure = measure_from_result(res, i, 4, &row->measure);
	if (!row->has_measure)
		tr_measure_free(&row->measure);
	return true;
}

/* Read the data of the batch's rows whose measurement does not serve; drop those deleted. */
static int
fetch_data(run *r)
{
	Oid			types[3] = {UUIDOID, INT4OID, UUIDARRAYOID};
	const char *values[3];
	char	   *ids = malloc((size_t) r->nrows * UUID_STRLEN + 3);
	size_t		o = 0;
	int			need = 0,
				kept = 0;
	PGresult   *res;

	if (ids == NULL)
	{
		snprintf(r->error, sizeof(r->error), "out of memory");
		return -1;
	}
	ids[o++] = '{';
	for (int i = 0; i < r->nrows; i++)
	{
		image_row  *row = &r->rows[i];

		row->need_data = !(row->has_measure && tr_measure_serves(&row->measure, r->dim, r->max_pixels, 0));
		if (!row->need_data)
			continue;
		if (need++ > 0)
			ids[o++] = ',';
		memcpy(ids + o, row->id, UUID_STRLEN - 1);
		o += UUID_STRLEN - 1;
	}
	ids[o++] = '}';
	ids[o] = '\0';
	if (need == 0)
	{
		debugmsg("training %s: class %d of %d, %d images, all measured", r->c->id, r->cls + 1,
				 r->nclasses, r->nrows);
		free(ids);
		return 0;
	}
	values[0] = r->c->id;
	values[1] = r->attempt;
	values[2] = ids;
	res = run_exec(r, "SELECT id, content_version, face_box, data FROM training_worker.image_data($1, $2, $3)",
				   3, types, values, NULL, NULL, 1);
	free(ids);
	if (!run_ok(r, res, PGRES_TUPLES_OK, "reading the image data"))
	{
		PQclear(res);
		return -1;
	}
	for (int j = 0; j < PQntuples(res); j++)
	{
		const unsigned char *p;
		int			len;

		if ((p = bval(res, j, 0, &len)) == NULL || len != 16)
			continue;
		for (int i = 0; i < r->nrows; i++)
		{
			image_row  *row = &r->rows[i];
			long long	version;

			if (!row->need_data || memcmp(row->uuid, p, 16) != 0 || PQgetisnull(res, j, 3))
				continue;
			row->data = (const uint8_t *) PQgetvalue(res, j, 3);
			row->len = (size_t) PQgetlength(res, j, 3);
			/* Changed since: the kept measurement is not of this content. */
			if (!PQgetisnull(res, j, 1) && PQgetlength(res, j, 1) == 8)
			{
				version = get_i64((const unsigned char *) PQgetvalue(res, j, 1));
				if (version != row->content_version)
				{
					row->has_measure = false;
					tr_measure_free(&row->measure);
				}
				row->content_version = version;
			}
			row->has_box = false;
			{
				const unsigned char *b;
				int			blen;

				if ((b = bval(res, j, 2, &blen)) != NULL)
					row->has_box = bin_box(b, blen, row->box);
			}
		}
	}
	r->data_res = res;
	debugmsg("training %s: class %d of %d, %d images, %d to measure, %d read", r->c->id, r->cls + 1,
			 r->nclasses, r->nrows, need, PQntuples(res));
	/* Images deleted meanwhile are left out. */
	for (int i = 0; i < r->nrows; i++)
	{
		if (!r->rows[i].need_data || r->rows[i].data != NULL)
			r->rows[kept++] = r->rows[i];
		else
			tr_measure_free(&r->rows[i].measure);
	}
	for (int i = kept; i < r->nrows; i++)
		memset(&r->rows[i], 0, sizeof(r->rows[i]));
	r->nrows = kept;
	return 0;
}

/* The next batch of the current class (keyset pagination); -1 to stop. */
static int
fetch_batch(run *r)
{
	Oid			types[7] = {UUIDOID, INT4OID, UUIDOID, TIMESTAMPTZOID, UUIDOID, INT4OID, TEXTOID};
	int			formats[7] = {0, 0, 0, 1, 1, 0, 0};
	int			lengths[7] = {0, 0, 0, 8, 16, 0, 0};
	const char *values[7];
	char		batch[16];
	PGresult   *res;
	int			n;

	free_batch(r);
	snprintf(batch, sizeof(batch), "%d", IMAGE_BATCH);
	values[0] = r->c->id;
	values[1] = r->attempt;
	values[2] = r->ids[r->cls];
	values[3] = r->key_started ? (const char *) r->after_time : NULL;
	values[4] = r->key_started ? (const char *) r->after_id : NULL;
	values[5] = batch;
	values[6] = r->kind;
	res = run_exec(r, "SELECT id, time_created, content_version, face_box, status, message, max_pixels, "
				   "width, height, regions, features "
				   "FROM training_worker.images($1, $2, $3, $4, $5, $6, $7)",
				   7, types, values, lengths, formats, 1);
	if (!run_ok(r, res, PGRES_TUPLES_OK, "reading the images"))
	{
		PQclear(res);
		return -1;
	}
	n = PQntuples(res);
	if (n > IMAGE_BATCH || PQnfields(res) != 11)
	{
		snprintf(r->error, sizeof(r->error), "training_worker.images returned %d rows of %d columns for a batch of %d",
				 n, PQnfields(res), IMAGE_BATCH);
		PQclear(res);
		return -1;
	}
	if (n < IMAGE_BATCH)
		r->class_done = true;
	for (int i = 0; i < n; i++)
	{
		if (!image_from_result(r, res, i, &r->rows[r->nrows]))
		{
			snprintf(r->error, sizeof(r->error), "training_worker.images returned a malformed row");
			tr_measure_free(&r->rows[r->nrows].measure);
			PQclear(res);
			return -1;
		}
		r->nrows++;
	}
	PQclear(res);
	return fetch_data(r);
}

/* Pipeline callback: the next image (1), the end (0), or stop (-1). */
static int
cb_next_image(void *ctx, tr_image_ref *out)
{
	run		   *r = ctx;

	/* A termination ends the pause at once. */
	if (opt.test_image_delay > 0 && !stopping(r))
		nap(opt.test_image_delay / 1000.0, true);
	if (stopping(r))
		return -1;
	sync_progress(r, false);
	for (;;)
	{
		if (stopping(r))
			return -1;
		if (r->pos < r->nrows)
		{
			image_row  *row = &r->rows[r->pos++];

			out->measure = row->has_measure ? &row->measure : NULL;
			out->data = row->data;
			out->len = row->len;
			out->class_index = r->cls;
			out->has_box = row->has_box;
			memcpy(out->box, row->box, sizeof(out->box));
			return 1;
		}
		if (r->class_done)
		{
			r->cls++;
			r->class_done = false;
			r->key_started = false;
		}
		if (r->cls >= r->nclasses)
		{
			/* Keep the last batch's measurements now: the claim may not outlast the training loop. */
			flush_keep(r);
			free_batch(r);
			return stopping(r) ? -1 : 0;
		}
		flush_keep(r);
		if (stopping(r) || fetch_batch(r) != 0)
			return -1;
	}
}

/* Pipeline callback: copy a measurement of the image just handed over, to keep it. */
static int
cb_keep_measure(void *ctx, const tr_image_ref *ref, const tr_measure *m)
{
	run		   *r = ctx;
	const image_row *row;
	keep_item  *k;

	(void) ref;
	if (r->gone || r->lost)
		return 1;
	if (r->pos <= 0 || r->pos > r->nrows)
		return 0;
	if (r->nkeep == IMAGE_BATCH)
		flush_keep(r);
	row = &r->rows[r->pos - 1];
	k = &r->keep[r->nkeep];
	memcpy(k->id, row->id, sizeof(k->id));
	k->content_version = row->content_version;
	k->measure = *m;
	k->measure.features = NULL;
	k->measure.dim = 0;
	if (m->features && m->dim > 0 && m->nregions > 0)
	{
		size_t		n = sizeof(float) * (size_t) m->dim * m->nregions;

		k->measure.features = malloc(n);
		if (k->measure.features == NULL)
			return 0;			/* not kept: measured again next time */
		memcpy(k->measure.features, m->features, n);
		k->measure.dim = m->dim;
	}
	r->nkeep++;
	return 0;
}

/* Pipeline callback: progress (kept monotonic) and stage; nonzero to stop. */
static int
cb_progress(void *ctx, double fraction, const char *stage)
{
	run		   *r = ctx;

	if (stopping(r))
		return 1;
	if (fraction > r->fraction)
		r->fraction = fraction > 1.0 ? 1.0 : fraction;
	if (stage)
		snprintf(r->stage, sizeof(r->stage), "%s", stage);
	sync_progress(r, false);
	return stopping(r) ? 1 : 0;
}

/* ------------------------------------------------------------------------------------------
 * Settling a training
 * ------------------------------------------------------------------------------------------
 */

/* A write that may find its row busy ('busy': tried again 500 ms apart). */
static void
write_settled(run *r, const char *sql, int nparams, const Oid *types, const char *const *values,
			  const char *what, char *answer, size_t len)
{
	for (int i = 0; i < BUSY_TRIES; i++)
	{
		PGresult   *res;

		if (i > 0)
			nap(0.5, false);
		res = run_exec(r, sql, nparams, types, values, NULL, NULL, 0);
		text_answer(r, res, what, answer, len);
		PQclear(res);
		if (strcmp(answer, "busy") != 0)
			return;
	}
}

/* Record the training's failure and log what became of it. */
static void
fail_training(run *r, const char *error)
{
	Oid			types[3] = {UUIDOID, INT4OID, TEXTOID};
	const char *values[3];
	char		answer[16];

	if (r->lost)
		return;
	values[0] = r->c->id;
	values[1] = r->attempt;
	values[2] = error && error[0] ? error : "training failed";
	write_settled(r, "SELECT training_worker.fail($1, $2, $3)", 3, types, values,
				  "recording the failure", answer, sizeof(answer));
	if (strcmp(answer, "ok") == 0)
		logmsg("training %s failed after %.1f s: %s", r->c->id, now_s() - r->started, values[2]);
	else if (strcmp(answer, "busy") == 0)
		logmsg("training %s failed (%s), but another session holds its row; it is queued again when its lease expires",
			   r->c->id, values[2]);
	else if (strcmp(answer, "gone") == 0)
		log_claim_lost(r);
	else
		logmsg("training %s failed (%s), but the failure could not be recorded; it is queued again when its lease expires",
			   r->c->id, values[2]);
}

/* Terminated mid-training: queue it again (or fail it at training.max_attempts). */
static void
release_training(run *r)
{
	Oid			types[3] = {UUIDOID, INT4OID, TEXTOID};
	const char *values[3];
	char		cause[128],
				answer[16];

	if (r->lost)
		return;
	snprintf(cause, sizeof(cause), "its training-worker was terminated (%s)", signame(got_term));
	values[0] = r->c->id;
	values[1] = r->attempt;
	values[2] = cause;
	write_settled(r, "SELECT training_worker.release($1, $2, $3)", 3, types, values,
				  "releasing the training", answer, sizeof(answer));
	if (strcmp(answer, "waiting") == 0)
		logmsg("training %s interrupted: %s; queued again", r->c->id, cause);
	else if (strcmp(answer, "failed") == 0)
		logmsg("training %s interrupted: %s; failed (training.max_attempts reached)", r->c->id, cause);
	else if (strcmp(answer, "gone") == 0)
		log_claim_lost(r);
	else
		logmsg("training %s interrupted: %s; not released (%s); it is queued again when its lease expires",
			   r->c->id, cause, answer[0] ? "its row stays locked" : "an error");
}

/* Write the model version (or the failure the server refuses it with). */
static void
finish_training(run *r, const tr_result *res)
{
	Oid			types[4] = {UUIDOID, INT4OID, BYTEAOID, JSONBOID};
	int			formats[4] = {0, 0, 1, 0};
	int			lengths[4] = {0, 0, 0, 0};
	const char *values[4];
	char		metrics[TR_METRICS_JSON_LEN];
	char		buf[TR_ERRLEN];

	if (r->lost || r->gone)
	{
		if (r->gone)
			log_claim_lost(r);
		return;
	}
	if (tr_metrics_json(&res->metrics, res->has_metrics, metrics, sizeof(metrics)) < 0)
	{
		snprintf(buf, sizeof(buf), "the metrics of the training do not fit in %d bytes", TR_METRICS_JSON_LEN);
		fail_training(r, buf);
		return;
	}
	values[0] = r->c->id;
	values[1] = r->attempt;
	values[2] = res->parameters ? (const char *) res->parameters : "";
	lengths[2] = (int) res->parameters_len;
	values[3] = metrics;
	snprintf(r->stage, sizeof(r->stage), "saving model");
	for (int i = 0; i < BUSY_TRIES; i++)
	{
		PGresult   *pr;
		const char *state;

		if (i > 0)
			nap(0.5, false);
		pr = run_exec(r, "SELECT training_worker.finish($1, $2, $3::bytea, $4::jsonb)", 4, types, values,
					  lengths, formats, 0);
		if (pr == NULL)
		{
			if (!r->lost)
				logmsg("training %s: could not write its model version: out of memory", r->c->id);
			return;
		}
		if (PQresultStatus(pr) == PGRES_TUPLES_OK && PQntuples(pr) == 1)
		{
			int			version = PQgetisnull(pr, 0, 0) ? 0 : atoi(PQgetvalue(pr, 0, 0));
			bool		gone = PQgetisnull(pr, 0, 0);

			PQclear(pr);
			if (gone)
			{
				log_claim_lost(r);
				return;
			}
			if (version >= 0)
			{
				logmsg("training %s completed in %.1f s: model version %d", r->c->id,
					   now_s() - r->started, version);
				return;
			}
			continue;			/* -1: busy */
		}
		state = PQresultErrorField(pr, PG_DIAG_SQLSTATE);
		/* lock_timeout of the session: busy too. */
		if (state && strcmp(state, "55P03") == 0)
		{
			PQclear(pr);
			continue;
		}
		{
			const char *primary = PQresultErrorField(pr, PG_DIAG_MESSAGE_PRIMARY);

			/* 55000 (the dataset emptied), 22023 (a model of another type), or another error. */
			snprintf(buf, sizeof(buf), "%s", primary ? primary : "could not write the model version");
			if (!(state && (strcmp(state, "55000") == 0 || strcmp(state, "22023") == 0)))
			{
				char		line[TR_ERRLEN];

				logmsg("training %s: writing its model version failed: %s", r->c->id,
					   result_error(pr, line, sizeof(line)));
			}
		}
		PQclear(pr);
		fail_training(r, buf);
		return;
	}
	logmsg("training %s: its row stays locked by another session; it is queued again when its lease expires",
		   r->c->id);
}

/* The classes of the training (worker_classes); false to stop. */
static bool
load_classes(run *r, size_t *expected)
{
	Oid			types[2] = {UUIDOID, INT4OID};
	const char *values[2] = {r->c->id, r->attempt};
	PGresult   *res = run_exec(r, "SELECT class_id, label, images FROM training_worker.classes($1, $2)",
							   2, types, values, NULL, NULL, 0);
	int			n;

	*expected = 0;
	if (!run_ok(r, res, PGRES_TUPLES_OK, "reading the classes"))
	{
		PQclear(res);
		return false;
	}
	n = PQntuples(res);
	r->labels = calloc((size_t) n + 1, sizeof(char *));
	r->ids = calloc((size_t) n + 1, sizeof(char *));
	if (r->labels == NULL || r->ids == NULL)
	{
		snprintf(r->error, sizeof(r->error), "out of memory");
		PQclear(res);
		return false;
	}
	for (int i = 0; i < n; i++)
	{
		r->ids[i] = strdup(PQgetvalue(res, i, 0));
		r->labels[i] = strdup(PQgetvalue(res, i, 1));
		r->nclasses++;
		if (r->ids[i] == NULL || r->labels[i] == NULL)
		{
			snprintf(r->error, sizeof(r->error), "out of memory");
			PQclear(res);
			return false;
		}
		*expected += (size_t) strtoull(PQgetvalue(res, i, 2), NULL, 10);
	}
	PQclear(res);
	return true;
}

/*
 * Run one claimed training to its end: completed with a new model version, failed with a
 * readable error, released on SIGTERM, or left alone when the claim or the connection is lost.
 */
static void
run_training(database *d, const claim *c)
{
	run		   *r = calloc(1, sizeof(run));
	tr_config	cfg;
	const char *features;
	tr_config_error cerr;
	tr_features kind;
	tr_callbacks cb;
	tr_result	res;
	char		err[TR_ERRLEN];
	int			type,
				rc;

	if (r == NULL)
	{
		logmsg("training %s: out of memory; it is queued again when its lease expires", c->id);
		return;
	}
	r->db = d;
	r->c = c;
	snprintf(r->attempt, sizeof(r->attempt), "%d", c->attempt);
	r->started = r->last_renewed = now_s();
	snprintf(r->stage, sizeof(r->stage), "loading classes");
	logmsg("training %s started (attempt %d) in %s", c->id, c->attempt, PQdb(d->conn));

	/* The one config reader, as validate_config() at creation. */
	type = tr_type_parse(c->type);
	if (type < 0)
	{
		fail_training(r, "unknown training type");
		goto done;
	}
	if (tr_config_read(&cfg, (tr_type) type, c->config ? c->config : "{}", &cerr) != 0)
	{
		fail_training(r, cerr.message);
		goto done;
	}
	/*
	 * The feature kind, "auto" decided now for this training, and the image limit: the options, else
	 * the server's training.face_features and training.max_image_pixels.
	 */
	features = opt.face_features[0] ? opt.face_features
		: strcmp(c->face_features, TR_FEATURES_DEEP) == 0 || strcmp(c->face_features, TR_FEATURES_CLASSIC) == 0
		? c->face_features : TR_FEATURES_AUTO;
	if (tr_config_set_features(&cfg, type == TR_FACE ? features : NULL, opt.model_dir,
							   err, sizeof(err)) != 0)
	{
		fail_training(r, err);
		goto done;
	}
	cfg.max_image_pixels = opt.max_image_pixels_set || c->max_image_pixels == 0
		? opt.max_image_pixels : c->max_image_pixels;
	if (tr_resolve_features(&cfg, err, sizeof(err)) != 0)
	{
		fail_training(r, err);
		goto done;
	}
	/* "auto" without the networks: said once, as the models of this host differ from the server's. */
	if (type == TR_FACE && strcmp(features, TR_FEATURES_AUTO) == 0 && !auto_classic_logged &&
		strcmp(cfg.features, tr_features_default(TR_FEATURES_FACE)->name) == 0)
	{
		logmsg("the face networks do not load from %s: face trainings use the classic features %s (see --model-dir)",
			   opt.model_dir, cfg.features);
		auto_classic_logged = true;
	}
	/* Not the gender (a third network per face): the background pass adds it later. */
	cfg.measure_gender = 0;
	tr_config_kind(&cfg, &kind);
	snprintf(r->kind, sizeof(r->kind), "%s", cfg.features);
	r->dim = kind.dim;
	r->max_pixels = cfg.max_image_pixels;
	if (!c->has_dataset)
	{
		fail_training(r, "the source dataset of this training was deleted");
		goto done;
	}
	if (!load_classes(r, &cfg.expected_images))
		goto stopped;
	debugmsg("training %s: %d classes, %zu images, feature kind %s", c->id, r->nclasses,
			 cfg.expected_images, r->kind);
	sync_progress(r, true);
	if (stopping(r))
		goto stopped;

	memset(&cb, 0, sizeof(cb));
	memset(&res, 0, sizeof(res));
	err[0] = '\0';
	cb.ctx = r;
	cb.next_image = cb_next_image;
	cb.progress = cb_progress;
	cb.keep_measure = cb_keep_measure;
	rc = tr_train(&cfg, r->nclasses, (const char *const *) r->labels, (const char *const *) r->ids,
				  &cb, &res, err, sizeof(err));
	free_batch(r);
	if (rc == 0 && !r->gone && !r->lost)
	{
		/* What it measured, kept while the claim holds (a finished training's keeps are refused). */
		flush_keep(r);
		debugmsg("training %s: %zu images used, %zu measured, %ld measurements kept", c->id,
				 res.metrics.images_used, res.metrics.images_measured, r->kept);
		finish_training(r, &res);
		tr_result_free(&res);
		goto done;
	}
	tr_result_free(&res);
	if (rc == -1 && !stopping(r))
	{
		flush_keep(r);
		fail_training(r, err[0] ? err : "training failed");
		goto done;
	}
stopped:
	if (r->lost)
		goto done;				/* logged */
	if (r->gone)
	{
		log_claim_lost(r);
		goto done;
	}
	flush_keep(r);
	if (got_term)
		release_training(r);
	else
		fail_training(r, r->error[0] ? r->error : "training stopped");
done:
	free_batch(r);
	free_keep(r);
	for (int i = 0; i < r->nclasses; i++)
	{
		free(r->labels[i]);
		free(r->ids[i]);
	}
	free(r->labels);
	free(r->ids);
	free(r);
}

/* ------------------------------------------------------------------------------------------
 * The serial loop of one process
 * ------------------------------------------------------------------------------------------
 */

/* Claim the oldest waiting training: 1 claimed, 0 nothing waits, -1 error (logged once). */
static int
claim_training(database *d, claim *c)
{
	Oid			types[1] = {TEXTOID};
	const char *values[1] = {worker_name};
	PGresult   *res;
	char		buf[512];

	memset(c, 0, sizeof(*c));
	res = PQexecParams(d->conn,
					   "SELECT id, type, config, source_dataset_id, attempt, lease_timeout, face_features, "
					   "max_image_pixels FROM training_worker.claim($1)", 1, types, values, NULL, NULL, 0);
	if (PQstatus(d->conn) == CONNECTION_BAD)
	{
		PQclear(res);
		db_lost(d, PQerrorMessage(d->conn));
		return -1;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		result_error(res, buf, sizeof(buf));
		if (strcmp(buf, d->claim_error) != 0)
			logmsg("could not claim a training in %s: %s%s", d->label, buf,
				   state && (strcmp(state, "42501") == 0 || strcmp(state, "3F000") == 0 ||
							 strcmp(state, "42883") == 0)
				   ? " (is the extension at version 0.7.0 or later, and the role granted training_worker?)" : "");
		snprintf(d->claim_error, sizeof(d->claim_error), "%s", buf);
		PQclear(res);
		return -1;
	}
	if (d->claim_error[0])
		logmsg("claiming trainings in %s works again", d->label);
	d->claim_error[0] = '\0';
	if (PQntuples(res) == 0)
	{
		if (!d->idle)
			debugmsg("nothing waits in %s", d->label);
		d->idle = true;
		PQclear(res);
		return 0;
	}
	d->idle = false;
	snprintf(c->id, sizeof(c->id), "%s", PQgetvalue(res, 0, 0));
	snprintf(c->type, sizeof(c->type), "%s", PQgetvalue(res, 0, 1));
	c->config = strdup(PQgetisnull(res, 0, 2) ? "{}" : PQgetvalue(res, 0, 2));
	c->has_dataset = !PQgetisnull(res, 0, 3);
	snprintf(c->dataset_id, sizeof(c->dataset_id), "%s", PQgetvalue(res, 0, 3));
	c->attempt = atoi(PQgetvalue(res, 0, 4));
	c->lease = PQgetisnull(res, 0, 5) ? 30 : atoi(PQgetvalue(res, 0, 5));
	if (!PQgetisnull(res, 0, 6))
		snprintf(c->face_features, sizeof(c->face_features), "%s", PQgetvalue(res, 0, 6));
	c->max_image_pixels = PQgetisnull(res, 0, 7) ? 0 : (size_t) strtoull(PQgetvalue(res, 0, 7), NULL, 10);
	if (c->lease < 3)
		c->lease = 3;
	PQclear(res);
	if (c->config == NULL)
	{
		logmsg("training %s: out of memory; it is queued again when its lease expires", c->id);
		return -1;
	}
	return 1;
}

/*
 * Serve the databases: claim in each in turn until nothing waits, then wait. Returns the exit
 * status.
 */
static int
serve(database *dbs, int ndb)
{
	char		host[256];
	int			status = 0;

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(worker_name, sizeof(worker_name), "training-worker %s:%d", host, (int) getpid());
	if (pipe(wake_pipe) != 0 ||
		fcntl(wake_pipe[0], F_SETFL, O_NONBLOCK) != 0 || fcntl(wake_pipe[1], F_SETFL, O_NONBLOCK) != 0 ||
		fcntl(wake_pipe[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(wake_pipe[1], F_SETFD, FD_CLOEXEC) != 0)
	{
		logmsg("could not create a pipe: %s", strerror(errno));
		return 1;
	}
	tr_interrupt_hook = worker_interrupted;
	if (opt.blas_threads > 0)
		openblas_set_num_threads(opt.blas_threads);
	debugmsg("serving %d database%s as \"%s\"; face networks from %s", ndb, ndb == 1 ? "" : "s",
			 worker_name, opt.model_dir);

	while (!got_term)
	{
		bool		claimed = false,
					all_up = true;

		if (got_hup)
		{
			got_hup = 0;
			drain_wake_pipe();
			reload_options();
		}
		for (int i = 0; i < ndb && !got_term; i++)
		{
			database   *d = &dbs[i];
			claim		c;
			int			rc;

			/* --once: a database down gets one more try (after its backoff) before giving up. */
			if (d->conn == NULL && opt.once && d->retry_at > now_s() && d->outage_logged)
				nap(d->retry_at - now_s(), true);
			if (d->conn == NULL && (now_s() < d->retry_at || !db_connect(d)))
			{
				all_up = false;
				continue;
			}
			rc = claim_training(d, &c);
			if (rc < 0)
				all_up = false;
			if (rc <= 0)
				continue;
			claimed = true;
			run_training(d, &c);
			free(c.config);
		}
		if (claimed || got_term)
			continue;
		if (opt.once)
		{
			status = all_up ? 0 : 1;
			break;
		}
		wait_for_work(dbs, ndb);
	}
	if (got_term)
		logmsg("terminated (%s)", signame(got_term));
	for (int i = 0; i < ndb; i++)
		PQfinish(dbs[i].conn);
	tr_netcache_free();
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	wake_pipe[0] = wake_pipe[1] = -1;
	return got_term ? 0 : status;
}

/*
 * --jobs N: N processes, each the serial loop with its own connections (the core keeps one
 * network cache per process). The parent passes SIGTERM, SIGINT and SIGHUP on, starts a job
 * again that crashed, and returns when all have exited.
 */
static int
supervise(database *dbs, int ndb)
{
	pid_t		pids[MAX_JOBS];
	sigset_t	block,
				orig;
	int			running = 0,
				status = 0;
	bool		forwarded_term = false;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &orig);
	memset(pids, 0, sizeof(pids));
	for (;;)
	{
		pid_t		pid;
		int			st;

		/* Start the jobs not running. */
		for (int j = 0; j < opt.jobs && !got_term; j++)
		{
			if (pids[j] != 0)
				continue;
			pid = fork();
			if (pid == 0)
			{
				pid_t		parent = getppid();

				(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
				sigprocmask(SIG_SETMASK, &orig, NULL);
				if (getppid() != parent)
					_exit(0);
				exit(serve(dbs, ndb));
			}
			if (pid < 0)
			{
				logmsg("could not start a job: %s", strerror(errno));
				status = 1;
				break;
			}
			pids[j] = pid;
			running++;
		}
		if (running == 0)
			break;
		if (got_term && !forwarded_term)
		{
			for (int j = 0; j < opt.jobs; j++)
				if (pids[j] > 0)
					kill(pids[j], SIGTERM);
			forwarded_term = true;
		}
		if (got_hup)
		{
			got_hup = 0;
			for (int j = 0; j < opt.jobs; j++)
				if (pids[j] > 0)
					kill(pids[j], SIGHUP);
		}
		pid = waitpid(-1, &st, WNOHANG);
		if (pid == 0 || (pid < 0 && errno == EINTR))
		{
			sigsuspend(&orig);
			continue;
		}
		if (pid < 0)
			break;
		for (int j = 0; j < opt.jobs; j++)
			if (pids[j] == pid)
			{
				pids[j] = 0;
				running--;
				if (WIFSIGNALED(st) && !got_term)
				{
					logmsg("job %d (pid %d) was killed by signal %d%s", j + 1, (int) pid, WTERMSIG(st),
						   opt.once ? "" : "; starting it again in 1 s");
					if (opt.once)
						pids[j] = -1;
					else
					{
						sigprocmask(SIG_SETMASK, &orig, NULL);
						sleep(1);
						sigprocmask(SIG_BLOCK, &block, NULL);
					}
					status = 1;
				}
				else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
				{
					status = status ? status : WEXITSTATUS(st);
					pids[j] = -1;	/* a fatal error: not started again */
				}
				else if (!got_term && !opt.once)
				{
					/* Terminated alone (not through this process): the pool keeps its size. */
					logmsg("job %d (pid %d) exited; starting it again in 1 s", j + 1, (int) pid);
					sigprocmask(SIG_SETMASK, &orig, NULL);
					sleep(1);
					sigprocmask(SIG_BLOCK, &block, NULL);
				}
				else
					pids[j] = -1;	/* done (--once, or terminated) */
			}
	}
	sigprocmask(SIG_SETMASK, &orig, NULL);
	return got_term ? 0 : status;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"jobs", required_argument, NULL, 'j'},
		{"blas-threads", required_argument, NULL, 1},
		{"poll", required_argument, NULL, 2},
		{"progress-interval", required_argument, NULL, 3},
		{"model-dir", required_argument, NULL, 4},
		{"face-features", required_argument, NULL, 5},
		{"max-image-pixels", required_argument, NULL, 6},
		{"config", required_argument, NULL, 7},
		{"once", no_argument, NULL, 8},
		{"test-image-delay", required_argument, NULL, 9},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	char	  **conninfos = NULL;
	int			nconn = 0,
				c,
				index,
				status;
	database   *dbs;
	char		err[1024];

	settings = calloc((size_t) argc + 1, sizeof(setting));
	if (settings == NULL)
		return 1;
	while ((c = getopt_long(argc, argv, "j:vh", longopts, &index)) != -1)
	{
		const char *name = NULL;

		switch (c)
		{
			case 'j':
				name = "jobs";
				break;
			case 'v':
				name = "verbose";
				break;
			case 'h':
				usage(stdout);
				free(settings);
				return 0;
			case 7:
				config_file = optarg;
				continue;
			case 1:
			case 2:
			case 3:
			case 4:
			case 5:
			case 6:
			case 8:
			case 9:
				name = longopts[index].name;
				break;
			default:
				fprintf(stderr, "Try \"training-worker --help\" for more information.\n");
				free(settings);
				return 2;
		}
		settings[nsettings].name = name;
		settings[nsettings].value = c == 'v' || c == 8 ? NULL : optarg;
		nsettings++;
	}
	if (load_options(&opt, optind < argc ? NULL : &conninfos, &nconn, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "training-worker: %s\n", err);
		for (int i = 0; i < nconn; i++)
			free(conninfos[i]);
		free(conninfos);
		free(settings);
		return 2;
	}
	if (optind < argc)
	{
		conninfos = argv + optind;
		nconn = argc - optind;
	}
	if (nconn == 0)
	{
		fprintf(stderr, "training-worker: no database given (CONNINFO)\n"
				"Try \"training-worker --help\" for more information.\n");
		free(conninfos);
		free(settings);
		return 2;
	}
	dbs = calloc((size_t) nconn, sizeof(database));
	if (dbs == NULL)
		return 1;
	for (int i = 0; i < nconn; i++)
	{
		dbs[i].conninfo = conninfos[i];
		dbs[i].backoff = 1;
		if (!conninfo_label(conninfos[i], dbs[i].label, sizeof(dbs[i].label), err, sizeof(err)))
		{
			fprintf(stderr, "training-worker: invalid connection string \"%s\": %s",
					conninfos[i], err);
			if (err[0] && err[strlen(err) - 1] != '\n')
				fputc('\n', stderr);
			return 2;
		}
	}
	set_handlers();
	status = opt.jobs > 1 ? supervise(dbs, nconn) : serve(dbs, nconn);
	if (optind >= argc)
	{
		for (int i = 0; i < nconn; i++)
			free(conninfos[i]);
		free(conninfos);
	}
	free(dbs);
	free(settings);
	return status;
}
