/*
 * fuzz_decode.c - libFuzzer target for the image decoders (src/core/decode.c):
 * tr_decode of the input with a 4,000,000 pixel limit; a decoded image must
 * have 1 or 3 channels and width*height*channels readable bytes.
 * Built and run by "make fuzz" (seeds: test/fuzz/make-corpus.sh).
 */
#include "decode.h"

#include <stdint.h>
#include <stdlib.h>

#define FUZZ_MAX_PIXELS ((size_t) 4000000)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tr_image	img = {0};
	tr_format	fmt = TR_FMT_UNKNOWN;
	char		err[256];
	int			rc = tr_decode(data, size, FUZZ_MAX_PIXELS, &img, &fmt, err, sizeof(err));

	if (rc == TR_DECODE_OK)
	{
		size_t		n;
		volatile unsigned sum = 0;

		if (img.width <= 0 || img.height <= 0 || (img.channels != 1 && img.channels != 3) ||
			img.pixels == NULL || (size_t) img.width * img.height > FUZZ_MAX_PIXELS)
			abort();
		/* Every pixel byte must be inside the allocation (ASan checks). */
		n = (size_t) img.width * img.height * img.channels;
		for (size_t i = 0; i < n; i++)
			sum += img.pixels[i];
		(void) sum;
	}
	else if (rc != TR_DECODE_CORRUPT && rc != TR_DECODE_TOO_LARGE)
		abort();
	tr_image_free(&img);
	return 0;
}
