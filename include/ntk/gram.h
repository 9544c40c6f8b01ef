/* gram: eNTK Grams from Jacobian blocks, with the reductions of METHOD.md:
 *   trace: K[n,m] = (1/C) sum_c K[n,m,c,c]
 *   mean:  K[n,m] = (1/C^2) sum_{c,d} K[n,m,c,d]
 *   flat:  the (N*C) x (N*C) matrix, class-major (row c*N + n)
 * A Gram accumulates K += J_b J_b^T block by block (explicit blocks, syrk) or
 * K += sum_{t,s} (X_t X_s^T) . R(G_t G_s^T) (factored blocks, Hadamard) in bounded memory. */
#ifndef ENTK_GRAM_H
#define ENTK_GRAM_H
#include "core/frame.h"
#include "core/tensor.h"

typedef enum { RED_TRACE, RED_MEAN, RED_FLAT } reduction;

typedef struct {
    reduction red;
    dtype dt;
    int64_t N, C;
    int64_t classes;   /* the outputs the reductions average over: C, or for a Jacobian of summed
                        * outputs (C = 1) their number, so that mean is still (1/C^2) sum_cd */
    tensor K;          /* [N, N], or [N*C, N*C] sample-major while accumulating for flat */
    double flops;      /* floating-point operations spent in the accumulation */
    double seconds;    /* time spent in the accumulation */
    int finished;      /* flat K already permuted to class-major */
    /* With want_factor, blocks whose Gram is exactly F^T F for a narrow F (gram_add_factored says
     * which) are kept as F [r, N] rows instead of being added to K; the first block that is not
     * turns them into K. has_dense says whether K holds anything. */
    int want_factor, has_dense;
    tensor F;
} gram;

const char *reduction_name(reduction r);
void gram_init(gram *g, reduction red, dtype dt, int64_t N, int64_t C);
/* X [N, T, in], G [N, T, C, rows]; or separable: A [C, rows] and G [N, T, 1, rows] (A NULL if dense) */
void gram_add_factored(gram *g, const tensor *X, const tensor *G, const tensor *A);
/* J [N, C, P] */
void gram_add_explicit(gram *g, const tensor *J);
/* Final K, exactly symmetric (its upper triangle mirrored): for flat, permuted to class-major. With want_factor and every block kept as a factor,
 * K is not formed: returns NULL and the Gram is g->F^T g->F. */
tensor *gram_finish(gram *g);
void gram_free(gram *g);

/* The Gram in frame f of an entk-gram stream, as dtype d (DT_NONE: its own): tensor "K" [n, n], or,
 * with *factored set, "K_factor" F [r, n] with K = F^T F (entk-gram --factor). Anything else,
 * or integer data, fails naming the frame. */
tensor gram_take(frame_reader *r, frame *f, dtype d, int *factored);
#endif
