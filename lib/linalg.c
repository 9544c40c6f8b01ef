#include "linalg.h"
#include "err.h"
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

void la_syrk_full(dtype dt, int64_t N, int64_t K, double alpha, const void *A, int64_t lda, double beta, void *C) {
    if (dt == DT_F32)
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (blasint)N, (blasint)K, (float)alpha, A, (blasint)lda, (float)beta, C, (blasint)N);
    else
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (blasint)N, (blasint)K, alpha, A, (blasint)lda, beta, C, (blasint)N);
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

