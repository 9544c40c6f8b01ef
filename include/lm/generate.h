/* lm/generate: greedy continuation of token windows, one token at a time, incrementally: the
 * prompts run through one batched forward that keeps every layer's keys and values, and each new
 * token then costs one row per window and layer (lm/block.h: lm_block_decode) instead of a forward
 * of the whole window again. The tokens are those a forward of the whole sequence picks. */
#ifndef ENTK_LM_GENERATE_H
#define ENTK_LM_GENERATE_H
#include <stdint.h>
#include "lm/model.h"

typedef struct lm_gen lm_gen;

/* Runs B prompts of T tokens (ids [B, T]) and makes room for up to max_new tokens after each. */
lm_gen *lm_gen_start(const lm_model *m, const int32_t *ids, int B, int T, int max_new);
/* The next (greedy) token of each prompt active[0..na) (indices into the B prompts, each asked for
 * at most max_new times): next[i]. The token is appended to that prompt's sequence. */
void lm_gen_step(lm_gen *g, const int *active, int na, int32_t *next);
void lm_gen_free(lm_gen *g);

/* Continues every prompt by n tokens: out[B, n]. */
void lm_generate(const lm_model *m, const int32_t *ids, int B, int T, int n, int32_t *out);
#endif
