/* sgemm-rate: the machine's OpenBLAS sgemm rate (best of 5 products C = A B^T, A M x K, B N x K),
 * the yardstick benchmarks compare FLOP rates against.
 * usage: sgemm-rate [M [N [K]]]   (default 2048 cubed); prints "sgemm MxNxK: best R GFLOP/s" */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/blasenv.h"
#include "core/err.h"

int main(int argc, char **argv) {
    blasenv_native_kernels(argv);
    entk_init(argv[0]);
    long m = argc > 1 ? atol(argv[1]) : 2048, n = argc > 2 ? atol(argv[2]) : m, k = argc > 3 ? atol(argv[3]) : m;
    if (m < 1 || n < 1 || k < 1) entk_die(ENTK_EXIT_USAGE, "usage: sgemm-rate [M [N [K]]]");
    float *a = xmalloc((size_t)(m * k) * sizeof(float)), *b = xmalloc((size_t)(n * k) * sizeof(float)),
          *c = xmalloc((size_t)(m * n) * sizeof(float));
    for (long i = 0; i < m * k; i++) a[i] = (float)(i % 7) * 0.1f;
    for (long i = 0; i < n * k; i++) b[i] = (float)(i % 5) * 0.2f;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = entk_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k, b, (int)k, 0.0f, c, (int)n);
        double rate = 2.0 * (double)m * (double)n * (double)k / (entk_now() - t0) * 1e-9;
        if (rate > best) best = rate;
    }
    printf("sgemm %ldx%ldx%ld: best %.1f GFLOP/s (OpenBLAS %s kernels)\n", m, n, k, best, blasenv_corename());
    free(a); free(b); free(c);
    return 0;
}
