#include "lm/forward.h"
#include "core/err.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t lm_acts_bytes(const lm_model *m, int B, int T, int keep_from) {
    size_t R = (size_t)B * T, dim = (size_t)m->dim;
    if (keep_from < 0) keep_from = 0;
    if (keep_from > m->n_layers) keep_from = m->n_layers;
    size_t n = (size_t)(m->n_layers + 1) * R * dim + R + R * dim + 64;
    n += (size_t)(m->n_layers - keep_from) * lm_acts_elems(m, (size_t)B, (size_t)T, 1, 0);
    if (keep_from > 0) n += lm_acts_elems(m, (size_t)B, (size_t)T, 0, 0);
    return n * sizeof(float);
}

lm_acts *lm_acts_new(const lm_model *m, int B, int T, int keep_from) {
    size_t R = (size_t)B * T, dim = (size_t)m->dim;
    if (keep_from < 0) keep_from = 0;
    if (keep_from > m->n_layers) keep_from = m->n_layers;
    lm_acts *a = xcalloc(1, sizeof *a);
    a->B = B;
    a->T = T;
    a->keep_from = keep_from;
    a->layer = xcalloc((size_t)m->n_layers, sizeof(lm_layer_acts));
    size_t nstream = (size_t)(m->n_layers + 1) * R * dim;
    float *p = lm_alloc(nstream + R * dim + R + 64);
    a->mem[0] = p;
    a->stream = p;
    a->hidden = p + nstream;
    a->rms_final = a->hidden + R * dim;
    size_t nl = (size_t)(m->n_layers - keep_from) * lm_acts_elems(m, (size_t)B, (size_t)T, 1, 0);
    if (keep_from > 0) nl += lm_acts_elems(m, (size_t)B, (size_t)T, 0, 0);
    float *q = lm_alloc(nl);
    a->mem[1] = q;
    lm_layer_acts scratch = {0};
    if (keep_from > 0) lm_acts_carve_f32(&scratch, &q, m, (size_t)B, (size_t)T, 0, 0);
    for (int l = 0; l < m->n_layers; l++) {
        if (l < keep_from) a->layer[l] = scratch;
        else lm_acts_carve_f32(&a->layer[l], &q, m, (size_t)B, (size_t)T, 1, 0);
        a->layer[l].x = a->stream + (size_t)l * R * dim;
        a->layer[l].out = a->stream + (size_t)(l + 1) * R * dim;
    }
    return a;
}

void lm_acts_free(lm_acts *a) {
    if (!a) return;
    free(a->mem[0]);
    free(a->mem[1]);
    free(a->layer);
    free(a);
}

/* Copies rows at the chosen positions of windows [b0, b1): dst[(i * B + b) * npos + p] = src[b*T + pos[p]]. */
static void gather(float *dst, const float *src, size_t width, int B, int T, int b0, int b1, const lm_outputs *out,
                   int i) {
    for (int b = b0; b < b1; b++)
        for (int p = 0; p < out->npos; p++)
            memcpy(dst + (((size_t)i * B + b) * out->npos + p) * width, src + ((size_t)b * T + out->pos[p]) * width,
                   width * sizeof(float));
}

/* The forward of windows [b0, b1): everything for those rows, layer after layer. */
static void forward_windows(const lm_model *m, const int32_t *ids, lm_acts *a, const lm_outputs *out, int b0, int b1,
                            float **rope) {
    int T = a->T, B = a->B;
    size_t dim = (size_t)m->dim, r0 = (size_t)b0 * T;
    int n = (b1 - b0) * T;
    float *x0 = a->stream + r0 * dim;
    for (int r = 0; r < n; r++) {
        const float *e = m->embed + (size_t)ids[r0 + r] * dim;
        float *x = x0 + (size_t)r * dim;
        for (size_t j = 0; j < dim; j++) x[j] = e[j] * m->embed_scale;
    }
    for (int l = 0; l < m->n_layers; l++) {
        lm_block_forward_f32(m, l, &a->layer[l], rope[l], T, b0, b1, 0);
        if (out && out->kv) {
            lm_widths w = lm_widths_of(m);
            for (size_t r = r0; r < r0 + (size_t)n; r++)
                memcpy(out->kv + ((size_t)l * B * T + r) * 2 * w.nkv, a->layer[l].qkv + r * w.nqkv + w.nq,
                       2 * w.nkv * sizeof(float));
        }
        if (out && out->mlp)
            for (int i = 0; i < out->nlayers; i++)
                if (out->layers[i] == l) gather(out->mlp, a->layer[l].mlp, (size_t)m->ffn, B, T, b0, b1, out, i);
    }
    float *last = a->stream + (size_t)m->n_layers * B * T * dim + r0 * dim;
    lm_rmsnorm_f32(m, a->hidden + r0 * dim, a->rms_final + r0, last, m->final_norm, n, (int)dim);
    if (!out) return;
    if (out->hidden) gather(out->hidden, a->hidden, dim, B, T, b0, b1, out, 0);
    if (out->resid)
        for (int i = 0; i < out->nlayers; i++)
            gather(out->resid, a->stream + (size_t)(out->layers[i] + 1) * B * T * dim, dim, B, T, b0, b1, out, i);
}

void lm_logits(const lm_model *m, const float *h, int ldh, int n, float *logits) {
    if (n <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m->vocab, m->dim, 1.0f, h, ldh, m->head, m->dim, 0.0f,
                logits, m->vocab);
    if (m->final_softcap > 0) {
        float c = m->final_softcap;
        for (size_t i = 0; i < (size_t)n * (size_t)m->vocab; i++) logits[i] = c * tanhf(logits[i] / c);
    }
}

/* Logits at the chosen positions of all windows: one GEMM against the [vocab, dim] head, which is
 * streamed from memory once rather than once per block of windows. */
static void logits_at(const lm_model *m, const lm_acts *a, const lm_outputs *out) {
    size_t dim = (size_t)m->dim, np = (size_t)a->B * out->npos;
    float *hsel = lm_alloc(np * dim);
    for (int b = 0; b < a->B; b++)
        for (int p = 0; p < out->npos; p++)
            memcpy(hsel + ((size_t)b * out->npos + p) * dim, a->hidden + ((size_t)b * a->T + out->pos[p]) * dim,
                   dim * sizeof(float));
    lm_logits(m, hsel, (int)dim, (int)np, out->logits);
    free(hsel);
}

int lm_ids_frame(const frame_reader *r, const frame *f, int64_t *nwin, int64_t *T, int32_t **ids) {
    if (strcmp(f->kind, "tensor") != 0 || (strcmp(f->name, "ids") != 0 && strcmp(f->name, "windows") != 0)) return 0;
    if (f->t.dt != DT_I32 && f->t.dt != DT_I64) frame_fail(r, f, "token ids must be i32 or i64, not %s", dtype_name(f->t.dt));
    if (f->t.ndim != 1 && f->t.ndim != 2) frame_fail(r, f, "token ids must be [T] or [N,T], not rank %d", f->t.ndim);
    *nwin = f->t.ndim == 1 ? 1 : f->t.shape[0];
    *T = f->t.shape[f->t.ndim - 1];
    if (*nwin > 0 && *T <= 0) frame_fail(r, f, "empty window");
    if (!ids) return 1;
    int64_t n = *nwin * *T;
    *ids = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) {
        int64_t v = (int64_t)tensor_get(&f->t, i);
        if (v < 0 || v > INT32_MAX) frame_fail(r, f, "token id %lld is not a token id", (long long)v);
        (*ids)[i] = (int32_t)v;
    }
    return 1;
}

void lm_check_ids(const lm_model *m, const int32_t *ids, size_t n, int T) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->vocab)
            entk_die(ENTK_EXIT_INPUT, "token id %d at window %zu position %zu is outside the vocabulary [0, %d)", ids[i],
                     i / (size_t)T, i % (size_t)T, m->vocab);
}

void lm_forward(const lm_model *m, const int32_t *ids, lm_acts *a, const lm_outputs *out) {
    int B = a->B, T = a->T;
    if (T > m->max_pos) entk_die(ENTK_EXIT_USAGE, "windows of %d tokens exceed the model's %d positions", T, m->max_pos);
    lm_check_ids(m, ids, (size_t)B * T, T);
    if (out)
        for (int p = 0; p < out->npos; p++)
            if (out->pos[p] < 0 || out->pos[p] >= T) entk_die(ENTK_EXIT_USAGE, "position %d outside the window of %d tokens", out->pos[p], T);
    /* one RoPE table per distinct set of frequencies */
    int hd = m->head_dim, half = hd / 2;
    float **rope = xcalloc((size_t)m->n_layers, sizeof(float *));
    float *tables = lm_alloc((size_t)m->n_layers * T * hd);
    for (int l = 0; l < m->n_layers; l++) {
        int same = -1;
        for (int k = 0; k < l && same < 0; k++)
            if (memcmp(m->layers[k].inv_freq, m->layers[l].inv_freq, (size_t)half * sizeof(float)) == 0) same = k;
        if (same >= 0) { rope[l] = rope[same]; continue; }
        rope[l] = tables + (size_t)l * T * hd;
        lm_rope_table_f32(m, l, T, rope[l]);
    }
    /* Blocks of up to 8 windows (512 rows for T = 64: as fast per row in sgemm as bigger blocks)
     * handed out to the threads as they come free, so a thread slowed by other work on the machine
     * does not hold the others up. */
    int nt = omp_get_max_threads();
    if (nt > B) nt = B;
    if (nt > 1) {
        int per = B / nt < 8 ? B / nt : 8;
        int nblocks = (B + per - 1) / per;
        int blas = openblas_get_num_threads();
        openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int k = 0; k < nblocks; k++)
            forward_windows(m, ids, a, out, k * per, (k + 1) * per < B ? (k + 1) * per : B, rope);
        openblas_set_num_threads(blas);
    } else {
        forward_windows(m, ids, a, out, 0, B, rope);
    }
    if (out && out->logits) logits_at(m, a, out);
    free(tables);
    free(rope);
}

double lm_flops(const lm_model *m, int B, int T, int npos) {
    lm_widths w = lm_widths_of(m);
    double per_token = 2.0 * (double)w.dim * (w.nqkv + w.nq + 3 * w.ffn);
    double total = per_token * m->n_layers * B * T;
    for (int l = 0; l < m->n_layers; l++) {
        double pairs = 0; /* (query, key) pairs attended, per window */
        for (int t = 0; t < T; t++) pairs += m->layers[l].window > 0 && t + 1 > m->layers[l].window ? m->layers[l].window : t + 1;
        total += 2.0 * 2.0 * pairs * m->head_dim * m->n_heads * B;
    }
    total += 2.0 * w.dim * m->vocab * (double)B * npos;
    return total;
}
