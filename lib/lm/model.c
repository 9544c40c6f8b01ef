#include "lm/model.h"
#include "core/err.h"
#include "lm/gemma3.h"
#include "lm/llama2.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* Big buffers are 2 MB aligned and marked for transparent huge pages: fewer page faults when they
 * are first written and fewer TLB misses in the matrix products that stream through them. */
static void *big_alloc(size_t bytes) {
    void *p = NULL;
    size_t align = bytes >= ((size_t)4 << 20) ? ((size_t)2 << 20) : 64;
    bytes = (bytes + align - 1) / align * align;
    if (posix_memalign(&p, align, bytes ? bytes : align) != 0) entk_die(ENTK_EXIT_FAIL, "out of memory (%zu MB)", bytes >> 20);
    if (align > 64) madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

float *lm_alloc(size_t n) { return big_alloc(n * sizeof(float)); }

lm_model *lm_load(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) entk_die(ENTK_EXIT_INPUT, "cannot open model %s: no such file or directory", path);
    size_t n = strlen(path);
    if (S_ISDIR(sb.st_mode) || (n >= 11 && strcmp(path + n - 11, "config.json") == 0)) return gemma3_load(path);
    return llama2_load(path);
}

void lm_free(lm_model *m) {
    if (!m) return;
    for (int l = 0; l < m->n_layers; l++) {
        lm_layer *L = &m->layers[l];
        free(L->attn_norm); free(L->qkv); free(L->q_norm); free(L->k_norm); free(L->o);
        free(L->post_attn_norm); free(L->ffn_norm); free(L->gate_up); free(L->down);
        free(L->post_ffn_norm); free(L->inv_freq);
    }
    if (m->head != m->embed) free(m->head);
    free(m->embed);
    free(m->final_norm);
    free(m->layers);
    free(m);
}

void lm_finish(lm_model *m) {
    if (m->n_heads % m->n_kv_heads) entk_die(ENTK_EXIT_INPUT, "num_attention_heads %d is not a multiple of num_key_value_heads %d", m->n_heads, m->n_kv_heads);
    if (m->head_dim % 2) entk_die(ENTK_EXIT_INPUT, "head_dim %d is odd (RoPE needs pairs)", m->head_dim);
    snprintf(m->desc, sizeof m->desc, "%s: %d layers, dim %d, ffn %d, %d heads (%d kv) of %d, vocab %d",
             m->arch == LM_GEMMA3 ? "gemma3" : "llama2", m->n_layers, m->dim, m->ffn, m->n_heads, m->n_kv_heads,
             m->head_dim, m->vocab);
}

/* ------------------------------------------------------------------ elementwise kernels */

/* e^x to ~2 ulp, written so that loops over it vectorise (no libm call, no branch). */
static inline float fast_expf(float x) {
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x; /* not fminf: a libm call that stops vectorisation */
    float t = x * 1.44269504088896341f + 12582912.0f; /* 1.5 * 2^23: rounds to nearest */
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

/* out = x / rms(x) * (w or 1 + w); inv gets 1/rms. Rows of length dim. */
static void rmsnorm_rows(float *out, float *inv, const float *x, const float *w, int rows, int dim, float eps,
                         int plus_one) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *o = out + (size_t)r * dim;
        float ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < dim; j++) ss += xr[j] * xr[j];
        float s = 1.0f / sqrtf(ss / (float)dim + eps);
        if (inv) inv[r] = s;
        if (plus_one) {
#pragma omp simd
            for (int j = 0; j < dim; j++) o[j] = (xr[j] * s) * (1.0f + w[j]);
        } else {
#pragma omp simd
            for (int j = 0; j < dim; j++) o[j] = w[j] * (xr[j] * s);
        }
    }
}

/* gelu_tanh(g) = 0.5 g (1 + tanh(u)) = g / (1 + e^(-2u)), u = sqrt(2/pi) (g + 0.044715 g^3);
 * silu(g) = g / (1 + e^(-g)). out = act(gate) * up. */
static void gated_act(float *out, const float *gu, int rows, int ffn, lm_act act) {
    for (int r = 0; r < rows; r++) {
        const float *g = gu + (size_t)r * 2 * ffn, *u = g + ffn;
        float *o = out + (size_t)r * ffn;
        if (act == LM_ACT_GELU_TANH) {
#pragma omp simd
            for (int j = 0; j < ffn; j++) {
                float x = g[j];
                float z = -1.5957691216057308f * (x + 0.044715f * x * x * x);
                o[j] = x / (1.0f + fast_expf(z)) * u[j];
            }
        } else {
#pragma omp simd
            for (int j = 0; j < ffn; j++) o[j] = g[j] / (1.0f + fast_expf(-g[j])) * u[j];
        }
    }
}

/* Rotates one head vector v[hd] by the angles whose cos/sin are c[hd/2], s[hd/2]. */
static inline void rope_head(float *v, const float *c, const float *s, int hd, int adjacent) {
    int half = hd / 2;
    if (adjacent) {
        for (int i = 0; i < half; i++) {
            float a = v[2 * i], b = v[2 * i + 1];
            v[2 * i] = a * c[i] - b * s[i];
            v[2 * i + 1] = a * s[i] + b * c[i];
        }
    } else {
#pragma omp simd
        for (int i = 0; i < half; i++) {
            float a = v[i], b = v[i + half];
            v[i] = a * c[i] - b * s[i];
            v[i + half] = b * c[i] + a * s[i];
        }
    }
}

/* ------------------------------------------------------------------ activations */

/* Widths of the per-row buffers of one layer. */
typedef struct { size_t dim, nq, nkv, nqkv, ffn, nh, nkvh; } widths;
static widths widths_of(const lm_model *m) {
    widths w;
    w.dim = (size_t)m->dim;
    w.nq = (size_t)m->n_heads * m->head_dim;
    w.nkv = (size_t)m->n_kv_heads * m->head_dim;
    w.nqkv = w.nq + 2 * w.nkv;
    w.ffn = (size_t)m->ffn;
    w.nh = (size_t)m->n_heads;
    w.nkvh = (size_t)m->n_kv_heads;
    return w;
}

/* Floats of one layer's cached set for R rows in windows of T (qk_raw only if keep). */
static size_t layer_floats(const widths *w, size_t R, size_t T, int keep) {
    size_t per_row = w->dim * 5 + w->nqkv + (keep ? w->nq + w->nkv : 0) + (w->nh + w->nkvh) + w->nh * T + w->nq +
                     2 * w->ffn + w->ffn + 4;
    return per_row * R + 16 * 18;
}

static float *carve(float **p, size_t n) {
    float *r = *p;
    *p += (n + 15) / 16 * 16; /* keep every buffer 64-byte aligned */
    return r;
}

static void layer_carve(lm_layer_acts *A, float **p, const widths *w, size_t R, size_t T, int keep) {
    A->xn = carve(p, R * w->dim);
    A->rms_x = carve(p, R);
    A->qkv = carve(p, R * w->nqkv);
    A->qk_raw = keep ? carve(p, R * (w->nq + w->nkv)) : NULL;
    A->rms_qk = carve(p, R * (w->nh + w->nkvh));
    A->probs = carve(p, R * w->nh * T);
    A->attn = carve(p, R * w->nq);
    A->o = carve(p, R * w->dim);
    A->rms_o = carve(p, R);
    A->h = carve(p, R * w->dim);
    A->hn = carve(p, R * w->dim);
    A->rms_h = carve(p, R);
    A->gate_up = carve(p, R * 2 * w->ffn);
    A->mlp = carve(p, R * w->ffn);
    A->down = carve(p, R * w->dim);
    A->rms_down = carve(p, R);
}

size_t lm_acts_bytes(const lm_model *m, int B, int T, int keep_from) {
    widths w = widths_of(m);
    size_t R = (size_t)B * T;
    if (keep_from < 0) keep_from = 0;
    if (keep_from > m->n_layers) keep_from = m->n_layers;
    size_t n = (size_t)(m->n_layers + 1) * R * w.dim + R + R * w.dim + 64;
    n += (size_t)(m->n_layers - keep_from) * layer_floats(&w, R, (size_t)T, 1);
    if (keep_from > 0) n += layer_floats(&w, R, (size_t)T, 0);
    return n * sizeof(float);
}

lm_acts *lm_acts_new(const lm_model *m, int B, int T, int keep_from) {
    widths w = widths_of(m);
    size_t R = (size_t)B * T;
    if (keep_from < 0) keep_from = 0;
    if (keep_from > m->n_layers) keep_from = m->n_layers;
    lm_acts *a = xcalloc(1, sizeof *a);
    a->B = B;
    a->T = T;
    a->keep_from = keep_from;
    a->layer = xcalloc((size_t)m->n_layers, sizeof(lm_layer_acts));
    size_t nstream = (size_t)(m->n_layers + 1) * R * w.dim;
    float *p = lm_alloc(nstream + R * w.dim + R + 64);
    a->mem[0] = p;
    a->stream = carve(&p, nstream);
    a->hidden = carve(&p, R * w.dim);
    a->rms_final = carve(&p, R);
    size_t nl = (size_t)(m->n_layers - keep_from) * layer_floats(&w, R, (size_t)T, 1);
    if (keep_from > 0) nl += layer_floats(&w, R, (size_t)T, 0);
    float *q = lm_alloc(nl);
    a->mem[1] = q;
    lm_layer_acts scratch = {0};
    if (keep_from > 0) layer_carve(&scratch, &q, &w, R, (size_t)T, 0);
    for (int l = 0; l < m->n_layers; l++) {
        if (l < keep_from) a->layer[l] = scratch;
        else layer_carve(&a->layer[l], &q, &w, R, (size_t)T, 1);
        a->layer[l].x = a->stream + (size_t)l * R * w.dim;
        a->layer[l].out = a->stream + (size_t)(l + 1) * R * w.dim;
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

/* ------------------------------------------------------------------ forward */

/* Y[n, N] = X[n, K] W[N, K]^T (nn.Linear), leading dimensions given. */
static void linear(float *Y, int ldy, const float *X, int ldx, const float *W, int n, int N, int K) {
    if (n <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, N, K, 1.0f, X, ldx, W, K, 0.0f, Y, ldy);
}

/* Attention of windows [b0, b1) of layer l: reads A->qkv, writes A->probs and A->attn. */
static void attention(const lm_model *m, const lm_layer *L, lm_layer_acts *A, int T, int b0, int b1) {
    widths w = widths_of(m);
    int hd = m->head_dim, group = m->n_heads / m->n_kv_heads;
    int ld = (int)w.nqkv;
    for (int b = b0; b < b1; b++) {
        const float *base = A->qkv + (size_t)b * T * w.nqkv;
        for (int h = 0; h < m->n_heads; h++) {
            const float *q = base + (size_t)h * hd;
            const float *k = base + w.nq + (size_t)(h / group) * hd;
            const float *v = base + w.nq + w.nkv + (size_t)(h / group) * hd;
            float *P = A->probs + ((size_t)b * m->n_heads + h) * T * T;
            float *out = A->attn + (size_t)b * T * w.nq + (size_t)h * hd;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, m->attn_scale, q, ld, k, ld, 0.0f, P, T);
            for (int i = 0; i < T; i++) {
                float *s = P + (size_t)i * T;
                int lo = L->window > 0 && i - L->window + 1 > 0 ? i - L->window + 1 : 0;
                if (m->attn_softcap > 0) {
                    float c = m->attn_softcap;
                    for (int j = lo; j <= i; j++) s[j] = c * tanhf(s[j] / c);
                }
                float mx = s[lo];
                for (int j = lo + 1; j <= i; j++) mx = s[j] > mx ? s[j] : mx;
                float sum = 0;
#pragma omp simd reduction(+ : sum)
                for (int j = lo; j <= i; j++) {
                    s[j] = fast_expf(s[j] - mx);
                    sum += s[j];
                }
                float inv = 1.0f / sum;
                for (int j = 0; j < lo; j++) s[j] = 0;
#pragma omp simd
                for (int j = lo; j <= i; j++) s[j] *= inv;
                for (int j = i + 1; j < T; j++) s[j] = 0;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, v, ld, 0.0f, out, (int)w.nq);
        }
    }
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
                            float **rope_cs) {
    widths w = widths_of(m);
    int T = a->T, B = a->B;
    size_t r0 = (size_t)b0 * T;
    int n = (b1 - b0) * T;
    int hd = m->head_dim, half = hd / 2;
    float *x0 = a->stream + r0 * w.dim;
    for (int r = 0; r < n; r++) {
        const float *e = m->embed + (size_t)ids[r0 + r] * w.dim;
        float *x = x0 + (size_t)r * w.dim;
        for (size_t j = 0; j < w.dim; j++) x[j] = e[j] * m->embed_scale;
    }
    for (int l = 0; l < m->n_layers; l++) {
        const lm_layer *L = &m->layers[l];
        lm_layer_acts *A = &a->layer[l];
        float *x = A->x + r0 * w.dim, *xn = A->xn + r0 * w.dim;
        rmsnorm_rows(xn, A->rms_x + r0, x, L->attn_norm, n, (int)w.dim, m->eps, m->norm_plus_one);
        float *qkv = A->qkv + r0 * w.nqkv;
        linear(qkv, (int)w.nqkv, xn, (int)w.dim, L->qkv, n, (int)w.nqkv, (int)w.dim);
        if (A->qk_raw)
            for (int r = 0; r < n; r++)
                memcpy(A->qk_raw + (r0 + r) * (w.nq + w.nkv), qkv + (size_t)r * w.nqkv, (w.nq + w.nkv) * sizeof(float));
        const float *cs = rope_cs[l];
        for (int r = 0; r < n; r++) {
            int t = r % T;
            const float *c = cs + (size_t)t * hd, *s = c + half;
            float *row = qkv + (size_t)r * w.nqkv;
            for (int h = 0; h < m->n_heads + m->n_kv_heads; h++) {
                float *v = row + (size_t)h * hd;
                if (L->q_norm) {
                    float *rq = A->rms_qk + (r0 + r) * (w.nh + w.nkvh) + h;
                    rmsnorm_rows(v, rq, v, h < m->n_heads ? L->q_norm : L->k_norm, 1, hd, m->eps, m->norm_plus_one);
                }
                rope_head(v, c, s, hd, m->rope_adjacent);
            }
        }
        attention(m, L, A, T, b0, b1);
        float *o = A->o + r0 * w.dim, *h = A->h + r0 * w.dim;
        linear(o, (int)w.dim, A->attn + r0 * w.nq, (int)w.nq, L->o, n, (int)w.dim, (int)w.nq);
        if (L->post_attn_norm) {
            rmsnorm_rows(h, A->rms_o + r0, o, L->post_attn_norm, n, (int)w.dim, m->eps, m->norm_plus_one);
            for (size_t i = 0; i < (size_t)n * w.dim; i++) h[i] += x[i];
        } else {
            for (size_t i = 0; i < (size_t)n * w.dim; i++) h[i] = x[i] + o[i];
        }
        float *hn = A->hn + r0 * w.dim, *gu = A->gate_up + r0 * 2 * w.ffn, *mlp = A->mlp + r0 * w.ffn;
        rmsnorm_rows(hn, A->rms_h + r0, h, L->ffn_norm, n, (int)w.dim, m->eps, m->norm_plus_one);
        linear(gu, (int)(2 * w.ffn), hn, (int)w.dim, L->gate_up, n, (int)(2 * w.ffn), (int)w.dim);
        gated_act(mlp, gu, n, (int)w.ffn, m->act);
        float *down = A->down + r0 * w.dim, *y = A->out + r0 * w.dim;
        linear(down, (int)w.dim, mlp, (int)w.ffn, L->down, n, (int)w.dim, (int)w.ffn);
        if (L->post_ffn_norm) {
            rmsnorm_rows(y, A->rms_down + r0, down, L->post_ffn_norm, n, (int)w.dim, m->eps, m->norm_plus_one);
            for (size_t i = 0; i < (size_t)n * w.dim; i++) y[i] += h[i];
        } else {
            for (size_t i = 0; i < (size_t)n * w.dim; i++) y[i] = h[i] + down[i];
        }
        if (out && out->mlp)
            for (int i = 0; i < out->nlayers; i++)
                if (out->layers[i] == l) gather(out->mlp, A->mlp, w.ffn, B, T, b0, b1, out, i);
    }
    float *last = a->stream + (size_t)m->n_layers * B * T * w.dim + r0 * w.dim;
    rmsnorm_rows(a->hidden + r0 * w.dim, a->rms_final + r0, last, m->final_norm, n, (int)w.dim, m->eps,
                 m->norm_plus_one);
    if (!out) return;
    if (out->hidden) gather(out->hidden, a->hidden, w.dim, B, T, b0, b1, out, 0);
    if (out->resid)
        for (int i = 0; i < out->nlayers; i++)
            gather(out->resid, a->stream + (size_t)(out->layers[i] + 1) * B * T * w.dim, w.dim, B, T, b0, b1, out, i);
}

/* Logits at the chosen positions of all windows: one sgemm against the [vocab, dim] head, which is
 * streamed from memory once rather than once per block of windows. */
static void logits_at(const lm_model *m, const lm_acts *a, const lm_outputs *out) {
    size_t dim = (size_t)m->dim, np = (size_t)a->B * out->npos;
    float *hsel = lm_alloc(np * dim);
    for (int b = 0; b < a->B; b++)
        for (int p = 0; p < out->npos; p++)
            memcpy(hsel + ((size_t)b * out->npos + p) * dim, a->hidden + ((size_t)b * a->T + out->pos[p]) * dim,
                   dim * sizeof(float));
    linear(out->logits, m->vocab, hsel, (int)dim, m->head, (int)np, m->vocab, (int)dim);
    if (m->final_softcap > 0) {
        float c = m->final_softcap;
        for (size_t i = 0; i < np * (size_t)m->vocab; i++) out->logits[i] = c * tanhf(out->logits[i] / c);
    }
    free(hsel);
}

void lm_forward(const lm_model *m, const int32_t *ids, lm_acts *a, const lm_outputs *out) {
    int B = a->B, T = a->T;
    if (T > m->max_pos) entk_die(ENTK_EXIT_USAGE, "windows of %d tokens exceed the model's %d positions", T, m->max_pos);
    for (size_t i = 0; i < (size_t)B * T; i++)
        if (ids[i] < 0 || ids[i] >= m->vocab)
            entk_die(ENTK_EXIT_INPUT, "token id %d at window %zu position %zu is outside the vocabulary [0, %d)", ids[i],
                     i / (size_t)T, i % (size_t)T, m->vocab);
    if (out)
        for (int p = 0; p < out->npos; p++)
            if (out->pos[p] < 0 || out->pos[p] >= T) entk_die(ENTK_EXIT_USAGE, "position %d outside the window of %d tokens", out->pos[p], T);
    /* cos | sin tables [T, hd/2] per distinct set of RoPE frequencies */
    int hd = m->head_dim, half = hd / 2;
    float **rope_cs = xcalloc((size_t)m->n_layers, sizeof(float *));
    float *tables = lm_alloc((size_t)m->n_layers * T * hd);
    for (int l = 0; l < m->n_layers; l++) {
        int same = -1;
        for (int k = 0; k < l && same < 0; k++)
            if (memcmp(m->layers[k].inv_freq, m->layers[l].inv_freq, (size_t)half * sizeof(float)) == 0) same = k;
        if (same >= 0) { rope_cs[l] = rope_cs[same]; continue; }
        rope_cs[l] = tables + (size_t)l * T * hd;
        for (int t = 0; t < T; t++)
            for (int i = 0; i < half; i++) {
                float ang = (float)t * m->layers[l].inv_freq[i]; /* in f32, as torch and run.c do */
                rope_cs[l][(size_t)t * hd + i] = (float)cos((double)ang);
                rope_cs[l][(size_t)t * hd + half + i] = (float)sin((double)ang);
            }
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
            forward_windows(m, ids, a, out, k * per, (k + 1) * per < B ? (k + 1) * per : B, rope_cs);
        openblas_set_num_threads(blas);
    } else {
        forward_windows(m, ids, a, out, 0, B, rope_cs);
    }
    if (out && out->logits) logits_at(m, a, out);
    free(tables);
    free(rope_cs);
}

void lm_generate(const lm_model *m, const int32_t *ids, int B, int T, int n, int32_t *out) {
    int Tmax = T + n - 1;
    int32_t *seq = xmalloc((size_t)B * (Tmax > 0 ? Tmax : 1) * sizeof(int32_t));
    float *logits = lm_alloc((size_t)B * m->vocab);
    for (int s = 0; s < n; s++) {
        int len = T + s;
        for (int b = 0; b < B; b++) {
            memcpy(seq + (size_t)b * len, ids + (size_t)b * T, (size_t)T * sizeof(int32_t));
            memcpy(seq + (size_t)b * len + T, out + (size_t)b * n, (size_t)s * sizeof(int32_t));
        }
        lm_acts *a = lm_acts_new(m, B, len, m->n_layers);
        int last = len - 1;
        lm_outputs o = {.npos = 1, .pos = &last, .logits = logits};
        lm_forward(m, seq, a, &o);
        lm_acts_free(a);
        for (int b = 0; b < B; b++) {
            const float *lg = logits + (size_t)b * m->vocab;
            int best = 0;
            for (int v = 1; v < m->vocab; v++)
                if (lg[v] > lg[best]) best = v;
            out[(size_t)b * n + s] = best;
        }
        entk_progress("generating", s + 1, n);
    }
    entk_progress_end();
    free(seq);
    free(logits);
}

double lm_flops(const lm_model *m, int B, int T, int npos) {
    widths w = widths_of(m);
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
