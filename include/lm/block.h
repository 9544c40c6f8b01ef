/* lm/block: one decoder block of an lm_model (lm/model.h) over the rows of a set of windows — its
 * forward, and its JVP and VJP on the activations the forward kept. Everything a language model
 * computes (lm/forward.h, lm/generate.h, the eNTK operator of lm/entk.h) is built from these.
 *
 * Rows: windows of T tokens, row r = b*T + t. Each function works on windows [b0, b1) of an
 * activation set and may run beside calls on other windows (no shared state), with OpenBLAS on one
 * thread per call.
 *
 * "lean" is the last block's shortcut for outputs read at the last position only: there only the
 * last position's query, attention output, o_proj and MLP matter, while every position needs its
 * key and value. A lean block computes keys and values at every row, the rest at the last row of
 * each window, and its post-attention buffers (attn .. out) hold one row per window (row b).
 *
 * Operations live in lib/lm/ops_impl.h, each with its JVP and VJP beside it; the blocks in
 * lib/lm/block_impl.h. Both are compiled for f32 (_f32, what entk runs) and f64 (_f64, how the
 * derivatives are checked against autograd). */
#ifndef ENTK_LM_BLOCK_H
#define ENTK_LM_BLOCK_H
#include <stddef.h>
#include <stdint.h>
#include "lm/model.h"

/* The cached activations of one block over R rows (row stride = the buffer's width):
 *   x        [R, dim]      residual stream entering the block (== previous block's out)
 *   xn       [R, dim]      attn_norm(x): input of the q/k/v projections
 *   rms_x    [R]           1/rms(x) used by attn_norm
 *   qkv      [R, nq+2nkv]  q | k | v; q and k after q/k norm and RoPE, v as projected
 *   qk_raw   [R, nq+nkv]   q | k straight from the projection (for the q/k norm's derivative)
 *   rms_qk   [R, nh+nkvh]  1/rms per head used by q_norm / k_norm (gemma3)
 *   probs    [B, nh, T, T] attention probabilities (row i: query t=i); lean: [B, nh, 1, T]
 *   attn     [R, nq]       attention output, heads concatenated: input of o_proj
 *   o        [R, dim]      o_proj output (before post_attn_norm)
 *   rms_o    [R]           1/rms(o) of post_attn_norm (gemma3)
 *   h        [R, dim]      residual after the attention half
 *   hn       [R, dim]      ffn_norm(h): input of gate/up
 *   rms_h    [R]           1/rms(h)
 *   gate_up  [R, 2 ffn]    gate | up projections (before the activation)
 *   mlp      [R, ffn]      act(gate) * up: the input of down_proj
 *   down     [R, dim]      down_proj output (before post_ffn_norm)
 *   rms_down [R]           1/rms(down) of post_ffn_norm (gemma3)
 *   out      [R, dim]      residual stream after the block (== next block's x)
 * Declared once for both precisions. */
#define LM_BLOCK_ACTS(R) \
    R *x, *xn, *rms_x, *qkv, *qk_raw, *rms_qk, *probs, *attn, *o, *rms_o, *h, *hn, *rms_h, *gate_up, *mlp, *down, \
        *rms_down, *out

typedef struct { LM_BLOCK_ACTS(float); } lm_layer_acts;
typedef struct { LM_BLOCK_ACTS(double); } lm_layer_acts64;

/* Tangents (JVP) or gradients (VJP) inside one block, same widths as the activations, for R rows;
 * W: attention scratch of 2 T^2 per head in flight. */
#define LM_BLOCK_TANGENTS(R) R *dxn, *dqkv, *dattn, *d_o, *dh, *dhn, *dgu, *dmlp, *ddown, *W
typedef struct { LM_BLOCK_TANGENTS(float); } lm_block_tangents;
typedef struct { LM_BLOCK_TANGENTS(double); } lm_block_tangents64;

/* Where a weight's tangent enters a block (the linear map it belongs to); LM_AT_X: the residual. */
typedef enum { LM_AT_X = 0, LM_AT_QKV, LM_AT_O, LM_AT_GU, LM_AT_DOWN } lm_entry;

/* Widths of the per-row buffers of one block. */
typedef struct { size_t dim, nq, nkv, nqkv, ffn, nh, nkvh; } lm_widths;
lm_widths lm_widths_of(const lm_model *m);

/* Elements of one block's activation set for B windows of T rows (qk_raw only when keep; lean:
 * the post-attention buffers one row per window), and of a tangent set; each buffer rounded up to
 * 16 elements so carved buffers stay 64-byte aligned in f32. */
size_t lm_acts_elems(const lm_model *m, size_t B, size_t T, int keep, int lean);
size_t lm_tangents_elems(const lm_model *m, size_t B, size_t T);
/* Carve one set out of *p (advancing it); x and out are left for the caller to point. */
void lm_acts_carve_f32(lm_layer_acts *A, float **p, const lm_model *m, size_t B, size_t T, int keep, int lean);
void lm_acts_carve_f64(lm_layer_acts64 *A, double **p, const lm_model *m, size_t B, size_t T, int keep, int lean);
void lm_tangents_carve_f32(lm_block_tangents *G, float **p, const lm_model *m, size_t B, size_t T);
void lm_tangents_carve_f64(lm_block_tangents64 *G, double **p, const lm_model *m, size_t B, size_t T);

/* RoPE cos | sin tables of layer l for positions 0..T-1: rope[t * head_dim + i] = cos, + hd/2: sin.
 * The angle t * inv_freq[i] is taken in f32, as torch and run.c do. */
void lm_rope_table_f32(const lm_model *m, int l, int T, float *rope);
void lm_rope_table_f64(const lm_model *m, int l, int T, double *rope);

/* Forward of block l on windows [b0, b1): reads A->x, writes the rest. */
void lm_block_forward_f32(const lm_model *m, int l, const lm_layer_acts *A, const float *rope, int T, int b0, int b1,
                          int lean);
void lm_block_forward_f64(const lm_model *m, int l, const lm_layer_acts64 *A, const double *rope, int T, int b0, int b1,
                          int lean);

/* JVP of block l on windows [b0, b1) at the point A holds. entry = LM_AT_X: dx [R, dim] is the
 * tangent of x; otherwise the tangent enters at that linear map's output, already in G (dqkv,
 * d_o, dgu or ddown: the weight's tangent times the map's input) and dx is not read. Writes dout
 * (lean: one row per window). */
void lm_block_jvp_f32(const lm_model *m, int l, const lm_layer_acts *A, const lm_block_tangents *G, const float *rope,
                      int T, int b0, int b1, int lean, lm_entry entry, const float *dx, float *dout);
void lm_block_jvp_f64(const lm_model *m, int l, const lm_layer_acts64 *A, const lm_block_tangents64 *G,
                      const double *rope, int T, int b0, int b1, int lean, lm_entry entry, const double *dx, double *dout);

/* VJP of block l: from gout (the gradient of out; lean: one row per window) back to `entry`:
 * LM_AT_X writes gx [R, dim]; otherwise the gradient of that linear map's output is left in G
 * (dqkv, d_o, dgu or ddown), gx not written. */
void lm_block_vjp_f32(const lm_model *m, int l, const lm_layer_acts *A, const lm_block_tangents *G, const float *rope,
                      int T, int b0, int b1, int lean, lm_entry entry, const float *gout, float *gx);
void lm_block_vjp_f64(const lm_model *m, int l, const lm_layer_acts64 *A, const lm_block_tangents64 *G,
                      const double *rope, int T, int b0, int b1, int lean, lm_entry entry, const double *gout, double *gx);

/* RMSNorm (w or 1 + w as the model says) of rows of length dim, with its JVP and VJP: the final
 * norm, for the code that reads the hidden state. */
void lm_rmsnorm_f32(const lm_model *m, float *out, float *inv, const float *x, const float *w, int rows, int dim);
void lm_rmsnorm_f64(const lm_model *m, double *out, double *inv, const double *x, const double *w, int rows, int dim);
void lm_rmsnorm_jvp_f64(const lm_model *m, double *dy, const double *x, const double *inv, const double *dx,
                        const double *w, int rows, int dim);
void lm_rmsnorm_jvp_f32(const lm_model *m, float *dy, const float *x, const float *inv, const float *dx, const float *w,
                        int rows, int dim);
void lm_rmsnorm_vjp_f32(const lm_model *m, float *dx, const float *x, const float *inv, const float *dy, const float *w,
                        int rows, int dim);
void lm_rmsnorm_vjp_f64(const lm_model *m, double *dx, const double *x, const double *inv, const double *dy,
                        const double *w, int rows, int dim);

/* One new position per window against a KV cache (greedy generation): x [nwin, dim] is the
 * residual of the new token of each window i at position pos[i]; the cache of window i is row
 * win[i] of kv [*, maxT, 2 nkv], which holds the keys (after norm and RoPE) | values of positions
 * 0..pos[i]-1 of this layer and gets position pos[i]; x is replaced by the block's output.
 * S: scratch of lm_decode_elems(). */
size_t lm_decode_elems(const lm_model *m, int nwin, int maxT);
void lm_block_decode_f32(const lm_model *m, int l, float *x, int nwin, const int *pos, const int *win, float *kv,
                         int maxT, const float *rope, float *S);
#endif
