/* A small persistent pool of worker threads for the optimizer updates (updates.pyx).
 *
 * fd_pool_run(nthreads, nchunks, fn, arg) calls fn(arg, c) once for every chunk index
 * c in [0, nchunks), over at most nthreads threads: the calling thread and up to
 * nthreads − 1 workers. Chunks are handed out on demand from one atomic counter, so a
 * worker that wakes late (or loses its core to another process) leaves its share to the
 * caller instead of holding up the update; the caller returns once every chunk is done.
 *
 * Why not OpenMP: libgomp's idle workers spin after each parallel region, and in a fit
 * that spin takes the core the BLAS threads of the next GEMM need (see updates.pyx).
 * Here an idle worker spins at most FD_POOL_SPIN pause instructions (a few µs) and then
 * sleeps in the kernel: a futex on Linux, a pthread condition variable on other POSIX
 * systems. Nothing here runs while BLAS does.
 *
 * Workers are created lazily, on the first call that wants them, and live until the
 * process exits, with every signal blocked (signals stay with Python's threads). A
 * forked child starts with no workers (pthread_atfork). One caller at a time owns the
 * pool: a second concurrent caller (another Python thread training another model) does
 * not wait for it but runs its chunks serially on its own thread. No allocation per call.
 *
 * Where the primitives are missing (MSVC, or FD_POOL_THREADS=0) fd_pool_run runs every
 * chunk on the calling thread and fd_pool_supported() is 0.
 */
#ifndef FASTDENSE_FD_POOL_H
#define FASTDENSE_FD_POOL_H

#include <stddef.h>
#include <stdint.h>
#include "fd_fpenv.h"

#ifndef FD_POOL_THREADS
#if defined(__GNUC__) && !defined(_WIN32) && (defined(__unix__) || defined(__APPLE__))
#define FD_POOL_THREADS 1
#else
#define FD_POOL_THREADS 0
#endif
#endif

/* Linux: futex waits; elsewhere (or with FD_POOL_FUTEX=0): a condition variable */
#ifndef FD_POOL_FUTEX
#if FD_POOL_THREADS && defined(__linux__)
#define FD_POOL_FUTEX 1
#else
#define FD_POOL_FUTEX 0
#endif
#endif

/* The most threads (the caller included) one call uses. */
#define FD_POOL_MAX_THREADS 64

typedef void (*fd_pool_fn)(void *arg, ptrdiff_t chunk);

#if FD_POOL_THREADS

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sched.h>
#endif
#if FD_POOL_FUTEX
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

/* Pause instructions an idle worker spins before it sleeps, and the caller before it
 * sleeps waiting for a worker's last chunk. Measured in bench/optimizers.py --sizes. */
#ifndef FD_POOL_SPIN
#define FD_POOL_SPIN 64
#endif
#ifndef FD_POOL_OWNER_SPIN
#define FD_POOL_OWNER_SPIN 4096
#endif

#define FD_POOL_LINE __attribute__((aligned(64)))

static inline void fd_pool_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

typedef struct {
    /* the job: written by the owner before it publishes `ticket`, read by a thread only
     * after it has claimed a chunk of that job (so never while the next job is written) */
    fd_pool_fn fn;
    void *arg;
    unsigned int csr;                 /* the owner's SSE control register (fd_fpenv.h) */
    int job_threads;                  /* workers with index < job_threads − 1 take part */
    /* claims: the job's chunk count in the high 32 bits, the next chunk in the low 32 */
    uint64_t ticket FD_POOL_LINE;
    uint32_t done FD_POOL_LINE;       /* chunks finished by workers (futex word) */
    uint32_t owner_waiting;           /* the owner sleeps on `done` */
    uint32_t gen FD_POOL_LINE;        /* bumped once per job (futex word) */
    uint32_t sleepers;                /* workers asleep, or about to sleep, on `gen` */
    int busy FD_POOL_LINE;            /* a caller owns the pool */
    int nworkers;                     /* workers created (only the owner changes it) */
    int atfork_done;
    uint64_t jobs;                    /* calls run on more than one thread (for tests) */
#if !FD_POOL_FUTEX
    pthread_mutex_t lock;
    pthread_cond_t gen_cv, done_cv;
#endif
} fd_pool_t;

static fd_pool_t fd_pool = {
    0
#if !FD_POOL_FUTEX
    , .lock = PTHREAD_MUTEX_INITIALIZER, .gen_cv = PTHREAD_COND_INITIALIZER,
    .done_cv = PTHREAD_COND_INITIALIZER
#endif
};

#define FD_LOAD(x) __atomic_load_n(&(x), __ATOMIC_SEQ_CST)

/* Sleep while *word == expected (may return early); wake every sleeper on word. */
#if FD_POOL_FUTEX
static void fd_pool_wait(uint32_t *word, uint32_t expected, pthread_cond_t *unused)
{
    (void)unused;
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void fd_pool_wake(uint32_t *word, void *unused)
{
    (void)unused;
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}
#define FD_POOL_CV(name) NULL
#else
static void fd_pool_wait(uint32_t *word, uint32_t expected, pthread_cond_t *cv)
{
    pthread_mutex_lock(&fd_pool.lock);
    while (FD_LOAD(*word) == expected)
        pthread_cond_wait(cv, &fd_pool.lock);
    pthread_mutex_unlock(&fd_pool.lock);
}

static void fd_pool_wake(uint32_t *word, pthread_cond_t *cv)
{
    (void)word;
    /* the waiter checks the word under the lock: taking it here orders the change
     * before that check or the broadcast after the waiter's pthread_cond_wait */
    pthread_mutex_lock(&fd_pool.lock);
    pthread_mutex_unlock(&fd_pool.lock);
    pthread_cond_broadcast(cv);
}
#define FD_POOL_CV(name) (&fd_pool.name)
#endif

/* Claim and run chunks of the current job until none is left; returns how many ran. */
static uint32_t fd_pool_work(void)
{
    uint32_t ran = 0;
    for (;;) {
        uint64_t t = __atomic_fetch_add(&fd_pool.ticket, 1, __ATOMIC_ACQ_REL);
        uint32_t c = (uint32_t)t, n = (uint32_t)(t >> 32);
        if (c >= n)
            return ran;
        fd_fp_adopt(fd_pool.csr);     /* the owner's denormal mode: as if run serially */
        fd_pool.fn(fd_pool.arg, (ptrdiff_t)c);
        ran++;
    }
}

static void *fd_pool_worker(void *index_ptr)
{
    int index = (int)(intptr_t)index_ptr;
    uint32_t seen = FD_LOAD(fd_pool.gen);
    for (;;) {
        uint32_t g;
        int spins = FD_POOL_SPIN;
        while ((g = FD_LOAD(fd_pool.gen)) == seen) {
            if (spins-- > 0) {
                fd_pool_relax();
                continue;
            }
            __atomic_add_fetch(&fd_pool.sleepers, 1, __ATOMIC_SEQ_CST);
            fd_pool_wait(&fd_pool.gen, seen, FD_POOL_CV(gen_cv));
            __atomic_sub_fetch(&fd_pool.sleepers, 1, __ATOMIC_SEQ_CST);
        }
        seen = g;
        if (index >= __atomic_load_n(&fd_pool.job_threads, __ATOMIC_ACQUIRE) - 1)
            continue;                 /* this job wants fewer threads */
        uint32_t ran = fd_pool_work();
        if (ran) {
            __atomic_add_fetch(&fd_pool.done, ran, __ATOMIC_SEQ_CST);
            if (FD_LOAD(fd_pool.owner_waiting))
                fd_pool_wake(&fd_pool.done, FD_POOL_CV(done_cv));
        }
    }
    return NULL;
}

/* In a forked child only the forking thread exists: forget the parent's workers. */
static void fd_pool_atfork_child(void)
{
    fd_pool.nworkers = 0;
    fd_pool.busy = 0;
    fd_pool.sleepers = 0;
    fd_pool.owner_waiting = 0;
    fd_pool.ticket = 0;
    fd_pool.done = 0;
#if !FD_POOL_FUTEX
    pthread_mutex_init(&fd_pool.lock, NULL);
    pthread_cond_init(&fd_pool.gen_cv, NULL);
    pthread_cond_init(&fd_pool.done_cv, NULL);
#endif
}

/* Create workers up to `want` (called by the owner); returns how many exist. */
static int fd_pool_grow(int want)
{
    sigset_t all, old;
    if (!fd_pool.atfork_done) {
        if (pthread_atfork(NULL, NULL, fd_pool_atfork_child) != 0)
            return fd_pool.nworkers;  /* no workers without a safe fork */
        fd_pool.atfork_done = 1;
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (fd_pool.nworkers < want) {
        pthread_t tid;
        pthread_attr_t attr;
        int rc;
        if (pthread_attr_init(&attr) != 0)
            break;
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        rc = pthread_create(&tid, &attr, fd_pool_worker,
                            (void *)(intptr_t)fd_pool.nworkers);
        pthread_attr_destroy(&attr);
        if (rc != 0)
            break;                    /* run with the workers there are */
        fd_pool.nworkers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return fd_pool.nworkers;
}

static int fd_pool_supported(void) { return 1; }

/* Workers created so far, and calls run on more than one thread: for tests. */
static int fd_pool_workers(void) { return __atomic_load_n(&fd_pool.nworkers, __ATOMIC_RELAXED); }
static long long fd_pool_jobs(void)
{
    return (long long)__atomic_load_n(&fd_pool.jobs, __ATOMIC_RELAXED);
}

/* The CPUs this process may run on (its affinity mask on Linux), at least 1. */
static int fd_pool_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        n = CPU_COUNT(&set);
#endif
    return n < 1 ? 1 : (n > FD_POOL_MAX_THREADS ? FD_POOL_MAX_THREADS : (int)n);
}

/* Run fn(arg, c) for c in [0, nchunks) on up to nthreads threads, the caller included.
 * Returns the number of threads the pool was asked to use (1: ran serially). */
static int fd_pool_run(int nthreads, ptrdiff_t nchunks, fd_pool_fn fn, void *arg)
{
    ptrdiff_t c;
    int workers;
    uint32_t mine, want, d;
    if (nthreads > FD_POOL_MAX_THREADS)
        nthreads = FD_POOL_MAX_THREADS;
    if (nthreads > nchunks)
        nthreads = (int)nchunks;
    if (nthreads <= 1 || nchunks > (ptrdiff_t)0x7fffffff
            || __atomic_exchange_n(&fd_pool.busy, 1, __ATOMIC_ACQUIRE))
        goto serial;
    workers = fd_pool_grow(nthreads - 1);
    if (workers < 1) {
        __atomic_store_n(&fd_pool.busy, 0, __ATOMIC_RELEASE);
        goto serial;
    }
    if (nthreads > workers + 1)
        nthreads = workers + 1;
    __atomic_add_fetch(&fd_pool.jobs, 1, __ATOMIC_RELAXED);
    fd_pool.fn = fn;
    fd_pool.arg = arg;
    fd_pool.csr = fd_fp_csr();
    __atomic_store_n(&fd_pool.done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&fd_pool.job_threads, nthreads, __ATOMIC_RELAXED);
    __atomic_store_n(&fd_pool.ticket, (uint64_t)nchunks << 32, __ATOMIC_RELEASE);
    __atomic_add_fetch(&fd_pool.gen, 1, __ATOMIC_SEQ_CST);
    if (FD_LOAD(fd_pool.sleepers))
        fd_pool_wake(&fd_pool.gen, FD_POOL_CV(gen_cv));
    mine = fd_pool_work();
    want = (uint32_t)nchunks - mine;
    /* the workers' chunks in progress: spin a little, then sleep until the last is done */
    for (int spins = FD_POOL_OWNER_SPIN; (d = FD_LOAD(fd_pool.done)) < want; ) {
        if (spins-- > 0) {
            fd_pool_relax();
            continue;
        }
        __atomic_store_n(&fd_pool.owner_waiting, 1, __ATOMIC_SEQ_CST);
        if (FD_LOAD(fd_pool.done) == d)
            fd_pool_wait(&fd_pool.done, d, FD_POOL_CV(done_cv));
        __atomic_store_n(&fd_pool.owner_waiting, 0, __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&fd_pool.busy, 0, __ATOMIC_RELEASE);
    return nthreads;
serial:
    for (c = 0; c < nchunks; c++)
        fn(arg, c);
    return 1;
}

#else  /* no threads: every chunk on the calling thread */

static int fd_pool_supported(void) { return 0; }
static int fd_pool_cpu_count(void) { return 1; }
static int fd_pool_workers(void) { return 0; }
static long long fd_pool_jobs(void) { return 0; }

static int fd_pool_run(int nthreads, ptrdiff_t nchunks, fd_pool_fn fn, void *arg)
{
    ptrdiff_t c;
    (void)nthreads;
    for (c = 0; c < nchunks; c++)
        fn(arg, c);
    return 1;
}

#endif
#endif
