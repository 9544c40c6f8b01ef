/* One chunk of windows of the Setting 3 operator (include/lm/entk.h) in one float type R: its
 * forward through blocks layer..last, and its JVP (J u) and VJP (J^T z). Included twice by
 * lm/entk.c (R = float, _f32; R = double, _f64). */

/* The activations one chunk keeps: blocks layer..last (A[i] is block layer + i, the last one lean),
 * the residual stream between them, and the final norm at the last positions. */
typedef struct {
    int nwin, nb;
    ACTS *A;            /* [nb] */
    R *stream;          /* [nb, nwin T, dim]: x of each block */
    R *out_last;        /* [nwin, dim]: the last block's output at the last positions */
    R *rms_final;       /* [nwin] */
    R *hidden;          /* [nwin, dim] */
    R *mem;
    int chunk;          /* the chunk whose forward it holds, -1: none */
} SUF(cacts);

/* What a thread needs for the JVP and VJP of a chunk of up to nwin windows. */
typedef struct {
    TANGENTS G;
    R *d0, *d1;         /* [nwin T, dim] tangents / gradients of the residual stream, in turn */
    R *dl;              /* [nwin, dim] at the last positions */
    R *z;               /* [nwin, D] */
    R *mem;
} SUF(tscratch);

static size_t SUF(cacts_elems)(const lm_model *m, int layer, int nwin, int T) {
    size_t R_ = (size_t)nwin * T, dim = (size_t)m->dim, n = 0;
    for (int l = layer; l < m->n_layers; l++) n += lm_acts_elems(m, (size_t)nwin, (size_t)T, 1, l == m->n_layers - 1);
    return n + (size_t)(m->n_layers - layer) * R_ * dim + 2 * (size_t)nwin * dim + (size_t)nwin + 64;
}

static SUF(cacts) *SUF(cacts_new)(const lm_model *m, int layer, int nwin, int T) {
    SUF(cacts) *C = xcalloc(1, sizeof *C);
    size_t R_ = (size_t)nwin * T, dim = (size_t)m->dim;
    C->nwin = nwin;
    C->nb = m->n_layers - layer;
    C->chunk = -1;
    C->A = xcalloc((size_t)C->nb, sizeof(ACTS));
    R *p = (R *)lm_alloc(SUF(cacts_elems)(m, layer, nwin, T) * (sizeof(R) / sizeof(float)));
    C->mem = p;
    C->stream = p;
    p += (size_t)C->nb * R_ * dim;
    C->out_last = p;
    p += (size_t)nwin * dim;
    C->hidden = p;
    p += (size_t)nwin * dim;
    C->rms_final = p;
    p += ((size_t)nwin + 15) / 16 * 16;
    for (int i = 0; i < C->nb; i++) {
        int lean = layer + i == m->n_layers - 1;
        CARVE_ACTS(&C->A[i], &p, m, (size_t)nwin, (size_t)T, 1, lean);
        C->A[i].x = C->stream + (size_t)i * R_ * dim;
        C->A[i].out = i + 1 < C->nb ? C->stream + (size_t)(i + 1) * R_ * dim : C->out_last;
    }
    return C;
}

static void SUF(cacts_free)(SUF(cacts) *C) {
    if (!C) return;
    free(C->mem);
    free(C->A);
    free(C);
}

static SUF(tscratch) *SUF(tscratch_new)(const lm_model *m, int nwin, int T) {
    SUF(tscratch) *S = xcalloc(1, sizeof *S);
    size_t R_ = (size_t)nwin * T, dim = (size_t)m->dim;
    size_t n = lm_tangents_elems(m, (size_t)nwin, (size_t)T) + 2 * R_ * dim + 2 * (size_t)nwin * dim + 64;
    R *p = (R *)lm_alloc(n * (sizeof(R) / sizeof(float)));
    S->mem = p;
    CARVE_TANGENTS(&S->G, &p, m, (size_t)nwin, (size_t)T);
    S->d0 = p;
    S->d1 = p + R_ * dim;
    S->dl = S->d1 + R_ * dim;
    S->z = S->dl + (size_t)nwin * dim;
    return S;
}

static void SUF(tscratch_free)(SUF(tscratch) *S) {
    if (!S) return;
    free(S->mem);
    free(S);
}

/* The forward of chunk c (windows w0 .. w0 + nwin) from x_L. */
static void SUF(chunk_forward)(const lm_entk *op, const R *x, const R *rope, int c, SUF(cacts) *C) {
    const lm_model *m = op->m;
    size_t dim = (size_t)m->dim, R_ = (size_t)C->nwin * op->T;
    memcpy(C->stream, x + (size_t)c * op->chunk * op->T * dim, R_ * dim * sizeof(R));
    for (int i = 0; i < C->nb; i++) {
        int l = op->layer + i;
        SUF(lm_block_forward)(m, l, &C->A[i], rope + (size_t)i * op->T * m->head_dim, op->T, 0, C->nwin,
                              l == m->n_layers - 1);
    }
    SUF(lm_rmsnorm)(m, C->hidden, C->rms_final, C->out_last, FINAL_NORM(m), C->nwin, (int)dim);
    C->chunk = c;
}

/* Where the weight's tangent enters block `layer` (see lm/block.h): the linear map's input rows
 * (in, ldin), the tangent buffer of its output (buf, ldbuf, from column col0), how many rows, and
 * what to zero first (zn elements from zero: the weight is one part of a stacked map, q|k|v or
 * gate|up, whose other parts have no tangent). */
typedef struct { const R *in; int ldin; R *buf; int ldbuf; int rows, col0; R *zero; size_t zn; lm_entry entry; } SUF(pio);

static SUF(pio) SUF(param_io)(const lm_entk *op, const ACTS *A, const TANGENTS *G, int nwin) {
    const lm_model *m = op->m;
    lm_widths w = lm_widths_of(m);
    int T = op->T, lean = op->layer == m->n_layers - 1, R_ = nwin * T, P_ = lean ? nwin : R_;
    size_t ngu = (size_t)P_ * 2 * w.ffn, nqkv = (size_t)R_ * w.nqkv;
    int dim = (int)w.dim, ffn2 = (int)(2 * w.ffn), ld = (int)w.nqkv;
    switch (op->param) {
    case LMP_DOWN: return (SUF(pio)){A->mlp, (int)w.ffn, G->ddown, dim, P_, 0, NULL, 0, LM_AT_DOWN};
    case LMP_GATE: return (SUF(pio)){A->hn, dim, G->dgu, ffn2, P_, 0, G->dgu, ngu, LM_AT_GU};
    case LMP_UP: return (SUF(pio)){A->hn, dim, G->dgu, ffn2, P_, (int)w.ffn, G->dgu, ngu, LM_AT_GU};
    case LMP_O: return (SUF(pio)){A->attn, (int)w.nq, G->d_o, dim, P_, 0, NULL, 0, LM_AT_O};
    case LMP_Q:
        if (lean) /* queries only at the last positions */
            return (SUF(pio)){A->xn + (size_t)(T - 1) * dim, T * dim, G->dqkv + (size_t)(T - 1) * ld, T * ld, nwin, 0,
                              G->dqkv, nqkv, LM_AT_QKV};
        return (SUF(pio)){A->xn, dim, G->dqkv, ld, R_, 0, G->dqkv, nqkv, LM_AT_QKV};
    case LMP_K: return (SUF(pio)){A->xn, dim, G->dqkv, ld, R_, (int)w.nq, G->dqkv, nqkv, LM_AT_QKV};
    default: return (SUF(pio)){A->xn, dim, G->dqkv, ld, R_, (int)(w.nq + w.nkv), G->dqkv, nqkv, LM_AT_QKV};
    }
}

/* Ju = J u (u given), then grad = J^T z (grad given; z NULL: z = Ju S). */
static void SUF(chunk_tangents)(const lm_entk *op, const R *rope, const SUF(cacts) *C, SUF(tscratch) *S, const R *S_R,
                                const R *u, R *Ju, const R *z, R *grad) {
    const lm_model *m = op->m;
    int nb = C->nb, nwin = C->nwin, T = op->T, dim = m->dim, D = op->D;
    SUF(pio) io = SUF(param_io)(op, &C->A[0], &S->G, nwin);
    size_t rope_l = (size_t)T * m->head_dim;
    if (u) {
        if (io.zero) memset(io.zero, 0, io.zn * sizeof(R));
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, io.rows, (int)op->out, (int)op->in, (R)1, io.in, io.ldin, u,
             (int)op->in, (R)0, io.buf + io.col0, io.ldbuf);
        R *din = NULL, *dout;
        for (int i = 0; i < nb; i++) {
            int l = op->layer + i, lean = i == nb - 1;
            dout = lean ? S->dl : (i % 2 ? S->d1 : S->d0);
            SUF(lm_block_jvp)(m, l, &C->A[i], &S->G, rope + (size_t)i * rope_l, T, 0, nwin, lean,
                              i == 0 ? io.entry : LM_AT_X, din, dout);
            din = dout;
        }
        SUF(lm_rmsnorm_jvp)(m, Ju, C->out_last, C->rms_final, S->dl, FINAL_NORM(m), nwin, dim);
    }
    if (!grad) return;
    if (!z) {
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nwin, D, D, (R)1, Ju, D, S_R, D, (R)0, S->z, D);
        z = S->z;
    }
    SUF(lm_rmsnorm_vjp)(m, S->dl, C->out_last, C->rms_final, z, FINAL_NORM(m), nwin, dim);
    const R *gin = S->dl;
    for (int i = nb - 1; i >= 0; i--) {
        int l = op->layer + i, lean = i == nb - 1;
        R *gx = i % 2 ? S->d0 : S->d1;
        SUF(lm_block_vjp)(m, l, &C->A[i], &S->G, rope + (size_t)i * rope_l, T, 0, nwin, lean,
                          i == 0 ? io.entry : LM_AT_X, gin, gx);
        gin = gx;
    }
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)op->out, (int)op->in, io.rows, (R)1, io.buf + io.col0, io.ldbuf,
         io.in, io.ldin, (R)0, grad, (int)op->in);
}

/* The template's parameters end with it, so the next instance defines them afresh. */
#undef R
#undef SUF
#undef GEMM
#undef ACTS
#undef TANGENTS
#undef CARVE_ACTS
#undef CARVE_TANGENTS
#undef FINAL_NORM
