#include "ntk/gram.h"
#include "core/err.h"
#include "core/linalg.h"
#include <stdlib.h>
#include <math.h>
#include <string.h>

const char *reduction_name(reduction r) { return r == RED_TRACE ? "trace" : r == RED_MEAN ? "mean" : "flat"; }

void gram_init(gram *g, reduction red, dtype dt, int64_t N, int64_t C) {
    memset(g, 0, sizeof *g);
    g->red = red;
    g->dt = dt;
    g->N = N;
    g->C = C;
    g->classes = C;
}

/* The class-side factor at position t of G [N, T, C, R], as a matrix whose Gram gives the reduced
 * G_t G_s^T: for mean, sum_c G (-> [N, R]); for trace and flat, [N*C, R] rows (n, c). With a
 * separable G (A [C, R], B = G [N, T, 1, R]) trace needs only B scaled by sqrt(sum_c A[c,i]^2)
 * and mean B scaled by sum_c A[c,i]: [N, R] either way. */
static void *g_slice(const gram *g, const tensor *G, const tensor *A, int64_t t, int64_t *width) {
    int64_t N = G->shape[0], T = G->shape[1], C = G->shape[2], R = G->shape[3];
    dtype dt = g->dt;
    size_t es = dtype_size(dt);
    if (A) {
        char *s = xmalloc((size_t)(N * R) * es);
        double *wt = xcalloc((size_t)R, sizeof(double));
        for (int64_t c = 0; c < A->shape[0]; c++)
            for (int64_t i = 0; i < R; i++) {
                double a = la_get(dt, A->data, c * R + i);
                wt[i] += g->red == RED_MEAN ? a : a * a;
            }
        if (g->red == RED_TRACE)
            for (int64_t i = 0; i < R; i++) wt[i] = sqrt(wt[i]);
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < R; i++) la_set(dt, s, n * R + i, wt[i] * la_get(dt, G->data, (n * T + t) * R + i));
        free(wt);
        *width = R;
        return s;
    }
    if (g->red == RED_MEAN) {
        char *s = xcalloc((size_t)(N * R), es);
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++)
                la_axpy(dt, R, 1.0, (const char *)G->data + (size_t)(((n * T + t) * C + c) * R) * es, s + (size_t)(n * R) * es);
        *width = R;
        return s;
    }
    char *s = xmalloc((size_t)(N * C * R) * es);
    for (int64_t n = 0; n < N; n++)
        memcpy(s + (size_t)(n * C * R) * es, (const char *)G->data + (size_t)((n * T + t) * C * R) * es, (size_t)(C * R) * es);
    *width = C * R;
    return s;
}

/* Dense G [N, T, C, R] from a separable A [C, R] and B [N, T, 1, R]. */
static tensor densify(const tensor *A, const tensor *B) {
    int64_t N = B->shape[0], T = B->shape[1], C = A->shape[0], R = A->shape[1];
    tensor G = tensor_new(B->dt, 4, (int64_t[]){N, T, C, R});
    for (int64_t nt = 0; nt < N * T; nt++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < R; i++)
                la_set(B->dt, G.data, (nt * C + c) * R + i, la_get(B->dt, A->data, c * R + i) * la_get(B->dt, B->data, nt * R + i));
    return G;
}

/* K, allocated (zeroed) when first needed, with the factor rows kept so far folded in (K += F^T F)
 * and dropped: a block that has no factor came, or the Gram is finished with one that had. A Gram
 * kept as a factor to the end never forms K. */
static void dense(gram *g) {
    if (!g->K.data) {
        int64_t n = g->red == RED_FLAT ? g->N * g->C : g->N;
        g->K = tensor_2d(g->dt, n, n);
    }
    g->has_dense = 1;
    if (!g->F.data) return;
    int64_t r = g->F.shape[0], N = g->N;
    la_syrk_upper(g->dt, 1, N, r, 1.0, g->F.data, N, 1.0, g->K.data, N); /* K is symmetric: its upper triangle suffices */
    la_mirror_upper(g->dt, N, g->K.data);
    tensor_free(&g->F);
}

/* A separable block with T = 1 whose B has equal entries along each row (B[n, i] = b_n: the
 * logits are linear in the parameter, as for a final layer W_U) has the reduced Gram
 * scale * sum_i w_i^2 * (b X)(b X)^T, w from g_slice: exactly F^T F with F = sqrt(...) (b X)^T,
 * [in, N]. Returns 1 and appends those rows to g->F, or 0 when the block is not of that kind. */
static int add_as_factor(gram *g, const tensor *X, const tensor *B, const void *slice, int64_t width, double scale) {
    dtype dt = g->dt;
    int64_t N = g->N, in = X->shape[2], R = B->shape[3];
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 1; i < R; i++)
            if (la_get(dt, B->data, n * R + i) != la_get(dt, B->data, n * R)) return 0;
    /* slice[n, i] = w_i b_n: sum_i slice[n, i]^2 = b_n^2 sum_i w_i^2, so the row norm carries both
     * (and b_n's sign: K[n, m] has b_n b_m) */
    int64_t r0 = g->F.data ? g->F.shape[0] : 0;
    tensor F = tensor_2d(dt, r0 + in, N);
    if (r0) memcpy(F.data, g->F.data, (size_t)(r0 * N) * dtype_size(dt));
    for (int64_t n = 0; n < N; n++) {
        double ss = 0;
        for (int64_t i = 0; i < width; i++) ss += pow(la_get(dt, slice, n * width + i), 2);
        double f = (la_get(dt, B->data, n * R) < 0 ? -1 : 1) * sqrt(scale * ss);
        for (int64_t j = 0; j < in; j++) la_set(dt, F.data, (r0 + j) * N + n, f * la_get(dt, X->data, n * in + j));
    }
    tensor_free(&g->F);
    g->F = F;
    return 1;
}

void gram_add_factored(gram *g, const tensor *X, const tensor *G, const tensor *A) {
    if (A && g->red == RED_FLAT) {
        tensor D = densify(A, G);
        gram_add_factored(g, X, &D, NULL);
        tensor_free(&D);
        return;
    }
    double t0 = entk_now();
    dtype dt = g->dt;
    int64_t N = g->N, T = X->shape[1], in = X->shape[2], C = g->C, R = G->shape[3];
    size_t es = dtype_size(dt);
    double scale = g->red == RED_TRACE ? 1.0 / (double)C : g->red == RED_MEAN ? 1.0 / (double)(g->classes * g->classes) : 1.0;
    char *XX = xmalloc((size_t)(N * N) * es);
    int64_t nk = g->red == RED_FLAT ? N * C : N;
    char *GG = xmalloc((size_t)(nk * nk) * es);
    void **gs = xcalloc((size_t)T, sizeof(void *));
    int64_t width = 0;
    for (int64_t t = 0; t < T; t++) gs[t] = g_slice(g, G, A, t, &width);
    if (g->want_factor && !g->has_dense && A && T == 1 && add_as_factor(g, X, G, gs[0], width, scale)) {
        g->flops += 2.0 * (double)N * (width + in);
        free(gs[0]); free(gs); free(XX); free(GG);
        g->seconds += entk_now() - t0;
        return;
    }
    dense(g);
    for (int64_t t = 0; t < T; t++)
        for (int64_t s = 0; s < T; s++) {
            /* X_t X_s^T: rows of X_t are strided by T*in */
            const char *xt = (const char *)X->data + (size_t)(t * in) * es, *xs = (const char *)X->data + (size_t)(s * in) * es;
            la_gemm(dt, 0, 1, N, N, in, 1.0, xt, T * in, xs, T * in, 0.0, XX, N);
            if (g->red == RED_FLAT) /* rows (n, c): [N*C, R] */
                la_gemm(dt, 0, 1, N * C, N * C, R, 1.0, gs[t], R, gs[s], R, 0.0, GG, N * C);
            else
                la_gemm(dt, 0, 1, N, N, width, 1.0, gs[t], width, gs[s], width, 0.0, GG, N);
            g->flops += 2.0 * (double)N * N * in + 2.0 * (double)nk * nk * (g->red == RED_FLAT ? R : width);
            if (g->red == RED_FLAT) {
                for (int64_t n = 0; n < N; n++)
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t m = 0; m < N; m++) {
                            double xx = la_get(dt, XX, n * N + m);
                            for (int64_t d = 0; d < C; d++) {
                                int64_t i = (n * C + c) * nk + m * C + d;
                                la_set(dt, g->K.data, i, la_get(dt, g->K.data, i) + xx * la_get(dt, GG, i));
                            }
                        }
            } else if (dt == DT_F64) {
                double *K = g->K.data, *a = (double *)XX, *b = (double *)GG;
                for (int64_t i = 0; i < N * N; i++) K[i] += scale * a[i] * b[i];
            } else {
                float *K = g->K.data, *a = (float *)XX, *b = (float *)GG;
                for (int64_t i = 0; i < N * N; i++) K[i] += (float)scale * a[i] * b[i];
            }
        }
    for (int64_t t = 0; t < T; t++) free(gs[t]);
    free(gs);
    free(XX);
    free(GG);
    g->seconds += entk_now() - t0;
}

void gram_add_explicit(gram *g, const tensor *J) {
    dense(g);
    double t0 = entk_now();
    dtype dt = g->dt;
    int64_t N = g->N, C = g->C, P = J->shape[2];
    size_t es = dtype_size(dt);
    if (g->red == RED_TRACE) {
        /* sum_c J_c J_c^T = J' J'^T with J' the [N, C*P] view of J */
        la_syrk_full(dt, N, C * P, 1.0 / (double)C, J->data, C * P, 1.0, g->K.data);
        g->flops += (double)N * (N + 1) * C * P;
    } else if (g->red == RED_MEAN) {
        char *s = xcalloc((size_t)(N * P), es);
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++)
                la_axpy(dt, P, 1.0, (const char *)J->data + (size_t)((n * C + c) * P) * es, s + (size_t)(n * P) * es);
        la_syrk_full(dt, N, P, 1.0 / (double)(g->classes * g->classes), s, P, 1.0, g->K.data);
        g->flops += (double)N * (N + 1) * P + (double)N * C * P;
        free(s);
    } else {
        la_syrk_full(dt, N * C, P, 1.0, J->data, P, 1.0, g->K.data);
        g->flops += (double)N * C * (N * C + 1) * P;
    }
    g->seconds += entk_now() - t0;
}

/* K's lower triangle replaced by its upper one. A Gram is symmetric in exact arithmetic, but the
 * factored path forms X_t X_s^T and G_t G_s^T with gemm, whose entries (i, j) and (j, i) are summed
 * in different orders by some kernels (OpenBLAS's Haswell sgemm: K[569, 7] = -4.89622e-05 against
 * K[7, 569] = -4.89609e-05 on an f32 W_U Gram, where SkylakeX happened to agree bit for bit). A
 * Gram that is symmetric only to rounding would make its consumers' results depend on which
 * triangle they read, and entk-eig would have to judge it; mirrored, it is symmetric exactly, on
 * every kernel. */
static void symmetric(gram *g) {
    la_mirror_upper(g->dt, g->K.shape[0], g->K.data);
}

tensor *gram_finish(gram *g) {
    if (g->F.data && !g->has_dense) return NULL;
    dense(g);
    if (g->red != RED_FLAT) {
        symmetric(g);
        return &g->K;
    }
    if (g->finished) return &g->K;
    int64_t N = g->N, C = g->C, n2 = N * C;
    tensor P = tensor_2d(g->dt, n2, n2);
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t m = 0; m < N; m++)
                for (int64_t d = 0; d < C; d++)
                    la_set(g->dt, P.data, (c * N + n) * n2 + d * N + m, la_get(g->dt, g->K.data, (n * C + c) * n2 + m * C + d));
    tensor_free(&g->K);
    g->K = P;
    g->finished = 1;
    symmetric(g);
    return &g->K;
}

void gram_free(gram *g) {
    tensor_free(&g->K);
    tensor_free(&g->F);
}

tensor gram_take(frame_reader *r, frame *f, dtype d, int *factored) {
    *factored = strcmp(f->name, "K_factor") == 0;
    if (strcmp(f->kind, "tensor") != 0 || (!*factored && strcmp(f->name, "K") != 0))
        frame_fail(r, f, "expected tensor frame 'K' or 'K_factor'");
    if (*factored) frame_expect_shape(r, f, 2, (int64_t[]){-1, -1});
    else frame_expect_shape(r, f, 2, (int64_t[]){f->t.shape[0], f->t.shape[0]});
    if (!dtype_is_float(f->t.dt)) frame_fail(r, f, "%s must be f32 or f64, not %s", f->name, dtype_name(f->t.dt));
    return frame_take(r, f, d == DT_NONE ? f->t.dt : d);
}
