/* tagger_train: the tagger's training (gold labels, label sets, tag dictionary, lexicon, the
 * perceptrons of both stages and of the features); tagger.c holds the features it shares with
 * tagging. */
#include "tagger_impl.h"
#include "core/err.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
/* ------------------------------------------------------------------ gold labels */

/* The Penn Treebank tags with EWT's additions (ADD AFX GW HYPH NFP XX). */
static const char *const penn_tags[] = {
    "#", "$", "''", ",", "-LRB-", "-RRB-", ".", ":", "ADD", "AFX", "CC", "CD", "DT", "EX", "FW", "GW",
    "HYPH", "IN", "JJ", "JJR", "JJS", "LS", "MD", "NFP", "NN", "NNP", "NNPS", "NNS", "PDT", "POS", "PRP",
    "PRP$", "RB", "RBR", "RBS", "RP", "SYM", "TO", "UH", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "WDT",
    "WP", "WP$", "WRB", "XX", "``", NULL};

const char *tagger_gold_xpos(const conllu_word *w) {
    if ((strcmp(w->xpos, "?") == 0 || strcmp(w->xpos, "!") == 0) && strcmp(w->upos, "PUNCT") == 0) return ".";
    for (int k = 0; penn_tags[k]; k++)
        if (strcmp(w->xpos, penn_tags[k]) == 0) return w->xpos;
    return NULL;
}

const char *tagger_gold_feat(const conllu_word *w, int k, size_t *len) {
    const char *name = tag_feat_names[k];
    size_t nn = strlen(name);
    for (const char *p = w->feats; *p;) {
        if (strncmp(p, name, nn) == 0 && p[nn] == '=') {
            const char *v = p + nn + 1, *e = strchr(v, '|');
            *len = e ? (size_t)(e - v) : strlen(v);
            return v;
        }
        p = strchr(p, '|');
        if (!p) break;
        p++;
    }
    *len = 1;
    return "_";
}

/* ------------------------------------------------------------------ label sets */

typedef struct {
    ftable tab;     /* hash of name -> index */
    char **name;
    int n, cap;
} labelset;

static uint64_t label_key(const char *s, size_t len) { return XXH3_64bits(s, len) | 1; }

static int label_find(const labelset *l, const char *s, size_t len) {
    const fslot *r = ftable_get(&l->tab, label_key(s, len));
    return r ? (int)r->off : -1;
}

static int label_add(labelset *l, const char *s, size_t len) {
    int id = label_find(l, s, len);
    if (id >= 0) return id;
    if (l->n == 1024) entk_die(ENTK_EXIT_INPUT, "more than 1024 distinct tags of one kind");
    if (l->n == l->cap) l->name = xrealloc(l->name, (size_t)(l->cap = l->cap ? 2 * l->cap : 64) * sizeof *l->name);
    l->name[l->n] = strndup(s, len);
    if (!l->name[l->n]) entk_die(ENTK_EXIT_FAIL, "out of memory");
    int fresh;
    ftable_add(&l->tab, label_key(s, len), &fresh)->off = (uint32_t)l->n;
    return l->n++;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorts the names (keeping "_" first when first_absent) and rebuilds the index. */
static void label_sort(labelset *l, int first_absent) {
    int from = 0;
    if (first_absent) {
        for (int i = 0; i < l->n; i++)
            if (strcmp(l->name[i], "_") == 0) { char *t = l->name[0]; l->name[0] = l->name[i]; l->name[i] = t; }
        from = 1;
    }
    if (l->n > from) qsort(l->name + from, (size_t)(l->n - from), sizeof *l->name, cmp_str);
    ftable_free(&l->tab);
    ftable_init(&l->tab, 64);
    for (int i = 0; i < l->n; i++) {
        int fresh;
        ftable_add(&l->tab, label_key(l->name[i], strlen(l->name[i])), &fresh)->off = (uint32_t)i;
    }
}

/* ------------------------------------------------------------------ training */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void shuffle(size_t *a, size_t n, uint64_t *rng) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(splitmix64(rng) % i);
        size_t t = a[i - 1]; a[i - 1] = a[j]; a[j] = t;
    }
}

static const char **sentence_forms(const tag_sentence *s, const char ***buf, int *cap) {
    if (s->n > *cap) *buf = xrealloc(*buf, (size_t)(*cap = s->n + 64) * sizeof **buf);
    for (int i = 0; i < s->n; i++) (*buf)[i] = s->w[i].form;
    return *buf;
}

static void take_labels(pmodel *m, labelset *l) {
    m->ncls = l->n;
    m->cls = l->name;
    ftable_free(&l->tab);
}

typedef struct {
    uint64_t key;
    uint32_t pair;   /* UPOS id << 16 | XPOS id */
} dict_obs;

static int cmp_obs(const void *a, const void *b) {
    const dict_obs *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->pair > y->pair) - (x->pair < y->pair);
}

/* Honnibal's thresholds: seen at least 20 times, with one tag pair at least 97% of the time. */
#define DICT_MIN_FREQ 20
#define DICT_MIN_SHARE 0.97

static void build_dict(tagger *t, const tag_sentence *s, size_t ns, const int *gu, const int *gx, size_t nwords) {
    dict_obs *obs = xmalloc((nwords + 1) * sizeof *obs);
    size_t at = 0;
    for (size_t i = 0; i < ns; i++)
        for (int j = 0; j < s[i].n; j++, at++) {
            char f[WMAX];
            size_t nf = norm_quotes(s[i].w[j].form, f);
            /* a word whose XPOS is missing counts against every tag pair */
            uint32_t x = gx[at] >= 0 ? (uint32_t)gx[at] : 0xFFFF;
            obs[at] = (dict_obs){XXH3_64bits(f, nf) | 1, (uint32_t)gu[at] << 16 | x};
        }
    qsort(obs, nwords, sizeof *obs, cmp_obs);
    size_t cap = 1024;
    t->dictkey = xmalloc(cap * sizeof *t->dictkey);
    t->dictu = xmalloc(cap * sizeof *t->dictu);
    t->dictx = xmalloc(cap * sizeof *t->dictx);
    ftable_init(&t->dict, 1024);
    for (size_t a = 0, b; a < nwords; a = b) {
        size_t best = 0, run = 0;
        uint32_t pair = 0;
        for (b = a; b < nwords && obs[b].key == obs[a].key; b++) {
            run = b > a && obs[b].pair == obs[b - 1].pair ? run + 1 : 1;
            if (run > best) { best = run; pair = obs[b].pair; }
        }
        if (b - a < DICT_MIN_FREQ || (double)best < DICT_MIN_SHARE * (double)(b - a) || (pair & 0xFFFF) == 0xFFFF) continue;
        if (t->ndict == cap) {
            cap *= 2;
            t->dictkey = xrealloc(t->dictkey, cap * sizeof *t->dictkey);
            t->dictu = xrealloc(t->dictu, cap * sizeof *t->dictu);
            t->dictx = xrealloc(t->dictx, cap * sizeof *t->dictx);
        }
        t->dictkey[t->ndict] = obs[a].key;
        t->dictu[t->ndict] = (uint16_t)(pair >> 16);
        t->dictx[t->ndict++] = (uint16_t)(pair & 0xFFFF);
        tag_dict_insert(t, obs[a].key, (int)(pair >> 16), (int)(pair & 0xFFFF));
    }
    free(obs);
}

/* One training pass of a stage (0: first, 1: second, 2: first right to left, over the reversed
 * sentence) over a prepared sentence (beam_train), updating its UPOS and XPOS perceptrons; gu,
 * gx: the sentence's gold ids (in c's order). Writes its tags (made before the update) into
 * record when given, in the original word order. Counts the right tags into *cu, *cx. */
static void train_pass(const tagger *t, sctx *c, tbeam *bm, const labelset *lab, int stage, ptrain *pu, ptrain *px,
                       const int *gu, const int *gx, const char **record, size_t *cu, size_t *cx) {
    tstage st = {t, {pu, NULL}, {px, NULL}, (const char *const *)lab[TAG_UPOS].name, (const char *const *)lab[TAG_XPOS].name,
                 lab[TAG_UPOS].n, lab[TAG_XPOS].n, stage == 1};
    int n = c->n;
    int *u = xmalloc(2 * ((size_t)n + 1) * sizeof *u), *x = u + n + 1;
    beam_train(&st, pu, px, c, bm, gu, gx, u, x);
    for (int i = 0; i < n; i++) {
        int o = stage == 2 ? n - 1 - i : i;
        if (record)
            record[2 * o] = st.un[u[i]], record[2 * o + 1] = st.xn[x[i]];
        *cu += u[i] == gu[i], *cx += x[i] == gx[i];
    }
    free(u);
}

#define LEX_MIN_FREQ 3
#define LEX_MIN_SHARE 0.1

/* The lexicon (struct tagger) from the gold UPOS ids gu of all words in sentence order. */
static void build_lex(tagger *t, const tag_sentence *s, size_t ns, const int *gu, size_t nwords, int nupos) {
    if (nupos > 32) return;   /* no mask for them: no lexicon, the features stay constant */
    dict_obs *obs = xmalloc((nwords + 1) * sizeof *obs);
    sctx c = {0};
    const char **forms = NULL;
    int formcap = 0;
    size_t at = 0;
    for (size_t i = 0; i < ns; i++) {
        sctx_prepare(&c, NULL, s[i].n, sentence_forms(&s[i], &forms, &formcap));
        for (int j = 0; j < s[i].n; j++, at++) obs[at] = (dict_obs){lex_key(c.norm[j + 2]), (uint32_t)gu[at]};
    }
    sctx_free(&c);
    free(forms);
    qsort(obs, nwords, sizeof *obs, cmp_obs);
    t->lexkey = xmalloc((nwords + 1) * sizeof *t->lexkey);
    t->lexmask = xmalloc((nwords + 1) * sizeof *t->lexmask);
    int cnt[32];
    for (size_t a = 0, b; a < nwords; a = b) {
        memset(cnt, 0, sizeof cnt);
        for (b = a; b < nwords && obs[b].key == obs[a].key; b++) cnt[obs[b].pair]++;
        if (b - a < LEX_MIN_FREQ) continue;
        uint32_t mask = 0;
        for (int u = 0; u < nupos; u++)
            if (cnt[u] && cnt[u] >= LEX_MIN_SHARE * (double)(b - a)) mask |= 1u << u;
        t->lexkey[t->nlex] = obs[a].key;
        t->lexmask[t->nlex++] = mask;
    }
    free(obs);
    ftable_init(&t->lex, t->nlex);
    for (size_t q = 0; q < t->nlex; q++) {
        int fresh;
        ftable_add(&t->lex, t->lexkey[q], &fresh)->off = t->lexmask[q];
    }
}

/* The gold class ids of every word, in sentence order. */
typedef struct {
    size_t nwords, nfeatwords;
    size_t *start;      /* [ns + 1]: index of each sentence's first word */
    int *gu, *gx, *gf;  /* UPOS, XPOS (-1: none), features [nwords, TAG_NFEATS] */
} gold_ids;

/* Trains the UPOS and XPOS perceptrons of the first stage (both directions) and of the second
 * into t (whose dictionary and lexicon are built), taking the class lists out of lab. The second
 * stage learns from the first stage's tags as they were in the first epoch, each sentence tagged
 * before the model had seen it: context as noisy as at run time. It starts one epoch later and
 * ends one later. A sentence's domain (augment in tagger_beam.c) is whether its file annotates
 * FEATS: of the shared treebanks, EWT (written) does and CHILDES (speech) does not. */
static void train_pos(tagger *t, const tag_sentence *s, size_t ns, const gold_ids *g, labelset *lab, int epochs, uint64_t *rng) {
    ptrain pu, px, p2u, p2x, pru, prx;
    ptrain_init(&pu, lab[TAG_UPOS].n);
    ptrain_init(&px, lab[TAG_XPOS].n);
    ptrain_init(&p2u, lab[TAG_UPOS].n);
    ptrain_init(&p2x, lab[TAG_XPOS].n);
    ptrain_init(&pru, lab[TAG_UPOS].n);
    ptrain_init(&prx, lab[TAG_XPOS].n);
    size_t *order = xmalloc((ns ? ns : 1) * sizeof *order);
    for (size_t i = 0; i < ns; i++) order[i] = i;
    sctx c = {0}, rc = {0};
    const char **forms = NULL;
    int formcap = 0;
    const char **first = xmalloc((2 * g->nwords + 1) * sizeof *first);   /* UPOS, XPOS name per word */
    const char **firstr = xmalloc((2 * g->nwords + 1) * sizeof *firstr);  /* the same, right to left */
    int *rg = NULL;
    tbeam bm = {0};
    for (int ep = 0; ep <= epochs; ep++) {
        double te = entk_now();
        shuffle(order, ns, rng);
        size_t cu = 0, cx = 0, c2u = 0, c2x = 0, cru = 0, crx = 0;
        for (size_t oi = 0; oi < ns; oi++) {
            const tag_sentence *S = &s[order[oi]];
            size_t base = g->start[order[oi]];
            const int *gu = g->gu + base, *gx = g->gx + base;
            int n = S->n;
            sctx_prepare(&c, t, n, sentence_forms(S, &forms, &formcap));
            c.domain = !S->has_feats;
            if (ep < epochs) {
                train_pass(t, &c, &bm, lab, 0, &pu, &px, gu, gx, ep ? NULL : first + 2 * base, &cu, &cx);
                sctx_reverse(&c, &rc);
                rg = xrealloc(rg, 2 * ((size_t)n + 1) * sizeof *rg);
                for (int i = 0; i < n; i++) rg[i] = gu[n - 1 - i], rg[n + 1 + i] = gx[n - 1 - i];
                train_pass(t, &rc, &bm, lab, 2, &pru, &prx, rg, rg + n + 1, ep ? NULL : firstr + 2 * base, &cru, &crx);
            }
            if (ep == 0) continue;
            for (int i = 0; i < n; i++) {
                const char **f = first + 2 * (base + i), **fr = firstr + 2 * (base + i);
                c.rtag[i + 2] = f[0], c.rxtag[i + 2] = f[1];
                c.ltag[i + 2] = fr[0], c.lxtag[i + 2] = fr[1];
            }
            train_pass(t, &c, &bm, lab, 1, &p2u, &p2x, gu, gx, NULL, &c2u, &c2x);
        }
        double nw = (double)g->nwords;
        entk_log("epoch %d/%d: tags right while training on %zu words: stage 1 UPOS %.2f%% XPOS %.2f%% (right to left %.2f%% "
                 "%.2f%%), stage 2 UPOS %.2f%% XPOS %.2f%% (%.1f s)", ep + 1, epochs + 1, g->nwords, 100.0 * (double)cu / nw,
                 100.0 * (double)cx / nw, 100.0 * (double)cru / nw, 100.0 * (double)crx / nw, 100.0 * (double)c2u / nw,
                 100.0 * (double)c2x / nw, entk_now() - te);
    }
    /* the other stages' models share the class lists, which the file stores with each model */
    static const int twins[4] = {TAG_UPOS2, TAG_XPOS2, TAG_UPOSR, TAG_XPOSR};
    for (int k = 0; k < 4; k++) {
        labelset *l = &lab[k % 2 ? TAG_XPOS : TAG_UPOS];
        pmodel *m = &t->m[twins[k]];
        m->ncls = l->n;
        m->cls = xmalloc((size_t)l->n * sizeof *m->cls);
        for (int q = 0; q < l->n; q++) m->cls[q] = xstrdup(l->name[q]);
    }
    take_labels(&t->m[TAG_UPOS], &lab[TAG_UPOS]);
    take_labels(&t->m[TAG_XPOS], &lab[TAG_XPOS]);
    ptrain_finish_written(&pu, &t->m[TAG_UPOS]);
    ptrain_finish_written(&px, &t->m[TAG_XPOS]);
    ptrain_finish_written(&p2u, &t->m[TAG_UPOS2]);
    ptrain_finish_written(&p2x, &t->m[TAG_XPOS2]);
    ptrain_finish_written(&pru, &t->m[TAG_UPOSR]);
    ptrain_finish_written(&prx, &t->m[TAG_XPOSR]);
    ptrain_free(&pu); ptrain_free(&px); ptrain_free(&p2u); ptrain_free(&p2x); ptrain_free(&pru); ptrain_free(&prx);
    free(first); free(firstr); free(rg); free(order); free(forms);
    tbeam_free(&bm);
    sctx_free(&c);
    sctx_free(&rc);
}

/* Trains the feature perceptrons on the sentences that annotate FEATS. Their features do not
 * change between epochs, so they are computed once, from the final POS tagger's predictions
 * (what the models will see at run time). Returns the number of such sentences. */
static size_t train_morph(tagger *t, const tag_sentence *s, size_t ns, const gold_ids *g, labelset *lab, int epochs, uint64_t *rng) {
    ptrain pf[TAG_NFEATS];
    for (int f = 0; f < TAG_NFEATS; f++) ptrain_init(&pf[f], lab[TAG_FEAT0 + f].n);
    size_t nfs = 0;
    for (size_t i = 0; i < ns; i++) nfs += s[i].has_feats;
    size_t *fsent = xmalloc((nfs ? nfs : 1) * sizeof *fsent);
    size_t *koff = xmalloc((g->nfeatwords + 1) * sizeof *koff);
    uint64_t *mkeys = xmalloc((g->nfeatwords * 32 + 1) * sizeof *mkeys);
    int *pu_ids = NULL, *px_ids = NULL;
    sctx c = {0};
    const char **forms = NULL;
    int formcap = 0;
    size_t nk_all = 0, fw = 0;
    nfs = 0;
    for (size_t i = 0; i < ns; i++) {
        if (!s[i].has_feats) continue;
        fsent[nfs++] = i;
        sctx_prepare(&c, t, s[i].n, sentence_forms(&s[i], &forms, &formcap));
        pu_ids = xrealloc(pu_ids, (size_t)(s[i].n + 1) * sizeof *pu_ids);
        px_ids = xrealloc(px_ids, (size_t)(s[i].n + 1) * sizeof *px_ids);
        tag_pos(t, &c, pu_ids, px_ids);
        for (int j = 0; j < s[i].n; j++) {
            koff[fw++] = nk_all;
            nk_all += (size_t)morph_keys(t, &c, pu_ids, j, mkeys + nk_all);
        }
    }
    koff[fw] = nk_all;
    free(pu_ids); free(px_ids); free(forms);
    sctx_free(&c);
    /* word index (into koff) of each feature-annotated sentence */
    size_t *fbase = xmalloc((nfs + 1) * sizeof *fbase);
    for (size_t q = 0, w = 0; q < nfs; q++) { fbase[q] = w; w += (size_t)s[fsent[q]].n; }
    size_t *forder = xmalloc((nfs ? nfs : 1) * sizeof *forder);
    for (size_t q = 0; q < nfs; q++) forder[q] = q;
    float fsc[1 << 10];
    for (int ep = 0; ep < epochs && nfs; ep++) {
        double te = entk_now();
        shuffle(forder, nfs, rng);
        size_t right = 0;
        for (size_t oi = 0; oi < nfs; oi++) {
            size_t q = forder[oi], si = fsent[q];
            for (int j = 0; j < s[si].n; j++) {
                size_t wi = fbase[q] + (size_t)j;
                const uint64_t *k = mkeys + koff[wi];
                int nk = (int)(koff[wi + 1] - koff[wi]);
                const int *gold = g->gf + (g->start[si] + (size_t)j) * TAG_NFEATS;
                int all = 1;
                for (int f = 0; f < TAG_NFEATS; f++) {
                    ptrain_score(&pf[f], k, nk, fsc);
                    int guess = cls_argmax(fsc, pf[f].ncls);
                    ptrain_update(&pf[f], gold[f], guess, k, nk);
                    all &= guess == gold[f];
                }
                right += all;
            }
        }
        entk_log("epoch %d/%d: features: all %d right for %.2f%% of %zu annotated words (%.1f s)", ep + 1, epochs, TAG_NFEATS,
                 100.0 * (double)right / (double)g->nfeatwords, g->nfeatwords, entk_now() - te);
    }
    if (!nfs) entk_log("no training file annotates FEATS: the feature models will always say '_'");
    for (int f = 0; f < TAG_NFEATS; f++) {
        take_labels(&t->m[TAG_FEAT0 + f], &lab[TAG_FEAT0 + f]);
        ptrain_finish(&pf[f], &t->m[TAG_FEAT0 + f]);
        ptrain_free(&pf[f]);
    }
    free(fsent); free(koff); free(mkeys); free(fbase); free(forder);
    return nfs;
}

tagger *tagger_train(const tag_sentence *s, size_t ns, const tag_train_opts *o) {
    double t0 = entk_now();
    labelset lab[TAG_NMODELS];
    memset(lab, 0, sizeof lab);
    for (int m = 0; m < TAG_NMODELS; m++) ftable_init(&lab[m].tab, 64);
    for (int f = 0; f < TAG_NFEATS; f++) label_add(&lab[TAG_FEAT0 + f], "_", 1);
    gold_ids g = {0};
    size_t nbadx = 0;
    for (size_t i = 0; i < ns; i++) {
        g.nwords += (size_t)s[i].n;
        for (int j = 0; j < s[i].n; j++) {
            const conllu_word *w = &s[i].w[j];
            label_add(&lab[TAG_UPOS], w->upos, strlen(w->upos));
            const char *x = tagger_gold_xpos(w);
            if (x) label_add(&lab[TAG_XPOS], x, strlen(x));
            else nbadx++;
            if (!s[i].has_feats) continue;
            g.nfeatwords++;
            for (int f = 0; f < TAG_NFEATS; f++) {
                size_t len;
                const char *v = tagger_gold_feat(w, f, &len);
                label_add(&lab[TAG_FEAT0 + f], v, len);
            }
        }
    }
    if (g.nwords == 0) entk_die(ENTK_EXIT_INPUT, "no training words");
    if (nbadx) entk_log("%zu words have an XPOS outside the Penn tag set: not used to learn XPOS", nbadx);
    if (lab[TAG_XPOS].n == 0) entk_die(ENTK_EXIT_INPUT, "no word has a Penn XPOS tag");
    for (int m = 0; m < TAG_NMODELS; m++) label_sort(&lab[m], m >= TAG_FEAT0);

    g.start = xmalloc((ns + 1) * sizeof *g.start);
    g.gu = xmalloc(g.nwords * sizeof *g.gu);
    g.gx = xmalloc(g.nwords * sizeof *g.gx);
    g.gf = xmalloc(g.nwords * TAG_NFEATS * sizeof *g.gf);
    size_t at = 0;
    for (size_t i = 0; i < ns; i++) {
        g.start[i] = at;
        for (int j = 0; j < s[i].n; j++, at++) {
            const conllu_word *w = &s[i].w[j];
            const char *x = tagger_gold_xpos(w);
            g.gu[at] = label_find(&lab[TAG_UPOS], w->upos, strlen(w->upos));
            g.gx[at] = x ? label_find(&lab[TAG_XPOS], x, strlen(x)) : -1;
            for (int f = 0; f < TAG_NFEATS; f++) {
                size_t len;
                const char *v = tagger_gold_feat(w, f, &len);
                g.gf[at * TAG_NFEATS + f] = s[i].has_feats ? label_find(&lab[TAG_FEAT0 + f], v, len) : 0;
            }
        }
    }
    g.start[ns] = at;

    tagger *t = xcalloc(1, sizeof *t);
    t->info = xstrdup(o->info ? o->info : "");
    build_dict(t, s, ns, g.gu, g.gx, g.nwords);
    build_lex(t, s, ns, g.gu, g.nwords, lab[TAG_UPOS].n);
    t->compat = xcalloc((size_t)lab[TAG_UPOS].n * (size_t)lab[TAG_XPOS].n, 1);
    for (size_t k = 0; k < g.nwords; k++)
        if (g.gx[k] >= 0) t->compat[(size_t)g.gu[k] * (size_t)lab[TAG_XPOS].n + (size_t)g.gx[k]] = 1;
    uint64_t rng = o->seed;
    train_pos(t, s, ns, &g, lab, o->epochs, &rng);
    tag_set_pron_ids(t);
    size_t nfs = train_morph(t, s, ns, &g, lab, o->epochs, &rng);
    free(g.start); free(g.gu); free(g.gx); free(g.gf);
    size_t nent = 0;
    for (int m = 0; m < TAG_ALLMODELS; m++) nent += t->m[m].ne;
    entk_log("trained on %zu words in %zu sentences (%zu with FEATS) in %.1f s; %zu weights", g.nwords, ns, nfs,
             entk_now() - t0, nent);
    return t;
}
