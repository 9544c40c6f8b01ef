#include "ntk/lanczos.h"
#include "core/blasenv.h"
#include "core/err.h"
#include "core/rng.h"
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Vector reductions run over fixed blocks of BLK elements whose partial sums are added in block
 * order: the same bits whatever the number of threads (a BLAS dot or gemv may split its sum by
 * thread). */
#define BLK ((int64_t)1 << 14)

/* c[i] = Q_i . w for i < nq (Q: nq vectors of n, ld n) */
static void dots(const double *Q, int nq, const double *w, int64_t n, double *c) {
    int64_t nb = (n + BLK - 1) / BLK;
    double *part = xcalloc((size_t)(nb * nq), sizeof(double));
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nb; b++) {
        int64_t e0 = b * BLK, e1 = e0 + BLK < n ? e0 + BLK : n;
        for (int i = 0; i < nq; i++) {
            const double *q = Q + (size_t)i * n;
            double s = 0;
            for (int64_t e = e0; e < e1; e++) s += q[e] * w[e];
            part[b * nq + i] = s;
        }
    }
    for (int i = 0; i < nq; i++) c[i] = 0;
    for (int64_t b = 0; b < nb; b++)
        for (int i = 0; i < nq; i++) c[i] += part[b * nq + i];
    free(part);
}

/* Sums over the vectors run a block of elements at a time, vector after vector, into a block of
 * partial sums: each vector is then read as one sequential stream, where an element-by-element
 * loop over all of them keeps one stream per vector open (at 50 vectors of a million elements,
 * more than the prefetchers follow: this was half of a Lanczos step's time on small N). Each
 * element's sum still adds the vectors in order, so the bits are those of the plain loop. */
#define SBLK 512

/* w -= sum_i c[i] Q_i */
static void subtract(double *w, const double *Q, int nq, const double *c, int64_t n) {
    int64_t nb = (n + SBLK - 1) / SBLK;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nb; b++) {
        int64_t e0 = b * SBLK, len = e0 + SBLK < n ? SBLK : n - e0;
        double s[SBLK] = {0};
        for (int i = 0; i < nq; i++) {
            const double *q = Q + (size_t)i * n + e0;
            for (int64_t e = 0; e < len; e++) s[e] += c[i] * q[e];
        }
        for (int64_t e = 0; e < len; e++) w[e0 + e] -= s[e];
    }
}

/* out_k = sum_i Y[i, k] V_i for k < p (V: m vectors of n; Y: m x m column k = Ritz vector k) */
static void combine(double *out, const double *V, int m, const double *Y, int ldy, int p, int64_t n) {
    int64_t nb = (n + SBLK - 1) / SBLK;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nb; b++) {
        int64_t e0 = b * SBLK, len = e0 + SBLK < n ? SBLK : n - e0;
        for (int k = 0; k < p; k++) {
            double s[SBLK] = {0};
            for (int i = 0; i < m; i++) {
                const double *v = V + (size_t)i * n + e0, y = Y[(size_t)i * ldy + k];
                for (int64_t e = 0; e < len; e++) s[e] += y * v[e];
            }
            memcpy(out + (size_t)k * n + e0, s, (size_t)len * sizeof(double));
        }
    }
}

static double norm2(const double *w, int64_t n) {
    double s;
    dots(w, 1, w, n, &s);
    return sqrt(s);
}

/* w orthogonalised against Q_0..Q_{nq-1} twice; c gets the total coefficients */
static void orthogonalise(double *w, const double *Q, int nq, int64_t n, double *c) {
    double *c2 = xmalloc((size_t)(nq ? nq : 1) * sizeof(double));
    dots(Q, nq, w, n, c);
    subtract(w, Q, nq, c, n);
    dots(Q, nq, w, n, c2);
    subtract(w, Q, nq, c2, n);
    for (int i = 0; i < nq; i++) c[i] += c2[i];
    free(c2);
}

static void random_unit(double *w, int64_t n, rng *g) {
    for (int64_t e = 0; e < n; e++) w[e] = rng_normal(g);
    double s = norm2(w, n);
    for (int64_t e = 0; e < n; e++) w[e] /= s;
}

/* Eigenpairs of the symmetric m x m H (ld ldh), descending: theta[m], Y (m x m, column j = vector j). */
static void small_eig(const double *H, int ldh, int m, double *theta, double *Y) {
    double *A = xmalloc((size_t)m * m * sizeof(double)), *w = xmalloc((size_t)m * sizeof(double));
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) A[(size_t)i * m + j] = 0.5 * (H[(size_t)i * ldh + j] + H[(size_t)j * ldh + i]);
    int blas = blas_one_thread();
    if (LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', m, A, m, w) != 0) entk_die(ENTK_EXIT_FAIL, "Lanczos: dsyev failed");
    blas_threads_restore(blas);
    for (int j = 0; j < m; j++) { /* ascending -> descending */
        theta[j] = w[m - 1 - j];
        for (int i = 0; i < m; i++) Y[(size_t)i * m + j] = A[(size_t)i * m + (m - 1 - j)];
    }
    free(A);
    free(w);
}

void lanczos_run(lanczos_apply_fn apply, void *ctx, const lanczos_opts *o, lanczos_result *r) {
    int64_t n = o->n, ns = o->n_side;
    int m = o->steps < n ? o->steps : (int)n;
    int k = o->k < m ? o->k : m;
    if (k < 1 || m < 1) entk_die(ENTK_EXIT_USAGE, "Lanczos needs at least one step and one eigenpair");
    int max_products = o->restart ? (o->max_products > 0 ? o->max_products : 20 * m) : m;
    double *Q = xmalloc((size_t)(m + 1) * n * sizeof(double));          /* basis, one vector per row */
    double *side = ns ? xmalloc((size_t)m * ns * sizeof(double)) : NULL; /* side images of Q_0..Q_{m-1} */
    double *H = xcalloc((size_t)(m + 1) * (m + 1), sizeof(double));
    double *c = xmalloc((size_t)(m + 1) * sizeof(double));
    double *theta = xmalloc((size_t)m * sizeof(double)), *Y = xmalloc((size_t)m * m * sizeof(double));
    rng g;
    rng_seed(&g, o->seed);
    random_unit(Q, n, &g);
    int p = 0;          /* basis vectors carried over from the last cycle (their products are known) */
    double beta = 0;    /* coupling of the newest basis vector */
    int products = 0, cycles = 0;
    for (;;) {
        cycles++;
        for (int j = p; j < m; j++) {
            double *w = Q + (size_t)(j + 1) * n;
            apply(ctx, Q + (size_t)j * n, w, side ? side + (size_t)j * ns : NULL, products++);
            orthogonalise(w, Q, j + 1, n, c);
            for (int i = 0; i <= j; i++) H[(size_t)i * (m + 1) + j] = H[(size_t)j * (m + 1) + i] = c[i];
            beta = norm2(w, n);
            double scale = 0;
            for (int i = 0; i <= j; i++) scale = fmax(scale, fabs(H[(size_t)i * (m + 1) + i]));
            if (beta <= 1e-12 * scale || beta == 0) {
                /* an invariant subspace: go on from a new direction, not coupled to the old ones */
                random_unit(w, n, &g);
                orthogonalise(w, Q, j + 1, n, c);
                double s = norm2(w, n);
                for (int64_t e = 0; e < n; e++) w[e] /= s;
                beta = 0;
            } else {
                for (int64_t e = 0; e < n; e++) w[e] /= beta;
            }
            if (j + 1 < m) H[(size_t)(j + 1) * (m + 1) + j] = H[(size_t)j * (m + 1) + j + 1] = beta;
        }
        small_eig(H, m + 1, m, theta, Y);
        double top = fabs(theta[0]) > 0 ? fabs(theta[0]) : 1;
        int conv = 0;
        for (int i = 0; i < k; i++) conv += fabs(beta * Y[(size_t)(m - 1) * m + i]) <= o->tol * top;
        entk_log("lanczos: cycle %d, %d products: theta_1 = %.6g, theta_%d = %.6g, %d of %d converged", cycles, products,
                 theta[0], k, theta[k - 1], conv, k);
        if (!o->restart || conv == k || products + (m - (k + (m - k) / 2)) > max_products) break;
        /* thick restart: keep the best p Ritz vectors and the next basis vector */
        p = k + (m - k) / 2;
        if (p > m - 1) p = m - 1;
        double *keep = xmalloc((size_t)p * n * sizeof(double));
        combine(keep, Q, m, Y, m, p, n);
        memcpy(Q, keep, (size_t)p * n * sizeof(double));
        memmove(Q + (size_t)p * n, Q + (size_t)m * n, (size_t)n * sizeof(double));
        free(keep);
        if (side) {
            double *ks = xmalloc((size_t)p * ns * sizeof(double));
            combine(ks, side, m, Y, m, p, ns);
            memcpy(side, ks, (size_t)p * ns * sizeof(double));
            free(ks);
        }
        memset(H, 0, (size_t)(m + 1) * (m + 1) * sizeof(double));
        for (int i = 0; i < p; i++) {
            H[(size_t)i * (m + 1) + i] = theta[i];
            H[(size_t)i * (m + 1) + p] = H[(size_t)p * (m + 1) + i] = beta * Y[(size_t)(m - 1) * m + i];
        }
    }
    r->k = k;
    r->cycles = cycles;
    r->products = products;
    r->values = xmalloc((size_t)k * sizeof(double));
    r->bounds = xmalloc((size_t)k * sizeof(double));
    r->converged = xmalloc((size_t)k);
    double top = fabs(theta[0]) > 0 ? fabs(theta[0]) : 1;
    for (int i = 0; i < k; i++) {
        r->values[i] = theta[i];
        r->bounds[i] = fabs(beta * Y[(size_t)(m - 1) * m + i]);
        r->converged[i] = r->bounds[i] <= o->tol * top;
    }
    r->vectors = xmalloc((size_t)k * n * sizeof(double));
    combine(r->vectors, Q, m, Y, m, k, n);
    r->side = NULL;
    if (side) {
        r->side = xmalloc((size_t)k * ns * sizeof(double));
        combine(r->side, side, m, Y, m, k, ns);
    }
    free(Q);
    free(side);
    free(H);
    free(c);
    free(theta);
    free(Y);
}

void lanczos_result_free(lanczos_result *r) {
    free(r->values);
    free(r->bounds);
    free(r->converged);
    free(r->vectors);
    free(r->side);
    memset(r, 0, sizeof *r);
}
