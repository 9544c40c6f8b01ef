/* jacobian: Jacobian blocks of a model's logits w.r.t. chosen parameter tensors, as frames.
 *
 * A Jacobian stream is: header, one "jacobian" record {N, C, form, params, dtype, summed}, then per
 * parameter and block of its output rows [row0, row0+rows) (C = 1 and summed = the number of the
 * model's outputs when the stream holds the Jacobian of their sum, else summed = 0):
 *   factored: tensor "X" [N, T, in] and tensor "G" [N, T, C, rows]   (see model.h)
 *             or, separable, "X", "A" [C, rows] and "G" [N, T, 1, rows]
 *   explicit: tensor "J" [N, C, rows*in] = d f_c(x_n) / d W[row0 + i, j] at column i*in + j
 * every block frame carrying meta {param, form, block, row0, rows, out, in}. Blocks bound the
 * memory of the Gram that consumes them (K += J_b J_b^T); each block is one cache entry keyed by
 * the weights, the inputs, the parameter, the row range, the form, the dtype and the tool version,
 * so an interrupted run resumes where it stopped. */
#ifndef ENTK_JACOBIAN_H
#define ENTK_JACOBIAN_H
#include "core/frame.h"
#include "modadd/model.h"

typedef enum { JAC_FACTORED, JAC_EXPLICIT } jac_form;

typedef struct {
    jac_form form;
    int64_t block_rows;     /* output rows of W per block; 0 = automatic (bounded block bytes) */
    size_t max_block_bytes; /* bound used when block_rows is 0 */
    int sum_outputs;        /* the Jacobian of the sum of the logits (C = 1; model.h) */
} jac_options;

/* Writes the blocks of parameter k of m on inputs x (key data_key) to w, from the cache where
 * possible. */
void jacobian_write_param(frame_writer *w, const model *m, const tensor *x, const entk_key *data_key, int k,
                          const jac_options *o);
/* Rows per block for parameter k under o. */
int64_t jacobian_block_rows(const model *m, int64_t N, int k, const jac_options *o, int64_t out, int64_t in, int64_t T);
/* Explicit J [N, C, rows*in] from a factored Jacobian, rows [row0, row0+rows). */
tensor jacobian_expand(const factored_jac *fj, int64_t row0, int64_t rows);
const char *jac_form_name(jac_form f);
#endif
