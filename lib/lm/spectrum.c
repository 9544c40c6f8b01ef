#include "lm/spectrum.h"
#include "core/blasenv.h"
#include "core/err.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    lm_entk *op;
    int expected;       /* products a fixed budget takes (0: not known in advance) */
    double t0;
} run_ctx;

static void fmt_time(double s, char *buf, size_t n) {
    if (s < 90) snprintf(buf, n, "%.0f s", s);
    else if (s < 5400) snprintf(buf, n, "%.1f min", s / 60);
    else snprintf(buf, n, "%.1f h", s / 3600);
}

static void apply(void *ctx, const double *x, double *y, double *side, int call) {
    run_ctx *c = ctx;
    lm_entk_product(c->op, x, y, side, call);
    long computed, cached;
    double flops, seconds;
    lm_entk_counts(c->op, &computed, &cached, &flops, &seconds);
    double el = entk_now() - c->t0;
    char left[64] = "";
    if (c->expected > 0) {
        char t[24];
        fmt_time(el / (call + 1) * (c->expected - call - 1), t, sizeof t);
        snprintf(left, sizeof left, ", about %s left", t);
    }
    if (c->expected > 0)
        entk_log("lanczos: product %d/%d, %.2f s so far (%ld chunks computed, %ld from the cache, %.1f GFLOP/s)%s", call + 1,
                 c->expected, el, computed, cached, seconds > 0 ? flops / seconds * 1e-9 : 0.0, left);
    else
        entk_log("lanczos: product %d, %.2f s so far (%ld chunks computed, %ld from the cache, %.1f GFLOP/s)", call + 1, el,
                 computed, cached, seconds > 0 ? flops / seconds * 1e-9 : 0.0);
}

void lm_spectrum_run(lm_entk *op, const lanczos_opts *o, lm_spectrum *s) {
    lanczos_opts lo = *o;
    lo.n = op->P;
    lo.n_side = (int64_t)op->N * op->D;
    run_ctx ctx = {op, o->restart ? 0 : (o->steps < op->P ? o->steps : (int)op->P), entk_now()};
    lanczos_result r;
    lanczos_run(apply, &ctx, &lo, &r);
    int k = r.k, D = op->D;
    size_t nd = (size_t)op->N * D;
    memset(s, 0, sizeof *s);
    s->k = k;
    s->cycles = r.cycles;
    s->products = r.products;
    s->values = r.values;
    s->bounds = r.bounds;
    s->converged = r.converged;
    s->bounds_w = xmalloc((size_t)k * sizeof(double));
    s->vectors = xcalloc((size_t)k * nd, sizeof(double));
    double top = r.values[0] > 0 ? r.values[0] : 1;
    int blas = blas_one_thread();
    for (int i = 0; i < k; i++) {
        double th = r.values[i];
        s->bounds_w[i] = th > 0 ? sqrt(top / th) * r.bounds[i] : INFINITY;
        /* w = S^1/2 (J v) / sqrt(theta), window by window */
        const double *jv = r.side + (size_t)i * nd;
        double *w = s->vectors + (size_t)i * nd;
        double sc = th > 0 ? 1 / sqrt(th) : 0;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, op->N, D, D, sc, jv, D, op->Shalf, D, 0.0, w, D);
    }
    blas_threads_restore(blas);
    free(r.vectors);
    free(r.side);
    s->seconds = entk_now() - ctx.t0;
}

void lm_spectrum_free(lm_spectrum *s) {
    free(s->values);
    free(s->bounds);
    free(s->bounds_w);
    free(s->converged);
    free(s->vectors);
    memset(s, 0, sizeof *s);
}
