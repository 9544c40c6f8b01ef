#include "eig.h"
#include "err.h"
#include "linalg.h"
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void eig_top(const tensor *K, int64_t k, double ridge, eig_result *out) {
    dtype dt = K->dt;
    int64_t n = K->shape[0];
    if (K->ndim != 2 || K->shape[1] != n) entk_die(ENTK_EXIT_INPUT, "eig: K is not square");
    if (k < 1 || k > n) entk_die(ENTK_EXIT_USAGE, "--top must be in [1, %lld]", (long long)n);
    size_t es = dtype_size(dt);
    char *A = xmalloc((size_t)(n * n) * es);
    memcpy(A, K->data, (size_t)(n * n) * es);
    double tr = 0, fro = 0;
    for (int64_t i = 0; i < n; i++) tr += la_get(dt, A, i * n + i);
    for (int64_t i = 0; i < n * n; i++) {
        double v = la_get(dt, A, i);
        if (!isfinite(v)) entk_die(ENTK_EXIT_INPUT, "eig: K has a non-finite entry at (%lld, %lld)", (long long)(i / n), (long long)(i % n));
        fro += v * v;
    }
    /* symmetry is checked, not assumed: an asymmetric input means an upstream bug */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) {
            double a = la_get(dt, A, i * n + j), b = la_get(dt, A, j * n + i);
            if (fabs(a - b) > 1e-5 * (fabs(a) + fabs(b)) + 1e-12 * sqrt(fro))
                entk_die(ENTK_EXIT_INPUT, "eig: K is not symmetric at (%lld, %lld): %g vs %g", (long long)i, (long long)j, a, b);
        }
    fro = sqrt(fro);
    out->n = n;
    out->k = k;
    out->ridge_abs = ridge * tr / (double)n;
    for (int64_t i = 0; i < n; i++) la_set(dt, A, i * n + i, la_get(dt, A, i * n + i) + out->ridge_abs);
    out->values = tensor_1d(dt, k);
    out->vectors = tensor_2d(dt, k, n);
    char *R = xmalloc((size_t)(n * n) * es); /* keep the ridged K for residuals: syevr destroys A */
    memcpy(R, A, (size_t)(n * n) * es);
    char *w = xmalloc((size_t)n * es), *Z = xmalloc((size_t)(n * k) * es);
    lapack_int *isuppz = xmalloc((size_t)(2 * k + 2) * sizeof(lapack_int)), m = 0, info;
    lapack_int il = (lapack_int)(n - k + 1), iu = (lapack_int)n;
    if (dt == DT_F64)
        info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', (lapack_int)n, (double *)A, (lapack_int)n, 0, 0, il, iu, 0,
                              &m, (double *)w, (double *)Z, (lapack_int)k, isuppz);
    else
        info = LAPACKE_ssyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', (lapack_int)n, (float *)A, (lapack_int)n, 0, 0, il, iu, 0,
                              &m, (float *)w, (float *)Z, (lapack_int)k, isuppz);
    if (info != 0 || m != k) entk_die(ENTK_EXIT_FAIL, "eig: LAPACK syevr failed (info %d, %d of %lld found)", (int)info, (int)m, (long long)k);
    /* ascending -> descending; Z is n x k row-major, column j = eigenvector j */
    double worst = 0;
    char *Kv = xmalloc((size_t)n * es);
    for (int64_t i = 0; i < k; i++) {
        int64_t j = k - 1 - i;
        double lam = la_get(dt, w, j);
        la_set(dt, out->values.data, i, lam);
        char *v = (char *)out->vectors.data + (size_t)(i * n) * es;
        for (int64_t r = 0; r < n; r++) la_set(dt, v, r, la_get(dt, Z, r * k + j));
        /* a fixed sign convention makes outputs comparable across runs: largest |entry| positive */
        int64_t big = 0;
        for (int64_t r = 1; r < n; r++)
            if (fabs(la_get(dt, v, r)) > fabs(la_get(dt, v, big))) big = r;
        if (la_get(dt, v, big) < 0) la_scale(dt, n, -1.0, v);
        la_gemm(dt, 0, 0, n, 1, n, 1.0, R, n, v, 1, 0.0, Kv, 1);
        double res = 0;
        for (int64_t r = 0; r < n; r++) {
            double d = la_get(dt, Kv, r) - lam * la_get(dt, v, r);
            res += d * d;
        }
        res = sqrt(res) / (fro > 0 ? fro : 1);
        if (res > worst) worst = res;
    }
    out->residual = worst;
    free(A); free(R); free(w); free(Z); free(isuppz); free(Kv);
}

void eig_free(eig_result *e) {
    tensor_free(&e->values);
    tensor_free(&e->vectors);
}
