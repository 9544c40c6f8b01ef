#include "tagger_impl.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/outfile.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the model file is written in host byte order, which must be little-endian"
#endif

const char *const tag_model_names[TAG_ALLMODELS] = {"upos", "xpos", "Case", "Definite", "Gender",
                                                   "Mood", "Number", "Person", "PronType", "Tense",
                                                   "VerbForm", "upos2", "xpos2", "uposr", "xposr"};

/* ------------------------------------------------------------------ feature table */

void ftable_init(ftable *t, size_t want) {
    t->cap = 1024;
    while (t->cap < 2 * want) t->cap *= 2;
    t->slot = xcalloc(t->cap, sizeof *t->slot);
    t->n = 0;
}

void ftable_free(ftable *t) {
    free(t->slot);
    memset(t, 0, sizeof *t);
}

const fslot *ftable_get(const ftable *t, uint64_t k) {
    size_t m = t->cap - 1;
    for (size_t i = k & m; t->slot[i].key; i = (i + 1) & m)
        if (t->slot[i].key == k) return &t->slot[i];
    return NULL;
}

/* The slot of k, inserted (zeroed but for the key) if absent; *fresh says which. The pointer is
 * valid until the next insertion. */
fslot *ftable_add(ftable *t, uint64_t k, int *fresh) {
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

/* ------------------------------------------------------------------ perceptrons */

void ptrain_init(ptrain *p, int ncls) {
    memset(p, 0, sizeof *p);
    p->ncls = ncls;
    ftable_init(&p->tab, 1 << 16);
}

void ptrain_free(ptrain *p) {
    ftable_free(&p->tab);
    free(p->e);
    free(p->acc);
}

/* Sums the rows of the features; the slots, then the rows, are prefetched together, since each
 * is a likely cache miss and they are independent. */
void ptrain_score(const ptrain *p, const uint64_t *keys, int nk, float *sc) {
    memset(sc, 0, (size_t)p->ncls * sizeof *sc);
    ptrain_add_scores(p, keys, nk, sc);
}

void ptrain_add_scores(const ptrain *p, const uint64_t *keys, int nk, float *sc) {
    const fslot *row[MAXKEYS];
    size_t m = p->tab.cap - 1;
    for (int k = 0; k < nk; k++) __builtin_prefetch(&p->tab.slot[keys[k] & m]);
    for (int k = 0; k < nk; k++) {
        row[k] = ftable_get(&p->tab, keys[k]);
        if (row[k]) __builtin_prefetch(p->e + row[k]->off);
    }
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

void ptrain_step(ptrain *p, int cls, const uint64_t *keys, int nk, float v) {
    for (int k = 0; k < nk; k++) ptrain_add(p, keys[k], cls, v);
}

void ptrain_update(ptrain *p, int truth, int guess, const uint64_t *keys, int nk) {
    p->i++;
    if (truth == guess) return;
    for (int k = 0; k < nk; k++) {
        ptrain_add(p, keys[k], truth, 1);
        ptrain_add(p, keys[k], guess, -1);
    }
}

int cls_argmax(const float *sc, int n) {
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

static float wavg(const ptrain *p, uint32_t at, double steps) {
    const went *e = &p->e[at];
    const wacc *a = &p->acc[at];
    return (float)((a->total + (double)(p->i - a->ts) * e->w) / steps);
}

/* Averages the weights and packs them; entries that average to zero are dropped. With written,
 * a feature's row also takes its written copy's weights, and copies get no row of their own. A
 * copy's classes are among its feature's (both move in the same updates). */
static void finish(ptrain *p, pmodel *m, int written) {
    m->ncls = p->ncls;
    m->rowkey = xmalloc((p->tab.n + 1) * sizeof *m->rowkey);
    m->off = xmalloc((p->tab.n + 1) * sizeof *m->off);
    m->ecls = xmalloc((p->ne + 1) * sizeof *m->ecls);
    m->w = xmalloc((p->ne + 1) * sizeof *m->w);
    size_t nr = 0, ne = 0;
    double steps = p->i > 0 ? p->i : 1;
    for (size_t s = 0; s < p->tab.cap; s++) {
        const fslot *row = &p->tab.slot[s];
        if (!row->key || (written && (row->key & ~KEY_FEATURE_MASK))) continue;
        const fslot *copy = written ? ftable_get(&p->tab, row->key ^ KEY_COPY_WRITTEN) : NULL;
        size_t first = ne;
        for (int j = 0; j < row->n; j++) {
            float avg = wavg(p, row->off + j, steps);
            for (int q = 0; copy && q < copy->n; q++)
                if (p->e[copy->off + q].cls == p->e[row->off + j].cls) avg += wavg(p, copy->off + q, steps);
            if (avg == 0) continue;
            m->ecls[ne] = p->e[row->off + j].cls;
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

void ptrain_finish(ptrain *p, pmodel *m) { finish(p, m, 0); }
void ptrain_finish_written(ptrain *p, pmodel *m) { finish(p, m, 1); }

void pmodel_score(const pmodel *m, const uint64_t *keys, int nk, float *sc) {
    memset(sc, 0, (size_t)m->ncls * sizeof *sc);
    pmodel_add_scores(m, keys, nk, sc);
}

void pmodel_add_scores(const pmodel *m, const uint64_t *keys, int nk, float *sc) {
    const fslot *row[MAXKEYS];
    size_t mask = m->tab.cap - 1;
    for (int k = 0; k < nk; k++) __builtin_prefetch(&m->tab.slot[keys[k] & mask]);
    for (int k = 0; k < nk; k++) {
        row[k] = ftable_get(&m->tab, keys[k]);
        if (row[k]) { __builtin_prefetch(m->ecls + row[k]->off); __builtin_prefetch(m->w + row[k]->off); }
    }
    for (int k = 0; k < nk; k++) {
        if (!row[k]) continue;
        const uint16_t *c = m->ecls + row[k]->off;
        const float *w = m->w + row[k]->off;
        for (int j = 0; j < row[k]->n; j++) sc[c[j]] += w[j];
    }
}

void pmodel_free(pmodel *m) {
    for (int c = 0; c < m->ncls && m->cls; c++) free(m->cls[c]);
    free(m->cls);
    free(m->rowkey);
    free(m->off);
    free(m->ecls);
    free(m->w);
    ftable_free(&m->tab);
}

void tag_set_pron_ids(tagger *t) {
    const pmodel *u = &t->m[TAG_UPOS];
    t->pron = t->noun = t->propn = -2;   /* never equal to a class id */
    for (int c = 0; c < u->ncls; c++) {
        if (strcmp(u->cls[c], "PRON") == 0) t->pron = c;
        if (strcmp(u->cls[c], "NOUN") == 0) t->noun = c;
        if (strcmp(u->cls[c], "PROPN") == 0) t->propn = c;
    }
}

void tag_dict_insert(tagger *t, uint64_t key, int upos, int xpos) {
    int fresh;
    fslot *d = ftable_add(&t->dict, key, &fresh);
    d->off = (uint32_t)upos;
    d->n = (uint16_t)xpos;
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
    put_u32(&o, TAG_ALLMODELS);
    for (int m = 0; m < TAG_ALLMODELS; m++) {
        const pmodel *p = &t->m[m];
        put_str(&o, tag_model_names[m]);
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
    put_u32(&o, (uint32_t)t->nlex);
    put(&o, t->lexkey, t->nlex * sizeof *t->lexkey);
    put(&o, t->lexmask, t->nlex * sizeof *t->lexmask);
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
    if (nm != TAG_ALLMODELS) entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: %u models, expected %d", path, nm, TAG_ALLMODELS);
    for (int m = 0; m < TAG_ALLMODELS; m++) {
        pmodel *p = &t->m[m];
        char *name = get_str(&r, "model name");
        if (strcmp(name, tag_model_names[m]) != 0)
            entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: model %d is '%s', expected '%s'", path, m, name, tag_model_names[m]);
        free(name);
        uint32_t ncls = get_u32(&r);
        if (ncls < 1 || ncls > 1024) entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: %u classes in %s", path, ncls, tag_model_names[m]);
        p->ncls = (int)ncls;
        p->cls = xcalloc(ncls, sizeof *p->cls);
        for (uint32_t c = 0; c < ncls; c++) p->cls[c] = get_str(&r, "class name");
        if (m >= TAG_NMODELS) {   /* the second stage: the classes of the first */
            const pmodel *twin = &t->m[m == TAG_UPOS2 || m == TAG_UPOSR ? TAG_UPOS : TAG_XPOS];
            int same = p->ncls == twin->ncls;
            for (int c = 0; same && c < p->ncls; c++) same = strcmp(p->cls[c], twin->cls[c]) == 0;
            if (!same) entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: %s has other classes than %s", path, tag_model_names[m], twin == &t->m[TAG_UPOS] ? "upos" : "xpos");
        }
        if (m >= TAG_FEAT0 && m < TAG_NMODELS && strcmp(p->cls[0], "_") != 0)
            entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: feature %s lacks the '_' class", path, tag_model_names[m]);
        uint32_t nrows = get_u32(&r), ne = get_u32(&r);
        size_t need = (size_t)nrows * 12 + 4 + (size_t)ne * 6;
        if (need > r.n - r.at)
            entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: %s claims %u rows and %u weights, more than the file holds",
                     path, tag_model_names[m], nrows, ne);
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
            entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: bad row offsets in %s", path, tag_model_names[m]);
        for (uint32_t q = 0; q < nrows; q++)
            if (p->off[q + 1] < p->off[q]) entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: bad row offsets in %s", path, tag_model_names[m]);
        for (uint32_t e = 0; e < ne; e++)
            if (p->ecls[e] >= ncls || !isfinite(p->w[e]))
                entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: bad weight %u in %s", path, e, tag_model_names[m]);
        for (uint32_t q = 0; q < nrows; q++)
            if (p->off[q + 1] - p->off[q] > ncls)
                entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: a row of %s longer than its classes", path, tag_model_names[m]);
        if (!pmodel_index(p))
                entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: bad or repeated feature key in %s", path, tag_model_names[m]);
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
        tag_dict_insert(t, t->dictkey[q], t->dictu[q], t->dictx[q]);
    }
    uint32_t nl = get_u32(&r);
    if ((size_t)nl * 12 > r.n - r.at)
        entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: lexicon of %u words is longer than the file", path, nl);
    t->nlex = nl;
    t->lexkey = xmalloc(((size_t)nl + 1) * sizeof *t->lexkey);
    t->lexmask = xmalloc(((size_t)nl + 1) * sizeof *t->lexmask);
    get(&r, t->lexkey, (size_t)nl * sizeof *t->lexkey);
    get(&r, t->lexmask, (size_t)nl * sizeof *t->lexmask);
    ftable_init(&t->lex, nl);
    for (uint32_t q = 0; q < nl; q++) {
        int fresh;
        fslot *e = t->lexkey[q] ? ftable_add(&t->lex, t->lexkey[q], &fresh) : NULL;
        if (!e || !fresh || (t->m[TAG_UPOS].ncls < 32 && t->lexmask[q] >> t->m[TAG_UPOS].ncls))
            entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: bad lexicon entry %u", path, q);
        e->off = t->lexmask[q];
    }
    if (r.at != r.n) entk_die(ENTK_EXIT_INPUT, "%s: corrupt model file: %zu bytes of trailing garbage", path, r.n - r.at);
    free(b);
    tag_set_pron_ids(t);
    return t;
}

void tagger_free(tagger *t) {
    if (!t) return;
    for (int m = 0; m < TAG_ALLMODELS; m++) pmodel_free(&t->m[m]);
    ftable_free(&t->dict);
    free(t->dictkey);
    free(t->dictu);
    free(t->dictx);
    ftable_free(&t->lex);
    free(t->lexkey);
    free(t->lexmask);
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
