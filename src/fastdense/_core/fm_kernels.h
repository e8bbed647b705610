/* Run-time dispatch of the feature-major kernels (see fm_template.h). */
#ifndef FASTDENSE_FM_KERNELS_H
#define FASTDENSE_FM_KERNELS_H
#include <stddef.h>

enum { FD_ISA_BASE = 0, FD_ISA_AVX2 = 1, FD_ISA_AVX512 = 2 };

static int fd_isa = FD_ISA_BASE;

/* The widest instruction set this CPU supports. */
static int fd_isa_best(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
        return FD_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return FD_ISA_AVX2;
#endif
    return FD_ISA_BASE;
}

/* Select an instruction set, at most the best supported; returns the one in force. */
static int fd_set_isa(int isa)
{
    int best = fd_isa_best();
    fd_isa = isa < 0 ? best : (isa > best ? best : isa);
    return fd_isa;
}

#define T float
#define SUF f
#include "fm_template.h"
#undef T
#undef SUF
#define T double
#define SUF d
#include "fm_template.h"
#undef T
#undef SUF

#endif
