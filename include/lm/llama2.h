/* llama2: reads llama2.c checkpoints (run.c format) into an lm_model (lm/model.h), and llama2.c
 * tokenizer files (tok512.bin) for decoding token ids to text.
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

typedef struct {
    int n;
    char **piece;       /* token strings, NUL-terminated */
    float *score;
} llama2_vocab;

/* Dies with ENTK_EXIT_INPUT if the file is not a llama2.c tokenizer. */
llama2_vocab *llama2_vocab_load(const char *path);
void llama2_vocab_free(llama2_vocab *v);
/* The text of token tok following token prev, as run.c prints it: "<0xXX>" pieces become that
 * byte, a leading space is dropped after BOS (1). Returns bytes written to buf (NUL-terminated). */
size_t llama2_decode(const llama2_vocab *v, int prev, int tok, char *buf, size_t cap);
#endif
