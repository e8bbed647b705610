/* Run-time choice of instruction set for the hand-written loops (fm_kernels.h,
 * update_kernels.h). Each extension module that includes this header has its own
 * fd_isa, selected by its own set_isa(); the default is the best the CPU supports. */
#ifndef FASTDENSE_FD_ISA_H
#define FASTDENSE_FD_ISA_H

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

#endif
