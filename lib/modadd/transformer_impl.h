/* The 1-layer Transformer for one float type, included twice by transformer.c (R = float with
 * suffix _f32, R = double with suffix _f64) so f32 runs at sgemm speed and f64 at full precision
 * from one source: first the forward and backward at every position that the Jacobian uses
 * (OpenBLAS), then the training and evaluation path (the last position only, in two sides; see
 * transformer.c). Shapes: B samples, T = 3 positions, model width D, H heads of width E = D / H,
 * MLP width F, vocabulary V = p + 1. Row-major activations, row index b*T + t. */

/* y[rows, ncol] (ldy) = alpha * x[rows, k] (ldx) * w[k, ncol] (ldw) + beta * y */
static void SUF(mm)(int64_t rows, int64_t k, int64_t ncol, const R *x, int64_t ldx, const R *w, int64_t ldw, R *y,
                    int64_t ldy, double beta) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)rows, (blasint)ncol, (blasint)k, 1, x, (blasint)ldx, w,
         (blasint)ldw, (R)beta, y, (blasint)ldy);
}
/* y[rows, k] = x[rows, ncol] * w[k, ncol]^T (+ beta y) */
static void SUF(mmt)(int64_t rows, int64_t ncol, int64_t k, const R *x, int64_t ldx, const R *w, int64_t ldw, R *y,
                     int64_t ldy, double beta) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)rows, (blasint)k, (blasint)ncol, 1, x, (blasint)ldx, w,
         (blasint)ldw, (R)beta, y, (blasint)ldy);
}
/* The logits are read at the last position L = T - 1 only, and attention moves information
 * forward: keys and values are needed at every position, but queries, the attention output, W_O,
 * the MLP and W_U at L alone. So those are computed (and, in backward, differentiated) at L only,
 * as strided row views (ld = T * width) of the per-position buffers; their other rows are never
 * written nor read (the Jacobian reads them at L: transformer_linear_shape). */
static void SUF(forward)(const model *m, tf_cache *c) {
    const int64_t B = c->B, T = TF_T, L = TF_T - 1, D = m->d_model, H = m->n_heads, E = m->d_head, F = m->d_mlp,
                  V = m->vocab, HE = H * E;
    const R *WE = m->w[TF_WE].data, *WP = m->w[TF_WPOS].data, *WQ = m->w[TF_WQ].data, *WK = m->w[TF_WK].data,
            *WV = m->w[TF_WV].data, *WO = m->w[TF_WO].data, *WI = m->w[TF_WIN].data, *WU = m->w[TF_WU].data,
            *WT = m->w[TF_WOUT].data;
    R *x = c->resid_pre, *q = c->q, *k = c->k, *v = c->v, *z = c->z, *mid = c->resid_mid, *pre = c->pre,
      *post = c->post, *out = c->resid_post, *att = c->attn, *lg = c->logits;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < D; j++) x[(b * T + t) * D + j] = WE[c->tok[b * T + t] * D + j] + WP[t * D + j];
    for (int64_t h = 0; h < H; h++) {
        SUF(mm)(B, D, E, x + L * D, T * D, WQ + h * D * E, E, q + L * HE + h * E, T * HE, 0);
        SUF(mm)(B * T, D, E, x, D, WK + h * D * E, E, k + h * E, HE, 0);
        SUF(mm)(B * T, D, E, x, D, WV + h * D * E, E, v + h * E, HE, 0);
    }
    /* causal softmax attention of the last position: T = 3, so plain loops beat any library call */
    const double scale = 1.0 / sqrt((double)E);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            R *a = att + ((b * H + h) * T + L) * T;
            const R *qt = q + (b * T + L) * HE + h * E;
            double mx = -INFINITY, sum = 0;
            for (int64_t u = 0; u < T; u++) {
                const R *ku = k + (b * T + u) * HE + h * E;
                double s = 0;
                for (int64_t e = 0; e < E; e++) s += (double)qt[e] * ku[e];
                a[u] = (R)(s * scale);
                if (a[u] > mx) mx = a[u];
            }
            for (int64_t u = 0; u < T; u++) { a[u] = (R)exp(a[u] - mx); sum += a[u]; }
            for (int64_t u = 0; u < T; u++) a[u] = (R)(a[u] / sum);
            R *zt = z + (b * T + L) * HE + h * E;
            for (int64_t e = 0; e < E; e++) {
                double s = 0;
                for (int64_t u = 0; u < T; u++) s += (double)a[u] * v[(b * T + u) * HE + h * E + e];
                zt[e] = (R)s;
            }
        }
    /* resid_mid = resid_pre + z W_O (W_O [H, E, D] is [H*E, D]), then the MLP, at L */
    for (int64_t b = 0; b < B; b++) memcpy(mid + (b * T + L) * D, x + (b * T + L) * D, (size_t)D * sizeof(R));
    SUF(mm)(B, HE, D, z + L * HE, T * HE, WO, D, mid + L * D, T * D, 1);
    SUF(mm)(B, D, F, mid + L * D, T * D, WI, F, pre + L * F, T * F, 0);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < F; i++) {
            int64_t j = (b * T + L) * F + i;
            post[j] = pre[j] > 0 ? pre[j] : 0;
        }
    for (int64_t b = 0; b < B; b++) memcpy(out + (b * T + L) * D, mid + (b * T + L) * D, (size_t)D * sizeof(R));
    SUF(mm)(B, F, D, post + L * F, T * F, WT, D, out + L * D, T * D, 1);
    SUF(mm)(B, D, V, out + L * D, T * D, WU, V, lg, V, 0);
}

/* Backward from dlogits [B, V] (last position) to the activation gradients the Jacobian reads:
 * at L for d_resid_post, d_pre, d_resid_mid, d_z and d_q; at every position for d_k, d_v and
 * d_resid_pre. */
static void SUF(backward)(const model *m, tf_cache *c, const R *dlogits) {
    const int64_t B = c->B, T = TF_T, L = TF_T - 1, D = m->d_model, H = m->n_heads, E = m->d_head, F = m->d_mlp,
                  V = m->vocab, HE = H * E;
    const R *WQ = m->w[TF_WQ].data, *WK = m->w[TF_WK].data, *WV = m->w[TF_WV].data, *WO = m->w[TF_WO].data,
            *WI = m->w[TF_WIN].data, *WU = m->w[TF_WU].data, *WT = m->w[TF_WOUT].data;
    R *dout = c->d_resid_post, *dpre = c->d_pre, *dmid = c->d_resid_mid, *dz = c->d_z, *dq = c->d_q, *dk = c->d_k,
      *dv = c->d_v, *dx = c->d_resid_pre;
    const R *att = c->attn, *q = c->q, *k = c->k, *v = c->v, *pre = c->pre;
    SUF(mmt)(B, V, D, dlogits, V, WU, V, dout + L * D, T * D, 0);
    /* d_post = d_out W_out^T, masked by ReLU' into d_pre */
    SUF(mmt)(B, D, F, dout + L * D, T * D, WT, D, dpre + L * F, T * F, 0);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < F; i++)
            if (!(pre[(b * T + L) * F + i] > 0)) dpre[(b * T + L) * F + i] = 0;
    for (int64_t b = 0; b < B; b++) memcpy(dmid + (b * T + L) * D, dout + (b * T + L) * D, (size_t)D * sizeof(R));
    SUF(mmt)(B, F, D, dpre + L * F, T * F, WI, F, dmid + L * D, T * D, 1);
    SUF(mmt)(B, D, HE, dmid + L * D, T * D, WO, D, dz + L * HE, T * HE, 0);
    memset(dk, 0, (size_t)(B * T * HE) * sizeof(R));
    memset(dv, 0, (size_t)(B * T * HE) * sizeof(R));
    const double scale = 1.0 / sqrt((double)E);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const R *a = att + ((b * H + h) * T + L) * T, *dzt = dz + (b * T + L) * HE + h * E;
            double da[TF_T], dot = 0;
            for (int64_t u = 0; u < T; u++) {
                const R *vu = v + (b * T + u) * HE + h * E;
                R *dvu = dv + (b * T + u) * HE + h * E;
                double s = 0;
                for (int64_t e = 0; e < E; e++) { s += (double)dzt[e] * vu[e]; dvu[e] += a[u] * dzt[e]; }
                da[u] = s;
                dot += a[u] * s;
            }
            const R *qt = q + (b * T + L) * HE + h * E;
            R *dqt = dq + (b * T + L) * HE + h * E;
            memset(dqt, 0, (size_t)E * sizeof(R));
            for (int64_t u = 0; u < T; u++) {
                double ds = a[u] * (da[u] - dot) * scale;
                const R *ku = k + (b * T + u) * HE + h * E;
                R *dku = dk + (b * T + u) * HE + h * E;
                for (int64_t e = 0; e < E; e++) { dqt[e] += (R)(ds * ku[e]); dku[e] += (R)(ds * qt[e]); }
            }
        }
    /* d_resid_pre: the residual path reaches position L only; keys and values reach every one */
    memset(dx, 0, (size_t)(B * T * D) * sizeof(R));
    for (int64_t b = 0; b < B; b++) memcpy(dx + (b * T + L) * D, dmid + (b * T + L) * D, (size_t)D * sizeof(R));
    for (int64_t h = 0; h < H; h++) {
        SUF(mmt)(B, E, D, dq + L * HE + h * E, T * HE, WQ + h * D * E, E, dx + L * D, T * D, 1);
        SUF(mmt)(B * T, E, D, dk + h * E, HE, WK + h * D * E, E, dx, D, 1);
        SUF(mmt)(B * T, E, D, dv + h * E, HE, WV + h * D * E, E, dx, D, 1);
    }
}

/* ---------------------------------------------------------------- the training and evaluation path */

/* Small products for the training path: c[M, N] (ldc) = (acc ? c : 0) + a b, with a(i, k) at
 * a[i * ars + k * acs] (any strides: a is only ever broadcast one element at a time, so a
 * transposed operand costs nothing) and b [K, N] row-major (ldb).
 * Why not BLAS: these matrices have 16 to 256 rows and columns, where a BLAS call spends much of
 * its time packing operands, and OpenBLAS 0.3.21 falls back to its SSE3 "Prescott" kernels on
 * CPUs it does not know (this machine's Xeon: about 20 instead of 100-150 GFLOP/s). Here a tile of
 * up to 4 rows x 4 vectors of c stays in registers for the whole k loop: one broadcast of a and
 * up to 4 vector loads of b per 16 FMAs (transformer.o is built with -ffp-contract=fast so that
 * t += s * b is one FMA). */
typedef R SUF(vec) __attribute__((vector_size(64)));
#define SUF_VL ((int64_t)(sizeof(SUF(vec)) / sizeof(R)))

/* always inlined with constant mr and nv, so t[][] is registers, not memory */
static inline __attribute__((always_inline)) void SUF(tile)(const int mr, const int nv, int64_t K, const R *a,
                                                             int64_t ars, int64_t acs, const R *b, int64_t ldb, R *c,
                                                             int64_t ldc, int acc) {
    SUF(vec) t[4][4], bv[4];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            if (acc) memcpy(&t[r][v], c + r * ldc + v * SUF_VL, sizeof t[r][v]);
            else t[r][v] = (SUF(vec)){0};
        }
    for (int64_t k = 0; k < K; k++) {
        for (int v = 0; v < nv; v++) memcpy(&bv[v], b + k * ldb + v * SUF_VL, sizeof bv[v]);
        for (int r = 0; r < mr; r++) {
            R s = a[r * ars + k * acs];
            for (int v = 0; v < nv; v++) t[r][v] += s * bv[v];
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) memcpy(c + r * ldc + v * SUF_VL, &t[r][v], sizeof t[r][v]);
}

/* all rows of c against one block of nv vector columns */
static inline __attribute__((always_inline)) void SUF(rows)(const int nv, int64_t M, int64_t K, const R *a,
                                                             int64_t ars, int64_t acs, const R *b, int64_t ldb, R *c,
                                                             int64_t ldc, int acc) {
    int64_t i = 0;
    for (; i + 4 <= M; i += 4) SUF(tile)(4, nv, K, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, acc);
    for (; i < M; i++) SUF(tile)(1, nv, K, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, acc);
}

static void SUF(mmk)(int64_t M, int64_t N, int64_t K, const R *a, int64_t ars, int64_t acs, const R *b, int64_t ldb,
                     R *c, int64_t ldc, int acc) {
    int64_t j = 0;
    for (; j + 4 * SUF_VL <= N; j += 4 * SUF_VL) SUF(rows)(4, M, K, a, ars, acs, b + j, ldb, c + j, ldc, acc);
    for (; j + 2 * SUF_VL <= N; j += 2 * SUF_VL) SUF(rows)(2, M, K, a, ars, acs, b + j, ldb, c + j, ldc, acc);
    for (; j + SUF_VL <= N; j += SUF_VL) SUF(rows)(1, M, K, a, ars, acs, b + j, ldb, c + j, ldc, acc);
    for (; j < N; j++) /* widths that are not whole vectors (none in the default model) */
        for (int64_t i = 0; i < M; i++) {
            R s = acc ? c[i * ldc + j] : 0;
            for (int64_t k = 0; k < K; k++) s += a[i * ars + k * acs] * b[k * ldb + j];
            c[i * ldc + j] = s;
        }
}

/* A VL x VL block of src transposed into dst in registers: log2(VL) rounds, each swapping the
 * off-diagonal d x d sub-blocks of rows i and i + d with two-source shuffles, the lanes chosen by
 * masks lo[s], hi[s] of round s (see transpose()). Twice as fast as moving elements one by one,
 * and the per-step packing of the weights is mostly transposes. */
typedef RI SUF(ivec) __attribute__((vector_size(64)));
static inline __attribute__((always_inline)) void SUF(transpose_block)(const R *src, int64_t lds, R *dst, int64_t ldd,
                                                                        const SUF(ivec) *lo, const SUF(ivec) *hi) {
    enum { VL = 64 / sizeof(R) };
    SUF(vec) r[VL];
#pragma GCC unroll 16
    for (int i = 0; i < VL; i++) memcpy(&r[i], src + i * lds, sizeof r[i]);
    int s = 0;
#pragma GCC unroll 4
    for (int d = VL / 2; d >= 1; d /= 2, s++)
#pragma GCC unroll 16
        for (int i = 0; i < VL; i++)
            if (!(i & d)) {
                SUF(vec) a = r[i], b = r[i + d];
                r[i] = __builtin_shuffle(a, b, lo[s]);
                r[i + d] = __builtin_shuffle(a, b, hi[s]);
            }
#pragma GCC unroll 16
    for (int i = 0; i < VL; i++) memcpy(dst + i * ldd, &r[i], sizeof r[i]);
}

/* dst[cols, rows] (ldd) = src[rows, cols] (lds) transposed */
static void SUF(transpose)(int64_t rows, int64_t cols, const R *src, int64_t lds, R *dst, int64_t ldd) {
    enum { VL = 64 / sizeof(R) };
    SUF(ivec) lo[4], hi[4]; /* round s, distance d = VL / 2^(s+1): lane k < VL of row i, VL + k of row i + d */
    int s = 0;
    for (int d = VL / 2; d >= 1; d /= 2, s++)
        for (int k = 0; k < VL; k++) {
            lo[s][k] = (k & d) ? VL + k - d : k;
            hi[s][k] = (k & d) ? VL + k : k + d;
        }
    int64_t i0 = 0;
    for (; i0 + VL <= rows; i0 += VL) {
        int64_t j0 = 0;
        for (; j0 + VL <= cols; j0 += VL)
            SUF(transpose_block)(src + i0 * lds + j0, lds, dst + j0 * ldd + i0, ldd, lo, hi);
        for (int64_t j = j0; j < cols; j++)
            for (int64_t i = i0; i < i0 + VL; i++) dst[j * ldd + i] = src[i * lds + j];
    }
    for (int64_t i = i0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) dst[j * ldd + i] = src[i * lds + j];
}

/* Side S's weights in the layouts its products want, once per step: W_Q|W_K|W_V of its heads
 * side by side as [D, 3 HE_c] (one product for all of them), W_U padded to whole vectors, and the
 * transposes the backward multiplies by. */
static void SUF(pack)(const model *m, tf_side *S, int64_t Vp) {
    const int64_t D = m->d_model, E = m->d_head, F = m->d_mlp, V = m->vocab, HEc = (S->h1 - S->h0) * E, Q3 = 3 * HEc,
                  Fc = S->f1 - S->f0;
    const R *WO = m->w[TF_WO].data, *WI = m->w[TF_WIN].data, *WT = m->w[TF_WOUT].data, *WU = m->w[TF_WU].data;
    R *wqkv = S->wqkv, *wqkvT = S->wqkvT, *wup = S->wup;
    for (int s = 0; s < 3; s++) /* W_Q, W_K, W_V */
        for (int64_t h = S->h0; h < S->h1; h++) {
            const R *W = (const R *)m->w[TF_WQ + s].data + h * D * E;
            int64_t col = s * HEc + (h - S->h0) * E;
            for (int64_t d = 0; d < D; d++) memcpy(wqkv + d * Q3 + col, W + d * E, (size_t)E * sizeof(R));
            SUF(transpose)(D, E, W, E, wqkvT + col * D, D);
        }
    SUF(transpose)(HEc, D, WO + S->h0 * E * D, D, S->woT, HEc);
    SUF(transpose)(D, Fc, WI + S->f0, F, S->winT, D);
    SUF(transpose)(Fc, D, WT + S->f0 * D, D, S->woutT, Fc);
    for (int64_t d = 0; d < D; d++) memcpy(wup + d * Vp, WU + d * V, (size_t)V * sizeof(R)); /* pad stays 0 */
    SUF(transpose)(D, V, WU, V, S->wuT, D);
}

/* Gradient rows [lo, hi) of an [.., n] tensor from a product's [hi - lo, ldg] rows: g = (acc ? g :
 * 0) + src. */
static void SUF(put_rows)(R *g, int64_t n, const R *src, int64_t lds, int64_t lo, int64_t hi, int acc) {
    for (int64_t i = lo; i < hi; i++) {
        R *gi = g + i * n;
        const R *si = src + (i - lo) * lds;
#pragma omp simd
        for (int64_t k = 0; k < n; k++) gi[k] = (acc ? gi[k] : 0) + si[k];
    }
}

/* The phases of a chunk (examples [b0, b0 + n) of the batch; transformer.c's run()), each called
 * for side c = 0 and 1. Phase 1: x, its heads' queries, keys, values and attention, and its part
 * r = z W_O of the attention output. */
static void SUF(attn_phase)(void *arg, int c, int thread) {
    const tf_job *j = arg;
    const model *m = j->m;
    tf_side *S = &j->w->side[c];
    const int64_t T = TF_T, D = m->d_model, E = m->d_head, V = m->vocab, Hc = S->h1 - S->h0, HEc = Hc * E,
                  Q3 = 3 * HEc, nb = j->n;
    const R *WE = m->w[TF_WE].data, *WP = m->w[TF_WPOS].data, *WO = m->w[TF_WO].data;
    const int32_t *tok = j->w->tok + j->b0 * T;
    R *xu = S->xu, *qkv = S->qkv, *att = S->att, *z = S->z;
    if (j->first) SUF(pack)(m, S, j->w->vp);
    /* x at (position, token) is the same row in every example: number the distinct pairs position
     * by position (so the last position's rows, the only ones whose queries are read, come last)
     * and project each once */
    int64_t U = 0, U2 = 0;
    for (int64_t t = 0; t < T; t++) {
        if (t == T - 1) U2 = U;
        for (int64_t b = 0; b < nb; b++) {
            int32_t *sl = &S->slot[t * V + tok[b * T + t]];
            if (*sl < 0) { *sl = (int32_t)U; S->upos[U] = (int32_t)t; S->utok[U] = tok[b * T + t]; U++; }
            S->row[b * T + t] = *sl;
        }
    }
    S->U = U;
    S->u_last = U2;
    for (int64_t u = 0; u < U; u++) {
        S->slot[S->upos[u] * V + S->utok[u]] = -1; /* clean for the next chunk */
        for (int64_t i = 0; i < D; i++) xu[u * D + i] = WE[S->utok[u] * D + i] + WP[S->upos[u] * D + i];
    }
    SUF(mmk)(U, 2 * HEc, D, xu, D, 1, (const R *)S->wqkv + HEc, Q3, qkv + HEc, Q3, 0); /* keys, values */
    SUF(mmk)(U - U2, HEc, D, xu + U2 * D, D, 1, S->wqkv, Q3, qkv + U2 * Q3, Q3, 0);   /* queries */
    /* causal attention of the last position over all three, as forward() computes it */
    /* the scores, less their maximum, of all examples and heads, then their exponentials in one
     * vectorised pass */
    const double scale = 1.0 / sqrt((double)E);
    for (int64_t b = 0; b < nb; b++) {
        const int32_t *rw = S->row + b * T;
        for (int64_t h = 0; h < Hc; h++) {
            R *a = att + (b * Hc + h) * T, mx = -INFINITY;
            const R *q = qkv + rw[T - 1] * Q3 + h * E;
            for (int64_t u = 0; u < T; u++) {
                const R *ku = qkv + rw[u] * Q3 + HEc + h * E;
                double sc = 0;
#pragma omp simd reduction(+ : sc) /* a sum in any order, so it vectorises */
                for (int64_t e = 0; e < E; e++) sc += (double)q[e] * ku[e];
                a[u] = (R)(sc * scale);
                if (a[u] > mx) mx = a[u];
            }
            for (int64_t u = 0; u < T; u++) a[u] -= mx;
        }
    }
#pragma omp simd
    for (int64_t i = 0; i < nb * Hc * T; i++) att[i] = EXP(att[i]);
    for (int64_t b = 0; b < nb; b++) {
        const int32_t *rw = S->row + b * T;
        for (int64_t h = 0; h < Hc; h++) {
            R *a = att + (b * Hc + h) * T;
            double sum = 0;
            for (int64_t u = 0; u < T; u++) sum += a[u];
            for (int64_t u = 0; u < T; u++) a[u] = (R)(a[u] / sum);
            R *zb = z + b * HEc + h * E;
            memset(zb, 0, (size_t)E * sizeof(R));
            for (int64_t u = 0; u < T; u++) {
                const R *vu = qkv + rw[u] * Q3 + 2 * HEc + h * E;
#pragma omp simd /* zb is not a row of qkv */
                for (int64_t e = 0; e < E; e++) zb[e] += a[u] * vu[e];
            }
        }
    }
    SUF(mmk)(nb, D, HEc, z, HEc, 1, WO + S->h0 * E * D, D, S->r, D, 0);
}

/* Phase 2: resid_mid = x + r0 + r1, and this side's units of the MLP: relu(mid W_in) and its part
 * o of relu() W_out. */
static void SUF(mlp_phase)(void *arg, int c, int thread) {
    const tf_job *j = arg;
    const model *m = j->m;
    tf_side *S = &j->w->side[c];
    const int64_t T = TF_T, D = m->d_model, F = m->d_mlp, Fc = S->f1 - S->f0, nb = j->n;
    const R *r0 = j->w->side[0].r, *r1 = j->w->side[1].r, *xu = S->xu;
    R *mid = S->mid, *post = S->post;
    for (int64_t b = 0; b < nb; b++) {
        const R *x = xu + S->row[b * T + T - 1] * D;
#pragma omp simd
        for (int64_t i = 0; i < D; i++) mid[b * D + i] = x[i] + r0[b * D + i] + r1[b * D + i];
    }
    SUF(mmk)(nb, Fc, D, mid, D, 1, (const R *)m->w[TF_WIN].data + S->f0, F, post, Fc, 0);
    for (int64_t i = 0; i < nb * Fc; i++) post[i] = post[i] > 0 ? post[i] : 0; /* relu; pre > 0 iff post > 0 */
    SUF(mmk)(nb, D, Fc, post, Fc, 1, (const R *)m->w[TF_WOUT].data + S->f0 * D, D, S->o, D, 0);
}

/* Phase 3: resid_post = mid + o0 + o1 and the logits; when training the loss and, for this side,
 * the gradients of W_U's rows [d0, d1), W_out's and W_in's units, and its part dm of d resid_mid. */
static void SUF(head_phase)(void *arg, int c, int thread) {
    const tf_job *j = arg;
    const model *m = j->m;
    tf_side *S = &j->w->side[c];
    if (!j->grads && c == 1) return; /* evaluation: side 0 writes the logits */
    const int64_t D = m->d_model, F = m->d_mlp, V = m->vocab, p = m->p, Vp = j->w->vp, Fc = S->f1 - S->f0, nb = j->n;
    const R *o0 = j->w->side[0].o, *o1 = j->w->side[1].o, *mid = S->mid, *post = S->post;
    R *out = S->out, *lg = S->logits;
    for (int64_t i = 0; i < nb * D; i++) out[i] = mid[i] + o0[i] + o1[i];
    SUF(mmk)(nb, Vp, D, out, D, 1, S->wup, Vp, lg, Vp, 0);
    if (!j->grads) {
        for (int64_t b = 0; b < nb; b++)
            memcpy((R *)j->logits + (j->b0 + b) * p, lg + b * Vp, (size_t)p * sizeof(R));
        return;
    }
    /* cross-entropy over the first p logits, mean over the whole batch (both sides compute it:
     * each needs all of dlogits) */
    R *dl = S->dl, *ex = S->ex;
    double loss = 0, inv = 1.0 / (double)j->nb;
    for (int64_t b = 0; b < nb; b++) {
        const R *l = lg + b * Vp;
        R mx = -INFINITY;
        for (int64_t k = 0; k < p; k++) mx = l[k] > mx ? l[k] : mx;
#pragma omp simd /* all Vp columns: whole vectors, no scalar calls for a remainder */
        for (int64_t k = 0; k < Vp; k++) ex[k] = EXP(l[k] - mx);
        double sum = 0;
        for (int64_t k = 0; k < p; k++) sum += ex[k];
        int32_t y = j->w->lab[j->b0 + b];
        loss += -(lg[b * Vp + y] - mx - log(sum));
        for (int64_t k = 0; k < Vp; k++) dl[b * Vp + k] = k < p ? (R)((ex[k] / sum - (k == y)) * inv) : 0;
    }
    S->loss = loss;
    tensor *g = j->grads;
    int acc = !j->first;
    R *dout = S->dout, *dpre = S->dpre, *gs = S->gscratch;
    int64_t d0 = D * c / 2, d1 = D * (c + 1) / 2;
    SUF(mmk)(d1 - d0, Vp, nb, out + d0, 1, D, dl, Vp, gs, Vp, 0);                   /* W_U rows [d0, d1) */
    SUF(put_rows)(g[TF_WU].data, V, gs, Vp, d0, d1, acc);
    SUF(mmk)(nb, D, V, dl, Vp, 1, S->wuT, D, dout, D, 0);                         /* d resid_post */
    SUF(mmk)(Fc, D, nb, post, 1, Fc, dout, D, (R *)g[TF_WOUT].data + S->f0 * D, D, acc); /* W_out */
    SUF(mmk)(nb, Fc, D, dout, D, 1, S->woutT, Fc, dpre, Fc, 0);                   /* d relu() */
    for (int64_t i = 0; i < nb * Fc; i++) dpre[i] = post[i] > 0 ? dpre[i] : 0;
    SUF(mmk)(nb, D, Fc, dpre, Fc, 1, S->winT, D, S->dm, D, 0);                    /* its part of d mid */
    SUF(mmk)(D, Fc, nb, mid, 1, D, dpre, Fc, (R *)g[TF_WIN].data + S->f0, F, acc); /* W_in */
}

/* Phase 4: d resid_mid = d out + dm0 + dm1; this side's heads back through W_O and attention to
 * their W_Q, W_K, W_V gradients and their part dxu of d x (side 0 adds the residual path). */
static void SUF(attn_back_phase)(void *arg, int c, int thread) {
    const tf_job *j = arg;
    const model *m = j->m;
    tf_side *S = &j->w->side[c];
    const int64_t T = TF_T, D = m->d_model, E = m->d_head, Hc = S->h1 - S->h0, HEc = Hc * E, Q3 = 3 * HEc, nb = j->n,
                  U = S->U, U2 = S->u_last;
    const R *dm0 = j->w->side[0].dm, *dm1 = j->w->side[1].dm, *dout = S->dout, *att = S->att, *qkv = S->qkv,
            *xu = S->xu;
    R *dmid = S->dmid, *dz = S->dz, *dqkv = S->dqkv, *dxu = S->dxu, *gs = S->gscratch;
    tensor *g = j->grads;
    int acc = !j->first;
    for (int64_t i = 0; i < nb * D; i++) dmid[i] = dout[i] + dm0[i] + dm1[i];
    SUF(mmk)(HEc, D, nb, S->z, 1, HEc, dmid, D, (R *)g[TF_WO].data + S->h0 * E * D, D, acc); /* W_O */
    SUF(mmk)(nb, HEc, D, dmid, D, 1, S->woT, HEc, dz, HEc, 0);                              /* d z */
    /* attention backward at the last position, into the pair rows */
    memset(dqkv, 0, (size_t)(U * Q3) * sizeof(R));
    const double scale = 1.0 / sqrt((double)E);
    for (int64_t b = 0; b < nb; b++) {
        const int32_t *rw = S->row + b * T;
        for (int64_t h = 0; h < Hc; h++) {
            const R *a = att + (b * Hc + h) * T, *dzb = dz + b * HEc + h * E, *q = qkv + rw[T - 1] * Q3 + h * E;
            R *dq = dqkv + rw[T - 1] * Q3 + h * E;
            double da[TF_T], dot = 0;
            for (int64_t u = 0; u < T; u++) {
                const R *vu = qkv + rw[u] * Q3 + 2 * HEc + h * E;
                R *dvu = dqkv + rw[u] * Q3 + 2 * HEc + h * E;
                double sc = 0;
#pragma omp simd reduction(+ : sc)
                for (int64_t e = 0; e < E; e++) { sc += (double)dzb[e] * vu[e]; dvu[e] += a[u] * dzb[e]; }
                da[u] = sc;
                dot += a[u] * sc;
            }
            for (int64_t u = 0; u < T; u++) {
                double ds = a[u] * (da[u] - dot) * scale;
                const R *ku = qkv + rw[u] * Q3 + HEc + h * E;
                R *dku = dqkv + rw[u] * Q3 + HEc + h * E;
#pragma omp simd /* dq and dku are different rows */
                for (int64_t e = 0; e < E; e++) { dq[e] += (R)(ds * ku[e]); dku[e] += (R)(ds * q[e]); }
            }
        }
    }
    /* W_Q | W_K | W_V of its heads as [D, 3 HE_c] (queries from the last position's rows only) */
    SUF(mmk)(D, 2 * HEc, U, xu, 1, D, dqkv + HEc, Q3, gs + HEc, Q3, 0);
    SUF(mmk)(D, HEc, U - U2, xu + U2 * D, 1, D, dqkv + U2 * Q3, Q3, gs, Q3, 0);
    for (int s = 0; s < 3; s++) /* head h of W_Q + s is [D, E], rows d of gs at its columns */
        for (int64_t h = S->h0; h < S->h1; h++)
            SUF(put_rows)((R *)g[TF_WQ + s].data + h * D * E, E, gs + s * HEc + (h - S->h0) * E, Q3, 0, D, acc);
    /* its part of d x at each pair row: through K and V everywhere, Q at the last position */
    SUF(mmk)(U, D, 2 * HEc, dqkv + HEc, Q3, 1, (const R *)S->wqkvT + HEc * D, D, dxu, D, 0);
    SUF(mmk)(U - U2, D, HEc, dqkv + U2 * Q3, Q3, 1, S->wqkvT, D, dxu + U2 * D, D, 1);
    if (c == 0)
        for (int64_t b = 0; b < nb; b++) {
            R *dx = dxu + S->row[b * T + T - 1] * D;
            const R *dm = dmid + b * D;
#pragma omp simd
            for (int64_t i = 0; i < D; i++) dx[i] += dm[i];
        }
}

/* Phase 5: d x = dxu0 + dxu1 at each pair row, to its token's row of W_E (side c: tokens
 * [v0, v1), the rows AdamW's half c updates) and its position's row of W_pos (side 1). */
static void SUF(embed_phase)(void *arg, int c, int thread) {
    const tf_job *j = arg;
    const model *m = j->m;
    const tf_side *S = &j->w->side[c];
    const int64_t T = TF_T, D = m->d_model, V = m->vocab, v0 = V * c / 2, v1 = V * (c + 1) / 2;
    const R *dx0 = j->w->side[0].dxu, *dx1 = j->w->side[1].dxu;
    R *gE = j->grads[TF_WE].data, *gP = j->grads[TF_WPOS].data;
    if (j->first) {
        memset(gE + v0 * D, 0, (size_t)((v1 - v0) * D) * sizeof(R));
        if (c == 1) memset(gP, 0, (size_t)(T * D) * sizeof(R));
    }
    for (int64_t u = 0; u < S->U; u++) {
        int64_t tok = S->utok[u];
        if (c == 0 && tok >= v1) continue;
        R *ge = tok >= v0 && tok < v1 ? gE + tok * D : NULL, *gp = c == 1 ? gP + S->upos[u] * D : NULL;
        for (int64_t i = 0; i < D; i++) {
            R dx = dx0[u * D + i] + dx1[u * D + i];
            if (ge) ge[i] += dx;
            if (gp) gp[i] += dx;
        }
    }
}

static const tf_phases SUF(phases) = {SUF(attn_phase), SUF(mlp_phase), SUF(head_phase), SUF(attn_back_phase),
                                      SUF(embed_phase)};

#undef SUF_VL
