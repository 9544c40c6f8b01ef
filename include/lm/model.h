/* lm/model: a decoder-only language model (Gemma 3 or llama2.c Llama) as plain arrays of weights.
 *
 * One struct covers both kinds; the differences are flags (norm with w or 1+w, sandwich norms, q/k
 * norms, GELU-tanh or SiLU, RoPE on halves or adjacent pairs, per-layer sliding windows and RoPE
 * bases). The loaders (lm/gemma3.h, lm/llama2.h) only read their files into an lm_model; lm/load.h
 * picks the loader; lm/block.h computes with it.
 *
 * Weights are f32, as entk runs the models. lm_widen() adds an f64 copy of every weight
 * (lm_layer64 and the *64 pointers), so the same operations can also run in f64: that is how the
 * derivatives of Setting 3 are checked against autograd to 1e-10. */
#ifndef ENTK_LM_MODEL_H
#define ENTK_LM_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "core/hash.h"

typedef enum { LM_GEMMA3 = 1, LM_LLAMA2 = 2 } lm_arch;
typedef enum { LM_ACT_GELU_TANH = 1, LM_ACT_SILU = 2 } lm_act;

/* The weight matrices and vectors of one decoder block in precision R, declared once for both
 * precisions (lm_layer: float, lm_layer64: double). Matrices are row-major [out, in], as nn.Linear
 * stores them; q, k and v are stacked into one [nq + 2 nkv, dim] matrix (nq = n_heads*head_dim,
 * nkv = n_kv_heads*head_dim) and gate/up into one [2 ffn, dim] matrix, so each is a single GEMM.
 *   attn_norm       [dim]  input_layernorm / llama2 rms_att
 *   qkv             [nq + 2 nkv, dim]  q_proj, k_proj, v_proj stacked
 *   q_norm, k_norm  [head_dim] (gemma3) or NULL
 *   o               [dim, nq]  o_proj
 *   post_attn_norm  [dim] (gemma3) or NULL
 *   ffn_norm        [dim]  pre_feedforward_layernorm / llama2 rms_ffn
 *   gate_up         [2 ffn, dim]  gate_proj (w1) then up_proj (w3)
 *   down            [dim, ffn]  down_proj (w2)
 *   post_ffn_norm   [dim] (gemma3) or NULL */
#define LM_BLOCK_WEIGHTS(R) \
    R *attn_norm, *qkv, *q_norm, *k_norm, *o, *post_attn_norm, *ffn_norm, *gate_up, *down, *post_ffn_norm

typedef struct {
    LM_BLOCK_WEIGHTS(float);
    int window;             /* sliding window: key j is seen by query i iff i - window < j <= i; 0 = all j <= i */
    float *inv_freq;        /* [head_dim/2] RoPE inverse frequencies of this layer */
} lm_layer;

typedef struct {
    LM_BLOCK_WEIGHTS(double);
} lm_layer64;

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
    /* f64 copies, after lm_widen (else NULL); the constants as the config gives them (the f32 ones
     * are these rounded), so f64 computes the model of the config, not of its f32 rounding */
    double *embed64, *final_norm64, *head64;
    lm_layer64 *layers64;
    double eps64, attn_scale64, attn_softcap64, embed_scale64;
    int bos, eos;           /* token ids (-1 if unknown) */
    entk_key key;           /* content key of the model files, for frame headers and caches */
    char desc[160];         /* one line for logs: kind and shape */
} lm_model;

/* 64-byte aligned (2 MB and huge pages for big ones), uninitialised float buffers: the loaders
 * allocate one per weight with it. */
float *lm_alloc(size_t n);
/* Checks the shape fields the loaders filled in and writes desc; dies with ENTK_EXIT_INPUT. */
void lm_finish(lm_model *m);
/* Adds the f64 copy of every weight (idempotent). */
void lm_widen(lm_model *m);
void lm_free(lm_model *m);
#endif
