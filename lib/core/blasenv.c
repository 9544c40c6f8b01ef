#include "core/blasenv.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

const char *blasenv_corename(void) { return openblas_get_corename(); }

/* The OpenBLAS family for this CPU's vector units, or NULL when generic kernels are right. */
static const char *family_for_this_cpu(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}

void blasenv_native_kernels(char **argv) {
    if (getenv("OPENBLAS_CORETYPE")) return; /* the user's choice, or our own re-execution */
    if (strcasecmp(openblas_get_corename(), "Prescott") != 0) return;
    const char *family = family_for_this_cpu();
    if (!family) return;
    setenv("OPENBLAS_CORETYPE", family, 1);
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc, say): carry on with the generic kernels */
}

int blas_one_thread(void) {
    int prev = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return prev;
}

void blas_threads_restore(int prev) { openblas_set_num_threads(prev); }

const char *blasenv_show_threads(const struct cli_opt *o, char *buf, size_t n) {
    (void)o;
    snprintf(buf, n, "%d", openblas_get_num_threads());
    return buf;
}
