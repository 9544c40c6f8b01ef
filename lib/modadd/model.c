#include "modadd/model.h"
#include <sys/stat.h>
#include "core/err.h"
#include "core/linalg.h"
#include "core/rng.h"
#include "core/torchrng.h"
#include "core/safetensors.h"
#include "modadd/transformer.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *mlp_names[] = {"W1", "W2"};

static void mlp_shapes(const model *m, int64_t shapes[][2]) {
    shapes[0][0] = m->hidden; shapes[0][1] = m->in_dim;
    shapes[1][0] = m->p; shapes[1][1] = m->hidden;
}

static void fill_normal(tensor *t, rng *r, double scale) {
    int64_t n = tensor_numel(t);
    for (int64_t i = 0; i < n; i++) la_set(t->dt, t->data, i, scale * rng_normal(r));
}

/* The reference MLP: nn.Linear(2p, hidden) and nn.Linear(hidden, p) first draw their default
 * kaiming_uniform_ weights, then nn.init.normal_ overwrites W1 and W2 in turn. */
static void mlp_torch_fill(model *m, mt19937 *g) {
    for (int k = 0; k < 2; k++) torch_uniform_f32(g, tensor_numel(&m->w[k]), -1, 1, NULL);
    for (int k = 0; k < 2; k++) {
        int64_t n = tensor_numel(&m->w[k]);
        float *draw = xmalloc((size_t)n * sizeof(float));
        torch_randn_f32(g, n, draw);
        for (int64_t i = 0; i < n; i++) la_set(m->dt, m->w[k].data, i, draw[i]);
        free(draw);
    }
}

void model_create(model *m, model_kind kind, int p, const int *config, uint64_t seed, mt19937 *torch, dtype dt) {
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->dt = dt;
    m->p = p;
    rng r;
    rng_seed(&r, seed);
    if (kind == MODEL_TRANSFORMER) {
        transformer_create(m, config, &r, torch);
    } else {
        m->in_dim = 2 * p;
        m->n_out = p;
        m->hidden = config[0];
        m->nparams = 2;
        int64_t sh[2][2];
        mlp_shapes(m, sh);
        for (int k = 0; k < 2; k++) {
            m->names[k] = mlp_names[k];
            m->w[k] = tensor_2d(dt, sh[k][0], sh[k][1]);
            /* N(0,1): the mean-field parametrisation puts scales in f */
            if (!torch) fill_normal(&m->w[k], &r, 1.0);
        }
        if (torch) mlp_torch_fill(m, torch);
    }
    keybuilder kb;
    keybuilder_init(&kb, "weights");
    for (int k = 0; k < m->nparams; k++) keybuilder_bytes(&kb, m->w[k].data, tensor_nbytes(&m->w[k]));
    m->key = keybuilder_final(&kb);
}

static int meta_int(const safetensors *st, const char *key) {
    const char *s = st_meta(st, key);
    char *e;
    long v = s ? strtol(s, &e, 10) : 0;
    if (!s || *e || v <= 0 || v > 1000000)
        entk_die(ENTK_EXIT_INPUT, "%s: bad model file: metadata '%s' missing or not a positive integer", st->path, key);
    return (int)v;
}

void model_load(model *m, const char *path, dtype dt) {
    memset(m, 0, sizeof *m);
    safetensors st;
    st_open(&st, path);
    const char *kind = st_meta(&st, "entk_model");
    if (!kind) entk_die(ENTK_EXIT_INPUT, "%s: bad model file: no entk_model in __metadata__", path);
    m->dt = dt;
    m->p = meta_int(&st, "p");
    if (strcmp(kind, "mlp") == 0) {
        m->kind = MODEL_MLP;
        m->hidden = meta_int(&st, "hidden");
        m->in_dim = 2 * m->p;
        m->n_out = m->p;
        m->nparams = 2;
        int64_t sh[2][2];
        mlp_shapes(m, sh);
        for (int k = 0; k < 2; k++) {
            m->names[k] = mlp_names[k];
            m->w[k] = st_load(&st, mlp_names[k], dt, 2, sh[k]);
        }
    } else if (strcmp(kind, "transformer") == 0) {
        m->kind = MODEL_TRANSFORMER;
        transformer_load(m, &st);
    } else {
        entk_die(ENTK_EXIT_INPUT, "%s: bad model file: unknown entk_model '%s'", path, kind);
    }
    st_close(&st);
    /* a NaN or infinite weight makes every output and Gram NaN: refuse it here, naming it */
    for (int k = 0; k < m->nparams; k++) {
        int64_t at = tensor_nonfinite_at(&m->w[k]);
        if (at >= 0)
            entk_die(ENTK_EXIT_INPUT, "%s: tensor '%s' has a non-finite value (%g) at element %lld", path, m->names[k],
                     tensor_get(&m->w[k], at), (long long)at);
    }
    m->key = hash_file(path);
}

void model_save(const model *m, const char *path, const char *const *extra_meta, int nextra) {
    const char *kv[32];
    char pbuf[16], c1[16], c2[16], c3[16];
    int n = 0;
    snprintf(pbuf, sizeof pbuf, "%d", m->p);
    kv[n++] = "entk_model"; kv[n++] = m->kind == MODEL_MLP ? "mlp" : "transformer";
    kv[n++] = "p"; kv[n++] = pbuf;
    if (m->kind == MODEL_MLP) {
        snprintf(c1, sizeof c1, "%d", m->hidden);
        kv[n++] = "hidden"; kv[n++] = c1;
    } else {
        snprintf(c1, sizeof c1, "%d", m->d_model);
        snprintf(c2, sizeof c2, "%d", m->n_heads);
        snprintf(c3, sizeof c3, "%d", m->d_mlp);
        kv[n++] = "d_model"; kv[n++] = c1;
        kv[n++] = "n_heads"; kv[n++] = c2;
        kv[n++] = "d_mlp"; kv[n++] = c3;
    }
    for (int i = 0; i < 2 * nextra && n < 30; i++) kv[n++] = extra_meta[i];
    st_entry e[MODEL_MAX_PARAMS];
    for (int k = 0; k < m->nparams; k++) {
        e[k].name = m->names[k];
        e[k].t = &m->w[k];
        e[k].store = m->dt == DT_F32 ? ST_F32 : ST_F64;
    }
    st_save(path, m->nparams, e, n / 2, kv);
}

void model_free(model *m) {
    for (int k = 0; k < m->nparams; k++) tensor_free(&m->w[k]);
}

int model_param_index(const model *m, const char *name) {
    for (int k = 0; k < m->nparams; k++)
        if (strcmp(m->names[k], name) == 0) return k;
    return -1;
}

const char *model_encoding(const model *m) { return m->kind == MODEL_MLP ? "onehot" : "tokens"; }

int model_separable(const model *m, int k) { return m->kind == MODEL_MLP || transformer_separable(k); }

void model_linear_shape(const model *m, int k, int64_t *out, int64_t *in, int64_t *T) {
    if (m->kind == MODEL_TRANSFORMER) { transformer_linear_shape(m, k, out, in, T); return; }
    *out = m->w[k].shape[0];
    *in = m->w[k].shape[1];
    *T = 1;
}

void factored_free(factored_jac *fj) {
    tensor_free(&fj->X);
    tensor_free(&fj->G);
    tensor_free(&fj->A);
}

/* ---------------------------------------------------------------- mlp */

/* Gathers rows idx of x (f64 one-hot inputs) into a contiguous [nb, D] matrix in dt. */
static void gather_rows(const tensor *x, const int64_t *idx, int64_t nb, dtype dt, void *out) {
    int64_t D = x->shape[1];
    for (int64_t b = 0; b < nb; b++) {
        int64_t r = idx ? idx[b] : b;
        for (int64_t j = 0; j < D; j++) la_set(dt, out, b * D + j, tensor_get(x, r * D + j));
    }
}

/* h = s1 X W1^T (pre-activation), a = h^2, f = s2 a W2^T */
static void mlp_forward_parts(const model *m, const void *X, int64_t nb, void *h, void *a, void *f) {
    dtype dt = m->dt;
    int64_t D = m->in_dim, H = m->hidden, C = m->p;
    double s1 = 1.0 / sqrt((double)D), s2 = 1.0 / (double)H;
    la_gemm(dt, 0, 1, nb, H, D, s1, X, D, m->w[0].data, D, 0, h, H);
    for (int64_t i = 0; i < nb * H; i++) {
        double v = la_get(dt, h, i);
        la_set(dt, a, i, v * v);
    }
    la_gemm(dt, 0, 1, nb, C, H, s2, a, H, m->w[1].data, H, 0, f, C);
}

void model_forward(const model *m, const tensor *x, const int64_t *idx, int64_t nb, void *logits) {
    if (m->kind == MODEL_TRANSFORMER) { transformer_forward(m, x, idx, nb, logits, NULL); return; }
    size_t es = dtype_size(m->dt);
    void *X = xmalloc((size_t)(nb * m->in_dim) * es), *h = xmalloc((size_t)(nb * m->hidden) * es),
         *a = xmalloc((size_t)(nb * m->hidden) * es);
    gather_rows(x, idx, nb, m->dt, X);
    mlp_forward_parts(m, X, nb, h, a, logits);
    free(X); free(h); free(a);
}

int64_t model_hidden_dim(const model *m) { return m->kind == MODEL_MLP ? m->hidden : m->d_model; }

void model_hidden(const model *m, const tensor *x, const int64_t *idx, int64_t nb, void *hidden) {
    if (m->kind == MODEL_TRANSFORMER) { transformer_hidden(m, x, idx, nb, hidden); return; }
    size_t es = dtype_size(m->dt);
    void *X = xmalloc((size_t)(nb * m->in_dim) * es), *h = xmalloc((size_t)(nb * m->hidden) * es),
         *f = xmalloc((size_t)(nb * m->p) * es);
    gather_rows(x, idx, nb, m->dt, X);
    mlp_forward_parts(m, X, nb, h, hidden, f);
    free(X); free(h); free(f);
}

void model_check_data(const model *m, const modadd *d, const char *data_src) {
    if (d->p != m->p) entk_die(ENTK_EXIT_INPUT, "%s: data has p=%d but the model has p=%d", data_src, d->p, m->p);
    if (strcmp(d->encoding, model_encoding(m)) != 0)
        entk_die(ENTK_EXIT_INPUT, "%s: model needs %s inputs, data has %s", data_src, model_encoding(m), d->encoding);
}

double model_loss_grad(const model *m, const tensor *x, const int32_t *labels, const int64_t *idx, int64_t nb,
                       tensor *grads) {
    if (m->kind == MODEL_TRANSFORMER) return transformer_loss_grad(m, x, labels, idx, nb, grads);
    dtype dt = m->dt;
    int64_t D = m->in_dim, H = m->hidden, C = m->p;
    double s1 = 1.0 / sqrt((double)D), s2 = 1.0 / (double)H;
    size_t es = dtype_size(dt);
    void *X = xmalloc((size_t)(nb * D) * es), *h = xmalloc((size_t)(nb * H) * es), *a = xmalloc((size_t)(nb * H) * es),
         *f = xmalloc((size_t)(nb * C) * es), *da = xmalloc((size_t)(nb * H) * es);
    gather_rows(x, idx, nb, dt, X);
    mlp_forward_parts(m, X, nb, h, a, f);
    /* MSE, mean over nb*C entries (torch F.mse_loss): df = 2 (f - y) / (nb C) */
    double loss = 0, inv = 1.0 / (double)(nb * C);
    for (int64_t b = 0; b < nb; b++) {
        int32_t y = labels[idx ? idx[b] : b];
        for (int64_t c = 0; c < C; c++) {
            double e = la_get(dt, f, b * C + c) - (c == y ? 1.0 : 0.0);
            loss += e * e;
            la_set(dt, f, b * C + c, 2 * e * inv);
        }
    }
    /* f now holds dL/df */
    la_gemm(dt, 1, 0, C, H, nb, s2, f, C, a, H, 0, grads[1].data, H);           /* gW2 = s2 df^T a */
    la_gemm(dt, 0, 0, nb, H, C, s2, f, C, m->w[1].data, H, 0, da, H);           /* da = s2 df W2 */
    for (int64_t i = 0; i < nb * H; i++) la_set(dt, da, i, 2 * la_get(dt, h, i) * la_get(dt, da, i));
    la_gemm(dt, 1, 0, H, D, nb, s1, da, H, X, D, 0, grads[0].data, D);          /* gW1 = s1 dh^T X */
    free(X); free(h); free(a); free(f); free(da);
    return loss * inv;
}

void model_factored_jacobian(const model *m, const tensor *x, int k, int sum_outputs, factored_jac *fj) {
    if (m->kind == MODEL_TRANSFORMER) { transformer_factored_jacobian(m, x, k, sum_outputs, fj); return; }
    dtype dt = m->dt;
    int64_t N = x->shape[0], D = m->in_dim, H = m->hidden, C = m->p;
    double s1 = 1.0 / sqrt((double)D), s2 = 1.0 / (double)H;
    size_t es = dtype_size(dt);
    void *X = xmalloc((size_t)(N * D) * es), *h = xmalloc((size_t)(N * H) * es), *a = xmalloc((size_t)(N * H) * es),
         *f = xmalloc((size_t)(N * C) * es);
    gather_rows(x, NULL, N, dt, X);
    mlp_forward_parts(m, X, N, h, a, f);
    memset(fj, 0, sizeof *fj);
    fj->N = N; fj->T = 1; fj->C = sum_outputs ? 1 : C;
    fj->summed = sum_outputs ? C : 0;
    if (k == 0) {
        /* df_c/dW1[i,j] = (2 s2 W2[c,i]) h_i (s1 x_j): A = 2 s2 W2, B = h */
        fj->out = H; fj->in = D;
        fj->X = tensor_new(dt, 3, (int64_t[]){N, 1, D});
        memcpy(fj->X.data, X, (size_t)(N * D) * es);
        la_scale(dt, N * D, s1, fj->X.data);
        fj->A = tensor_2d(dt, fj->C, H);
        if (sum_outputs) /* the summed logit: the column sums of W2 */
            for (int64_t c = 0; c < C; c++) la_axpy(dt, H, 1.0, (const char *)m->w[1].data + (size_t)(c * H) * es, fj->A.data);
        else
            memcpy(fj->A.data, m->w[1].data, (size_t)(C * H) * es);
        la_scale(dt, fj->C * H, 2 * s2, fj->A.data);
        fj->G = tensor_new(dt, 4, (int64_t[]){N, 1, 1, H});
        memcpy(fj->G.data, h, (size_t)(N * H) * es);
    } else {
        /* df_c/dW2[i,j] = s2 delta_ci a_j: A = s2 I, B = 1 */
        fj->out = C; fj->in = H;
        fj->X = tensor_new(dt, 3, (int64_t[]){N, 1, H});
        memcpy(fj->X.data, a, (size_t)(N * H) * es);
        fj->A = tensor_2d(dt, fj->C, C);
        for (int64_t c = 0; c < C; c++) la_set(dt, fj->A.data, sum_outputs ? c : c * C + c, s2);
        fj->G = tensor_new(dt, 4, (int64_t[]){N, 1, 1, C});
        for (int64_t i = 0; i < N * C; i++) la_set(dt, fj->G.data, i, 1.0);
    }
    free(X); free(h); free(a); free(f);
}

int model_is_checkpoint(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0 || S_ISDIR(sb.st_mode)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char h[9];
    size_t got = fread(h, 1, sizeof h, f);
    fclose(f);
    uint64_t hl = 0;
    if (got == sizeof h) memcpy(&hl, h, 8);
    if (got < sizeof h || h[8] != '{' || hl > (uint64_t)sb.st_size - 8) return 0;
    safetensors st;
    st_open(&st, path);
    int entk = st_meta(&st, "entk_model") != NULL;
    st_close(&st);
    if (!entk)
        entk_die(ENTK_EXIT_INPUT, "%s: a safetensors file without entk_model in its metadata: not an entk-train checkpoint "
                                  "(a Gemma 3 model is given as its directory)", path);
    return 1;
}
