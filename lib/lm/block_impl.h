/* A decoder block for one float type R: forward, JVP, VJP and the one-row decode step, built from
 * the operations of ops_impl.h. Included twice by lm/block.c; see include/lm/block.h for what each
 * computes and the row layout ("lean": post-attention buffers one row per window).
 *
 * LAYER(m, l) is the block's weights in R; ACTS and TANGENTS the activation and tangent sets in R. */

/* Y[n, N] = X[n, K] W[N, K]^T (+ beta Y): nn.Linear on rows, leading dimensions given */
static void SUF(linear)(R *Y, int ldy, const R *X, int ldx, const R *W, int ldw, int n, int N, int K, R beta) {
    if (n <= 0) return;
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, n, N, K, (R)1, X, ldx, W, ldw, beta, Y, ldy);
}

/* X[n, K] = Y[n, N] W[N, K] (+ beta X): the VJP of linear w.r.t. its input */
static void SUF(linear_back)(R *X, int ldx, const R *Y, int ldy, const R *W, int ldw, int n, int N, int K, R beta) {
    if (n <= 0) return;
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, K, N, (R)1, Y, ldy, W, ldw, beta, X, ldx);
}

/* The q | k | v projection of windows [b0, b1): every row, or (lean) k and v at every row and q at
 * the last row of each window only. */
static void SUF(project_qkv)(const lm_widths *w, const R *Wqkv, const R *xn, R *qkv, int T, int b0, int b1, int lean) {
    size_t r0 = (size_t)b0 * T;
    int n = (b1 - b0) * T, dim = (int)w->dim, nqkv = (int)w->nqkv, nq = (int)w->nq;
    if (!lean) {
        SUF(linear)(qkv + r0 * nqkv, nqkv, xn + r0 * dim, dim, Wqkv, dim, n, nqkv, dim, 0);
        return;
    }
    SUF(linear)(qkv + r0 * nqkv + nq, nqkv, xn + r0 * dim, dim, Wqkv + (size_t)nq * dim, dim, n, nqkv - nq, dim, 0);
    SUF(linear)(qkv + (r0 + T - 1) * nqkv, T * nqkv, xn + (r0 + T - 1) * dim, T * dim, Wqkv, dim, b1 - b0, nq, dim, 0);
}

/* Does head h of row position t take part? (lean: queries only at the last position) */
static inline int SUF(head_used)(const lm_model *m, int h, int t, int T, int lean) {
    return !lean || h >= m->n_heads || t == T - 1;
}

/* x_row(b, i): the residual row that post-attention row i of window-block rows adds to. */
static inline const R *SUF(resid_row)(const R *x, size_t dim, size_t i, int T, int lean) {
    return lean ? x + (i * T + T - 1) * dim : x + i * dim;
}

void SUF(lm_block_forward)(const lm_model *m, int l, const ACTS *A, const R *rope, int T, int b0, int b1, int lean) {
    lm_widths w = lm_widths_of(m);
    const LAYERT *L = LAYER(m, l);
    int window = m->layers[l].window, hd = m->head_dim, half = hd / 2, po = m->norm_plus_one;
    size_t dim = w.dim, r0 = (size_t)b0 * T;
    int n = (b1 - b0) * T, group = m->n_heads / m->n_kv_heads;
    R eps = (R)EPS(m);
    R *x = A->x + r0 * dim, *xn = A->xn + r0 * dim;
    SUF(rmsnorm)(xn, A->rms_x + r0, x, L->attn_norm, n, (int)dim, eps, po);
    SUF(project_qkv)(&w, L->qkv, A->xn, A->qkv, T, b0, b1, lean);
    R *qkv = A->qkv + r0 * w.nqkv;
    for (int r = 0; r < n; r++) {
        int t = r % T;
        const R *c = rope + (size_t)t * hd, *s = c + half;
        R *row = qkv + (size_t)r * w.nqkv;
        for (int h = 0; h < m->n_heads + m->n_kv_heads; h++) {
            if (!SUF(head_used)(m, h, t, T, lean)) continue;
            R *v = row + (size_t)h * hd;
            if (A->qk_raw) memcpy(A->qk_raw + (r0 + r) * (w.nq + w.nkv) + (size_t)h * hd, v, (size_t)hd * sizeof(R));
            if (L->q_norm) {
                R *rq = A->rms_qk + (r0 + r) * (w.nh + w.nkvh) + h;
                SUF(rmsnorm)(v, rq, v, h < m->n_heads ? L->q_norm : L->k_norm, 1, hd, eps, po);
            }
            SUF(rope)(v, c, s, hd, m->rope_adjacent);
        }
    }
    int i0 = lean ? T - 1 : 0, ld = (int)w.nqkv;
    for (int b = b0; b < b1; b++) {
        const R *base = A->qkv + (size_t)b * T * w.nqkv;
        for (int h = 0; h < m->n_heads; h++) {
            const R *q = base + (size_t)i0 * ld + (size_t)h * hd, *k = base + w.nq + (size_t)(h / group) * hd,
                    *v = base + w.nq + w.nkv + (size_t)(h / group) * hd;
            R *P = A->probs + ((size_t)b * m->n_heads + h) * (T - i0) * T;
            R *out = A->attn + ((size_t)b * (lean ? 1 : T)) * w.nq + (size_t)h * hd;
            SUF(attn_head)(m, window, T, i0, q, ld, k, v, ld, P, out, (int)w.nq);
        }
    }
    /* after attention: every row, or one row per window */
    size_t p0 = lean ? (size_t)b0 : r0;
    int pn = lean ? b1 - b0 : n;
    R *o = A->o + p0 * dim, *h = A->h + p0 * dim;
    SUF(linear)(o, (int)dim, A->attn + p0 * w.nq, (int)w.nq, L->o, (int)w.nq, pn, (int)dim, (int)w.nq, 0);
    if (L->post_attn_norm) {
        SUF(rmsnorm)(h, A->rms_o + p0, o, L->post_attn_norm, pn, (int)dim, eps, po);
        for (int i = 0; i < pn; i++) {
            const R *xr = SUF(resid_row)(x, dim, (size_t)i, T, lean);
            for (size_t j = 0; j < dim; j++) h[i * dim + j] += xr[j];
        }
    } else {
        for (int i = 0; i < pn; i++) {
            const R *xr = SUF(resid_row)(x, dim, (size_t)i, T, lean);
            for (size_t j = 0; j < dim; j++) h[i * dim + j] = xr[j] + o[i * dim + j];
        }
    }
    R *hn = A->hn + p0 * dim, *gu = A->gate_up + p0 * 2 * w.ffn, *mlp = A->mlp + p0 * w.ffn;
    SUF(rmsnorm)(hn, A->rms_h + p0, h, L->ffn_norm, pn, (int)dim, eps, po);
    SUF(linear)(gu, (int)(2 * w.ffn), hn, (int)dim, L->gate_up, (int)dim, pn, (int)(2 * w.ffn), (int)dim, 0);
    SUF(gated_act)(mlp, gu, pn, (int)w.ffn, m->act);
    R *down = A->down + p0 * dim, *y = A->out + p0 * dim;
    SUF(linear)(down, (int)dim, mlp, (int)w.ffn, L->down, (int)w.ffn, pn, (int)dim, (int)w.ffn, 0);
    if (L->post_ffn_norm) {
        SUF(rmsnorm)(y, A->rms_down + p0, down, L->post_ffn_norm, pn, (int)dim, eps, po);
        for (size_t i = 0; i < (size_t)pn * dim; i++) y[i] += h[i];
    } else {
        for (size_t i = 0; i < (size_t)pn * dim; i++) y[i] = h[i] + down[i];
    }
}

/* The q/k norm and RoPE of the q and k tangents (JVP, back = 0) or gradients (VJP, back = 1) in
 * dqkv, rows of windows [b0, b1); the norms' derivatives at the raw projections A->qk_raw. */
static void SUF(qk_tangent)(const lm_model *m, const LAYERT *L, const ACTS *A, R *dqkv, const R *rope, int T, int b0,
                            int b1, int lean, int back) {
    lm_widths w = lm_widths_of(m);
    int hd = m->head_dim, half = hd / 2;
    size_t r0 = (size_t)b0 * T;
    for (int r = 0; r < (b1 - b0) * T; r++) {
        int t = r % T;
        const R *c = rope + (size_t)t * hd, *s = c + half;
        R *row = dqkv + (r0 + r) * w.nqkv;
        for (int h = 0; h < m->n_heads + m->n_kv_heads; h++) {
            if (!SUF(head_used)(m, h, t, T, lean)) continue;
            R *v = row + (size_t)h * hd;
            const R *raw = A->qk_raw + (r0 + r) * (w.nq + w.nkv) + (size_t)h * hd;
            const R *inv = A->rms_qk + (r0 + r) * (w.nh + w.nkvh) + h;
            const R *nw = h < m->n_heads ? L->q_norm : L->k_norm;
            if (!back) {
                if (L->q_norm) SUF(rmsnorm_jvp)(v, raw, inv, v, nw, 1, hd, m->norm_plus_one);
                SUF(rope)(v, c, s, hd, m->rope_adjacent);
            } else {
                SUF(rope_back)(v, c, s, hd, m->rope_adjacent);
                if (L->q_norm) SUF(rmsnorm_vjp)(v, raw, inv, v, nw, 1, hd, m->norm_plus_one, 0);
            }
        }
    }
}

/* dout rows: from the tangent entering at `entry` (see block.h) to the block's output. */
void SUF(lm_block_jvp)(const lm_model *m, int l, const ACTS *A, const TANGENTS *G, const R *rope, int T, int b0,
                       int b1, int lean, lm_entry entry, const R *dx, R *dout) {
    lm_widths w = lm_widths_of(m);
    const LAYERT *L = LAYER(m, l);
    int window = m->layers[l].window, hd = m->head_dim, po = m->norm_plus_one, dim = (int)w.dim;
    int group = m->n_heads / m->n_kv_heads, n = (b1 - b0) * T, i0 = lean ? T - 1 : 0, ld = (int)w.nqkv;
    size_t r0 = (size_t)b0 * T, p0 = lean ? (size_t)b0 : r0;
    int pn = lean ? b1 - b0 : n;
    if (entry == LM_AT_X) {
        SUF(rmsnorm_jvp)(G->dxn + r0 * dim, A->x + r0 * dim, A->rms_x + r0, dx + r0 * dim, L->attn_norm, n, dim, po);
        SUF(project_qkv)(&w, L->qkv, G->dxn, G->dqkv, T, b0, b1, lean);
    }
    if (entry <= LM_AT_QKV) {
        SUF(qk_tangent)(m, L, A, G->dqkv, rope, T, b0, b1, lean, 0);
        for (int b = b0; b < b1; b++) {
            const R *base = A->qkv + (size_t)b * T * ld, *dbase = G->dqkv + (size_t)b * T * ld;
            R *Wk = G->W + (size_t)b * 2 * T * T;
            for (int h = 0; h < m->n_heads; h++) {
                size_t qo = (size_t)i0 * ld + (size_t)h * hd, ko = w.nq + (size_t)(h / group) * hd, vo = ko + w.nkv;
                const R *P = A->probs + ((size_t)b * m->n_heads + h) * (T - i0) * T;
                R *out = G->dattn + ((size_t)b * (lean ? 1 : T)) * w.nq + (size_t)h * hd;
                SUF(attn_head_jvp)(m, window, T, i0, base + qo, dbase + qo, ld, base + ko, dbase + ko, base + vo,
                                   dbase + vo, ld, P, out, (int)w.nq, Wk);
            }
        }
        SUF(linear)(G->d_o + p0 * dim, dim, G->dattn + p0 * w.nq, (int)w.nq, L->o, (int)w.nq, pn, dim, (int)w.nq, 0);
    }
    R *dh = G->dh + p0 * dim;
    if (entry <= LM_AT_O) {
        if (L->post_attn_norm)
            SUF(rmsnorm_jvp)(dh, A->o + p0 * dim, A->rms_o + p0, G->d_o + p0 * dim, L->post_attn_norm, pn, dim, po);
        else
            memcpy(dh, G->d_o + p0 * dim, (size_t)pn * dim * sizeof(R));
        if (entry == LM_AT_X)
            for (int i = 0; i < pn; i++) {
                const R *xr = SUF(resid_row)(dx + r0 * dim, (size_t)dim, (size_t)i, T, lean);
                for (int j = 0; j < dim; j++) dh[(size_t)i * dim + j] += xr[j];
            }
        SUF(rmsnorm_jvp)(G->dhn + p0 * dim, A->h + p0 * dim, A->rms_h + p0, dh, L->ffn_norm, pn, dim, po);
        SUF(linear)(G->dgu + p0 * 2 * w.ffn, (int)(2 * w.ffn), G->dhn + p0 * dim, dim, L->gate_up, dim, pn,
                    (int)(2 * w.ffn), dim, 0);
    }
    if (entry <= LM_AT_GU) {
        SUF(gated_act_jvp)(G->dmlp + p0 * w.ffn, A->gate_up + p0 * 2 * w.ffn, G->dgu + p0 * 2 * w.ffn, pn, (int)w.ffn,
                           m->act);
        SUF(linear)(G->ddown + p0 * dim, dim, G->dmlp + p0 * w.ffn, (int)w.ffn, L->down, (int)w.ffn, pn, dim,
                    (int)w.ffn, 0);
    }
    R *y = dout + p0 * dim;
    if (L->post_ffn_norm)
        SUF(rmsnorm_jvp)(y, A->down + p0 * dim, A->rms_down + p0, G->ddown + p0 * dim, L->post_ffn_norm, pn, dim, po);
    else
        memcpy(y, G->ddown + p0 * dim, (size_t)pn * dim * sizeof(R));
    if (entry <= LM_AT_O)
        for (size_t i = 0; i < (size_t)pn * dim; i++) y[i] += dh[i];
}

/* gout rows (one per window when lean) back to `entry` (see block.h). */
void SUF(lm_block_vjp)(const lm_model *m, int l, const ACTS *A, const TANGENTS *G, const R *rope, int T, int b0,
                       int b1, int lean, lm_entry entry, const R *gout, R *gx) {
    lm_widths w = lm_widths_of(m);
    const LAYERT *L = LAYER(m, l);
    int window = m->layers[l].window, hd = m->head_dim, po = m->norm_plus_one, dim = (int)w.dim, ffn = (int)w.ffn;
    int group = m->n_heads / m->n_kv_heads, n = (b1 - b0) * T, i0 = lean ? T - 1 : 0, ld = (int)w.nqkv;
    size_t r0 = (size_t)b0 * T, p0 = lean ? (size_t)b0 : r0;
    int pn = lean ? b1 - b0 : n;
    const R *g = gout + p0 * dim;
    R *gd = G->ddown + p0 * dim;
    if (L->post_ffn_norm)
        SUF(rmsnorm_vjp)(gd, A->down + p0 * dim, A->rms_down + p0, g, L->post_ffn_norm, pn, dim, po, 0);
    else
        memcpy(gd, g, (size_t)pn * dim * sizeof(R));
    if (entry == LM_AT_DOWN) return;
    SUF(linear_back)(G->dmlp + p0 * ffn, ffn, gd, dim, L->down, ffn, pn, dim, ffn, 0);
    SUF(gated_act_vjp)(G->dgu + p0 * 2 * ffn, A->gate_up + p0 * 2 * ffn, G->dmlp + p0 * ffn, pn, ffn, m->act);
    if (entry == LM_AT_GU) return;
    SUF(linear_back)(G->dhn + p0 * dim, dim, G->dgu + p0 * 2 * ffn, 2 * ffn, L->gate_up, dim, pn, 2 * ffn, dim, 0);
    R *gh = G->dh + p0 * dim;
    memcpy(gh, g, (size_t)pn * dim * sizeof(R));
    SUF(rmsnorm_vjp)(gh, A->h + p0 * dim, A->rms_h + p0, G->dhn + p0 * dim, L->ffn_norm, pn, dim, po, 1);
    if (L->post_attn_norm)
        SUF(rmsnorm_vjp)(G->d_o + p0 * dim, A->o + p0 * dim, A->rms_o + p0, gh, L->post_attn_norm, pn, dim, po, 0);
    else
        memcpy(G->d_o + p0 * dim, gh, (size_t)pn * dim * sizeof(R));
    if (entry == LM_AT_O) return;
    SUF(linear_back)(G->dattn + p0 * w.nq, (int)w.nq, G->d_o + p0 * dim, dim, L->o, (int)w.nq, pn, dim, (int)w.nq, 0);
    for (int r = 0; r < n; r++) memset(G->dqkv + (r0 + r) * ld + w.nq, 0, 2 * w.nkv * sizeof(R));
    for (int b = b0; b < b1; b++) {
        const R *base = A->qkv + (size_t)b * T * ld;
        R *dbase = G->dqkv + (size_t)b * T * ld, *Wk = G->W + (size_t)b * 2 * T * T;
        for (int h = 0; h < m->n_heads; h++) {
            size_t qo = (size_t)i0 * ld + (size_t)h * hd, ko = w.nq + (size_t)(h / group) * hd, vo = ko + w.nkv;
            const R *P = A->probs + ((size_t)b * m->n_heads + h) * (T - i0) * T;
            const R *go = G->dattn + ((size_t)b * (lean ? 1 : T)) * w.nq + (size_t)h * hd;
            SUF(attn_head_vjp)(m, window, T, i0, base + qo, dbase + qo, ld, base + ko, dbase + ko, base + vo, dbase + vo,
                               ld, P, go, (int)w.nq, Wk);
        }
    }
    SUF(qk_tangent)(m, L, A, G->dqkv, rope, T, b0, b1, lean, 1);
    if (entry == LM_AT_QKV) return;
    R *gxn = G->dxn + r0 * dim;
    if (!lean) {
        SUF(linear_back)(gxn, dim, G->dqkv + r0 * ld, ld, L->qkv, dim, n, ld, dim, 0);
    } else {
        SUF(linear_back)(gxn, dim, G->dqkv + r0 * ld + w.nq, ld, L->qkv + w.nq * dim, dim, n, ld - (int)w.nq, dim, 0);
        SUF(linear_back)(gxn + (size_t)(T - 1) * dim, T * dim, G->dqkv + (r0 + T - 1) * ld, T * ld, L->qkv, dim, b1 - b0,
                         (int)w.nq, dim, 1);
    }
    SUF(rmsnorm_vjp)(gx + r0 * dim, A->x + r0 * dim, A->rms_x + r0, gxn, L->attn_norm, n, dim, po, 0);
    for (int i = 0; i < pn; i++) {
        R *xr = (R *)SUF(resid_row)(gx + r0 * dim, (size_t)dim, (size_t)i, T, lean);
        for (int j = 0; j < dim; j++) xr[j] += gh[(size_t)i * dim + j];
    }
}

void SUF(lm_block_decode)(const lm_model *m, int l, R *x, int nwin, const int *pos, const int *win, R *kv, int maxT,
                          const R *rope, R *S) {
    lm_widths w = lm_widths_of(m);
    const LAYERT *L = LAYER(m, l);
    int window = m->layers[l].window, hd = m->head_dim, half = hd / 2, po = m->norm_plus_one, dim = (int)w.dim;
    int group = m->n_heads / m->n_kv_heads, ld = (int)w.nqkv, ffn = (int)w.ffn;
    R eps = (R)EPS(m);
    R *xn = S, *rms = xn + (size_t)nwin * dim, *qkv = rms + nwin, *attn = qkv + (size_t)nwin * ld,
      *o = attn + (size_t)nwin * w.nq, *h = o + (size_t)nwin * dim, *hn = h + (size_t)nwin * dim,
      *gu = hn + (size_t)nwin * dim, *mlp = gu + (size_t)nwin * 2 * ffn, *down = mlp + (size_t)nwin * ffn,
      *P = down + (size_t)nwin * dim;
    R rq;
    SUF(rmsnorm)(xn, rms, x, L->attn_norm, nwin, dim, eps, po);
    SUF(linear)(qkv, ld, xn, dim, L->qkv, dim, nwin, ld, dim, 0);
    for (int b = 0; b < nwin; b++) {
        int t = pos[b];
        const R *c = rope + (size_t)t * hd, *s = c + half;
        R *row = qkv + (size_t)b * ld;
        for (int hh = 0; hh < m->n_heads + m->n_kv_heads; hh++) {
            R *v = row + (size_t)hh * hd;
            if (L->q_norm) SUF(rmsnorm)(v, &rq, v, hh < m->n_heads ? L->q_norm : L->k_norm, 1, hd, eps, po);
            SUF(rope)(v, c, s, hd, m->rope_adjacent);
        }
        R *cache = kv + (size_t)win[b] * maxT * 2 * w.nkv;
        memcpy(cache + (size_t)t * 2 * w.nkv, row + w.nq, 2 * w.nkv * sizeof(R));
        for (int hh = 0; hh < m->n_heads; hh++) {
            const R *k = cache + (size_t)(hh / group) * hd, *v = k + w.nkv;
            SUF(attn_head)(m, window, t + 1, t, row + (size_t)hh * hd, ld, k, v, (int)(2 * w.nkv), P,
                           attn + (size_t)b * w.nq + (size_t)hh * hd, (int)w.nq);
        }
    }
    SUF(linear)(o, dim, attn, (int)w.nq, L->o, (int)w.nq, nwin, dim, (int)w.nq, 0);
    size_t nd = (size_t)nwin * dim;
    if (L->post_attn_norm) {
        SUF(rmsnorm)(h, rms, o, L->post_attn_norm, nwin, dim, eps, po);
        for (size_t i = 0; i < nd; i++) h[i] += x[i];
    } else {
        for (size_t i = 0; i < nd; i++) h[i] = x[i] + o[i];
    }
    SUF(rmsnorm)(hn, rms, h, L->ffn_norm, nwin, dim, eps, po);
    SUF(linear)(gu, 2 * ffn, hn, dim, L->gate_up, dim, nwin, 2 * ffn, dim, 0);
    SUF(gated_act)(mlp, gu, nwin, ffn, m->act);
    SUF(linear)(down, dim, mlp, ffn, L->down, ffn, nwin, dim, ffn, 0);
    if (L->post_ffn_norm) {
        SUF(rmsnorm)(x, rms, down, L->post_ffn_norm, nwin, dim, eps, po);
        for (size_t i = 0; i < nd; i++) x[i] += h[i];
    } else {
        for (size_t i = 0; i < nd; i++) x[i] = h[i] + down[i];
    }
}
