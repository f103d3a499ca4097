/*
 * weights.c - load tfjs weights manifests (model-weights_manifest.json +
 * binary shards) into dequantized float32 tensors.
 *
 * A manifest is an array of groups {"paths": [...], "weights": [...]}; the
 * shards of a group are concatenated and the tensors of the group follow
 * each other in that buffer.  A tensor is float32, or float32 quantized to
 * uint8/uint16 where value = q * scale + min (as tfjs decodeWeights does).
 */
#include "nn.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Elements in one tensor at most (1 GiB of float32). */
#define NN_MAX_TENSOR ((size_t) 1 << 28)

/* Format a message into err; return -1 for "return nn_fail(...)". */
int
nn_fail(char *err, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(err, NN_ERRLEN, fmt, ap);
	va_end(ap);
	return -1;
}

/* Find a tensor by a printf-formatted name, any size. */
const nn_tensor *
nn_weights_getf(const nn_weights *w, char *err, const char *fmt,...)
{
	char		name[256];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	return nn_weights_find(w, name, 0, err);
}

/* Read a whole file; NULL with err set on failure. */
static char *
read_file(const char *path, size_t *len, char *err)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;
	long		n;

	if (!f)
	{
		nn_fail(err, "could not open model file \"%s\"", path);
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
	{
		fclose(f);
		nn_fail(err, "could not read model file \"%s\"", path);
		return NULL;
	}
	buf = malloc((size_t) n + 1);
	if (!buf)
	{
		fclose(f);
		nn_fail(err, "out of memory reading \"%s\"", path);
		return NULL;
	}
	if (fread(buf, 1, (size_t) n, f) != (size_t) n)
	{
		free(buf);
		fclose(f);
		nn_fail(err, "could not read model file \"%s\"", path);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = (size_t) n;
	return buf;
}

void
nn_weights_free(nn_weights *w)
{
	for (int i = 0; i < w->n; i++)
	{
		free(w->t[i].name);
		free(w->t[i].data);
	}
	free(w->t);
	w->t = NULL;
	w->n = 0;
	w->bytes = 0;
}

/* Decode one tensor entry at buf[*off]; advances *off. */
static int
decode_tensor(const cJSON *e, const unsigned char *buf, size_t len,
			  size_t *off, nn_tensor *t, char *err)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
	const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
	const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
	const cJSON *q = cJSON_GetObjectItemCaseSensitive(e, "quantization");
	const cJSON *dim;
	size_t		size = 1;
	int			qbytes = 4;
	double		scale = 1.0,
				min = 0.0;

	if (!cJSON_IsString(name) || !cJSON_IsArray(shape) || !cJSON_IsString(dtype))
		return nn_fail(err, "weights manifest entry lacks name, shape or dtype");
	if (strcmp(dtype->valuestring, "float32") != 0)
		return nn_fail(err, "tensor \"%s\": unsupported dtype \"%s\"",
					name->valuestring, dtype->valuestring);
	if (cJSON_GetArraySize(shape) > 4)
		return nn_fail(err, "tensor \"%s\": more than 4 dimensions", name->valuestring);
	t->ndim = 0;
	cJSON_ArrayForEach(dim, shape)
	{
		size_t		d;

		if (!cJSON_IsNumber(dim) || !(dim->valuedouble >= 1 && dim->valuedouble <= 1e7) ||
			dim->valuedouble != (double) (int) dim->valuedouble)
			return nn_fail(err, "tensor \"%s\": bad shape", name->valuestring);
		d = (size_t) dim->valuedouble;
		/* Check before multiplying: four dimensions of 65536 wrap to 0. */
		if (size > NN_MAX_TENSOR / d)
			return nn_fail(err, "tensor \"%s\": too large", name->valuestring);
		t->shape[t->ndim++] = (int) d;
		size *= d;
	}
	if (q)
	{
		const cJSON *qd = cJSON_GetObjectItemCaseSensitive(q, "dtype");
		const cJSON *qs = cJSON_GetObjectItemCaseSensitive(q, "scale");
		const cJSON *qm = cJSON_GetObjectItemCaseSensitive(q, "min");

		if (!cJSON_IsString(qd) || !cJSON_IsNumber(qs) || !cJSON_IsNumber(qm))
			return nn_fail(err, "tensor \"%s\": unsupported quantization", name->valuestring);
		if (strcmp(qd->valuestring, "uint8") == 0)
			qbytes = 1;
		else if (strcmp(qd->valuestring, "uint16") == 0)
			qbytes = 2;
		else
			return nn_fail(err, "tensor \"%s\": unsupported quantization dtype \"%s\"",
						name->valuestring, qd->valuestring);
		scale = qs->valuedouble;
		min = qm->valuedouble;
	}
	/* size <= NN_MAX_TENSOR: size * qbytes and size * sizeof(float) cannot overflow. */
	if (*off > len || len - *off < size * (size_t) qbytes)
		return nn_fail(err, "tensor \"%s\": weight file too short", name->valuestring);

	t->size = size;
	t->name = strdup(name->valuestring);
	t->data = malloc(size * sizeof(float));
	if (!t->name || !t->data)
		return nn_fail(err, "out of memory loading weights");

	const unsigned char *p = buf + *off;

	for (size_t i = 0; i < size; i++)
	{
		if (qbytes == 1)
			t->data[i] = (float) (p[i] * scale + min);
		else if (qbytes == 2)
			t->data[i] = (float) ((p[2 * i] | (p[2 * i + 1] << 8)) * scale + min);
		else
			memcpy(&t->data[i], p + 4 * i, 4);	/* little-endian host */
	}
	*off += size * (size_t) qbytes;
	return 0;
}

/*
 * Where the shards of a manifest come from: files of a directory (dir set),
 * or buffers in memory (names[i] -> data[i], lens[i]).
 */
typedef struct shard_src
{
	const char *dir;
	int			n;
	const char *const *names;
	const unsigned char *const *data;
	const size_t *lens;
} shard_src;

/* Append shard `path` of src to *buf (*len bytes so far). */
static int
shard_append(const shard_src *src, const char *path, unsigned char **buf,
			 size_t *len, char *err)
{
	const unsigned char *part = NULL;
	char	   *file = NULL;
	size_t		n = 0;
	unsigned char *nbuf;

	if (src->dir)
	{
		char		full[4096];

		snprintf(full, sizeof(full), "%s/%s", src->dir, path);
		file = read_file(full, &n, err);
		if (!file)
			return -1;
		part = (const unsigned char *) file;
	}
	else
	{
		int			i;

		for (i = 0; i < src->n; i++)
			if (strcmp(src->names[i], path) == 0)
				break;
		if (i == src->n)
			return nn_fail(err, "could not open model file \"%s\"", path);
		part = src->data[i];
		n = src->lens[i];
	}
	if (n > 0)
	{
		if (n > SIZE_MAX - *len)
		{
			free(file);
			return nn_fail(err, "weight files too large");
		}
		nbuf = realloc(*buf, *len + n);
		if (!nbuf)
		{
			free(file);
			return nn_fail(err, "out of memory loading weights");
		}
		*buf = nbuf;
		memcpy(*buf + *len, part, n);
		*len += n;
	}
	free(file);
	return 0;
}

/* Parse manifest text (len bytes, need not be NUL-terminated). */
static int
parse_manifest(const char *manifest, size_t mlen, const shard_src *src,
			   nn_weights *w, char *err)
{
	cJSON	   *root = cJSON_ParseWithLength(manifest, mlen);
	const cJSON *group;
	int			total = 0;
	int			rc = 0;

	memset(w, 0, sizeof(*w));
	if (!cJSON_IsArray(root))
	{
		cJSON_Delete(root);
		return nn_fail(err, "weights manifest is not a JSON array");
	}
	cJSON_ArrayForEach(group, root)
	{
		const cJSON *ws = cJSON_GetObjectItemCaseSensitive(group, "weights");

		if (!cJSON_IsArray(ws))
		{
			cJSON_Delete(root);
			return nn_fail(err, "weights manifest group lacks \"weights\"");
		}
		if (cJSON_GetArraySize(ws) > INT_MAX - total)
		{
			cJSON_Delete(root);
			return nn_fail(err, "weights manifest has too many tensors");
		}
		total += cJSON_GetArraySize(ws);
	}
	w->t = calloc(total > 0 ? total : 1, sizeof(nn_tensor));
	if (!w->t)
	{
		cJSON_Delete(root);
		return nn_fail(err, "out of memory loading weights");
	}

	cJSON_ArrayForEach(group, root)
	{
		const cJSON *paths = cJSON_GetObjectItemCaseSensitive(group, "paths");
		const cJSON *ws = cJSON_GetObjectItemCaseSensitive(group, "weights");
		const cJSON *path;
		const cJSON *e;
		unsigned char *buf = NULL;
		size_t		len = 0,
					off = 0;

		if (!cJSON_IsArray(paths))
		{
			rc = nn_fail(err, "weights manifest group lacks \"paths\"");
			break;
		}
		/* Concatenate the shards of the group. */
		cJSON_ArrayForEach(path, paths)
		{
			if (!cJSON_IsString(path) || strchr(path->valuestring, '/') != NULL)
			{
				rc = nn_fail(err, "weights manifest has a bad shard path");
				break;
			}
			if (shard_append(src, path->valuestring, &buf, &len, err) != 0)
			{
				rc = -1;
				break;
			}
		}
		if (rc == 0)
		{
			cJSON_ArrayForEach(e, ws)
			{
				if (decode_tensor(e, buf, len, &off, &w->t[w->n], err) != 0)
				{
					w->n++;		/* free what was allocated */
					rc = -1;
					break;
				}
				w->bytes += w->t[w->n].size * sizeof(float);
				w->n++;
			}
		}
		free(buf);
		if (rc != 0)
			break;
	}
	cJSON_Delete(root);
	if (rc != 0)
		nn_weights_free(w);
	return rc;
}

int
nn_weights_parse(const char *manifest, const char *dir, nn_weights *w, char *err)
{
	shard_src	src = {dir, 0, NULL, NULL, NULL};

	return parse_manifest(manifest, strlen(manifest), &src, w, err);
}

/* nn_weights_parse_mem (nn.h): a manifest and its shards in memory. */
int
nn_weights_parse_mem(const char *manifest, size_t mlen, int nshards,
					 const char *const *names, const unsigned char *const *data,
					 const size_t *lens, nn_weights *w, char *err)
{
	shard_src	src = {NULL, nshards, names, data, lens};

	return parse_manifest(manifest, mlen, &src, w, err);
}

int
nn_weights_load(const char *dir, const char *model, nn_weights *w, char *err)
{
	char		path[4096];
	size_t		len;
	char	   *text;
	int			rc;

	memset(w, 0, sizeof(*w));
	snprintf(path, sizeof(path), "%s/%s-weights_manifest.json", dir, model);
	text = read_file(path, &len, err);
	if (!text)
		return -1;
	rc = nn_weights_parse(text, dir, w, err);
	free(text);
	return rc;
}

const nn_tensor *
nn_weights_find(const nn_weights *w, const char *name, size_t size, char *err)
{
	for (int i = 0; i < w->n; i++)
	{
		if (strcmp(w->t[i].name, name) == 0)
		{
			if (size != 0 && w->t[i].size != size)
			{
				nn_fail(err, "tensor \"%s\" has %zu values, expected %zu",
					 name, w->t[i].size, size);
				return NULL;
			}
			return &w->t[i];
		}
	}
	nn_fail(err, "tensor \"%s\" is missing from the model", name);
	return NULL;
}
