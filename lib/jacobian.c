#include "jacobian.h"
#include "cache.h"
#include "err.h"
#include "linalg.h"
#include <stdlib.h>
#include <string.h>

const char *jac_form_name(jac_form f) { return f == JAC_FACTORED ? "factored" : "explicit"; }

int64_t jacobian_block_rows(const model *m, int64_t N, int k, const jac_options *o, int64_t out, int64_t in, int64_t T) {
    if (o->block_rows > 0) return o->block_rows < out ? o->block_rows : out;
    size_t es = dtype_size(m->dt), cap = o->max_block_bytes ? o->max_block_bytes : (size_t)256 << 20;
    /* bytes per output row of W in one block */
    size_t per_row = o->form == JAC_FACTORED ? (size_t)(N * T * m->p) * es : (size_t)(N * m->p * in) * es;
    int64_t rows = per_row ? (int64_t)(cap / per_row) : out;
    if (rows < 1) rows = 1;
    return rows < out ? rows : out;
}

tensor jacobian_expand(const factored_jac *fj, int64_t row0, int64_t rows) {
    dtype dt = fj->G.dt;
    int64_t N = fj->N, T = fj->T, C = fj->C, out = fj->out, in = fj->in;
    tensor J = tensor_3d(dt, N, C, rows * in);
    /* J[n, c, i*in + j] = sum_t G[n,t,c,row0+i] X[n,t,j]: per (n, t) a rank-1 update of the
     * C x (rows*in) slab, done as a small gemm with the G slice (C x rows) against X (1 x in) */
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < T; t++) {
            const char *g = (const char *)fj->G.data + (size_t)(((n * T + t) * C) * out + row0) * dtype_size(dt);
            const char *x = (const char *)fj->X.data + (size_t)((n * T + t) * in) * dtype_size(dt);
            char *j = (char *)J.data + (size_t)(n * C * rows * in) * dtype_size(dt);
            /* (C*rows) x in outer product: G_slice[c, i] * x[j] -> J[c, i, j] */
            for (int64_t c = 0; c < C; c++)
                la_gemm(dt, 0, 0, rows, in, 1, 1.0, g + (size_t)(c * out) * dtype_size(dt), 1, x, in, t ? 1.0 : 0.0,
                        j + (size_t)(c * rows * in) * dtype_size(dt), in);
        }
    return J;
}

static entk_key block_key(const model *m, const entk_key *data_key, int k, const jac_options *o, int64_t row0, int64_t rows) {
    keybuilder kb;
    keybuilder_init(&kb, "jacobian-block");
    keybuilder_str(&kb, ENTK_VERSION);
    keybuilder_str(&kb, m->key.hex);
    keybuilder_str(&kb, data_key->hex);
    keybuilder_str(&kb, m->names[k]);
    keybuilder_str(&kb, jac_form_name(o->form));
    keybuilder_str(&kb, dtype_name(m->dt));
    keybuilder_i64(&kb, row0);
    keybuilder_i64(&kb, rows);
    return keybuilder_final(&kb);
}

/* Copies G[..., row0:row0+rows] of every (n, t, c) into a new [N, T, C, rows] tensor. */
static tensor slice_rows(const tensor *G, int64_t out, int64_t row0, int64_t rows) {
    int64_t lead = G->shape[0] * G->shape[1] * G->shape[2];
    tensor s = tensor_new(G->dt, 4, (int64_t[]){G->shape[0], G->shape[1], G->shape[2], rows});
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
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t row0 = b * rows_per, rows = row0 + rows_per > out ? out - row0 : rows_per;
        entk_key key = block_key(m, data_key, k, o, row0, rows);
        void *bytes;
        size_t nbytes;
        if (cache_get(&key, &bytes, &nbytes)) {
            frame_write_packed(w, bytes, nbytes, o->form == JAC_FACTORED ? 2 : 1);
            free(bytes);
            continue;
        }
        if (!have) {
            model_factored_jacobian(m, x, k, &fj);
            have = 1;
            if (fj.out != out || fj.in != in || fj.T != T)
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
            frame_pack_tensor(&sb, "G", &g, &mt);
            if (rows != out) tensor_free(&g);
        } else {
            tensor J = jacobian_expand(&fj, row0, rows);
            frame_pack_tensor(&sb, "J", &J, &mt);
            tensor_free(&J);
        }
        cache_put(&key, sb.data, sb.size);
        frame_write_packed(w, sb.data, sb.size, o->form == JAC_FACTORED ? 2 : 1);
        msgpack_sbuffer_destroy(&sb);
        entk_progress(m->names[k], (long)(b + 1), (long)nblocks);
    }
    if (have) factored_free(&fj);
}
