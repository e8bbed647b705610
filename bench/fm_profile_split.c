/* Can one digits update use both cores? (the intra-step split, feasibility)
 *
 *     bench/fm_profile_split.sh            (builds and runs this file)
 *
 * The digits workload (64-64-64-10 ReLU, softmax + sparse CE, Adam, batch 32, float32)
 * through fm_kernels.h's micro-kernels, as train.pyx's forward_backward runs it with every
 * layer on the micro-kernel path (no BLAS). Measured:
 *   fma   the forward micro-kernel (64→64, 32 samples) alone on one thread, then the same
 *         on two threads at once (own buffers): do the two vCPUs give twice the FMAs?
 *   (a)   one thread, the whole update in sequence: gather, forward, head, backward,
 *         finite check, Adam (batch 32)
 *   (b)   two threads: each gathers, forwards, heads (scaled by the full batch's 1/32) and
 *         backwards 16 samples into its own gradient buffer; spin barrier; each sums its
 *         half of the parameter range (g0 += g1) and checks it finite; spin barrier (the
 *         verdict); each runs Adam on its half; spin barrier
 *   (c)   as (b) but the sum, check and Adam on the first thread alone (the second idle)
 *   (d)   as (c) but the halves claimed on demand from one counter (fd_pool.h's way): a
 *         thread that is late (its core taken by another process) leaves its half to the
 *         other, which never waits for a half not started
 *   (s)   (b)'s work on one thread, in sequence (both halves, then the sum): the cost of
 *         the split itself, and the fallback when one thread is available
 * Each: UPDATES updates a block, the median of BLOCKS blocks; the variants alternate.
 * FD_PIN=0: threads not pinned (default pinned to CPUs 0 and 1). FD_PARTS=1: first the
 * parts alone on one thread (forward + head + backward of 32 rows, of each 16-row half,
 * the sum of the two gradients, the finite check, Adam).
 *
 * Found (2026-12-03, 2 vCPUs, AVX-512; a quiet window, the machine being shared): the
 * micro-kernel does get twice the throughput on two threads (100 → 208 GFLOP/s), but a
 * 16-row half's forward + head + backward costs ~85 % of the 32-row whole (17.6-18.3 µs
 * against 21.0: the 64→64 forward takes as long at 16 rows as at 32), so (b) was 34.1 µs
 * against (a)'s 27.2 (1.25×), (s) 53.3; with the other core busy (b) was 3-4× (a).
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fm_kernels.h"
/* bench/fm_profile_update.c */
void prof_adam_f(float *p, const float *g, float *m, float *v, ptrdiff_t n, float alpha,
                 float b1c, float b2c, float eps, float lr);
void prof_set_isa(int isa);

#include "fm_timing.h"

#define L 3
static const ptrdiff_t SIZES[L + 1] = {64, 64, 64, 10};
static const int ACT[L] = {FD_ACT_RELU, FD_ACT_RELU, FD_ACT_LINEAR};
enum { NB = 32, XROWS = 1797 };

/* one thread's workspace */
typedef struct {
    float *acts[L + 1], *pre, *y, *d0, *d1, *scratch, *grads;
    double loss;
    char pad[64];
} Ws;

static ptrdiff_t P, w_off[L], b_off[L];
static float *params, *m_, *v_, *X, *Y;
static ptrdiff_t rows[NB];
static Ws ws[2];
static double sink;

static void ws_init(Ws *w, int n)
{
    for (int l = 0; l <= L; l++) w->acts[l] = fbuf(SIZES[l] * n);
    w->pre = fbuf(SIZES[L] * n);
    w->y = fbuf(2 * n);
    w->d0 = fbuf(64 * n);
    w->d1 = fbuf(64 * n);
    w->scratch = fbuf(2 * n);
    w->grads = fbuf(P);
    memset(w->grads, 0, P * sizeof(float));   /* the padding between segments stays 0 */
}

/* gather + forward + head + backward of samples rows[0 … n) into w->grads; the head's
 * gradient scaled by 1/nb_total */
static void fwd_bwd(Ws *w, const ptrdiff_t *r, int n, int nb_total)
{
    gather_t_f(w->acts[0], X, r, n, SIZES[0], XROWS);
    gather_t_f(w->y, Y, r, n, 1, XROWS);
    for (int l = 0; l < L; l++)
        mk_forward_f(w->acts[l], params + w_off[l], params + b_off[l],
                     l == L - 1 ? w->pre : w->acts[l + 1], n, SIZES[l], SIZES[l + 1],
                     l == L - 1 ? FD_ACT_LINEAR : ACT[l], 0);
    double out;
    head_f(FD_LOSS_SPARSE_CCE, FD_ACT_SOFTMAX, 0, 0, w->pre, w->acts[L], w->y, NULL, w->d0,
           w->scratch, n, SIZES[L], 1.0f / nb_total, &out);
    w->loss = out;
    float *d = w->d0, *dp = w->d1;
    for (int l = L - 1; l >= 0; l--) {
        mk_backward_f(w->acts[l], params + w_off[l], d, w->grads + w_off[l],
                      w->grads + b_off[l], l > 0 ? dp : NULL, n, SIZES[l], SIZES[l + 1],
                      l > 0 ? ACT[l - 1] : FD_ACT_LINEAR, 0, 0);
        float *t = d; d = dp; dp = t;
    }
}

static void adam_range(ptrdiff_t lo, ptrdiff_t hi, const float *g)
{
    prof_adam_f(params + lo, g + lo, m_ + lo, v_ + lo, hi - lo, 1e-9f, 0.1f, 0.001f, 1e-7f,
                1e-9f);
}

static void update_a(void)
{
    fwd_bwd(&ws[0], rows, NB, NB);
    int ok;
    all_finite_f(ws[0].grads, P, &ok);
    if (ok && ws[0].loss == ws[0].loss) adam_range(0, P, ws[0].grads);
    sink += ok;
}

/* (s): the split's work on one thread */
static void update_d_common(void);

static void update_s(void)
{
    fwd_bwd(&ws[0], rows, NB / 2, NB);
    fwd_bwd(&ws[1], rows + NB / 2, NB / 2, NB);
    update_d_common();
}

/* ------------------------------------------------------------------ the two threads */
typedef struct { _Atomic int v; char pad[60]; } Line;
static Line go __attribute__((aligned(64)));       /* generation posted by the main thread */
static Line arrive[2] __attribute__((aligned(64))); /* each thread's barrier count */
static Line okf[2] __attribute__((aligned(64)));
static _Thread_local int mode_c;                     /* (c): sum + Adam on thread 0 only */
static _Thread_local int mode_d;                     /* (d): halves claimed on demand */
static int gen_count;                                /* the main thread's generations */
static Line claim __attribute__((aligned(64)));      /* (d): next half to claim */
static Line done_d __attribute__((aligned(64)));     /* (d): halves finished by the worker */
static _Atomic int quit;
static ptrdiff_t mid;

static inline void relax(void) { __builtin_ia32_pause(); }

/* two-party barrier: my count goes up, wait for the other's to reach it */
static inline void barrier(int me, int *cnt)
{
    ++*cnt;
    atomic_store_explicit(&arrive[me].v, *cnt, memory_order_release);
    while (atomic_load_explicit(&arrive[!me].v, memory_order_acquire) < *cnt) relax();
}

static int cnt_thread[2];

static void update_d_common(void)
{
    float *g0 = ws[0].grads, *g1 = ws[1].grads;
    for (ptrdiff_t i = 0; i < P; i++) g0[i] += g1[i];
    int ok;
    all_finite_f(g0, P, &ok);
    if (ok) adam_range(0, P, g0);
    sink += ok;
}

static void half_update(int me)
{
    if (mode_d) {   /* the worker: claim what is left */
        int c, ran = 0;
        while ((c = atomic_fetch_add_explicit(&claim.v, 1, memory_order_acq_rel)) < 2) {
            fwd_bwd(&ws[c], rows + c * (NB / 2), NB / 2, NB);
            ran++;
        }
        if (ran) atomic_fetch_add_explicit(&done_d.v, ran, memory_order_release);
        return;
    }
    fwd_bwd(&ws[me], rows + me * (NB / 2), NB / 2, NB);
    barrier(me, &cnt_thread[me]);
    float *g0 = ws[0].grads, *g1 = ws[1].grads;
    if (mode_c) {
        if (me == 0) {
            for (ptrdiff_t i = 0; i < P; i++) g0[i] += g1[i];
            int ok;
            all_finite_f(g0, P, &ok);
            if (ok) adam_range(0, P, g0);
        }
        barrier(me, &cnt_thread[me]);
        return;
    }
    ptrdiff_t lo = me ? mid : 0, hi = me ? P : mid;
    for (ptrdiff_t i = lo; i < hi; i++) g0[i] += g1[i];
    int ok;
    all_finite_f(g0 + lo, hi - lo, &ok);
    ok = ok && ws[me].loss == ws[me].loss;
    atomic_store_explicit(&okf[me].v, ok, memory_order_relaxed);
    barrier(me, &cnt_thread[me]);
    if (okf[0].v && okf[1].v) adam_range(lo, hi, g0);
    barrier(me, &cnt_thread[me]);
}

static void pin(int cpu)
{
    if (getenv("FD_PIN") && !atoi(getenv("FD_PIN"))) return;
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *worker(void *arg)
{
    (void)arg;
    pin(1);
    int seen = 0;
    for (;;) {
        int g;
        while ((g = atomic_load_explicit(&go.v, memory_order_acquire)) == seen) {
            if (atomic_load(&quit)) return NULL;
            relax();
        }
        seen = g;
        /* the variant travels with its generation (the worker may see one late) */
        mode_c = (g & 3) == 1;
        mode_d = (g & 3) == 2;
        half_update(1);
    }
}

static void update_d(void)
{
    atomic_store_explicit(&done_d.v, 0, memory_order_relaxed);
    atomic_store_explicit(&claim.v, 0, memory_order_relaxed);
    atomic_store_explicit(&go.v, ++gen_count * 4 + 2, memory_order_release);
    int c, mine = 0;
    while ((c = atomic_fetch_add_explicit(&claim.v, 1, memory_order_acq_rel)) < 2) {
        fwd_bwd(&ws[c], rows + c * (NB / 2), NB / 2, NB);
        mine++;
    }
    while (atomic_load_explicit(&done_d.v, memory_order_acquire) < 2 - mine) relax();
    update_d_common();
}

static void update_b(void)
{
    atomic_store_explicit(&go.v, ++gen_count * 4 + (mode_c ? 1 : 0), memory_order_release);
    half_update(0);
}

/* ------------------------------------------------------------------ timing */
static int UPDATES = 2000, BLOCKS = 7;

static double time_block(void (*fn)(void))
{
    memset(m_, 0, P * sizeof(float));
    memset(v_, 0, P * sizeof(float));
    double t0 = now();
    for (int r = 0; r < UPDATES; r++) fn();
    return (now() - t0) / UPDATES;
}

/* fma: the forward micro-kernel 64→64, 32 samples, on `threads` threads at once */
typedef struct { float *a, *w, *b, *z; double t; int reps; } FmaArg;
static pthread_barrier_t fma_bar;
static void *fma_run(void *p)
{
    FmaArg *f = p;
    mk_forward_f(f->a, f->w, f->b, f->z, NB, 64, 64, FD_ACT_RELU, 0);
    pthread_barrier_wait(&fma_bar);
    double t0 = now();
    for (int r = 0; r < f->reps; r++) {
        mk_forward_f(f->a, f->w, f->b, f->z, NB, 64, 64, FD_ACT_RELU, 0);
        __asm__ volatile("" ::: "memory");
    }
    f->t = (now() - t0) / f->reps;
    return NULL;
}

static void *fma_thread(void *p) { pin(1); return fma_run(p); }

static void fma_test(void)
{
    FmaArg f[2];
    for (int t = 0; t < 2; t++)
        f[t] = (FmaArg){fbuf(64 * NB), fbuf(64 * 64), fbuf(64), fbuf(64 * NB), 0, 50000};
    double one[9], two0[9], two1[9];
    for (int rep = 0; rep < 9; rep++) {
        pthread_barrier_init(&fma_bar, NULL, 1);
        fma_run(&f[0]);
        one[rep] = f[0].t;
        pthread_barrier_destroy(&fma_bar);
        pthread_barrier_init(&fma_bar, NULL, 2);
        pthread_t th;
        pthread_create(&th, NULL, fma_thread, &f[1]);
        fma_run(&f[0]);
        pthread_join(th, NULL);
        pthread_barrier_destroy(&fma_bar);
        two0[rep] = f[0].t;
        two1[rep] = f[1].t;
    }
    qsort(one, 9, sizeof(double), cmp_d);
    qsort(two0, 9, sizeof(double), cmp_d);
    qsort(two1, 9, sizeof(double), cmp_d);
    double flops = 2.0 * 64 * 64 * NB;
    printf("fma test, mk_forward 64->64 x32 samples (median of 9 x 50000 calls):\n"
           "  one thread            %.3f us/call (%.1f GFLOP/s)\n"
           "  two threads at once   %.3f and %.3f us/call (%.1f GFLOP/s together)\n",
           one[4] * 1e6, flops / one[4] * 1e-9, two0[4] * 1e6, two1[4] * 1e6,
           (flops / two0[4] + flops / two1[4]) * 1e-9);
}

int main(void)
{
    fd_set_isa(getenv("FD_ISA") ? atoi(getenv("FD_ISA")) : -1);
    prof_set_isa(getenv("FD_ISA") ? atoi(getenv("FD_ISA")) : -1);
    if (getenv("FD_UPDATES")) UPDATES = atoi(getenv("FD_UPDATES"));
    if (getenv("FD_BLOCKS")) BLOCKS = atoi(getenv("FD_BLOCKS"));
    srand(1);
    P = 0;
    for (int l = 0; l < L; l++) {
        w_off[l] = P;
        P += SIZES[l] * SIZES[l + 1];
        P = (P + 15) / 16 * 16;
        b_off[l] = P;
        P += SIZES[l + 1];
        P = (P + 15) / 16 * 16;
    }
    mid = P / 2 / 16 * 16;
    params = fbuf(P);
    for (ptrdiff_t i = 0; i < P; i++) params[i] *= 0.3f;
    m_ = fbuf(P);
    v_ = fbuf(P);
    X = fbuf(XROWS * SIZES[0]);
    Y = fbuf(XROWS);
    for (ptrdiff_t i = 0; i < XROWS; i++) Y[i] = (float)(i % SIZES[L]);
    for (int i = 0; i < NB; i++) rows[i] = (i * 7919) % XROWS;
    ws_init(&ws[0], NB);
    ws_init(&ws[1], NB);
    pin(0);
    printf("fd_isa %d, %td parameters, pinned %s\n", fd_isa, P,
           getenv("FD_PIN") && !atoi(getenv("FD_PIN")) ? "no" : "yes (CPUs 0, 1)");

    fma_test();

    /* agreement: (a) vs (b)'s gradient */
    fwd_bwd(&ws[0], rows, NB, NB);
    float *ga = fbuf(P);
    memcpy(ga, ws[0].grads, P * sizeof(float));
    fwd_bwd(&ws[0], rows, NB / 2, NB);
    fwd_bwd(&ws[1], rows + NB / 2, NB / 2, NB);
    double e = 0;
    for (ptrdiff_t i = 0; i < P; i++) {
        double q = fabs(ga[i] - (ws[0].grads[i] + ws[1].grads[i])) / (1e-3 + fabs(ga[i]));
        if (q > e) e = q;
    }
    printf("split gradient vs whole: max rel error %.2g\n", e);
    if (getenv("FD_DEBUG"))
        for (int l = 0; l < L; l++) {
            double ew = 0, eb = 0, mw = 0;
            for (ptrdiff_t i = w_off[l]; i < w_off[l] + SIZES[l] * SIZES[l + 1]; i++) {
                double q = fabs(ga[i] - (ws[0].grads[i] + ws[1].grads[i]));
                if (q > ew) ew = q;
                if (fabs(ga[i]) > mw) mw = fabs(ga[i]);
            }
            for (ptrdiff_t i = b_off[l]; i < b_off[l] + SIZES[l + 1]; i++) {
                double q = fabs(ga[i] - (ws[0].grads[i] + ws[1].grads[i]));
                if (q > eb) eb = q;
            }
            printf("  layer %d: |dW| max %g, abs err W %g b %g\n", l, mw, ew, eb);
        }

    if (getenv("FD_PARTS")) {
        /* the parts, one thread: median of 21 blocks of 2000 calls */
        double tp[6][32];
        float *gs = fbuf(P);
        for (int blk = 0; blk < 21; blk++) {
            double t0 = now();
            for (int r = 0; r < 2000; r++) fwd_bwd(&ws[0], rows, NB, NB);
            double t1 = now();
            for (int r = 0; r < 2000; r++) fwd_bwd(&ws[0], rows, NB / 2, NB);
            double t2 = now();
            for (int r = 0; r < 2000; r++) fwd_bwd(&ws[1], rows + NB / 2, NB / 2, NB);
            double t3 = now();
            for (int r = 0; r < 2000; r++) {
                for (ptrdiff_t i = 0; i < P; i++) gs[i] = ws[0].grads[i] + ws[1].grads[i];
                __asm__ volatile("" ::: "memory");
            }
            double t4 = now();
            int ok;
            for (int r = 0; r < 2000; r++) { all_finite_f(ws[0].grads, P, &ok); sink += ok; }
            double t5 = now();
            memset(m_, 0, P * sizeof(float));
            memset(v_, 0, P * sizeof(float));
            for (int r = 0; r < 2000; r++) adam_range(0, P, gs);
            double t6 = now();
            double tt[7] = {t0, t1, t2, t3, t4, t5, t6};
            for (int k = 0; k < 6; k++) tp[k][blk] = (tt[k + 1] - tt[k]) / 2000;
        }
        const char *pn[6] = {"fwd+head+bwd 32", "fwd+head+bwd first 16", "fwd+head+bwd second 16",
                             "sum g0 += g1", "finite check", "Adam"};
        for (int k = 0; k < 6; k++) {
            qsort(tp[k], 21, sizeof(double), cmp_d);
            printf("  %-28s %7.2f us\n", pn[k], tp[k][10] * 1e6);
        }
    }
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    enum { NV = 5 };
    const char *names[NV] = {"(a) one thread, batch 32", "(b) two threads, split + Adam split",
                             "(c) two threads, sum + Adam on one",
                             "(d) as (c), halves on demand", "(s) split, one thread"};
    void (*fns[NV])(void) = {update_a, update_b, update_b, update_d, update_s};
    static double t[NV][256];
    for (int k = 0; k < NV; k++) {
        mode_c = k == 2;
        mode_d = k == 3;
        time_block(fns[k]);
    }
    for (int blk = 0; blk < BLOCKS; blk++)
        for (int k = 0; k < NV; k++) {
            mode_c = k == 2;
            mode_d = k == 3;
            t[k][blk] = time_block(fns[k]);
        }
    atomic_store(&quit, 1);
    pthread_join(th, NULL);
    printf("per update (median of %d blocks of %d updates; min, max):\n", BLOCKS, UPDATES);
    double med[NV];
    for (int k = 0; k < NV; k++) {
        qsort(t[k], BLOCKS, sizeof(double), cmp_d);
        med[k] = t[k][BLOCKS / 2];
        printf("  %-40s %7.2f us   (%.2f, %.2f)\n", names[k], med[k] * 1e6, t[k][0] * 1e6,
               t[k][BLOCKS - 1] * 1e6);
    }
    printf("  (b)/(a) %.3f   (c)/(a) %.3f   (d)/(a) %.3f   (s)/(a) %.3f\n", med[1] / med[0],
           med[2] / med[0], med[3] / med[0], med[4] / med[0]);
    printf("%.0f\n", sink * 0);
    return 0;
}
