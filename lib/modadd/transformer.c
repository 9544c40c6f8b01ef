/* The 1-layer Transformer of METHOD.md setting 2 (after Nanda et al. 2023): token + learned
 * positional embedding, causal multi-head attention, ReLU MLP, untied unembedding, no biases,
 * no LayerNorm; logits read at the last position. Tensor layouts (the checkpoint's names):
 *   W_E [V, D]  W_pos [3, D]  W_Q, W_K, W_V [H, D, E]  W_O [H, E, D]
 *   W_in [D, F]  W_out [F, D]  W_U [D, V]        (V = p + 1 with '=' = p, E = D / H)
 * so x_t = W_E[tok_t] + W_pos[t], q = x W_Q[h], resid_mid = x + concat_h(z_h) W_O,
 * resid_post = resid_mid + relu(resid_mid W_in) W_out, logits = resid_post[2] W_U.
 * Loss and accuracy use the first p logits; the eNTK differentiates all p + 1 logits at position 2
 * (as the reference code's class-mean over [:30, :30] for p = 29). */
#include "modadd/transformer.h"
#include "core/duo.h"
#include "core/err.h"
#include "core/linalg.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { TF_WE, TF_WPOS, TF_WQ, TF_WK, TF_WV, TF_WO, TF_WIN, TF_WOUT, TF_WU, TF_NPARAMS };
#define TF_T 3

static const char *tf_names[TF_NPARAMS] = {"W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "W_out", "W_U"};

/* Activations of one batch, kept for the backward pass (and for Jacobians). */
typedef struct {
    int64_t B;
    int32_t *tok;                                  /* [B, T] */
    void *resid_pre, *q, *k, *v, *attn, *z, *resid_mid, *pre, *post, *resid_post, *logits;
    void *d_resid_post, *d_pre, *d_resid_mid, *d_z, *d_q, *d_k, *d_v, *d_resid_pre;
    void *block;                                   /* the one allocation behind all of the above */
} tf_cache;

static void shapes(const model *m, int64_t sh[TF_NPARAMS][3], int nd[TF_NPARAMS]) {
    int64_t D = m->d_model, H = m->n_heads, E = m->d_head, F = m->d_mlp, V = m->vocab;
    int64_t s[TF_NPARAMS][3] = {{V, D}, {TF_T, D}, {H, D, E}, {H, D, E}, {H, D, E}, {H, E, D}, {D, F}, {F, D}, {D, V}};
    for (int k = 0; k < TF_NPARAMS; k++) {
        nd[k] = (k >= TF_WQ && k <= TF_WO) ? 3 : 2;
        memcpy(sh[k], s[k], sizeof s[k]);
    }
}

static void set_dims(model *m, int d_model, int heads, int d_mlp) {
    if (d_model % heads) entk_die(ENTK_EXIT_USAGE, "d_model %d is not a multiple of %d heads", d_model, heads);
    m->d_model = d_model;
    m->n_heads = heads;
    m->d_head = d_model / heads;
    m->d_mlp = d_mlp;
    m->vocab = m->p + 1;
    m->n_out = m->vocab;
    m->n_ctx = TF_T;
    m->nparams = TF_NPARAMS;
    for (int k = 0; k < TF_NPARAMS; k++) m->names[k] = tf_names[k];
}

/* One reference-initialised tensor: torch.randn(batch, a, b) / sqrt(fan) in float32, stored in
 * our layout, which is the reference's with the last two axes swapped when transpose is set
 * (W_Q/W_K/W_V are [H, E, D] there, W_O is [D, H*E]). */
static void torch_fill(mt19937 *g, tensor *w, int64_t batch, int64_t a, int64_t b, int transpose, double fan) {
    int64_t n = batch * a * b;
    float *draw = xmalloc((size_t)n * sizeof(float)), scale = (float)sqrt(fan);
    torch_randn_f32(g, n, draw);
    for (int64_t s = 0; s < batch; s++)
        for (int64_t i = 0; i < a; i++)
            for (int64_t j = 0; j < b; j++) {
                int64_t dst = transpose ? (s * b + j) * a + i : (s * a + i) * b + j;
                la_set(w->dt, w->data, dst, (double)(draw[(s * a + i) * b + j] / scale));
            }
    free(draw);
}

void transformer_create(model *m, const int *config, rng *r, mt19937 *torch) {
    set_dims(m, config[0], config[1], config[2]);
    int64_t sh[TF_NPARAMS][3];
    int nd[TF_NPARAMS];
    shapes(m, sh, nd);
    for (int k = 0; k < TF_NPARAMS; k++) {
        m->w[k] = tensor_new(m->dt, nd[k], sh[k]);
        /* as the reference code: randn / sqrt(d_model), but W_U / sqrt(d_vocab), W_in / sqrt(d_mlp) */
        double fan = k == TF_WU ? m->vocab : k == TF_WIN ? m->d_mlp : m->d_model;
        if (torch) {
            /* the reference module creates its parameters in our order, each from torch.randn */
            int64_t HE = (int64_t)m->n_heads * m->d_head;
            if (k >= TF_WQ && k <= TF_WV) torch_fill(torch, &m->w[k], m->n_heads, m->d_head, m->d_model, 1, fan);
            else if (k == TF_WO) torch_fill(torch, &m->w[k], 1, m->d_model, HE, 1, fan);
            else torch_fill(torch, &m->w[k], 1, sh[k][0], sh[k][1], 0, fan);
            continue;
        }
        double scale = 1.0 / sqrt(fan);
        int64_t n = tensor_numel(&m->w[k]);
        for (int64_t i = 0; i < n; i++) la_set(m->dt, m->w[k].data, i, scale * rng_normal(r));
    }
}

static int meta_dim(const safetensors *st, const char *key) {
    const char *s = st_meta(st, key);
    char *e;
    long v = s ? strtol(s, &e, 10) : 0;
    if (!s || *e || v <= 0 || v > 1 << 20)
        entk_die(ENTK_EXIT_INPUT, "%s: bad model file: metadata '%s' missing or not a positive integer", st->path, key);
    return (int)v;
}

void transformer_load(model *m, const safetensors *st) {
    int d_model = meta_dim(st, "d_model"), heads = meta_dim(st, "n_heads");
    if (d_model % heads) entk_die(ENTK_EXIT_INPUT, "%s: bad model file: d_model %d is not a multiple of %d heads", st->path, d_model, heads);
    set_dims(m, d_model, heads, meta_dim(st, "d_mlp"));
    int64_t sh[TF_NPARAMS][3];
    int nd[TF_NPARAMS];
    shapes(m, sh, nd);
    for (int k = 0; k < TF_NPARAMS; k++) m->w[k] = st_load(st, tf_names[k], m->dt, nd[k], sh[k]);
}

/* Carves n 64-byte aligned buffers of bytes[i] bytes out of one allocation (zeroed if zero), which
 * it returns: the caller frees that alone. */
static void *carve(int n, const size_t *bytes, void ***slots, int zero) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (bytes[i] + 63) / 64 * 64;
    char *block = aligned_alloc(64, total ? total : 64), *p = block;
    if (!block) entk_die(ENTK_EXIT_FAIL, "out of memory (%zu MB)", total >> 20);
    if (zero) memset(block, 0, total);
    for (int i = 0; i < n; i++) { *slots[i] = p; p += (bytes[i] + 63) / 64 * 64; }
    return block;
}

static void cache_alloc(const model *m, tf_cache *c, int64_t B) {
    memset(c, 0, sizeof *c);
    c->B = B;
    int64_t T = TF_T, D = m->d_model, HE = (int64_t)m->n_heads * m->d_head, F = m->d_mlp, V = m->vocab;
    int64_t BT = B * T;
    int64_t sizes[] = {BT * D, BT * HE, BT * HE, BT * HE, B * m->n_heads * T * T, BT * HE, BT * D, BT * F, BT * F, BT * D, B * V,
                       BT * D, BT * F, BT * D, BT * HE, BT * HE, BT * HE, BT * HE, BT * D};
    void **slots[] = {&c->resid_pre, &c->q, &c->k, &c->v, &c->attn, &c->z, &c->resid_mid, &c->pre, &c->post, &c->resid_post,
                      &c->logits, &c->d_resid_post, &c->d_pre, &c->d_resid_mid, &c->d_z, &c->d_q, &c->d_k, &c->d_v, &c->d_resid_pre};
    size_t es = dtype_size(m->dt), bytes[sizeof sizes / sizeof sizes[0]];
    int n = (int)(sizeof sizes / sizeof sizes[0]);
    for (int i = 0; i < n; i++) bytes[i] = (size_t)sizes[i] * es;
    /* not zeroed: forward() and backward() set or clear every buffer before reading it, and for
     * N = 841 the block is 34 MB, zeroed again for every checkpoint of a series */
    c->block = carve(n, bytes, slots, 0);
    c->tok = xmalloc((size_t)BT * sizeof(int32_t));
}

static void cache_free(tf_cache *c) {
    free(c->block);
    free(c->tok);
}

/* ---------------------------------------------------------------- the training and evaluation path
 * Training and evaluation read the logits at the last position only: queries, the attention
 * output, W_O, the MLP and W_U matter there alone, keys and values at every position. This path
 * (transformer_impl.h, after forward/backward) computes just that -- a third of the MLP work of
 * forward() -- and keeps no per-position caches; the Jacobian uses forward()/backward().
 *
 * The model is split in two sides, run by the caller's thread and a helper (duo.h): side c takes
 * heads [h0, h1) and MLP units [f0, f1), and forms the gradient rows that AdamW's half c updates,
 * so the weights stay in one core's cache from step to step; the sides exchange only partial
 * sums of the residual stream (z W_O, relu() W_out, their gradients; ~16 KB each). Splitting the
 * batch instead moved every weight and gradient between the cores each step, which cost as much
 * as the second core gained. The split is fixed, so results do not depend on the thread count. */

#define TF_CHUNK 64   /* examples per pass through the phases: one default minibatch */

/* Per side: its slice of the model, the weights packed for its products, and activations. */
typedef struct {
    int64_t h0, h1, f0, f1;             /* heads and MLP units */
    int64_t U, u_last;                  /* pair rows of the chunk; the first of the last position */
    int32_t *slot;                      /* [T, V] pair row of (position, token), -1: none */
    int32_t *row, *upos, *utok;         /* [C, T] pair row of each example's positions; each row's pair */
    void *ex;                           /* [Vp] softmax numerators */
    double loss;                        /* the chunk's summed loss */
    /* weights, packed per step (pack()): W_Q|W_K|W_V of its heads [D, 3 HE_c] and transposed,
     * W_O^T [D, HE_c], W_in^T [F_c, D], W_out^T [D, F_c] of its slice; W_U padded and W_U^T */
    void *wqkv, *wqkvT, *woT, *winT, *woutT, *wup, *wuT;
    /* activations: pair rows [T C, .], example rows [C, .]. r, o, dm and dxu are this side's
     * partial sums, read by the other side */
    void *xu, *qkv, *att, *z, *r, *mid, *post, *o, *out, *logits, *dl, *dout, *dpre, *dm, *dmid, *dz, *dqkv, *dxu;
    void *gscratch;                     /* [D, max(Vp, 3 HE_c)] a gradient in the products' layout */
    void *block;                        /* the one allocation behind all of the above */
} tf_side;

/* Kept from call to call (the training loop calls once per minibatch: allocating and faulting in
 * the buffers each time cost more than the AdamW step). Reallocated when the model changes; not
 * thread-safe: one caller at a time, as entk-train. */
typedef struct {
    dtype dt;
    int D, H, F, V;                     /* the model the buffers were sized for (D = 0: none yet) */
    int64_t vp;                         /* V rounded up to whole vectors */
    int32_t *tok, *lab;                 /* the batch's tokens [nb, T] and labels [nb] */
    int64_t cap;                        /* examples tok and lab hold */
    tf_side side[2];
} tf_work;

static tf_work work;

/* One chunk's work, handed to the phases of transformer_impl.h. */
typedef struct {
    const model *m;
    tf_work *w;
    int64_t nb, b0, n;                  /* batch size; this chunk's examples [b0, b0 + n) */
    int first;                          /* first chunk: pack the weights, start the gradients */
    tensor *grads;                      /* training: the gradient out (else NULL) */
    void *logits;                       /* evaluation: the first p logits out (else NULL) */
} tf_job;

typedef struct { duo_fn attn, mlp, head, attn_back, embed; } tf_phases;

static void work_free(tf_work *w) {
    free(w->tok);
    free(w->lab);
    for (int c = 0; c < 2; c++) free(w->side[c].block);
    memset(w, 0, sizeof *w);
}

/* The buffers for model m and a batch of nb examples, its tokens and labels (when given) copied in. */
static tf_work *work_for(const model *m, const tensor *x, const int32_t *labels, const int64_t *idx, int64_t nb) {
    tf_work *w = &work;
    if (w->D != m->d_model || w->H != m->n_heads || w->F != m->d_mlp || w->V != m->vocab || w->dt != m->dt) {
        work_free(w);
        w->dt = m->dt; w->D = m->d_model; w->H = m->n_heads; w->F = m->d_mlp; w->V = m->vocab;
        size_t es = dtype_size(m->dt), T = TF_T, C = TF_CHUNK, D = (size_t)m->d_model, H = (size_t)m->n_heads,
               E = (size_t)m->d_head, F = (size_t)m->d_mlp, V = (size_t)m->vocab, vl = 64 / es, Vp = (V + vl - 1) / vl * vl;
        w->vp = (int64_t)Vp;
        for (int c = 0; c < 2; c++) {
            tf_side *S = &w->side[c];
            S->h0 = (int64_t)H * c / 2; S->h1 = (int64_t)H * (c + 1) / 2;
            S->f0 = (int64_t)F * c / 2; S->f1 = (int64_t)F * (c + 1) / 2;
            size_t HEc = (size_t)(S->h1 - S->h0) * E, Fc = (size_t)(S->f1 - S->f0), Q3 = 3 * HEc;
            size_t bytes[] = {T * V * 4, C * T * 4, C * T * 4, C * T * 4, Vp * es,
                              D * Q3 * es, Q3 * D * es, D * HEc * es, Fc * D * es, D * Fc * es, D * Vp * es, V * D * es,
                              T * C * D * es, T * C * Q3 * es, C * HEc / E * T * es, C * HEc * es, C * D * es, C * D * es,
                              C * Fc * es, C * D * es, C * D * es, C * Vp * es, C * Vp * es, C * D * es, C * Fc * es,
                              C * D * es, C * D * es, C * HEc * es, T * C * Q3 * es, T * C * D * es,
                              D * (Vp > Q3 ? Vp : Q3) * es};
            void **slots[] = {(void **)&S->slot, (void **)&S->row, (void **)&S->upos, (void **)&S->utok, &S->ex,
                              &S->wqkv, &S->wqkvT, &S->woT, &S->winT, &S->woutT, &S->wup, &S->wuT,
                              &S->xu, &S->qkv, &S->att, &S->z, &S->r, &S->mid, &S->post, &S->o, &S->out, &S->logits,
                              &S->dl, &S->dout, &S->dpre, &S->dm, &S->dmid, &S->dz, &S->dqkv, &S->dxu, &S->gscratch};
            S->block = carve((int)(sizeof bytes / sizeof bytes[0]), bytes, slots, 1);
            for (size_t i = 0; i < T * V; i++) S->slot[i] = -1;
        }
    }
    if (nb > w->cap) {
        w->cap = nb;
        w->tok = xrealloc(w->tok, (size_t)(nb * TF_T) * sizeof(int32_t));
        w->lab = xrealloc(w->lab, (size_t)nb * sizeof(int32_t));
    }
    for (int64_t b = 0; b < nb; b++) {
        int64_t r = idx ? idx[b] : b;
        for (int t = 0; t < TF_T; t++) {
            int64_t tok = (int64_t)tensor_get(x, r * TF_T + t);
            if (tok < 0 || tok >= m->vocab) entk_die(ENTK_EXIT_INPUT, "token %lld out of range for vocabulary %d", (long long)tok, m->vocab);
            w->tok[b * TF_T + t] = (int32_t)tok;
        }
        if (labels) w->lab[b] = labels[r];
    }
    return w;
}

/* glibc's vector exponentials (libmvec, -lmvec): declared "simd", expf and exp are called from
 * the softmax loops below 8 or 16 at a time, 0.4 instead of 5 ns a term, within 2 ulp of expf. */
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
double exp(double);

#define R float
#define RI int32_t /* the integer of R's size, for shuffle masks */
#define SUF(name) name##_f32
#define GEMM cblas_sgemm
#define EXP expf /* softmax exponentials in R precision */
#include "transformer_impl.h"
#undef R
#undef RI
#undef SUF
#undef GEMM
#undef EXP
#define R double
#define RI int64_t
#define SUF(name) name##_f64
#define GEMM cblas_dgemm
#define EXP exp
#include "transformer_impl.h"
#undef R
#undef RI
#undef SUF
#undef GEMM
#undef EXP

static void load_tokens(const model *m, const tensor *x, const int64_t *idx, tf_cache *c) {
    for (int64_t b = 0; b < c->B; b++) {
        int64_t r = idx ? idx[b] : b;
        for (int t = 0; t < TF_T; t++) {
            int64_t tok = (int64_t)tensor_get(x, r * TF_T + t);
            if (tok < 0 || tok >= m->vocab) entk_die(ENTK_EXIT_INPUT, "token %lld out of range for vocabulary %d", (long long)tok, m->vocab);
            c->tok[b * TF_T + t] = (int32_t)tok;
        }
    }
}

static void run_forward(const model *m, tf_cache *c) {
    if (m->dt == DT_F32) forward_f32(m, c); else forward_f64(m, c);
}

static void run_backward(const model *m, tf_cache *c, const void *dlogits) {
    if (m->dt == DT_F32) backward_f32(m, c, dlogits); else backward_f64(m, c, dlogits);
}

/* The batch in chunks of TF_CHUNK, each through the phases (one duo_run each: the sides
 * exchange partial sums in between). */
static double run(const model *m, tf_work *w, int64_t nb, tensor *grads, void *logits) {
    const tf_phases *ph = m->dt == DT_F32 ? &phases_f32 : &phases_f64;
    double loss = 0;
    for (int64_t b0 = 0; b0 < nb; b0 += TF_CHUNK) {
        tf_job j = {m, w, nb, b0, nb - b0 < TF_CHUNK ? nb - b0 : TF_CHUNK, b0 == 0, grads, logits};
        duo_run(ph->attn, &j, 2);
        duo_run(ph->mlp, &j, 2);
        duo_run(ph->head, &j, 2);
        if (!grads) continue;
        duo_run(ph->attn_back, &j, 2);
        duo_run(ph->embed, &j, 2);
        loss += w->side[0].loss;
    }
    return loss / (double)nb;
}

void transformer_forward(const model *m, const tensor *x, const int64_t *idx, int64_t nb, void *logits, void *unused) {
    if (nb <= 0) return;
    run(m, work_for(m, x, NULL, idx, nb), nb, NULL, logits);
}

/* Through the Jacobian's forward(), which keeps resid_post (the evaluation path does not). */
void transformer_hidden(const model *m, const tensor *x, const int64_t *idx, int64_t nb, void *hidden) {
    if (nb <= 0) return;
    tf_cache c;
    cache_alloc(m, &c, nb);
    load_tokens(m, x, idx, &c);
    run_forward(m, &c);
    size_t row = (size_t)m->d_model * dtype_size(m->dt);
    for (int64_t b = 0; b < nb; b++)
        memcpy((char *)hidden + (size_t)b * row, (const char *)c.resid_post + (size_t)(b * TF_T + TF_T - 1) * row, row);
    cache_free(&c);
}

double transformer_loss_grad(const model *m, const tensor *x, const int32_t *labels, const int64_t *idx, int64_t nb,
                             tensor *grads) {
    if (nb <= 0) entk_die(ENTK_EXIT_FAIL, "transformer_loss_grad: empty batch");
    return run(m, work_for(m, x, labels, idx, nb), nb, grads, NULL);
}

/* Which positions a parameter's gradient can reach: the logits read position 2 only, attention
 * moves information forward from keys and values, so queries, W_O, the MLP and W_U act at the
 * last position alone (their Jacobian rows at other positions are exactly zero). */
static int all_positions(int k) { return k == TF_WE || k == TF_WPOS || k == TF_WK || k == TF_WV; }

void transformer_linear_shape(const model *m, int k, int64_t *out, int64_t *in, int64_t *T) {
    int64_t D = m->d_model, HE = (int64_t)m->n_heads * m->d_head, F = m->d_mlp, V = m->vocab;
    int64_t o[TF_NPARAMS] = {D, D, HE, HE, HE, D, F, D, V}, i[TF_NPARAMS] = {V, TF_T, D, D, D, HE, D, F, D};
    *out = o[k];
    *in = i[k];
    *T = all_positions(k) ? TF_T : 1;
}

int transformer_separable(int k) { return k == TF_WU; }

void transformer_factored_jacobian(const model *m, const tensor *x, int k, int sum_outputs, factored_jac *fj) {
    dtype dt = m->dt;
    size_t es = dtype_size(dt);
    int64_t N = x->shape[0], C = m->n_out, V = m->vocab, D = m->d_model, HE = (int64_t)m->n_heads * m->d_head;
    int64_t out, in, T;
    transformer_linear_shape(m, k, &out, &in, &T);
    tf_cache c;
    cache_alloc(m, &c, N);
    load_tokens(m, x, NULL, &c);
    run_forward(m, &c);
    memset(fj, 0, sizeof *fj);
    fj->N = N; fj->T = T; fj->C = sum_outputs ? 1 : C; fj->out = out; fj->in = in;
    fj->summed = sum_outputs ? C : 0;
    int64_t t0 = T == 1 ? TF_T - 1 : 0;  /* first position kept */
    fj->X = tensor_new(dt, 3, (int64_t[]){N, T, in});
    /* the input side of the linear map */
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < T; t++) {
            int64_t pos = t0 + t, row = n * TF_T + pos;
            char *dst = (char *)fj->X.data + (size_t)((n * T + t) * in) * es;
            const void *src = NULL;
            switch (k) {
            case TF_WE: la_set(dt, dst, c.tok[row], 1.0); break;
            case TF_WPOS: la_set(dt, dst, pos, 1.0); break;
            case TF_WQ: case TF_WK: case TF_WV: case TF_WIN: src = (char *)(k == TF_WIN ? c.resid_mid : c.resid_pre) + (size_t)(row * D) * es; break;
            case TF_WO: src = (char *)c.z + (size_t)(row * HE) * es; break;
            case TF_WOUT: src = (char *)c.post + (size_t)(row * in) * es; break;
            case TF_WU: src = (char *)c.resid_post + (size_t)(row * D) * es; break;
            }
            if (src) memcpy(dst, src, (size_t)in * es);
        }
    if (k == TF_WU) {
        /* d logit_c / d (resid W_U)[i] = delta_ci: separable with A = I, B = 1 (summed: A = 1) */
        fj->A = tensor_2d(dt, fj->C, V);
        for (int64_t cc = 0; cc < C; cc++) la_set(dt, fj->A.data, sum_outputs ? cc : cc * V + cc, 1.0);
        fj->G = tensor_new(dt, 4, (int64_t[]){N, 1, 1, V});
        for (int64_t i = 0; i < N * V; i++) la_set(dt, fj->G.data, i, 1.0);
        cache_free(&c);
        return;
    }
    /* the output side: one backward pass per class c with dlogits = e_c; summed, one pass with
     * dlogits = 1 for every output */
    int64_t passes = fj->C;
    fj->G = tensor_new(dt, 4, (int64_t[]){N, T, passes, out});
    void *dl = xcalloc((size_t)(N * V), es);
    for (int64_t cc = 0; cc < passes; cc++) {
        memset(dl, 0, (size_t)(N * V) * es);
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = sum_outputs ? 0 : cc; c < (sum_outputs ? C : cc + 1); c++) la_set(dt, dl, n * V + c, 1.0);
        run_backward(m, &c, dl);
        const void *src;
        switch (k) {
        case TF_WE: case TF_WPOS: src = c.d_resid_pre; break;
        case TF_WQ: src = c.d_q; break;
        case TF_WK: src = c.d_k; break;
        case TF_WV: src = c.d_v; break;
        case TF_WO: src = c.d_resid_mid; break;
        case TF_WIN: src = c.d_pre; break;
        default: src = c.d_resid_post; break; /* W_out */
        }
        for (int64_t n = 0; n < N; n++)
            for (int64_t t = 0; t < T; t++)
                memcpy((char *)fj->G.data + (size_t)(((n * T + t) * passes + cc) * out) * es,
                       (const char *)src + (size_t)((n * TF_T + t0 + t) * out) * es, (size_t)out * es);
        entk_progress("classes", (long)(cc + 1), (long)passes);
    }
    free(dl);
    cache_free(&c);
}
