/* lm/forward: the forward pass of a language model (lm/model.h) over batches of token windows, in
 * f32, and what can be read out of it (logits, final hidden states, residual stream, MLP hidden).
 *
 * Work is batched: B windows of T tokens each (rows r = b*T + t, R = B*T), every matrix product a
 * GEMM over the rows. Windows are independent, so with B >= 2 the windows are cut into blocks (up
 * to 8 windows) that the OpenMP threads take in turn, each running the whole forward of its block
 * with single-threaded OpenBLAS (no synchronisation between layers); with one window one thread
 * runs it and OpenBLAS uses all cores. The logits are one GEMM over all windows.
 *
 * Every layer >= keep_from keeps its activations (lm/block.h: lm_layer_acts) after lm_forward
 * returns; earlier layers share one scratch set. lm_acts_bytes() tells the memory a choice of B, T
 * and keep_from needs (about 54 KB per row and kept layer at Gemma-3-270M sizes, T = 64). */
#ifndef ENTK_LM_FORWARD_H
#define ENTK_LM_FORWARD_H
#include <stdint.h>
#include "core/frame.h"
#include "lm/block.h"
#include "lm/model.h"

typedef struct {
    int B, T, keep_from;
    lm_layer_acts *layer;   /* [n_layers]: layers < keep_from alias one scratch set */
    float *stream;          /* [n_layers + 1, R, dim] residual stream: x of each block, then the last out */
    float *rms_final;       /* [R] 1/rms of the last out used by the final norm */
    float *hidden;          /* [R, dim] final norm output */
    void *mem[2];           /* owned allocations */
} lm_acts;

/* What to read out of a forward, at positions pos[0..npos) (each 0..T-1) of every window. */
typedef struct {
    int npos;
    const int *pos;
    float *logits;          /* [B, npos, vocab] or NULL */
    float *hidden;          /* [B, npos, dim] final hidden state (after the final norm) or NULL */
    int nlayers;
    const int *layers;      /* block indices for resid / mlp */
    float *resid;           /* [nlayers, B, npos, dim] residual stream after block layers[i], or NULL */
    float *mlp;             /* [nlayers, B, npos, ffn] MLP hidden (input of down_proj), or NULL */
    float *kv;              /* [n_layers, B, T, 2 nkv] keys (after norm and RoPE) | values of every
                             * layer at every position, or NULL: what generation keeps (lm/generate.h) */
} lm_outputs;

/* keep_from = n_layers keeps nothing but the residual stream and final hidden states. */
lm_acts *lm_acts_new(const lm_model *m, int B, int T, int keep_from);
void lm_acts_free(lm_acts *a);
size_t lm_acts_bytes(const lm_model *m, int B, int T, int keep_from);

/* Token windows in frames: a tensor frame 'ids' or 'windows' holding int ids, [T] (one window) or
 * [N, T] (entk-tokenize, entk-windows, --ids). 1 if f is one (nwin and T set; *ids, when given,
 * gets the windows' ids as i32, malloc'd), 0 for any other frame (skipped). Dies (ENTK_EXIT_INPUT)
 * on one of the wrong type or rank, an empty window, or an id < 0. */
int lm_ids_frame(const frame_reader *r, const frame *f, int64_t *nwin, int64_t *T, int32_t **ids);
/* Dies (ENTK_EXIT_INPUT) unless every id of ids [n] is in [0, vocab). */
void lm_check_ids(const lm_model *m, const int32_t *ids, size_t n, int T);
/* ids: [B, T] token ids (checked against vocab). out may be NULL. */
void lm_forward(const lm_model *m, const int32_t *ids, lm_acts *a, const lm_outputs *out);

/* logits [n, vocab] = head h[n, dim] (rows ldh apart), with the final softcap if the model has one. */
void lm_logits(const lm_model *m, const float *h, int ldh, int n, float *logits);

/* Floating-point operations of one forward over B windows of T tokens, with logits at npos
 * positions (matrix products only: 2 per multiply-add). */
double lm_flops(const lm_model *m, int B, int T, int npos);
#endif
