/* lm: the forward pass of decoder-only language models (Gemma 3 and llama2.c Llama), in f32.
 *
 * One transformer covers both kinds; the differences are flags on lm_model (norm with w or 1+w,
 * sandwich norms, q/k norms, GELU-tanh or SiLU, RoPE on halves or adjacent pairs, per-layer
 * sliding windows and RoPE bases). gemma3.c and llama2.c only read their files into an lm_model.
 *
 * Work is batched: B windows of T tokens each (rows r = b*T + t, R = B*T), every matrix product an
 * sgemm over the rows. Windows are independent, so with B >= 2 the windows are cut into blocks (up
 * to 8 windows) that the OpenMP threads take in turn, each running the whole forward of its block
 * with single-threaded OpenBLAS (no synchronisation between layers); with one window (generation)
 * one thread runs it and OpenBLAS uses all cores. The logits are one sgemm over all windows.
 *
 * Activations (lm_acts) are kept so that a VJP or JVP through a chosen layer can reuse them: every
 * layer >= keep_from keeps its lm_layer_acts after lm_forward returns (see the struct for what each
 * buffer holds); earlier layers share one scratch set. For the eNTK of Setting 3 (output = final
 * hidden state at the last position, parameter = down_proj of block L) run with keep_from = L:
 *   VJP  z -> final norm backward (stream[n_layers], rms_final) -> blocks n_layers-1 .. L+1 backward
 *        (every buffer of their lm_layer_acts) -> post_ffn_norm of block L backward (down, rms_down)
 *        = delta [R, dim]; then J^T z = delta^T mlp ([dim, ffn], mlp of block L).
 *   JVP  U [dim, ffn] -> d down = mlp U^T -> post_ffn_norm of block L forward-mode -> blocks L+1 ..
 *        forward-mode -> final norm at the last position.
 * RoPE cos/sin are not stored: angle(t, i) = (float)t * layers[l].inv_freq[i], as in the forward.
 * lm_acts_bytes() tells the memory a choice of B, T and keep_from needs (about 54 KB per row and
 * kept layer at Gemma-3-270M sizes, T = 64). */
#ifndef ENTK_LM_H
#define ENTK_LM_H
#include <stdint.h>
#include "core/hash.h"

typedef enum { LM_GEMMA3 = 1, LM_LLAMA2 = 2 } lm_arch;
typedef enum { LM_ACT_GELU_TANH = 1, LM_ACT_SILU = 2 } lm_act;

/* One decoder block. Matrices are row-major [out, in], as nn.Linear stores them; q, k and v are
 * stacked into one [nq + 2 nkv, dim] matrix (nq = n_heads*head_dim, nkv = n_kv_heads*head_dim) and
 * gate/up into one [2 ffn, dim] matrix, so each is a single sgemm. */
typedef struct {
    float *attn_norm;       /* [dim] input_layernorm / llama2 rms_att */
    float *qkv;             /* [nq + 2 nkv, dim] q_proj, k_proj, v_proj stacked */
    float *q_norm, *k_norm; /* [head_dim] (gemma3) or NULL */
    float *o;               /* [dim, nq] o_proj */
    float *post_attn_norm;  /* [dim] (gemma3) or NULL */
    float *ffn_norm;        /* [dim] pre_feedforward_layernorm / llama2 rms_ffn */
    float *gate_up;         /* [2 ffn, dim] gate_proj (w1) then up_proj (w3) */
    float *down;            /* [dim, ffn] down_proj (w2) */
    float *post_ffn_norm;   /* [dim] (gemma3) or NULL */
    int window;             /* sliding window: key j is seen by query i iff i - window < j <= i; 0 = all j <= i */
    float *inv_freq;        /* [head_dim/2] RoPE inverse frequencies of this layer */
} lm_layer;

typedef struct {
    lm_arch arch;
    int vocab, dim, ffn, n_layers, n_heads, n_kv_heads, head_dim, max_pos;
    float eps;              /* RMSNorm epsilon */
    int norm_plus_one;      /* RMSNorm scales by (1 + w) (Gemma) instead of w (Llama) */
    int rope_adjacent;      /* RoPE rotates pairs (2i, 2i+1) (llama2.c) instead of (i, i + hd/2) (HF) */
    lm_act act;
    float attn_scale;       /* multiplies q.k: query_pre_attn_scalar^-1/2 or head_dim^-1/2 */
    float attn_softcap;     /* 0 = none, else s = cap * tanh(s / cap) before the mask */
    float final_softcap;    /* 0 = none, same on the logits */
    float embed_scale;      /* embeddings are multiplied by this (Gemma: sqrt(dim)); 1 for Llama */
    float *embed;           /* [vocab, dim] */
    float *final_norm;      /* [dim] */
    float *head;            /* [vocab, dim]; == embed when tied */
    lm_layer *layers;       /* [n_layers] */
    int bos, eos;           /* token ids (-1 if unknown) */
    entk_key key;           /* content key of the model files, for frame headers and caches */
    char desc[160];         /* one line for logs: kind and shape */
} lm_model;

/* The cached activations of one block over all R rows (row stride = the buffer's width). */
typedef struct {
    float *x;           /* [R, dim]      residual stream entering the block (== previous block's out) */
    float *xn;          /* [R, dim]      attn_norm(x): input of the q/k/v projections */
    float *rms_x;       /* [R]           1/rms(x) used by attn_norm */
    float *qkv;         /* [R, nq+2nkv]  q | k | v; q and k after q/k norm and RoPE, v as projected */
    float *qk_raw;      /* [R, nq+nkv]   q | k straight from the projection (kept layers only, else NULL) */
    float *rms_qk;      /* [R, nh+nkvh]  1/rms per head used by q_norm / k_norm (gemma3) */
    float *probs;       /* [B, n_heads, T, T] attention probabilities (row i: query t=i) */
    float *attn;        /* [R, nq]       attention output, heads concatenated: input of o_proj */
    float *o;           /* [R, dim]      o_proj output (before post_attn_norm) */
    float *rms_o;       /* [R]           1/rms(o) of post_attn_norm (gemma3) */
    float *h;           /* [R, dim]      residual after the attention half */
    float *hn;          /* [R, dim]      ffn_norm(h): input of gate/up */
    float *rms_h;       /* [R]           1/rms(h) */
    float *gate_up;     /* [R, 2 ffn]    gate | up projections (before the activation) */
    float *mlp;         /* [R, ffn]      act(gate) * up: the input of down_proj */
    float *down;        /* [R, dim]      down_proj output (before post_ffn_norm) */
    float *rms_down;    /* [R]           1/rms(down) of post_ffn_norm (gemma3) */
    float *out;         /* [R, dim]      residual stream after the block (== next block's x) */
} lm_layer_acts;

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
} lm_outputs;

/* Loads a model: a directory (or its config.json) = Hugging Face Gemma 3; a file = llama2.c
 * checkpoint. Dies with ENTK_EXIT_INPUT naming the problem. */
lm_model *lm_load(const char *path);
void lm_free(lm_model *m);

/* keep_from = n_layers keeps nothing but the residual stream and final hidden states. */
lm_acts *lm_acts_new(const lm_model *m, int B, int T, int keep_from);
void lm_acts_free(lm_acts *a);
size_t lm_acts_bytes(const lm_model *m, int B, int T, int keep_from);

/* ids: [B, T] token ids (checked against vocab). out may be NULL. */
void lm_forward(const lm_model *m, const int32_t *ids, lm_acts *a, const lm_outputs *out);

/* Greedy continuation of B prompts of T tokens each by n tokens: out[B, n]. Recomputes the whole
 * window for every new token (no KV cache): meant for a few tokens. */
void lm_generate(const lm_model *m, const int32_t *ids, int B, int T, int n, int32_t *out);

/* Floating-point operations of one forward over B windows of T tokens, with logits at npos
 * positions (matrix products only: 2 per multiply-add). */
double lm_flops(const lm_model *m, int B, int T, int npos);

/* Internal: 64-byte aligned, uninitialised float buffers (one per tensor), and the checks and
 * description shared by the loaders. */
float *lm_alloc(size_t n);
void lm_finish(lm_model *m);
#endif
