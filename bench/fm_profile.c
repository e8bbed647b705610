/* Where one training update's time goes: each stage of train.pyx's forward_backward for a
 * dense network, timed alone on its exact shapes (float32, hot caches, medians), beside
 * the whole update run in sequence.
 *
 *     bench/fm_profile.sh [digits|sweep|all]   (builds and runs this file)
 *     bench/fm_profile.sh w WIDTH BATCH        (one 10-w-w-1 point)
 *
 * It includes the kernels' own headers (fm_kernels.h, update_kernels.h) and calls the
 * BLAS that SciPy ships (the library scipy.linalg.cython_blas links, by dlopen), as
 * dense.pyx does: same loops, same GEMM calls, same layouts. The GEMM rows are the floor
 * of issue 12: the update's matrix products through OpenBLAS alone.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fm_kernels.h"
/* bench/fm_profile_update.c */
void prof_adam_f(float *p, const float *g, float *m, float *v, ptrdiff_t n, float alpha,
                 float b1c, float b2c, float eps, float lr);
void prof_sgd_f(float *p, const float *g, ptrdiff_t n, float lr);
void prof_set_isa(int isa);

#include "fm_blas.h"
typedef float (*sasum_fn)(const int *, const float *, const int *);
typedef void (*saxpy_fn)(const int *, const float *, const float *, const int *, float *,
                         const int *);
static sasum_fn p_sasum;
static saxpy_fn p_saxpy;

#include "fm_timing.h"

/* dense.pyx's use_blas (auto mode) */
static int blas_min_params = 256, blas_min_work = 1 << 16;
static int use_blas(ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out)
{
    if (n == 1) return 0;
    return n_in * n_out >= blas_min_params || n * n_in * n_out >= blas_min_work;
}

enum { ST_GATHER, ST_FWD_GEMM, ST_FWD_BIAS, ST_FWD_HAND, ST_HEAD, ST_BWD_ROWSUM,
       ST_BWD_DW, ST_BWD_DA, ST_BWD_ACT, ST_BWD_HAND, ST_FINITE, ST_UPDATE, ST_MK_FWD,
       ST_MK_BWD, N_KINDS };
static const char *KIND_NAMES[N_KINDS] = {
    "gather", "fwd GEMM", "fwd bias+act", "fwd hand loop", "head", "bwd db row sums",
    "bwd dW GEMM", "bwd dA GEMM", "bwd act mask", "bwd hand loop", "finite check",
    "optimizer update", "fwd micro-kernel", "bwd micro-kernel"};
static int use_mk = 0;   /* FD_MK=1: fm_gemm.h's kernels where BLAS would run */

#define MAXL 8
typedef struct {
    const char *name;
    int L, n, head_sce, adam;   /* head: softmax + sparse CE (else fused MSE); Adam (else SGD) */
    ptrdiff_t sizes[MAXL + 1];
    int act[MAXL];
    /* buffers */
    float *X, *Y; ptrdiff_t x_rows; ptrdiff_t *rows;
    float *params, *grads, *m, *v;
    ptrdiff_t P, w_off[MAXL], b_off[MAXL];
    float *acts[MAXL + 1], *pre, *y, *d0, *d1, *scratch;
} Net;

typedef struct { int kind, layer; } Stage;

static void net_init(Net *net)
{
    int L = net->L, n = net->n;
    ptrdiff_t P = 0, widest = 0;
    for (int l = 0; l < L; l++) {
        net->w_off[l] = P;
        P += net->sizes[l] * net->sizes[l + 1];
        P = (P + 15) / 16 * 16;
        net->b_off[l] = P;
        P += net->sizes[l + 1];
        P = (P + 15) / 16 * 16;
    }
    for (int l = 0; l <= L; l++) if (net->sizes[l] > widest) widest = net->sizes[l];
    net->P = P;
    net->params = fbuf(P);
    for (ptrdiff_t i = 0; i < P; i++) net->params[i] *= 0.3f;
    net->grads = fbuf(P);
    net->m = fbuf(P);
    net->v = fbuf(P);
    for (ptrdiff_t i = 0; i < P; i++) { net->m[i] = 0; net->v[i] = 0; }
    for (int l = 0; l <= L; l++) net->acts[l] = fbuf(net->sizes[l] * n);
    net->pre = fbuf(net->sizes[L] * n);
    net->y = fbuf(2 * n * (net->sizes[L] + 1));
    net->d0 = fbuf(widest * n);
    net->d1 = fbuf(widest * n);
    net->scratch = fbuf(2 * n);
    net->x_rows = 1797;
    net->X = fbuf(net->x_rows * net->sizes[0]);
    net->Y = fbuf(net->x_rows);
    for (ptrdiff_t i = 0; i < net->x_rows; i++)
        net->Y[i] = net->head_sce ? (float)(i % net->sizes[L]) : net->Y[i];
    net->rows = malloc(n * sizeof(ptrdiff_t));
    for (int i = 0; i < n; i++) net->rows[i] = (i * 7919) % net->x_rows;
}

static double mse_fb(const float *yhat, const float *y, float *grad, ptrdiff_t size)
{
    /* losses.pyx's mse_forward_backward */
    float scale = (float)(2.0 / (double)size);
    double acc[8] = {0}, tail = 0;
    ptrdiff_t i = 0;
    for (; i + 8 <= size; i += 8)
        for (int u = 0; u < 8; u++) {
            float d = yhat[i + u] - y[i + u];
            acc[u] += (double)d * d;
            grad[i + u] = scale * d;
        }
    for (; i < size; i++) {
        float d = yhat[i] - y[i];
        tail += (double)d * d;
        grad[i] = scale * d;
    }
    return (acc[0] + acc[4] + acc[2] + acc[6] + acc[1] + acc[5] + acc[3] + acc[7] + tail) / size;
}

static double sink;

/* One stage of forward_backward (and the gather / check / update around it). */
static void run_stage(Net *net, Stage s)
{
    const int L = net->L, n = net->n, l = s.layer;
    const ptrdiff_t n_in = l >= 0 ? net->sizes[l] : 0, n_out = l >= 0 ? net->sizes[l + 1] : 0;
    const int rows0 = !use_mk && use_blas(n, net->sizes[0], net->sizes[1]);
    const int a_rows = l == 0 && rows0;
    float *w = net->params + (l >= 0 ? net->w_off[l] : 0);
    float *b = net->params + (l >= 0 ? net->b_off[l] : 0);
    float *a = l >= 0 ? net->acts[l] : NULL;
    const int last = l == L - 1;
    float *z = last && net->head_sce ? net->pre : (l >= 0 ? net->acts[l + 1] : NULL);
    const int act = last ? FD_ACT_LINEAR : (l >= 0 ? net->act[l] : 0);
    const int act_a = l > 0 ? net->act[l - 1] : FD_ACT_LINEAR;
    /* the delta at this layer's output, and its input's */
    float *d = ((L - 1 - l) % 2 == 0) ? net->d0 : net->d1;
    float *d_prev = ((L - 1 - l) % 2 == 0) ? net->d1 : net->d0;
    switch (s.kind) {
    case ST_GATHER:
        if (rows0)
            for (int r = 0; r < n; r++)
                memcpy(net->acts[0] + r * net->sizes[0], net->X + net->rows[r] * net->sizes[0],
                       net->sizes[0] * sizeof(float));
        else
            gather_t_f(net->acts[0], net->X, net->rows, n, net->sizes[0], net->x_rows);
        gather_t_f(net->y, net->Y, net->rows, n, 1, net->x_rows);
        break;
    case ST_FWD_GEMM:
        if (a_rows)
            gemm_rm(1, 1, n_out, n, n_in, w, n_out, a, n_in, z, n);
        else
            gemm_rm(1, 0, n_out, n, n_in, w, n_out, a, n, z, n);
        break;
    case ST_FWD_BIAS:
        fm_bias_act_f(z, b, n, n_out, act, 0);
        break;
    case ST_FWD_HAND:
        fm_forward_f(a, w, b, z, n, n_in, n_out, act, 0);
        break;
    case ST_HEAD:
        if (net->head_sce) {
            double out;
            head_f(FD_LOSS_SPARSE_CCE, FD_ACT_SOFTMAX, 0, 0, net->pre, net->acts[L], net->y,
                   NULL, net->d0, net->scratch, n, net->sizes[L], 1.0f / n, &out);
            sink += out;
        } else
            sink += mse_fb(net->acts[L], net->y, net->d0, n * net->sizes[L]);
        break;
    case ST_BWD_ROWSUM:
        fm_row_sums_f(d, net->grads + net->b_off[l], n_out, n);
        break;
    case ST_BWD_DW:
        if (a_rows)
            gemm_rm(1, 1, n_in, n_out, n, a, n_in, d, n, net->grads + net->w_off[l], n_out);
        else
            gemm_rm(0, 1, n_in, n_out, n, a, n, d, n, net->grads + net->w_off[l], n_out);
        break;
    case ST_BWD_DA:
        gemm_rm(0, 0, n_in, n, n_out, w, n_out, d, n, d_prev, n);
        break;
    case ST_BWD_ACT:
        act_grad_mul_f(d_prev, a, n * n_in, act_a, 0);
        break;
    case ST_BWD_HAND:
        fm_backward_f(a, w, d, net->grads + net->w_off[l], net->grads + net->b_off[l],
                      l > 0 ? d_prev : NULL, n, n_in, n_out, act_a, 0);
        break;
    case ST_MK_FWD:
        mk_forward_f(a, w, b, z, n, n_in, n_out, act, 0);
        break;
    case ST_MK_BWD:
        mk_backward_f(a, w, d, net->grads + net->w_off[l], net->grads + net->b_off[l],
                      l > 0 ? d_prev : NULL, n, n_in, n_out, act_a, 0, 0);
        break;
    case ST_FINITE: {
        if (net->P >= (1 << 16)) {
            int m = (int)net->P, one = 1;
            sink += p_sasum(&m, net->grads, &one);
        } else {
            int ok;
            all_finite_f(net->grads, net->P, &ok);
            sink += ok;
        }
        break;
    }
    case ST_UPDATE:
        if (net->adam) {
            /* tiny gradients so that many repetitions keep the weights sane */
            prof_adam_f(net->params, net->grads, net->m, net->v, net->P, 1e-9f, 0.1f, 0.001f,
                        1e-7f, 1e-9f);
        } else if (net->P >= (1 << 16)) {
            int m = (int)net->P, one = 1;
            float alpha = -1e-9f;
            p_saxpy(&m, &alpha, net->grads, &one, net->params, &one);
        } else
            prof_sgd_f(net->params, net->grads, net->P, 1e-9f);
        break;
    }
}

/* The stages of one update, in forward_backward's order. */
static int plan(Net *net, Stage *st)
{
    int k = 0, L = net->L, n = net->n;
    st[k++] = (Stage){ST_GATHER, -1};
    for (int l = 0; l < L; l++) {
        if (use_mk && use_blas(n, net->sizes[l], net->sizes[l + 1]))
            st[k++] = (Stage){ST_MK_FWD, l};
        else if (use_blas(n, net->sizes[l], net->sizes[l + 1])) {
            st[k++] = (Stage){ST_FWD_GEMM, l};
            st[k++] = (Stage){ST_FWD_BIAS, l};
        } else
            st[k++] = (Stage){ST_FWD_HAND, l};
    }
    st[k++] = (Stage){ST_HEAD, -1};
    for (int l = L - 1; l >= 0; l--) {
        if (use_mk && use_blas(n, net->sizes[l], net->sizes[l + 1]))
            st[k++] = (Stage){ST_MK_BWD, l};
        else if (use_blas(n, net->sizes[l], net->sizes[l + 1])) {
            st[k++] = (Stage){ST_BWD_ROWSUM, l};
            st[k++] = (Stage){ST_BWD_DW, l};
            if (l > 0) {
                st[k++] = (Stage){ST_BWD_DA, l};
                if (net->act[l - 1] != FD_ACT_LINEAR) st[k++] = (Stage){ST_BWD_ACT, l};
            }
        } else
            st[k++] = (Stage){ST_BWD_HAND, l};
    }
    st[k++] = (Stage){ST_FINITE, -1};
    st[k++] = (Stage){ST_UPDATE, -1};
    return k;
}

static int BLOCKS = 15;
static double target_block = 2e-3;   /* seconds per timed block */

/* median seconds per call of `fn` over BLOCKS blocks of reps calls */
static double time_stages(Net *net, const Stage *st, int count)
{
    /* calibrate */
    int reps = 1;
    for (;;) {
        double t0 = now();
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < count; i++) run_stage(net, st[i]);
        double t = now() - t0;
        if (t > target_block / 4 || reps > (1 << 24)) {
            reps = (int)(reps * target_block / (t > 0 ? t : 1e-9)) + 1;
            break;
        }
        reps *= 4;
    }
    double tt[64];
    for (int b = 0; b < BLOCKS; b++) {
        /* Adam's state restarts each block: repeated updates of the same gradient with
         * zeros in it would otherwise decay m and v into subnormals (slow), which a fit's
         * few hundred updates do not reach */
        memset(net->m, 0, net->P * sizeof(float));
        memset(net->v, 0, net->P * sizeof(float));
        double t0 = now();
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < count; i++) run_stage(net, st[i]);
        tt[b] = (now() - t0) / reps;
    }
    qsort(tt, BLOCKS, sizeof(double), cmp_d);
    return tt[BLOCKS / 2];
}

static void shape_of(Net *net, Stage s, char *buf, size_t len)
{
    int n = net->n, l = s.layer;
    if (l < 0) { buf[0] = 0; return; }
    long ni = net->sizes[l], no = net->sizes[l + 1];
    int a_rows = l == 0 && !use_mk && use_blas(n, net->sizes[0], net->sizes[1]);
    switch (s.kind) {
    case ST_FWD_GEMM:
        snprintf(buf, len, "Z %ldx%d = W^T(%ldx%ld) A%s(%ldx%d)", no, n, no, ni,
                 a_rows ? "rows^T" : "", ni, n);
        break;
    case ST_BWD_DW:
        snprintf(buf, len, "dW %ldx%ld = A%s(%ldx%d) D^T(%dx%ld)", ni, no,
                 a_rows ? "rows^T" : "", ni, n, n, no);
        break;
    case ST_BWD_DA:
        snprintf(buf, len, "dA %ldx%d = W(%ldx%ld) D(%ldx%d)", ni, n, ni, no, no, n);
        break;
    default:
        snprintf(buf, len, "layer %d (%ld->%ld)", l, ni, no);
    }
}

static void profile(Net *net)
{
    Stage st[64];
    int count = plan(net, st);
    double t[64], sum = 0, per_kind[N_KINDS] = {0}, gemm = 0;
    /* warm */
    time_stages(net, st, count);
    for (int i = 0; i < count; i++) {
        t[i] = time_stages(net, st + i, 1);
        sum += t[i];
        per_kind[st[i].kind] += t[i];
        if (st[i].kind == ST_FWD_GEMM || st[i].kind == ST_BWD_DW || st[i].kind == ST_BWD_DA)
            gemm += t[i];
    }
    double whole = time_stages(net, st, count);
    if (getenv("FD_DEBUG")) {
        float gmax = 0, mmax = 0, vmin = 1e30f, vmax = 0; int nan = 0, zeros = 0;
        for (ptrdiff_t i = 0; i < net->P; i++) {
            nan += isnan(net->grads[i]) || isnan(net->m[i]) || isnan(net->v[i]) || isnan(net->params[i]);
            zeros += net->v[i] == 0;
            if (fabsf(net->grads[i]) > gmax) gmax = fabsf(net->grads[i]);
            if (fabsf(net->m[i]) > mmax) mmax = fabsf(net->m[i]);
            if (net->v[i] < vmin) vmin = net->v[i];
            if (net->v[i] > vmax) vmax = net->v[i];
        }
        printf("  debug: nan %d zeros(v) %d gmax %g mmax %g v [%g, %g]\n", nan, zeros, gmax, mmax, vmin, vmax);
    }
    printf("\n== %s  (batch %d, %ld parameters, fd_isa %d)\n", net->name, net->n,
           (long)net->P, fd_isa);
    for (int i = 0; i < count; i++) {
        char shape[96];
        shape_of(net, st[i], shape, sizeof shape);
        printf("  %-18s %-40s %9.3f us\n", KIND_NAMES[st[i].kind], shape, t[i] * 1e6);
    }
    printf("  by kind:");
    for (int k = 0; k < N_KINDS; k++)
        if (per_kind[k] > 0) printf(" %s %.2f;", KIND_NAMES[k], per_kind[k] * 1e6);
    printf("\n  GEMMs alone (floor) %.2f us | stages summed %.2f us | whole update in "
           "sequence %.2f us | whole/floor %.2f\n", gemm * 1e6, sum * 1e6, whole * 1e6,
           whole / gemm);
    int sub = 0;
    for (ptrdiff_t i = 0; i < net->P; i++)
        sub += fpclassify(net->m[i]) == FP_SUBNORMAL || fpclassify(net->v[i]) == FP_SUBNORMAL
            || fpclassify(net->grads[i]) == FP_SUBNORMAL || fpclassify(net->params[i]) == FP_SUBNORMAL;
    if (sub) printf("  (%d subnormal values in the parameters, gradients or state)\n", sub);
}

/* fm_gemm.h's products against OpenBLAS's on random shapes (max relative error) */
static int check_mk(void)
{
    int bad = 0;
    for (int t = 0; t < 300; t++) {
        int n = 1 + rand() % 70, ni = 1 + rand() % 70, no = 1 + rand() % 70;
        if (t % 3 == 0) { n = 32; ni = 64; no = 64; }
        float *a = fbuf((ptrdiff_t)ni * n), *ar = fbuf((ptrdiff_t)ni * n), *w = fbuf(ni * no),
              *b = fbuf(no), *z1 = fbuf(no * n), *z2 = fbuf(no * n), *d = fbuf(no * n),
              *dw1 = fbuf(ni * no), *dw2 = fbuf(ni * no), *db1 = fbuf(no), *db2 = fbuf(no),
              *da1 = fbuf(ni * n), *da2 = fbuf(ni * n);
        for (int k = 0; k < ni; k++) for (int i = 0; i < n; i++) ar[i * ni + k] = a[k * n + i];
        int act = t % 2 ? FD_ACT_RELU : FD_ACT_LINEAR;
        mk_forward_f(a, w, b, z1, n, ni, no, act, 0);
        gemm_rm(1, 0, no, n, ni, w, no, a, n, z2, n);
        fm_bias_act_f(z2, b, n, no, act, 0);
        mk_backward_f(a, w, d, dw1, db1, da1, n, ni, no, act, 0, 0);
        gemm_rm(0, 1, ni, no, n, a, n, d, n, dw2, no);
        fm_row_sums_f(d, db2, no, n);
        gemm_rm(0, 0, ni, n, no, w, no, d, n, da2, n);
        act_grad_mul_f(da2, a, ni * n, act, 0);
        double e = 0;
#define ERR(x, y, m) for (int i = 0; i < (m); i++) { double q = fabs(x[i] - y[i]) / (1 + fabs(y[i])); if (!(q <= e)) e = q; }
        ERR(z1, z2, no * n) ERR(dw1, dw2, ni * no) ERR(db1, db2, no) ERR(da1, da2, ni * n)
        mk_backward_f(ar, w, d, dw1, db1, NULL, n, ni, no, act, 0, 1);
        ERR(dw1, dw2, ni * no)
        if (!(e < 1e-5)) { printf("n %d n_in %d n_out %d: error %g\n", n, ni, no, e); bad++; }
        free(a); free(ar); free(w); free(b); free(z1); free(z2); free(d); free(dw1); free(dw2);
        free(db1); free(db2); free(da1); free(da2);
    }
    printf("check: %d bad of 300 (isa %d)\n", bad, fd_isa);
    return bad != 0;
}

/* The sweep's network 10-w-w-1 (ReLU, MSE, SGD) at batch b. */
static void profile_point(int w, int b)
{
    char *name = malloc(64);
    snprintf(name, 64, "10-%d-%d-1 relu, MSE, SGD", w, w);
    Net net = {.name = name, .L = 3, .n = b, .head_sce = 0, .adam = 0,
               .sizes = {10, w, w, 1}, .act = {FD_ACT_RELU, FD_ACT_RELU, FD_ACT_LINEAR}};
    net_init(&net);
    profile(&net);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "all";
    void *h = fm_blas_open();
    if (!h) return 2;
    p_sasum = (sasum_fn)dlsym(h, "scipy_sasum_");
    p_saxpy = (saxpy_fn)dlsym(h, "scipy_saxpy_");
    if (!p_sasum || !p_saxpy) { fprintf(stderr, "symbols missing\n"); return 2; }
    use_mk = getenv("FD_MK") && atoi(getenv("FD_MK"));
    if (getenv("FD_BLOCKS")) BLOCKS = atoi(getenv("FD_BLOCKS"));
    /* the hand loops' range: FD_BLAS_MIN_PARAMS / FD_BLAS_MIN_WORK (dense.pyx's rule) */
    if (getenv("FD_BLAS_MIN_PARAMS")) blas_min_params = atoi(getenv("FD_BLAS_MIN_PARAMS"));
    if (getenv("FD_BLAS_MIN_WORK")) blas_min_work = atoi(getenv("FD_BLAS_MIN_WORK"));
    fd_set_isa(getenv("FD_ISA") ? atoi(getenv("FD_ISA")) : -1);
    prof_set_isa(getenv("FD_ISA") ? atoi(getenv("FD_ISA")) : -1);
    if (getenv("FD_CHECK")) return check_mk();
    srand(1);
    if (!strcmp(what, "digits") || !strcmp(what, "all")) {
        Net net = {.name = "digits 64-64-64-10 relu, softmax+sparse CE, Adam", .L = 3, .n = 32,
                   .head_sce = 1, .adam = 1, .sizes = {64, 64, 64, 10},
                   .act = {FD_ACT_RELU, FD_ACT_RELU, FD_ACT_LINEAR}};
        net_init(&net);
        profile(&net);
    }
    if (!strcmp(what, "sweep") || !strcmp(what, "all")) {
        int widths[] = {64, 128, 256, 512}, batches[] = {32, 128};
        for (int wi = 0; wi < 4; wi++)
            for (int bi = 0; bi < 2; bi++) profile_point(widths[wi], batches[bi]);
    }
    if (!strcmp(what, "w") && argc > 3)         /* fm_profile.sh w WIDTH BATCH: one point */
        profile_point(atoi(argv[2]), atoi(argv[3]));
    printf("%.0f\n", sink * 0);
    return 0;
}
