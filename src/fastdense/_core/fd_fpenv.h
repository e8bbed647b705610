/* Denormals during training: flush-to-zero (FTZ) and denormals-are-zero (DAZ) in the SSE
 * control register of the calling thread, for the length of one compiled training call.
 *
 * Subnormal floats (below 1.2e-38 in float32, 2.2e-308 in float64) cost the x86 cores a
 * micro-code assist each time one is produced or read: a digits fit whose Adam moments
 * decay into that range ran 53 µs per update instead of 37 after 30 epochs. TensorFlow
 * (Keras's default back end) and XLA train with FTZ/DAZ set on the CPU; so does fastdense,
 * unless fastdense.set_flush_denormals(False). NaN and ±inf are unaffected.
 *
 *   unsigned int saved = fd_fp_enter(flush);   ... the training call ...   fd_fp_leave(saved);
 *
 * fd_fp_csr() reads the calling thread's register, fd_fp_adopt(csr) sets it (the update
 * pool's workers adopt the caller's, so threaded and serial updates stay bitwise equal).
 * Without SSE (another architecture) every function does nothing. */
#ifndef FD_FPENV_H
#define FD_FPENV_H

#if defined(__SSE__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 1)
#include <xmmintrin.h>
#define FD_MXCSR_FTZ_DAZ 0x8040u      /* bit 15 FTZ, bit 6 DAZ */

static inline unsigned int fd_fp_csr(void) { return _mm_getcsr(); }

static inline void fd_fp_adopt(unsigned int csr)
{
    if (_mm_getcsr() != csr)
        _mm_setcsr(csr);
}

static inline unsigned int fd_fp_enter(int flush)
{
    unsigned int saved = _mm_getcsr();
    unsigned int want = flush ? saved | FD_MXCSR_FTZ_DAZ : saved & ~FD_MXCSR_FTZ_DAZ;
    if (want != saved)
        _mm_setcsr(want);
    return saved;
}

static inline void fd_fp_leave(unsigned int saved) { fd_fp_adopt(saved); }

/* 1 when the calling thread's register flushes (for tests) */
static inline int fd_fp_flushing(void)
{
    return (_mm_getcsr() & FD_MXCSR_FTZ_DAZ) == FD_MXCSR_FTZ_DAZ;
}
#else
static inline unsigned int fd_fp_csr(void) { return 0; }
static inline void fd_fp_adopt(unsigned int csr) { (void)csr; }
static inline unsigned int fd_fp_enter(int flush) { (void)flush; return 0; }
static inline void fd_fp_leave(unsigned int saved) { (void)saved; }
static inline int fd_fp_flushing(void) { return 0; }
#endif

#endif
