/* eig: top-k eigenpairs of a symmetric Gram, METHOD.md's recipe: add ridge * mean(diag K) to the
 * diagonal, solve, sort descending.
 *
 * Two solvers. "full" is LAPACK syevr on the ridged K. "auto" first tries a low-rank path, since
 * eNTK Grams are often (1/C) X X^T with few columns: pivoted Cholesky K = F^T F (rank r), thin SVD
 * of F, eigenvalues sigma^2 + ridge, eigenvectors the left singular vectors. It is taken only when
 * r is small, r >= k, the explicit remainder ||K - F^T F||_F and the residuals are at rounding
 * level; otherwise auto falls back to syevr, so both solvers agree to rounding. */
#ifndef ENTK_EIG_H
#define ENTK_EIG_H
#include "core/tensor.h"

typedef enum { EIG_AUTO, EIG_FULL } eig_solver;

typedef struct {
    int64_t n, k;
    double ridge_abs;      /* the ridge actually added: ridge * mean(diag K) */
    tensor values;         /* [k] descending, in K's dtype */
    tensor vectors;        /* [k, n]: row i is the eigenvector of values[i] */
    double residual;       /* max_i ||K v_i - lambda_i v_i|| / ||K||_F, on the ridged K */
    int64_t rank;          /* r of the low-rank path when it ran, else 0 */
    char solver[48];       /* what produced the result: "pivchol-svd r=64" or "syevr" */
    char path[128];        /* for the log: "low-rank r=64", "full", or "full: <why auto fell back>" */
} eig_result;

/* K is [n, n] f32 or f64 and is not modified. */
void eig_top(const tensor *K, int64_t k, double ridge, eig_solver solver, eig_result *out);

/* A Gram of low numerical rank travels as its factor: F [r, n] with K = F^T F to rounding (the
 * verified pivoted Cholesky of the auto solver). eig_factor returns r and sets F, or returns 0 with
 * why set when K is not of rank <= N/4 at rounding level. */
int64_t eig_factor(const tensor *K, tensor *F, char *why, size_t nwhy);
tensor eig_unfactor(const tensor *F);           /* K = F^T F, [n, n] */
/* The same eigenpairs as eig_top on K = F^T F, from the factor (thin SVD; residuals through F). */
void eig_top_factor(const tensor *F, int64_t k, double ridge, eig_result *out);
void eig_free(eig_result *e);
#endif
