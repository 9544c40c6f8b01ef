/* align: the subspace overlap of METHOD.md. Q = orthonormalised eigenvectors of a cliff,
 * F = a feature family, columns mean-centred then orthonormalised; overlap = ||Q^T F||_F^2 =
 * sum of squared cosines of the principal angles, in [0, min(rank Q, rank F)]. */
#ifndef ENTK_ALIGN_H
#define ENTK_ALIGN_H
#include "core/tensor.h"

typedef struct {
    double overlap;
    int64_t d;          /* columns of the family */
    int64_t rank_f;     /* numerical rank of the centred family */
    int64_t rank_q;
    double *sigma;      /* min(rank_q, rank_f) cosines, descending (malloc'd) */
    int64_t nsigma;
} overlap_result;

/* V [k, N] f64 rows = vectors (eigenvectors), F [N, d] f64. */
void align_overlap(const tensor *V, const tensor *F, overlap_result *out);
/* Orthonormal basis (columns, [N, r]) of the columns of A [N, d] via SVD; r = numerical rank. */
tensor align_basis(const tensor *A, int center);
#endif
