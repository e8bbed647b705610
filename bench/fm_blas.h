/* The harnesses' single-precision GEMM through the OpenBLAS SciPy ships, loaded by dlopen
 * (bench/fm_profile.c, bench/mk_split_probe.c), the library named by FD_BLAS_LIB. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*sgemm_fn)(const char *, const char *, const int *, const int *, const int *,
                         const float *, const float *, const int *, const float *,
                         const int *, const float *, float *, const int *);
static sgemm_fn p_sgemm;

/* blas.pxd's gemm_rm: row-major C = op(A)·op(B), passed to the Fortran routine swapped */
static void gemm_rm(int ta, int tb, int m, int n, int k, const float *a, int lda,
                    const float *b, int ldb, float *c, int ldc)
{
    const char cta = ta ? 'T' : 'N', ctb = tb ? 'T' : 'N';
    const float one = 1, zero = 0;
    p_sgemm(&ctb, &cta, &n, &m, &k, &one, b, &ldb, a, &lda, &zero, c, &ldc);
}

/* Open FD_BLAS_LIB and find its sgemm; returns the library's handle (for further
 * symbols), or NULL after saying why on stderr. */
static void *fm_blas_open(void)
{
    const char *lib = getenv("FD_BLAS_LIB");
    void *h;
    if (!lib) { fprintf(stderr, "FD_BLAS_LIB not set\n"); return NULL; }
    if (!(h = dlopen(lib, RTLD_NOW))) { fprintf(stderr, "%s\n", dlerror()); return NULL; }
    if (!(p_sgemm = (sgemm_fn)dlsym(h, "scipy_sgemm_"))) {
        fprintf(stderr, "scipy_sgemm_ missing\n");
        return NULL;
    }
    return h;
}
