/* Run-time choice of instruction set for the hand-written loops (fm_kernels.h,
 * update_kernels.h). Each extension module that includes this header has its own
 * fd_isa, selected by its own set_isa(); the default is the best the CPU supports. */
#ifndef FASTDENSE_FD_ISA_H
#define FASTDENSE_FD_ISA_H

/* FD_X86_DISPATCH: GCC target attributes and __builtin_cpu_supports on x86-64, so each
 * loop is built for several instruction sets; elsewhere (or with -DFD_X86_DISPATCH=0) one
 * portable copy. */
#ifndef FD_X86_DISPATCH
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FD_X86_DISPATCH 1
#else
#define FD_X86_DISPATCH 0
#endif
#endif

enum { FD_ISA_BASE = 0, FD_ISA_AVX2 = 1, FD_ISA_AVX512 = 2 };

static int fd_isa = FD_ISA_BASE;

/* The widest instruction set this CPU supports. */
static int fd_isa_best(void)
{
#if FD_X86_DISPATCH
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

/* FD_DISPATCHED(name, params, args): the void function FD(name) running the always-inline
 * FD(name##_body), compiled once per instruction set and chosen by fd_isa at each call
 * (FD(x) is the including template's name-mangling macro). */
#if FD_X86_DISPATCH
#define FD_DISPATCHED(name, params, args)                                            \
    static void FD(name##_base) params { FD(name##_body) args; }                     \
    __attribute__((target("avx2,fma"))) static void FD(name##_avx2) params           \
        { FD(name##_body) args; }                                                    \
    __attribute__((target("avx512f,avx512vl,avx2,fma,prefer-vector-width=512")))     \
    static void FD(name##_avx512) params { FD(name##_body) args; }                   \
    static void FD(name) params {                                                    \
        switch (fd_isa) {                                                            \
        case FD_ISA_AVX512: FD(name##_avx512) args; return;                          \
        case FD_ISA_AVX2: FD(name##_avx2) args; return;                              \
        default: FD(name##_base) args; return;                                       \
        }                                                                            \
    }
#else
#define FD_DISPATCHED(name, params, args)                                            \
    static void FD(name) params { FD(name##_body) args; }
#endif

/* FD_DISPATCHED_VB(name, params, call, body_args): the same for a body that also takes
 * the instruction set's vector width in bytes (16, 32, 64), a constant in each copy:
 * body_args(vb) is its argument list with that width, call the list without it. */
#if FD_X86_DISPATCH
#define FD_DISPATCHED_VB(name, params, call, body_args)                              \
    static void FD(name##_base) params { FD(name##_body) body_args(16); }            \
    __attribute__((target("avx2,fma"))) static void FD(name##_avx2) params           \
        { FD(name##_body) body_args(32); }                                           \
    __attribute__((target("avx512f,avx512vl,avx2,fma,prefer-vector-width=512")))     \
    static void FD(name##_avx512) params { FD(name##_body) body_args(64); }          \
    static void FD(name) params {                                                    \
        switch (fd_isa) {                                                            \
        case FD_ISA_AVX512: FD(name##_avx512) call; return;                          \
        case FD_ISA_AVX2: FD(name##_avx2) call; return;                              \
        default: FD(name##_base) call; return;                                       \
        }                                                                            \
    }
#else
#define FD_DISPATCHED_VB(name, params, call, body_args)                              \
    static void FD(name) params { FD(name##_body) body_args(16); }
#endif

#endif
