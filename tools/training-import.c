/*
 * training-import: load a folder-per-class directory into a new dataset, from any
 * client machine (libpq), with a progress bar; report what was skipped and why.
 *
 *   training-import [-d CONNINFO] [-n NAME] [-t face|landmark] [--first N/D | --rest N/D] DIR
 *   training-import [-d CONNINFO] --recognize MODEL [--first N/D | --rest N/D] DIR
 *
 * Every sub-folder of DIR is a class (label and reference = folder name); every
 * file in it an image, in natural order (2.pgm before 10.pgm). --first N/D keeps
 * the first floor(n*N/D) files of each class, --rest the others (standard splits).
 * --recognize sends the files to training.recognize(MODEL) instead, and prints the
 * top-1 accuracy against the folder names and the images per second.
 * The dataset id is printed on standard output; progress and the report go to
 * standard error. Exit status: 0, 1 on a fatal error, 2 on bad usage.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

typedef struct entry
{
	char	   *name;
	char	   *path;
} entry;

static int
natural_cmp(const char *a, const char *b)
{
	while (*a && *b)
	{
		if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9')
		{
			char	   *ea,
					   *eb;
			unsigned long long na = strtoull(a, &ea, 10),
						nb = strtoull(b, &eb, 10);

			if (na != nb)
				return na < nb ? -1 : 1;
			a = ea;
			b = eb;
		}
		else
		{
			if (*a != *b)
				return (unsigned char) *a < (unsigned char) *b ? -1 : 1;
			a++;
			b++;
		}
	}
	return *a ? 1 : (*b ? -1 : 0);
}

static int
entry_cmp(const void *x, const void *y)
{
	return natural_cmp(((const entry *) x)->name, ((const entry *) y)->name);
}

/* Entries of dir that are directories (dirs = 1) or regular files (dirs = 0), sorted. */
static entry *
list(const char *dir, int dirs, int *n)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	entry	   *v = NULL;
	int			cap = 0;

	*n = 0;
	if (d == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL)
	{
		char	   *path;
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		path = malloc(strlen(dir) + strlen(e->d_name) + 2);
		sprintf(path, "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0 || (dirs ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)))
		{
			free(path);
			continue;
		}
		if (*n == cap)
		{
			cap = cap ? 2 * cap : 64;
			v = realloc(v, sizeof(entry) * cap);
		}
		v[*n].name = strdup(e->d_name);
		v[*n].path = path;
		(*n)++;
	}
	closedir(d);
	if (*n > 1)
		qsort(v, *n, sizeof(entry), entry_cmp);
	return v;
}

static char *
read_all(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf = NULL;
	size_t		cap = 0,
				n = 0,
				r;

	if (f == NULL)
		return NULL;
	do
	{
		if (n == cap)
		{
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	*len = n;
	return buf;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
progress(int done, int total, int skipped, double t0, int final)
{
	static int	last = -1;
	int			width = 30,
				filled = total > 0 ? done * width / total : width;
	int			pct = total > 0 ? done * 100 / total : 100;
	double		el = now() - t0;

	if (!isatty(STDERR_FILENO))
	{
		/* Not a terminal: a line every 10 %. */
		if (pct / 10 != last / 10 || (final && pct != last))
			fprintf(stderr, "%3d%%  %d/%d images, %d skipped, %.1f s\n", pct, done, total, skipped, el);
		last = pct;
		return;
	}
	fprintf(stderr, "\r[");
	for (int i = 0; i < width; i++)
		fputc(i < filled ? '#' : '.', stderr);
	fprintf(stderr, "] %3d%%  %d/%d images, %d skipped, %.0f images/s ", pct, done, total, skipped,
			el > 0 ? done / el : 0.0);
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
}

/* One-row, one-column query with text parameters; NULL (and a message) on error. */
static char *
query_value(PGconn *conn, const char *sql, int nparams, const char *const *params, char **errmsg)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	char	   *v = NULL;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		v = strdup(PQgetvalue(res, 0, 0));
	else if (errmsg)
		*errmsg = strdup(PQresultErrorMessage(res));
	PQclear(res);
	return v;
}

static void
usage(const char *argv0)
{
	fprintf(stderr,
			"usage: %s [-d CONNINFO] [-n NAME] [-t face|landmark] [--first N/D | --rest N/D] DIR\n"
			"       %s [-d CONNINFO] --recognize MODEL [--first N/D | --rest N/D] DIR\n"
			"Loads every sub-folder of DIR as a class of a new dataset (or recognizes its files).\n",
			argv0, argv0);
}

typedef struct skip
{
	char	   *path;
	char	   *why;
} skip;

int
main(int argc, char **argv)
{
	const char *conninfo = "",
			   *name = NULL,
			   *type = "face",
			   *dir = NULL,
			   *model = NULL;
	int			split_num = 1,
				split_den = 1,
				split_rest = 0;
	PGconn	   *conn;
	entry	   *classes;
	int			nclasses,
				total = 0,
				done = 0,
				nskipped = 0,
				correct = 0,
				answered = 0;
	entry	  **files;
	int		   *nfiles;
	char	   *dataset_id = NULL,
			   *err = NULL;
	skip	   *skipped = NULL;
	double		t0;

	for (int i = 1; i < argc; i++)
	{
		if ((strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--dbname") == 0) && i + 1 < argc)
			conninfo = argv[++i];
		else if ((strcmp(argv[i], "-n") == 0 || strcmp(argv[i], "--name") == 0) && i + 1 < argc)
			name = argv[++i];
		else if ((strcmp(argv[i], "-t") == 0 || strcmp(argv[i], "--type") == 0) && i + 1 < argc)
			type = argv[++i];
		else if (strcmp(argv[i], "--recognize") == 0 && i + 1 < argc)
			model = argv[++i];
		else if ((strcmp(argv[i], "--first") == 0 || strcmp(argv[i], "--rest") == 0) && i + 1 < argc)
		{
			split_rest = strcmp(argv[i], "--rest") == 0;
			if (sscanf(argv[++i], "%d/%d", &split_num, &split_den) != 2 || split_den <= 0 ||
				split_num < 0 || split_num > split_den)
			{
				usage(argv[0]);
				return 2;
			}
		}
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
		{
			usage(argv[0]);
			return 0;
		}
		else if (argv[i][0] != '-' && dir == NULL)
			dir = argv[i];
		else
		{
			usage(argv[0]);
			return 2;
		}
	}
	if (dir == NULL)
	{
		usage(argv[0]);
		return 2;
	}
	classes = list(dir, 1, &nclasses);
	if (classes == NULL || nclasses == 0)
	{
		fprintf(stderr, "%s: no class folders in %s%s%s\n", argv[0], dir,
				errno ? ": " : "", errno ? strerror(errno) : "");
		return 1;
	}
	files = calloc(nclasses, sizeof(entry *));
	nfiles = calloc(nclasses, sizeof(int));
	for (int c = 0; c < nclasses; c++)
	{
		int			n,
					cut;
		entry	   *all = list(classes[c].path, 0, &n);

		cut = (int) ((long) n * split_num / split_den);
		if (split_rest)
		{
			files[c] = all + cut;
			nfiles[c] = n - cut;
		}
		else
		{
			files[c] = all;
			nfiles[c] = split_den == 1 ? n : cut;
		}
		total += nfiles[c];
	}

	conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s: %s", argv[0], PQerrorMessage(conn));
		return 1;
	}
	PQclear(PQexec(conn, "SET application_name = 'training-import'"));

	if (model == NULL)
	{
		const char *p[3];
		char	   *base = strrchr(dir, '/') && strrchr(dir, '/')[1] ? strrchr(dir, '/') + 1 : (char *) dir;

		p[0] = name ? name : base;
		p[1] = type;
		p[2] = "imported by training-import";
		dataset_id = query_value(conn, "SELECT training.create_dataset(name => $1, type => $2, description => $3)->>'id'",
								 3, p, &err);
		if (dataset_id == NULL)
		{
			fprintf(stderr, "%s: cannot create the dataset: %s", argv[0], err);
			return 1;
		}
		fprintf(stderr, "dataset %s (%s): %d classes, %d images from %s\n", p[0], type, nclasses, total, dir);
	}
	else
		fprintf(stderr, "recognizing %d images of %d classes from %s with model %s\n", total, nclasses, dir, model);

	t0 = now();
	progress(0, total, 0, t0, 0);
	for (int c = 0; c < nclasses; c++)
	{
		char	   *class_id = NULL;

		if (model == NULL)
		{
			const char *p[3] = {dataset_id, classes[c].name, classes[c].name};

			class_id = query_value(conn, "SELECT training.create_class(dataset_id => $1::uuid, label => $2, reference => $3)->>'id'",
								   3, p, &err);
			if (class_id == NULL)
			{
				fprintf(stderr, "\n%s: cannot create class %s: %s", argv[0], classes[c].name, err);
				return 1;
			}
		}
		for (int i = 0; i < nfiles[c]; i++)
		{
			size_t		len = 0;
			char	   *data = read_all(files[c][i].path, &len);
			const char *values[2];
			int			lengths[2] = {0, 0},
						formats[2] = {0, 1};
			PGresult   *res;
			const char *why = NULL;
			char		whybuf[512];

			if (data == NULL)
			{
				snprintf(whybuf, sizeof(whybuf), "cannot read: %s", strerror(errno));
				why = whybuf;
				res = NULL;
			}
			else if (model == NULL)
			{
				values[0] = class_id;
				values[1] = data;
				lengths[1] = (int) len;
				res = PQexecParams(conn, "SELECT training.add_image(class_id => $1::uuid, data => $2::bytea)",
								   2, NULL, values, lengths, formats, 0);
			}
			else
			{
				values[0] = model;
				values[1] = data;
				lengths[1] = (int) len;
				res = PQexecParams(conn, "SELECT training.recognize(model => $1, image => $2::bytea, max_distance => 2)"
								   "->'detections'->0->>'label'",
								   2, NULL, values, lengths, formats, 0);
			}
			if (res && PQresultStatus(res) != PGRES_TUPLES_OK)
			{
				const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
				const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

				snprintf(whybuf, sizeof(whybuf), "%s (%s)", msg ? msg : "error", state ? state : "?");
				why = whybuf;
				/* A connection lost is fatal; anything else skips this file. */
				if (PQstatus(conn) != CONNECTION_OK)
				{
					fprintf(stderr, "\n%s: connection lost: %s", argv[0], PQerrorMessage(conn));
					return 1;
				}
			}
			else if (res && model != NULL)
			{
				answered++;
				if (!PQgetisnull(res, 0, 0) && strcmp(PQgetvalue(res, 0, 0), classes[c].name) == 0)
					correct++;
			}
			if (why)
			{
				skipped = realloc(skipped, sizeof(skip) * (nskipped + 1));
				skipped[nskipped].path = files[c][i].path;
				skipped[nskipped].why = strdup(why);
				nskipped++;
			}
			PQclear(res);
			free(data);
			done++;
			progress(done, total, nskipped, t0, 0);
		}
		free(class_id);
	}
	progress(done, total, nskipped, t0, 1);
	{
		double		el = now() - t0;

		if (model == NULL)
			fprintf(stderr, "imported %d of %d images into %d classes in %.1f s (%.0f images/s); %d skipped\n",
					done - nskipped, total, nclasses, el, el > 0 ? done / el : 0.0, nskipped);
		else
			fprintf(stderr, "top-1 %.1f%% (%d/%d)  %.1f images/s in one session; %d failed\n",
					answered ? 100.0 * correct / answered : 0.0, correct, answered,
					el > 0 ? done / el : 0.0, nskipped);
	}
	for (int k = 0; k < nskipped; k++)
		if (k < 50)
			fprintf(stderr, "  skipped %s: %s\n", skipped[k].path, skipped[k].why);
	if (nskipped > 50)
		fprintf(stderr, "  ... and %d more\n", nskipped - 50);
	if (dataset_id)
		printf("%s\n", dataset_id);
	else
		printf("%.4f\n", answered ? (double) correct / answered : 0.0);
	PQfinish(conn);
	return 0;
}
