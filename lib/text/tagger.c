#include "tagger_impl.h"
#include "core/err.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

const char *const tag_feat_names[TAG_NFEATS] = {"Case", "Definite", "Gender", "Mood", "Number",
                                               "Person", "PronType", "Tense", "VerbForm"};

/* A feature's key: its template number and its strings. */
static uint64_t fkey(unsigned tmpl, const char *a, const char *b, const char *c) {
    char buf[3 * (WMAX + 1)];
    size_t n = 0;
    const char *parts[3] = {a, b, c};
    for (int p = 0; p < 3 && parts[p]; p++) {
        size_t len = strnlen(parts[p], WMAX);
        memcpy(buf + n, parts[p], len);
        n += len;
        buf[n++] = '\x1f';
    }
    uint64_t k = XXH3_64bits_withSeed(buf, n, tmpl);
    return k ? k : 1;
}

/* ------------------------------------------------------------------ words and features */

/* Quote and apostrophe variants as the treebanks write them: ’ ‘ -> ', “ ” « » `` '' -> ". Returns the
 * number of bytes of s consumed and puts the replacement in *c, or 0. */
static int quote_variant(const char *s, char *c) {
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] == 0xE2 && u[1] == 0x80) {
        if (u[2] == 0x98 || u[2] == 0x99) { *c = '\''; return 3; }
        if (u[2] == 0x9C || u[2] == 0x9D) { *c = '"'; return 3; }
    }
    if ((s[0] == '`' && s[1] == '`') || (s[0] == '\'' && s[1] == '\'')) { *c = '"'; return 2; }
    if (u[0] == 0xC2 && (u[1] == 0xAB || u[1] == 0xBB)) { *c = '"'; return 2; }   /* « » */
    return 0;
}

/* The form with quote variants replaced, truncated to WMAX - 1 bytes. */
static size_t norm_quotes(const char *f, char *out) {
    size_t n = 0;
    while (*f && n < WMAX - 1) {
        int k = quote_variant(f, &out[n]);
        if (k) f += k;
        else out[n] = *f++;
        n++;
    }
    out[n] = 0;
    return n;
}

/* One sentence prepared for feature extraction. Word arrays are indexed i + 2: two sentinels on
 * each side stand for the words before the start and after the end. */
typedef struct {
    int n, cap;
    char (*norm)[WMAX];    /* lowercased; numbers collapsed to !YEAR / !DIGITS */
    char (*lower)[WMAX];   /* lowercased form, for prefixes and suffixes */
    char (*shape)[WMAX];   /* Xx / d / punctuation of the form, runs collapsed to two */
    const char **utag, **xtag;   /* predicted tag names, indexed i + 2, sentinels around */
    const char **u2tag, **x2tag; /* the same from the second stage, while it runs */
    const char **rtag, **rxtag;  /* the first stage's UPOS and XPOS: the second stage's right context */
    uint64_t *dkey;        /* [i]: key of the form in the tag dictionary */
    uint32_t *amb;         /* lexicon tag set of each word (0: not in the lexicon), indexed i + 2 */
    char (*cased)[WMAX];   /* the form, quotes normalised, case kept, indexed i + 2 */
} sctx;

static void sctx_free(sctx *c) {
    free(c->norm);
    free(c->lower);
    free(c->shape);
    free(c->utag);
    free(c->xtag);
    free(c->u2tag);
    free(c->x2tag);
    free(c->rtag);
    free(c->rxtag);
    free(c->dkey);
    free(c->amb);
    free(c->cased);
    memset(c, 0, sizeof *c);
}

static void set_sentinel(char *dst, const char *s) { snprintf(dst, WMAX, "%s", s); }

#define LEX_PAD 0xFFFFFFFFu   /* the tag set of the sentinels */
static uint64_t lex_key(const char *norm) { return XXH3_64bits(norm, strlen(norm)) | 1; }

/* t may be NULL (or have no lexicon yet): the tag sets are then all 0. */
static void sctx_prepare(sctx *c, const tagger *t, int n, const char *const *form) {
    if (n + 4 > c->cap) {
        c->cap = n + 4 + 64;
        c->norm = xrealloc(c->norm, (size_t)c->cap * WMAX);
        c->lower = xrealloc(c->lower, (size_t)c->cap * WMAX);
        c->shape = xrealloc(c->shape, (size_t)c->cap * WMAX);
        c->utag = xrealloc(c->utag, (size_t)c->cap * sizeof *c->utag);
        c->xtag = xrealloc(c->xtag, (size_t)c->cap * sizeof *c->xtag);
        c->u2tag = xrealloc(c->u2tag, (size_t)c->cap * sizeof *c->u2tag);
        c->x2tag = xrealloc(c->x2tag, (size_t)c->cap * sizeof *c->x2tag);
        c->rtag = xrealloc(c->rtag, (size_t)c->cap * sizeof *c->rtag);
        c->rxtag = xrealloc(c->rxtag, (size_t)c->cap * sizeof *c->rxtag);
        c->dkey = xrealloc(c->dkey, (size_t)c->cap * sizeof *c->dkey);
        c->amb = xrealloc(c->amb, (size_t)c->cap * sizeof *c->amb);
        c->cased = xrealloc(c->cased, (size_t)c->cap * WMAX);
    }
    c->n = n;
    static const char *const pad[4] = {"-START2-", "-START-", "-END-", "-END2-"};
    for (int s = 0; s < 2; s++) {
        set_sentinel(c->norm[s], pad[s]);
        set_sentinel(c->lower[s], pad[s]);
        set_sentinel(c->norm[n + 2 + s], pad[2 + s]);
        set_sentinel(c->lower[n + 2 + s], pad[2 + s]);
        const char **tags[6] = {c->utag, c->xtag, c->u2tag, c->x2tag, c->rtag, c->rxtag};
        for (int q = 0; q < 6; q++) tags[q][s] = pad[s], tags[q][n + 2 + s] = pad[2 + s];
        c->amb[s] = c->amb[n + 2 + s] = LEX_PAD;
        set_sentinel(c->shape[s], pad[s]);
        set_sentinel(c->shape[n + 2 + s], pad[2 + s]);
    }
    for (int i = 0; i < n; i++) {
        char f[WMAX];
        size_t nf = norm_quotes(form[i], f);
        c->dkey[i] = XXH3_64bits(f, nf) | 1;
        memcpy(c->cased[i + 2], f, nf + 1);
        char *lo = c->lower[i + 2], *sh = c->shape[i + 2];
        size_t nl = 0, ns = 0;
        int ndig = 0, nchar = 0;
        char prev = 0;
        int run = 0;
        for (const char *p = f; *p;) {
            char ch = *p++;
            nchar++;
            ndig += ch >= '0' && ch <= '9';
            lo[nl++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
            char s = (ch >= 'A' && ch <= 'Z') ? 'X' : (ch >= 'a' && ch <= 'z') ? 'x'
                   : (ch >= '0' && ch <= '9') ? 'd' : (unsigned char)ch >= 0x80 ? 'u' : ch;
            run = s == prev ? run + 1 : 1;
            prev = s;
            if (run <= 2 && ns < WMAX - 1) sh[ns++] = s;
        }
        lo[nl] = 0;
        sh[ns] = 0;
        char *no = c->norm[i + 2];
        if (ndig == 4 && nchar == 4) set_sentinel(no, "!YEAR");
        else if (lo[0] >= '0' && lo[0] <= '9') set_sentinel(no, "!DIGITS");
        else memcpy(no, lo, nl + 1);
        const fslot *e = t && t->nlex ? ftable_get(&t->lex, lex_key(no)) : NULL;
        c->amb[i + 2] = e ? e->off : 0;
    }
}

static const char *suffix(const char *s, size_t k) {
    size_t n = strlen(s);
    return n > k ? s + n - k : s;
}

static const char *prefix(const char *s, size_t k, char *buf) {
    size_t n = strnlen(s, k);
    memcpy(buf, s, n);
    buf[n] = 0;
    return buf;
}

/* Features of word i that do not depend on predicted tags: shared by the UPOS and XPOS models. */
static int word_keys(const sctx *c, int i, uint64_t *k) {
    int n = 0, j = i + 2;
    char b1[8], b3[8];
    const char *w = c->norm[j], *lo = c->lower[j];
    k[n++] = fkey(1, "", NULL, NULL);
    k[n++] = fkey(2, w, NULL, NULL);
    k[n++] = fkey(3, suffix(lo, 3), NULL, NULL);
    k[n++] = fkey(4, suffix(lo, 2), NULL, NULL);
    k[n++] = fkey(5, suffix(lo, 1), NULL, NULL);
    k[n++] = fkey(6, prefix(lo, 1, b1), NULL, NULL);
    k[n++] = fkey(7, prefix(lo, 3, b3), NULL, NULL);
    k[n++] = fkey(8, c->shape[j], NULL, NULL);
    k[n++] = fkey(9, c->norm[j - 1], NULL, NULL);
    k[n++] = fkey(10, suffix(c->lower[j - 1], 3), NULL, NULL);
    k[n++] = fkey(11, c->norm[j - 2], NULL, NULL);
    k[n++] = fkey(12, c->norm[j + 1], NULL, NULL);
    k[n++] = fkey(13, suffix(c->lower[j + 1], 3), NULL, NULL);
    k[n++] = fkey(14, c->norm[j + 2], NULL, NULL);
    k[n++] = fkey(15, c->norm[j - 1], w, NULL);
    k[n++] = fkey(16, w, c->norm[j + 1], NULL);
    if (i == 0) k[n++] = fkey(17, c->shape[j], NULL, NULL);
    k[n++] = fkey(18, suffix(lo, 4), NULL, NULL);
    k[n++] = fkey(19, prefix(lo, 2, b3), NULL, NULL);
    char a0[12], a1[12], a2[12];
    snprintf(a0, sizeof a0, "%x", c->amb[j]);
    snprintf(a1, sizeof a1, "%x", c->amb[j + 1]);
    snprintf(a2, sizeof a2, "%x", c->amb[j + 2]);
    k[n++] = fkey(60, a0, NULL, NULL);
    k[n++] = fkey(61, a1, NULL, NULL);
    k[n++] = fkey(62, a2, NULL, NULL);
    k[n++] = fkey(63, a1, a2, NULL);
    k[n++] = fkey(64, a0, a1, NULL);
    k[n++] = fkey(65, w, a1, NULL);
    k[n++] = fkey(66, c->shape[j - 1], c->shape[j], NULL);
    k[n++] = fkey(67, c->shape[j], c->shape[j + 1], NULL);
    k[n++] = fkey(68, c->cased[j], NULL, NULL);
    return n;
}

/* Features from the two previous predicted tags of the same model. */
static int history_keys(const sctx *c, int i, const char *const *tag, uint64_t *k) {
    int n = 0, j = i + 2;
    k[n++] = fkey(20, tag[j - 1], NULL, NULL);
    k[n++] = fkey(21, tag[j - 2], NULL, NULL);
    k[n++] = fkey(22, tag[j - 1], tag[j - 2], NULL);
    k[n++] = fkey(23, tag[j - 1], c->norm[j], NULL);
    k[n++] = fkey(24, tag[j - 1], suffix(c->lower[j], 3), NULL);
    k[n++] = fkey(25, tag[j - 1], c->norm[j + 1], NULL);
    return n;
}

/* The second stage also sees the first stage's UPOS of the word and of the two after it: the
 * right context that a greedy left-to-right pass otherwise lacks. */
static int right_keys(const sctx *c, int i, const char *const *tag, uint64_t *k) {
    int n = 0, j = i + 2;
    const char *r0 = c->rtag[j], *r1 = c->rtag[j + 1], *r2 = c->rtag[j + 2];
    k[n++] = fkey(80, r0, NULL, NULL);
    k[n++] = fkey(81, r1, NULL, NULL);
    k[n++] = fkey(82, r1, r2, NULL);
    k[n++] = fkey(83, c->norm[j], r1, NULL);
    k[n++] = fkey(84, r0, r1, NULL);
    k[n++] = fkey(85, tag[j - 1], r1, NULL);
    k[n++] = fkey(86, c->norm[j], r0, NULL);
    k[n++] = fkey(87, c->rxtag[j + 1], NULL, NULL);
    k[n++] = fkey(88, c->rxtag[j + 1], c->rxtag[j + 2], NULL);
    k[n++] = fkey(89, c->norm[j], c->rxtag[j + 1], NULL);
    k[n++] = fkey(90, c->rxtag[j], NULL, NULL);
    return n;
}

/* The XPOS model also sees the word's UPOS as its pass predicted it. */
static int upos_keys(const sctx *c, int i, const char *const *utag, uint64_t *k) {
    int n = 0, j = i + 2;
    k[n++] = fkey(30, utag[j], NULL, NULL);
    k[n++] = fkey(31, utag[j], c->norm[j], NULL);
    k[n++] = fkey(32, utag[j], suffix(c->lower[j], 3), NULL);
    return n;
}

/* Features for the morphology models, from the tagged sentence. Agreement (Number and Person
 * of finite verbs) depends on the subject, approximated by the nearest noun or pronoun before. */
static int morph_keys(const tagger *t, const sctx *c, const int *upos, int i, uint64_t *k) {
    int n = 0, j = i + 2;
    const char *w = c->norm[j], *lo = c->lower[j], *x = c->xtag[j];
    k[n++] = fkey(1, "", NULL, NULL);
    k[n++] = fkey(2, w, NULL, NULL);
    k[n++] = fkey(3, suffix(lo, 3), NULL, NULL);
    k[n++] = fkey(4, suffix(lo, 2), NULL, NULL);
    k[n++] = fkey(5, suffix(lo, 1), NULL, NULL);
    k[n++] = fkey(40, x, NULL, NULL);
    k[n++] = fkey(41, c->utag[j], NULL, NULL);
    k[n++] = fkey(42, x, w, NULL);
    k[n++] = fkey(43, x, suffix(lo, 2), NULL);
    k[n++] = fkey(44, c->xtag[j - 1], NULL, NULL);
    k[n++] = fkey(45, c->xtag[j + 1], NULL, NULL);
    k[n++] = fkey(46, c->xtag[j - 1], x, NULL);
    k[n++] = fkey(47, x, c->xtag[j + 1], NULL);
    k[n++] = fkey(48, c->norm[j - 1], NULL, NULL);
    k[n++] = fkey(49, c->norm[j + 1], NULL, NULL);
    k[n++] = fkey(50, c->norm[j - 1], x, NULL);
    k[n++] = fkey(51, c->utag[j], w, NULL);
    int s = -1;
    for (int q = i - 1; q >= 0 && q >= i - 8; q--)
        if (upos[q] == t->pron || upos[q] == t->noun || upos[q] == t->propn) { s = q; break; }
    if (s >= 0) {
        k[n++] = fkey(52, c->xtag[s + 2], NULL, NULL);
        k[n++] = fkey(53, x, c->xtag[s + 2], NULL);
        if (upos[s] == t->pron) {
            k[n++] = fkey(54, c->norm[s + 2], NULL, NULL);
            k[n++] = fkey(55, x, c->norm[s + 2], NULL);
        }
    } else {
        k[n++] = fkey(56, x, NULL, NULL);
    }
    return n;
}

/* The best compatible pair: UPOS and XPOS scores added. */
static void argmax_pair(const uint8_t *compat, int nu, int nx, const float *su, const float *sx, int *u, int *x) {
    float best = -INFINITY;
    *u = cls_argmax(su, nu);
    *x = cls_argmax(sx, nx);
    for (int a = 0; a < nu; a++)
        for (int b = 0; b < nx; b++)
            if (compat[(size_t)a * (size_t)nx + (size_t)b] && su[a] + sx[b] > best) { best = su[a] + sx[b]; *u = a; *x = b; }
}

/* Two greedy left-to-right stages, each choosing UPOS then XPOS word by word (the best
 * compatible pair); the second also sees the first's UPOS of the words to the right
 * (right_keys) and decides. Words of the tag dictionary are fixed in both. */
static void tag_pos(const tagger *t, sctx *c, int *upos, int *xpos) {
    uint64_t keys[MAXKEYS];
    int n = c->n, nu = t->m[TAG_UPOS].ncls, nx = t->m[TAG_XPOS].ncls;
    float *tu = xmalloc((size_t)nu * sizeof *tu), *tx = xmalloc((size_t)nx * sizeof *tx);
    for (int stage = 0; stage < 2; stage++) {
        const pmodel *mu = &t->m[stage ? TAG_UPOS2 : TAG_UPOS], *mx = &t->m[stage ? TAG_XPOS2 : TAG_XPOS];
        for (int i = 0; i < n; i++) {
            const fslot *d = t->ndict ? ftable_get(&t->dict, c->dkey[i]) : NULL;
            if (d) {
                upos[i] = (int)d->off, xpos[i] = d->n;
            } else {
                int nw = word_keys(c, i, keys);
                if (stage) nw += right_keys(c, i, c->utag, keys + nw);
                int nk = nw + history_keys(c, i, c->utag, keys + nw);
                pmodel_score(mu, keys, nk, tu);
                c->utag[i + 2] = t->m[TAG_UPOS].cls[cls_argmax(tu, nu)];
                nk = nw + history_keys(c, i, c->xtag, keys + nw);
                nk += upos_keys(c, i, c->utag, keys + nk);
                pmodel_score(mx, keys, nk, tx);
                argmax_pair(t->compat, nu, nx, tu, tx, &upos[i], &xpos[i]);
            }
            c->utag[i + 2] = t->m[TAG_UPOS].cls[upos[i]];
            c->xtag[i + 2] = t->m[TAG_XPOS].cls[xpos[i]];
        }
        if (!stage) {
            memcpy(c->rtag + 2, c->utag + 2, (size_t)n * sizeof *c->rtag);
            memcpy(c->rxtag + 2, c->xtag + 2, (size_t)n * sizeof *c->rxtag);
        }
    }
    free(tu); free(tx);
}

static void tag_morph(const tagger *t, const sctx *c, const int *upos, int *feats) {
    uint64_t keys[MAXKEYS];
    float sc[1 << 10];
    for (int i = 0; i < c->n; i++) {
        int nk = morph_keys(t, c, upos, i, keys);
        for (int f = 0; f < TAG_NFEATS; f++) {
            const pmodel *m = &t->m[TAG_FEAT0 + f];
            pmodel_score(m, keys, nk, sc);
            feats[(size_t)i * TAG_NFEATS + f] = cls_argmax(sc, m->ncls);
        }
    }
}

void tagger_tag(const tagger *t, int n, const char *const *form, int *upos, int *xpos, int *feats) {
    sctx c = {0};
    sctx_prepare(&c, t, n, form);
    tag_pos(t, &c, upos, xpos);
    tag_morph(t, &c, upos, feats);
    sctx_free(&c);
}

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

/* One greedy left-to-right training pass of a stage over a prepared sentence, updating its UPOS
 * and XPOS perceptrons; gu, gx: the sentence's gold ids. Stage 1 writes its UPOS choices (made
 * before the update) into record when given; stage 2 reads the right context from c->rtag. Counts
 * the right tags into *cu, *cx when given. */
static void train_pass(const tagger *t, sctx *c, const labelset *lab, int stage, ptrain *pu, ptrain *px, const int *gu,
                       const int *gx, const char **record, size_t *cu, size_t *cx) {
    uint64_t keys[MAXKEYS];
    float sc[1024];
    const char **ut = stage == 1 ? c->utag : c->u2tag, **xt = stage == 1 ? c->xtag : c->x2tag;
    for (int i = 0; i < c->n; i++) {
        int gu_i = gu[i], gx_i = gx[i], u, x;
        const fslot *d = t->ndict ? ftable_get(&t->dict, c->dkey[i]) : NULL;
        if (d) {
            u = (int)d->off, x = d->n;
        } else {
            int nw = word_keys(c, i, keys);
            if (stage == 2) nw += right_keys(c, i, ut, keys + nw);
            int nk = nw + history_keys(c, i, ut, keys + nw);
            ptrain_score(pu, keys, nk, sc);
            u = cls_argmax(sc, pu->ncls);
            ptrain_update(pu, gu_i, u, keys, nk);
            ut[i + 2] = lab[TAG_UPOS].name[u];
            nk = nw + history_keys(c, i, xt, keys + nw);
            nk += upos_keys(c, i, ut, keys + nk);
            ptrain_score(px, keys, nk, sc);
            x = cls_argmax(sc, px->ncls);
            if (gx_i >= 0) ptrain_update(px, gx_i, x, keys, nk);
        }
        if (record) record[2 * i] = lab[TAG_UPOS].name[u], record[2 * i + 1] = lab[TAG_XPOS].name[x];
        if (cu) *cu += u == gu_i, *cx += x == gx_i;
        ut[i + 2] = lab[TAG_UPOS].name[u];
        xt[i + 2] = lab[TAG_XPOS].name[x];
    }
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

/* Trains the two stages of UPOS and XPOS perceptrons into t (whose dictionary and lexicon are
 * built), taking the class lists out of lab. The second stage learns from the first stage's tags
 * as they were in the first epoch, each sentence tagged before the model had seen it: right
 * context as noisy as at run time. It starts one epoch later and ends one later. */
static void train_pos(tagger *t, const tag_sentence *s, size_t ns, const gold_ids *g, labelset *lab, int epochs, uint64_t *rng) {
    ptrain pu, px, p2u, p2x;
    ptrain_init(&pu, lab[TAG_UPOS].n);
    ptrain_init(&px, lab[TAG_XPOS].n);
    ptrain_init(&p2u, lab[TAG_UPOS].n);
    ptrain_init(&p2x, lab[TAG_XPOS].n);
    size_t *order = xmalloc((ns ? ns : 1) * sizeof *order);
    for (size_t i = 0; i < ns; i++) order[i] = i;
    sctx c = {0};
    const char **forms = NULL;
    int formcap = 0;
    const char **first = xmalloc((2 * g->nwords + 1) * sizeof *first);   /* UPOS, XPOS name per word */
    for (int ep = 0; ep <= epochs; ep++) {
        double te = entk_now();
        shuffle(order, ns, rng);
        size_t cu = 0, cx = 0, c2u = 0, c2x = 0;
        for (size_t oi = 0; oi < ns; oi++) {
            const tag_sentence *S = &s[order[oi]];
            size_t base = g->start[order[oi]];
            const int *gu = g->gu + base, *gx = g->gx + base;
            sctx_prepare(&c, t, S->n, sentence_forms(S, &forms, &formcap));
            if (ep < epochs) train_pass(t, &c, lab, 1, &pu, &px, gu, gx, ep ? NULL : first + 2 * base, &cu, &cx);
            if (ep == 0) continue;
            for (int i = 0; i < S->n; i++) c.rtag[i + 2] = first[2 * (base + i)], c.rxtag[i + 2] = first[2 * (base + i) + 1];
            train_pass(t, &c, lab, 2, &p2u, &p2x, gu, gx, NULL, &c2u, &c2x);
        }
        double nw = (double)g->nwords;
        entk_log("epoch %d/%d: tags right while training on %zu words: stage 1 UPOS %.2f%% XPOS %.2f%%, stage 2 UPOS %.2f%% "
                 "XPOS %.2f%% (%.1f s)", ep + 1, epochs + 1, g->nwords, 100.0 * (double)cu / nw, 100.0 * (double)cx / nw,
                 100.0 * (double)c2u / nw, 100.0 * (double)c2x / nw, entk_now() - te);
    }
    /* the second stage's models share the class lists, which the file stores with each model */
    for (int k = 0; k < 2; k++) {
        labelset *l = &lab[k ? TAG_XPOS : TAG_UPOS];
        pmodel *m = &t->m[k ? TAG_XPOS2 : TAG_UPOS2];
        m->ncls = l->n;
        m->cls = xmalloc((size_t)l->n * sizeof *m->cls);
        for (int q = 0; q < l->n; q++) m->cls[q] = xstrdup(l->name[q]);
    }
    take_labels(&t->m[TAG_UPOS], &lab[TAG_UPOS]);
    take_labels(&t->m[TAG_XPOS], &lab[TAG_XPOS]);
    ptrain_finish(&pu, &t->m[TAG_UPOS]);
    ptrain_finish(&px, &t->m[TAG_XPOS]);
    ptrain_finish(&p2u, &t->m[TAG_UPOS2]);
    ptrain_finish(&p2x, &t->m[TAG_XPOS2]);
    ptrain_free(&pu); ptrain_free(&px); ptrain_free(&p2u); ptrain_free(&p2x);
    free(first); free(order); free(forms);
    sctx_free(&c);
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
    uint64_t *mkeys = xmalloc((g->nfeatwords * MAXKEYS + 1) * sizeof *mkeys);
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
