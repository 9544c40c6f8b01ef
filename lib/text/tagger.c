#include "text/tagger.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/outfile.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the model file is written in host byte order, which must be little-endian"
#endif

const char *const tag_feat_names[TAG_NFEATS] = {"Case", "Definite", "Gender", "Mood", "Number",
                                               "Person", "PronType", "Tense", "VerbForm"};
static const char *const model_names[TAG_NMODELS] = {"upos", "xpos", "Case", "Definite", "Gender",
                                                    "Mood", "Number", "Person", "PronType", "Tense",
                                                    "VerbForm"};

#define WMAX 48        /* bytes kept of a word for features; longer words are truncated */
#define MAXKEYS 48     /* features of one word for one model */

/* ------------------------------------------------------------------ feature table */

/* Open addressing from a feature's key to its row of (class, weight) entries; keys are already
 * hashes, so their low bits index directly. key 0 marks a free slot (fkey never returns 0). The
 * row lives in the slot itself, so scoring a feature costs two memory reads: slot, then entries. */
typedef struct {
    uint64_t key;
    uint32_t off;      /* first entry of the row (label sets: the label's id) */
    uint16_t n, cap;   /* entries used, and allocated while training */
} fslot;

typedef struct {
    fslot *slot;
    size_t cap, n;
} ftable;

static void ftable_init(ftable *t, size_t want) {
    t->cap = 1024;
    while (t->cap < 2 * want) t->cap *= 2;
    t->slot = xcalloc(t->cap, sizeof *t->slot);
    t->n = 0;
}

static void ftable_free(ftable *t) {
    free(t->slot);
    memset(t, 0, sizeof *t);
}

static const fslot *ftable_get(const ftable *t, uint64_t k) {
    size_t m = t->cap - 1;
    for (size_t i = k & m; t->slot[i].key; i = (i + 1) & m)
        if (t->slot[i].key == k) return &t->slot[i];
    return NULL;
}

/* The slot of k, inserted (zeroed but for the key) if absent; *fresh says which. The pointer is
 * valid until the next insertion. */
static fslot *ftable_add(ftable *t, uint64_t k, int *fresh) {
    if (2 * (t->n + 1) > t->cap) {
        ftable old = *t;
        ftable_init(t, old.cap);
        for (size_t i = 0; i < old.cap; i++) {
            if (!old.slot[i].key) continue;
            size_t m = t->cap - 1, j = old.slot[i].key & m;
            while (t->slot[j].key) j = (j + 1) & m;
            t->slot[j] = old.slot[i];
        }
        t->n = old.n;
        ftable_free(&old);
    }
    size_t m = t->cap - 1, i = k & m;
    for (; t->slot[i].key; i = (i + 1) & m)
        if (t->slot[i].key == k) { *fresh = 0; return &t->slot[i]; }
    t->slot[i] = (fslot){k, 0, 0, 0};
    t->n++;
    *fresh = 1;
    return &t->slot[i];
}

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

/* ------------------------------------------------------------------ perceptrons */

/* Training form: each feature row is a small growable vector of (class, weight) entries, since a
 * feature meets only a few of the classes; a full row moves to a block twice its size at the end
 * of the pool. Scoring reads only the packed (class, weight) pairs; the averaging state lives in a
 * parallel array: total accumulates weight x steps, brought up to date whenever the weight changes. */
typedef struct {
    uint16_t cls;
    float w;
} went;

typedef struct {
    double total;
    int32_t ts;
} wacc;

typedef struct {
    int ncls;
    ftable tab;
    went *e;
    wacc *acc;
    size_t ne, cape;
    int32_t i;      /* instances seen: the averaging clock */
} ptrain;

/* Final form: averaged weights; rows are contiguous in entry order, rowkey/off keep that order
 * for the file. */
typedef struct {
    int ncls;
    char **cls;
    size_t nrows, ne;
    uint64_t *rowkey;
    uint32_t *off;     /* [nrows + 1] */
    uint16_t *ecls;
    float *w;
    ftable tab;
} pmodel;

struct tagger {
    pmodel m[TAG_NMODELS];
    /* Frequent words that (nearly) always get one tag pair are tagged by lookup, as in Honnibal's
     * tagger: slot.off = UPOS id, slot.n = XPOS id. */
    ftable dict;
    uint64_t *dictkey;
    uint16_t *dictu, *dictx;
    size_t ndict;
    char *info;
    /* compat[u * nxpos + x]: XPOS x was seen with UPOS u in training; tagging picks the best such
     * pair, so the two tags of a word agree (no PROPN tagged NN). */
    uint8_t *compat;
    int pron, noun, propn;   /* UPOS ids used by the agreement features, -2 if absent */
};

static void ptrain_init(ptrain *p, int ncls) {
    memset(p, 0, sizeof *p);
    p->ncls = ncls;
    ftable_init(&p->tab, 1 << 16);
}

static void ptrain_free(ptrain *p) {
    ftable_free(&p->tab);
    free(p->e);
    free(p->acc);
}

/* Sums the rows of the features; the slots, then the rows, are prefetched together, since each
 * is a likely cache miss and they are independent. */
static void ptrain_score(const ptrain *p, const uint64_t *keys, int nk, float *sc) {
    const fslot *row[MAXKEYS];
    size_t m = p->tab.cap - 1;
    for (int k = 0; k < nk; k++) __builtin_prefetch(&p->tab.slot[keys[k] & m]);
    for (int k = 0; k < nk; k++) {
        row[k] = ftable_get(&p->tab, keys[k]);
        if (row[k]) __builtin_prefetch(p->e + row[k]->off);
    }
    memset(sc, 0, (size_t)p->ncls * sizeof *sc);
    for (int k = 0; k < nk; k++) {
        if (!row[k]) continue;
        const went *e = p->e + row[k]->off;
        for (int j = 0; j < row[k]->n; j++) sc[e[j].cls] += e[j].w;
    }
}

/* A block of cap entries at the end of the pool. */
static uint32_t pool_alloc(ptrain *p, size_t cap) {
    if (p->ne + cap > p->cape) {
        while (p->ne + cap > p->cape) p->cape = p->cape ? 2 * p->cape : 1 << 18;
        if (p->cape > UINT32_MAX) entk_die(ENTK_EXIT_FAIL, "tagger: too many weights");
        p->e = xrealloc(p->e, p->cape * sizeof *p->e);
        p->acc = xrealloc(p->acc, p->cape * sizeof *p->acc);
    }
    uint32_t off = (uint32_t)p->ne;
    p->ne += cap;
    return off;
}

static void ptrain_add(ptrain *p, uint64_t key, int cls, float v) {
    int fresh;
    fslot *row = ftable_add(&p->tab, key, &fresh);
    if (fresh) {
        row->off = pool_alloc(p, 2);
        row->cap = 2;
    }
    int j = 0;
    while (j < row->n && p->e[row->off + j].cls != cls) j++;
    if (j == row->n) {
        if (row->n == row->cap) {
            uint32_t off = pool_alloc(p, 2 * (size_t)row->cap);
            memcpy(p->e + off, p->e + row->off, row->n * sizeof *p->e);
            memcpy(p->acc + off, p->acc + row->off, row->n * sizeof *p->acc);
            row->off = off;
            row->cap *= 2;
        }
        p->e[row->off + j] = (went){(uint16_t)cls, 0};
        p->acc[row->off + j] = (wacc){0, p->i};
        row->n++;
    }
    went *e = &p->e[row->off + j];
    wacc *a = &p->acc[row->off + j];
    a->total += (double)(p->i - a->ts) * e->w;
    a->ts = p->i;
    e->w += v;
}

static void ptrain_update(ptrain *p, int truth, int guess, const uint64_t *keys, int nk) {
    p->i++;
    if (truth == guess) return;
    for (int k = 0; k < nk; k++) {
        ptrain_add(p, keys[k], truth, 1);
        ptrain_add(p, keys[k], guess, -1);
    }
}

static int argmax(const float *sc, int n) {
    int best = 0;
    for (int c = 1; c < n; c++)
        if (sc[c] > sc[best]) best = c;
    return best;
}

/* Builds the lookup table of a model whose rowkey/off/ecls/w are filled in; 0 on a repeated or
 * zero key. */
static int pmodel_index(pmodel *m) {
    ftable_init(&m->tab, m->nrows);
    for (size_t r = 0; r < m->nrows; r++) {
        int fresh;
        if (!m->rowkey[r]) return 0;
        fslot *s = ftable_add(&m->tab, m->rowkey[r], &fresh);
        if (!fresh) return 0;
        s->off = m->off[r];
        s->n = (uint16_t)(m->off[r + 1] - m->off[r]);
    }
    return 1;
}

/* Averages the weights and packs them; entries that average to zero are dropped. */
static void ptrain_finish(ptrain *p, pmodel *m) {
    m->ncls = p->ncls;
    m->rowkey = xmalloc((p->tab.n + 1) * sizeof *m->rowkey);
    m->off = xmalloc((p->tab.n + 1) * sizeof *m->off);
    m->ecls = xmalloc((p->ne + 1) * sizeof *m->ecls);
    m->w = xmalloc((p->ne + 1) * sizeof *m->w);
    size_t nr = 0, ne = 0;
    double steps = p->i > 0 ? p->i : 1;
    for (size_t s = 0; s < p->tab.cap; s++) {
        const fslot *row = &p->tab.slot[s];
        if (!row->key) continue;
        size_t first = ne;
        for (int j = 0; j < row->n; j++) {
            const went *e = &p->e[row->off + j];
            const wacc *a = &p->acc[row->off + j];
            float avg = (float)((a->total + (double)(p->i - a->ts) * e->w) / steps);
            if (avg == 0) continue;
            m->ecls[ne] = e->cls;
            m->w[ne++] = avg;
        }
        if (ne == first) continue;
        m->rowkey[nr] = row->key;
        m->off[nr++] = (uint32_t)first;
    }
    m->off[nr] = (uint32_t)ne;
    m->nrows = nr;
    m->ne = ne;
    pmodel_index(m);
}

static void pmodel_score(const pmodel *m, const uint64_t *keys, int nk, float *sc) {
    const fslot *row[MAXKEYS];
    size_t mask = m->tab.cap - 1;
    for (int k = 0; k < nk; k++) __builtin_prefetch(&m->tab.slot[keys[k] & mask]);
    for (int k = 0; k < nk; k++) {
        row[k] = ftable_get(&m->tab, keys[k]);
        if (row[k]) { __builtin_prefetch(m->ecls + row[k]->off); __builtin_prefetch(m->w + row[k]->off); }
    }
    memset(sc, 0, (size_t)m->ncls * sizeof *sc);
    for (int k = 0; k < nk; k++) {
        if (!row[k]) continue;
        const uint16_t *c = m->ecls + row[k]->off;
        const float *w = m->w + row[k]->off;
        for (int j = 0; j < row[k]->n; j++) sc[c[j]] += w[j];
    }
}

static void pmodel_free(pmodel *m) {
    for (int c = 0; c < m->ncls && m->cls; c++) free(m->cls[c]);
    free(m->cls);
    free(m->rowkey);
    free(m->off);
    free(m->ecls);
    free(m->w);
    ftable_free(&m->tab);
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
    uint64_t *dkey;        /* [i]: key of the form in the tag dictionary */
} sctx;

static void sctx_free(sctx *c) {
    free(c->norm);
    free(c->lower);
    free(c->shape);
    free(c->utag);
    free(c->xtag);
    free(c->dkey);
    memset(c, 0, sizeof *c);
}

static void set_sentinel(char *dst, const char *s) { snprintf(dst, WMAX, "%s", s); }

static void sctx_prepare(sctx *c, int n, const char *const *form) {
    if (n + 4 > c->cap) {
        c->cap = n + 4 + 64;
        c->norm = xrealloc(c->norm, (size_t)c->cap * WMAX);
        c->lower = xrealloc(c->lower, (size_t)c->cap * WMAX);
        c->shape = xrealloc(c->shape, (size_t)c->cap * WMAX);
        c->utag = xrealloc(c->utag, (size_t)c->cap * sizeof *c->utag);
        c->xtag = xrealloc(c->xtag, (size_t)c->cap * sizeof *c->xtag);
        c->dkey = xrealloc(c->dkey, (size_t)c->cap * sizeof *c->dkey);
    }
    c->n = n;
    static const char *const pad[4] = {"-START2-", "-START-", "-END-", "-END2-"};
    for (int s = 0; s < 2; s++) {
        set_sentinel(c->norm[s], pad[s]);
        set_sentinel(c->lower[s], pad[s]);
        set_sentinel(c->norm[n + 2 + s], pad[2 + s]);
        set_sentinel(c->lower[n + 2 + s], pad[2 + s]);
        c->utag[s] = c->xtag[s] = pad[s];
        c->utag[n + 2 + s] = c->xtag[n + 2 + s] = pad[2 + s];
    }
    for (int i = 0; i < n; i++) {
        char f[WMAX];
        size_t nf = norm_quotes(form[i], f);
        c->dkey[i] = XXH3_64bits(f, nf) | 1;
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

/* The XPOS model also sees the word's predicted UPOS. */
static int upos_keys(const sctx *c, int i, uint64_t *k) {
    int n = 0, j = i + 2;
    k[n++] = fkey(30, c->utag[j], NULL, NULL);
    k[n++] = fkey(31, c->utag[j], c->norm[j], NULL);
    k[n++] = fkey(32, c->utag[j], suffix(c->lower[j], 3), NULL);
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
    *u = argmax(su, nu);
    *x = argmax(sx, nx);
    for (int a = 0; a < nu; a++)
        for (int b = 0; b < nx; b++)
            if (compat[(size_t)a * (size_t)nx + (size_t)b] && su[a] + sx[b] > best) { best = su[a] + sx[b]; *u = a; *x = b; }
}

/* Greedy left-to-right UPOS then XPOS with the final (averaged) models. */
static void tag_pos(const tagger *t, sctx *c, int *upos, int *xpos) {
    uint64_t keys[MAXKEYS];
    int ncls = t->m[TAG_UPOS].ncls > t->m[TAG_XPOS].ncls ? t->m[TAG_UPOS].ncls : t->m[TAG_XPOS].ncls;
    float *sc = xmalloc((size_t)ncls * sizeof *sc), *sx = xmalloc((size_t)ncls * sizeof *sx);
    for (int i = 0; i < c->n; i++) {
        const fslot *d = t->ndict ? ftable_get(&t->dict, c->dkey[i]) : NULL;
        if (d) {
            upos[i] = (int)d->off;
            xpos[i] = d->n;
            c->utag[i + 2] = t->m[TAG_UPOS].cls[upos[i]];
            c->xtag[i + 2] = t->m[TAG_XPOS].cls[xpos[i]];
            continue;
        }
        int nw = word_keys(c, i, keys);
        int nk = nw + history_keys(c, i, c->utag, keys + nw);
        pmodel_score(&t->m[TAG_UPOS], keys, nk, sc);
        upos[i] = argmax(sc, t->m[TAG_UPOS].ncls);
        c->utag[i + 2] = t->m[TAG_UPOS].cls[upos[i]];
        nk = nw + history_keys(c, i, c->xtag, keys + nw);
        nk += upos_keys(c, i, keys + nk);
        pmodel_score(&t->m[TAG_XPOS], keys, nk, sx);
        argmax_pair(t->compat, t->m[TAG_UPOS].ncls, t->m[TAG_XPOS].ncls, sc, sx, &upos[i], &xpos[i]);
        c->utag[i + 2] = t->m[TAG_UPOS].cls[upos[i]];
        c->xtag[i + 2] = t->m[TAG_XPOS].cls[xpos[i]];
    }
    free(sc);
    free(sx);
}

static void tag_morph(const tagger *t, const sctx *c, const int *upos, int *feats) {
    uint64_t keys[MAXKEYS];
    float sc[1 << 10];
    for (int i = 0; i < c->n; i++) {
        int nk = morph_keys(t, c, upos, i, keys);
        for (int f = 0; f < TAG_NFEATS; f++) {
            const pmodel *m = &t->m[TAG_FEAT0 + f];
            pmodel_score(m, keys, nk, sc);
            feats[(size_t)i * TAG_NFEATS + f] = argmax(sc, m->ncls);
        }
    }
}

void tagger_tag(const tagger *t, int n, const char *const *form, int *upos, int *xpos, int *feats) {
    sctx c = {0};
    sctx_prepare(&c, n, form);
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

static void set_pron_ids(tagger *t) {
    const pmodel *u = &t->m[TAG_UPOS];
    t->pron = t->noun = t->propn = -2;   /* never equal to a class id */
    for (int c = 0; c < u->ncls; c++) {
        if (strcmp(u->cls[c], "PRON") == 0) t->pron = c;
        if (strcmp(u->cls[c], "NOUN") == 0) t->noun = c;
        if (strcmp(u->cls[c], "PROPN") == 0) t->propn = c;
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

static void dict_insert(tagger *t, uint64_t key, int upos, int xpos) {
    int fresh;
    fslot *d = ftable_add(&t->dict, key, &fresh);
    d->off = (uint32_t)upos;
    d->n = (uint16_t)xpos;
}

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
        dict_insert(t, obs[a].key, (int)(pair >> 16), (int)(pair & 0xFFFF));
    }
    free(obs);
}

tagger *tagger_train(const tag_sentence *s, size_t ns, const tag_train_opts *o) {
    double t0 = entk_now();
    labelset lab[TAG_NMODELS];
    memset(lab, 0, sizeof lab);
    for (int m = 0; m < TAG_NMODELS; m++) ftable_init(&lab[m].tab, 64);
    for (int f = 0; f < TAG_NFEATS; f++) label_add(&lab[TAG_FEAT0 + f], "_", 1);
    size_t nwords = 0, nfeatwords = 0, nbadx = 0;
    for (size_t i = 0; i < ns; i++) {
        nwords += (size_t)s[i].n;
        for (int j = 0; j < s[i].n; j++) {
            const conllu_word *w = &s[i].w[j];
            label_add(&lab[TAG_UPOS], w->upos, strlen(w->upos));
            const char *x = tagger_gold_xpos(w);
            if (x) label_add(&lab[TAG_XPOS], x, strlen(x));
            else nbadx++;
            if (!s[i].has_feats) continue;
            nfeatwords++;
            for (int f = 0; f < TAG_NFEATS; f++) {
                size_t len;
                const char *v = tagger_gold_feat(w, f, &len);
                label_add(&lab[TAG_FEAT0 + f], v, len);
            }
        }
    }
    if (nwords == 0) entk_die(ENTK_EXIT_INPUT, "no training words");
    if (nbadx) entk_log("%zu words have an XPOS outside the Penn tag set: not used to learn XPOS", nbadx);
    if (lab[TAG_XPOS].n == 0) entk_die(ENTK_EXIT_INPUT, "no word has a Penn XPOS tag");
    for (int m = 0; m < TAG_NMODELS; m++) label_sort(&lab[m], m >= TAG_FEAT0);

    /* gold class ids of every word, in sentence order */
    size_t *start = xmalloc((ns + 1) * sizeof *start);
    int *gu = xmalloc(nwords * sizeof *gu), *gx = xmalloc(nwords * sizeof *gx);
    int *gf = xmalloc(nwords * TAG_NFEATS * sizeof *gf);
    size_t at = 0;
    for (size_t i = 0; i < ns; i++) {
        start[i] = at;
        for (int j = 0; j < s[i].n; j++, at++) {
            const conllu_word *w = &s[i].w[j];
            const char *x = tagger_gold_xpos(w);
            gu[at] = label_find(&lab[TAG_UPOS], w->upos, strlen(w->upos));
            gx[at] = x ? label_find(&lab[TAG_XPOS], x, strlen(x)) : -1;
            for (int f = 0; f < TAG_NFEATS; f++) {
                size_t len;
                const char *v = tagger_gold_feat(w, f, &len);
                gf[at * TAG_NFEATS + f] = s[i].has_feats ? label_find(&lab[TAG_FEAT0 + f], v, len) : 0;
            }
        }
    }
    start[ns] = at;

    tagger *t = xcalloc(1, sizeof *t);
    t->info = xstrdup(o->info ? o->info : "");
    build_dict(t, s, ns, gu, gx, nwords);
    t->compat = xcalloc((size_t)lab[TAG_UPOS].n * (size_t)lab[TAG_XPOS].n, 1);
    for (size_t k = 0; k < nwords; k++)
        if (gx[k] >= 0) t->compat[(size_t)gu[k] * (size_t)lab[TAG_XPOS].n + (size_t)gx[k]] = 1;
    ptrain pu, px;
    ptrain_init(&pu, lab[TAG_UPOS].n);
    ptrain_init(&px, lab[TAG_XPOS].n);
    size_t *order = xmalloc((ns ? ns : 1) * sizeof *order);
    for (size_t i = 0; i < ns; i++) order[i] = i;
    uint64_t rng = o->seed;
    sctx c = {0};
    const char **forms = NULL;
    int formcap = 0;
    uint64_t keys[MAXKEYS];
    float *sc = xmalloc((size_t)(pu.ncls > px.ncls ? pu.ncls : px.ncls) * sizeof *sc);
    for (int ep = 0; ep < o->epochs; ep++) {
        double te = entk_now();
        shuffle(order, ns, &rng);
        size_t cu = 0, cx = 0;
        for (size_t oi = 0; oi < ns; oi++) {
            const tag_sentence *S = &s[order[oi]];
            size_t base = start[order[oi]];
            sctx_prepare(&c, S->n, sentence_forms(S, &forms, &formcap));
            for (int i = 0; i < S->n; i++) {
                const fslot *d = t->ndict ? ftable_get(&t->dict, c.dkey[i]) : NULL;
                if (d) {
                    cu += (int)d->off == gu[base + i];
                    cx += d->n == gx[base + i];
                    c.utag[i + 2] = lab[TAG_UPOS].name[d->off];
                    c.xtag[i + 2] = lab[TAG_XPOS].name[d->n];
                    continue;
                }
                int nw = word_keys(&c, i, keys);
                int nk = nw + history_keys(&c, i, c.utag, keys + nw);
                ptrain_score(&pu, keys, nk, sc);
                int g = argmax(sc, pu.ncls);
                ptrain_update(&pu, gu[base + i], g, keys, nk);
                cu += g == gu[base + i];
                c.utag[i + 2] = lab[TAG_UPOS].name[g];
                nk = nw + history_keys(&c, i, c.xtag, keys + nw);
                nk += upos_keys(&c, i, keys + nk);
                ptrain_score(&px, keys, nk, sc);
                g = argmax(sc, px.ncls);
                if (gx[base + i] >= 0) ptrain_update(&px, gx[base + i], g, keys, nk);
                cx += g == gx[base + i];
                c.xtag[i + 2] = lab[TAG_XPOS].name[g];
            }
        }
        entk_log("epoch %d/%d: tags: UPOS %.2f%% XPOS %.2f%% right while training on %zu words (%.1f s)",
                 ep + 1, o->epochs, 100.0 * (double)cu / (double)nwords, 100.0 * (double)cx / (double)nwords,
                 nwords, entk_now() - te);
    }
    free(sc);
    take_labels(&t->m[TAG_UPOS], &lab[TAG_UPOS]);
    take_labels(&t->m[TAG_XPOS], &lab[TAG_XPOS]);
    ptrain_finish(&pu, &t->m[TAG_UPOS]);
    ptrain_finish(&px, &t->m[TAG_XPOS]);
    ptrain_free(&pu);
    ptrain_free(&px);
    set_pron_ids(t);

    /* Morphology: the features of the tagged sentence do not change between epochs, so they are
     * computed once, from the final tagger's predictions (what the models will see at run time). */
    ptrain pf[TAG_NFEATS];
    for (int f = 0; f < TAG_NFEATS; f++) ptrain_init(&pf[f], lab[TAG_FEAT0 + f].n);
    size_t nfs = 0;
    for (size_t i = 0; i < ns; i++) nfs += s[i].has_feats;
    size_t *fsent = xmalloc((nfs ? nfs : 1) * sizeof *fsent);
    size_t *koff = xmalloc((nfeatwords + 1) * sizeof *koff);
    uint64_t *mkeys = xmalloc((nfeatwords * MAXKEYS + 1) * sizeof *mkeys);
    int *pu_ids = xmalloc((size_t)(formcap + 1) * sizeof *pu_ids), *px_ids = xmalloc((size_t)(formcap + 1) * sizeof *px_ids);
    size_t nk_all = 0, fw = 0;
    nfs = 0;
    for (size_t i = 0; i < ns; i++) {
        if (!s[i].has_feats) continue;
        fsent[nfs++] = i;
        sctx_prepare(&c, s[i].n, sentence_forms(&s[i], &forms, &formcap));
        pu_ids = xrealloc(pu_ids, (size_t)(s[i].n + 1) * sizeof *pu_ids);
        px_ids = xrealloc(px_ids, (size_t)(s[i].n + 1) * sizeof *px_ids);
        tag_pos(t, &c, pu_ids, px_ids);
        for (int j = 0; j < s[i].n; j++) {
            koff[fw++] = nk_all;
            nk_all += (size_t)morph_keys(t, &c, pu_ids, j, mkeys + nk_all);
        }
    }
    koff[fw] = nk_all;
    free(pu_ids);
    free(px_ids);
    /* word index (into koff) of each feature-annotated sentence */
    size_t *fbase = xmalloc((nfs + 1) * sizeof *fbase);
    for (size_t q = 0, w = 0; q < nfs; q++) { fbase[q] = w; w += (size_t)s[fsent[q]].n; }
    size_t *forder = xmalloc((nfs ? nfs : 1) * sizeof *forder);
    for (size_t q = 0; q < nfs; q++) forder[q] = q;
    float fsc[1 << 10];
    for (int ep = 0; ep < o->epochs && nfs; ep++) {
        double te = entk_now();
        shuffle(forder, nfs, &rng);
        size_t right = 0;
        for (size_t oi = 0; oi < nfs; oi++) {
            size_t q = forder[oi], si = fsent[q];
            for (int j = 0; j < s[si].n; j++) {
                size_t wi = fbase[q] + (size_t)j;
                const uint64_t *k = mkeys + koff[wi];
                int nk = (int)(koff[wi + 1] - koff[wi]);
                const int *gold = gf + (start[si] + (size_t)j) * TAG_NFEATS;
                int all = 1;
                for (int f = 0; f < TAG_NFEATS; f++) {
                    ptrain_score(&pf[f], k, nk, fsc);
                    int g = argmax(fsc, pf[f].ncls);
                    ptrain_update(&pf[f], gold[f], g, k, nk);
                    all &= g == gold[f];
                }
                right += all;
            }
        }
        entk_log("epoch %d/%d: features: all %d right for %.2f%% of %zu annotated words (%.1f s)", ep + 1,
                 o->epochs, TAG_NFEATS, 100.0 * (double)right / (double)nfeatwords, nfeatwords, entk_now() - te);
    }
    if (!nfs) entk_log("no training file annotates FEATS: the feature models will always say '_'");
    for (int f = 0; f < TAG_NFEATS; f++) {
        take_labels(&t->m[TAG_FEAT0 + f], &lab[TAG_FEAT0 + f]);
        ptrain_finish(&pf[f], &t->m[TAG_FEAT0 + f]);
        ptrain_free(&pf[f]);
    }
    free(fsent); free(koff); free(mkeys); free(fbase); free(forder);
    free(order); free(forms); free(start); free(gu); free(gx); free(gf);
    sctx_free(&c);
    size_t nent = 0;
    for (int m = 0; m < TAG_NMODELS; m++) nent += t->m[m].ne;
    entk_log("trained on %zu words in %zu sentences (%zu with FEATS) in %.1f s; %zu weights",
             nwords, ns, nfs, entk_now() - t0, nent);
    return t;
}

/* ------------------------------------------------------------------ model file */

typedef struct {
    unsigned char *b;
    size_t n, cap;
} bytes;

static void put(bytes *o, const void *p, size_t n) {
    if (o->n + n > o->cap) {
        while (o->n + n > o->cap) o->cap = o->cap ? 2 * o->cap : 1 << 20;
        o->b = xrealloc(o->b, o->cap);
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void put_u32(bytes *o, uint32_t v) { put(o, &v, 4); }
static void put_str(bytes *o, const char *s) {
    put_u32(o, (uint32_t)strlen(s));
    put(o, s, strlen(s));
}

static const char MAGIC[8] = "ENTKTAG";   /* with its NUL: 8 bytes */

void tagger_save(const tagger *t, const char *path) {
    bytes o = {0};
    put(&o, MAGIC, 8);
    put_u32(&o, TAGGER_VERSION);
    uint64_t size = 0;   /* the file's size, filled in below: a short file says "truncated" */
    put(&o, &size, 8);
    put_str(&o, t->info);
    put_u32(&o, TAG_NMODELS);
    for (int m = 0; m < TAG_NMODELS; m++) {
        const pmodel *p = &t->m[m];
        put_str(&o, model_names[m]);
        put_u32(&o, (uint32_t)p->ncls);
        for (int c = 0; c < p->ncls; c++) put_str(&o, p->cls[c]);
        put_u32(&o, (uint32_t)p->nrows);
        put_u32(&o, (uint32_t)p->ne);
        put(&o, p->rowkey, p->nrows * sizeof *p->rowkey);
        put(&o, p->off, (p->nrows + 1) * sizeof *p->off);
        put(&o, p->ecls, p->ne * sizeof *p->ecls);
        put(&o, p->w, p->ne * sizeof *p->w);
    }
    put(&o, t->compat, (size_t)t->m[TAG_UPOS].ncls * (size_t)t->m[TAG_XPOS].ncls);
    put_u32(&o, (uint32_t)t->ndict);
    put(&o, t->dictkey, t->ndict * sizeof *t->dictkey);
    put(&o, t->dictu, t->ndict * sizeof *t->dictu);
    put(&o, t->dictx, t->ndict * sizeof *t->dictx);
    size = o.n + 8;
    memcpy(o.b + 12, &size, 8);
    uint64_t sum = XXH3_64bits(o.b, o.n);
    put(&o, &sum, 8);
    outfile_write_all(path, o.b, o.n);
    free(o.b);
}

typedef struct {
    const char *path;
    const unsigned char *b;
    size_t n, at;
} reader;

static void get(reader *r, void *dst, size_t n) {
    if (n > r->n - r->at)
        entk_die(ENTK_EXIT_INPUT, "%s: truncated model file (needs more than its %zu bytes)", r->path, r->n);
    memcpy(dst, r->b + r->at, n);
    r->at += n;
}
static uint32_t get_u32(reader *r) { uint32_t v; get(r, &v, 4); return v; }
static char *get_str(reader *r, const char *what) {
    uint32_t len = get_u32(r);
    if (len > 4096) entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: %s of length %u", r->path, what, len);
    char *s = xmalloc((size_t)len + 1);
    get(r, s, len);
    s[len] = 0;
    if (strlen(s) != len) entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: NUL byte in %s", r->path, what);
    return s;
}

tagger *tagger_load(const char *path) {
    size_t n;
    unsigned char *b = (unsigned char *)read_file(path, &n);
    reader r = {path, b, n, 0};
    char magic[8];
    if (n < 8 || (get(&r, magic, 8), memcmp(magic, MAGIC, 8) != 0))
        entk_die(ENTK_EXIT_INPUT, "%s: not an entk-tag model (bad magic)", path);
    uint32_t version = get_u32(&r);
    if (version != TAGGER_VERSION)
        entk_die(ENTK_EXIT_INPUT, "%s: model version %u, this entk-tag reads version %d (retrain it)", path,
                 version, TAGGER_VERSION);
    uint64_t size;
    get(&r, &size, 8);
    if (size != n)
        entk_die(ENTK_EXIT_INPUT, "%s: %s model file: %zu bytes, its header says %llu", path,
                 n < size ? "truncated" : "corrupt", n, (unsigned long long)size);
    if (n < 8 + 4 + 8 + 8) entk_die(ENTK_EXIT_INPUT, "%s: truncated model file (%zu bytes)", path, n);
    uint64_t sum;
    memcpy(&sum, b + n - 8, 8);
    if (XXH3_64bits(b, n - 8) != sum)
        entk_die(ENTK_EXIT_INPUT, "%s: corrupt or truncated model file (checksum mismatch)", path);
    r.n = n - 8;
    tagger *t = xcalloc(1, sizeof *t);
    t->info = get_str(&r, "info");
    uint32_t nm = get_u32(&r);
    if (nm != TAG_NMODELS) entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: %u models, expected %d", path, nm, TAG_NMODELS);
    for (int m = 0; m < TAG_NMODELS; m++) {
        pmodel *p = &t->m[m];
        char *name = get_str(&r, "model name");
        if (strcmp(name, model_names[m]) != 0)
            entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: model %d is '%s', expected '%s'", path, m, name, model_names[m]);
        free(name);
        uint32_t ncls = get_u32(&r);
        if (ncls < 1 || ncls > 1024) entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: %u classes in %s", path, ncls, model_names[m]);
        p->ncls = (int)ncls;
        p->cls = xcalloc(ncls, sizeof *p->cls);
        for (uint32_t c = 0; c < ncls; c++) p->cls[c] = get_str(&r, "class name");
        if (m >= TAG_FEAT0 && strcmp(p->cls[0], "_") != 0)
            entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: feature %s lacks the '_' class", path, model_names[m]);
        uint32_t nrows = get_u32(&r), ne = get_u32(&r);
        size_t need = (size_t)nrows * 12 + 4 + (size_t)ne * 6;
        if (need > r.n - r.at)
            entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: %s claims %u rows and %u weights, more than the file holds",
                     path, model_names[m], nrows, ne);
        p->nrows = nrows;
        p->ne = ne;
        p->rowkey = xmalloc(((size_t)nrows + 1) * sizeof *p->rowkey);
        p->off = xmalloc(((size_t)nrows + 1) * sizeof *p->off);
        p->ecls = xmalloc(((size_t)ne + 1) * sizeof *p->ecls);
        p->w = xmalloc(((size_t)ne + 1) * sizeof *p->w);
        get(&r, p->rowkey, (size_t)nrows * sizeof *p->rowkey);
        get(&r, p->off, ((size_t)nrows + 1) * sizeof *p->off);
        get(&r, p->ecls, (size_t)ne * sizeof *p->ecls);
        get(&r, p->w, (size_t)ne * sizeof *p->w);
        if (p->off[0] != 0 || p->off[nrows] != ne)
            entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: bad row offsets in %s", path, model_names[m]);
        for (uint32_t q = 0; q < nrows; q++)
            if (p->off[q + 1] < p->off[q]) entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: bad row offsets in %s", path, model_names[m]);
        for (uint32_t e = 0; e < ne; e++)
            if (p->ecls[e] >= ncls || !isfinite(p->w[e]))
                entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: bad weight %u in %s", path, e, model_names[m]);
        for (uint32_t q = 0; q < nrows; q++)
            if (p->off[q + 1] - p->off[q] > ncls)
                entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: a row of %s longer than its classes", path, model_names[m]);
        if (!pmodel_index(p))
                entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: bad or repeated feature key in %s", path, model_names[m]);
    }
    size_t ncompat = (size_t)t->m[TAG_UPOS].ncls * (size_t)t->m[TAG_XPOS].ncls;
    t->compat = xmalloc(ncompat);
    get(&r, t->compat, ncompat);
    for (size_t q = 0; q < ncompat; q++)
        if (t->compat[q] > 1) entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: bad UPOS/XPOS table", path);
    uint32_t nd = get_u32(&r);
    if ((size_t)nd * 12 > r.n - r.at)
        entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: tag dictionary of %u words is longer than the file", path, nd);
    t->ndict = nd;
    t->dictkey = xmalloc(((size_t)nd + 1) * sizeof *t->dictkey);
    t->dictu = xmalloc(((size_t)nd + 1) * sizeof *t->dictu);
    t->dictx = xmalloc(((size_t)nd + 1) * sizeof *t->dictx);
    get(&r, t->dictkey, (size_t)nd * sizeof *t->dictkey);
    get(&r, t->dictu, (size_t)nd * sizeof *t->dictu);
    get(&r, t->dictx, (size_t)nd * sizeof *t->dictx);
    ftable_init(&t->dict, nd);
    for (uint32_t q = 0; q < nd; q++) {
        int fresh;
        if (!t->dictkey[q] || t->dictu[q] >= t->m[TAG_UPOS].ncls || t->dictx[q] >= t->m[TAG_XPOS].ncls ||
            (ftable_add(&t->dict, t->dictkey[q], &fresh), !fresh))
            entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: bad tag dictionary entry %u", path, q);
        dict_insert(t, t->dictkey[q], t->dictu[q], t->dictx[q]);
    }
    if (r.at != r.n) entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: %zu bytes of trailing garbage", path, r.n - r.at);
    free(b);
    set_pron_ids(t);
    return t;
}

void tagger_free(tagger *t) {
    if (!t) return;
    for (int m = 0; m < TAG_NMODELS; m++) pmodel_free(&t->m[m]);
    ftable_free(&t->dict);
    free(t->dictkey);
    free(t->dictu);
    free(t->dictx);
    free(t->compat);
    free(t->info);
    free(t);
}

const char *tagger_info(const tagger *t) { return t->info; }
int tagger_nclasses(const tagger *t, int model) { return t->m[model].ncls; }
const char *tagger_class(const tagger *t, int model, int cls) { return t->m[model].cls[cls]; }

int tagger_class_id(const tagger *t, int model, const char *name, size_t len) {
    const pmodel *m = &t->m[model];
    for (int c = 0; c < m->ncls; c++)
        if (strlen(m->cls[c]) == len && memcmp(m->cls[c], name, len) == 0) return c;
    return -1;
}
