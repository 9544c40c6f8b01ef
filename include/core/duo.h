/* duo: runs a few independent tasks on the calling thread and one helper thread.
 * For phases of 5-50 us (a Transformer training step): an OpenMP fork/join there makes the caller
 * wait for its worker even when another process holds the other core and the worker is not
 * running -- 5 to 15 times slower than one thread. Here the caller claims tasks from the front and
 * the helper from the back, so if the helper is asleep or descheduled the caller runs them all; it
 * waits only for tasks the helper has started. With two tasks, task 0 runs on the caller and task 1
 * on the helper whenever both are running, so each keeps its data in its own core's cache from
 * call to call. duo also times both ways now and then and runs alone while that is faster (another
 * process on the other core). One caller thread at a time. */
#ifndef ENTK_DUO_H
#define ENTK_DUO_H

/* task in [0, ntasks); thread is 0 (the caller) or 1 (the helper), for per-thread scratch */
typedef void (*duo_fn)(void *arg, int task, int thread);

/* Runs fn(arg, t, thread) for every t in [0, ntasks) and returns when all are done. Uses the
 * helper only if OMP_NUM_THREADS (or the machine) allows more than one thread. */
void duo_run(duo_fn fn, void *arg, int ntasks);
#endif
