/* model: the modular-addition networks of METHOD.md settings 1 and 2, their checkpoints, forward
 * pass, loss gradient and the factored Jacobian of the logits.
 *
 * Checkpoints are safetensors files; __metadata__ holds "entk_model" ("mlp" or "transformer")
 * and the config as strings, and the tensors are:
 *   mlp:          W1 [hidden, 2p], W2 [p, hidden]
 *                 f(x) = W2 (W1 x / sqrt(2p))^2 / hidden, no biases (Gromov 2023)
 *   transformer:  see transformer.h
 * Factored Jacobian: for a parameter W of shape [out, in] used as a linear map at T positions,
 *   d f_c(x_n) / d W[i, j] = sum_t G[n, t, c, i] * X[n, t, j]
 * so a Gram over W is sum_{t,s} (X_t X_s^T) . (G_t G_s^T) (Hadamard) and never needs the
 * N*C x out*in Jacobian itself. Where G separates as G[n,t,c,i] = A[c,i] B[n,t,i] (the MLP: the
 * class only enters through the next layer's weights) G is stored as B [N, T, 1, out] with A
 * [C, out]: the class-traced Gram then costs N^2 out instead of N^2 C out. */
#ifndef ENTK_MODEL_H
#define ENTK_MODEL_H
#include <stdint.h>
#include "core/hash.h"
#include "core/tensor.h"
#include "core/torchrng.h"
#include "modadd/data.h"

#define MODEL_MAX_PARAMS 16

typedef enum { MODEL_MLP, MODEL_TRANSFORMER } model_kind;

typedef struct {
    model_kind kind;
    dtype dt;
    int p;                               /* modulus: the classes of the loss and of accuracy */
    int n_out;                           /* outputs the Jacobian differentiates (C of the eNTK):
                                          * p for the MLP, all p + 1 logits for the Transformer */
    int nparams;
    const char *names[MODEL_MAX_PARAMS];
    tensor w[MODEL_MAX_PARAMS];          /* parameters, in dt */
    /* mlp */
    int in_dim, hidden;
    /* transformer */
    int vocab, d_model, n_heads, d_head, d_mlp, n_ctx;
    entk_key key;                        /* content hash of the checkpoint file (or of the weights) */
} model;

typedef struct {
    int64_t N, T, C, out, in;
    int64_t summed; /* > 0: the Jacobian of the sum of that many logits (C = 1), else 0 */
    tensor X;     /* [N, T, in] */
    tensor G;     /* [N, T, C, out], or B [N, T, 1, out] when A is set */
    tensor A;     /* separable form: [C, out]; A.data == NULL for a dense G */
} factored_jac;

/* config: "hidden" for mlp; "d_model,n_heads,d_mlp" for transformer (see --help of entk-train).
 * Weights come from entk's generator seeded with seed, or, when torch is not NULL, from that torch
 * generator exactly as the reference PyTorch modules draw them (torchrng.h). */
void model_create(model *m, model_kind kind, int p, const int *config, uint64_t seed, mt19937 *torch, dtype dt);
void model_load(model *m, const char *path, dtype dt);
void model_save(const model *m, const char *path, const char *const *extra_meta, int nextra);
void model_free(model *m);
int model_param_index(const model *m, const char *name);   /* -1 if none */
/* Number of input columns a model expects (2p one-hot floats, or 3 tokens). */
const char *model_encoding(const model *m);

/* logits [nb, C] (in m->dt) for rows idx[0..nb) of x (idx NULL = rows 0..nb). */
void model_forward(const model *m, const tensor *x, const int64_t *idx, int64_t nb, void *logits);
/* The hidden state the readout reads, [nb, model_hidden_dim] in m->dt, for rows idx of x: the MLP's
 * (W1 x / sqrt(2p))^2 (the input of W2), the Transformer's resid_post at the last position (the
 * input of W_U). */
void model_hidden(const model *m, const tensor *x, const int64_t *idx, int64_t nb, void *hidden);
int64_t model_hidden_dim(const model *m);
/* Dies (exit 3) naming the data source if the data set d is not one model m reads: another p, or
 * the other input encoding (one-hot for the MLP, tokens for the Transformer). */
void model_check_data(const model *m, const modadd *d, const char *data_src);
/* Loss over rows idx of x with integer labels, and its gradient into grads[k] (shapes of m->w).
 * mlp: MSE against one-hot labels, mean over nb*C; transformer: cross-entropy over the logits. */
double model_loss_grad(const model *m, const tensor *x, const int32_t *labels, const int64_t *idx, int64_t nb,
                       tensor *grads);
/* The factored Jacobian of all logits w.r.t. parameter k over rows [0, N) of x; with sum_outputs,
 * of their sum instead (C = 1, one backward pass instead of C): its Gram over C^2 is the
 * class-mean eNTK. */
void model_factored_jacobian(const model *m, const tensor *x, int k, int sum_outputs, factored_jac *fj);
void factored_free(factored_jac *fj);
/* out, in and T of parameter k as a linear map (the shape of its factored Jacobian), cheaply. */
int model_separable(const model *m, int k);   /* does parameter k's factored G separate? */
void model_linear_shape(const model *m, int k, int64_t *out, int64_t *in, int64_t *T);
/* 1 if path is an entk-train checkpoint (a safetensors file with entk_model in its __metadata__);
 * 0 if it is a directory or no safetensors file (then perhaps a language model: lm/load.h). A
 * safetensors file without entk_model dies naming it (a Gemma 3 model is given as its directory). */
int model_is_checkpoint(const char *path);
#endif
