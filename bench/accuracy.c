/*
 * accuracy.c: train and test the pure-C pipeline on a folder-per-class split, no server.
 *
 *   bench/accuracy DIR face|landmark NUM/DEN
 *   (TR_FEATURES=auto|deep|classic|KIND TR_MODELS=DIR: the feature kind and the networks' folder)
 * In every class folder, files in natural order: the first floor(n*NUM/DEN) train,
 * the rest test. Prints top-1 accuracy, training and recognition times.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline.h"

typedef struct file
{
	char	   *path;
	int			cls;
	int			train;
	uint8_t    *data;
	size_t		len;
} file;

static int
natcmp(const void *a, const void *b)
{
	const char *x = *(char *const *) a,
			   *y = *(char *const *) b;
	long		nx = strtol(x, NULL, 10),
				ny = strtol(y, NULL, 10);

	if (nx != ny)
		return nx < ny ? -1 : 1;
	return strcmp(x, y);
}

static int
strcmp_p(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static char **
list_dir(const char *path, int dirs, int *n)
{
	DIR		   *d = opendir(path);
	struct dirent *e;
	char	  **names = NULL;
	int			cap = 0;

	*n = 0;
	if (d == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL)
	{
		if (e->d_name[0] == '.')
			continue;
		if ((e->d_type == DT_DIR) != dirs)
			continue;
		if (*n == cap)
		{
			cap = cap ? cap * 2 : 64;
			names = realloc(names, sizeof(char *) * cap);
		}
		names[(*n)++] = strdup(e->d_name);
	}
	closedir(d);
	return names;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t    *buf;
	long		n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n > 0 ? n : 1);
	if (fread(buf, 1, n, f) != (size_t) n)
	{
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

typedef struct feed
{
	file	   *files;
	int			nfiles;
	int			pos;
} feed;

static int
next_image(void *ctx, tr_image_ref *out)
{
	feed	   *f = ctx;

	while (f->pos < f->nfiles && !f->files[f->pos].train)
		f->pos++;
	if (f->pos >= f->nfiles)
		return 0;
	out->data = f->files[f->pos].data;
	out->len = f->files[f->pos].len;
	out->class_index = f->files[f->pos].cls;
	out->has_box = 0;
	f->pos++;
	return 1;
}

int
main(int argc, char **argv)
{
	const char *dir;
	int			num,
				den,
				nclasses;
	char	  **classes;
	file	   *files = NULL;
	int			nfiles = 0,
				ntrain = 0,
				ntest = 0,
				correct = 0,
				within = 0;
	double		dist_ok = 0,
				dist_bad = 0;
	tr_config	cfg;
	tr_callbacks cb;
	tr_result	res;
	tr_model	model;
	feed		f;
	char		err[TR_ERRLEN];
	double		t0,
				c0,
				t_train,
				c_train,
				t_test,
				c_test;

	if (argc < 4 || sscanf(argv[3], "%d/%d", &num, &den) != 2)
	{
		fprintf(stderr, "usage: %s DIR face|landmark NUM/DEN\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	tr_config_default(&cfg, strcmp(argv[2], "landmark") == 0 ? TR_LANDMARK : TR_FACE);
	cfg.min_face_size = 1;
	cfg.sharpness_threshold = 0;
	/* TR_FEATURES=KIND (auto, deep, classic or a kind's name) with the networks in TR_MODELS. */
	if (getenv("TR_FEATURES"))
	{
		char		err[TR_ERRLEN];

		if (tr_config_set_features(&cfg, getenv("TR_FEATURES"), getenv("TR_MODELS"), err, sizeof(err)) != 0 ||
			tr_resolve_features(&cfg, err, sizeof(err)) != 0)
		{
			fprintf(stderr, "%s\n", err);
			return 2;
		}
	}
	/* TR_FIT="embed lr wd batch max_epochs patience val_fraction refit scale" overrides the loop. */
	if (getenv("TR_FIT"))
	{
		static tr_fit_params fp;

		tr_fit_params_default(&fp);
		sscanf(getenv("TR_FIT"), "%d %f %f %d %d %d %f %d %f", &fp.embed_dim, &fp.lr, &fp.weight_decay,
			   &fp.batch, &fp.max_epochs, &fp.patience, &fp.val_fraction, &fp.refit, &fp.scale);
		if (getenv("TR_WHITEN"))
			sscanf(getenv("TR_WHITEN"), "%d %f %d %d", &fp.pca_init, &fp.whiten, &fp.train_projection, &fp.lda);
		cfg.fit = &fp;
	}
	classes = list_dir(dir, 1, &nclasses);
	qsort(classes, nclasses, sizeof(char *), strcmp_p);
	for (int c = 0; c < nclasses; c++)
	{
		char		path[4096];
		int			n;
		char	  **names;

		snprintf(path, sizeof(path), "%s/%s", dir, classes[c]);
		names = list_dir(path, 0, &n);
		qsort(names, n, sizeof(char *), natcmp);
		files = realloc(files, sizeof(file) * (nfiles + n));
		for (int i = 0; i < n; i++)
		{
			file	   *fl = &files[nfiles++];

			snprintf(path, sizeof(path), "%s/%s/%s", dir, classes[c], names[i]);
			fl->path = strdup(path);
			fl->cls = c;
			fl->train = i < (n * num) / den;
			fl->data = read_file(path, &fl->len);
			ntrain += fl->train;
			ntest += !fl->train;
			free(names[i]);
		}
		free(names);
	}
	cfg.expected_images = ntrain;
	f.files = files;
	f.nfiles = nfiles;
	f.pos = 0;
	cb.ctx = &f;
	cb.next_image = next_image;
	cb.progress = NULL;
	t0 = now();
	c0 = cpu_now();
	if (tr_train(&cfg, nclasses, (const char *const *) classes, (const char *const *) classes,
				 &cb, &res, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "training failed: %s\n", err);
		return 1;
	}
	t_train = now() - t0;
	c_train = cpu_now() - c0;
	if (tr_model_parse(res.parameters, res.parameters_len, &model, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "model: %s\n", err);
		return 1;
	}
	t0 = now();
	c0 = cpu_now();
	for (int i = 0; i < nfiles; i++)
	{
		tr_match	m[1];
		int			nm;

		if (files[i].train)
			continue;
		if (tr_recognize(&model, cfg.model_dir[0] ? cfg.model_dir : NULL, files[i].data, files[i].len, 0, NULL, 1, NULL, m, &nm, err, sizeof(err)) != 0)
		{
			fprintf(stderr, "%s: %s\n", files[i].path, err);
			continue;
		}
		if (strcmp(model.labels[m[0].class_index], classes[files[i].cls]) == 0)
		{
			correct++;
			dist_ok += m[0].distance;
			within += m[0].distance <= 1.0;
		}
		else
			dist_bad += m[0].distance;
	}
	t_test = now() - t0;
	c_test = cpu_now() - c0;
	printf("pipeline  top-1 %.1f%% (%d/%d)  train %.3f s wall %.3f s cpu (%d images)  "
		   "recognize %.1f images/s wall %.1f images/cpu-s  model %zu bytes\n",
		   100.0 * correct / ntest, correct, ntest, t_train, c_train, ntrain, ntest / t_test,
		   ntest / c_test, res.parameters_len);
	printf("distance  mean %.3f when right, %.3f when wrong; %d of %d right answers within max_distance 1.0\n",
		   correct ? dist_ok / correct : 0, ntest - correct ? dist_bad / (ntest - correct) : 0, within, correct);
	printf("metrics   train accuracy %.6f, %zu images used, %ld skipped, %d classes, %s features (%d) -> %d, "
		   "%d of %d epochs, %.3f s, %.3f GFLOP\n",
		   res.metrics.train_accuracy, res.metrics.images_used, res.metrics.images_skipped_total,
		   res.metrics.classes, res.metrics.feature_kind, res.metrics.feature_dim, res.metrics.embedding_dim,
		   res.metrics.epochs_run, res.metrics.epochs, res.metrics.train_seconds, res.metrics.gflop);
	tr_model_free(&model);
	tr_result_free(&res);
	for (int i = 0; i < nfiles; i++)
	{
		free(files[i].path);
		free(files[i].data);
	}
	free(files);
	for (int c = 0; c < nclasses; c++)
		free(classes[c]);
	free(classes);
	return 0;
}
