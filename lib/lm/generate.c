#include "lm/generate.h"
#include "core/err.h"
#include "lm/block.h"
#include "lm/forward.h"
#include <stdlib.h>
#include <string.h>

struct lm_gen {
    const lm_model *m;
    int B, T, maxT, max_new;
    float *kv;              /* [n_layers, B, maxT, 2 nkv] keys | values of every position so far */
    int *ngen;              /* [B] tokens generated */
    int32_t *last;          /* [B] the last token generated: the input of the next decode step */
    float *logits0;         /* [B, vocab] logits at the prompts' last position */
    float *rope;            /* [n_layers, maxT, head_dim] */
    float *x, *h, *rms, *logits, *S;
    int *pos, *win, *idx;
};

lm_gen *lm_gen_start(const lm_model *m, const int32_t *ids, int B, int T, int max_new) {
    lm_gen *g = xcalloc(1, sizeof *g);
    lm_widths w = lm_widths_of(m);
    g->m = m;
    g->B = B;
    g->T = T;
    g->max_new = max_new;
    g->maxT = T + (max_new > 1 ? max_new - 1 : 0);
    if (g->maxT > m->max_pos) entk_die(ENTK_EXIT_USAGE, "windows of %d tokens exceed the model's %d positions", g->maxT, m->max_pos);
    size_t L = (size_t)m->n_layers, kvw = 2 * w.nkv;
    g->kv = lm_alloc(L * B * g->maxT * kvw);
    g->logits0 = lm_alloc((size_t)B * m->vocab);
    g->rope = lm_alloc(L * g->maxT * m->head_dim);
    for (int l = 0; l < m->n_layers; l++) lm_rope_table_f32(m, l, g->maxT, g->rope + (size_t)l * g->maxT * m->head_dim);
    g->ngen = xcalloc((size_t)B, sizeof *g->ngen);
    g->last = xcalloc((size_t)B, sizeof *g->last);
    g->x = lm_alloc((size_t)B * w.dim);
    g->h = lm_alloc((size_t)B * w.dim);
    g->rms = lm_alloc((size_t)B);
    g->logits = lm_alloc((size_t)B * m->vocab);
    g->S = lm_alloc(lm_decode_elems(m, B, g->maxT));
    g->pos = xmalloc((size_t)B * sizeof *g->pos);
    g->win = xmalloc((size_t)B * sizeof *g->win);
    g->idx = xmalloc((size_t)B * sizeof *g->idx);
    /* the prompts: one batched forward, keeping each layer's keys and values */
    float *kv = lm_alloc(L * B * T * kvw);
    lm_acts *a = lm_acts_new(m, B, T, m->n_layers);
    int lastpos = T - 1;
    lm_outputs o = {.npos = 1, .pos = &lastpos, .logits = g->logits0, .kv = kv};
    lm_forward(m, ids, a, &o);
    lm_acts_free(a);
    for (size_t l = 0; l < L; l++)
        for (int b = 0; b < B; b++)
            memcpy(g->kv + ((l * B + b) * g->maxT) * kvw, kv + ((l * B + b) * T) * kvw, (size_t)T * kvw * sizeof(float));
    free(kv);
    return g;
}

/* The first index of the largest logit (ties go to the lower id, as a full forward picks). */
static int32_t argmax(const float *lg, int n) {
    int best = 0;
    for (int v = 1; v < n; v++)
        if (lg[v] > lg[best]) best = v;
    return best;
}

void lm_gen_step(lm_gen *g, const int *active, int na, int32_t *next) {
    const lm_model *m = g->m;
    size_t dim = (size_t)m->dim, L = (size_t)m->n_layers, kvw = 2 * lm_widths_of(m).nkv;
    int nd = 0; /* prompts that need a decode step (they have generated before) */
    for (int i = 0; i < na; i++) {
        int b = active[i];
        if (b < 0 || b >= g->B || g->ngen[b] >= g->max_new) entk_die(ENTK_EXIT_FAIL, "generation step for prompt %d out of range", b);
        if (g->ngen[b] == 0) {
            next[i] = argmax(g->logits0 + (size_t)b * m->vocab, m->vocab);
            continue;
        }
        const float *e = m->embed + (size_t)g->last[b] * dim;
        for (size_t j = 0; j < dim; j++) g->x[nd * dim + j] = e[j] * m->embed_scale;
        g->pos[nd] = g->T + g->ngen[b] - 1;
        g->win[nd] = b;
        g->idx[nd++] = i;
    }
    if (nd > 0) {
        for (size_t l = 0; l < L; l++)
            lm_block_decode_f32(m, (int)l, g->x, nd, g->pos, g->win, g->kv + l * g->B * g->maxT * kvw, g->maxT,
                                g->rope + l * g->maxT * m->head_dim, g->S);
        lm_rmsnorm_f32(m, g->h, g->rms, g->x, m->final_norm, nd, (int)dim);
        lm_logits(m, g->h, (int)dim, nd, g->logits);
        for (int k = 0; k < nd; k++) next[g->idx[k]] = argmax(g->logits + (size_t)k * m->vocab, m->vocab);
    }
    for (int i = 0; i < na; i++) {
        g->last[active[i]] = next[i];
        g->ngen[active[i]]++;
    }
}

void lm_gen_free(lm_gen *g) {
    if (!g) return;
    free(g->kv); free(g->ngen); free(g->last); free(g->logits0); free(g->rope);
    free(g->x); free(g->h); free(g->rms); free(g->logits); free(g->S);
    free(g->pos); free(g->win); free(g->idx);
    free(g);
}

void lm_generate(const lm_model *m, const int32_t *ids, int B, int T, int n, int32_t *out) {
    if (n <= 0) return;
    lm_gen *g = lm_gen_start(m, ids, B, T, n);
    int *all = xmalloc((size_t)B * sizeof *all);
    int32_t *next = xmalloc((size_t)B * sizeof *next);
    for (int b = 0; b < B; b++) all[b] = b;
    for (int s = 0; s < n; s++) {
        lm_gen_step(g, all, B, next);
        for (int b = 0; b < B; b++) out[(size_t)b * n + s] = next[b];
        entk_progress("generating", s + 1, n);
    }
    entk_progress_end();
    free(all);
    free(next);
    lm_gen_free(g);
}
