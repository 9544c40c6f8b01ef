/* tagger_beam: one POS stage over a whole sentence: a beam search over its (UPOS, XPOS)
 * sequences, and its training as a structured perceptron with max-violation updates.
 *
 * Why: a greedy tagger commits to each word's tags before it sees how they fit the words that
 * follow, and learns from its own one-word decisions. The beam keeps the best few histories
 * (the tags of the two previous words decide the history features), and the update compares
 * whole prefixes, so the weights learn what makes a sequence right. */
#include "tagger_impl.h"
#include "core/err.h"
#include <stdlib.h>
#include <string.h>

#define KU 3          /* UPOS candidates of each beam item that are expanded */
#define MAXCLS 1024   /* classes of a model (the model file's limit) */

void tbeam_free(tbeam *b) {
    free(b->it);
    free(b->cnt);
    free(b->wkeys);
    free(b->nwk);
    free(b->wsu);
    free(b->wsx);
    memset(b, 0, sizeof *b);
}

static void tbeam_reserve(tbeam *b, int n, const tstage *st) {
    if (n <= b->cap && st->nu <= b->nu && st->nx <= b->nx) return;
    tbeam_free(b);
    b->cap = n + 64;
    b->nu = st->nu;
    b->nx = st->nx;
    size_t cap = (size_t)b->cap;
    b->it = xmalloc(cap * TAG_BEAM * sizeof *b->it);
    b->cnt = xmalloc(cap * sizeof *b->cnt);
    b->wkeys = xmalloc(cap * MAXKEYS * sizeof *b->wkeys);
    b->nwk = xmalloc(cap * sizeof *b->nwk);
    b->wsu = xmalloc(cap * (size_t)b->nu * sizeof *b->wsu);
    b->wsx = xmalloc(cap * (size_t)b->nx * sizeof *b->wsx);
}

static void tscore_add(const tscorer *s, const uint64_t *k, int nk, float *sc) {
    if (s->p) ptrain_add_scores(s->p, k, nk, sc);
    else pmodel_add_scores(s->m, k, nk, sc);
}

/* The tags of the two previous words: class ids, or HPAD1 / HPAD2 for "before the start". */
enum { HPAD1 = -1, HPAD2 = -2 };
typedef struct {
    int u1, x1, u2, x2;
} hist;

static const char *hname(const char *const *names, int id) {
    return id >= 0 ? names[id] : id == HPAD1 ? "-START-" : "-START2-";
}

static int hist_eq(hist a, hist b) { return a.u1 == b.u1 && a.x1 == b.x1 && a.u2 == b.u2 && a.x2 == b.x2; }

/* The history of a beam item at word i extending item k of word i - 1. */
static hist item_hist(const tbeam *bm, int i, int k) {
    hist h = {HPAD1, HPAD1, HPAD2, HPAD2};
    if (i == 0) return h;
    const bitem *p = &bm->it[(size_t)(i - 1) * TAG_BEAM + (size_t)k];
    h.u1 = p->u, h.x1 = p->x;
    if (i == 1) {
        h.u2 = h.x2 = HPAD1;
    } else {
        const bitem *g = &bm->it[(size_t)(i - 2) * TAG_BEAM + (size_t)p->back];
        h.u2 = g->u, h.x2 = g->x;
    }
    return h;
}

/* Domain adaptation (Daume III, "Frustratingly easy domain adaptation", 2007): while training,
 * every feature also in a copy private to the sentence's domain (sctx.domain), so the shared
 * weights learn what holds in both and each copy what holds in its domain alone. Child speech
 * (CHILDES) tags many words otherwise than web text ("well", "there", "like", interjections);
 * without the copies it pulls the shared weights towards it (EWT dev UPOS 95.28 % without, 95.55 %
 * with). A trained model has the written copies folded in (KEY_COPY_WRITTEN), so tagging adds
 * none. k has room for 2 n keys. */
static int augment(const tstage *st, const sctx *c, uint64_t *k, int n) {
    if (!st->su.p) return n;
    uint64_t salt = c->domain ? KEY_COPY_SPEECH : KEY_COPY_WRITTEN;
    for (int q = 0; q < n; q++) k[n + q] = k[q] ^ salt;
    return 2 * n;
}

/* History keys of the UPOS (which = 0) or XPOS (1) model. */
static int hist_keys(const tstage *st, const sctx *c, int i, hist h, int which, uint64_t *k) {
    const char *r = st->stage ? hname(st->un, h.u1) : NULL;
    if (which == 0) return augment(st, c, k, history_keys(c, i, hname(st->un, h.u1), hname(st->un, h.u2), r, k));
    return augment(st, c, k, history_keys(c, i, hname(st->xn, h.x1), hname(st->xn, h.x2), r, k));
}

/* Word i's features (word_keys, and right_keys in the second stage) and their scores, once per
 * word: only the history features differ between beam items. */
static void word_part(const tstage *st, const sctx *c, tbeam *bm, int i) {
    uint64_t *k = bm->wkeys + (size_t)i * MAXKEYS;
    int nw = word_keys(c, i, k);
    if (st->stage) nw += right_keys(c, i, k + nw);
    nw = augment(st, c, k, nw);
    bm->nwk[i] = nw;
    float *wu = bm->wsu + (size_t)i * (size_t)bm->nu, *wx = bm->wsx + (size_t)i * (size_t)bm->nx;
    memset(wu, 0, (size_t)st->nu * sizeof *wu);
    memset(wx, 0, (size_t)st->nx * sizeof *wx);
    tscore_add(&st->su, k, nw, wu);
    tscore_add(&st->sx, k, nw, wx);
}

/* UPOS scores su and XPOS scores sx without the UPOS features, for history h at word i. */
static void score_hist(const tstage *st, const sctx *c, const tbeam *bm, int i, hist h, float *su, float *sx) {
    uint64_t k[32];
    memcpy(su, bm->wsu + (size_t)i * (size_t)bm->nu, (size_t)st->nu * sizeof *su);
    tscore_add(&st->su, k, hist_keys(st, c, i, h, 0, k), su);
    memcpy(sx, bm->wsx + (size_t)i * (size_t)bm->nx, (size_t)st->nx * sizeof *sx);
    tscore_add(&st->sx, k, hist_keys(st, c, i, h, 1, k), sx);
}

/* sx += the weights of the UPOS features of u. */
static void score_upos(const tstage *st, const sctx *c, int i, int u, float *sx) {
    uint64_t k[16];
    tscore_add(&st->sx, k, augment(st, c, k, upos_keys(c, i, st->un[u], k)), sx);
}

/* Inserts cand into the word's beam row (best first, at most TAG_BEAM; an equal score goes after the
 * items already there). Two items with the same tags at this word and the previous one have
 * the same future, so only the better is kept. prev: the previous word's row, or NULL. */
static void beam_push(bitem *row, int *cnt, bitem cand, const bitem *prev) {
    for (int q = 0; q < *cnt; q++) {
        if (row[q].u != cand.u || row[q].x != cand.x) continue;
        if (prev && (prev[row[q].back].u != prev[cand.back].u || prev[row[q].back].x != prev[cand.back].x)) continue;
        if (row[q].score >= cand.score) return;
        memmove(row + q, row + q + 1, (size_t)(*cnt - q - 1) * sizeof *row);
        (*cnt)--;
        break;
    }
    if (*cnt == TAG_BEAM && !(cand.score > row[TAG_BEAM - 1].score)) return;
    int q = *cnt < TAG_BEAM ? (*cnt)++ : TAG_BEAM - 1;
    while (q > 0 && row[q - 1].score < cand.score) {
        row[q] = row[q - 1];
        q--;
    }
    row[q] = cand;
}

/* The indices of the (up to) k best scores, best first, ties to the lower index. */
static int top_k(const float *sc, int n, int k, int *out) {
    int m = 0;
    for (int c = 0; c < n; c++) {
        if (m == k && !(sc[c] > sc[out[k - 1]])) continue;
        int q = m < k ? m++ : k - 1;
        while (q > 0 && sc[out[q - 1]] < sc[c]) {
            out[q] = out[q - 1];
            q--;
        }
        out[q] = c;
    }
    return m;
}

void beam_decode(const tstage *st, const sctx *c, tbeam *bm, int *u, int *x) {
    int n = c->n, nx = st->nx;
    tbeam_reserve(bm, n, st);
    float su[MAXCLS], sxh[MAXCLS], sx[MAXCLS];
    for (int i = 0; i < n; i++) {
        bitem *row = &bm->it[(size_t)i * TAG_BEAM];
        const bitem *prev = i ? row - TAG_BEAM : NULL;
        int np = i ? bm->cnt[i - 1] : 1, cnt = 0;
        const fslot *d = st->t->ndict ? ftable_get(&st->t->dict, c->dkey[i]) : NULL;
        if (!d) word_part(st, c, bm, i);
        for (int b = 0; b < np; b++) {
            float base = i ? prev[b].score : 0;
            if (d) {
                beam_push(row, &cnt, (bitem){base, i ? b : -1, (uint16_t)d->off, d->n}, prev);
                continue;
            }
            score_hist(st, c, bm, i, item_hist(bm, i, b), su, sxh);
            int cu[KU], ncu = top_k(su, st->nu, KU, cu);
            for (int q = 0; q < ncu; q++) {
                int a = cu[q];
                memcpy(sx, sxh, (size_t)nx * sizeof *sx);
                score_upos(st, c, i, a, sx);
                const uint8_t *ok = st->t->compat + (size_t)a * (size_t)nx;
                for (int y = 0; y < nx; y++)
                    if (ok[y]) beam_push(row, &cnt, (bitem){base + (su[a] + sx[y]), i ? b : -1, (uint16_t)a, (uint16_t)y}, prev);
            }
        }
        bm->cnt[i] = cnt;
    }
    for (int i = n - 1, k = 0; i >= 0; i--) {
        const bitem *e = &bm->it[(size_t)i * TAG_BEAM + (size_t)k];
        u[i] = e->u, x[i] = e->x;
        k = e->back;
    }
}

/* Moves the weights of class cls of model p by +1 for the keys kg and -1 for kp; when the two
 * classes are the same, keys at the same place in both lists cancel. */
static void update_pair(ptrain *p, int cg, const uint64_t *kg, int cp, const uint64_t *kp, int nk) {
    if (cg != cp) {
        ptrain_step(p, cg, kg, nk, 1);
        ptrain_step(p, cp, kp, nk, -1);
        return;
    }
    for (int q = 0; q < nk; q++)
        if (kg[q] != kp[q]) {
            ptrain_step(p, cg, kg + q, 1, 1);
            ptrain_step(p, cp, kp + q, 1, -1);
        }
}

/* The update at word i between the gold tags (gu, gx; gx < 0: no XPOS update) after history
 * hg and the predicted (pu, px) after hp. */
static void update_word(const tstage *st, ptrain *pu, ptrain *px, const sctx *c, const tbeam *bm, int i, int gu,
                        int gx, hist hg, int pru, int prx, hist hp) {
    uint64_t kg[MAXKEYS + 48], kp[MAXKEYS + 48];
    int nw = bm->nwk[i];
    memcpy(kg, bm->wkeys + (size_t)i * MAXKEYS, (size_t)nw * sizeof *kg);
    memcpy(kp, kg, (size_t)nw * sizeof *kp);
    int ng = nw + hist_keys(st, c, i, hg, 0, kg + nw);
    hist_keys(st, c, i, hp, 0, kp + nw);
    update_pair(pu, gu, kg, pru, kp, ng);
    if (gx < 0) return;
    ng = nw + hist_keys(st, c, i, hg, 1, kg + nw);
    hist_keys(st, c, i, hp, 1, kp + nw);
    int nu = augment(st, c, kg + ng, upos_keys(c, i, st->un[gu], kg + ng));
    augment(st, c, kp + ng, upos_keys(c, i, st->un[pru], kp + ng));
    update_pair(px, gx, kg, prx, kp, ng + nu);
}

/* Whether the best item of word i's beam is the gold prefix tu, tx. */
static int top_is_gold(const tbeam *bm, int i, const int *tu, const int *tx) {
    for (int k = 0; i >= 0; i--) {
        const bitem *e = &bm->it[(size_t)i * TAG_BEAM + (size_t)k];
        if (e->u != tu[i] || e->x != tx[i]) return 0;
        k = e->back;
    }
    return 1;
}

void beam_train(const tstage *st, ptrain *pu, ptrain *px, const sctx *c, tbeam *bm, const int *gu, const int *gx, int *u,
                int *x) {
    int n = c->n, nx = st->nx;
    beam_decode(st, c, bm, u, x);
    pu->i += n;
    px->i += n;
    /* the gold path, scored exactly as the beam scores its items, and the largest violation */
    int *tu = xmalloc(2 * ((size_t)n + 1) * sizeof *tu), *tx = tu + n + 1;
    float su[MAXCLS], sx[MAXCLS], g = 0, worst = 0;   /* ties are violations too: all weights start at 0 */
    int at = -1;
    for (int i = 0; i < n; i++) {
        const fslot *d = st->t->ndict ? ftable_get(&st->t->dict, c->dkey[i]) : NULL;
        if (d) {
            tu[i] = (int)d->off, tx[i] = d->n;
        } else {
            tu[i] = gu[i], tx[i] = gx[i];
            if (tx[i] < 0)
                for (tx[i] = 0; tx[i] < nx - 1 && !st->t->compat[(size_t)gu[i] * (size_t)nx + (size_t)tx[i]]; tx[i]++) {}
            hist h = {i ? tu[i - 1] : HPAD1, i ? tx[i - 1] : HPAD1, i > 1 ? tu[i - 2] : i ? HPAD1 : HPAD2,
                      i > 1 ? tx[i - 2] : i ? HPAD1 : HPAD2};
            score_hist(st, c, bm, i, h, su, sx);
            score_upos(st, c, i, tu[i], sx);
            g = g + (su[tu[i]] + sx[tx[i]]);
        }
        float v = bm->it[(size_t)i * TAG_BEAM].score - g;
        if (v >= worst && (at < 0 || v > worst) && !top_is_gold(bm, i, tu, tx)) worst = v, at = i;
    }
    if (at >= 0) {
        int *pu_ = xmalloc(2 * ((size_t)at + 1) * sizeof *pu_), *px_ = pu_ + at + 1;
        for (int i = at, k = 0; i >= 0; i--) {
            const bitem *e = &bm->it[(size_t)i * TAG_BEAM + (size_t)k];
            pu_[i] = e->u, px_[i] = e->x;
            k = e->back;
        }
        for (int i = 0; i <= at; i++) {
            if (st->t->ndict && ftable_get(&st->t->dict, c->dkey[i])) continue;
            hist hg = {i ? tu[i - 1] : HPAD1, i ? tx[i - 1] : HPAD1, i > 1 ? tu[i - 2] : i ? HPAD1 : HPAD2,
                       i > 1 ? tx[i - 2] : i ? HPAD1 : HPAD2};
            hist hp = {i ? pu_[i - 1] : HPAD1, i ? px_[i - 1] : HPAD1, i > 1 ? pu_[i - 2] : i ? HPAD1 : HPAD2,
                       i > 1 ? px_[i - 2] : i ? HPAD1 : HPAD2};
            if (tu[i] == pu_[i] && tx[i] == px_[i] && hist_eq(hg, hp)) continue;
            update_word(st, pu, px, c, bm, i, tu[i], gx[i] < 0 ? -1 : tx[i], hg, pu_[i], px_[i], hp);
        }
        free(pu_);
    }
    free(tu);
}
