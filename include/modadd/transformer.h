/* transformer: the 1-layer Transformer of METHOD.md setting 2 (after Nanda et al. 2023).
 * Implemented in lib/transformer.c; called through model.h. */
#ifndef ENTK_TRANSFORMER_H
#define ENTK_TRANSFORMER_H
#include "modadd/model.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/torchrng.h"

/* Random weights from entk's generator r, or (torch != NULL) from a torch generator exactly as the
 * reference PyTorch module draws them. */
void transformer_create(model *m, const int *config, rng *r, mt19937 *torch);
void transformer_load(model *m, const safetensors *st);
/* logits at the last position for rows idx; cache (if not NULL) receives per-layer activations. */
void transformer_forward(const model *m, const tensor *x, const int64_t *idx, int64_t nb, void *logits, void *cache);
/* resid_post at the last position (the input of W_U), [nb, d_model], for rows idx. */
void transformer_hidden(const model *m, const tensor *x, const int64_t *idx, int64_t nb, void *hidden);
double transformer_loss_grad(const model *m, const tensor *x, const int32_t *labels, const int64_t *idx, int64_t nb,
                             tensor *grads);
int transformer_separable(int k);
void transformer_linear_shape(const model *m, int k, int64_t *out, int64_t *in, int64_t *T);
void transformer_factored_jacobian(const model *m, const tensor *x, int k, int sum_outputs, factored_jac *fj);
#endif
