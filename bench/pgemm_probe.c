/* Would a packed matrix product of fastdense's own beat OpenBLAS on the BLAS path's shapes?
 *
 *     bench/pgemm_probe.sh N_IN N_OUT BATCH     (builds and runs this file)
 *
 * The three products of a feature-major layer (forward Z = Wᵀ·A, dW = A·Dᵀ, dA = W·D; W is
 * N_IN × N_OUT row-major, A N_IN × BATCH, D N_OUT × BATCH), each timed through the
 * single-thread SGEMM of the OpenBLAS SciPy ships (dlopen, thread count set to 1) and
 * through a packed AVX-512 product written the classic way (Goto, BLIS): op(B) copied in
 * blocks of KC × NC into panels of 32 columns, op(A) in blocks of MC × KC into panels of
 * 12 rows (plain scalar copies), and a 12 × 32 tile of C kept in 24 registers across each
 * block's sum (two loads of B's panel and twelve broadcasts of A per step). Then each way
 * again on two threads
 * at once (own buffers, no sharing): how much a second vCPU adds to these products.
 * Medians of 11 blocks; the results are checked against each other.
 *
 * Found (2026-12-03 19:12, the 2-core Xeon VM, load 1.1; GFLOP/s of OpenBLAS's single
 * thread, then packed ÷ OpenBLAS): 256→256 at batch 128: forward 65, 0.94×; dW 75,
 * 1.02×; dA 79, 0.70×. 512→512 at batch 64: 60, 0.94×; 73, 1.11×; 76, 0.71×. 784→512 at
 * batch 128: 59, 0.98×; 76, 1.01×; 75, 0.85×. Two at once gave 1.5–2.1× one thread's
 * throughput, for either. An earlier cut (vector copies for the panels that lie
 * contiguously, W read where it lies) ran 0.9–1.3× OpenBLAS's single thread at 18:30;
 * built into dense.pyx (float32 with AVX-512, each product split in row or column halves
 * over fd_pool.h's pool, the bias/activation epilogue on the thread that made its half)
 * it lost to the OpenBLAS path in whole fits, 0.65–1.05× over 10-256-256-1 at batch
 * 64–256, 10-512-512-1 at 64 and `wide` (medians of 25 alternating rounds): there its two
 * halves ran no quicker than one thread (a 256→256 layer's forward and backward at batch
 * 128: 613 µs on one thread, 659 on two, the worker taking its half in 75 of 80
 * products; slower still with the worker kept spinning). Not kept; README, "Where the
 * matrix-product time goes".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fm_timing.h"

typedef void (*sgemm_fn)(const char *, const char *, const int *, const int *, const int *,
                         const float *, const float *, const int *, const float *,
                         const int *, const float *, float *, const int *);
static sgemm_fn p_sgemm;

enum { MR = 12, NR = 32, KC = 256, MC = 96, NC = 512, BLOCKS = 11 };

/* C's tile (mr rows, columns masked by m0/m1) (+)= ap (k × MR, packed) · bp (k × NR) */
__attribute__((target("avx512f,fma"), noinline)) static void
kernel(int k, const float *ap, const float *bp, float *c, long ldc, int acc, int mr,
       __mmask16 m0, __mmask16 m1)
{
    __m512 c0[MR], c1[MR];
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int p = 0; p < k; p++, ap += MR, bp += NR) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            __m512 v = _mm512_set1_ps(ap[r]);
            c0[r] = _mm512_fmadd_ps(v, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(v, b1, c1[r]);
        }
    }
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        if (acc) {
            c0[r] = _mm512_add_ps(c0[r], _mm512_maskz_loadu_ps(m0, cr));
            c1[r] = _mm512_add_ps(c1[r], _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, c0[r]);
        _mm512_mask_storeu_ps(cr + 16, m1, c1[r]);
    }
}

/* op(A)[r, p] = a[r·rs + p·cs]: [0, m) × [0, k) into panels of MR rows (zero-padded) */
static void pack_a(float *dst, const float *a, long rs, long cs, int m, int k)
{
    for (int i = 0; i < m; i += MR, dst += (long)k * MR)
        for (int p = 0; p < k; p++)
            for (int r = 0; r < MR; r++)
                dst[p * MR + r] = i + r < m ? a[(i + r) * rs + p * cs] : 0;
}

/* op(B)[p, j] = b[p·rs + j·cs]: [0, k) × [0, n) into panels of NR columns (zero-padded) */
static void pack_b(float *dst, const float *b, long rs, long cs, int k, int n)
{
    for (int j = 0; j < n; j += NR, dst += (long)k * NR)
        for (int p = 0; p < k; p++)
            for (int c = 0; c < NR; c++)
                dst[p * NR + c] = j + c < n ? b[p * rs + (j + c) * cs] : 0;
}

/* C (m × n, row-major) = op(A)·op(B); buf: KC·(MC + NC + NR) floats */
static void pgemm(int m, int n, int k, const float *a, long ars, long acs, const float *b,
                  long brs, long bcs, float *c, long ldc, float *buf)
{
    float *apack = buf, *bpack = buf + (long)KC * MC;
    for (int jc = 0; jc < n; jc += NC) {
        int nc = n - jc < NC ? n - jc : NC;
        for (int pc = 0; pc < k; pc += KC) {
            int kc = k - pc < KC ? k - pc : KC;
            pack_b(bpack, b + pc * brs + jc * bcs, brs, bcs, kc, nc);
            for (int ic = 0; ic < m; ic += MC) {
                int mc = m - ic < MC ? m - ic : MC;
                pack_a(apack, a + ic * ars + pc * acs, ars, acs, mc, kc);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
                    __mmask16 m1 = nr >= 32 ? 0xffff
                                   : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
                    for (int ir = 0; ir < mc; ir += MR)
                        kernel(kc, apack + (long)ir * kc, bpack + (long)jr * kc,
                               c + (long)(ic + ir) * ldc + jc + jr, ldc, pc > 0,
                               mc - ir < MR ? mc - ir : MR, m0, m1);
                }
            }
        }
    }
}

static void blas_rm(int ta, int tb, int m, int n, int k, const float *a, int lda,
                    const float *b, int ldb, float *c, int ldc)
{
    char cta = ta ? 'T' : 'N', ctb = tb ? 'T' : 'N';
    float one = 1, zero = 0;
    p_sgemm(&ctb, &cta, &n, &m, &k, &one, b, &ldb, a, &lda, &zero, c, &ldc);
}

typedef struct {
    int ni, no, n, which, packed, reps;
    float *w, *a, *d, *out, *bpack;
    double seconds;
} Job;

static float *fbuf(long n)
{
    float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
    for (long i = 0; i < n; i++) p[i] = (float)(rand() / (double)RAND_MAX - 0.5);
    return p;
}

static void job_init(Job *j, int ni, int no, int n)
{
    j->ni = ni; j->no = no; j->n = n;
    j->w = fbuf((long)ni * no); j->a = fbuf((long)ni * n); j->d = fbuf((long)no * n);
    j->out = fbuf((long)ni * no + (long)ni * n + (long)no * n);   /* holds any of the three */
    j->bpack = fbuf((long)KC * (MC + NC + NR));
}

static void job_once(Job *j)
{
    int ni = j->ni, no = j->no, n = j->n;
    if (j->which == 0) {
        if (j->packed) pgemm(no, n, ni, j->w, 1, no, j->a, n, 1, j->out, n, j->bpack);
        else blas_rm(1, 0, no, n, ni, j->w, no, j->a, n, j->out, n);
    } else if (j->which == 1) {
        if (j->packed) pgemm(ni, no, n, j->a, n, 1, j->d, 1, n, j->out, no, j->bpack);
        else blas_rm(0, 1, ni, no, n, j->a, n, j->d, n, j->out, no);
    } else {
        if (j->packed) pgemm(ni, n, no, j->w, no, 1, j->d, n, 1, j->out, n, j->bpack);
        else blas_rm(0, 0, ni, n, no, j->w, no, j->d, n, j->out, n);
    }
}

static void *job_run(void *arg)
{
    Job *j = arg;
    double t0 = now();
    for (int r = 0; r < j->reps; r++) job_once(j);
    j->seconds = (now() - t0) / j->reps;
    return NULL;
}

int main(int argc, char **argv)
{
    const char *lib = getenv("FD_BLAS_LIB");
    void *h = lib ? dlopen(lib, RTLD_NOW) : NULL;
    void (*set_threads)(int) = h ? (void (*)(int))dlsym(h, "scipy_openblas_set_num_threads") : NULL;
    p_sgemm = h ? (sgemm_fn)dlsym(h, "scipy_sgemm_") : NULL;
    if (!p_sgemm || !set_threads || argc != 4) {
        fprintf(stderr, "usage: FD_BLAS_LIB=<SciPy's OpenBLAS> %s N_IN N_OUT BATCH\n", argv[0]);
        return 2;
    }
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) { fprintf(stderr, "no AVX-512 here\n"); return 2; }
    set_threads(1);
    int ni = atoi(argv[1]), no = atoi(argv[2]), n = atoi(argv[3]);
    const char *names[3] = {"forward Wt.A", "dW = A.Dt", "dA = W.D"};
    Job jobs[2];
    job_init(&jobs[0], ni, no, n);
    job_init(&jobs[1], ni, no, n);
    double flops = 2.0 * ni * no * n;
    for (int which = 0; which < 3; which++) {
        double t[2][2][BLOCKS];           /* [packed][two at once][block] */
        /* the product's size: Z no × n, dW ni × no, dA ni × n */
        long cnt = which == 0 ? (long)no * n : which == 1 ? (long)ni * no : (long)ni * n;
        float *ref = malloc(sizeof(float) * (size_t)cnt);
        for (int packed = 0; packed < 2; packed++) {
            jobs[0].which = which; jobs[0].packed = packed; jobs[0].reps = 1;
            job_once(&jobs[0]);
            if (!packed) memcpy(ref, jobs[0].out, sizeof(float) * (size_t)cnt);
        }
        double err = 0, mag = 0;
        for (long i = 0; i < cnt; i++) {
            double e = fabs((double)ref[i] - jobs[0].out[i]);
            if (e > err) err = e;
            if (fabs(ref[i]) > mag) mag = fabs(ref[i]);
        }
        int reps = (int)(5e7 / flops) + 1;
        for (int b = 0; b < BLOCKS; b++)
            for (int packed = 0; packed < 2; packed++)
                for (int two = 0; two < 2; two++) {
                    pthread_t tid;
                    for (int q = 0; q < 2; q++) {
                        jobs[q].which = which; jobs[q].packed = packed; jobs[q].reps = reps;
                    }
                    if (two) pthread_create(&tid, NULL, job_run, &jobs[1]);
                    job_run(&jobs[0]);
                    if (two) pthread_join(tid, NULL);
                    t[packed][two][b] = two ? (jobs[0].seconds > jobs[1].seconds
                                               ? jobs[0].seconds : jobs[1].seconds)
                                            : jobs[0].seconds;
                }
        for (int p = 0; p < 2; p++)
            for (int q = 0; q < 2; q++) qsort(t[p][q], BLOCKS, sizeof(double), cmp_d);
        int M = BLOCKS / 2;
        printf("%4d->%-4d batch %-4d %-13s OpenBLAS 1 thread %6.1f GFLOP/s, 2 at once %4.2fx | "
               "packed %6.1f GFLOP/s (%.2fx OpenBLAS), 2 at once %4.2fx | max diff %.1e of %.1e\n",
               ni, no, n, names[which], flops / t[0][0][M] / 1e9,
               2 * t[0][0][M] / t[0][1][M], flops / t[1][0][M] / 1e9, t[0][0][M] / t[1][0][M],
               2 * t[1][0][M] / t[1][1][M], err, mag);
        free(ref);
    }
    return 0;
}
