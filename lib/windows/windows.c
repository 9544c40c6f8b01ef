#include "windows/windows.h"
#include "core/cache.h"
#include "core/err.h"
#include "core/rng.h"
#include "lm/generate.h"
#include "text/wordsplit.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ candidates */

typedef struct {
    int32_t story, word, cls, token;
} cand;

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static int all_ws(const char *s, int64_t a, int64_t b) {
    for (int64_t i = a; i < b; i++)
        if (!is_ws(s[i])) return 0;
    return 1;
}

/* ------------------------------------------------------------------ the filter */

typedef struct {
    const tokenizer *tk;
    const lm_model *m;
    const tagger *tg;
    const win_opts *o;
    bytebuf ctx, full;
    ws_word *words;
    size_t wcap;
    char **forms;
    int *up, *xp, *fp, fcap;
    int32_t *both;          /* [T + gen_tokens] window and continuation */
} judge_ctx;

enum { JUDGE_MORE = -3 };

/* The UPOS of the model's next word after window ids[T] given its continuation gen[ng]: a tagger
 * UPOS id, -1 if there is no new word, or JUDGE_MORE if the word may not be complete yet (and
 * final is 0). */
static int judge(judge_ctx *j, const int32_t *ids, const int32_t *gen, int ng, int final) {
    int T = j->o->T;
    j->ctx.n = j->full.n = 0;
    tokenizer_decode(j->tk, ids, (size_t)T, 1, &j->ctx);
    memcpy(j->both, ids, (size_t)T * sizeof *j->both);
    memcpy(j->both + T, gen, (size_t)ng * sizeof *j->both);
    tokenizer_decode(j->tk, j->both, (size_t)(T + ng), 1, &j->full);
    if (j->full.n < j->ctx.n || memcmp(j->full.p, j->ctx.p, j->ctx.n) != 0) {
        /* a decoder that is not a concatenation at this boundary (a character split between the
         * window and the continuation): the continuation decoded on its own */
        j->full.n = 0;
        bytebuf_add(&j->full, j->ctx.p, j->ctx.n);
        tokenizer_decode(j->tk, gen, (size_t)ng, 1, &j->full);
    }
    size_t cl = j->ctx.n, n = j->full.n, nw = 0;
    ws_split(j->full.p, n, &j->words, &nw, &j->wcap);
    size_t w = 0;
    while (w < nw && j->words[w].end <= cl) w++;
    if (w == nw) return final ? -1 : JUDGE_MORE;     /* only whitespace so far */
    if (j->words[w].start < cl) return -1;           /* the window's last word goes on */
    if (j->words[w].end == n && !final) return JUDGE_MORE;
    size_t a = w, b = w + 1;
    while (a > 0 && !j->words[a].sent_start) a--;
    if (j->o->context == WIN_CTX_REST)
        while (b < nw && !j->words[b].sent_start) b++;
    int k = (int)(b - a);
    if (k > j->fcap) {
        j->fcap = k + 64;
        j->forms = xrealloc(j->forms, (size_t)j->fcap * sizeof *j->forms);
        j->up = xrealloc(j->up, (size_t)j->fcap * sizeof *j->up);
        j->xp = xrealloc(j->xp, (size_t)j->fcap * sizeof *j->xp);
        j->fp = xrealloc(j->fp, (size_t)j->fcap * TAG_NFEATS * sizeof *j->fp);
    }
    for (int i = 0; i < k; i++)
        j->forms[i] = strndup(j->full.p + j->words[a + i].start, j->words[a + i].end - j->words[a + i].start);
    tagger_tag(j->tg, k, (const char *const *)j->forms, j->up, j->xp, j->fp);
    for (int i = 0; i < k; i++) free(j->forms[i]);
    return j->up[w - a];
}

/* Runs the filter on nb windows: greedy continuation, one token per forward, of the windows whose
 * next word is not decided yet; fills pred, gen[nb, G] and ngen. */
static void filter_batch(judge_ctx *j, int nb, const int32_t *const *win, int32_t *gen, int *ngen, int *pred,
                         long *forwards, long *steps) {
    const lm_model *m = j->m;
    int T = j->o->T, G = j->o->gen_tokens;
    int *active = xmalloc((size_t)nb * sizeof *active);
    int na = nb;
    for (int b = 0; b < nb; b++) {
        active[b] = b;
        ngen[b] = 0;
        pred[b] = -1;
        for (int g = 0; g < G; g++) gen[(size_t)b * G + g] = -1;
    }
    int32_t *next = xmalloc((size_t)nb * sizeof *next);
    lm_gen *gs = NULL;
    for (int s = 0; s < G && na > 0; s++) {
        if (!gs) {
            int32_t *seq = xmalloc((size_t)nb * (size_t)T * sizeof *seq);
            for (int b = 0; b < nb; b++) memcpy(seq + (size_t)b * T, win[b], (size_t)T * sizeof *seq);
            gs = lm_gen_start(m, seq, nb, T, G);
            free(seq);
        }
        lm_gen_step(gs, active, na, next);
        (*forwards)++;
        *steps += na;
        int still = 0;
        for (int i = 0; i < na; i++) {
            int b = active[i];
            int best = next[i];
            int special = best == m->eos || best == m->bos;
            if (!special) gen[(size_t)b * G + s] = best, ngen[b] = s + 1;
            int r = judge(j, win[b], gen + (size_t)b * G, ngen[b], special || s + 1 == G);
            if (r == JUDGE_MORE) active[still++] = b;
            else pred[b] = r;
        }
        na = still;
    }
    free(active);
    free(next);
    lm_gen_free(gs);
}

/* ------------------------------------------------------------------ build */

static int item_cmp(const void *pa, const void *pb) {
    const win_item *a = pa, *b = pb;
    if (a->cls != b->cls) return a->cls < b->cls ? -1 : 1;
    if (a->story != b->story) return a->story < b->story ? -1 : 1;
    return a->word < b->word ? -1 : a->word > b->word;
}

/* What building the window set keeps between its steps. */
typedef struct {
    const win_story *st;
    size_t ns;
    const win_opts *o;
    win_result *r;
    int nup, *cls_of_upos;  /* the tagger's UPOS ids -> class, or -1 */
    tok_seq all;            /* every story's tokens, one after another */
    size_t *tok0;           /* story s's first token in all */
    cand *cands;
    size_t ncand;
    size_t *cstart, *order; /* class c's candidates: order[cstart[c] .. cstart[c + 1]), in sampling order */
    /* per candidate, once examined: the predicted UPOS, the continuation, 1 kept / 2 dropped */
    int32_t *gen_all;
    int *pred_all, *ngen_all;
    uint8_t *status;
} build;

/* The classes as the tagger's UPOS ids, both ways. */
static void class_map(build *bd, const tagger *tg) {
    win_result *r = bd->r;
    int nc = bd->o->nclasses;
    bd->nup = tagger_nclasses(tg, TAG_UPOS);
    bd->cls_of_upos = xmalloc((size_t)bd->nup * sizeof *bd->cls_of_upos);
    for (int u = 0; u < bd->nup; u++) bd->cls_of_upos[u] = -1;
    for (int c = 0; c < nc; c++) {
        const char *name = bd->o->classes[c];
        int u = tagger_class_id(tg, TAG_UPOS, name, strlen(name));
        if (u < 0) entk_die(ENTK_EXIT_USAGE, "class '%s' is not a UPOS tag of the tagger", name);
        if (bd->cls_of_upos[u] >= 0) entk_die(ENTK_EXIT_USAGE, "class '%s' is given twice", name);
        r->class_upos[c] = u;
        bd->cls_of_upos[u] = c;
    }
}

/* The candidates of story s, tokenized as ts: words of a class whose tokens cover exactly the
 * word (up to spaces) and start at least T tokens into the story. */
static void story_candidates(build *bd, size_t s, const tok_seq *ts, size_t *candcap) {
    const win_story *S = &bd->st[s];
    int T = bd->o->T;
    /* p: the first non-empty token ending after the current word's start (offsets ascend) */
    size_t p = 0, nt = ts->n;
    for (size_t w = 0; w < S->nwords; w++) {
        int64_t ws = S->offs[2 * w], we = S->offs[2 * w + 1];
        while (p < nt && (ts->offs[2 * p + 1] <= ws || ts->offs[2 * p + 1] <= ts->offs[2 * p])) p++;
        int u = S->upos[w];
        int c = u >= 0 && u < bd->nup ? bd->cls_of_upos[u] : -1;
        if (c < 0) continue;
        win_class_stats *cs = &bd->r->stats[c];
        cs->words++;
        int64_t prev_end = w ? S->offs[2 * w - 1] : 0, next_start = w + 1 < S->nwords ? S->offs[2 * w + 2] : (int64_t)S->len;
        int ok = p < nt && ts->offs[2 * p] <= ws && ts->offs[2 * p] >= prev_end && all_ws(S->text, ts->offs[2 * p], ws);
        size_t q = p;   /* the word's last token */
        while (ok && q + 1 < nt && ts->offs[2 * (q + 1)] < we) q++;
        int64_t e = ts->offs[2 * q + 1];
        if (ok) ok = e >= we ? e <= next_start && all_ws(S->text, we, e) : 0;
        if (!ok) { cs->unaligned++; continue; }
        if (p < (size_t)T) { cs->early++; continue; }
        cs->candidates++;
        if (bd->ncand == *candcap) bd->cands = xrealloc(bd->cands, (*candcap *= 2) * sizeof *bd->cands);
        bd->cands[bd->ncand++] = (cand){(int32_t)s, (int32_t)w, c, (int32_t)p};
    }
}

/* Every story tokenized into bd->all, and its candidates. */
static void find_candidates(build *bd, const tokenizer *tk, const lm_model *m) {
    bd->tok0 = xmalloc((bd->ns + 1) * sizeof *bd->tok0);
    size_t candcap = 1024;
    bd->cands = xmalloc(candcap * sizeof *bd->cands);
    tok_seq ts = {0};
    for (size_t s = 0; s < bd->ns; s++) {
        const win_story *S = &bd->st[s];
        if (tk->hf) {
            size_t bad = utf8_invalid_at((const unsigned char *)S->text, S->len);
            if (bad < S->len) entk_die(ENTK_EXIT_INPUT, "story %zu: invalid UTF-8 at byte %zu", s, bad);
        }
        ts.n = 0;
        tokenizer_encode(tk, S->text, S->len, 0, 0, &ts);
        bd->tok0[s] = bd->all.n;
        for (size_t k = 0; k < ts.n; k++) {
            if (ts.ids[k] < 0 || ts.ids[k] >= m->vocab)
                entk_die(ENTK_EXIT_INPUT, "story %zu: token id %d is outside the model's vocabulary [0, %d): not this model's tokenizer?",
                         s, ts.ids[k], m->vocab);
            tok_seq_push(&bd->all, ts.ids[k], ts.offs[2 * k], ts.offs[2 * k + 1]);
        }
        story_candidates(bd, s, &ts, &candcap);
    }
    bd->tok0[bd->ns] = bd->all.n;
    tok_seq_free(&ts);
    entk_log("%s; %s tokenizer of %d tokens; %zu stories, %zu tokens", m->desc, tk->kind, tk->ntokens, bd->ns, bd->all.n);
}

/* The sampling order: one permutation of all candidates; each class's list in that order. */
static void class_orders(build *bd) {
    size_t ncand = bd->ncand;
    int nc = bd->o->nclasses;
    int64_t *perm = xmalloc((ncand ? ncand : 1) * sizeof *perm);
    rng g;
    rng_seed(&g, bd->o->seed);
    rng_permutation(&g, (int64_t)ncand, perm);
    size_t *cstart = bd->cstart = xcalloc((size_t)nc + 1, sizeof *cstart);
    for (size_t i = 0; i < ncand; i++) cstart[bd->cands[i].cls + 1]++;
    for (int c = 0; c < nc; c++) cstart[c + 1] += cstart[c];
    size_t *order = bd->order = xmalloc((ncand ? ncand : 1) * sizeof *order), *fill = xmalloc((size_t)nc * sizeof *fill);
    for (int c = 0; c < nc; c++) fill[c] = cstart[c];
    for (size_t i = 0; i < ncand; i++) order[fill[bd->cands[perm[i]].cls]++] = (size_t)perm[i];
    free(perm);
    free(fill);
}

/* How many candidates each class still wants examined (want[c]); 0 when none does. */
static int classes_wanting(const build *bd, const size_t *next, long *want, long *taken) {
    const win_opts *o = bd->o;
    int any = 0;
    for (int c = 0; c < o->nclasses; c++) {
        size_t avail = bd->cstart[c + 1] - bd->cstart[c] - next[c];
        long kept = bd->r->stats[c].kept;
        taken[c] = 0;
        if (avail == 0 || (o->cap && kept >= o->cap)) { want[c] = 0; continue; }
        if (!o->cap || !o->filter) {
            want[c] = o->cap ? o->cap - kept : (long)avail;
        } else {
            /* enough to fill the class at the agreement rate seen so far */
            double rate = (kept + 1.0) / (bd->r->stats[c].examined + 2.0);
            want[c] = (long)ceil((o->cap - kept) / rate);
        }
        if (want[c] > (long)avail) want[c] = (long)avail;
        any |= want[c] > 0;
    }
    return any;
}

/* The next batch (at most B): round robin over the classes that still want candidates, then
 * grouped by class, each class in its order. Returns its size. */
static int next_batch(const build *bd, const size_t *next, const long *want, long *taken, int B, size_t *bidx) {
    int nc = bd->o->nclasses, nb = 0, more = 1;
    while (nb < B && more) {
        more = 0;
        for (int c = 0; c < nc && nb < B; c++) {
            if (taken[c] >= want[c]) continue;
            bidx[nb++] = bd->order[bd->cstart[c] + next[c] + (size_t)taken[c]++];
            more = 1;
        }
    }
    nb = 0;
    for (int c = 0; c < nc; c++)
        for (long k = 0; k < taken[c]; k++) bidx[nb++] = bd->order[bd->cstart[c] + next[c] + (size_t)k];
    return nb;
}

/* The filter, lazily: batches of candidates through the model (or, unfiltered, the tagger's own
 * UPOS) until every class is full or out of candidates; each one examined kept or dropped. */
static void examine(build *bd, judge_ctx *jc) {
    const win_opts *o = bd->o;
    win_result *r = bd->r;
    int T = o->T, G = r->G, nc = o->nclasses, B = o->batch;
    size_t nz = bd->ncand ? bd->ncand : 1;
    bd->gen_all = xmalloc(nz * (size_t)(G ? G : 1) * sizeof *bd->gen_all);
    bd->pred_all = xmalloc(nz * sizeof *bd->pred_all);
    bd->ngen_all = xmalloc(nz * sizeof *bd->ngen_all);
    bd->status = xcalloc(nz, 1);
    size_t *next = xcalloc((size_t)nc, sizeof *next);  /* examined prefix of each class's order */
    size_t *bidx = xmalloc((size_t)B * sizeof *bidx);
    const int32_t **bwin = xmalloc((size_t)B * sizeof *bwin);
    int32_t *bgen = xmalloc((size_t)B * (size_t)(G ? G : 1) * sizeof *bgen);
    int *bngen = xmalloc((size_t)B * sizeof *bngen), *bpred = xmalloc((size_t)B * sizeof *bpred);
    long *want = xmalloc((size_t)nc * sizeof *want), *taken = xmalloc((size_t)nc * sizeof *taken);
    double t0 = entk_now();
    long total_examined = 0;
    while (classes_wanting(bd, next, want, taken)) {
        int nb = next_batch(bd, next, want, taken, B, bidx);
        for (int b = 0; b < nb; b++) {
            const cand *cd = &bd->cands[bidx[b]];
            bwin[b] = bd->all.ids + bd->tok0[cd->story] + (size_t)cd->token - (size_t)T;
        }
        if (o->filter) {
            filter_batch(jc, nb, bwin, bgen, bngen, bpred, &r->forwards, &r->gen_steps);
        } else {
            for (int b = 0; b < nb; b++) bngen[b] = 0, bpred[b] = bd->st[bd->cands[bidx[b]].story].upos[bd->cands[bidx[b]].word];
        }
        for (int b = 0; b < nb; b++) {
            size_t ci = bidx[b];
            const cand *cd = &bd->cands[ci];
            win_class_stats *cs = &r->stats[cd->cls];
            /* past the cap: as if never examined, so the outcome does not depend on the batching */
            if (o->cap && cs->kept >= o->cap) continue;
            next[cd->cls]++;
            cs->examined++;
            total_examined++;
            bd->pred_all[ci] = bpred[b];
            bd->ngen_all[ci] = bngen[b];
            if (G) memcpy(bd->gen_all + ci * (size_t)G, bgen + (size_t)b * G, (size_t)G * sizeof *bd->gen_all);
            if (bpred[b] == r->class_upos[cd->cls]) {
                cs->kept++;
                bd->status[ci] = 1;
            } else {
                cs->dropped++;
                cs->dropped_noword += bpred[b] < 0;
                bd->status[ci] = 2;
            }
        }
        /* classes cut by the cap: the rest of their taken candidates are not examined */
        for (int c = 0; c < nc; c++)
            if (o->cap && r->stats[c].kept >= o->cap) next[c] = (size_t)r->stats[c].examined;
        if (o->filter) entk_progress("windows examined", total_examined, -1);
    }
    if (o->filter) entk_progress_end();
    r->seconds_model = entk_now() - t0;
    free(next); free(bidx); free(bwin); free(bgen); free(bngen); free(bpred); free(want); free(taken);
}

/* The examined candidates as items, kept and dropped, each list by class, story, word. */
static void collect_items(build *bd) {
    win_result *r = bd->r;
    int T = bd->o->T, G = r->G;
    for (size_t i = 0; i < bd->ncand; i++) {
        if (bd->status[i] == 1) r->nkept++;
        if (bd->status[i] == 2) r->ndropped++;
    }
    r->kept = xmalloc((r->nkept ? r->nkept : 1) * sizeof *r->kept);
    r->dropped = xmalloc((r->ndropped ? r->ndropped : 1) * sizeof *r->dropped);
    size_t nk = 0, nd = 0;
    for (size_t i = 0; i < bd->ncand; i++) {
        if (!bd->status[i]) continue;
        const cand *cd = &bd->cands[i];
        const win_story *S = &bd->st[cd->story];
        size_t t = bd->tok0[cd->story] + (size_t)cd->token;
        win_item it = {
            .cls = cd->cls, .story = cd->story, .word = cd->word,
            .start = S->offs[2 * cd->word], .end = S->offs[2 * cd->word + 1],
            .win_start = bd->all.offs[2 * (t - (size_t)T)], .token = cd->token, .next_token = bd->all.ids[t],
            .predicted = bd->pred_all[i], .ngen = bd->ngen_all[i],
            .ids = bd->all.ids + t - T, .gen = G ? bd->gen_all + i * (size_t)G : NULL,
        };
        if (bd->status[i] == 1) r->kept[nk++] = it;
        else r->dropped[nd++] = it;
    }
    qsort(r->kept, r->nkept, sizeof *r->kept, item_cmp);
    qsort(r->dropped, r->ndropped, sizeof *r->dropped, item_cmp);
}

/* The feature labels with enough support (--min-support) among the kept windows. */
static void feature_labels(build *bd, const tagger *tg) {
    win_result *r = bd->r;
    int cap = 0;
    for (int q = 0; q < TAG_NFEATS; q++) cap += tagger_nclasses(tg, TAG_FEAT0 + q);
    r->label_names = xmalloc((size_t)(cap ? cap : 1) * sizeof *r->label_names);
    r->label_support = xmalloc((size_t)(cap ? cap : 1) * sizeof *r->label_support);
    r->label_feat = xmalloc((size_t)(cap ? cap : 1) * sizeof *r->label_feat);
    r->label_value = xmalloc((size_t)(cap ? cap : 1) * sizeof *r->label_value);
    for (int q = 0; q < TAG_NFEATS; q++) {
        int nv = tagger_nclasses(tg, TAG_FEAT0 + q);
        for (int v = 1; v < nv; v++) {
            int64_t sup = 0;
            for (size_t i = 0; i < r->nkept; i++) sup += bd->st[r->kept[i].story].feats[(size_t)r->kept[i].word * TAG_NFEATS + q] == v;
            if (sup < bd->o->min_support) continue;
            const char *vn = tagger_class(tg, TAG_FEAT0 + q, v);
            size_t len = strlen(tag_feat_names[q]) + strlen(vn) + 2;
            char *name = xmalloc(len);
            snprintf(name, len, "%s=%s", tag_feat_names[q], vn);
            r->label_names[r->nlabels] = name;
            r->label_support[r->nlabels] = sup;
            r->label_feat[r->nlabels] = q;
            r->label_value[r->nlabels] = v;
            r->nlabels++;
        }
    }
}

win_result *win_build(const win_story *st, size_t ns, const tokenizer *tk, const lm_model *m, const tagger *tg,
                      const win_opts *o) {
    int T = o->T, G = o->filter ? o->gen_tokens : 0, nc = o->nclasses;
    win_result *r = xcalloc(1, sizeof *r);
    r->T = T;
    r->G = G;
    r->nclasses = nc;
    r->class_upos = xmalloc((size_t)nc * sizeof *r->class_upos);
    r->stats = xcalloc((size_t)nc, sizeof *r->stats);
    build bd = {.st = st, .ns = ns, .o = o, .r = r};
    class_map(&bd, tg);
    find_candidates(&bd, tk, m);
    class_orders(&bd);
    judge_ctx jc = {.tk = tk, .m = m, .tg = tg, .o = o};
    jc.both = xmalloc((size_t)(T + G + 1) * sizeof *jc.both);
    examine(&bd, &jc);
    collect_items(&bd);
    feature_labels(&bd, tg);
    r->mem[0] = bd.all.ids;
    r->mem[1] = bd.gen_all;
    free(bd.all.offs);
    free(bd.tok0); free(bd.cands); free(bd.cstart); free(bd.order);
    free(bd.pred_all); free(bd.ngen_all); free(bd.status); free(bd.cls_of_upos);
    free(jc.ctx.p); free(jc.full.p); free(jc.words); free(jc.forms); free(jc.up); free(jc.xp); free(jc.fp); free(jc.both);
    return r;
}

void win_feature_row(const win_result *r, const win_story *st, const win_item *it, uint8_t *row) {
    const int32_t *f = st[it->story].feats + (size_t)it->word * TAG_NFEATS;
    for (int l = 0; l < r->nlabels; l++) row[l] = f[r->label_feat[l]] == r->label_value[l];
}

void win_log_stats(const win_result *r, const win_opts *o) {
    entk_log("%-6s %8s %9s %6s %10s %8s %8s %12s %5s", "class", "words", "unaligned", "early", "candidates", "examined",
             "dropped", "(no word)", "kept");
    win_class_stats tot = {0};
    for (int c = 0; c < r->nclasses; c++) {
        const win_class_stats *s = &r->stats[c];
        entk_log("%-6s %8ld %9ld %6ld %10ld %8ld %8ld %12ld %5ld%s", o->classes[c], s->words, s->unaligned, s->early,
                 s->candidates, s->examined, s->dropped, s->dropped_noword, s->kept,
                 o->cap && s->kept < o->cap ? "  (fewer than the cap: the text allows no more)" : "");
        tot.words += s->words, tot.unaligned += s->unaligned, tot.early += s->early, tot.candidates += s->candidates;
        tot.examined += s->examined, tot.dropped += s->dropped, tot.dropped_noword += s->dropped_noword, tot.kept += s->kept;
    }
    entk_log("%-6s %8ld %9ld %6ld %10ld %8ld %8ld %12ld %5ld", "all", tot.words, tot.unaligned, tot.early, tot.candidates,
             tot.examined, tot.dropped, tot.dropped_noword, tot.kept);
    if (o->filter)
        entk_log("agreement filter: kept %ld of %ld examined (%.1f%%); %ld forwards, %ld window-steps, %.2f s",
                 tot.kept, tot.examined, tot.examined ? 100.0 * tot.kept / tot.examined : 0.0, r->forwards, r->gen_steps,
                 r->seconds_model);
    for (int l = 0; l < r->nlabels; l++) entk_log("feature label %-22s support %lld", r->label_names[l], (long long)r->label_support[l]);
}

void win_result_free(win_result *r) {
    if (!r) return;
    for (int l = 0; l < r->nlabels; l++) free(r->label_names[l]);
    free(r->label_names); free(r->label_support); free(r->label_feat); free(r->label_value);
    free(r->class_upos); free(r->stats); free(r->kept); free(r->dropped);
    for (int i = 0; i < 3; i++) free(r->mem[i]);
    free(r);
}

/* ------------------------------------------------------------------ reading the labels back */

/* Space-separated names of a frame's meta into a NULL-terminated array; returns their number. */
static int split_names(const frame_reader *r, const frame *f, char ***out) {
    const msgpack_object *o = meta_get(&f->meta, "names");
    if (!o || o->type != MSGPACK_OBJECT_STR) frame_fail(r, f, "no names in meta");
    char *s = xmalloc(o->via.str.size + 1);
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = 0;
    int n = 0, cap = 8;
    char **v = xmalloc((size_t)cap * sizeof *v);
    for (char *save = NULL, *t = strtok_r(s, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (n + 1 >= cap) v = xrealloc(v, (size_t)(cap *= 2) * sizeof *v);
        v[n++] = xstrdup(t);
    }
    v[n] = NULL;
    free(s);
    *out = v;
    return n;
}

void win_labels_read(frame_reader *r, win_labels *l) {
    memset(l, 0, sizeof *l);
    l->n = -1;
    l->key = r->h.key;
    int have_feats = 0;
    int64_t feat_rows = 0;
    frame f;
    while (frame_read(r, &f)) {
        if (strcmp(f.kind, "tensor") != 0) continue;
        if (strcmp(f.name, "labels") == 0) {
            if (l->n >= 0) frame_fail(r, &f, "a second labels frame");
            if (f.t.dt != DT_I32 || f.t.ndim != 1) frame_fail(r, &f, "labels must be i32 [N]");
            l->n = f.t.shape[0];
            l->nclasses = split_names(r, &f, &l->class_names);
            l->cls = xmalloc((size_t)l->n * sizeof *l->cls + 1);
            memcpy(l->cls, f.t.data, (size_t)l->n * sizeof *l->cls);
            for (int64_t i = 0; i < l->n; i++)
                if (l->cls[i] < 0 || l->cls[i] >= l->nclasses)
                    frame_fail(r, &f, "window %lld has class %d, outside the %d names", (long long)i, l->cls[i], l->nclasses);
        } else if (strcmp(f.name, "feature_labels") == 0) {
            if (have_feats++) frame_fail(r, &f, "a second feature_labels frame");
            if (f.t.dt != DT_U8 || f.t.ndim != 2) frame_fail(r, &f, "feature_labels must be u8 [N, L]");
            l->nfeats = split_names(r, &f, &l->feat_names);
            if (l->nfeats != f.t.shape[1])
                frame_fail(r, &f, "%lld columns but %d names", (long long)f.t.shape[1], l->nfeats);
            feat_rows = f.t.shape[0];
            l->feats = xmalloc(tensor_nbytes(&f.t) + 1);
            memcpy(l->feats, f.t.data, tensor_nbytes(&f.t));
        } else if (strcmp(f.name, "text") == 0 && f.t.dt == DT_U8 && f.t.ndim == 1 && !l->text_mem) {
            size_t n = (size_t)f.t.shape[0];
            l->text_mem = xmalloc(n + 1);
            memcpy(l->text_mem, f.t.data, n);
            l->text_mem[n] = 0;
        }
    }
    if (l->text_mem) { /* one line per window */
        int64_t lines = 0;
        for (char *p = l->text_mem; *p; p++) lines += *p == '\n';
        if (lines != l->n) entk_die(ENTK_EXIT_INPUT, "%s: the text frame has %lld lines for %lld windows", r->src, (long long)lines, (long long)l->n);
        l->text = xmalloc((size_t)lines * sizeof(char *) + 1);
        char *p = l->text_mem;
        for (int64_t i = 0; i < lines; i++) {
            l->text[i] = p;
            p = strchr(p, '\n');
            *p++ = 0;
        }
    }
    if (l->n < 0) entk_die(ENTK_EXIT_INPUT, "%s: no labels frame: not the output of entk-windows", r->src);
    if (have_feats && feat_rows != l->n)
        entk_die(ENTK_EXIT_INPUT, "%s: feature_labels has %lld rows but labels has %lld", r->src, (long long)feat_rows, (long long)l->n);
    if (!have_feats) l->feat_names = xcalloc(1, sizeof(char *));
}

void win_labels_free(win_labels *l) {
    for (int c = 0; c < l->nclasses; c++) free(l->class_names[c]);
    for (int c = 0; c < l->nfeats; c++) free(l->feat_names[c]);
    free(l->class_names);
    free(l->feat_names);
    free(l->cls);
    free(l->feats);
    free(l->text);
    free(l->text_mem);
    memset(l, 0, sizeof *l);
}

/* tabs and line breaks of out->p[from..] become spaces: one example, one line */
static void one_line(bytebuf *out, size_t from) {
    for (size_t i = from; i < out->n; i++)
        if (out->p[i] == '\n' || out->p[i] == '\r' || out->p[i] == '\t') out->p[i] = ' ';
}

void win_example_text(const win_result *r, const win_story *stories, const tokenizer *tk, const win_item *it, int tail,
                      bytebuf *out) {
    int n = tail < r->T ? tail : r->T;
    size_t at = out->n;
    tokenizer_decode(tk, it->ids + (r->T - n), (size_t)n, 1, out);
    one_line(out, at);
    bytebuf_add(out, "\t", 1);
    at = out->n;
    bytebuf_add(out, stories[it->story].text + it->start, (size_t)(it->end - it->start));
    one_line(out, at);
    bytebuf_add(out, "\n", 1);
}
