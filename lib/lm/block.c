#include "lm/block.h"
#include <cblas.h>
#include <math.h>
#include <string.h>

/* e^x to ~2 ulp, written so that loops over it vectorise (no libm call, no branch): the f32
 * softmax and activations spend most of their time here. */
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

lm_widths lm_widths_of(const lm_model *m) {
    lm_widths w;
    w.dim = (size_t)m->dim;
    w.nq = (size_t)m->n_heads * m->head_dim;
    w.nkv = (size_t)m->n_kv_heads * m->head_dim;
    w.nqkv = w.nq + 2 * w.nkv;
    w.ffn = (size_t)m->ffn;
    w.nh = (size_t)m->n_heads;
    w.nkvh = (size_t)m->n_kv_heads;
    return w;
}

/* Buffer sizes are rounded up to 16 elements so every carved buffer starts 64-byte aligned. */
static size_t up16(size_t n) { return (n + 15) / 16 * 16; }

/* The sizes of one activation set's buffers, in carving order (x and out are the caller's). */
static int acts_sizes(const lm_model *m, size_t B, size_t T, int keep, int lean, size_t *sz) {
    lm_widths w = lm_widths_of(m);
    size_t R = B * T, P = lean ? B : R;
    int k = 0;
    sz[k++] = R * w.dim;                    /* xn */
    sz[k++] = R;                            /* rms_x */
    sz[k++] = R * w.nqkv;                   /* qkv */
    sz[k++] = keep ? R * (w.nq + w.nkv) : 0; /* qk_raw */
    sz[k++] = R * (w.nh + w.nkvh);          /* rms_qk */
    sz[k++] = P * w.nh * T;                 /* probs */
    sz[k++] = P * w.nq;                     /* attn */
    sz[k++] = P * w.dim;                    /* o */
    sz[k++] = P;                            /* rms_o */
    sz[k++] = P * w.dim;                    /* h */
    sz[k++] = P * w.dim;                    /* hn */
    sz[k++] = P;                            /* rms_h */
    sz[k++] = P * 2 * w.ffn;                /* gate_up */
    sz[k++] = P * w.ffn;                    /* mlp */
    sz[k++] = P * w.dim;                    /* down */
    sz[k++] = P;                            /* rms_down */
    return k;
}

size_t lm_acts_elems(const lm_model *m, size_t B, size_t T, int keep, int lean) {
    size_t sz[16], n = 0;
    int k = acts_sizes(m, B, T, keep, lean, sz);
    for (int i = 0; i < k; i++) n += up16(sz[i]);
    return n;
}

static int tangents_sizes(const lm_model *m, size_t B, size_t T, size_t *sz) {
    lm_widths w = lm_widths_of(m);
    size_t R = B * T;
    int k = 0;
    sz[k++] = R * w.dim;     /* dxn */
    sz[k++] = R * w.nqkv;    /* dqkv */
    sz[k++] = R * w.nq;      /* dattn */
    sz[k++] = R * w.dim;     /* d_o */
    sz[k++] = R * w.dim;     /* dh */
    sz[k++] = R * w.dim;     /* dhn */
    sz[k++] = R * 2 * w.ffn; /* dgu */
    sz[k++] = R * w.ffn;     /* dmlp */
    sz[k++] = R * w.dim;     /* ddown */
    sz[k++] = B * 2 * T * T; /* W */
    return k;
}

size_t lm_tangents_elems(const lm_model *m, size_t B, size_t T) {
    size_t sz[10], n = 0;
    int k = tangents_sizes(m, B, T, sz);
    for (int i = 0; i < k; i++) n += up16(sz[i]);
    return n;
}

size_t lm_decode_elems(const lm_model *m, int nwin, int maxT) {
    lm_widths w = lm_widths_of(m);
    return (size_t)nwin * (5 * w.dim + 1 + w.nqkv + w.nq + 3 * w.ffn) + (size_t)maxT;
}

#define CARVE(R)                                                                                            \
    static R *carve_##R(R **p, size_t n) {                                                                  \
        R *r = n ? *p : NULL;                                                                               \
        *p += up16(n);                                                                                      \
        return r;                                                                                           \
    }
CARVE(float)
CARVE(double)

/* One body for both precisions: the struct fields are the same names in the same order. */
#define ACTS_CARVE(R, A, p, m, B, T, keep, lean)                                                            \
    do {                                                                                                    \
        size_t sz[16];                                                                                      \
        acts_sizes(m, B, T, keep, lean, sz);                                                                \
        R **f[] = {&A->xn, &A->rms_x, &A->qkv, &A->qk_raw, &A->rms_qk, &A->probs, &A->attn, &A->o,          \
                   &A->rms_o, &A->h, &A->hn, &A->rms_h, &A->gate_up, &A->mlp, &A->down, &A->rms_down};       \
        for (int i = 0; i < 16; i++) *f[i] = carve_##R(p, sz[i]);                                           \
    } while (0)
#define TANGENTS_CARVE(R, G, p, m, B, T)                                                                    \
    do {                                                                                                    \
        size_t sz[10];                                                                                      \
        tangents_sizes(m, B, T, sz);                                                                        \
        R **f[] = {&G->dxn, &G->dqkv, &G->dattn, &G->d_o, &G->dh, &G->dhn, &G->dgu, &G->dmlp, &G->ddown,    \
                   &G->W};                                                                                  \
        for (int i = 0; i < 10; i++) *f[i] = carve_##R(p, sz[i]);                                           \
    } while (0)

void lm_acts_carve_f32(lm_layer_acts *A, float **p, const lm_model *m, size_t B, size_t T, int keep, int lean) {
    ACTS_CARVE(float, A, p, m, B, T, keep, lean);
}
void lm_acts_carve_f64(lm_layer_acts64 *A, double **p, const lm_model *m, size_t B, size_t T, int keep, int lean) {
    ACTS_CARVE(double, A, p, m, B, T, keep, lean);
}
void lm_tangents_carve_f32(lm_block_tangents *G, float **p, const lm_model *m, size_t B, size_t T) {
    TANGENTS_CARVE(float, G, p, m, B, T);
}
void lm_tangents_carve_f64(lm_block_tangents64 *G, double **p, const lm_model *m, size_t B, size_t T) {
    TANGENTS_CARVE(double, G, p, m, B, T);
}

void lm_rope_table_f32(const lm_model *m, int l, int T, float *rope) {
    int hd = m->head_dim, half = hd / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            float ang = (float)t * m->layers[l].inv_freq[i]; /* in f32, as torch and run.c do */
            rope[(size_t)t * hd + i] = (float)cos((double)ang);
            rope[(size_t)t * hd + half + i] = (float)sin((double)ang);
        }
}

void lm_rope_table_f64(const lm_model *m, int l, int T, double *rope) {
    int hd = m->head_dim, half = hd / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            float ang = (float)t * m->layers[l].inv_freq[i];
            rope[(size_t)t * hd + i] = cos((double)ang);
            rope[(size_t)t * hd + half + i] = sin((double)ang);
        }
}

#define R float
#define SUF(name) name##_f32
#define GEMM cblas_sgemm
#define EXP fast_expf
#define SQRT sqrtf
#define TANH tanhf
#define LAYERT lm_layer
#define LAYER(m, l) (&(m)->layers[l])
#define EPS(m) ((m)->eps)
#define ATTN_SCALE(m) ((m)->attn_scale)
#define ATTN_SOFTCAP(m) ((m)->attn_softcap)
#define ACTS lm_layer_acts
#define TANGENTS lm_block_tangents
#include "ops_impl.h"
#include "block_impl.h"
void lm_rmsnorm_f32(const lm_model *m, float *out, float *inv, const float *x, const float *w, int rows, int dim) {
    rmsnorm_f32(out, inv, x, w, rows, dim, m->eps, m->norm_plus_one);
}
void lm_rmsnorm_jvp_f32(const lm_model *m, float *dy, const float *x, const float *inv, const float *dx, const float *w,
                        int rows, int dim) {
    rmsnorm_jvp_f32(dy, x, inv, dx, w, rows, dim, m->norm_plus_one);
}
void lm_rmsnorm_vjp_f32(const lm_model *m, float *dx, const float *x, const float *inv, const float *dy, const float *w,
                        int rows, int dim) {
    rmsnorm_vjp_f32(dx, x, inv, dy, w, rows, dim, m->norm_plus_one, 0);
}
#undef R
#undef SUF
#undef GEMM
#undef EXP
#undef SQRT
#undef TANH
#undef LAYERT
#undef LAYER
#undef EPS
#undef ATTN_SCALE
#undef ATTN_SOFTCAP
#undef ACTS
#undef TANGENTS

#define R double
#define SUF(name) name##_f64
#define GEMM cblas_dgemm
#define EXP exp
#define SQRT sqrt
#define TANH tanh
#define LAYERT lm_layer64
#define LAYER(m, l) (&(m)->layers64[l])
#define EPS(m) ((m)->eps64)
#define ATTN_SCALE(m) ((m)->attn_scale64)
#define ATTN_SOFTCAP(m) ((m)->attn_softcap64)
#define ACTS lm_layer_acts64
#define TANGENTS lm_block_tangents64
#include "ops_impl.h"
#include "block_impl.h"
void lm_rmsnorm_f64(const lm_model *m, double *out, double *inv, const double *x, const double *w, int rows, int dim) {
    rmsnorm_f64(out, inv, x, w, rows, dim, m->eps64, m->norm_plus_one);
}
void lm_rmsnorm_jvp_f64(const lm_model *m, double *dy, const double *x, const double *inv, const double *dx,
                        const double *w, int rows, int dim) {
    rmsnorm_jvp_f64(dy, x, inv, dx, w, rows, dim, m->norm_plus_one);
}
void lm_rmsnorm_vjp_f64(const lm_model *m, double *dx, const double *x, const double *inv, const double *dy,
                        const double *w, int rows, int dim) {
    rmsnorm_vjp_f64(dx, x, inv, dy, w, rows, dim, m->norm_plus_one, 0);
}
