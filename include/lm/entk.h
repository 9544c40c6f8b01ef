/* lm/entk: the operator of Setting 3 (METHOD.md): the logit eNTK of a language model for one weight
 * of one block, over a set of windows, never materialised.
 *
 * Output: the final hidden state h_n (after the final norm) at the last position of window n
 * (D = hidden size). Parameter: one weight matrix W of block L (down_proj by default; gate, up, o,
 * q, k or v). J: the (N D) x |W| Jacobian of the h_n. The logits are U h_n (U: the output head,
 * tied or not), so the eNTK of all logits, (I (x) U) J J^T (I (x) U)^T, has the nonzero spectrum of
 *     K~ = S^1/2 J J^T S^1/2,  S = U^T U (per window),
 * and of the parameter-space operator A = J^T S J, which is what Lanczos runs on: one product is,
 * per chunk of windows, a JVP (J u), the D x D product with S, and a VJP (J^T z), on activations
 * the chunk's forward keeps — one pass per chunk. The eigenvectors of K~ come back from those of A
 * without further passes: w = S^1/2 J v / sqrt(theta), and J v is combined from the J u the
 * products already computed (the "side image" of ntk/lanczos.h).
 *
 * Work: the residual entering block L of every window (x_L, from one forward of the blocks before
 * L: entk-jacobian) is all a chunk needs; its forward runs blocks L..last, the last one lean
 * (lm/block.h). Chunks whose activations fit the memory budget keep them between products; the
 * others recompute them each time. Chunks run side by side on the threads, each on one BLAS
 * thread, and their partial products are added in chunk order in f64: the bits do not depend on
 * the number of threads, nor on which process computed which chunk.
 *
 * Cache (core/cache.h): each chunk's partial product for a vector u is an entry keyed by the
 * operator (model, layer, weight, precision, the chunk's windows by content) and u's content; when
 * all chunks of a product are there, they are folded into one entry for the product and removed.
 * A killed run replays its products from the cache and recomputes at most the chunks that were in
 * flight; processes sharing the cache directory claim chunks (core/claim.h) and so split each
 * product between them, and every one of them ends with the same bits. */
#ifndef ENTK_LM_ENTK_H
#define ENTK_LM_ENTK_H
#include <stddef.h>
#include <stdint.h>
#include "core/hash.h"
#include "core/tensor.h"
#include "lm/model.h"

typedef enum { LMP_DOWN, LMP_GATE, LMP_UP, LMP_O, LMP_Q, LMP_K, LMP_V, LMP_COUNT } lm_param;

/* "down", "gate", "up", "o", "q", "k", "v" (or the Hugging Face names down_proj, ...): 1 if known. */
int lm_param_parse(const char *s, lm_param *p);
const char *lm_param_name(lm_param p);
/* The weight's shape [out, in] (nn.Linear layout) in model m. */
void lm_param_shape(const lm_model *m, lm_param p, int64_t *out, int64_t *in);

typedef struct lm_entk_priv lm_entk_priv;

typedef struct {
    lm_model *m;            /* widened to f64 when dt is f64 */
    dtype dt;               /* precision of the forward, JVP and VJP (f32 or f64) */
    int layer;
    lm_param param;
    int N, T, D;            /* windows, tokens per window, hidden size */
    int64_t out, in, P;     /* the weight's shape, P = out * in */
    int chunk, nchunks;     /* windows per chunk (the last one may be short) */
    entk_key *ckey;         /* [nchunks] each chunk's operator key: model, layer, weight, dtype and its
                             * x_L by content */
    entk_key key;           /* the whole operator's key (model, layer, weight, dtype, every chunk key) */
    double *S;              /* [D, D] U^T U */
    double *Shalf;          /* [D, D] (U^T U)^1/2 (eigenvalues clamped at 0) */
    lm_entk_priv *p;
} lm_entk;

/* Windows per chunk that a chunk's activations fit in about target_bytes (a power of two, at most
 * N/2 so that the threads have chunks to share): the default chunking, a function of the model,
 * the layer, N and T only, so every machine cuts the same chunks. */
int lm_entk_default_chunk(const lm_model *m, dtype dt, int layer, int N, int T, size_t target_bytes);
/* Bytes a chunk of nwin windows keeps (activations of blocks layer..last). */
size_t lm_entk_chunk_bytes(const lm_model *m, dtype dt, int layer, int nwin, int T);

/* x: the residual entering block `layer`, [N, T, dim] in dt (copied). mem_budget: bytes of kept
 * activations allowed (chunks beyond it recompute their forward at every product). threads: chunks
 * computed side by side (0: the OpenMP default). Dies (ENTK_EXIT_INPUT / USAGE) naming the problem
 * for a layer out of range or a model without this support. */
lm_entk *lm_entk_new(lm_model *m, dtype dt, int layer, lm_param param, int N, int T, const void *x, int chunk,
                     size_t mem_budget, int threads);
void lm_entk_free(lm_entk *op);

/* One chunk c: Ju [n_c, D] (dt) = J_c u for u [out, in] (dt), when u and Ju are given; then, when
 * grad is given, grad [out, in] (dt) = J_c^T z with z [n_c, D] (dt) or, z NULL, z = Ju S. */
void lm_entk_chunk(lm_entk *op, int c, const void *u, void *Ju, const void *z, void *grad);

/* y [P] (f64) = A u = J^T S J u and Ju [N, D] (f64) = J u, for u [P] (f64): from the cache where it
 * can, else chunk by chunk as described above. call: the Lanczos step, for progress lines. */
void lm_entk_product(lm_entk *op, const double *u, double *y, double *Ju, int call);
/* Chunk products computed here and taken from the cache, over the life of op. */
void lm_entk_counts(const lm_entk *op, long *computed, long *cached, double *flops, double *seconds);
#endif
