#include "core/duo.h"
#include "core/err.h"
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* The current batch of tasks is one 64-bit word: generation (upper 32 bits) and the range
 * [lo, hi) of tasks not yet claimed (16 bits each). The caller claims from the front and the
 * helper from the back, so with two tasks each thread keeps its half of the data in its own cache
 * from call to call. Claiming is a compare-and-swap on the whole word, so a helper that is late by
 * a generation cannot claim a task of the next one. */
#define GEN(w) ((uint32_t)((w) >> 32))
#define LO(w) ((int)(((w) >> 16) & 0xffff))
#define HI(w) ((int)((w) & 0xffff))

static _Atomic uint64_t batch;
static atomic_int done, sleeping;
static duo_fn cur_fn;                  /* written before batch is published, read after a claim */
static void *cur_arg;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int helper = -1;                /* -1: not decided yet, 0: none, 1: running */

/* Two threads or the caller alone, whichever is faster now: duo times a window of batches each
 * way, then runs the faster way for 4 windows, doubling (up to 64) while the same way keeps
 * winning, then times both again. When another process holds the other core the helper is often
 * preempted holding a task and the caller waits for it: measured, a Transformer training run was
 * then 1.6x slower on two threads than on the caller alone; on an idle machine two threads are
 * ~1.4x faster. Being alone must win by 10%: the windows differ by a few % at random. The first
 * 0.3 s are not timed (OpenBLAS's idle workers spin for about 0.1 s after start-up). */
#define WINDOW 512                     /* batches: ~15 ms of Transformer training */
static int solo;                       /* this window runs on the caller alone */
static int timing = 3;                 /* 3: warming up; 2, 1: timing two threads, alone; 0: running
                                        * the faster way */
static int batches, run_for, streak;   /* batches in this window; windows left to run; same-way wins */
static int last = -1;                  /* the faster way last time: 0 two threads, 1 alone */
static double first, window_start, t_two, t_one;

/* called once per batch: moves the window and decides how the next batches run */
static void pace(void) {
    double now = entk_now();
    if (first == 0) first = window_start = now;
    if (++batches < WINDOW) return;
    double t = now - window_start;
    batches = 0;
    window_start = now;
    if (timing == 3) { timing = now - first < 0.3 ? 3 : 2; return; }
    if (timing == 2) { t_two = t; timing = 1; solo = 1; return; }
    if (timing == 1) {
        t_one = t;
        solo = t_one < 0.9 * t_two;
        streak = solo != last ? 0 : streak < 4 ? streak + 1 : 4; /* 4, 8, .., 64 windows */
        last = solo;
        run_for = 4 << streak;
        timing = 0;
        return;
    }
    if (--run_for == 0) { timing = 2; solo = 0; }
}

/* claims and runs tasks of generation gen until none is left */
static void run_tasks(uint32_t gen, int thread) {
    uint64_t w = atomic_load(&batch);
    while (GEN(w) == gen && LO(w) < HI(w)) {
        int task = thread ? HI(w) - 1 : LO(w);
        uint64_t claimed = thread ? w - 1 : w + (1 << 16);
        if (!atomic_compare_exchange_weak(&batch, &w, claimed)) continue; /* w reloaded */
        cur_fn(cur_arg, task, thread);
        atomic_fetch_add(&done, 1);
        w = atomic_load(&batch);
    }
}

static void *helper_main(void *unused) {
    uint32_t seen = 0;
    for (;;) {
        /* spin a while (the next batch usually comes within tens of microseconds), then sleep */
        double t0 = entk_now();
        int n = 0;
        while (GEN(atomic_load(&batch)) == seen && (++n & 255 || entk_now() - t0 < 200e-6))
            __builtin_ia32_pause();
        if (GEN(atomic_load(&batch)) == seen) {
            pthread_mutex_lock(&mu);
            atomic_store(&sleeping, 1);
            while (GEN(atomic_load(&batch)) == seen) pthread_cond_wait(&wake, &mu);
            atomic_store(&sleeping, 0);
            pthread_mutex_unlock(&mu);
        }
        seen = GEN(atomic_load(&batch));
        run_tasks(seen, 1);
    }
    return NULL;
}

void duo_run(duo_fn fn, void *arg, int ntasks) {
    if (ntasks <= 0) return;
    if (helper < 0) {
        pthread_t th;
        helper = omp_get_max_threads() > 1 && pthread_create(&th, NULL, helper_main, NULL) == 0;
        if (helper) pthread_detach(th);
    }
    if (helper) pace();
    if (!helper || ntasks == 1 || solo) {
        for (int t = 0; t < ntasks; t++) fn(arg, t, 0);
        return;
    }
    if (ntasks > 0xffff) entk_die(ENTK_EXIT_FAIL, "duo_run: %d tasks", ntasks);
    cur_fn = fn;
    cur_arg = arg;
    atomic_store(&done, 0);
    uint32_t gen = GEN(atomic_load(&batch)) + 1;
    atomic_store(&batch, (uint64_t)gen << 32 | (uint64_t)ntasks);
    if (atomic_load(&sleeping)) { /* seq_cst against the helper's store to sleeping: no lost wake-up */
        pthread_mutex_lock(&mu);
        pthread_cond_signal(&wake);
        pthread_mutex_unlock(&mu);
    }
    run_tasks(gen, 0);
    /* only tasks the helper has started remain: spin briefly, then sleep in short naps so that
     * if the helper was preempted this core goes idle and the scheduler can move it here */
    double t0 = entk_now();
    int n = 0;
    while (atomic_load(&done) < ntasks) {
        if (++n & 255 || entk_now() - t0 < 50e-6) __builtin_ia32_pause();
        else nanosleep(&(struct timespec){0, 20000}, NULL);
    }
}
