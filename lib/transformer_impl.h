/* The 1-layer Transformer's forward and backward for one float type, included twice by
 * transformer.c (R = float with suffix _f32, R = double with suffix _f64) so f32 runs at sgemm
 * speed and f64 at full precision from one source. Shapes: B samples, T = 3 positions, model
 * width D, H heads of width E = D / H, MLP width F, vocabulary V = p + 1.
 * Row-major activations, row index b*T + t. */

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
/* g[k, ncol] += x[rows, k]^T * d[rows, ncol] */
static void SUF(tmm)(int64_t rows, int64_t k, int64_t ncol, const R *x, int64_t ldx, const R *d, int64_t ldd, R *g,
                     int64_t ldg) {
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)k, (blasint)ncol, (blasint)rows, 1, x, (blasint)ldx, d,
         (blasint)ldd, 1, g, (blasint)ldg);
}

static void SUF(forward)(const model *m, tf_cache *c) {
    const int64_t B = c->B, T = TF_T, D = m->d_model, H = m->n_heads, E = m->d_head, F = m->d_mlp, V = m->vocab;
    const R *WE = m->w[TF_WE].data, *WP = m->w[TF_WPOS].data, *WQ = m->w[TF_WQ].data, *WK = m->w[TF_WK].data,
            *WV = m->w[TF_WV].data, *WO = m->w[TF_WO].data, *WI = m->w[TF_WIN].data, *WU = m->w[TF_WU].data,
            *WT = m->w[TF_WOUT].data;
    R *x = c->resid_pre, *q = c->q, *k = c->k, *v = c->v, *z = c->z, *mid = c->resid_mid, *pre = c->pre,
      *post = c->post, *out = c->resid_post, *att = c->attn, *lg = c->logits;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < D; j++) x[(b * T + t) * D + j] = WE[c->tok[b * T + t] * D + j] + WP[t * D + j];
    for (int64_t h = 0; h < H; h++) {
        SUF(mm)(B * T, D, E, x, D, WQ + h * D * E, E, q + h * E, H * E, 0);
        SUF(mm)(B * T, D, E, x, D, WK + h * D * E, E, k + h * E, H * E, 0);
        SUF(mm)(B * T, D, E, x, D, WV + h * D * E, E, v + h * E, H * E, 0);
    }
    /* causal softmax attention: T = 3, so plain loops beat any library call */
    const double scale = 1.0 / sqrt((double)E);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                R *a = att + ((b * H + h) * T + t) * T;
                const R *qt = q + (b * T + t) * H * E + h * E;
                double mx = -INFINITY, sum = 0;
                for (int64_t u = 0; u <= t; u++) {
                    const R *ku = k + (b * T + u) * H * E + h * E;
                    double s = 0;
                    for (int64_t e = 0; e < E; e++) s += (double)qt[e] * ku[e];
                    a[u] = (R)(s * scale);
                    if (a[u] > mx) mx = a[u];
                }
                for (int64_t u = 0; u <= t; u++) { a[u] = (R)exp(a[u] - mx); sum += a[u]; }
                for (int64_t u = 0; u < T; u++) a[u] = u <= t ? (R)(a[u] / sum) : 0;
                R *zt = z + (b * T + t) * H * E + h * E;
                for (int64_t e = 0; e < E; e++) {
                    double s = 0;
                    for (int64_t u = 0; u <= t; u++) s += (double)a[u] * v[(b * T + u) * H * E + h * E + e];
                    zt[e] = (R)s;
                }
            }
    /* resid_mid = resid_pre + z W_O, W_O [H, E, D] is [H*E, D] */
    memcpy(mid, x, (size_t)(B * T * D) * sizeof(R));
    SUF(mm)(B * T, H * E, D, z, H * E, WO, D, mid, D, 1);
    SUF(mm)(B * T, D, F, mid, D, WI, F, pre, F, 0);
    for (int64_t i = 0; i < B * T * F; i++) post[i] = pre[i] > 0 ? pre[i] : 0;
    memcpy(out, mid, (size_t)(B * T * D) * sizeof(R));
    SUF(mm)(B * T, F, D, post, F, WT, D, out, D, 1);
    /* logits at the last position */
    SUF(mm)(B, D, V, out + (T - 1) * D, T * D, WU, V, lg, V, 0);
}

/* Backward from dlogits [B, V] (last position) to activation gradients (always) and parameter
 * gradients (when grads != NULL, added to). */
static void SUF(backward)(const model *m, tf_cache *c, const R *dlogits, tensor *grads) {
    const int64_t B = c->B, T = TF_T, D = m->d_model, H = m->n_heads, E = m->d_head, F = m->d_mlp, V = m->vocab;
    const R *WQ = m->w[TF_WQ].data, *WK = m->w[TF_WK].data, *WV = m->w[TF_WV].data, *WO = m->w[TF_WO].data,
            *WI = m->w[TF_WIN].data, *WU = m->w[TF_WU].data, *WT = m->w[TF_WOUT].data;
    R *dout = c->d_resid_post, *dpre = c->d_pre, *dmid = c->d_resid_mid, *dz = c->d_z, *dq = c->d_q, *dk = c->d_k,
      *dv = c->d_v, *dx = c->d_resid_pre;
    const R *att = c->attn, *q = c->q, *k = c->k, *v = c->v, *pre = c->pre, *x = c->resid_pre, *z = c->z,
            *mid = c->resid_mid, *post = c->post, *out = c->resid_post;
    memset(dout, 0, (size_t)(B * T * D) * sizeof(R));
    SUF(mmt)(B, V, D, dlogits, V, WU, V, dout + (T - 1) * D, T * D, 0);
    /* d_post = d_out W_out^T, masked by ReLU' into d_pre */
    SUF(mmt)(B * T, D, F, dout, D, WT, D, dpre, F, 0);
    for (int64_t i = 0; i < B * T * F; i++)
        if (!(pre[i] > 0)) dpre[i] = 0;
    memcpy(dmid, dout, (size_t)(B * T * D) * sizeof(R));
    SUF(mmt)(B * T, F, D, dpre, F, WI, F, dmid, D, 1);
    SUF(mmt)(B * T, D, H * E, dmid, D, WO, D, dz, H * E, 0);
    memset(dq, 0, (size_t)(B * T * H * E) * sizeof(R));
    memset(dk, 0, (size_t)(B * T * H * E) * sizeof(R));
    memset(dv, 0, (size_t)(B * T * H * E) * sizeof(R));
    const double scale = 1.0 / sqrt((double)E);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                const R *a = att + ((b * H + h) * T + t) * T, *dzt = dz + (b * T + t) * H * E + h * E;
                double da[TF_T], dot = 0;
                for (int64_t u = 0; u <= t; u++) {
                    const R *vu = v + (b * T + u) * H * E + h * E;
                    R *dvu = dv + (b * T + u) * H * E + h * E;
                    double s = 0;
                    for (int64_t e = 0; e < E; e++) { s += (double)dzt[e] * vu[e]; dvu[e] += a[u] * dzt[e]; }
                    da[u] = s;
                    dot += a[u] * s;
                }
                const R *qt = q + (b * T + t) * H * E + h * E;
                R *dqt = dq + (b * T + t) * H * E + h * E;
                for (int64_t u = 0; u <= t; u++) {
                    double ds = a[u] * (da[u] - dot) * scale;
                    const R *ku = k + (b * T + u) * H * E + h * E;
                    R *dku = dk + (b * T + u) * H * E + h * E;
                    for (int64_t e = 0; e < E; e++) { dqt[e] += (R)(ds * ku[e]); dku[e] += (R)(ds * qt[e]); }
                }
            }
    memcpy(dx, dmid, (size_t)(B * T * D) * sizeof(R));
    for (int64_t h = 0; h < H; h++) {
        SUF(mmt)(B * T, E, D, dq + h * E, H * E, WQ + h * D * E, E, dx, D, 1);
        SUF(mmt)(B * T, E, D, dk + h * E, H * E, WK + h * D * E, E, dx, D, 1);
        SUF(mmt)(B * T, E, D, dv + h * E, H * E, WV + h * D * E, E, dx, D, 1);
    }
    if (!grads) return;
    R *gE = grads[TF_WE].data, *gP = grads[TF_WPOS].data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < D; j++) {
                gE[c->tok[b * T + t] * D + j] += dx[(b * T + t) * D + j];
                gP[t * D + j] += dx[(b * T + t) * D + j];
            }
    for (int64_t h = 0; h < H; h++) {
        SUF(tmm)(B * T, D, E, x, D, dq + h * E, H * E, (R *)grads[TF_WQ].data + h * D * E, E);
        SUF(tmm)(B * T, D, E, x, D, dk + h * E, H * E, (R *)grads[TF_WK].data + h * D * E, E);
        SUF(tmm)(B * T, D, E, x, D, dv + h * E, H * E, (R *)grads[TF_WV].data + h * D * E, E);
    }
    SUF(tmm)(B * T, H * E, D, z, H * E, dmid, D, grads[TF_WO].data, D);
    SUF(tmm)(B * T, D, F, mid, D, dpre, F, grads[TF_WIN].data, F);
    SUF(tmm)(B * T, F, D, post, F, dout, D, grads[TF_WOUT].data, D);
    SUF(tmm)(B, D, V, out + (T - 1) * D, T * D, dlogits, V, grads[TF_WU].data, V);
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

/* dst[cols, rows] (ldd) = src[rows, cols] (lds) transposed, 16 source rows at a time so that
 * writes fill whole cache lines (4x faster than the plain double loop on 64 x 256) */
static void SUF(transpose)(int64_t rows, int64_t cols, const R *src, int64_t lds, R *dst, int64_t ldd) {
    for (int64_t i0 = 0; i0 < rows; i0 += 16)
        for (int64_t j = 0; j < cols; j++)
            for (int64_t i = i0; i < i0 + 16 && i < rows; i++) dst[j * ldd + i] = src[i * lds + j];
}

/* The weights in the layouts the products want, once per step: W_Q|W_K|W_V side by side as
 * [D, 3HE] (one product for all heads) and W_U padded to whole vectors (job 0, all the forward
 * needs), and the transposes the backward multiplies by (jobs 1-5). */
static void SUF(pack)(const model *m, tf_work *w, int job) {
    const int64_t D = m->d_model, H = m->n_heads, E = m->d_head, F = m->d_mlp, V = m->vocab, HE = H * E, Q3 = 3 * HE,
                  Vp = w->vp;
    const R *WO = m->w[TF_WO].data, *WI = m->w[TF_WIN].data, *WT = m->w[TF_WOUT].data, *WU = m->w[TF_WU].data;
    R *wqkv = w->wqkv, *wqkvT = w->wqkvT, *wup = w->wup;
    switch (job) {
    case 0:
        for (int s = 0; s < 3; s++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t d = 0; d < D; d++)
                    memcpy(wqkv + d * Q3 + s * HE + h * E, (const R *)m->w[TF_WQ + s].data + (h * D + d) * E,
                           (size_t)E * sizeof(R));
        for (int64_t d = 0; d < D; d++) memcpy(wup + d * Vp, WU + d * V, (size_t)V * sizeof(R)); /* pad stays 0 */
        break;
    case 1: SUF(transpose)(D, F, WI, F, w->winT, D); break;
    case 2: SUF(transpose)(F, D, WT, D, w->woutT, F); break;
    case 3:
        SUF(transpose)(HE, D, WO, D, w->woT, HE);
        SUF(transpose)(D, V, WU, V, w->wuT, D);
        break;
    case 4: case 5: /* W_Q^T | W_K^T | W_V^T as [3HE, D]: Q and V in job 4, K in job 5 */
        for (int s = job - 4; s < 3; s += 2)
            for (int64_t h = 0; h < H; h++)
                SUF(transpose)(D, E, (const R *)m->w[TF_WQ + s].data + h * D * E, E, wqkvT + (s * HE + h * E) * D, D);
        break;
    }
}

/* Forward of one chunk of nb examples (tokens in L->tok) up to the logits [nb, Vp]. */
static void SUF(lane_forward)(const model *m, const tf_work *w, tf_lane *L, int64_t nb) {
    const int64_t T = TF_T, D = m->d_model, H = m->n_heads, E = m->d_head, F = m->d_mlp, V = m->vocab, HE = H * E,
                  Q3 = 3 * HE, Vp = w->vp;
    const R *WE = m->w[TF_WE].data, *WP = m->w[TF_WPOS].data, *WO = m->w[TF_WO].data, *WI = m->w[TF_WIN].data,
            *WT = m->w[TF_WOUT].data;
    R *xu = L->xu, *qkv = L->qkv, *att = L->att, *z = L->z, *mid = L->mid, *pre = L->pre, *post = L->post,
      *out = L->out;
    /* x at (position, token) is the same row in every example: number the distinct pairs position
     * by position (so the last position's rows, the only ones whose queries are read, come last)
     * and project each once */
    int64_t U = 0;
    for (int64_t t = 0; t < T; t++) {
        if (t == T - 1) L->u_last = U;
        for (int64_t b = 0; b < nb; b++) {
            int32_t tok = L->tok[b * T + t], *s = &L->slot[t * V + tok];
            if (*s < 0) { *s = (int32_t)U; L->upos[U] = (int32_t)t; L->utok[U] = tok; U++; }
            L->row[b * T + t] = *s;
        }
    }
    L->U = U;
    for (int64_t u = 0; u < U; u++) {
        L->slot[L->upos[u] * V + L->utok[u]] = -1; /* clean for the next chunk */
        for (int64_t j = 0; j < D; j++) xu[u * D + j] = WE[L->utok[u] * D + j] + WP[L->upos[u] * D + j];
    }
    const int64_t U2 = L->u_last;
    SUF(mmk)(U, 2 * HE, D, xu, D, 1, (const R *)w->wqkv + HE, Q3, qkv + HE, Q3, 0);           /* keys, values */
    SUF(mmk)(U - U2, HE, D, xu + U2 * D, D, 1, w->wqkv, Q3, qkv + U2 * Q3, Q3, 0);           /* queries */
    /* causal attention of the last position over all three, as forward() computes it */
    const double scale = 1.0 / sqrt((double)E);
    for (int64_t b = 0; b < nb; b++) {
        const int32_t *rw = L->row + b * T;
        for (int64_t h = 0; h < H; h++) {
            R *a = att + (b * H + h) * T;
            const R *q = qkv + rw[T - 1] * Q3 + h * E;
            double mx = -INFINITY, sum = 0;
            for (int64_t u = 0; u < T; u++) {
                const R *ku = qkv + rw[u] * Q3 + HE + h * E;
                double s = 0;
#pragma omp simd reduction(+ : s) /* a sum in any order, so it vectorises */
                for (int64_t e = 0; e < E; e++) s += (double)q[e] * ku[e];
                a[u] = (R)(s * scale);
                if (a[u] > mx) mx = a[u];
            }
            for (int64_t u = 0; u < T; u++) { a[u] = EXP(a[u] - (R)mx); sum += a[u]; }
            for (int64_t u = 0; u < T; u++) a[u] = (R)(a[u] / sum);
            R *zb = z + b * HE + h * E;
            memset(zb, 0, (size_t)E * sizeof(R));
            for (int64_t u = 0; u < T; u++) {
                const R *vu = qkv + rw[u] * Q3 + 2 * HE + h * E;
#pragma omp simd /* zb is not a row of qkv */
                for (int64_t e = 0; e < E; e++) zb[e] += a[u] * vu[e];
            }
        }
        memcpy(mid + b * D, xu + rw[T - 1] * D, (size_t)D * sizeof(R));
    }
    SUF(mmk)(nb, D, HE, z, HE, 1, WO, D, mid, D, 1);                 /* resid_mid = x + z W_O */
    SUF(mmk)(nb, F, D, mid, D, 1, WI, F, pre, F, 0);
    for (int64_t i = 0; i < nb * F; i++) post[i] = pre[i] > 0 ? pre[i] : 0;
    memcpy(out, mid, (size_t)(nb * D) * sizeof(R));
    SUF(mmk)(nb, D, F, post, F, 1, WT, D, out, D, 1);                /* resid_post */
    SUF(mmk)(nb, Vp, D, out, D, 1, w->wup, Vp, L->logits, Vp, 0);
}

/* Cross-entropy over the first p logits of the chunk against labels: returns the summed loss and
 * leaves dloss/dlogits (scaled by inv_total, the whole batch's 1/nb) in L->dl. */
static double SUF(lane_loss)(const model *m, const tf_work *w, tf_lane *L, int64_t nb, const int32_t *labels,
                             double inv_total) {
    const int64_t p = m->p, Vp = w->vp;
    const R *lg = L->logits;
    R *dl = L->dl;
    double loss = 0, *ex = L->ex;
    for (int64_t b = 0; b < nb; b++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < p; j++)
            if (lg[b * Vp + j] > mx) mx = lg[b * Vp + j];
        for (int64_t j = 0; j < p; j++) { ex[j] = EXP(lg[b * Vp + j] - (R)mx); sum += ex[j]; }
        int32_t y = labels[b];
        loss += -(lg[b * Vp + y] - mx - log(sum));
        for (int64_t j = 0; j < Vp; j++) dl[b * Vp + j] = j < p ? (R)((ex[j] / sum - (j == y)) * inv_total) : 0;
    }
    return loss;
}

/* Backward of the chunk from L->dl: parameter gradients into L->grad (added if acc, else
 * overwritten), in the parameters' own layouts. */
static void SUF(lane_backward)(const model *m, const tf_work *w, tf_lane *L, int64_t nb, int acc) {
    const int64_t T = TF_T, D = m->d_model, H = m->n_heads, E = m->d_head, F = m->d_mlp, V = m->vocab, HE = H * E,
                  Q3 = 3 * HE, Vp = w->vp, U = L->U, U2 = L->u_last;
    const R *att = L->att, *qkv = L->qkv, *xu = L->xu, *z = L->z, *mid = L->mid, *pre = L->pre, *post = L->post,
            *out = L->out, *dl = L->dl;
    R *dout = L->dout, *dpre = L->dpre, *dmid = L->dmid, *dz = L->dz, *dqkv = L->dqkv, *dxu = L->dxu, *gqkv = L->gqkv,
      *gwu = L->gwu, *g = L->grad;
    R *gE = g + w->goff[TF_WE], *gP = g + w->goff[TF_WPOS], *gO = g + w->goff[TF_WO], *gI = g + w->goff[TF_WIN],
      *gT = g + w->goff[TF_WOUT], *gU = g + w->goff[TF_WU];
    SUF(mmk)(D, Vp, nb, out, 1, D, dl, Vp, gwu, Vp, 0);                        /* W_U (padded) */
    for (int64_t d = 0; d < D; d++)
#pragma omp simd
        for (int64_t v = 0; v < V; v++) gU[d * V + v] = (acc ? gU[d * V + v] : 0) + gwu[d * Vp + v];
    SUF(mmk)(nb, D, V, dl, Vp, 1, w->wuT, D, dout, D, 0);                      /* d resid_post */
    SUF(mmk)(F, D, nb, post, 1, F, dout, D, gT, D, acc);                        /* W_out */
    SUF(mmk)(nb, F, D, dout, D, 1, w->woutT, F, dpre, F, 0);                    /* d post */
    for (int64_t i = 0; i < nb * F; i++) dpre[i] = pre[i] > 0 ? dpre[i] : 0;
    memcpy(dmid, dout, (size_t)(nb * D) * sizeof(R));
    SUF(mmk)(nb, D, F, dpre, F, 1, w->winT, D, dmid, D, 1);                     /* d resid_mid */
    SUF(mmk)(D, F, nb, mid, 1, D, dpre, F, gI, F, acc);                         /* W_in */
    SUF(mmk)(HE, D, nb, z, 1, HE, dmid, D, gO, D, acc);                         /* W_O */
    SUF(mmk)(nb, HE, D, dmid, D, 1, w->woT, HE, dz, HE, 0);                     /* d z */
    /* attention backward at the last position, into the rows of the distinct (position, token) pairs */
    memset(dqkv, 0, (size_t)(U * Q3) * sizeof(R));
    const double scale = 1.0 / sqrt((double)E);
    for (int64_t b = 0; b < nb; b++) {
        const int32_t *rw = L->row + b * T;
        for (int64_t h = 0; h < H; h++) {
            const R *a = att + (b * H + h) * T, *dzb = dz + b * HE + h * E, *q = qkv + rw[T - 1] * Q3 + h * E;
            R *dq = dqkv + rw[T - 1] * Q3 + h * E;
            double da[TF_T], dot = 0;
            for (int64_t u = 0; u < T; u++) {
                const R *vu = qkv + rw[u] * Q3 + 2 * HE + h * E;
                R *dvu = dqkv + rw[u] * Q3 + 2 * HE + h * E;
                double s = 0;
#pragma omp simd reduction(+ : s)
                for (int64_t e = 0; e < E; e++) { s += (double)dzb[e] * vu[e]; dvu[e] += a[u] * dzb[e]; }
                da[u] = s;
                dot += a[u] * s;
            }
            for (int64_t u = 0; u < T; u++) {
                double ds = a[u] * (da[u] - dot) * scale;
                const R *ku = qkv + rw[u] * Q3 + HE + h * E;
                R *dku = dqkv + rw[u] * Q3 + HE + h * E;
#pragma omp simd /* dq and dku are different rows */
                for (int64_t e = 0; e < E; e++) { dq[e] += (R)(ds * ku[e]); dku[e] += (R)(ds * q[e]); }
            }
        }
    }
    /* W_Q | W_K | W_V as [D, 3HE] (queries from the last position's rows only), then per head */
    SUF(mmk)(D, 2 * HE, U, xu, 1, D, dqkv + HE, Q3, gqkv + HE, Q3, 0);
    SUF(mmk)(D, HE, U - U2, xu + U2 * D, 1, D, dqkv + U2 * Q3, Q3, gqkv, Q3, 0);
    for (int s = 0; s < 3; s++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t d = 0; d < D; d++) {
                R *gs = g + w->goff[TF_WQ + s] + (h * D + d) * E;
                const R *src = gqkv + d * Q3 + s * HE + h * E;
#pragma omp simd
                for (int64_t e = 0; e < E; e++) gs[e] = (acc ? gs[e] : 0) + src[e];
            }
    /* d x at each distinct row: through K and V everywhere, Q and the residual at the last position */
    SUF(mmk)(U, D, 2 * HE, dqkv + HE, Q3, 1, (const R *)w->wqkvT + HE * D, D, dxu, D, 0);
    SUF(mmk)(U - U2, D, HE, dqkv + U2 * Q3, Q3, 1, w->wqkvT, D, dxu + U2 * D, D, 1);
    for (int64_t b = 0; b < nb; b++) {
        R *dx = dxu + L->row[b * T + T - 1] * D;
        const R *dm = dmid + b * D;
#pragma omp simd
        for (int64_t j = 0; j < D; j++) dx[j] += dm[j];
    }
    if (!acc) {
        memset(gE, 0, (size_t)(V * D) * sizeof(R));
        memset(gP, 0, (size_t)(T * D) * sizeof(R));
    }
    for (int64_t u = 0; u < U; u++)
        for (int64_t j = 0; j < D; j++) {
            gE[L->utok[u] * D + j] += dxu[u * D + j];
            gP[L->upos[u] * D + j] += dxu[u * D + j];
        }
}

/* The tasks of a batch (see run() in transformer.c): packing the weights, the chunks of a
 * forward-only pass, the lanes of a training step, and the sum of the lanes' gradients. */
static void SUF(pack_task)(void *arg, int task, int thread) {
    tf_job *j = arg;
    SUF(pack)(j->m, j->w, task);
}

/* one chunk of the batch through lane_forward */
static void SUF(chunk)(const tf_job *j, tf_lane *L, int64_t c) {
    int64_t b0 = j->nb * c / j->nch, n = j->nb * (c + 1) / j->nch - b0;
    memcpy(L->tok, j->w->tok + b0 * TF_T, (size_t)(n * TF_T) * sizeof(int32_t));
    SUF(lane_forward)(j->m, j->w, L, n);
    if (j->logits)
        for (int64_t b = 0; b < n; b++)
            memcpy((R *)j->logits + (b0 + b) * j->m->p, (R *)L->logits + b * j->w->vp, (size_t)j->m->p * sizeof(R));
    if (j->grads) {
        L->loss += SUF(lane_loss)(j->m, j->w, L, n, j->w->lab + b0, 1.0 / (double)j->nb);
        SUF(lane_backward)(j->m, j->w, L, n, c >= j->nlanes);
    }
}

static void SUF(eval_task)(void *arg, int task, int thread) {
    tf_job *j = arg;
    SUF(chunk)(j, &j->w->lane[thread], task);
}

/* lane l takes chunks l, l + nlanes, ... in order, into its own gradient */
static void SUF(lane_task)(void *arg, int task, int thread) {
    tf_job *j = arg;
    tf_lane *L = &j->w->lane[task];
    L->loss = 0;
    for (int64_t c = task; c < j->nch; c += j->nlanes) SUF(chunk)(j, L, c);
}

/* grads = lane 0 + lane 1, task t of 2 taking a half of every tensor */
static void SUF(reduce_task)(void *arg, int task, int thread) {
    tf_job *j = arg;
    for (int k = 0; k < j->m->nparams; k++) {
        int64_t n = tensor_numel(&j->grads[k]), lo = n * task / 2, hi = n * (task + 1) / 2;
        R *restrict dst = j->grads[k].data;
        const R *restrict g0 = (const R *)j->w->lane[0].grad + j->w->goff[k];
        if (j->nlanes == 1) memcpy(dst + lo, g0 + lo, (size_t)(hi - lo) * sizeof(R));
        else {
            const R *restrict g1 = (const R *)j->w->lane[1].grad + j->w->goff[k];
            for (int64_t i = lo; i < hi; i++) dst[i] = g0[i] + g1[i];
        }
    }
}

static const tf_tasks SUF(tasks) = {SUF(pack_task), SUF(eval_task), SUF(lane_task), SUF(reduce_task)};

#undef SUF_VL
