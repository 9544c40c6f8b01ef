#include "ntk/eig.h"
#include "core/err.h"
#include "core/linalg.h"
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double trace, fro, maxdiag;
    double asym;        /* ||K - K^T||_F / (2 ||K||_F): 0 for entk's own Grams */
    int64_t wi, wj;     /* the most asymmetric pair */
} kstats;

static double eps_of(dtype dt) { return dt == DT_F32 ? FLT_EPSILON : DBL_EPSILON; }
static double accept_bound(dtype dt, int64_t n);

/* One pass over K: trace, largest diagonal entry, Frobenius norm, asymmetry; dies on a non-finite
 * entry.
 * Symmetry is checked, not assumed, but in norm, not entry by entry. entk's own Grams are exactly
 * symmetric (gram_finish mirrors a triangle); a Gram made elsewhere by a gemm is symmetric only to
 * rounding, and an entry's rounding error scales with the norms of its two rows, not with the entry
 * itself: an entrywise relative test refused a small entry of an f32 Gram (-4.89622e-05 vs
 * -4.89609e-05) on OpenBLAS's Haswell kernels. The solvers work on the symmetric part
 * (K + K^T) / 2, whose eigenvalues differ from those of any symmetric K' with ||K - K'|| small by
 * at most that much (Weyl), so what decides is ||K - K^T||_F / (2 ||K||_F) against the bound the
 * results themselves are accepted at (accept_bound, 10 eps sqrt(N)): within it the asymmetry is
 * below the results' own rounding; beyond it K is not a Gram, which means an upstream bug. */
static kstats scan(const tensor *K) {
    dtype dt = K->dt;
    int64_t n = K->shape[0];
    const void *A = K->data;
    kstats st = {0, 0, -INFINITY, 0, 0, 0};
    for (int64_t i = 0; i < n * n; i++) {
        double v = la_get(dt, A, i);
        if (!isfinite(v)) entk_die(ENTK_EXIT_INPUT, "eig: K has a non-finite entry at (%lld, %lld)", (long long)(i / n), (long long)(i % n));
        st.fro += v * v;
    }
    for (int64_t i = 0; i < n; i++) {
        double d = la_get(dt, A, i * n + i);
        st.trace += d;
        if (d > st.maxdiag) st.maxdiag = d;
    }
    st.fro = sqrt(st.fro);
    double a2 = 0, worst = -1;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) {
            double d = la_get(dt, A, i * n + j) - la_get(dt, A, j * n + i);
            a2 += 2 * d * d;
            if (fabs(d) > worst) worst = fabs(d), st.wi = i, st.wj = j;
        }
    st.asym = sqrt(a2) / 2 / (st.fro > 0 ? st.fro : 1);
    if (st.asym > accept_bound(dt, n))
        entk_die(ENTK_EXIT_INPUT, "eig: K is not symmetric: ||K - K^T||_F / (2 ||K||_F) = %.2e exceeds 10 eps sqrt(N) = %.2e "
                 "(worst at (%lld, %lld): %.17g vs %.17g)", st.asym, accept_bound(dt, n), (long long)st.wi, (long long)st.wj,
                 la_get(dt, A, st.wi * n + st.wj), la_get(dt, A, st.wj * n + st.wi));
    return st;
}

/* The symmetric part (K + K^T) / 2 of a K that scan() accepted with rounding-level asymmetry: both
 * solvers and the residuals then see one matrix, whichever triangle they read. NULL when K is
 * exactly symmetric (entk's own Grams), which needs no copy. */
static tensor *symmetric_part(const tensor *K, const kstats *st, tensor *buf) {
    if (st->asym == 0) return NULL;
    int64_t n = K->shape[0];
    *buf = tensor_2d(K->dt, n, n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double v = 0.5 * (la_get(K->dt, K->data, i * n + j) + la_get(K->dt, K->data, j * n + i));
            la_set(K->dt, buf->data, i * n + j, v);
            la_set(K->dt, buf->data, j * n + i, v);
        }
    return buf;
}

/* max_i ||(V K)_i - mu_i v_i|| / fro over the rows v_i of V [k, n], given VK = V K [k, n]. mu_i is
 * the eigenvalue without the ridge: (K + rho I) v - (mu + rho) v = K v - mu v, so this is the
 * residual on the ridged K without forming it. */
static double worst_residual(dtype dt, const char *KV, const tensor *V, const double *mu, double fro) {
    int64_t n = V->shape[1], k = V->shape[0];
    double worst = 0;
    for (int64_t i = 0; i < k; i++) {
        double s = 0;
        for (int64_t j = 0; j < n; j++) {
            double d = la_get(dt, KV, i * n + j) - mu[i] * la_get(dt, V->data, i * n + j);
            s += d * d;
        }
        s = sqrt(s) / (fro > 0 ? fro : 1);
        if (s > worst) worst = s;
    }
    return worst;
}

/* The residuals of V against K, with one gemm for all k vectors. */
static double residual(const tensor *K, const tensor *V, const double *mu, double fro) {
    dtype dt = K->dt;
    int64_t n = K->shape[0], k = V->shape[0];
    char *KV = xmalloc((size_t)(k * n) * dtype_size(dt));
    la_gemm(dt, 0, 0, k, n, n, 1.0, V->data, n, K->data, n, 0.0, KV, n); /* V K = (K V^T)^T: K is symmetric */
    double worst = worst_residual(dt, KV, V, mu, fro);
    free(KV);
    return worst;
}

/* A fixed sign convention makes outputs comparable across runs and solvers: largest |entry|
 * positive (the first such entry on ties). */
static void fix_sign(dtype dt, int64_t n, void *v) {
    int64_t big = 0;
    for (int64_t r = 1; r < n; r++)
        if (fabs(la_get(dt, v, r)) > fabs(la_get(dt, v, big))) big = r;
    if (la_get(dt, v, big) < 0) la_scale(dt, n, -1.0, v);
}

/* Pivoted Cholesky K = G^T G + S, G [r, n]: row j is the factor's column j in K's own index order
 * (no permutation to undo), S the Schur complement left over. Stops once the largest diagonal of
 * S is <= tol and returns r, or returns -1 when rmax columns did not get there.
 * This is LAPACK's ?pstf2 (left-looking: column j = K[:, p] - G[0:j]^T G[0:j, p], one gemv; the
 * diagonal of S kept as K_ii - sum of squares) rather than a ?pstrf call, because pstrf cannot
 * stop early: on a full-rank 841 x 841 Gram it runs the whole factorization (~50 ms, a quarter of
 * syevr) before we may fall back, where this gives up after rmax columns (~17 ms at N/3, ~10 at
 * N/4); and at rank 64 it takes ~1 ms to pstrf's ~10 ms (pstrf updates the whole trailing matrix
 * per block). */
static int64_t pivoted_cholesky(dtype dt, int64_t n, const void *K, double tol, int64_t rmax, void *G) {
    size_t es = dtype_size(dt);
    double *sq = xcalloc((size_t)n, sizeof(double)); /* in double also for f32: the diagonal of S is a difference of near-equal terms */
    unsigned char *done = xcalloc((size_t)n, 1);
    int64_t rank = -1;
    for (int64_t j = 0; j <= rmax; j++) {
        int64_t p = -1;
        double best = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = la_get(dt, K, i * n + i) - sq[i];
            if (!done[i] && (p < 0 || d > best)) best = d, p = i;
        }
        if (p < 0 || best <= tol) { rank = j; break; }
        if (j == rmax) break;
        char *g = (char *)G + (size_t)(j * n) * es;
        memcpy(g, (const char *)K + (size_t)(p * n) * es, (size_t)n * es); /* row p = column p */
        la_gemv(dt, 1, j, n, -1.0, G, n, (char *)G + (size_t)p * es, n, 1.0, g, 1);
        double ajj = sqrt(best);
        for (int64_t i = 0; i < n; i++) la_set(dt, g, i, done[i] ? 0.0 : la_get(dt, g, i) / ajj);
        la_set(dt, g, p, ajj);
        done[p] = 1;
        for (int64_t i = 0; i < n; i++)
            if (!done[i]) { double v = la_get(dt, g, i); sq[i] += v * v; }
    }
    free(sq);
    free(done);
    return rank;
}

/* Pivoting stops when every remaining Schur diagonal is below tol. For a PSD K of rank r the
 * computed ones are rounding noise of size ~sqrt(r) eps K_ii (a sum of r squares subtracted from
 * K_ii), so tol must sit above sqrt(N) eps max(diag K) or noise columns get factored; and whatever
 * real part is discarded, the remainder check sees. On the Transformer W_U Gram (N = 841, rank 64),
 * tol = c eps max(diag K) finds r = 64 for c in [10, 1e7] (f64) and [10, 841] (f32), c < 10 adds
 * noise columns; sqrt(N) = 29 sits in both windows. */
static double pivot_tol(dtype dt, int64_t n, double maxdiag) {
    return sqrt((double)n) * eps_of(dt) * maxdiag;
}

/* Acceptance bound on ||K - F^T F||_F / ||K||_F and on the residuals. syevr's residuals and the
 * remainder of a clean factorization are both 0.1-0.2 eps sqrt(N) on the Grams we measured, so
 * 10 eps sqrt(N) accepts rounding with a wide margin yet rejects discarded signal: at
 * 1e3 eps sqrt(N) = 3.46e-3 (f32), pivoting the f32 W_U Gram only to rank 26 of 64 (remainder
 * 3.45e-3) would pass, with its top 20 eigenvalues off by up to 13%. */
static double accept_bound(dtype dt, int64_t n) { return 10 * eps_of(dt) * sqrt((double)n); }

/* Rank cap: the low-rank path's cost grows like N r^2 (pivoting, the SVD) plus N^2 r (the
 * remainder), syevr's like N^3. Measured on rank-r Grams X X^T (one OpenBLAS thread), low-rank vs
 * syevr: N = 841: r = 64 0.02 s vs 0.18 s, r = 210 0.095 vs 0.18, r = 280 0.15 vs 0.18, r = 350
 * 0.18 vs 0.12; N = 1600: r = 400 0.48 vs 0.71, r = 533 0.98 vs 1.01. Break-even is near N/3 at
 * both sizes, so the cap is N/4: still a 1.5-2x gain there, and a full-rank K wastes at most
 * N (N/4)^2 of pivoting (~10 ms at N = 841, 5% of syevr) before falling back. */
static int64_t rank_cap(int64_t n) { return n / 4; }

/* ||S||_F of a symmetric S [n, n] of which only the upper triangle is filled (a syrk's output). */
static double upper_fro(dtype dt, int64_t n, const void *S) {
    double s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = la_get(dt, S, i * n + i);
        s2 += v * v;
        for (int64_t j = i + 1; j < n; j++) {
            v = la_get(dt, S, i * n + j);
            s2 += 2 * v * v;
        }
    }
    return sqrt(s2);
}

/* The verified factor: K = G^T G to rounding with G [r, n], or 0 with why set. */
static int64_t factor_checked(const tensor *K, const kstats *st, int64_t rmax, char **Gout, char *why, size_t nwhy) {
    dtype dt = K->dt;
    int64_t n = K->shape[0];
    size_t es = dtype_size(dt);
    char *G = xmalloc((size_t)((rmax > 0 ? rmax : 1) * n) * es);
    int64_t r = pivoted_cholesky(dt, n, K->data, pivot_tol(dt, n, st->maxdiag), rmax, G);
    if (r < 0) {
        snprintf(why, nwhy, "rank > N/4 = %lld", (long long)rmax);
        free(G);
        return 0;
    }
    /* The remainder S = K - G^T G, formed explicitly. Its pivots only bound it when K is PSD: an
     * indefinite K can hide a large S behind zero diagonals (e.g. a [[0, a], [a, 0]] block), and
     * then the residuals of the returned vectors can be tiny while a top eigenvalue is missing.
     * With ||S|| small, Weyl's inequality puts every eigenvalue of K within ||S|| of those of G^T G. */
    char *S = xmalloc((size_t)(n * n) * es);
    memcpy(S, K->data, (size_t)(n * n) * es);
    la_syrk_upper(dt, 1, n, r, -1.0, G, n, 1.0, S, n);
    double rem = upper_fro(dt, n, S) / (st->fro > 0 ? st->fro : 1);
    free(S);
    if (rem > accept_bound(dt, n)) {
        snprintf(why, nwhy, "rank %lld leaves ||K - F^T F||_F / ||K||_F = %.1e", (long long)r, rem);
        free(G);
        return 0;
    }
    *Gout = G;
    return r;
}

/* Eigenpairs from a factor G [r, n] (K = G^T G), G consumed: the thin SVD of F = G^T; values
 * sigma^2 + ridge into out, the ridge-free ones into mu [k]. 0 if gesdd failed. */
static int factor_svd(dtype dt, int64_t n, int64_t r, char *G, int64_t k, eig_result *out, double *mu, char *why, size_t nwhy) {
    size_t es = dtype_size(dt);
    /* G's row-major buffer is F column-major, so no copy; U comes back column-major, one left
     * singular vector per contiguous column. */
    char *sv = xmalloc((size_t)r * es), *U = xmalloc((size_t)(n * r) * es), *VT = xmalloc((size_t)(r * r) * es);
    lapack_int info;
    if (dt == DT_F64)
        info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', (lapack_int)n, (lapack_int)r, (double *)G, (lapack_int)n, (double *)sv,
                              (double *)U, (lapack_int)n, (double *)VT, (lapack_int)r);
    else
        info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, 'S', (lapack_int)n, (lapack_int)r, (float *)G, (lapack_int)n, (float *)sv,
                              (float *)U, (lapack_int)n, (float *)VT, (lapack_int)r);
    free(G);
    free(VT);
    if (info == 0)
        for (int64_t i = 0; i < k; i++) {
            double s = la_get(dt, sv, i);
            mu[i] = s * s;
            la_set(dt, out->values.data, i, mu[i] + out->ridge_abs);
            char *v = (char *)out->vectors.data + (size_t)(i * n) * es;
            memcpy(v, U + (size_t)(i * n) * es, (size_t)n * es);
            fix_sign(dt, n, v);
        }
    else
        snprintf(why, nwhy, "gesdd failed (info %d)", (int)info);
    free(sv);
    free(U);
    return info == 0;
}

/* The low-rank path; 0 (with out->path saying why) when it does not apply or does not verify. */
static int solve_lowrank(const tensor *K, int64_t k, const kstats *st, eig_result *out) {
    dtype dt = K->dt;
    int64_t n = K->shape[0];
    char why[96];
    if (k > rank_cap(n)) {
        snprintf(out->path, sizeof out->path, "full: top %lld > N/4", (long long)k);
        return 0;
    }
    char *G;
    int64_t r = factor_checked(K, st, rank_cap(n), &G, why, sizeof why);
    if (r > 0 && r < k) {
        snprintf(why, sizeof why, "rank %lld < top %lld", (long long)r, (long long)k);
        free(G);
        r = 0;
    }
    double *mu = xmalloc((size_t)k * sizeof(double));
    if (r == 0 || !factor_svd(dt, n, r, G, k, out, mu, why, sizeof why)) {
        snprintf(out->path, sizeof out->path, "full: %s", why);
        free(mu);
        return 0;
    }
    out->residual = residual(K, &out->vectors, mu, st->fro);
    free(mu);
    if (out->residual > accept_bound(dt, n)) {
        snprintf(out->path, sizeof out->path, "full: low-rank residual %.1e", out->residual);
        return 0;
    }
    out->rank = r;
    snprintf(out->solver, sizeof out->solver, "pivchol-svd r=%lld", (long long)r);
    snprintf(out->path, sizeof out->path, "low-rank r=%lld", (long long)r);
    return 1;
}

static void solve_full(const tensor *K, int64_t k, const kstats *st, eig_result *out) {
    dtype dt = K->dt;
    int64_t n = K->shape[0];
    size_t es = dtype_size(dt);
    char *A = xmalloc((size_t)(n * n) * es); /* syevr destroys its input */
    memcpy(A, K->data, (size_t)(n * n) * es);
    for (int64_t i = 0; i < n; i++) la_set(dt, A, i * n + i, la_get(dt, A, i * n + i) + out->ridge_abs);
    char *w = xmalloc((size_t)n * es), *Z = xmalloc((size_t)(n * k) * es);
    lapack_int *isuppz = xmalloc((size_t)(2 * k + 2) * sizeof(lapack_int)), m = 0, info;
    lapack_int il = (lapack_int)(n - k + 1), iu = (lapack_int)n;
    /* K is symmetric, so its row-major buffer is also its column-major one: the column-major call
     * skips LAPACKE's transposed copies of A and Z and leaves each eigenvector contiguous. For an
     * exactly symmetric K (entk-gram mirrors its triangle) 'U' reads the same entries as the
     * row-major 'U' call did. */
    if (dt == DT_F64)
        info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'V', 'I', 'U', (lapack_int)n, (double *)A, (lapack_int)n, 0, 0, il, iu, 0,
                              &m, (double *)w, (double *)Z, (lapack_int)n, isuppz);
    else
        info = LAPACKE_ssyevr(LAPACK_COL_MAJOR, 'V', 'I', 'U', (lapack_int)n, (float *)A, (lapack_int)n, 0, 0, il, iu, 0,
                              &m, (float *)w, (float *)Z, (lapack_int)n, isuppz);
    if (info != 0 || m != k) entk_die(ENTK_EXIT_FAIL, "eig: LAPACK syevr failed (info %d, %d of %lld found)", (int)info, (int)m, (long long)k);
    /* ascending -> descending */
    double *mu = xmalloc((size_t)k * sizeof(double));
    for (int64_t i = 0; i < k; i++) {
        int64_t j = k - 1 - i;
        double lam = la_get(dt, w, j);
        la_set(dt, out->values.data, i, lam);
        mu[i] = lam - out->ridge_abs;
        char *v = (char *)out->vectors.data + (size_t)(i * n) * es;
        memcpy(v, Z + (size_t)(j * n) * es, (size_t)n * es);
        fix_sign(dt, n, v);
    }
    out->residual = residual(K, &out->vectors, mu, st->fro);
    out->rank = 0;
    snprintf(out->solver, sizeof out->solver, "syevr");
    free(A); free(w); free(Z); free(isuppz); free(mu);
}

/* An empty result for k eigenpairs of an n x n Gram with ridge ridge_abs. */
static void result_init(eig_result *out, dtype dt, int64_t n, int64_t k, double ridge_abs) {
    memset(out, 0, sizeof *out);
    out->n = n;
    out->k = k;
    out->ridge_abs = ridge_abs;
    out->values = tensor_1d(dt, k);
    out->vectors = tensor_2d(dt, k, n);
}

void eig_top(const tensor *K, int64_t k, double ridge, eig_solver solver, eig_result *out) {
    int64_t n = K->shape[0];
    if (K->ndim != 2 || K->shape[1] != n) entk_die(ENTK_EXIT_INPUT, "eig: K is not square");
    if (k < 1 || k > n) entk_die(ENTK_EXIT_USAGE, "--top must be in [1, %lld]", (long long)n);
    kstats st = scan(K);
    tensor sbuf = {0};
    const tensor *S = symmetric_part(K, &st, &sbuf);
    if (S) K = S;
    result_init(out, K->dt, n, k, ridge * st.trace / (double)n);
    snprintf(out->path, sizeof out->path, "full");
    if (!(solver == EIG_AUTO && solve_lowrank(K, k, &st, out))) solve_full(K, k, &st, out);
    tensor_free(&sbuf);
}

int64_t eig_factor(const tensor *K, tensor *F, char *why, size_t nwhy) {
    int64_t n = K->shape[0];
    if (K->ndim != 2 || K->shape[1] != n) entk_die(ENTK_EXIT_INPUT, "eig: K is not square");
    kstats st = scan(K);
    tensor sbuf = {0};
    const tensor *S = symmetric_part(K, &st, &sbuf);
    char *G;
    int64_t r = factor_checked(S ? S : K, &st, rank_cap(n), &G, why, nwhy);
    tensor_free(&sbuf);
    if (r == 0) return 0;
    *F = tensor_2d(K->dt, r, n);
    memcpy(F->data, G, (size_t)(r * n) * dtype_size(K->dt));
    free(G);
    return r;
}

tensor eig_unfactor(const tensor *F) {
    int64_t r = F->shape[0], n = F->shape[1];
    tensor K = tensor_2d(F->dt, n, n);
    la_syrk_upper(F->dt, 1, n, r, 1.0, F->data, n, 0.0, K.data, n);
    la_mirror_upper(F->dt, n, K.data); /* K is read as a full symmetric matrix */
    return K;
}

void eig_top_factor(const tensor *F, int64_t k, double ridge, eig_result *out) {
    dtype dt = F->dt;
    int64_t r = F->shape[0], n = F->shape[1];
    if (k < 1 || k > n) entk_die(ENTK_EXIT_USAGE, "--top must be in [1, %lld]", (long long)n);
    size_t es = dtype_size(dt);
    double tr = 0;
    for (int64_t i = 0; i < r * n; i++) {
        double v = la_get(dt, F->data, i);
        if (!isfinite(v)) entk_die(ENTK_EXIT_INPUT, "eig: the Gram factor has a non-finite entry");
        tr += v * v;
    }
    char why[96] = "";
    if (k <= r) {
        result_init(out, dt, n, k, ridge * tr / (double)n); /* tr = trace of K = ||F||_F^2 */
        char *G = xmalloc((size_t)(r * n) * es);
        memcpy(G, F->data, (size_t)(r * n) * es);
        double *mu = xmalloc((size_t)k * sizeof(double));
        if (factor_svd(dt, n, r, G, k, out, mu, why, sizeof why)) {
            /* residuals through the factor: K V^T = F^T (F V^T); ||K||_F = ||F F^T||_F */
            tensor FF = tensor_2d(dt, r, r);
            la_syrk_upper(dt, 0, r, n, 1.0, F->data, n, 0.0, FF.data, r);
            double fro = upper_fro(dt, r, FF.data);
            tensor_free(&FF);
            char *FV = xmalloc((size_t)(r * k) * es), *KV = xmalloc((size_t)(k * n) * es);
            la_gemm(dt, 0, 1, r, k, n, 1.0, F->data, n, out->vectors.data, n, 0.0, FV, k);  /* F V^T [r, k] */
            la_gemm(dt, 1, 0, k, n, r, 1.0, FV, k, F->data, n, 0.0, KV, n);                 /* (F V^T)^T F = V K */
            out->residual = worst_residual(dt, KV, &out->vectors, mu, fro);
            free(FV);
            free(KV);
            free(mu);
            out->rank = r;
            snprintf(out->solver, sizeof out->solver, "factor-svd r=%lld", (long long)r);
            snprintf(out->path, sizeof out->path, "factor r=%lld", (long long)r);
            return;
        }
        free(mu);
        eig_free(out);
    } else {
        snprintf(why, sizeof why, "top %lld > rank %lld", (long long)k, (long long)r);
    }
    /* more eigenpairs than the factor has columns (the rest are the ridge alone), or a failed SVD:
     * solve K = F^T F itself */
    tensor K = eig_unfactor(F);
    eig_top(&K, k, ridge, EIG_FULL, out);
    tensor_free(&K);
    snprintf(out->path, sizeof out->path, "full: %s", why);
}

void eig_free(eig_result *e) {
    tensor_free(&e->values);
    tensor_free(&e->vectors);
}
