/*
 * blas.h: which OpenBLAS kernels run in this process.
 *
 * OpenBLAS picks its kernels once, when it is loaded: from the CPU, or from the
 * OPENBLAS_CORETYPE environment variable when it is set. The choice changes speed
 * (AVX-512 kernels run the face networks about 1.3x faster than AVX2 ones on the same
 * CPU) and the last bits of float results, so the server shows it (training.blas_core).
 */
#ifndef TRAINING_BLAS_H
#define TRAINING_BLAS_H

/* The kernels OpenBLAS runs in this process (e.g. "Haswell", "SkylakeX", "Cooperlake"). */
extern const char *tr_blas_core(void);

#endif
