/* lm/spectrum: the top eigenpairs of the Setting 3 operator (lm/entk.h): Lanczos (ntk/lanczos.h) on
 * A = J^T S J in parameter space, its Ritz vectors' window-space images J v (combined from the J u
 * every product computed) turned into the eigenvectors of K~ = S^1/2 J J^T S^1/2,
 *     w = S^1/2 J v / sqrt(theta),  ||w|| = 1,  K~ w = theta w,
 * with residual bounds for both: ||A v - theta v|| (Lanczos), and the window-space one it implies,
 * ||K~ w - theta w|| <= sqrt(theta_1 / theta) ||A v - theta v||. */
#ifndef ENTK_LM_SPECTRUM_H
#define ENTK_LM_SPECTRUM_H
#include <stdint.h>
#include "lm/entk.h"
#include "ntk/lanczos.h"

typedef struct {
    int k;
    double *values;         /* [k] descending */
    double *bounds;         /* [k] ||A v - theta v|| */
    double *bounds_w;       /* [k] bound on ||K~ w - theta w|| */
    uint8_t *converged;     /* [k] */
    double *vectors;        /* [k, N, D] the eigenvectors w of K~ */
    int cycles, products;
    double seconds;
} lm_spectrum;

/* o: k, steps, restart, tol, seed as ntk/lanczos.h (n and n_side are set here). */
void lm_spectrum_run(lm_entk *op, const lanczos_opts *o, lm_spectrum *s);
void lm_spectrum_free(lm_spectrum *s);
#endif
