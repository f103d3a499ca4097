/*
 * fuzz_model.c - libFuzzer target for the model format parser (src/core/model.c):
 * tr_model_parse of the input; a model that parses must serialize, and that
 * serialization must parse again and serialize to the same bytes.
 * Built and run by "make fuzz" (seeds: test/fuzz/make-corpus.sh).
 */
#include "model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tr_model	m,
				m2;
	char		err[256];
	uint8_t    *b1 = NULL,
			   *b2 = NULL;
	size_t		n1 = 0,
				n2 = 0;

	if (tr_model_parse(data, size, &m, err, sizeof(err)) != 0)
		return 0;
	if (tr_model_serialize(&m, &b1, &n1) != 0)
		abort();
	if (tr_model_parse(b1, n1, &m2, err, sizeof(err)) != 0)
		abort();				/* what we wrote must read back */
	if (tr_model_serialize(&m2, &b2, &n2) != 0)
		abort();
	if (n1 != n2 || memcmp(b1, b2, n1) != 0)
		abort();				/* and round-trip unchanged */
	free(b1);
	free(b2);
	tr_model_free(&m2);
	tr_model_free(&m);
	return 0;
}
