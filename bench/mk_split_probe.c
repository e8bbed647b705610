/* Would the register-blocked kernels (fm_gemm.h), split over both cores, beat OpenBLAS on
 * the products past MK_MAX_WORK? One WIDTH × WIDTH ReLU layer's three products at batch
 * BATCH, as an update of plain SGD runs them: forward with bias and ReLU, dA ⊙ [A > 0], and
 * W ← W − lr·A·Dᵀ in the weight-gradient product's epilogue (float32, AVX-512).
 *
 *     bench/mk_split_probe.sh MODE WIDTH BATCH [CHUNKS]    (builds and runs this file)
 *
 * MODE 0: one thread, the kernels as dense.pyx calls them.
 *      1: two threads, each product cut in two halves of rows (forward: outputs; dA and
 *         the SGD product: inputs), the second half on a worker pinned to CPU 1 that spins
 *         between products (the halves are whole tiles, so every entry is summed as on
 *         one thread).
 *      2: the same three products through SciPy's OpenBLAS (its own threads; no epilogue):
 *         the GEMM floor.
 *      3: as 1 but through fd_pool.h's pool (CHUNKS pieces a product, default 8, claimed on
 *         demand; its worker sleeps after FD_POOL_SPIN pauses: the .sh builds it with the
 *         default and with FD_POOL_SPIN=40000, MODE 3 and 4).
 * Median of 31 blocks of 200 updates, after 50 untimed; buffers 64-byte aligned.
 *
 * Found (2026-12-06, 2-core AMD EPYC Zen 4 VM, quiet; the modes in turn, µs per update):
 * w=512 batch 32, 19:47, three rounds: one thread 620, 535, 522; split 412, 410, 365;
 * OpenBLAS 434, 674, 395; pool 457, 455, 371; pool spinning 378, 386, 400. Five more rounds
 * of split and OpenBLAS, 20:15-20:22: 325/369, 730/413, 410/679, 397/597, 399/424. Split ÷
 * OpenBLAS: 0.88-0.95 where neither had a slow minute, median 0.90 over the 8 rounds.
 * Batch 64, three rounds: one thread 1,105, 1,279, 1,229; split 748, 769, 1,160; OpenBLAS
 * 656, 667, 933. The split runs the kernels 1.3-1.5x faster than one thread but about 10 %
 * under OpenBLAS at batch 32 (and slower at 64), before any of the cost whole fits add to
 * split products (see README, "Where the matrix-product time goes"): not the >= 1.3x over
 * JAX's scan that issue 12 asks at w=512, so it was not built into dense.pyx.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fm_kernels.h"
#include "fd_pool.h"
#include "fm_timing.h"
#include "fm_blas.h"

static ptrdiff_t N, NI, NO;
static float *W, *B, *A, *Z, *D, *DA, *DW;

__attribute__((target("avx512f,avx512vl,avx2,fma,prefer-vector-width=512")))
static void part(int stage, ptrdiff_t r0, ptrdiff_t r1)
{
    if (stage == 0)   /* forward, outputs r0..r1 */
        mk_run_64_f(W + r0, 1, NO, A, N, NI, Z + r0 * N, N, r1 - r0, N, MK_EPI_FWD, 0, B + r0,
                    FD_ACT_RELU, 0, NULL, 0, 0);
    else if (stage == 1)  /* dA, inputs r0..r1 */
        mk_run_64_f(W + r0 * NO, NO, 1, D, N, NO, DA + r0 * N, N, r1 - r0, N, MK_EPI_DGRAD, 0,
                    NULL, FD_ACT_RELU, 0, A + r0 * N, N, 0);
    else   /* SGD rows r0..r1 of W */
        mk_dw_64_f(A + r0 * N, D, W + r0 * NO, NULL, N, r1 - r0, NO, 0, 1e-6f, 1);
}
static _Atomic long job_seq = 0, done_seq = 0;
static int job_stage;
static void *worker(void *arg)
{
    (void)arg;
    cpu_set_t s; CPU_ZERO(&s); CPU_SET(1, &s); pthread_setaffinity_np(pthread_self(), sizeof s, &s);
    long seen = 0;
    for (;;) {
        long j;
        while ((j = atomic_load_explicit(&job_seq, memory_order_acquire)) == seen) __builtin_ia32_pause();
        if (j < 0) return NULL;
        seen = j;
        int st = job_stage;
        ptrdiff_t rows = st == 0 ? NO : NI;
        part(st, rows / 2, rows);
        atomic_store_explicit(&done_seq, j, memory_order_release);
    }
}
static void run_split(int st)
{
    ptrdiff_t rows = st == 0 ? NO : NI;
    job_stage = st;
    long j = atomic_load(&job_seq) + 1;
    atomic_store_explicit(&job_seq, j, memory_order_release);
    part(st, 0, rows / 2);
    while (atomic_load_explicit(&done_seq, memory_order_acquire) != j) __builtin_ia32_pause();
}
static int NCH = 8;
static void chunk_fn(void *arg, ptrdiff_t c)
{
    int st = *(int *)arg;
    ptrdiff_t rows = st == 0 ? NO : NI;
    ptrdiff_t per = (rows / NCH + 7) / 8 * 8;
    ptrdiff_t r0 = c * per, r1 = r0 + per > rows ? rows : r0 + per;
    if (r0 < r1) part(st, r0, r1);
}
static void run_pool(int st) { fd_pool_run(2, NCH, chunk_fn, &st); }
static void update(int mode)
{
    if (mode == 0) { part(0, 0, NO); part(1, 0, NI); part(2, 0, NI); }
    else if (mode == 1) { run_split(0); run_split(1); run_split(2); }
    else if (mode == 3) { run_pool(0); run_pool(1); run_pool(2); }
    else {
        gemm_rm(1, 0, NO, N, NI, W, NO, A, N, Z, N);
        gemm_rm(0, 0, NI, N, NO, W, NO, D, N, DA, N);
        gemm_rm(0, 1, NI, NO, N, A, N, D, N, DW, NO);
    }
}
int main(int argc, char **argv)
{
    int mode = atoi(argv[1]);
    if (argc > 4) NCH = atoi(argv[4]);
    NI = NO = atoi(argv[2]); N = atoi(argv[3]);
    fd_isa = FD_ISA_AVX512;
    if (!fm_blas_open()) return 2;
    cpu_set_t s; CPU_ZERO(&s); CPU_SET(0, &s);
    if (mode == 1) pthread_setaffinity_np(pthread_self(), sizeof s, &s);
    W = fbuf(NI * NO); B = fbuf(NO); A = fbuf(NI * N); Z = fbuf(NO * N); D = fbuf(NO * N);
    DA = fbuf(NI * N); DW = fbuf(NI * NO);
    pthread_t t;
    if (mode == 1) pthread_create(&t, NULL, worker, NULL);
    enum { BLOCKS = 31 };
    int per = 200;
    double med[BLOCKS];
    for (int i = 0; i < 50; i++) update(mode);
    for (int b = 0; b < BLOCKS; b++) {
        double t0 = now();
        for (int i = 0; i < per; i++) update(mode);
        med[b] = (now() - t0) / per;
    }
    qsort(med, BLOCKS, sizeof(double), cmp_d);
    double flop = 6.0 * N * NI * NO;
    printf("mode %d%s w=%ld n=%ld: %.1f us/update (%.0f GFLOP/s)  q1 %.1f q3 %.1f\n", mode,
           mode == 3 && FD_POOL_SPIN > 64 ? " (long spin)" : "", (long)NI,
           (long)N, med[BLOCKS / 2] * 1e6, flop / med[BLOCKS / 2] * 1e-9, med[BLOCKS / 4] * 1e6,
           med[3 * BLOCKS / 4] * 1e6);
    if (mode == 1) { atomic_store(&job_seq, -1); pthread_join(t, NULL); }
    return 0;
}
