#include "ntk/align.h"
#include "core/err.h"
#include "core/linalg.h"
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* SVD instead of plain QR: a family can be rank-deficient after centring (the k = p/2 sine, or
 * cos/sin pairs that coincide), and QR would then invent directions. */
tensor align_basis(const tensor *A, int center) {
    int64_t N = A->shape[0], d = A->shape[1];
    double *a = xmalloc((size_t)(N * d) * sizeof(double));
    memcpy(a, A->data, (size_t)(N * d) * sizeof(double));
    if (center)
        for (int64_t j = 0; j < d; j++) {
            double mu = 0;
            for (int64_t i = 0; i < N; i++) mu += a[i * d + j];
            mu /= (double)N;
            for (int64_t i = 0; i < N; i++) a[i * d + j] -= mu;
        }
    int64_t r = d < N ? d : N;
    double *s = xmalloc((size_t)r * sizeof(double)), *u = xmalloc((size_t)(N * r) * sizeof(double)),
           *superb = xmalloc((size_t)(r + 1) * sizeof(double));
    lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'S', 'N', (lapack_int)N, (lapack_int)d, a, (lapack_int)d, s, u,
                                     (lapack_int)r, NULL, 1, superb);
    if (info != 0) entk_die(ENTK_EXIT_FAIL, "align: SVD failed (info %d)", (int)info);
    /* Numerical rank. A direction that centring (or a coincidence of columns) removed comes out of
     * the SVD as rounding noise, of order u sqrt(N) s_1 (u = DBL_EPSILON); numpy's matrix_rank cuts
     * at u max(N, d) s_1. The cut here is 100 times numpy's: at N = 841 it is 2e-11 s_1, three
     * thousand times the noise, and far below the real directions of every family (orthogonal
     * Fourier columns, Gaussian controls, orthonormal eigenvectors lie within a small factor of s_1). */
    int64_t rank = 0;
    double tol = (s[0] > 0 ? s[0] : 0) * (double)(N > d ? N : d) * 100 * DBL_EPSILON;
    while (rank < r && s[rank] > tol) rank++;
    tensor B = tensor_2d(DT_F64, N, rank);
    for (int64_t i = 0; i < N; i++) memcpy((double *)B.data + i * rank, u + i * r, (size_t)rank * sizeof(double));
    free(a); free(s); free(u); free(superb);
    return B;
}

void align_overlap(const tensor *V, const tensor *F, overlap_result *out) {
    int64_t k = V->shape[0], N = V->shape[1];
    if (F->shape[0] != N) entk_die(ENTK_EXIT_INPUT, "align: features have %lld rows, eigenvectors have length %lld",
                                   (long long)F->shape[0], (long long)N);
    tensor Vt = tensor_2d(DT_F64, N, k);
    for (int64_t i = 0; i < k; i++)
        for (int64_t n = 0; n < N; n++) ((double *)Vt.data)[n * k + i] = ((const double *)V->data)[i * N + n];
    tensor Q = align_basis(&Vt, 0), B = align_basis(F, 1);
    int64_t rq = Q.shape[1], rf = B.shape[1];
    memset(out, 0, sizeof *out);
    out->d = F->shape[1];
    out->rank_f = rf;
    out->rank_q = rq;
    int64_t ns = rq < rf ? rq : rf;
    out->sigma = xcalloc((size_t)(ns + 1), sizeof(double));
    out->nsigma = ns;
    if (ns > 0) {
        double *M = xmalloc((size_t)(rq * rf) * sizeof(double));
        la_gemm(DT_F64, 1, 0, rq, rf, N, 1.0, Q.data, rq, B.data, rf, 0.0, M, rf);
        double ov = 0;
        for (int64_t i = 0; i < rq * rf; i++) ov += M[i] * M[i];
        out->overlap = ov;
        double *superb = xmalloc((size_t)(ns + 1) * sizeof(double));
        lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', (lapack_int)rq, (lapack_int)rf, M, (lapack_int)rf,
                                         out->sigma, NULL, 1, NULL, 1, superb);
        if (info != 0) entk_die(ENTK_EXIT_FAIL, "align: SVD failed (info %d)", (int)info);
        free(superb);
        free(M);
    }
    tensor_free(&Vt);
    tensor_free(&Q);
    tensor_free(&B);
}
