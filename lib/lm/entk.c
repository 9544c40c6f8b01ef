#include "lm/entk.h"
#include "core/cache.h"
#include "core/claim.h"
#include "core/codeid.h"
#include "core/blasenv.h"
#include "core/err.h"
#include "lm/block.h"
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ weights */

static const char *const param_names[LMP_COUNT] = {"down", "gate", "up", "o", "q", "k", "v"};

int lm_param_parse(const char *s, lm_param *p) {
    for (int i = 0; i < LMP_COUNT; i++) {
        size_t n = strlen(param_names[i]);
        /* "down" or the Hugging Face module name "down_proj" */
        if (strcmp(s, param_names[i]) == 0 || (strncmp(s, param_names[i], n) == 0 && strcmp(s + n, "_proj") == 0)) {
            *p = (lm_param)i;
            return 1;
        }
    }
    return 0;
}

const char *lm_param_name(lm_param p) { return p >= 0 && p < LMP_COUNT ? param_names[p] : "?"; }

void lm_param_shape(const lm_model *m, lm_param p, int64_t *out, int64_t *in) {
    int64_t D = m->dim, F = m->ffn, nq = (int64_t)m->n_heads * m->head_dim, nkv = (int64_t)m->n_kv_heads * m->head_dim;
    switch (p) {
    case LMP_DOWN: *out = D, *in = F; break;
    case LMP_GATE: case LMP_UP: *out = F, *in = D; break;
    case LMP_O: *out = D, *in = nq; break;
    case LMP_Q: *out = nq, *in = D; break;
    default: *out = nkv, *in = D; break;
    }
}

/* ------------------------------------------------------------------ one chunk, per precision */

struct lm_entk_priv {
    void *x;            /* [N, T, dim] in dt */
    void *rope;         /* [n_layers - layer, T, head_dim] in dt */
    void *S_R;          /* [D, D] S in dt */
    void **res;         /* [nchunks] kept chunk activations, NULL until first used */
    int nres;           /* chunks that may keep theirs */
    int nthreads;
    void **scr;         /* [nthreads] activations of chunks that recompute their forward */
    void **tsc;         /* [nthreads] tangent scratch */
    void *rbuf;         /* [nthreads, P + chunk D] chunk results in dt */
    long computed, cached;
    double flops, seconds;
};

#define R float
#define SUF(name) name##_f32
#define GEMM cblas_sgemm
#define ACTS lm_layer_acts
#define TANGENTS lm_block_tangents
#define CARVE_ACTS lm_acts_carve_f32
#define CARVE_TANGENTS lm_tangents_carve_f32
#define FINAL_NORM(m) ((m)->final_norm)
#include "entk_impl.h"
#define R double
#define SUF(name) name##_f64
#define GEMM cblas_dgemm
#define ACTS lm_layer_acts64
#define TANGENTS lm_block_tangents64
#define CARVE_ACTS lm_acts_carve_f64
#define CARVE_TANGENTS lm_tangents_carve_f64
#define FINAL_NORM(m) ((m)->final_norm64)
#include "entk_impl.h"

size_t lm_entk_chunk_bytes(const lm_model *m, dtype dt, int layer, int nwin, int T) {
    return cacts_elems_f32(m, layer, nwin, T) * dtype_size(dt);
}

int lm_entk_default_chunk(const lm_model *m, dtype dt, int layer, int N, int T, size_t target_bytes) {
    /* at least 2 chunks when there are 2 windows or more: chunks are what the threads share (and
     * every chunk costs a partial gradient of the weight's size, so no more than that asks); the
     * rule must not read the machine, since the chunking shapes the bits */
    int w = 1;
    while (w * 2 <= N / 2 && lm_entk_chunk_bytes(m, dt, layer, w * 2, T) <= target_bytes) w *= 2;
    return w;
}

/* windows in chunk c */
static int chunk_windows(const lm_entk *op, int c) {
    int w0 = c * op->chunk;
    return op->N - w0 < op->chunk ? op->N - w0 : op->chunk;
}

/* Matrix-product FLOPs of one pass through block l (forward, or a JVP or VJP when tangent: the
 * attention's products double) entered at `entry`. */
static double pass_flops(const lm_model *m, int l, int T, int nwin, lm_entry entry, int tangent) {
    lm_widths w = lm_widths_of(m);
    int lean = l == m->n_layers - 1;
    double R_ = (double)nwin * T, P_ = lean ? nwin : R_, f = 0, hd = m->head_dim;
    if (entry == LM_AT_X) f += lean ? 2 * R_ * w.dim * 2 * w.nkv + 2.0 * nwin * w.dim * w.nq : 2 * R_ * w.dim * w.nqkv;
    if (entry <= LM_AT_QKV) f += (tangent ? 4 : 2) * 2.0 * nwin * (lean ? 1 : T) * T * hd * m->n_heads + 2 * P_ * w.nq * w.dim;
    if (entry <= LM_AT_O) f += 2 * P_ * w.dim * 2 * w.ffn;
    if (entry <= LM_AT_GU) f += 2 * P_ * w.ffn * w.dim;
    return f;
}

/* Where each weight's tangent enters its block */
static const lm_entry param_entry[LMP_COUNT] = {LM_AT_DOWN, LM_AT_GU, LM_AT_GU, LM_AT_O, LM_AT_QKV, LM_AT_QKV, LM_AT_QKV};

static double chunk_flops(const lm_entk *op, int nwin, int forward) {
    const lm_model *m = op->m;
    int lean = op->layer == m->n_layers - 1;
    /* rows the weight's own products run over: the last positions only in a lean block, but for
     * k and v, whose keys and values every position needs */
    double rows = lean && op->param != LMP_K && op->param != LMP_V ? nwin : (double)nwin * op->T;
    double f = 2 * 2.0 * op->out * op->in * rows + 2.0 * nwin * op->D * op->D;
    for (int l = op->layer; l < m->n_layers; l++) {
        lm_entry e = l == op->layer ? param_entry[op->param] : LM_AT_X;
        f += 2 * pass_flops(m, l, op->T, nwin, e, 1);
        if (forward) f += pass_flops(m, l, op->T, nwin, LM_AT_X, 0);
    }
    return f;
}

/* ------------------------------------------------------------------ set-up */

/* S = U^T U in f64 over the output head, in row blocks (the head may be 262144 x 640 in f32) */
static double *head_gram(const lm_model *m) {
    int D = m->dim;
    double *S = xcalloc((size_t)D * D, sizeof(double));
    if (m->head64) {
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, m->vocab, 1.0, m->head64, D, 0.0, S, D);
    } else {
        const int blk = 4096;
        double *b = xmalloc((size_t)blk * D * sizeof(double));
        for (int v0 = 0; v0 < m->vocab; v0 += blk) {
            int n = m->vocab - v0 < blk ? m->vocab - v0 : blk;
            for (size_t i = 0; i < (size_t)n * D; i++) b[i] = m->head[(size_t)v0 * D + i];
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, n, 1.0, b, D, 1.0, S, D);
        }
        free(b);
    }
    for (int i = 0; i < D; i++)
        for (int j = 0; j < i; j++) S[(size_t)i * D + j] = S[(size_t)j * D + i];
    return S;
}

/* (S)^1/2 by one symmetric eigensolve, eigenvalues clamped at 0 (S is a Gram: PSD up to rounding):
 * V diag(sqrt(w)) V^T as (V diag(w^1/4)) (V diag(w^1/4))^T, one syrk */
static double *sqrt_psd(const double *S, int D) {
    double *V = xmalloc((size_t)D * D * sizeof(double)), *w = xmalloc((size_t)D * sizeof(double));
    memcpy(V, S, (size_t)D * D * sizeof(double));
    if (LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', D, V, D, w) != 0) entk_die(ENTK_EXIT_FAIL, "eigensolve of U^T U failed");
    for (int k = 0; k < D; k++) {
        double s = w[k] > 0 ? sqrt(sqrt(w[k])) : 0;
        for (int i = 0; i < D; i++) V[(size_t)i * D + k] *= s;
    }
    double *H = xcalloc((size_t)D * D, sizeof(double));
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, D, D, 1.0, V, D, 0.0, H, D);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < i; j++) H[(size_t)i * D + j] = H[(size_t)j * D + i];
    free(V);
    free(w);
    return H;
}

/* S = U^T U for model m, from the cache when another layer's or process's run made it already
 * (262144 x 640 at Gemma-3-270M: 107 GFLOP in f64, seconds on one thread) */
static int gram_check(const void *payload, size_t n, const void *arg, char *why, size_t nwhy) {
    (void)payload;
    if (n == *(const size_t *)arg) return 1;
    snprintf(why, nwhy, "%zu bytes, expected %zu", n, *(const size_t *)arg);
    return 0;
}

static double *cached_head_gram(const lm_model *m) {
    keybuilder kb;
    keybuilder_init(&kb, "entk-lm-head-gram");
    keybuilder_code(&kb, 0);
    keybuilder_str(&kb, m->key.hex);
    keybuilder_i64(&kb, m->head64 != NULL); /* from the f64 copy or the f32 weights: their sums round apart */
    entk_key k = keybuilder_final(&kb);
    size_t bytes = (size_t)m->dim * m->dim * sizeof(double), n;
    void *data;
    if (cache_get(&k, gram_check, &bytes, &data, &n)) return data;
    double *S = head_gram(m);
    cache_put(&k, &(cache_desc){"U^T U of a language model's output head", "model, precision of U, code"}, S, bytes);
    return S;
}

lm_entk *lm_entk_new(lm_model *m, dtype dt, int layer, lm_param param, int N, int T, const void *x, int chunk,
                     size_t mem_budget, int threads) {
    if (layer < 0 || layer >= m->n_layers)
        entk_die(ENTK_EXIT_USAGE, "layer %d is out of range: the model has blocks 0..%d", layer, m->n_layers - 1);
    if (dt != DT_F32 && dt != DT_F64) entk_die(ENTK_EXIT_USAGE, "the LM eNTK runs in f32 or f64");
    if (N < 1 || T < 1) entk_die(ENTK_EXIT_INPUT, "no windows");
    if (T > m->max_pos) entk_die(ENTK_EXIT_INPUT, "windows of %d tokens exceed the model's %d positions", T, m->max_pos);
    if (dt == DT_F64) lm_widen(m);
    lm_entk *op = xcalloc(1, sizeof *op);
    lm_entk_priv *p = op->p = xcalloc(1, sizeof *p);
    op->m = m;
    op->dt = dt;
    op->layer = layer;
    op->param = param;
    op->N = N;
    op->T = T;
    op->D = m->dim;
    lm_param_shape(m, param, &op->out, &op->in);
    op->P = op->out * op->in;
    op->chunk = chunk > 0 ? (chunk < N ? chunk : N) : lm_entk_default_chunk(m, dt, layer, N, T, (size_t)256 << 20);
    op->nchunks = (N + op->chunk - 1) / op->chunk;
    size_t es = dtype_size(dt), dim = (size_t)m->dim, hd = (size_t)m->head_dim;
    size_t xbytes = (size_t)N * T * dim * es;
    p->x = xmalloc(xbytes);
    memcpy(p->x, x, xbytes);
    /* every key names the model, the block and weight, the precision and the windows by content */
    op->ckey = xmalloc((size_t)op->nchunks * sizeof(entk_key));
    keybuilder kall;
    keybuilder_init(&kall, "entk-lm-entk");
    for (int c = 0; c < op->nchunks; c++) {
        keybuilder kb;
        keybuilder_init(&kb, "entk-lm-entk-chunk");
        keybuilder_code(&kb, 0); /* computed by lib code alone, whichever program asks */
        keybuilder_str(&kb, m->key.hex);
        keybuilder_i64(&kb, layer);
        keybuilder_str(&kb, lm_param_name(param));
        keybuilder_str(&kb, dtype_name(dt));
        keybuilder_i64(&kb, T);
        keybuilder_i64(&kb, chunk_windows(op, c));
        keybuilder_bytes(&kb, (const char *)p->x + (size_t)c * op->chunk * T * dim * es,
                         (size_t)chunk_windows(op, c) * T * dim * es);
        op->ckey[c] = keybuilder_final(&kb);
        keybuilder_str(&kall, op->ckey[c].hex);
    }
    op->key = keybuilder_final(&kall);
    int blas = blas_one_thread(); /* S's bits must not follow the thread count */
    op->S = cached_head_gram(m);
    op->Shalf = sqrt_psd(op->S, op->D);
    blas_threads_restore(blas);
    size_t DD = (size_t)op->D * op->D;
    p->S_R = xmalloc(DD * es);
    int nb = m->n_layers - layer;
    p->rope = xmalloc((size_t)nb * T * hd * es);
    for (int i = 0; i < nb; i++) {
        if (dt == DT_F32) lm_rope_table_f32(m, layer + i, T, (float *)p->rope + (size_t)i * T * hd);
        else lm_rope_table_f64(m, layer + i, T, (double *)p->rope + (size_t)i * T * hd);
    }
    for (size_t i = 0; i < DD; i++) {
        if (dt == DT_F32) ((float *)p->S_R)[i] = (float)op->S[i];
        else ((double *)p->S_R)[i] = op->S[i];
    }
    p->nthreads = threads > 0 ? threads : omp_get_max_threads();
    if (p->nthreads > op->nchunks) p->nthreads = op->nchunks;
    size_t per = lm_entk_chunk_bytes(m, dt, layer, op->chunk, T);
    size_t scratch = (size_t)p->nthreads * per;
    p->nres = mem_budget > scratch ? (int)((mem_budget - scratch) / per) : 0;
    if (p->nres > op->nchunks) p->nres = op->nchunks;
    p->res = xcalloc((size_t)op->nchunks, sizeof(void *));
    p->scr = xcalloc((size_t)p->nthreads, sizeof(void *));
    p->tsc = xcalloc((size_t)p->nthreads, sizeof(void *));
    for (int t = 0; t < p->nthreads; t++)
        p->tsc[t] = dt == DT_F32 ? (void *)tscratch_new_f32(m, op->chunk, T) : (void *)tscratch_new_f64(m, op->chunk, T);
    p->rbuf = xmalloc((size_t)p->nthreads * (size_t)(op->P + (int64_t)op->chunk * op->D) * es);
    entk_log("lm-entk: %s, block %d %s [%lld, %lld], %d windows of %d in %d chunks of %d, %s; %d of %d chunks keep "
             "their activations (%.1f MB each)",
             m->desc, layer, lm_param_name(param), (long long)op->out, (long long)op->in, N, T, op->nchunks, op->chunk,
             dtype_name(dt), p->nres, op->nchunks, per / 1e6);
    return op;
}

void lm_entk_free(lm_entk *op) {
    if (!op) return;
    lm_entk_priv *p = op->p;
    for (int c = 0; c < op->nchunks; c++) {
        if (op->dt == DT_F32) cacts_free_f32(p->res[c]);
        else cacts_free_f64(p->res[c]);
    }
    for (int t = 0; t < p->nthreads; t++) {
        if (op->dt == DT_F32) { cacts_free_f32(p->scr[t]); tscratch_free_f32(p->tsc[t]); }
        else { cacts_free_f64(p->scr[t]); tscratch_free_f64(p->tsc[t]); }
    }
    free(p->res); free(p->scr); free(p->tsc); free(p->rbuf);
    free(p->x); free(p->rope); free(p->S_R);
    free(p);
    free(op->ckey);
    free(op->S);
    free(op->Shalf);
    free(op);
}

/* The activations of chunk c on thread t: kept ones if c may keep them, else the thread's scratch,
 * forward run if they do not hold c yet. Returns whether a forward ran. */
static void *chunk_acts(lm_entk *op, int c, int t, int *ran) {
    lm_entk_priv *p = op->p;
    void **slot = c < p->nres ? &p->res[c] : &p->scr[t];
    int nwin = chunk_windows(op, c);
    *ran = 0;
    if (op->dt == DT_F32) {
        cacts_f32 *C = *slot;
        if (C && C->nwin != nwin) { cacts_free_f32(C); C = NULL; }
        if (!C) *slot = C = cacts_new_f32(op->m, op->layer, nwin, op->T);
        if (C->chunk != c) { chunk_forward_f32(op, p->x, p->rope, c, C); *ran = 1; }
        return C;
    }
    cacts_f64 *C = *slot;
    if (C && C->nwin != nwin) { cacts_free_f64(C); C = NULL; }
    if (!C) *slot = C = cacts_new_f64(op->m, op->layer, nwin, op->T);
    if (C->chunk != c) { chunk_forward_f64(op, p->x, p->rope, c, C); *ran = 1; }
    return C;
}

static void chunk_on_thread(lm_entk *op, int c, int t, const void *u, void *Ju, const void *z, void *grad) {
    lm_entk_priv *p = op->p;
    int ran;
    void *C = chunk_acts(op, c, t, &ran);
    if (op->dt == DT_F32) chunk_tangents_f32(op, p->rope, C, p->tsc[t], p->S_R, u, Ju, z, grad);
    else chunk_tangents_f64(op, p->rope, C, p->tsc[t], p->S_R, u, Ju, z, grad);
#pragma omp atomic
    p->flops += chunk_flops(op, chunk_windows(op, c), ran);
}

void lm_entk_chunk(lm_entk *op, int c, const void *u, void *Ju, const void *z, void *grad) {
    if (c < 0 || c >= op->nchunks) entk_die(ENTK_EXIT_FAIL, "chunk %d out of range", c);
    int blas = blas_one_thread();
    chunk_on_thread(op, c, 0, u, Ju, z, grad);
    blas_threads_restore(blas);
}

/* ------------------------------------------------------------------ products through the cache */

#define CHUNK_MAGIC "ENTKLMC1"
#define PRODUCT_MAGIC "ENTKLMP1"

typedef struct { char magic[8]; uint32_t dt, nwin, D, pad; uint64_t out, in; } chunk_hdr;
typedef struct { char magic[8]; uint32_t N, D; uint64_t P; } product_hdr;

static entk_key product_key(const lm_entk *op, const entk_key *ukey, int c) {
    keybuilder kb;
    keybuilder_init(&kb, c < 0 ? "entk-lm-entk-product" : "entk-lm-entk-chunk-product");
    keybuilder_str(&kb, c < 0 ? op->key.hex : op->ckey[c].hex);
    keybuilder_str(&kb, ukey->hex);
    return keybuilder_final(&kb);
}

/* grad and Ju of chunk c in one cache entry */
static void chunk_store(const lm_entk *op, const entk_key *key, int c, const void *res) {
    size_t es = dtype_size(op->dt), n = (size_t)(op->P + (int64_t)chunk_windows(op, c) * op->D) * es;
    chunk_hdr h = {CHUNK_MAGIC, (uint32_t)op->dt, (uint32_t)chunk_windows(op, c), (uint32_t)op->D, 0, (uint64_t)op->out,
                   (uint64_t)op->in};
    char *buf = xmalloc(sizeof h + n), what[96];
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, res, n);
    snprintf(what, sizeof what, "lm eNTK product of chunk %d (%d windows), block %d %s", c, chunk_windows(op, c),
             op->layer, lm_param_name(op->param));
    cache_desc d = {what, "the chunk's operator key, the vector's content, code"};
    cache_put(key, &d, buf, sizeof h + n);
    free(buf);
}

typedef struct { const lm_entk *op; int c; } chunk_req;

/* Is a hit the product of this chunk: its header and size? (the cache's check of a payload) */
static int chunk_check(const void *payload, size_t n, const void *arg, char *why, size_t nwhy) {
    const chunk_req *q = arg;
    const lm_entk *op = q->op;
    chunk_hdr h;
    int nwin = chunk_windows(op, q->c);
    size_t want = sizeof h + (size_t)(op->P + (int64_t)nwin * op->D) * dtype_size(op->dt);
    if (n != want || (memcpy(&h, payload, sizeof h), memcmp(h.magic, CHUNK_MAGIC, 8) != 0) || h.dt != (uint32_t)op->dt ||
        h.nwin != (uint32_t)nwin || h.D != (uint32_t)op->D || h.out != (uint64_t)op->out || h.in != (uint64_t)op->in) {
        snprintf(why, nwhy, "not the product of chunk %d of this operator", q->c);
        return 0;
    }
    return 1;
}

/* y += chunk c's grad (in f64), Ju rows of chunk c, from a verified cache entry; 0: none. */
static int chunk_take(const lm_entk *op, const entk_key *key, int c, double *y, double *Ju) {
    void *data;
    size_t n, es = dtype_size(op->dt);
    chunk_req q = {op, c};
    if (!cache_get(key, chunk_check, &q, &data, &n)) return 0;
    int nwin = chunk_windows(op, c);
    const char *g = (const char *)data + sizeof(chunk_hdr), *j = g + (size_t)op->P * es;
    double *Jc = Ju + (size_t)c * op->chunk * op->D;
    for (int64_t i = 0; i < op->P; i++) y[i] += op->dt == DT_F32 ? ((const float *)g)[i] : ((const double *)g)[i];
    for (int64_t i = 0; i < (int64_t)nwin * op->D; i++) Jc[i] = op->dt == DT_F32 ? ((const float *)j)[i] : ((const double *)j)[i];
    free(data);
    return 1;
}

static int product_check(const void *payload, size_t n, const void *arg, char *why, size_t nwhy) {
    const lm_entk *op = arg;
    product_hdr h;
    size_t ny = (size_t)op->P, nj = (size_t)op->N * op->D;
    if (n != sizeof h + (ny + nj) * sizeof(double) || (memcpy(&h, payload, sizeof h), memcmp(h.magic, PRODUCT_MAGIC, 8)) ||
        h.N != (uint32_t)op->N || h.D != (uint32_t)op->D || h.P != (uint64_t)op->P) {
        snprintf(why, nwhy, "not a product of this operator");
        return 0;
    }
    return 1;
}

static int product_take(const lm_entk *op, const entk_key *key, double *y, double *Ju) {
    void *data;
    size_t n, ny = (size_t)op->P, nj = (size_t)op->N * op->D;
    if (!cache_get(key, product_check, op, &data, &n)) return 0;
    memcpy(y, (char *)data + sizeof(product_hdr), ny * sizeof(double));
    memcpy(Ju, (char *)data + sizeof(product_hdr) + ny * sizeof(double), nj * sizeof(double));
    free(data);
    return 1;
}

/* Computes the chunks cl[0..n) side by side on the threads; results into rbuf slots 0..n-1. */
static void compute_batch(lm_entk *op, const int *cl, int n, const void *uR) {
    lm_entk_priv *p = op->p;
    size_t es = dtype_size(op->dt), slot = (size_t)(op->P + (int64_t)op->chunk * op->D) * es;
    int blas = blas_one_thread(); /* the threads run chunks, each on one BLAS thread */
#pragma omp parallel for schedule(dynamic, 1) num_threads(n)
    for (int i = 0; i < n; i++) {
        char *res = (char *)p->rbuf + (size_t)i * slot;
        chunk_on_thread(op, cl[i], omp_get_thread_num(), uR, res + (size_t)op->P * es, NULL, res);
    }
    blas_threads_restore(blas);
}

/* adds rbuf slot i (chunk c) into y and Ju */
static void add_slot(const lm_entk *op, int i, int c, double *y, double *Ju) {
    size_t es = dtype_size(op->dt), slot = (size_t)(op->P + (int64_t)op->chunk * op->D) * es;
    const char *res = (const char *)op->p->rbuf + (size_t)i * slot, *j = res + (size_t)op->P * es;
    double *Jc = Ju + (size_t)c * op->chunk * op->D;
    for (int64_t k = 0; k < op->P; k++) y[k] += op->dt == DT_F32 ? ((const float *)res)[k] : ((const double *)res)[k];
    for (int64_t k = 0; k < (int64_t)chunk_windows(op, c) * op->D; k++)
        Jc[k] = op->dt == DT_F32 ? ((const float *)j)[k] : ((const double *)j)[k];
}

void lm_entk_product(lm_entk *op, const double *u, double *y, double *Ju, int call) {
    lm_entk_priv *p = op->p;
    double t0 = entk_now();
    entk_key ukey = hash_bytes(u, (size_t)op->P * sizeof(double));
    entk_key pkey = product_key(op, &ukey, -1);
    long computed0 = p->computed;
    if (product_take(op, &pkey, y, Ju)) {
        p->cached += op->nchunks;
        return;
    }
    size_t es = dtype_size(op->dt);
    void *uR = xmalloc((size_t)op->P * es);
    for (int64_t i = 0; i < op->P; i++) {
        if (op->dt == DT_F32) ((float *)uR)[i] = (float)u[i];
        else ((double *)uR)[i] = u[i];
    }
    memset(y, 0, (size_t)op->P * sizeof(double));
    int nt = p->nthreads, *cl = xmalloc((size_t)nt * sizeof(int));
    entk_key *ck = xmalloc((size_t)op->nchunks * sizeof(entk_key));
    for (int c = 0; c < op->nchunks; c++) ck[c] = product_key(op, &ukey, c);
    char what[64];
    snprintf(what, sizeof what, "product %d: chunks", call + 1);
    if (!cache_enabled()) {
        /* nobody to share with: chunks in order, nt at a time, added as they come */
        for (int c0 = 0; c0 < op->nchunks; c0 += nt) {
            int n = op->nchunks - c0 < nt ? op->nchunks - c0 : nt;
            for (int i = 0; i < n; i++) cl[i] = c0 + i;
            compute_batch(op, cl, n, uR);
            for (int i = 0; i < n; i++) add_slot(op, i, c0 + i, y, Ju);
            p->computed += n;
            entk_progress(what, c0 + n, op->nchunks);
        }
    } else {
        /* 1: compute what is neither stored nor claimed by a live process, nt chunks at a time */
        int c = 0;
        while (c < op->nchunks) {
            int n = 0;
            for (; c < op->nchunks && n < nt; c++) {
                if (cache_has(&ck[c])) continue;
                if (claim_take(&ck[c])) cl[n++] = c;
            }
            if (n == 0) break;
            compute_batch(op, cl, n, uR);
            size_t slot = (size_t)(op->P + (int64_t)op->chunk * op->D) * es;
            for (int i = 0; i < n; i++) {
                chunk_store(op, &ck[cl[i]], cl[i], (char *)p->rbuf + (size_t)i * slot);
                claim_drop(&ck[cl[i]]);
            }
            p->computed += n;
            entk_progress(what, c, op->nchunks);
        }
        /* 2: add them up in chunk order, waiting for (or taking over) chunks other processes hold */
        for (c = 0; c < op->nchunks; c++) {
            for (int wait = 0;; wait++) {
                if (chunk_take(op, &ck[c], c, y, Ju)) break;
                if (product_take(op, &pkey, y, Ju)) goto done; /* another process finished and folded it */
                if (claim_take(&ck[c])) {
                    cl[0] = c;
                    compute_batch(op, cl, 1, uR);
                    chunk_store(op, &ck[c], c, p->rbuf);
                    claim_drop(&ck[c]);
                    add_slot(op, 0, c, y, Ju);
                    p->computed++;
                    break;
                }
                if (wait == 0) entk_log("product %d: waiting for chunk %d, which another process is computing", call + 1, c);
                usleep(wait < 20 ? 50000 : 500000);
            }
        }
        /* the product as one entry; its chunks' entries are then litter */
        product_hdr h = {PRODUCT_MAGIC, (uint32_t)op->N, (uint32_t)op->D, (uint64_t)op->P};
        size_t ny = (size_t)op->P * sizeof(double), nj = (size_t)op->N * op->D * sizeof(double);
        char *buf = xmalloc(sizeof h + ny + nj);
        memcpy(buf, &h, sizeof h);
        memcpy(buf + sizeof h, y, ny);
        memcpy(buf + sizeof h + ny, Ju, nj);
        char what[96];
        snprintf(what, sizeof what, "lm eNTK product (%d chunks), block %d %s", op->nchunks, op->layer, lm_param_name(op->param));
        cache_desc d = {what, "the operator's key (its chunks' keys), the vector's content, code"};
        cache_put(&pkey, &d, buf, sizeof h + ny + nj);
        free(buf);
        for (c = 0; c < op->nchunks; c++) cache_remove(&ck[c]);
    }
done:
    p->cached += op->nchunks - (p->computed - computed0);
    entk_progress_end();
    p->seconds += entk_now() - t0;
    free(uR);
    free(cl);
    free(ck);
}

void lm_entk_counts(const lm_entk *op, long *computed, long *cached, double *flops, double *seconds) {
    *computed = op->p->computed;
    *cached = op->p->cached;
    *flops = op->p->flops;
    *seconds = op->p->seconds;
}
