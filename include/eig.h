/* eig: top-k eigenpairs of a symmetric Gram (LAPACK syevr), METHOD.md's recipe: add
 * ridge * mean(diag K) to the diagonal, solve, sort descending. */
#ifndef ENTK_EIG_H
#define ENTK_EIG_H
#include "tensor.h"

typedef struct {
    int64_t n, k;
    double ridge_abs;      /* the ridge actually added: ridge * mean(diag K) */
    tensor values;         /* [k] descending, in K's dtype */
    tensor vectors;        /* [k, n]: row i is the eigenvector of values[i] */
    double residual;       /* max_i ||K v_i - lambda_i v_i|| / ||K||_F, on the ridged K */
} eig_result;

/* K is [n, n] f32 or f64 and is not modified. */
void eig_top(const tensor *K, int64_t k, double ridge, eig_result *out);
void eig_free(eig_result *e);
#endif
