#include "lm/linearize.h"
#include "core/blasenv.h"
#include "core/cache.h"
#include "core/codeid.h"
#include "core/err.h"
#include "lm/block.h"
#include "lm/forward.h"
#include <cblas.h>
#include <stdio.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Runs windows [0, nw) of ids through blocks 0 .. top-1 in dt, keeping x of block l into out[l]
 * (rows of these windows) for every l <= top whose out[l] is not NULL. Scratch: one activation set
 * and the residual, per call. */
static void prefix_block(const lm_model *m, dtype dt, const int32_t *ids, int nw, int T, int top, void *const *rope,
                         void **out) {
    size_t dim = (size_t)m->dim, R = (size_t)nw * T, es = dtype_size(dt);
    size_t na = lm_acts_elems(m, (size_t)nw, (size_t)T, 0, 0);
    char *mem = (char *)lm_alloc((na + 2 * R * dim + 32) * (es / sizeof(float)));
    char *x = mem + na * es, *y = x + R * dim * es;
    for (size_t r = 0; r < R; r++)
        for (size_t j = 0; j < dim; j++) {
            float v = m->embed[(size_t)ids[r] * dim + j] * m->embed_scale; /* as the f32 forward scales it */
            if (dt == DT_F32) ((float *)x)[r * dim + j] = v;
            else ((double *)x)[r * dim + j] = m->embed64[(size_t)ids[r] * dim + j] * m->embed_scale64;
        }
    for (int l = 0; l <= top; l++) {
        if (out[l]) memcpy(out[l], x, R * dim * es);
        if (l == top) break;
        if (dt == DT_F32) {
            float *p = (float *)mem;
            lm_layer_acts A;
            lm_acts_carve_f32(&A, &p, m, (size_t)nw, (size_t)T, 0, 0);
            A.x = (float *)x;
            A.out = (float *)y;
            lm_block_forward_f32(m, l, &A, rope[l], T, 0, nw, 0);
        } else {
            double *p = (double *)mem;
            lm_layer_acts64 A;
            lm_acts_carve_f64(&A, &p, m, (size_t)nw, (size_t)T, 0, 0);
            A.x = (double *)x;
            A.out = (double *)y;
            lm_block_forward_f64(m, l, &A, rope[l], T, 0, nw, 0);
        }
        char *t = x;
        x = y;
        y = t;
    }
    free(mem);
}

/* a hit holds exactly the block's residual */
static int prefix_check(const void *payload, size_t n, const void *arg, char *why, size_t nwhy) {
    (void)payload;
    if (n == *(const size_t *)arg) return 1;
    snprintf(why, nwhy, "%zu bytes, expected %zu", n, *(const size_t *)arg);
    return 0;
}

static entk_key prefix_key(const lm_model *m, dtype dt, int layer, const int32_t *ids, int nw, int T) {
    keybuilder kb;
    keybuilder_init(&kb, "entk-lm-prefix");
    keybuilder_code(&kb, 0);
    keybuilder_str(&kb, m->key.hex);
    keybuilder_str(&kb, dtype_name(dt));
    keybuilder_i64(&kb, layer);
    keybuilder_i64(&kb, T);
    keybuilder_bytes(&kb, ids, (size_t)nw * T * sizeof(int32_t));
    return keybuilder_final(&kb);
}

void lm_prefix(lm_model *m, dtype dt, const int32_t *ids, int N, int T, const int *layers, int nl, void **x,
               int cache_windows) {
    if (T > m->max_pos) entk_die(ENTK_EXIT_INPUT, "windows of %d tokens exceed the model's %d positions", T, m->max_pos);
    lm_check_ids(m, ids, (size_t)N * T, T);
    int top = 0;
    for (int i = 0; i < nl; i++) {
        if (layers[i] < 0 || layers[i] >= m->n_layers)
            entk_die(ENTK_EXIT_USAGE, "layer %d is out of range: the model has blocks 0..%d", layers[i], m->n_layers - 1);
        if (layers[i] > top) top = layers[i];
    }
    if (dt == DT_F64) lm_widen(m);
    size_t dim = (size_t)m->dim, es = dtype_size(dt), hd = (size_t)m->head_dim;
    void **rope = xcalloc((size_t)m->n_layers, sizeof(void *));
    for (int l = 0; l < top; l++) {
        rope[l] = xmalloc((size_t)T * hd * es);
        if (dt == DT_F32) lm_rope_table_f32(m, l, T, rope[l]);
        else lm_rope_table_f64(m, l, T, rope[l]);
    }
    for (int i = 0; i < nl; i++) x[i] = xmalloc((size_t)N * T * dim * es);
    int cw = cache_windows > 0 ? cache_windows : 64, nblocks = (N + cw - 1) / cw;
    int blas = blas_one_thread();
    long done = 0;
    double t0 = entk_now();
    /* Blocks of windows are independent: the threads take them in turn, each on one BLAS thread.
     * Every layer the forward passes through is cached, not only those asked for: a later run for
     * a shallower layer (make -j over the layers) then reads it instead of running the blocks. */
#pragma omp parallel for schedule(dynamic, 1)
    for (int b = 0; b < nblocks; b++) {
        int w0 = b * cw, nw = N - w0 < cw ? N - w0 : cw;
        size_t off = (size_t)w0 * T * dim * es, bytes = (size_t)nw * T * dim * es;
        const int32_t *bid = ids + (size_t)w0 * T;
        void **out = xcalloc((size_t)top + 1, sizeof(void *));
        int missing = 0;
        for (int i = 0; i < nl; i++) {
            void *dst = (char *)x[i] + off;
            entk_key k = prefix_key(m, dt, layers[i], bid, nw, T);
            void *data;
            size_t n;
            int hit;
#pragma omp critical(entk_cache)
            hit = cache_get(&k, prefix_check, &bytes, &data, &n);
            if (hit) memcpy(dst, data, bytes);
            else missing = 1;
            if (hit) free(data);
        }
        if (missing) {
            for (int l = 0; l <= top; l++) out[l] = xmalloc(bytes);
            prefix_block(m, dt, bid, nw, T, top, rope, out);
            for (int l = 0; l <= top; l++) {
                entk_key k = prefix_key(m, dt, l, bid, nw, T);
#pragma omp critical(entk_cache)
                cache_put(&k, &(cache_desc){"lm residual entering a block, 64 windows", "model, dtype, block, the windows' ids, code"},
                          out[l], bytes);
                for (int i = 0; i < nl; i++)
                    if (layers[i] == l) memcpy((char *)x[i] + off, out[l], bytes);
                free(out[l]);
            }
        }
        free(out);
#pragma omp critical(entk_progress)
        entk_progress("windows through the blocks before the layer", done += nw, N);
    }
    blas_threads_restore(blas);
    entk_progress_end();
    entk_log("prefix: %d windows of %d tokens through blocks 0..%d in %.3f s", N, T, top - 1, entk_now() - t0);
    for (int l = 0; l < top; l++) free(rope[l]);
    free(rope);
}

void lm_explicit_jacobian(lm_entk *op, double *J) {
    size_t es = dtype_size(op->dt), D = (size_t)op->D, P = (size_t)op->P;
    void *z = xcalloc((size_t)op->chunk * D, es), *g = xmalloc(P * es);
    long done = 0;
    for (int c = 0; c < op->nchunks; c++) {
        int nwin = op->N - c * op->chunk < op->chunk ? op->N - c * op->chunk : op->chunk;
        for (int w = 0; w < nwin; w++)
            for (size_t a = 0; a < D; a++) {
                /* z: S^1/2 e_a at window w of the chunk, zero elsewhere */
                memset(z, 0, (size_t)nwin * D * es);
                for (size_t b = 0; b < D; b++) {
                    double v = op->Shalf[b * D + a];
                    if (op->dt == DT_F32) ((float *)z)[w * D + b] = (float)v;
                    else ((double *)z)[w * D + b] = v;
                }
                lm_entk_chunk(op, c, NULL, NULL, z, g);
                double *row = J + (((size_t)c * op->chunk + w) * D + a) * P;
                for (size_t i = 0; i < P; i++) row[i] = op->dt == DT_F32 ? ((float *)g)[i] : ((double *)g)[i];
                entk_progress("Jacobian rows", ++done, (long)op->N * op->D);
            }
    }
    entk_progress_end();
    free(z);
    free(g);
}

void lm_jvp_all(lm_entk *op, const double *u, double *Ju) {
    size_t es = dtype_size(op->dt), D = (size_t)op->D;
    void *uR = xmalloc((size_t)op->P * es), *j = xmalloc((size_t)op->chunk * D * es);
    for (int64_t i = 0; i < op->P; i++) {
        if (op->dt == DT_F32) ((float *)uR)[i] = (float)u[i];
        else ((double *)uR)[i] = u[i];
    }
    for (int c = 0; c < op->nchunks; c++) {
        int nwin = op->N - c * op->chunk < op->chunk ? op->N - c * op->chunk : op->chunk;
        lm_entk_chunk(op, c, uR, j, NULL, NULL);
        for (size_t i = 0; i < (size_t)nwin * D; i++)
            Ju[(size_t)c * op->chunk * D + i] = op->dt == DT_F32 ? ((float *)j)[i] : ((double *)j)[i];
    }
    free(uR);
    free(j);
}

void lm_vjp_all(lm_entk *op, const double *z, double *grad) {
    size_t es = dtype_size(op->dt), D = (size_t)op->D, P = (size_t)op->P;
    void *zR = xmalloc((size_t)op->chunk * D * es), *g = xmalloc(P * es);
    memset(grad, 0, P * sizeof(double));
    for (int c = 0; c < op->nchunks; c++) {
        int nwin = op->N - c * op->chunk < op->chunk ? op->N - c * op->chunk : op->chunk;
        for (size_t i = 0; i < (size_t)nwin * D; i++) {
            double v = z[(size_t)c * op->chunk * D + i];
            if (op->dt == DT_F32) ((float *)zR)[i] = (float)v;
            else ((double *)zR)[i] = v;
        }
        lm_entk_chunk(op, c, NULL, NULL, zR, g);
        for (size_t i = 0; i < P; i++) grad[i] += op->dt == DT_F32 ? ((float *)g)[i] : ((double *)g)[i];
    }
    free(zR);
    free(g);
}

int32_t *lm_read_windows(frame_reader *r, int *N, int *T) {
    int32_t *ids = NULL, *w;
    int64_t n = 0, cap = 0, len = -1, nw, t;
    frame f;
    do {
        while (frame_read(r, &f)) {
            if (!lm_ids_frame(r, &f, &nw, &t, &w)) continue;
            if (nw > 0 && len >= 0 && t != len)
                frame_fail(r, &f, "windows of %lld tokens after windows of %lld: every window must have one length", (long long)t,
                           (long long)len);
            if (nw > 0) len = t;
            if ((n + nw) * t > cap) {
                cap = 2 * (n + nw) * t;
                ids = xrealloc(ids, (size_t)cap * sizeof(int32_t));
            }
            memcpy(ids + n * t, w, (size_t)(nw * t) * sizeof(int32_t));
            n += nw;
            free(w);
        }
    } while (frame_reader_next_stream(r));
    if (n == 0) entk_die(ENTK_EXIT_INPUT, "%s: no windows (tensor frames 'windows' or 'ids')", r->src);
    if (n > INT32_MAX / len) entk_die(ENTK_EXIT_INPUT, "%s: too many windows", r->src);
    *N = (int)n;
    *T = (int)len;
    return ids;
}

void lm_linear_write(frame_writer *w, const lm_linear *L, int block_windows) {
    meta mt = {0};
    meta_str(&mt, "model_key", L->model_key.hex);
    meta_str(&mt, "windows_key", L->windows_key.hex);
    meta_i64(&mt, "layer", L->layer);
    meta_str(&mt, "param", lm_param_name(L->param));
    meta_str(&mt, "dtype", dtype_name(L->dt));
    meta_i64(&mt, "N", L->N);
    meta_i64(&mt, "T", L->T);
    meta_i64(&mt, "D", L->D);
    meta_i64(&mt, "out", L->out);
    meta_i64(&mt, "in", L->in);
    frame_write_record(w, "lm_linear", &mt);
    size_t es = dtype_size(L->dt), row = (size_t)L->T * L->D * es;
    for (int w0 = 0; w0 < L->N; w0 += block_windows) {
        int n = L->N - w0 < block_windows ? L->N - w0 : block_windows;
        tensor t = {.dt = L->dt, .ndim = 3, .shape = {n, L->T, L->D}, .data = (char *)L->x + (size_t)w0 * row};
        meta mx = {0};
        meta_i64(&mx, "window0", w0);
        frame_write_tensor(w, "x", &t, &mx);
    }
}

void lm_linear_read(frame_reader *r, lm_linear *L) {
    frame f;
    memset(L, 0, sizeof *L);
    if (!frame_read(r, &f) || strcmp(f.kind, "record") != 0 || strcmp(f.name, "lm_linear") != 0)
        frame_fail(r, &f, "not a language-model linearisation (entk-jacobian of a language model): no 'lm_linear' record");
    char mk[40], wk[40], ps[32], ds[8];
    int64_t layer, N, T, D, out, in;
    if (!meta_get_str(&f.meta, "model_key", mk, sizeof mk) || !key_valid(mk) || !meta_get_str(&f.meta, "windows_key", wk, sizeof wk) ||
        !meta_get_i64(&f.meta, "layer", &layer) || !meta_get_str(&f.meta, "param", ps, sizeof ps) ||
        !meta_get_str(&f.meta, "dtype", ds, sizeof ds) || !meta_get_i64(&f.meta, "N", &N) || !meta_get_i64(&f.meta, "T", &T) ||
        !meta_get_i64(&f.meta, "D", &D) || !meta_get_i64(&f.meta, "out", &out) || !meta_get_i64(&f.meta, "in", &in))
        frame_fail(r, &f, "lm_linear record lacks model_key, windows_key, layer, param, dtype, N, T, D, out or in");
    if (!lm_param_parse(ps, &L->param)) frame_fail(r, &f, "unknown weight '%s'", ps);
    if (!dtype_parse(ds, &L->dt) || (L->dt != DT_F32 && L->dt != DT_F64)) frame_fail(r, &f, "bad dtype '%s'", ds);
    if (N < 1 || T < 1 || D < 1 || layer < 0 || N > INT32_MAX / T || out < 1 || in < 1)
        frame_fail(r, &f, "bad sizes N=%lld T=%lld D=%lld layer=%lld", (long long)N, (long long)T, (long long)D, (long long)layer);
    memcpy(L->model_key.hex, mk, 33);
    memcpy(L->windows_key.hex, wk, sizeof L->windows_key.hex);
    L->windows_key.hex[32] = 0;
    L->layer = (int)layer;
    L->N = (int)N;
    L->T = (int)T;
    L->D = (int)D;
    L->out = out;
    L->in = in;
    size_t es = dtype_size(L->dt), row = (size_t)T * D * es;
    L->x = xmalloc((size_t)N * row);
    int64_t have = 0;
    while (frame_read(r, &f)) {
        if (strcmp(f.kind, "tensor") != 0 || strcmp(f.name, "x") != 0) frame_fail(r, &f, "unexpected frame in a linearisation");
        int64_t w0;
        if (!meta_get_i64(&f.meta, "window0", &w0) || w0 != have) frame_fail(r, &f, "x block out of order (window0 should be %lld)", (long long)have);
        frame_expect_shape(r, &f, 3, (int64_t[]){-1, T, D});
        if (f.t.dt != L->dt) frame_fail(r, &f, "x is %s, the record says %s", dtype_name(f.t.dt), ds);
        if (f.t.shape[0] > N - have) frame_fail(r, &f, "more windows than N = %lld", (long long)N);
        memcpy((char *)L->x + (size_t)have * row, f.t.data, (size_t)f.t.shape[0] * row);
        have += f.t.shape[0];
    }
    if (have != N) frame_fail(r, NULL, "the linearisation holds %lld of its %lld windows", (long long)have, (long long)N);
}
