/* The operations of a decoder block for one float type R, each with its JVP (forward-mode tangent)
 * and VJP (reverse-mode gradient) beside it. Included twice by lm/block.c (R = float with suffix
 * _f32, R = double with _f64): f32 is what entk runs, f64 is how the derivatives are checked
 * against autograd to 1e-10. The f32 forward operations are exactly the ones entk has always run
 * (same expressions, same order), so outputs keep their bits.
 *
 * Conventions: rows of length `dim` are contiguous; a JVP maps a tangent of the inputs to a tangent
 * of the outputs at the point the forward saved (x, 1/rms, probabilities); a VJP maps a gradient
 * of the outputs to a gradient of the inputs and, with acc = 1, adds it to what is there (inputs
 * reached along two paths, as the residual stream is). */

/* ------------------------------------------------------------------ RMSNorm
 * y = x s g,  s = 1/sqrt(mean(x^2) + eps),  g = w (Llama) or 1 + w (Gemma). inv[r] = s. */
static void SUF(rmsnorm)(R *out, R *inv, const R *x, const R *w, int rows, int dim, R eps, int plus_one) {
    for (int r = 0; r < rows; r++) {
        const R *xr = x + (size_t)r * dim;
        R *o = out + (size_t)r * dim;
        R ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < dim; j++) ss += xr[j] * xr[j];
        R s = (R)1 / SQRT(ss / (R)dim + eps);
        if (inv) inv[r] = s;
        if (plus_one) {
#pragma omp simd
            for (int j = 0; j < dim; j++) o[j] = (xr[j] * s) * ((R)1 + w[j]);
        } else {
#pragma omp simd
            for (int j = 0; j < dim; j++) o[j] = w[j] * (xr[j] * s);
        }
    }
}

static inline R SUF(gain)(const R *w, int j, int plus_one) { return plus_one ? (R)1 + w[j] : w[j]; }

/* dy = g (s dx - x s^3 (x.dx) / dim) */
static void SUF(rmsnorm_jvp)(R *dy, const R *x, const R *inv, const R *dx, const R *w, int rows, int dim, int plus_one) {
    for (int r = 0; r < rows; r++) {
        const R *xr = x + (size_t)r * dim, *d = dx + (size_t)r * dim;
        R *o = dy + (size_t)r * dim, s = inv[r], xd = 0;
        for (int j = 0; j < dim; j++) xd += xr[j] * d[j];
        R c = s * s * s * xd / (R)dim;
        for (int j = 0; j < dim; j++) o[j] = SUF(gain)(w, j, plus_one) * (s * d[j] - xr[j] * c);
    }
}

/* dx (+)= s (g dy) - x s^3 (x.(g dy)) / dim */
static void SUF(rmsnorm_vjp)(R *dx, const R *x, const R *inv, const R *dy, const R *w, int rows, int dim, int plus_one,
                             int acc) {
    for (int r = 0; r < rows; r++) {
        const R *xr = x + (size_t)r * dim, *g = dy + (size_t)r * dim;
        R *o = dx + (size_t)r * dim, s = inv[r], xg = 0;
        for (int j = 0; j < dim; j++) xg += xr[j] * SUF(gain)(w, j, plus_one) * g[j];
        R c = s * s * s * xg / (R)dim;
        for (int j = 0; j < dim; j++) {
            R v = s * SUF(gain)(w, j, plus_one) * g[j] - xr[j] * c;
            o[j] = acc ? o[j] + v : v;
        }
    }
}

/* ------------------------------------------------------------------ gated activation
 * mlp = act(gate) * up over rows of [gate | up] (2 ffn wide).
 * gelu_tanh(g) = 0.5 g (1 + tanh(u)) = g / (1 + e^(-2u)), u = sqrt(2/pi) (g + 0.044715 g^3);
 * silu(g) = g / (1 + e^(-g)). */
static void SUF(gated_act)(R *out, const R *gu, int rows, int ffn, lm_act act) {
    for (int r = 0; r < rows; r++) {
        const R *g = gu + (size_t)r * 2 * ffn, *u = g + ffn;
        R *o = out + (size_t)r * ffn;
        if (act == LM_ACT_GELU_TANH) {
#pragma omp simd
            for (int j = 0; j < ffn; j++) {
                R x = g[j];
                R z = (R)-1.5957691216057308 * (x + (R)0.044715 * x * x * x);
                o[j] = x / ((R)1 + EXP(z)) * u[j];
            }
        } else {
#pragma omp simd
            for (int j = 0; j < ffn; j++) o[j] = g[j] / ((R)1 + EXP(-g[j])) * u[j];
        }
    }
}

/* act(x) = x sigma and its derivative: sigma + x sigma (1 - sigma) z' with z the sigmoid's argument */
static inline void SUF(act_d)(R x, lm_act act, R *a, R *da) {
    if (act == LM_ACT_GELU_TANH) {
        R sg = (R)1 / ((R)1 + EXP((R)-1.5957691216057308 * (x + (R)0.044715 * x * x * x)));
        *a = x * sg;
        *da = sg + x * sg * ((R)1 - sg) * (R)1.5957691216057308 * ((R)1 + (R)3 * (R)0.044715 * x * x);
    } else {
        R sg = (R)1 / ((R)1 + EXP(-x));
        *a = x * sg;
        *da = sg + x * sg * ((R)1 - sg);
    }
}

/* dmlp = act'(g) dg u + act(g) du */
static void SUF(gated_act_jvp)(R *dout, const R *gu, const R *dgu, int rows, int ffn, lm_act act) {
    for (int r = 0; r < rows; r++) {
        const R *g = gu + (size_t)r * 2 * ffn, *u = g + ffn, *dg = dgu + (size_t)r * 2 * ffn, *du = dg + ffn;
        R *o = dout + (size_t)r * ffn;
        for (int j = 0; j < ffn; j++) {
            R a, da;
            SUF(act_d)(g[j], act, &a, &da);
            o[j] = da * dg[j] * u[j] + a * du[j];
        }
    }
}

/* [dgate | dup] = [gmlp u act'(g) | gmlp act(g)] */
static void SUF(gated_act_vjp)(R *dgu, const R *gu, const R *gmlp, int rows, int ffn, lm_act act) {
    for (int r = 0; r < rows; r++) {
        const R *g = gu + (size_t)r * 2 * ffn, *u = g + ffn, *gm = gmlp + (size_t)r * ffn;
        R *dg = dgu + (size_t)r * 2 * ffn, *du = dg + ffn;
        for (int j = 0; j < ffn; j++) {
            R a, da;
            SUF(act_d)(g[j], act, &a, &da);
            dg[j] = gm[j] * u[j] * da;
            du[j] = gm[j] * a;
        }
    }
}

/* ------------------------------------------------------------------ RoPE
 * Rotates one head vector v[hd] by the angles whose cos/sin are c[hd/2], s[hd/2]. Linear in v, so
 * its JVP is itself; its VJP is the rotation back (rope_back). */
static inline void SUF(rope)(R *v, const R *c, const R *s, int hd, int adjacent) {
    int half = hd / 2;
    if (adjacent) {
        for (int i = 0; i < half; i++) {
            R a = v[2 * i], b = v[2 * i + 1];
            v[2 * i] = a * c[i] - b * s[i];
            v[2 * i + 1] = a * s[i] + b * c[i];
        }
    } else {
#pragma omp simd
        for (int i = 0; i < half; i++) {
            R a = v[i], b = v[i + half];
            v[i] = a * c[i] - b * s[i];
            v[i + half] = b * c[i] + a * s[i];
        }
    }
}

static inline void SUF(rope_back)(R *v, const R *c, const R *s, int hd, int adjacent) {
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        int i0 = adjacent ? 2 * i : i, i1 = adjacent ? 2 * i + 1 : i + half;
        R a = v[i0], b = v[i1];
        v[i0] = a * c[i] + b * s[i];
        v[i1] = b * c[i] - a * s[i];
    }
}

/* ------------------------------------------------------------------ attention of one head
 * One window of T positions; queries i in [i0, T) (i0 = 0: all; T - 1: the last position only).
 * q: the query rows from i0 on (ldq apart), k and v rows (ldkv) at every position, P: [T - i0, T]
 * softmax probabilities (row i - i0), out: the output rows of the queries (ldo). Key j is seen by query i iff
 * lo(i) <= j <= i, lo(i) = max(0, i - window + 1) (window 0: 0). */
static inline int SUF(lo)(int i, int window) { return window > 0 && i - window + 1 > 0 ? i - window + 1 : 0; }

static void SUF(attn_head)(const lm_model *m, int window, int T, int i0, const R *q, int ldq, const R *k, const R *v,
                           int ldkv, R *P, R *out, int ldo) {
    int hd = m->head_dim, nq = T - i0;
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nq, T, hd, (R)ATTN_SCALE(m), q, ldq, k, ldkv, (R)0,
         P, T);
    for (int i = i0; i < T; i++) {
        R *s = P + (size_t)(i - i0) * T;
        int lo = SUF(lo)(i, window);
        if (ATTN_SOFTCAP(m) > 0) {
            R c = (R)ATTN_SOFTCAP(m);
            for (int j = lo; j <= i; j++) s[j] = c * TANH(s[j] / c);
        }
        R mx = s[lo];
        for (int j = lo + 1; j <= i; j++) mx = s[j] > mx ? s[j] : mx;
        R sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int j = lo; j <= i; j++) {
            s[j] = EXP(s[j] - mx);
            sum += s[j];
        }
        R inv = (R)1 / sum;
        for (int j = 0; j < lo; j++) s[j] = 0;
#pragma omp simd
        for (int j = lo; j <= i; j++) s[j] *= inv;
        for (int j = i + 1; j < T; j++) s[j] = 0;
    }
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, T, (R)1, P, T, v, ldkv, (R)0, out, ldo);
}

/* The softmax's and the softcap's derivatives, in place on d (rows [i0, T)). Forward mode (JVP,
 * back = 0): d is the tangent of the pre-cap scores; it becomes the tangent of P,
 * P (d' - rowsum(P d')) with d' = d (1 - tanh^2). Reverse mode (VJP, back = 1): d is the gradient
 * of P; it becomes the gradient of the pre-cap scores, (P (d - rowsum(P d))) (1 - tanh^2). The
 * pre-cap scores are recomputed from q and k into W (cheaper than keeping them). */
static void SUF(softmax_back)(const lm_model *m, int window, int T, int i0, const R *q, int ldq, const R *k, int ldkv,
                              const R *P, R *d, R *W, int back) {
    int nq = T - i0;
    R c = (R)ATTN_SOFTCAP(m);
    if (c > 0)
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nq, T, m->head_dim, (R)ATTN_SCALE(m), q, ldq, k, ldkv, (R)0, W, T);
    for (int i = i0; i < T; i++) {
        const R *p = P + (size_t)(i - i0) * T;
        R *dr = d + (size_t)(i - i0) * T, *sr = W + (size_t)(i - i0) * T;
        int lo = SUF(lo)(i, window);
        if (c > 0 && !back)
            for (int j = lo; j <= i; j++) {
                R t = TANH(sr[j] / c);
                dr[j] *= (R)1 - t * t;
            }
        R dot = 0;
        for (int j = lo; j <= i; j++) dot += p[j] * dr[j];
        for (int j = 0; j < T; j++) dr[j] = j >= lo && j <= i ? p[j] * (dr[j] - dot) : (R)0;
        if (c > 0 && back)
            for (int j = lo; j <= i; j++) {
                R t = TANH(sr[j] / c);
                dr[j] *= (R)1 - t * t;
            }
    }
}

/* dout = dP v + P dv with dP = softmax_back(scale (dq k^T + q dk^T)); q, dq, dout from row i0 as in
 * attn_head. W: scratch of 2 (T - i0) T. */
static void SUF(attn_head_jvp)(const lm_model *m, int window, int T, int i0, const R *q, const R *dq, int ldq,
                               const R *k, const R *dk, const R *v, const R *dv, int ldkv, const R *P, R *dout, int ldo,
                               R *W) {
    int hd = m->head_dim, nq = T - i0;
    R *dS = W, *W2 = W + (size_t)nq * T, sc = (R)ATTN_SCALE(m);
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nq, T, hd, sc, dq, ldq, k, ldkv, (R)0, dS, T);
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nq, T, hd, sc, q, ldq, dk, ldkv, (R)1, dS, T);
    SUF(softmax_back)(m, window, T, i0, q, ldq, k, ldkv, P, dS, W2, 0);
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, T, (R)1, dS, T, v, ldkv, (R)0, dout, ldo);
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, T, (R)1, P, T, dv, ldkv, (R)1, dout, ldo);
}

/* From gout (the query rows from i0): dq (those rows, overwritten), dk and dv (every row, added to:
 * heads that share a key/value head add up). W: scratch of 2 (T - i0) T. */
static void SUF(attn_head_vjp)(const lm_model *m, int window, int T, int i0, const R *q, R *dq, int ldq, const R *k,
                               R *dk, const R *v, R *dv, int ldkv, const R *P, const R *gout, int ldo, R *W) {
    int hd = m->head_dim, nq = T - i0;
    R *dP = W, *W2 = W + (size_t)nq * T, sc = (R)ATTN_SCALE(m);
    const R *g = gout;
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nq, T, hd, (R)1, g, ldo, v, ldkv, (R)0, dP, T);
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, nq, (R)1, P, T, g, ldo, (R)1, dv, ldkv);
    SUF(softmax_back)(m, window, T, i0, q, ldq, k, ldkv, P, dP, W2, 1);
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, T, sc, dP, T, k, ldkv, (R)0, dq, ldq);
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, nq, sc, dP, T, q, ldq, (R)1, dk, ldkv);
}
