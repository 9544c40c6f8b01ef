#include "modadd/jacobian.h"
#include "core/cache.h"
#include "core/codeid.h"
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

/* A block's key names, by content, everything its bytes depend on: the weights (the checkpoint
 * file's hash), the inputs (the content digest of the data stream, frame.h), the parameter, the
 * row range, the form, the dtype, the outputs, and the code that computes it (core/codeid.h). */
static entk_key block_key(const model *m, const entk_key *data_key, int k, const jac_options *o, int64_t row0, int64_t rows) {
    keybuilder kb;
    keybuilder_init(&kb, "jacobian-block-v3"); /* v3: keyed by content and code */
    keybuilder_code(&kb, 1);
    keybuilder_str(&kb, m->key.hex);
    keybuilder_str(&kb, data_key->hex);
    keybuilder_str(&kb, m->names[k]);
    keybuilder_str(&kb, jac_form_name(o->form));
    keybuilder_str(&kb, dtype_name(m->dt));
    keybuilder_i64(&kb, row0);
    keybuilder_i64(&kb, rows);
    keybuilder_str(&kb, o->sum_outputs ? "outputs=sum" : "outputs=all");
    return keybuilder_final(&kb);
}

/* What a cached block must be for this request: its frames (J; X, G; or X, A, G) with their names,
 * the model's dtype, the shapes the plan gives and the block's meta. */
typedef struct {
    const model *m;
    int k, sep;
    const jac_options *o;
    int64_t N, C, T, in, out, block, row0, rows;
} block_spec;

static int block_ok(const void *bytes, size_t n, const void *arg, char *why, size_t nwhy) {
    const block_spec *b = arg;
    const char *sk[] = {"param", "form", NULL}, *sv[] = {b->m->names[b->k], jac_form_name(b->o->form)};
    const char *ik[] = {"block", "row0", "rows", "out", "in", NULL};
    int64_t iv[] = {b->block, b->row0, b->rows, b->out, b->in};
    const char *names[3] = {"J"};
    int64_t dims[3][4] = {{b->N, b->C, b->rows * b->in}};
    int ndim[3] = {3}, nf = 1;
    if (b->o->form == JAC_FACTORED) {
        names[0] = "X", ndim[0] = 3, memcpy(dims[0], (int64_t[]){b->N, b->T, b->in}, 3 * sizeof(int64_t));
        if (b->sep) names[1] = "A", ndim[1] = 2, memcpy(dims[1], (int64_t[]){b->C, b->rows}, 2 * sizeof(int64_t));
        nf = b->sep ? 3 : 2;
        names[nf - 1] = "G", ndim[nf - 1] = 4;
        memcpy(dims[nf - 1], (int64_t[]){b->N, b->T, b->sep ? 1 : b->C, b->rows}, 4 * sizeof(int64_t));
    }
    size_t off = 0;
    for (int i = 0; i < nf; i++) {
        packed_frame v;
        int ok = frame_packed_next(bytes, n, &off, &v, why, nwhy) &&
                 packed_frame_is(&v, names[i], b->m->dt, ndim[i], dims[i], sk, sv, ik, iv, why, nwhy);
        packed_frame_free(&v);
        if (!ok) return 0;
    }
    if (off != n) { snprintf(why, nwhy, "more frames than a block has"); return 0; }
    return 1;
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
        block_spec spec = {m, k, model_separable(m, k), o, N, o->sum_outputs ? 1 : m->n_out, T, in, out, b, row0, rows};
        if (cache_get(&key, block_ok, &spec, &bytes, &nbytes)) {
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
        char what[256], from[256];
        snprintf(what, sizeof what, "jacobian block %s rows %lld..%lld of %lld, %s, %s, outputs %s", m->names[k], (long long)row0,
                 (long long)(row0 + rows - 1), (long long)out, jac_form_name(o->form), dtype_name(m->dt), o->sum_outputs ? "sum" : "all");
        snprintf(from, sizeof from, "model %s, data (content) %s, code %.8s/%.8s", m->key.hex, data_key->hex, codeid_lib(), codeid_tool());
        cache_put(&key, &(cache_desc){what, from}, sb.data, sb.size);
        frame_write_packed(w, sb.data, sb.size, nframes);
        msgpack_sbuffer_destroy(&sb);
        entk_progress(m->names[k], (long)(b + 1), (long)nblocks);
    }
    if (have) factored_free(&fj);
}
