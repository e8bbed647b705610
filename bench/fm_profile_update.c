/* The optimizer loops for bench/fm_profile.c, compiled as setup.py compiles updates.pyx
 * (-fno-math-errno, so that sqrt vectorises). */
#include <math.h>
#include <stddef.h>
#include "update_kernels.h"

void prof_adam_f(float *p, const float *g, float *m, float *v, ptrdiff_t n, float alpha,
                 float b1c, float b2c, float eps, float lr)
{
    adam_step_f(p, g, m, v, NULL, n, alpha, b1c, b2c, eps, lr, 0, 1, INFINITY, 1);
}

void prof_sgd_f(float *p, const float *g, ptrdiff_t n, float lr)
{
    sgd_step_f(p, g, n, lr, 0, 1, INFINITY, 1);
}

void prof_set_isa(int isa) { fd_set_isa(isa); }
