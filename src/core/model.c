/*
 * model.c: serialize and parse model versions (little-endian float32, versioned header).
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_D (1 << 20)
#define MAX_E 65536
#define MAX_C (1 << 20)
#define MAX_STR 65536

typedef struct wbuf
{
	uint8_t    *p;
	size_t		len,
				cap;
	int			oom;
} wbuf;

static void
put(wbuf *b, const void *src, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 4096;
		uint8_t    *np;

		while (cap < b->len + n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (np == NULL)
		{
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

static void
put_u32(wbuf *b, uint32_t v)
{
	uint8_t		x[4] = {v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >> 24) & 255};

	put(b, x, 4);
}

static void
put_f32s(wbuf *b, const float *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		uint32_t	u;

		memcpy(&u, &v[i], 4);
		put_u32(b, u);
	}
}

static void
put_str(wbuf *b, const char *s)
{
	size_t		n = s ? strlen(s) : 0;

	put_u32(b, (uint32_t) n);
	put(b, s ? s : "", n);
}

int
tr_model_serialize(const tr_model *m, uint8_t **out, size_t *len)
{
	wbuf		b = {NULL, 0, 0, 0};
	const tr_net *net = &m->net;
	int			E = TR_NET_EDIM(net);
	char		kind[32];

	put(&b, TR_MODEL_MAGIC, 4);
	put_u32(&b, TR_MODEL_FORMAT_VERSION);
	put_u32(&b, (uint32_t) m->type);
	put_u32(&b, (uint32_t) net->d);
	put_u32(&b, (uint32_t) net->e);
	put_u32(&b, (uint32_t) net->c);
	put_f32s(&b, &net->s, 1);
	memset(kind, 0, sizeof(kind));
	memcpy(kind, m->feature_kind, strnlen(m->feature_kind, sizeof(kind) - 1));
	put(&b, kind, sizeof(kind));
	put_u32(&b, (uint32_t) m->min_face_size);
	put_u32(&b, (uint32_t) m->sharpness_threshold);
	for (int k = 0; k < net->c; k++)
	{
		put_str(&b, m->class_ids ? m->class_ids[k] : "");
		put_str(&b, m->labels ? m->labels[k] : "");
	}
	put_f32s(&b, net->mean, net->d);
	if (net->e > 0)
		put_f32s(&b, net->W1, (size_t) net->e * net->d);
	put_f32s(&b, net->W2, (size_t) net->c * E);
	if (b.oom)
	{
		free(b.p);
		return -1;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

typedef struct rbuf
{
	const uint8_t *p;
	size_t		len,
				pos;
} rbuf;

static int
get_u32(rbuf *r, uint32_t *v)
{
	if (r->len - r->pos < 4)
		return -1;
	*v = (uint32_t) r->p[r->pos] | ((uint32_t) r->p[r->pos + 1] << 8) |
		((uint32_t) r->p[r->pos + 2] << 16) | ((uint32_t) r->p[r->pos + 3] << 24);
	r->pos += 4;
	return 0;
}

static int
get_f32s(rbuf *r, float *v, size_t n)
{
	if ((r->len - r->pos) / 4 < n)
		return -1;
	for (size_t i = 0; i < n; i++)
	{
		uint32_t	u = 0;

		get_u32(r, &u);
		memcpy(&v[i], &u, 4);
	}
	return 0;
}

static char *
get_str(rbuf *r)
{
	uint32_t	n;
	char	   *s;

	if (get_u32(r, &n) != 0 || n > MAX_STR || r->len - r->pos < n)
		return NULL;
	s = malloc(n + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, r->p + r->pos, n);
	s[n] = '\0';
	r->pos += n;
	return s;
}

int
tr_model_parse(const uint8_t *p, size_t len, tr_model *m, char *err, size_t errlen)
{
	rbuf		r = {p, len, 0};
	uint32_t	ver,
				type,
				d,
				e,
				c,
				mfs,
				sth;
	float		s;
	size_t		E,
				need;

	memset(m, 0, sizeof(*m));
	if (len < 4 || memcmp(p, TR_MODEL_MAGIC, 4) != 0)
	{
		snprintf(err, errlen, "model parameters are not a training model (bad magic)");
		return -1;
	}
	r.pos = 4;
	if (get_u32(&r, &ver) || get_u32(&r, &type) || get_u32(&r, &d) || get_u32(&r, &e) ||
		get_u32(&r, &c) || get_f32s(&r, &s, 1) || r.len - r.pos < 32)
		goto truncated;
	if (ver != TR_MODEL_FORMAT_VERSION)
	{
		snprintf(err, errlen, "model format version %u is not supported (this build reads version %d)",
				 ver, TR_MODEL_FORMAT_VERSION);
		return -1;
	}
	if (type > 1 || d == 0 || d > MAX_D || e > MAX_E || c == 0 || c > MAX_C)
	{
		snprintf(err, errlen, "model header is invalid (type %u, dims %u/%u/%u)", type, d, e, c);
		return -1;
	}
	m->format_version = (int) ver;
	m->type = (int) type;
	memcpy(m->feature_kind, p + r.pos, 32);
	m->feature_kind[31] = '\0';
	r.pos += 32;
	if (get_u32(&r, &mfs) || get_u32(&r, &sth))
		goto truncated;
	m->min_face_size = (int) mfs;
	m->sharpness_threshold = (int) sth;
	{
		const tr_features *f = tr_features_find(m->feature_kind);

		if (f == NULL || f->dim != (int) d)
		{
			snprintf(err, errlen, "model uses feature kind \"%s\" (dim %u), unknown to this build",
					 m->feature_kind, d);
			return -1;
		}
	}
	m->class_ids = calloc(c, sizeof(char *));
	m->labels = calloc(c, sizeof(char *));
	if (m->class_ids == NULL || m->labels == NULL)
		goto oom;
	m->net.c = (int) c;			/* so that tr_model_free frees the strings read so far */
	for (uint32_t k = 0; k < c; k++)
	{
		m->class_ids[k] = get_str(&r);
		m->labels[k] = get_str(&r);
		if (m->class_ids[k] == NULL || m->labels[k] == NULL)
			goto truncated;
	}
	E = e > 0 ? e : d;
	need = ((size_t) d + (size_t) e * d + (size_t) c * E) * 4;
	if (r.len - r.pos != need)
		goto truncated;
	{
		char	  **ids = m->class_ids,
				  **labels = m->labels;

		if (tr_net_alloc(&m->net, (int) d, (int) e, (int) c, s) != 0)
		{
			m->net.c = (int) c;
			goto oom;
		}
		m->class_ids = ids;
		m->labels = labels;
	}
	get_f32s(&r, m->net.mean, d);
	if (e > 0)
		get_f32s(&r, m->net.W1, (size_t) e * d);
	get_f32s(&r, m->net.W2, (size_t) c * E);
	return 0;

truncated:
	snprintf(err, errlen, "model parameters are truncated or corrupt");
	tr_model_free(m);
	return -1;
oom:
	snprintf(err, errlen, "out of memory loading a model");
	tr_model_free(m);
	return -1;
}

void
tr_model_free(tr_model *m)
{
	for (int k = 0; k < m->net.c; k++)
	{
		if (m->class_ids)
			free(m->class_ids[k]);
		if (m->labels)
			free(m->labels[k]);
	}
	free(m->class_ids);
	free(m->labels);
	tr_net_free(&m->net);
	memset(m, 0, sizeof(*m));
}
