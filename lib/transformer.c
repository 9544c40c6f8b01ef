#include "transformer.h"
#include "err.h"

/* Setting 2 lands with issue 3; until then a transformer model is refused with a clear error. */
void transformer_create(model *m, const int *config, rng *r) {
    entk_die(ENTK_EXIT_USAGE, "the transformer model is not implemented yet");
}
void transformer_load(model *m, const safetensors *st) {
    entk_die(ENTK_EXIT_INPUT, "%s: transformer checkpoints are not supported yet", st->path);
}
void transformer_forward(const model *m, const tensor *x, const int64_t *idx, int64_t nb, void *logits, void *cache) {
    entk_die(ENTK_EXIT_USAGE, "the transformer model is not implemented yet");
}
double transformer_loss_grad(const model *m, const tensor *x, const int32_t *labels, const int64_t *idx, int64_t nb,
                             tensor *grads) {
    entk_die(ENTK_EXIT_USAGE, "the transformer model is not implemented yet");
}
void transformer_factored_jacobian(const model *m, const tensor *x, int k, factored_jac *fj) {
    entk_die(ENTK_EXIT_USAGE, "the transformer model is not implemented yet");
}
void transformer_linear_shape(const model *m, int k, int64_t *out, int64_t *in, int64_t *T) {
    entk_die(ENTK_EXIT_USAGE, "the transformer model is not implemented yet");
}
