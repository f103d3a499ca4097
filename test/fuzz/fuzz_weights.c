/*
 * fuzz_weights.c - libFuzzer target for the tfjs weights loader
 * (src/core/nn/weights.c, nn_weights_parse_mem).  Input: the manifest JSON, then
 * up to 4 shards, each after a line "--" (bytes "\n--\n"); the shards are
 * named "0", "1", ... in the manifest's "paths".  A loaded tensor must have
 * size = product of its shape and size readable floats.
 * Built and run by "make fuzz" (seeds: test/fuzz/make-corpus.sh).
 */
#include "nn/nn.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SHARDS 4
#define SEP "\n--\n"
#define SEPLEN 4

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Offset of the next separator at or after pos, or size. */
static size_t
next_sep(const uint8_t *data, size_t size, size_t pos)
{
	for (size_t i = pos; i + SEPLEN <= size; i++)
		if (memcmp(data + i, SEP, SEPLEN) == 0)
			return i;
	return size;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[MAX_SHARDS] = {"0", "1", "2", "3"};
	const unsigned char *parts[MAX_SHARDS];
	size_t		lens[MAX_SHARDS];
	int			n = 0;
	size_t		mlen = next_sep(data, size, 0);
	size_t		pos = mlen;
	char	   *manifest;
	char		err[NN_ERRLEN];
	nn_weights	w;

	while (pos < size && n < MAX_SHARDS)
	{
		size_t		start = pos + SEPLEN;
		size_t		end = n == MAX_SHARDS - 1 ? size : next_sep(data, size, start);

		parts[n] = data + start;
		lens[n] = end - start;
		n++;
		pos = end;
	}
	/* A private copy, so that reading past the manifest is an ASan error. */
	manifest = malloc(mlen ? mlen : 1);
	if (!manifest)
		return 0;
	memcpy(manifest, data, mlen);
	if (nn_weights_parse_mem(manifest, mlen, n, names, parts, lens, &w, err) == 0)
	{
		size_t		bytes = 0;

		for (int i = 0; i < w.n; i++)
		{
			const nn_tensor *t = &w.t[i];
			size_t		prod = 1;
			volatile float sum = 0;

			if (t->ndim < 0 || t->ndim > 4 || t->name == NULL)
				abort();
			for (int k = 0; k < t->ndim; k++)
				if (t->shape[k] < 1 || __builtin_mul_overflow(prod, (size_t) t->shape[k], &prod))
					abort();	/* shape product overflows */
			if (prod != t->size || t->data == NULL)
				abort();		/* size is not the shape's product */
			for (size_t j = 0; j < t->size; j++)
				sum += t->data[j];
			(void) sum;
			bytes += t->size * sizeof(float);
			if (nn_weights_find(&w, t->name, 0, err) == NULL)
				abort();		/* (names may repeat: the first one wins) */
		}
		if (bytes != w.bytes)
			abort();
		nn_weights_free(&w);
	}
	free(manifest);
	return 0;
}
