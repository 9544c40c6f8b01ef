#include "ntk/pca.h"
#include "core/blasenv.h"
#include "core/err.h"
#include "ntk/score.h"
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

void pca_top(const tensor *X, int64_t k, pca_result *out) {
    int64_t N = X->shape[0], D = X->shape[1], r = N < D ? N : D;
    if (N < 2 || k < 1 || k > r) entk_die(ENTK_EXIT_FAIL, "pca: %lld components of a %lld x %lld matrix", (long long)k, (long long)N, (long long)D);
    memset(out, 0, sizeof *out);
    out->k = k, out->N = N, out->D = D;
    out->mean = tensor_1d(DT_F64, D);
    double *mu = out->mean.data, *a = xmalloc((size_t)(N * D) * sizeof(double));
    const double *x = X->data;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < D; j++) mu[j] += x[i * D + j];
    for (int64_t j = 0; j < D; j++) mu[j] /= (double)N;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < D; j++) a[i * D + j] = x[i * D + j] - mu[j];
    double *s = xmalloc((size_t)r * sizeof(double)), *u = xmalloc((size_t)(N * r) * sizeof(double)),
           *vt = xmalloc((size_t)(r * D) * sizeof(double));
    int blas = blas_one_thread(); /* the scores' bits must not follow the thread count */
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)N, (lapack_int)D, a, (lapack_int)D, s, u,
                                     (lapack_int)r, vt, (lapack_int)D);
    blas_threads_restore(blas);
    if (info != 0) entk_die(ENTK_EXIT_FAIL, "pca: SVD failed (info %d)", (int)info);
    out->scores = tensor_2d(DT_F64, k, N);
    out->components = tensor_2d(DT_F64, k, D);
    out->variance = xmalloc((size_t)k * sizeof(double));
    out->ratio = xmalloc((size_t)k * sizeof(double));
    double ss = 0;
    for (int64_t j = 0; j < r; j++) ss += s[j] * s[j];
    out->total = ss / (double)(N - 1);
    for (int64_t j = 0; j < k; j++) {
        double *sc = (double *)out->scores.data + j * N, *c = (double *)out->components.data + j * D;
        for (int64_t i = 0; i < N; i++) sc[i] = u[i * r + j] * s[j];
        memcpy(c, vt + j * D, (size_t)D * sizeof(double));
        if (score_fix_sign(sc, N) < 0)
            for (int64_t d = 0; d < D; d++) c[d] = -c[d];
        out->variance[j] = s[j] * s[j] / (double)(N - 1);
        out->ratio[j] = ss > 0 ? s[j] * s[j] / ss : 0;
    }
    free(a); free(s); free(u); free(vt);
}

void pca_free(pca_result *p) {
    tensor_free(&p->scores);
    tensor_free(&p->components);
    tensor_free(&p->mean);
    free(p->variance);
    free(p->ratio);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------------ activations */

static void input_key(const frame_reader *r, const char *name, char *out, size_t n) {
    out[0] = 0;
    for (int i = 0; i < r->h.ninputs; i++)
        if (strcmp(r->h.input_name[i], name) == 0) snprintf(out, n, "%s", r->h.input_key[i].hex);
}

int pca_acts_read(frame_reader *r, const char *name, pca_acts *a) {
    memset(a, 0, sizeof *a);
    input_key(r, "model", a->model, sizeof a->model);
    input_key(r, "ids", a->windows, sizeof a->windows);
    int64_t *rows = NULL;   /* per layer: windows so far */
    double **buf = NULL;    /* per layer: their rows */
    int cap = 0;
    frame f;
    while (frame_read(r, &f)) {
        if (strcmp(f.kind, "tensor") != 0 || strcmp(f.name, name) != 0) continue;
        if (!dtype_is_float(f.t.dt) || f.t.ndim != 3)
            frame_fail(r, &f, "activations must be float [n, positions, dim], not %s", tensor_desc(&f.t, (char[64]){0}, 64));
        if (f.t.shape[1] != 1)
            frame_fail(r, &f, "%lld positions per window: PCA takes one (entk-forward --positions last)", (long long)f.t.shape[1]);
        int64_t layer = -1, w0 = -1, nb = f.t.shape[0], D = f.t.shape[2];
        if (!meta_get_i64(&f.meta, "layer", &layer)) frame_fail(r, &f, "no layer in meta");
        if (!meta_get_i64(&f.meta, "window0", &w0)) frame_fail(r, &f, "no window0 in meta");
        int l = 0;
        while (l < a->nlayers && a->layer[l] != layer) l++;
        if (l == a->nlayers) {
            if (a->nlayers == cap) {
                cap = cap ? 2 * cap : 8;
                a->layer = xrealloc(a->layer, (size_t)cap * sizeof *a->layer);
                a->X = xrealloc(a->X, (size_t)cap * sizeof *a->X);
                rows = xrealloc(rows, (size_t)cap * sizeof *rows);
                buf = xrealloc(buf, (size_t)cap * sizeof *buf);
            }
            a->layer[l] = layer;
            a->X[l] = (tensor){.dt = DT_F64, .ndim = 2, .shape = {0, D}};
            rows[l] = 0;
            buf[l] = NULL;
            a->nlayers++;
        }
        tensor *X = &a->X[l];
        if (D != X->shape[1]) frame_fail(r, &f, "layer %lld: width %lld after %lld", (long long)layer, (long long)D, (long long)X->shape[1]);
        if (w0 != rows[l])
            frame_fail(r, &f, "layer %lld: windows from %lld, expected %lld (frames missing or out of order)", (long long)layer,
                       (long long)w0, (long long)rows[l]);
        buf[l] = xrealloc(buf[l], (size_t)((rows[l] + nb) * D) * sizeof(double) + 1);
        double *dst = buf[l] + rows[l] * D;
        for (int64_t i = 0; i < nb * D; i++) dst[i] = tensor_get(&f.t, i);
        rows[l] += nb;
        X->shape[0] = rows[l];
    }
    for (int l = 1; l < a->nlayers; l++)
        if (rows[l] != rows[0])
            entk_die(ENTK_EXIT_INPUT, "%s: layer %lld has %lld windows, layer %lld has %lld", r->src, (long long)a->layer[l],
                     (long long)rows[l], (long long)a->layer[0], (long long)rows[0]);
    for (int l = 0; l < a->nlayers; l++) {
        a->X[l] = tensor_2d(DT_F64, rows[l], a->X[l].shape[1]);
        memcpy(a->X[l].data, buf[l], tensor_nbytes(&a->X[l]));
        free(buf[l]);
    }
    free(rows);
    free(buf);
    return a->nlayers;
}

void pca_acts_free(pca_acts *a) {
    for (int l = 0; l < a->nlayers; l++) tensor_free(&a->X[l]);
    free(a->X);
    free(a->layer);
    memset(a, 0, sizeof *a);
}
