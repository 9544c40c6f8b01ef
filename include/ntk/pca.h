/* pca: the same-budget baseline of Setting 3 (METHOD.md): the top k principal components of an
 * [N, D] matrix of activations (the last-token residual stream at the output of block L, one row
 * per window), centred, and each window's PC score, which label scoring (score.h) treats exactly
 * as an eNTK direction's rank-1 score.
 *
 * Computed by the thin SVD of the centred matrix Xc = U S V^T (LAPACK gesdd): component j = row j
 * of V^T, score_j = Xc v_j = s_j u_j, explained variance s_j^2 / (N - 1) (as scikit-learn's PCA),
 * ratio s_j^2 / sum of all s^2. Sign: each score vector's largest |entry| is positive (the first on
 * ties), its component flipped with it, the convention of score_rank1 and entk-eig. */
#ifndef ENTK_PCA_H
#define ENTK_PCA_H
#include "core/frame.h"
#include "core/tensor.h"

typedef struct {
    int64_t k, N, D;
    tensor scores;          /* [k, N] f64 */
    tensor components;      /* [k, D] f64, orthonormal rows */
    tensor mean;            /* [D] f64, the column means removed */
    double *variance;       /* [k] */
    double *ratio;          /* [k] share of the total variance */
    double total;           /* total variance: sum of all s^2 / (N - 1) */
} pca_result;

/* X [N, D] f64 with N >= 2 and 1 <= k <= min(N, D); X is not modified. */
void pca_top(const tensor *X, int64_t k, pca_result *out);
void pca_free(pca_result *p);

/* Activations as entk-forward writes them: per batch of n windows, a tensor frame NAME ('resid')
 * [n, 1, D] with meta window0 (its first window) and layer, one per layer asked for. Collected
 * per layer, in the order the layers first appear, into X [N, D] f64. model and windows are the
 * keys of the header inputs named "model" and "ids" ("" if absent): what the activations were
 * computed from, passed on to the scores. */
typedef struct {
    int nlayers;
    int64_t *layer;
    tensor *X;
    char model[64], windows[64];
} pca_acts;

/* Reads one stream to its end; dies (exit 3) on more than one position per window, windows out of
 * order or missing, or layers of different widths or window counts. Returns the number of layers. */
int pca_acts_read(frame_reader *r, const char *name, pca_acts *a);
void pca_acts_free(pca_acts *a);
#endif
