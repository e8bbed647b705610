/* The profile harnesses' clock, the comparison their medians sort with, and their
 * 64-byte-aligned buffers of values in [-0.5, 0.5] (bench/fm_profile.c,
 * bench/fm_profile_split.c, bench/mk_split_probe.c). */
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static float *fbuf(ptrdiff_t n)
{
    float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64 + 64);
    for (ptrdiff_t i = 0; i < n; i++) p[i] = (float)((rand() / (double)RAND_MAX) - 0.5);
    return p;
}
