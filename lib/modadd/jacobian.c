#include "modadd/jacobian.h"
#include "core/cache.h"
#include "core/err.h"
#include "core/linalg.h"
#include <stdlib.h>
#include <string.h>

const char *jac_form_name(jac_form f) { return f == JAC_FACTORED ? "factored" : "explicit"; }

int64_t jacobian_block_rows(const model *m, int64_t N, int k, const jac_options *o, int64_t out, int64_t in, int64_t T) {
    if (o->block_rows > 0) return o->block_rows < out ? o->block_rows : out;
    size_t es = dtype_size(m->dt), cap = o->max_block_bytes ? o->max_block_bytes : (size_t)256 << 20;
    /* bytes per output row of W in one block */
    int64_t C = o->sum_outputs ? 1 : m->n_out;
    size_t per_row = o->form == JAC_FACTORED ? (size_t)(N * T * C) * es : (size_t)(N * C * in) * es;
    int64_t rows = per_row ? (int64_t)(cap / per_row) : out;
    if (rows < 1) rows = 1;
    return rows < out ? rows : out;
}

tensor jacobian_expand(const factored_jac *fj, int64_t row0, int64_t rows) {
    dtype dt = fj->G.dt;
    size_t es = dtype_size(dt);
    int64_t N = fj->N, T = fj->T, C = fj->C, out = fj->out, in = fj->in;
    int sep = fj->A.data != NULL;
    tensor J = tensor_3d(dt, N, C, rows * in);
    char *gs = xmalloc((size_t)(C * rows) * es);
    /* J[n, c, i*in + j] = sum_t G[n,t,c,row0+i] X[n,t,j]: per (n, t) the (C*rows) x in outer
     * product of the G slice with x, which is contiguous in J's layout: one rank-1 gemm */
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < T; t++) {
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < rows; i++) {
                    double g = sep ? la_get(dt, fj->A.data, c * out + row0 + i) * la_get(dt, fj->G.data, (n * T + t) * out + row0 + i)
                                   : la_get(dt, fj->G.data, ((n * T + t) * C + c) * out + row0 + i);
                    la_set(dt, gs, c * rows + i, g);
                }
            const char *x = (const char *)fj->X.data + (size_t)((n * T + t) * in) * es;
            char *j = (char *)J.data + (size_t)(n * C * rows * in) * es;
            la_gemm(dt, 0, 0, C * rows, in, 1, 1.0, gs, 1, x, in, t ? 1.0 : 0.0, j, in);
        }
    free(gs);
    return J;
}

static entk_key block_key(const model *m, const entk_key *data_key, int k, const jac_options *o, int64_t row0, int64_t rows) {
    keybuilder kb;
    keybuilder_init(&kb, "jacobian-block-v2"); /* v2: separable blocks (X, A, G) */
    keybuilder_str(&kb, ENTK_VERSION);
    keybuilder_str(&kb, m->key.hex);
    keybuilder_str(&kb, data_key->hex);
    keybuilder_str(&kb, m->names[k]);
    keybuilder_str(&kb, jac_form_name(o->form));
    keybuilder_str(&kb, dtype_name(m->dt));
    keybuilder_i64(&kb, row0);
    keybuilder_i64(&kb, rows);
    if (o->sum_outputs) keybuilder_str(&kb, "outputs=sum"); /* only then: other keys stay as they were */
    return keybuilder_final(&kb);
}

/* Copies G[..., row0:row0+rows] (last axis of length out) into a new tensor. */
static tensor slice_rows(const tensor *G, int64_t out, int64_t row0, int64_t rows) {
    int64_t lead = tensor_numel(G) / out;
    int64_t shape[TENSOR_MAXDIM];
    memcpy(shape, G->shape, sizeof shape);
    shape[G->ndim - 1] = rows;
    tensor s = tensor_new(G->dt, G->ndim, shape);
    size_t es = dtype_size(G->dt);
    for (int64_t r = 0; r < lead; r++)
        memcpy((char *)s.data + (size_t)(r * rows) * es, (const char *)G->data + (size_t)(r * out + row0) * es, (size_t)rows * es);
    return s;
}

void jacobian_write_param(frame_writer *w, const model *m, const tensor *x, const entk_key *data_key, int k,
                          const jac_options *o) {
    int64_t N = x->shape[0], out, in, T;
    model_linear_shape(m, k, &out, &in, &T);
    int64_t rows_per = jacobian_block_rows(m, N, k, o, out, in, T);
    int64_t nblocks = (out + rows_per - 1) / rows_per;
    factored_jac fj;
    int have = 0;  /* the factored Jacobian is computed on the first cache miss only */
    /* frames per block: J; or X, G; or X, A, G (separable) -- a cached block records which */
    long nframes = o->form == JAC_EXPLICIT ? 1 : model_separable(m, k) ? 3 : 2;
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t row0 = b * rows_per, rows = row0 + rows_per > out ? out - row0 : rows_per;
        entk_key key = block_key(m, data_key, k, o, row0, rows);
        void *bytes;
        size_t nbytes;
        if (cache_get(&key, &bytes, &nbytes)) {
            frame_write_packed(w, bytes, nbytes, frame_count_packed(bytes, nbytes));
            free(bytes);
            continue;
        }
        if (!have) {
            model_factored_jacobian(m, x, k, o->sum_outputs, &fj);
            have = 1;
            if (fj.out != out || fj.in != in || fj.T != T || (fj.A.data != NULL) != model_separable(m, k))
                entk_die(ENTK_EXIT_FAIL, "internal: %s Jacobian shape disagrees with its plan", m->names[k]);
        }
        meta mt = {0};
        meta_str(&mt, "param", m->names[k]);
        meta_str(&mt, "form", jac_form_name(o->form));
        meta_i64(&mt, "block", b);
        meta_i64(&mt, "row0", row0);
        meta_i64(&mt, "rows", rows);
        meta_i64(&mt, "out", out);
        meta_i64(&mt, "in", in);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (o->form == JAC_FACTORED) {
            tensor g = rows == out ? fj.G : slice_rows(&fj.G, out, row0, rows);
            frame_pack_tensor(&sb, "X", &fj.X, &mt);
            if (fj.A.data) {
                tensor a = rows == out ? fj.A : slice_rows(&fj.A, out, row0, rows);
                frame_pack_tensor(&sb, "A", &a, &mt);
                if (rows != out) tensor_free(&a);
            }
            frame_pack_tensor(&sb, "G", &g, &mt);
            if (rows != out) tensor_free(&g);
        } else {
            tensor J = jacobian_expand(&fj, row0, rows);
            frame_pack_tensor(&sb, "J", &J, &mt);
            tensor_free(&J);
        }
        cache_put(&key, sb.data, sb.size);
        frame_write_packed(w, sb.data, sb.size, nframes);
        msgpack_sbuffer_destroy(&sb);
        entk_progress(m->names[k], (long)(b + 1), (long)nblocks);
    }
    if (have) factored_free(&fj);
}
