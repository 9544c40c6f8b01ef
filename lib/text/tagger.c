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
    uint64_t k = XXH3_64bits_withSeed(buf, n, tmpl) & KEY_FEATURE_MASK;
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
size_t norm_quotes(const char *f, char *out) {
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

void sctx_free(sctx *c) {
    free(c->norm);
    free(c->lower);
    free(c->shape);
    free(c->utag);
    free(c->xtag);
    free(c->rtag);
    free(c->rxtag);
    free(c->ltag);
    free(c->lxtag);
    free(c->dkey);
    free(c->amb);
    free(c->cased);
    memset(c, 0, sizeof *c);
}

static void set_sentinel(char *dst, const char *s) { snprintf(dst, WMAX, "%s", s); }

#define LEX_PAD 0xFFFFFFFFu   /* the tag set of the sentinels */
uint64_t lex_key(const char *norm) { return XXH3_64bits(norm, strlen(norm)) | 1; }

/* t may be NULL (or have no lexicon yet): the tag sets are then all 0. */
void sctx_prepare(sctx *c, const tagger *t, int n, const char *const *form) {
    if (n + 4 > c->cap) {
        c->cap = n + 4 + 64;
        c->norm = xrealloc(c->norm, (size_t)c->cap * WMAX);
        c->lower = xrealloc(c->lower, (size_t)c->cap * WMAX);
        c->shape = xrealloc(c->shape, (size_t)c->cap * WMAX);
        c->utag = xrealloc(c->utag, (size_t)c->cap * sizeof *c->utag);
        c->xtag = xrealloc(c->xtag, (size_t)c->cap * sizeof *c->xtag);
        c->rtag = xrealloc(c->rtag, (size_t)c->cap * sizeof *c->rtag);
        c->rxtag = xrealloc(c->rxtag, (size_t)c->cap * sizeof *c->rxtag);
        c->ltag = xrealloc(c->ltag, (size_t)c->cap * sizeof *c->ltag);
        c->lxtag = xrealloc(c->lxtag, (size_t)c->cap * sizeof *c->lxtag);
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
        const char **tags[6] = {c->utag, c->xtag, c->rtag, c->rxtag, c->ltag, c->lxtag};
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
    int ncap = 0, nalpha = 0;
    for (int i = 1; i < n; i++) {
        char ch = c->cased[i + 2][0];
        nalpha += (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
        ncap += ch >= 'A' && ch <= 'Z';
    }
    c->title[0] = (char)('0' + (nalpha < 2 ? 1 : 3 * ncap < nalpha ? 0 : 3 * ncap < 2 * nalpha ? 1 : 2));
    c->title[1] = 0;
}

void sctx_reverse(const sctx *c, sctx *r) {
    static const char *const none[1] = {""};
    int n = c->n;
    const char **forms = xmalloc(((size_t)n + 1) * sizeof *forms);
    for (int i = 0; i < n; i++) forms[i] = none[0];
    sctx_prepare(r, NULL, n, forms);
    free(forms);
    for (int i = 0; i < n; i++) {
        int a = i + 2, b = n - 1 - i + 2;
        memcpy(r->norm[a], c->norm[b], WMAX);
        memcpy(r->lower[a], c->lower[b], WMAX);
        memcpy(r->shape[a], c->shape[b], WMAX);
        memcpy(r->cased[a], c->cased[b], WMAX);
        r->amb[a] = c->amb[b];
        r->dkey[i] = c->dkey[n - 1 - i];
    }
    memcpy(r->title, c->title, sizeof r->title);
    r->domain = c->domain;
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

/* Spelling features that help with rare and unknown words: longer affixes, the parts of a
 * hyphenated word, and flags of case, digits and hyphens (with the suffix, and with how much of
 * the sentence is capitalised: a capital says less in a headline). */
static int char_keys(const sctx *c, int j, uint64_t *k) {
    int n = 0;
    char b4[8], fl[8], part[WMAX];
    const char *lo = c->lower[j], *ca = c->cased[j];
    k[n++] = fkey(69, suffix(lo, 5), NULL, NULL);
    k[n++] = fkey(70, prefix(lo, 4, b4), NULL, NULL);
    const char *h1 = strchr(lo, '-'), *h2 = strrchr(lo, '-');
    if (h1 && h1 != lo && h2[1]) {
        k[n++] = fkey(71, h2 + 1, NULL, NULL);
        size_t len = (size_t)(h1 - lo);
        memcpy(part, lo, len);
        part[len] = 0;
        k[n++] = fkey(72, part, NULL, NULL);
    }
    int up = 0, dig = 0, low = 0, hy = h1 != NULL;
    for (const char *p = ca; *p; p++) up += *p >= 'A' && *p <= 'Z', dig += *p >= '0' && *p <= '9', low += *p >= 'a' && *p <= 'z';
    int f = 0;
    if (up) fl[f++] = ca[0] >= 'A' && ca[0] <= 'Z' ? (low ? 'I' : 'A') : 'U';
    if (dig) fl[f++] = 'D';
    if (hy) fl[f++] = 'H';
    fl[f] = 0;
    k[n++] = fkey(73, fl, NULL, NULL);
    k[n++] = fkey(74, fl, suffix(lo, 3), NULL);
    k[n++] = fkey(75, c->title, fl, NULL);
    k[n++] = fkey(76, c->title, fl, c->norm[j]);
    return n;
}

/* Features of word i that do not depend on predicted tags: shared by the UPOS and XPOS models. */
int word_keys(const sctx *c, int i, uint64_t *k) {
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
    n += char_keys(c, j, k + n);
    return n;
}

/* Features from the two previous tags (t1 before t2) of the same model; r, when given (the
 * second stage), is the previous UPOS, paired with the first stage's UPOS of the next word. */
int history_keys(const sctx *c, int i, const char *t1, const char *t2, const char *r, uint64_t *k) {
    int n = 0, j = i + 2;
    k[n++] = fkey(20, t1, NULL, NULL);
    k[n++] = fkey(21, t2, NULL, NULL);
    k[n++] = fkey(22, t1, t2, NULL);
    k[n++] = fkey(23, t1, c->norm[j], NULL);
    k[n++] = fkey(24, t1, suffix(c->lower[j], 3), NULL);
    k[n++] = fkey(25, t1, c->norm[j + 1], NULL);
    if (r) k[n++] = fkey(85, r, c->rtag[j + 1], NULL);
    if (r) k[n++] = fkey(95, c->norm[j], r, c->rtag[j + 1]);
    return n;
}

/* The second stage also sees the first stage's UPOS of the word and of the two after it: the
 * right context that a left-to-right pass otherwise lacks. */
int right_keys(const sctx *c, int i, uint64_t *k) {
    int n = 0, j = i + 2;
    const char *r0 = c->rtag[j], *r1 = c->rtag[j + 1], *r2 = c->rtag[j + 2];
    k[n++] = fkey(80, r0, NULL, NULL);
    k[n++] = fkey(81, r1, NULL, NULL);
    k[n++] = fkey(82, r1, r2, NULL);
    k[n++] = fkey(83, c->norm[j], r1, NULL);
    k[n++] = fkey(84, r0, r1, NULL);
    k[n++] = fkey(86, c->norm[j], r0, NULL);
    k[n++] = fkey(87, c->rxtag[j + 1], NULL, NULL);
    k[n++] = fkey(88, c->rxtag[j + 1], c->rxtag[j + 2], NULL);
    k[n++] = fkey(89, c->norm[j], c->rxtag[j + 1], NULL);
    k[n++] = fkey(90, c->rxtag[j], NULL, NULL);
    const char *l0 = c->ltag[j];
    k[n++] = fkey(100, l0, NULL, NULL);
    k[n++] = fkey(101, l0, r0, NULL);
    k[n++] = fkey(102, c->norm[j], l0, NULL);
    k[n++] = fkey(103, c->ltag[j + 1], NULL, NULL);
    k[n++] = fkey(104, c->ltag[j - 1], NULL, NULL);
    k[n++] = fkey(105, c->lxtag[j], NULL, NULL);
    k[n++] = fkey(106, c->norm[j], c->lxtag[j], NULL);
    k[n++] = fkey(107, l0, c->ltag[j + 1], NULL);
    k[n++] = fkey(108, c->lxtag[j], c->rxtag[j], NULL);
    k[n++] = fkey(91, c->norm[j], r1, r2);
    k[n++] = fkey(92, c->norm[j], c->rxtag[j + 1], c->rxtag[j + 2]);
    /* the first verb or auxiliary to the right, within 6 words */
    const char *v = "-NONE-";
    for (int q = j + 1; q <= j + 6 && q < c->n + 2; q++)
        if (c->rxtag[q][0] == 'V' || strcmp(c->rxtag[q], "MD") == 0) { v = c->rxtag[q]; break; }
    k[n++] = fkey(93, c->norm[j], v, NULL);
    for (int q = j + 1; q <= j + 4 && q < c->n + 2; q++) k[n++] = fkey(94, c->norm[j], c->rtag[q], NULL);
    return n;
}

/* The XPOS model also sees the word's UPOS u. */
int upos_keys(const sctx *c, int i, const char *u, uint64_t *k) {
    int n = 0, j = i + 2;
    k[n++] = fkey(30, u, NULL, NULL);
    k[n++] = fkey(31, u, c->norm[j], NULL);
    k[n++] = fkey(32, u, suffix(c->lower[j], 3), NULL);
    return n;
}

/* Features for the morphology models, from the tagged sentence. Agreement (Number and Person
 * of finite verbs) depends on the subject, approximated by the nearest noun or pronoun before. */
int morph_keys(const tagger *t, const sctx *c, const int *upos, int i, uint64_t *k) {
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

/* One stage (0: first, left to right; 1: second; 2: first, right to left) over c. */
static void run_stage(const tagger *t, const sctx *c, tbeam *bm, int stage, int *upos, int *xpos) {
    static const int mu[3] = {TAG_UPOS, TAG_UPOS2, TAG_UPOSR}, mx[3] = {TAG_XPOS, TAG_XPOS2, TAG_XPOSR};
    tstage st = {t, {NULL, &t->m[mu[stage]]}, {NULL, &t->m[mx[stage]]}, (const char *const *)t->m[TAG_UPOS].cls,
                 (const char *const *)t->m[TAG_XPOS].cls, t->m[TAG_UPOS].ncls, t->m[TAG_XPOS].ncls, stage == 1};
    beam_decode(&st, c, bm, upos, xpos);
}

/* The first stage in both directions, each a beam search (tagger_beam.c); then the second,
 * which sees the first's tags of the words to the right (right_keys), decides. */
void tag_pos(const tagger *t, sctx *c, int *upos, int *xpos) {
    tbeam bm = {0};
    sctx r = {0};
    int n = c->n;
    const char *const *un = (const char *const *)t->m[TAG_UPOS].cls, *const *xn = (const char *const *)t->m[TAG_XPOS].cls;
    run_stage(t, c, &bm, 0, upos, xpos);
    for (int i = 0; i < n; i++) c->rtag[i + 2] = un[upos[i]], c->rxtag[i + 2] = xn[xpos[i]];
    sctx_reverse(c, &r);
    run_stage(t, &r, &bm, 2, upos, xpos);
    for (int i = 0; i < n; i++) c->ltag[n - 1 - i + 2] = un[upos[i]], c->lxtag[n - 1 - i + 2] = xn[xpos[i]];
    run_stage(t, c, &bm, 1, upos, xpos);
    for (int i = 0; i < n; i++) c->utag[i + 2] = un[upos[i]], c->xtag[i + 2] = xn[xpos[i]];
    sctx_free(&r);
    tbeam_free(&bm);
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
