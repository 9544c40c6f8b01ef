/* lanczos: the top eigenpairs of a symmetric positive semi-definite operator known only through
 * products y = A x, by Lanczos with full re-orthogonalisation (METHOD.md Setting 3: 50 steps, top
 * 25), and optionally thick restarts until the wanted pairs converge.
 *
 * Each step applies A to the newest basis vector and orthogonalises the result against every basis
 * vector twice (classical Gram-Schmidt, twice), so the projected matrix H = Q^T A Q is built from
 * the coefficients themselves. Its eigenpairs (theta, y) give Ritz pairs (theta, Q y) whose residual
 * ||A Q y - theta Q y|| equals |beta y_last| exactly in exact arithmetic (beta: the coupling to the
 * next basis vector): that is the bound reported, and a pair is converged when its bound is at most
 * tol times the largest Ritz value. A restart keeps the best Ritz vectors and the next basis vector
 * (Wu and Simon's thick restart) and goes on from there.
 *
 * The operator may also return a "side image" B x of each vector for a linear B (for Setting 3: J x,
 * the window-space image): the side images of the Ritz vectors are then combined from those of the
 * basis, with no further product.
 *
 * Deterministic: the start vector comes from the seed, and every reduction over the vector length
 * runs in fixed blocks in a fixed order, so the bits do not depend on the number of threads. */
#ifndef ENTK_LANCZOS_H
#define ENTK_LANCZOS_H
#include <stdint.h>

/* y = A x (and side = B x when side is not NULL); call = 0, 1, 2, ... */
typedef void (*lanczos_apply_fn)(void *ctx, const double *x, double *y, double *side, int call);

typedef struct {
    int64_t n;          /* operator size */
    int64_t n_side;     /* side image size (0: none) */
    int k;              /* wanted eigenpairs (top k) */
    int steps;          /* basis vectors per cycle: the Krylov dimension (METHOD.md: 50) */
    int restart;        /* 0: one cycle of `steps` products; 1: thick restarts until the top k converge */
    int max_products;   /* with restart: give up after this many products (0: 20 * steps) */
    double tol;         /* converged: residual bound <= tol * largest Ritz value */
    uint64_t seed;      /* start vector */
} lanczos_opts;

typedef struct {
    int k;
    double *values;     /* [k] descending */
    double *bounds;     /* [k] residual bounds ||A v - theta v|| (v of unit norm) */
    uint8_t *converged; /* [k] */
    double *vectors;    /* [k, n] Ritz vectors, unit norm */
    double *side;       /* [k, n_side] their side images, or NULL */
    int cycles, products;
} lanczos_result;

void lanczos_run(lanczos_apply_fn apply, void *ctx, const lanczos_opts *o, lanczos_result *r);
void lanczos_result_free(lanczos_result *r);
#endif
