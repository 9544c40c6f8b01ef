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
