/*
 * blas.c - the OpenBLAS kernels in use (blas.h).
 */
#include "blas.h"

#include <cblas.h>

const char *
tr_blas_core(void)
{
	const char *name = openblas_get_corename();

	return name && *name ? name : "unknown";
}
