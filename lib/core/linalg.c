#include "core/linalg.h"
#include "core/err.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void la_gemm(dtype dt, int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha, const void *A, int64_t lda,
             const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    enum CBLAS_TRANSPOSE a = ta ? CblasTrans : CblasNoTrans, b = tb ? CblasTrans : CblasNoTrans;
    if (dt == DT_F32)
        cblas_sgemm(CblasRowMajor, a, b, (blasint)M, (blasint)N, (blasint)K, (float)alpha, A, (blasint)lda, B, (blasint)ldb,
                    (float)beta, C, (blasint)ldc);
    else
        cblas_dgemm(CblasRowMajor, a, b, (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta,
                    C, (blasint)ldc);
}

void la_gemv(dtype dt, int ta, int64_t M, int64_t N, double alpha, const void *A, int64_t lda, const void *x, int64_t incx,
             double beta, void *y, int64_t incy) {
    if (M == 0 || N == 0) return;
    enum CBLAS_TRANSPOSE a = ta ? CblasTrans : CblasNoTrans;
    if (dt == DT_F32)
        cblas_sgemv(CblasRowMajor, a, (blasint)M, (blasint)N, (float)alpha, A, (blasint)lda, x, (blasint)incx, (float)beta, y,
                    (blasint)incy);
    else
        cblas_dgemv(CblasRowMajor, a, (blasint)M, (blasint)N, alpha, A, (blasint)lda, x, (blasint)incx, beta, y, (blasint)incy);
}

void la_syrk_upper(dtype dt, int trans, int64_t N, int64_t K, double alpha, const void *A, int64_t lda, double beta,
                   void *C, int64_t ldc) {
    enum CBLAS_TRANSPOSE t = trans ? CblasTrans : CblasNoTrans;
    if (dt == DT_F32)
        cblas_ssyrk(CblasRowMajor, CblasUpper, t, (blasint)N, (blasint)K, (float)alpha, A, (blasint)lda, (float)beta, C, (blasint)ldc);
    else
        cblas_dsyrk(CblasRowMajor, CblasUpper, t, (blasint)N, (blasint)K, alpha, A, (blasint)lda, beta, C, (blasint)ldc);
}

/* Column slices of a long explicit Jacobian block, added in a fixed order: always SYRK_SLICES of
 * them, whatever the thread count, so that the Gram's bits do not depend on it (a cached Gram must
 * be what any run would compute; the Setting 3 eNTK adds up chunks from different processes). */
#define SYRK_SLICES 4

void la_syrk_full(dtype dt, int64_t N, int64_t K, double alpha, const void *A, int64_t lda, double beta, void *C) {
    int nt = omp_get_max_threads();
    /* only for a small output (the slices' partial Grams are extra memory), and never by thread count */
    if (K >= 4096 * SYRK_SLICES && (size_t)(N * N) * dtype_size(dt) <= ((size_t)64 << 20)) {
        /* A Gram of few rows and very many columns (an explicit Jacobian block): OpenBLAS splits
         * the small N x N output between its threads and runs at about half the square-sgemm rate;
         * giving each core its own slices of the columns, single-threaded, and adding the partial
         * Grams keeps both cores at full speed. */
        size_t es = dtype_size(dt);
        char *part = xcalloc((size_t)(SYRK_SLICES - 1) * (size_t)(N * N), es);
        if (beta != 1.0) la_scale(dt, N * N, beta, C);
        int blas = openblas_get_num_threads();
        openblas_set_num_threads(1);
#pragma omp parallel for num_threads(nt < SYRK_SLICES ? nt : SYRK_SLICES) schedule(static)
        for (int t = 0; t < SYRK_SLICES; t++) {
            int64_t k0 = K * t / SYRK_SLICES, k1 = K * (t + 1) / SYRK_SLICES;
            void *dst = t == 0 ? C : part + (size_t)(t - 1) * (size_t)(N * N) * es;
            la_syrk_upper(dt, 0, N, k1 - k0, alpha, (const char *)A + (size_t)k0 * es, lda, 1.0, dst, N);
        }
        openblas_set_num_threads(blas);
        for (int t = 1; t < SYRK_SLICES; t++) la_axpy(dt, N * N, 1.0, part + (size_t)(t - 1) * (size_t)(N * N) * es, C);
        free(part);
    } else {
        la_syrk_upper(dt, 0, N, K, alpha, A, lda, beta, C, N);
    }
    la_mirror_upper(dt, N, C);
}

void la_mirror_upper(dtype dt, int64_t N, void *C) {
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < i; j++)
            la_set(dt, C, i * N + j, la_get(dt, C, j * N + i));
}

void la_scale(dtype dt, int64_t n, double a, void *x) {
    if (dt == DT_F32) cblas_sscal((blasint)n, (float)a, x, 1);
    else cblas_dscal((blasint)n, a, x, 1);
}

void la_axpy(dtype dt, int64_t n, double a, const void *x, void *y) {
    if (dt == DT_F32) cblas_saxpy((blasint)n, (float)a, x, 1, y, 1);
    else cblas_daxpy((blasint)n, a, x, 1, y, 1);
}

