/* The 1-layer Transformer of METHOD.md setting 2 (after Nanda et al. 2023): token + learned
 * positional embedding, causal multi-head attention, ReLU MLP, untied unembedding, no biases,
 * no LayerNorm; logits read at the last position. Tensor layouts (the checkpoint's names):
 *   W_E [V, D]  W_pos [3, D]  W_Q, W_K, W_V [H, D, E]  W_O [H, E, D]
 *   W_in [D, F]  W_out [F, D]  W_U [D, V]        (V = p + 1 with '=' = p, E = D / H)
 * so x_t = W_E[tok_t] + W_pos[t], q = x W_Q[h], resid_mid = x + concat_h(z_h) W_O,
 * resid_post = resid_mid + relu(resid_mid W_in) W_out, logits = resid_post[2] W_U.
 * Loss and accuracy use the first p logits; the eNTK differentiates all p + 1 logits at position 2
 * (as the reference code's class-mean over [:30, :30] for p = 29). */
#include "transformer.h"
#include "duo.h"
#include "err.h"
#include "linalg.h"
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

void transformer_create(model *m, const int *config, rng *r) {
    set_dims(m, config[0], config[1], config[2]);
    int64_t sh[TF_NPARAMS][3];
    int nd[TF_NPARAMS];
    shapes(m, sh, nd);
    for (int k = 0; k < TF_NPARAMS; k++) {
        m->w[k] = tensor_new(m->dt, nd[k], sh[k]);
        /* as the reference code: randn / sqrt(d_model), but W_U / sqrt(d_vocab), W_in / sqrt(d_mlp) */
        double fan = k == TF_WU ? m->vocab : k == TF_WIN ? m->d_mlp : m->d_model;
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
    set_dims(m, meta_dim(st, "d_model"), meta_dim(st, "n_heads"), meta_dim(st, "d_mlp"));
    int64_t sh[TF_NPARAMS][3];
    int nd[TF_NPARAMS];
    shapes(m, sh, nd);
    for (int k = 0; k < TF_NPARAMS; k++) m->w[k] = st_load(st, tf_names[k], m->dt, nd[k], sh[k]);
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
    size_t es = dtype_size(m->dt), total = 0;
    int n = (int)(sizeof sizes / sizeof sizes[0]);
    for (int i = 0; i < n; i++) total += (size_t)sizes[i] * es;
    c->block = xcalloc(total, 1);
    char *p = c->block;
    for (int i = 0; i < n; i++) { *slots[i] = p; p += (size_t)sizes[i] * es; }
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
 * forward() -- and keeps no per-position caches; the Jacobian uses forward()/backward(). */

#define TF_CHUNK 64   /* examples a lane's scratch holds; larger batches run as several chunks */
#define TF_LANES 2    /* a batch is split in two (one per core), whatever the thread count */

/* Scratch of one lane. U counts the distinct (position, token) rows of the current chunk. */
typedef struct {
    int64_t U, u_last;                  /* rows, and the first row of the last position */
    int32_t *tok, *slot, *row, *upos, *utok;  /* chunk tokens [C, T]; slot [T, V] of a pair (-1: none);
                                         * row [C, T] of each example's positions; pair of each row */
    void *xu, *qkv, *att, *z, *mid, *pre, *post, *out, *logits;
    void *dl, *dout, *dpre, *dmid, *dz, *dqkv, *dxu, *gqkv, *gwu;
    void *grad;                         /* this lane's gradient: the parameters back to back */
    double *ex, loss;
    void *block;                        /* the one allocation behind all of the above */
} tf_lane;

/* Kept from call to call (the training loop calls once per minibatch; allocating and faulting in
 * ~1 MB of scratch each time cost more than the AdamW step). Reallocated when the model changes;
 * not thread-safe: one caller at a time, as entk-train. */
typedef struct {
    dtype dt;
    int D, H, F, V;                     /* the model the buffers were sized for (D = 0: none yet) */
    int64_t vp;                         /* V rounded up to whole vectors */
    int64_t goff[TF_NPARAMS];           /* each tensor's offset in a lane's gradient */
    void *wqkv, *wqkvT, *woT, *winT, *woutT, *wup, *wuT;  /* weights packed per step (see pack()) */
    void *packed;
    int32_t *tok, *lab;                 /* the batch's tokens [nb, T] and labels [nb] */
    int64_t cap;                        /* examples tok and lab hold */
    tf_lane lane[TF_LANES];
} tf_work;

static tf_work work;

/* One batch's work, handed to the tasks of transformer_impl.h. */
typedef struct {
    const model *m;
    tf_work *w;
    int64_t nb, nch;                    /* examples, and chunks of at most TF_CHUNK */
    int nlanes;
    tensor *grads;                      /* training: the gradient out (else NULL) */
    void *logits;                       /* evaluation: the first p logits out (else NULL) */
} tf_job;

typedef struct { duo_fn pack, eval, lane, reduce; } tf_tasks;

/* Carves n 64-byte aligned buffers of bytes[i] bytes out of one zeroed allocation. */
static void *carve(int n, const size_t *bytes, void ***slots) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (bytes[i] + 63) / 64 * 64;
    char *block = aligned_alloc(64, total ? total : 64), *p = block;
    if (!block) entk_die(ENTK_EXIT_FAIL, "out of memory (%zu MB)", total >> 20);
    memset(block, 0, total);
    for (int i = 0; i < n; i++) { *slots[i] = p; p += (bytes[i] + 63) / 64 * 64; }
    return block;
}

static void work_free(tf_work *w) {
    free(w->packed);
    free(w->tok);
    free(w->lab);
    for (int l = 0; l < TF_LANES; l++) free(w->lane[l].block);
    memset(w, 0, sizeof *w);
}

/* Scratch for model m and a batch of nb examples: its tokens and labels (when given) copied in. */
static tf_work *work_for(const model *m, const tensor *x, const int32_t *labels, const int64_t *idx, int64_t nb) {
    tf_work *w = &work;
    if (w->D != m->d_model || w->H != m->n_heads || w->F != m->d_mlp || w->V != m->vocab || w->dt != m->dt) {
        work_free(w);
        w->dt = m->dt; w->D = m->d_model; w->H = m->n_heads; w->F = m->d_mlp; w->V = m->vocab;
        size_t es = dtype_size(m->dt);
        size_t vl = 64 / es, T = TF_T, C = TF_CHUNK, D = w->D, HE = (size_t)m->n_heads * m->d_head, F = w->F,
               V = w->V, Vp = (V + vl - 1) / vl * vl, U = T * C, ntot = 0;
        w->vp = (int64_t)Vp;
        for (int k = 0; k < m->nparams; k++) { w->goff[k] = (int64_t)ntot; ntot += (size_t)tensor_numel(&m->w[k]); }
        size_t ps[] = {D * 3 * HE * es, 3 * HE * D * es, D * HE * es, F * D * es, D * F * es, D * Vp * es, V * D * es};
        void **pslots[] = {&w->wqkv, &w->wqkvT, &w->woT, &w->winT, &w->woutT, &w->wup, &w->wuT};
        w->packed = carve(7, ps, pslots);
        for (int l = 0; l < TF_LANES; l++) {
            tf_lane *L = &w->lane[l];
            size_t ls[] = {U * D * es, U * 3 * HE * es, C * m->n_heads * T * es, C * HE * es, C * D * es, C * F * es,
                           C * F * es, C * D * es, C * Vp * es, C * Vp * es, C * D * es, C * F * es, C * D * es,
                           C * HE * es, U * 3 * HE * es, U * D * es, D * 3 * HE * es, D * Vp * es, ntot * es,
                           C * T * 4, T * V * 4, C * T * 4, U * 4, U * 4, Vp * 8};
            void **lslots[] = {&L->xu, &L->qkv, &L->att, &L->z, &L->mid, &L->pre, &L->post, &L->out, &L->logits,
                               &L->dl, &L->dout, &L->dpre, &L->dmid, &L->dz, &L->dqkv, &L->dxu, &L->gqkv, &L->gwu,
                               &L->grad, (void **)&L->tok, (void **)&L->slot, (void **)&L->row, (void **)&L->upos,
                               (void **)&L->utok, (void **)&L->ex};
            L->block = carve((int)(sizeof ls / sizeof ls[0]), ls, lslots);
            for (size_t i = 0; i < T * V; i++) L->slot[i] = -1;
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

#define R float
#define SUF(name) name##_f32
#define GEMM cblas_sgemm
#define EXP expf /* softmax exponentials in R precision: expf is twice as fast as exp */
#include "transformer_impl.h"
#undef R
#undef SUF
#undef GEMM
#undef EXP
#define R double
#define SUF(name) name##_f64
#define GEMM cblas_dgemm
#define EXP exp
#include "transformer_impl.h"
#undef R
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

static void run_backward(const model *m, tf_cache *c, const void *dlogits, tensor *grads) {
    if (m->dt == DT_F32) backward_f32(m, c, dlogits, grads); else backward_f64(m, c, dlogits, grads);
}

/* A batch runs as chunks of at most TF_CHUNK examples on two threads (duo.h). Training deals
 * the chunks to TF_LANES lanes, each with its own scratch and gradient, summed in a fixed order at
 * the end, so results do not depend on which thread ran which lane. */
static double run(const model *m, tf_work *w, int64_t nb, tensor *grads, void *logits) {
    const tf_tasks *tk = m->dt == DT_F32 ? &tasks_f32 : &tasks_f64;
    int64_t nch = (nb + TF_CHUNK - 1) / TF_CHUNK;
    if (grads && nch < TF_LANES && nb >= TF_LANES) nch = TF_LANES;
    tf_job j = {m, w, nb, nch, nch < TF_LANES ? (int)nch : TF_LANES, grads, logits};
    duo_run(tk->pack, &j, grads ? 6 : 1); /* the forward needs pack job 0 only */
    if (!grads) {
        duo_run(tk->eval, &j, (int)nch);
        return 0;
    }
    duo_run(tk->lane, &j, j.nlanes);
    duo_run(tk->reduce, &j, 2);
    double loss = 0;
    for (int l = 0; l < j.nlanes; l++) loss += w->lane[l].loss;
    return loss / (double)nb;
}

void transformer_forward(const model *m, const tensor *x, const int64_t *idx, int64_t nb, void *logits, void *unused) {
    if (nb <= 0) return;
    run(m, work_for(m, x, NULL, idx, nb), nb, NULL, logits);
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

void transformer_factored_jacobian(const model *m, const tensor *x, int k, factored_jac *fj) {
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
    fj->N = N; fj->T = T; fj->C = C; fj->out = out; fj->in = in;
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
        /* d logit_c / d (resid W_U)[i] = delta_ci: separable with A = I, B = 1 */
        fj->A = tensor_2d(dt, C, V);
        for (int64_t cc = 0; cc < C; cc++) la_set(dt, fj->A.data, cc * V + cc, 1.0);
        fj->G = tensor_new(dt, 4, (int64_t[]){N, 1, 1, V});
        for (int64_t i = 0; i < N * V; i++) la_set(dt, fj->G.data, i, 1.0);
        cache_free(&c);
        return;
    }
    /* the output side: one backward pass per class c with dlogits = e_c */
    fj->G = tensor_new(dt, 4, (int64_t[]){N, T, C, out});
    void *dl = xcalloc((size_t)(N * V), es);
    for (int64_t cc = 0; cc < C; cc++) {
        memset(dl, 0, (size_t)(N * V) * es);
        for (int64_t n = 0; n < N; n++) la_set(dt, dl, n * V + cc, 1.0);
        run_backward(m, &c, dl, NULL);
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
                memcpy((char *)fj->G.data + (size_t)(((n * T + t) * C + cc) * out) * es,
                       (const char *)src + (size_t)((n * TF_T + t0 + t) * out) * es, (size_t)out * es);
        entk_progress("classes", (long)(cc + 1), (long)C);
    }
    free(dl);
    cache_free(&c);
}
