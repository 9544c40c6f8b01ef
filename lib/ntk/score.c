#include "ntk/score.h"
#include "core/blasenv.h"
#include "core/err.h"
#include "core/linalg.h"
#include "core/rng.h"
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ metrics */

typedef struct {
    double s;
    uint8_t y;
} scored;

static int by_score_desc(const void *a, const void *b) {
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return x > y ? -1 : x < y;
}

/* One walk down the tied groups gives all four metrics: each group adds its positives tp_g and
 * negatives fp_g at once, which is what makes ties count as scikit-learn counts them. */
int score_metrics_of(const double *s, const uint8_t *y, int64_t n, double sign, score_metrics *m) {
    memset(m, 0, sizeof *m);
    m->n = n;
    int64_t P = 0;
    for (int64_t i = 0; i < n; i++) P += y[i] != 0;
    m->positives = P;
    int64_t Q = n - P;
    if (P == 0 || Q == 0) return 0;
    scored *v = xmalloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (scored){sign * s[i], y[i] != 0};
    qsort(v, (size_t)n, sizeof *v, by_score_desc);
    int64_t tp = 0, fp = 0;      /* counts above the current group */
    double ap = 0, hits = -1;    /* hits: positives in the top P places, once known */
    int64_t area2 = 0;           /* twice the ROC area in units of 1/(P Q) */
    for (int64_t a = 0, b; a < n; a = b) {
        int64_t tg = 0;
        for (b = a; b < n && v[b].s == v[a].s; b++) tg += v[b].y;
        int64_t fg = (b - a) - tg;
        if (hits < 0 && b >= P) hits = (double)tp + (double)(P - a) * (double)tg / (double)(b - a);
        area2 += fg * (2 * tp + tg);
        tp += tg;
        fp += fg;
        if (tg) ap += (double)tg * ((double)tp / (double)(tp + fp));
    }
    free(v);
    m->ap = ap / (double)P;     /* one division: a perfect ranking gives exactly 1 */
    m->auroc = (double)area2 / (2.0 * (double)P * (double)Q);
    m->precision = hits / (double)P;
    m->enrichment = m->precision / ((double)P / (double)n);
    return 1;
}

/* ------------------------------------------------------------------ split and choice */

void score_split(const int32_t *cls, int64_t n, uint64_t seed, uint8_t *train) {
    if (n <= 0) return;
    int32_t nc = 0;
    for (int64_t i = 0; i < n; i++) {
        if (cls[i] < 0) entk_die(ENTK_EXIT_INPUT, "score: window %lld has class %d", (long long)i, cls[i]);
        if (cls[i] + 1 > nc) nc = cls[i] + 1;
    }
    rng g;
    rng_seed(&g, seed);
    int64_t *idx = xmalloc((size_t)(n + 1) * sizeof *idx), *perm = xmalloc((size_t)(n + 1) * sizeof *perm);
    memset(train, 0, (size_t)n);
    for (int32_t c = 0; c < nc; c++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (cls[i] == c) idx[m++] = i;
        rng_permutation(&g, m, perm);
        for (int64_t i = 0; i < m / 2; i++) train[idx[perm[i]]] = 1;
    }
    free(idx);
    free(perm);
}

/* The windows of one half: their labels, and the rows of S restricted to them. */
typedef struct {
    int64_t n;
    uint8_t *y;
    double *s;      /* [k, n] */
} half;

static half take_half(const double *S, int64_t k, int64_t N, const uint8_t *y, const uint8_t *train, int want) {
    half h = {0};
    for (int64_t i = 0; i < N; i++) h.n += train[i] == want;
    h.y = xmalloc((size_t)h.n + 1);
    h.s = xmalloc((size_t)(k * h.n + 1) * sizeof(double));
    for (int64_t i = 0, t = 0; i < N; i++) {
        if (train[i] != want) continue;
        h.y[t] = y[i] != 0;
        for (int64_t j = 0; j < k; j++) h.s[j * h.n + t] = S[j * N + i];
        t++;
    }
    return h;
}

/* Writes why into r->skipped when the half cannot be scored; returns whether it did. */
static int lacking(const half *h, const char *which, score_label_result *r) {
    int64_t P = 0;
    for (int64_t i = 0; i < h->n; i++) P += h->y[i];
    if (P == 0) snprintf(r->skipped, sizeof r->skipped, "no positives in the %s half", which);
    else if (P == h->n) snprintf(r->skipped, sizeof r->skipped, "no negatives in the %s half", which);
    return P == 0 || P == h->n;
}

void score_label(const double *S, int64_t k, int64_t N, const uint8_t *y, const uint8_t *train, score_label_result *r) {
    memset(r, 0, sizeof *r);
    half tr = take_half(S, k, N, y, train, 1), te = take_half(S, k, N, y, train, 0);
    r->n_train = tr.n;
    r->n_test = te.n;
    for (int64_t i = 0; i < tr.n; i++) r->pos_train += tr.y[i];
    for (int64_t i = 0; i < te.n; i++) r->pos_test += te.y[i];
    if (!lacking(&tr, "train", r) && !lacking(&te, "test", r)) {
        r->train_ap = -1;
        for (int64_t j = 0; j < k; j++)
            for (int sg = 1; sg >= -1; sg -= 2) {
                score_metrics m;
                score_metrics_of(tr.s + j * tr.n, tr.y, tr.n, sg, &m);
                if (m.ap > r->train_ap) {
                    r->train_ap = m.ap;
                    r->direction = (int)j;
                    r->sign = sg;
                }
            }
        score_metrics_of(te.s + (int64_t)r->direction * te.n, te.y, te.n, r->sign, &r->test);
    }
    free(tr.y); free(tr.s); free(te.y); free(te.s);
}

void score_macro_of(const score_label_result *r, int n, score_macro *m) {
    memset(m, 0, sizeof *m);
    for (int i = 0; i < n; i++) {
        if (r[i].skipped[0]) {
            m->skipped++;
            continue;
        }
        m->scored++;
        m->ap += r[i].test.ap;
        m->auroc += r[i].test.auroc;
        m->precision += r[i].test.precision;
        m->enrichment += r[i].test.enrichment;
    }
    if (m->scored) {
        m->ap /= m->scored;
        m->auroc /= m->scored;
        m->precision /= m->scored;
        m->enrichment /= m->scored;
    }
}

/* ------------------------------------------------------------------ rank-1 score */

double score_fix_sign(double *v, int64_t n) {
    int64_t big = 0;
    for (int64_t i = 1; i < n; i++)
        if (fabs(v[i]) > fabs(v[big])) big = i;
    if (n == 0 || v[big] >= 0) return 1;
    for (int64_t i = 0; i < n; i++) v[i] = -v[i];
    return -1;
}

/* The Gram of the smaller side costs N D min(N, D) and one eigenpair of a min(N, D) square, against
 * a full SVD of the N x D matrix: at N = 1024, D = 640 several times less work. The top singular
 * vector is then as accurate as the gap sigma1^2 - sigma2^2 allows, which is what defines it. */
double score_rank1(const double *A, int64_t N, int64_t D, double *score) {
    int tall = N >= D;   /* Gram A^T A (D x D) when tall, else A A^T (N x N) */
    int64_t m = tall ? D : N;
    double *G = xcalloc((size_t)(m * m), sizeof(double)), w[1], *z = xmalloc((size_t)m * sizeof(double));
    int blas = blas_one_thread(); /* a score's bits must not follow the thread count */
    la_syrk_upper(DT_F64, tall, m, tall ? N : D, 1.0, A, D, 0.0, G, m);
    lapack_int found, *isuppz = xmalloc(2 * sizeof(lapack_int));
    lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', (lapack_int)m, G, (lapack_int)m, 0, 0, (lapack_int)m,
                                     (lapack_int)m, 0.0, &found, w, z, 1, isuppz);
    if (info != 0 || found != 1) entk_die(ENTK_EXIT_FAIL, "score: syevr failed (info %d)", (int)info);
    double sigma;
    if (tall) {
        la_gemv(DT_F64, 0, N, D, 1.0, A, D, z, 1, 0.0, score, 1);     /* A v1 = sigma1 u1 */
        double ss = 0;
        for (int64_t i = 0; i < N; i++) ss += score[i] * score[i];
        sigma = sqrt(ss);
    } else {
        double *v = xmalloc((size_t)D * sizeof(double)), ss = 0;
        la_gemv(DT_F64, 1, N, D, 1.0, A, D, z, 1, 0.0, v, 1);         /* A^T u1 = sigma1 v1 */
        for (int64_t j = 0; j < D; j++) ss += v[j] * v[j];
        sigma = sqrt(ss);
        for (int64_t i = 0; i < N; i++) score[i] = sigma * z[i];
        free(v);
    }
    blas_threads_restore(blas);
    score_fix_sign(score, N);
    free(G); free(z); free(isuppz);
    return sigma;
}

/* ------------------------------------------------------------------ scores streams */

void scores_write(frame_writer *w, const score_set *s, const meta *extra) {
    meta m = extra ? *extra : (meta){0};
    meta_str(&m, "method", s->method);
    meta_i64(&m, "layer", s->layer);
    meta_str(&m, "model", s->model);
    meta_str(&m, "windows", s->windows);
    meta_f64s(&m, "values", s->values, s->scores.shape[0]);
    meta_str(&m, "values_are", s->values_are);
    frame_write_tensor(w, "scores", &s->scores, &m);
}

int scores_read(frame_reader *r, score_set *s) {
    frame f;
    int found = 0;
    while (frame_read(r, &f)) {
        if (strcmp(f.kind, "tensor") != 0 || strcmp(f.name, "scores") != 0) continue;
        if (found) frame_fail(r, &f, "a second 'scores' frame in one stream");
        frame_expect_shape(r, &f, 2, (int64_t[]){-1, -1});
        memset(s, 0, sizeof *s);
        s->layer = -1;
        if (!meta_get_str(&f.meta, "method", s->method, sizeof s->method)) frame_fail(r, &f, "no method in meta");
        meta_get_i64(&f.meta, "layer", &s->layer);
        meta_get_str(&f.meta, "model", s->model, sizeof s->model);
        meta_get_str(&f.meta, "windows", s->windows, sizeof s->windows);
        meta_get_str(&f.meta, "values_are", s->values_are, sizeof s->values_are);
        int64_t k = f.t.shape[0];
        s->values = xcalloc((size_t)k + 1, sizeof(double));
        const msgpack_object *v = meta_get(&f.meta, "values");
        if (v && (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size != (uint32_t)k))
            frame_fail(r, &f, "meta values must be an array of %lld numbers", (long long)k);
        for (int64_t j = 0; v && j < k; j++) {
            const msgpack_object *e = &v->via.array.ptr[j];
            if (e->type == MSGPACK_OBJECT_FLOAT32 || e->type == MSGPACK_OBJECT_FLOAT64) s->values[j] = e->via.f64;
            else if (e->type == MSGPACK_OBJECT_POSITIVE_INTEGER) s->values[j] = (double)e->via.u64;
            else if (e->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) s->values[j] = (double)e->via.i64;
            else frame_fail(r, &f, "meta values must be numbers");
        }
        s->scores = frame_take(r, &f, DT_F64);
        const double *d = s->scores.data;
        for (int64_t i = 0; i < tensor_numel(&s->scores); i++)
            if (!isfinite(d[i]))
                frame_fail(r, &f, "non-finite score at direction %lld, window %lld", (long long)(i / f.t.shape[1] + 1),
                           (long long)(i % f.t.shape[1]));
        found = 1;
    }
    return found;
}

void scores_free(score_set *s) {
    tensor_free(&s->scores);
    free(s->values);
    s->values = NULL;
}

static void record_start(meta *m, const score_set *s, const char *group) {
    meta_str(m, "method", s->method);
    meta_i64(m, "layer", s->layer);
    meta_str(m, "group", group);
}

void score_write_label(frame_writer *w, const score_set *s, const char *group, const char *label, const score_label_result *r) {
    meta m = {0};
    record_start(&m, s, group);
    meta_str(&m, "label", label);
    if (r->skipped[0]) {
        meta_str(&m, "skipped", r->skipped);
    } else {
        meta_i64(&m, "direction", r->direction + 1);
        meta_i64(&m, "sign", r->sign);
        meta_f64(&m, "train_ap", r->train_ap);
        meta_f64(&m, "ap", r->test.ap);
        meta_f64(&m, "auroc", r->test.auroc);
        meta_f64(&m, "precision_at_quota", r->test.precision);
        meta_f64(&m, "enrichment", r->test.enrichment);
        meta_f64(&m, "prevalence", (double)r->pos_test / (double)r->n_test);
    }
    meta_i64(&m, "positives_train", r->pos_train);
    meta_i64(&m, "positives_test", r->pos_test);
    meta_i64(&m, "n_train", r->n_train);
    meta_i64(&m, "n_test", r->n_test);
    frame_write_record(w, "label_score", &m);
}

void score_write_macro(frame_writer *w, const score_set *s, const char *group, const score_macro *mc) {
    meta m = {0};
    record_start(&m, s, group);
    meta_i64(&m, "labels", mc->scored);
    meta_i64(&m, "skipped", mc->skipped);
    if (mc->scored) {
        meta_f64(&m, "ap", mc->ap);
        meta_f64(&m, "auroc", mc->auroc);
        meta_f64(&m, "precision_at_quota", mc->precision);
        meta_f64(&m, "enrichment", mc->enrichment);
    }
    frame_write_record(w, "macro", &m);
}
