/* blasenv: OpenBLAS kernels that fit the CPU entk runs on.
 *
 * OpenBLAS picks its kernels once, when the library loads, from the CPU model or from
 * OPENBLAS_CORETYPE. The OpenBLAS of Debian 12 (0.3.21) does not know recent Xeons (Sapphire /
 * Emerald Rapids, family 6 model 143 / 207) and falls back to its generic "Prescott" kernels:
 * sgemm at 2048^3 runs at 33 instead of 153 GFLOP/s on such a machine. Nothing inside a running
 * process can change that choice, so a program that finds itself on the generic kernels of a CPU
 * with AVX-512 (or AVX2 + FMA) sets OPENBLAS_CORETYPE to the matching family and executes itself
 * again, once: it costs a few milliseconds per process, and pipelines that export the variable
 * (see `entk-show --blas`) do not pay it. A user's own OPENBLAS_CORETYPE is always respected. */
#ifndef ENTK_BLASENV_H
#define ENTK_BLASENV_H
#include <stddef.h>

/* Re-executes the program with a better OPENBLAS_CORETYPE if that pays (see above); returns
 * otherwise. Call first thing in main, before reading any input. */
void blasenv_native_kernels(char **argv);
/* The kernel family OpenBLAS uses in this process ("SkylakeX", "Haswell", ...). */
const char *blasenv_corename(void);
/* OpenBLAS on one thread until blas_threads_restore(the value returned): around computations
 * whose bits must not depend on the number of threads (a threaded BLAS or LAPACK routine may
 * split a sum between threads, so its rounding would follow the thread count). */
int blas_one_thread(void);
void blas_threads_restore(int prev);
/* The .show of a derived option-table row "blas_threads" (core/cli.h): OpenBLAS's thread count,
 * for the key of a result whose last bits depend on it (a threaded routine splits its sums by
 * the thread count: entk-gram's factored Grams, entk-eig's solvers). */
struct cli_opt;
const char *blasenv_show_threads(const struct cli_opt *o, char *buf, size_t n);
#endif
