/* lm/linearize: the point where the Setting 3 operator (lm/entk.h) linearises a language model —
 * the residual stream entering block L of every window — and the Jacobian's products written out
 * explicitly, for checks and small problems. entk-jacobian is the filter over these.
 *
 * The blocks before L run once per window; what they give (x_L) is all the operator needs of
 * them. One forward of the blocks before the deepest requested layer gives x_L for every layer
 * asked for. */
#ifndef ENTK_LM_LINEARIZE_H
#define ENTK_LM_LINEARIZE_H
#include <stdint.h>
#include "core/frame.h"
#include "core/tensor.h"
#include "lm/entk.h"
#include "lm/model.h"

/* x[i] ([N, T, dim] in dt, allocated) = the residual stream entering block layers[i] (0 = the
 * scaled embeddings) for windows ids [N, T]. Windows are cut into blocks of `cache_windows` whose
 * results are cached (model, layer, dtype, the block's ids). Dies on ids outside the vocabulary
 * or a layer out of range. */
void lm_prefix(lm_model *m, dtype dt, const int32_t *ids, int N, int T, const int *layers, int nl, void **x,
               int cache_windows);

/* The explicit (N D) x P Jacobian of the whitened outputs S^1/2 h_n w.r.t. the weight: J~[n, a, :]
 * = J_n^T (S^1/2 e_a), one VJP per row; its Gram is K~ (lm/entk.h). Out: [N, D, P] in f64. */
void lm_explicit_jacobian(lm_entk *op, double *J);

/* J u ([N, D]) and J^T z ([out, in]) over all windows, in op's precision, without S: the plain
 * Jacobian products, for checks against autograd. */
void lm_jvp_all(lm_entk *op, const double *u, double *Ju);
void lm_vjp_all(lm_entk *op, const double *z, double *grad);

/* The windows of a token stream: tensor frames 'windows' [N, T] (entk-windows) or 'ids' [T] or
 * [n, T] (entk-tokenize, --ids), int, in order, over every stream the reader has; other frames are
 * skipped. Dies (ENTK_EXIT_INPUT) when they differ in length or there are none. ids: [N, T]. */
int32_t *lm_read_windows(frame_reader *r, int *N, int *T);

/* A matrix-free linearisation: what entk-jacobian writes for a language model and entk-eig
 * --lanczos reads. Stream: header, record 'lm_linear' {model_key, windows_key, layer, param, dtype,
 * N, T, D, out, in}, tensor frames 'x' [n, T, D] (dt) holding the residual entering block `layer`
 * of windows window0 .. window0 + n (meta window0), in order, up to N. */
typedef struct {
    entk_key model_key, windows_key;
    int layer;
    lm_param param;
    dtype dt;
    int N, T, D;
    int64_t out, in;
    void *x;                /* [N, T, D] in dt */
} lm_linear;

void lm_linear_write(frame_writer *w, const lm_linear *L, int block_windows);
/* Reads the rest of one stream (its header already read) into L (x allocated). */
void lm_linear_read(frame_reader *r, lm_linear *L);
#endif
