/* linalg: BLAS/LAPACK calls on tensors of either float dtype, so model and Gram code is written
 * once. Matrices are row-major. */
#ifndef ENTK_LINALG_H
#define ENTK_LINALG_H
#include <cblas.h>
#include "core/tensor.h"

/* C = alpha * op(A) op(B) + beta * C with op = transpose when ta/tb; dims as in cblas. */
void la_gemm(dtype dt, int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha, const void *A, int64_t lda,
             const void *B, int64_t ldb, double beta, void *C, int64_t ldc);
/* y = alpha * op(A) x + beta * y, A M x N (lda), op = transpose when ta; strides incx, incy. */
void la_gemv(dtype dt, int ta, int64_t M, int64_t N, double alpha, const void *A, int64_t lda, const void *x, int64_t incx,
             double beta, void *y, int64_t incy);
/* Upper triangle of C (N x N, ldc) = alpha * op(A) op(A)^T + beta * C, op(A) N x K: A N x K when
 * !trans, K x N when trans. The lower triangle is not touched. */
void la_syrk_upper(dtype dt, int trans, int64_t N, int64_t K, double alpha, const void *A, int64_t lda, double beta,
                   void *C, int64_t ldc);
/* C (N x N, full) += alpha * A A^T for A N x K (row-major, lda): syrk on the upper triangle, then
 * mirrored, since later stages read the whole matrix. */
void la_syrk_full(dtype dt, int64_t N, int64_t K, double alpha, const void *A, int64_t lda, double beta, void *C);
/* The lower triangle of C (N x N) := its upper triangle, for code that reads a symmetric matrix
 * whole after a syrk filled one triangle. */
void la_mirror_upper(dtype dt, int64_t N, void *C);
/* Elementwise helpers on contiguous arrays of dtype dt. */
void la_scale(dtype dt, int64_t n, double a, void *x);
void la_axpy(dtype dt, int64_t n, double a, const void *x, void *y);
static inline double la_get(dtype dt, const void *x, int64_t i) {
    return dt == DT_F32 ? (double)((const float *)x)[i] : ((const double *)x)[i];
}
static inline void la_set(dtype dt, void *x, int64_t i, double v) {
    if (dt == DT_F32) ((float *)x)[i] = (float)v; else ((double *)x)[i] = v;
}
#endif
