/* llama2: reads llama2.c checkpoints (run.c format) into an lm_model (lm/model.h). Their
 * tokenizer files (tok512.bin) are text/llama2tok.h's.
 *
 * Checkpoint: 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size
 * (negative = unshared classifier), seq_len), then f32 weights: embedding, attention RMSNorm, wq,
 * wk, wv, wo, FFN RMSNorm, w1, w2, w3, final RMSNorm, two legacy RoPE tables, and the classifier if
 * unshared. RMSNorm eps 1e-5 scaling by w; FFN w2(silu(w1 x) * w3 x); RoPE on adjacent pairs, base
 * 10000; BOS = 1. */
#ifndef ENTK_LLAMA2_H
#define ENTK_LLAMA2_H
#include "lm/model.h"

lm_model *llama2_load(const char *path);
/* 1 if path is a file whose llama2.c header describes its size exactly (a cheap look, no loading). */
int llama2_probe(const char *path);
#endif
