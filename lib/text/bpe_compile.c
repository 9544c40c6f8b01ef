/* bpe_compile: a tokenizer.json read, checked and compiled into the blob bpe.c loads (see
 * bpe_impl.h): the vocabulary and the added tokens as symbols, the merges as a hash table of
 * symbol pairs, the added tokens' trie, the normalizer, pre-tokenizer, post-processor and decoder
 * as a list of operations. Anything entk cannot run is refused here, naming it. */
#include "bpe_impl.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/json.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *path;
    bytebuf pool;                      /* symbol strings only: symbol i ends where i + 1 starts */
    bytebuf aux;                       /* the pipeline's strings, appended to pool at the end */
    uint32_t *sym_off;                 /* start of each symbol; sym_off[nsym] = pool end */
    int32_t *sym_tok;
    uint32_t nsym, symcap;
    uint32_t *ht;
    uint32_t ht_bits;
    op *ops;
    uint32_t nops, opcap;
    int32_t *ints;
    uint32_t nints, intcap;
} builder;

static void bad(const builder *bd, const char *fmt, ...) __attribute__((format(printf, 2, 3), __noreturn__));
static void bad(const builder *bd, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    entk_die(ENTK_EXIT_INPUT, "%s: %s", bd->path, msg);
}

static uint32_t pool_add(builder *bd, const char *s, size_t n) {
    uint32_t o = (uint32_t)bd->pool.n;
    bytebuf_add(&bd->pool, s, n);
    if (bd->pool.n > UINT32_MAX / 2) bad(bd, "too many token bytes");
    return o;
}

static uint32_t aux_add(builder *bd, const char *s, size_t n) {
    uint32_t o = (uint32_t)bd->aux.n;
    bytebuf_add(&bd->aux, s, n);
    if (bd->aux.n > UINT32_MAX / 4) bad(bd, "pipeline strings too long");
    return o;
}

static void ht_rebuild(builder *bd, uint32_t bits) {
    free(bd->ht);
    bd->ht_bits = bits;
    bd->ht = xcalloc((size_t)1 << bits, sizeof(uint32_t));
    uint32_t mask = (1u << bits) - 1;
    for (uint32_t s = 0; s < bd->nsym; s++) {
        uint32_t i = str_hash(bd->pool.p + bd->sym_off[s], bd->sym_off[s + 1] - bd->sym_off[s]) & mask;
        while (bd->ht[i]) i = (i + 1) & mask;
        bd->ht[i] = s + 1;
    }
}

/* The symbol for string s, added (not a token) if new. */
static int32_t sym_intern(builder *bd, const char *s, size_t n) {
    uint32_t mask = (1u << bd->ht_bits) - 1;
    uint32_t i = str_hash(s, n) & mask;
    while (bd->ht[i]) {
        uint32_t sy = bd->ht[i] - 1, o = bd->sym_off[sy];
        if (bd->sym_off[sy + 1] - o == n && memcmp(bd->pool.p + o, s, n) == 0) return (int32_t)sy;
        i = (i + 1) & mask;
    }
    if (bd->nsym + 2 >= bd->symcap) {
        bd->symcap = bd->symcap ? 2 * bd->symcap : 1 << 16;
        bd->sym_off = xrealloc(bd->sym_off, (size_t)bd->symcap * sizeof *bd->sym_off);
        bd->sym_tok = xrealloc(bd->sym_tok, (size_t)bd->symcap * sizeof *bd->sym_tok);
    }
    uint32_t sy = bd->nsym++;
    bd->sym_off[sy] = pool_add(bd, s, n);
    bd->sym_off[sy + 1] = (uint32_t)bd->pool.n;
    bd->sym_tok[sy] = -1;
    bd->ht[i] = sy + 1;
    if ((uint64_t)bd->nsym * 2 > (1ull << bd->ht_bits)) ht_rebuild(bd, bd->ht_bits + 1);
    return (int32_t)sy;
}

static op *op_add(builder *bd, uint32_t stage, uint32_t kind) {
    if (bd->nops == bd->opcap) {
        bd->opcap = bd->opcap ? 2 * bd->opcap : 16;
        bd->ops = xrealloc(bd->ops, bd->opcap * sizeof *bd->ops);
    }
    op *o = &bd->ops[bd->nops++];
    memset(o, 0, sizeof *o);
    o->stage = stage;
    o->kind = kind;
    return o;
}

static const char *type_of(const builder *bd, const json *j, const char *what) {
    if (!j || j->type != JSON_OBJ) bad(bd, "%s is not an object", what);
    const char *t = json_get_str(j, "type");
    if (!t) bad(bd, "%s has no \"type\"", what);
    return t;
}

static int get_bool(const builder *bd, const json *obj, const char *key, int dflt) {
    const json *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) return dflt;
    if (v->type != JSON_BOOL) bad(bd, "\"%s\" is not a boolean", key);
    return v->num != 0;
}

/* A {"String": s} pattern into the pool; Regex patterns are refused (entk has no regex engine). */
static void get_pattern(builder *bd, const json *o, const char *what, uint32_t *off, uint32_t *len) {
    const json *p = json_get(o, "pattern");
    if (!p || p->type != JSON_OBJ) bad(bd, "%s has no pattern", what);
    const json *s = json_get(p, "String");
    if (!s) {
        if (json_get(p, "Regex")) bad(bd, "unsupported %s with a Regex pattern (only String patterns)", what);
        bad(bd, "%s pattern has no \"String\"", what);
    }
    if (s->type != JSON_STR) bad(bd, "%s pattern String is not a string", what);
    if (s->len == 0) bad(bd, "%s pattern is empty", what);
    *off = aux_add(bd, s->s, s->len);
    *len = (uint32_t)s->len;
}

static void get_content(builder *bd, const json *o, const char *key, const char *what, uint32_t *off, uint32_t *len) {
    const json *c = json_get(o, key);
    if (!c || c->type != JSON_STR) bad(bd, "%s has no string \"%s\"", what, key);
    *off = aux_add(bd, c->s, c->len);
    *len = (uint32_t)c->len;
}

static void compile_normalizer(builder *bd, const json *n) {
    if (!n || n->type == JSON_NULL) return;
    const char *t = type_of(bd, n, "normalizer");
    if (!strcmp(t, "Sequence")) {
        const json *l = json_get(n, "normalizers");
        if (!l || l->type != JSON_ARR) bad(bd, "normalizer Sequence has no \"normalizers\" array");
        for (size_t i = 0; i < l->len; i++) compile_normalizer(bd, &l->items[i]);
    } else if (!strcmp(t, "Replace")) {
        op *o = op_add(bd, ST_NORM, N_REPLACE);
        get_pattern(bd, n, "normalizer Replace", &o->a_off, &o->a_len);
        get_content(bd, n, "content", "normalizer Replace", &o->b_off, &o->b_len);
    } else if (!strcmp(t, "Prepend")) {
        op *o = op_add(bd, ST_NORM, N_PREPEND);
        get_content(bd, n, "prepend", "normalizer Prepend", &o->a_off, &o->a_len);
    } else {
        bad(bd, "unsupported normalizer type '%s' (entk supports Replace, Prepend, Sequence)", t);
    }
}

static void compile_pretokenizer(builder *bd, const json *p) {
    if (!p || p->type == JSON_NULL) return;
    const char *t = type_of(bd, p, "pre_tokenizer");
    if (!strcmp(t, "Sequence")) {
        const json *l = json_get(p, "pretokenizers");
        if (!l || l->type != JSON_ARR) bad(bd, "pre_tokenizer Sequence has no \"pretokenizers\" array");
        for (size_t i = 0; i < l->len; i++) compile_pretokenizer(bd, &l->items[i]);
    } else if (!strcmp(t, "Split")) {
        op *o = op_add(bd, ST_PRE, P_SPLIT);
        get_pattern(bd, p, "pre_tokenizer Split", &o->a_off, &o->a_len);
        if (get_bool(bd, p, "invert", 0)) bad(bd, "unsupported pre_tokenizer Split with invert: true");
        const char *beh = json_get_str(p, "behavior");
        if (!beh) bad(bd, "pre_tokenizer Split has no \"behavior\"");
        static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
        o->x = -1;
        for (int i = 0; i < 5; i++) if (!strcmp(beh, names[i])) o->x = i;
        if (o->x < 0) bad(bd, "pre_tokenizer Split has unknown behavior '%s'", beh);
    } else {
        bad(bd, "unsupported pre_tokenizer type '%s' (entk supports Split with a String pattern, Sequence)", t);
    }
}

static void compile_decoder(builder *bd, const json *d) {
    if (!d || d->type == JSON_NULL) return;
    const char *t = type_of(bd, d, "decoder");
    if (!strcmp(t, "Sequence")) {
        const json *l = json_get(d, "decoders");
        if (!l || l->type != JSON_ARR) bad(bd, "decoder Sequence has no \"decoders\" array");
        for (size_t i = 0; i < l->len; i++) compile_decoder(bd, &l->items[i]);
    } else if (!strcmp(t, "Replace")) {
        op *o = op_add(bd, ST_DEC, D_REPLACE);
        get_pattern(bd, d, "decoder Replace", &o->a_off, &o->a_len);
        get_content(bd, d, "content", "decoder Replace", &o->b_off, &o->b_len);
    } else if (!strcmp(t, "ByteFallback")) {
        op_add(bd, ST_DEC, D_BYTE_FALLBACK);
    } else if (!strcmp(t, "Fuse")) {
        op_add(bd, ST_DEC, D_FUSE);
    } else if (!strcmp(t, "Strip")) {
        op *o = op_add(bd, ST_DEC, D_STRIP);
        get_content(bd, d, "content", "decoder Strip", &o->a_off, &o->a_len);
        int64_t a, b;
        if (!json_get_int(d, "start", &a) || !json_get_int(d, "stop", &b) || a < 0 || b < 0 || a > 1 << 20 || b > 1 << 20)
            bad(bd, "decoder Strip needs non-negative integers start and stop");
        o->x = (int32_t)a;
        o->y = (int32_t)b;
    } else {
        /* encoding does not need the decoder: refuse only when asked to decode */
        op *o = op_add(bd, ST_DEC, D_UNSUPPORTED);
        o->a_off = aux_add(bd, t, strlen(t));
        o->a_len = (uint32_t)strlen(t);
    }
}

static int32_t int_add(builder *bd, int32_t v) {
    if (bd->nints == bd->intcap) {
        bd->intcap = bd->intcap ? 2 * bd->intcap : 16;
        bd->ints = xrealloc(bd->ints, bd->intcap * sizeof *bd->ints);
    }
    bd->ints[bd->nints] = v;
    return (int32_t)bd->nints++;
}

static void compile_post(builder *bd, const json *p, uint32_t *flags, uint32_t ntok) {
    if (!p || p->type == JSON_NULL) return;
    const char *t = type_of(bd, p, "post_processor");
    if (strcmp(t, "TemplateProcessing") != 0)
        bad(bd, "unsupported post_processor type '%s' (entk supports TemplateProcessing)", t);
    const json *single = json_get(p, "single");
    const json *specials = json_get(p, "special_tokens");
    if (!single || single->type != JSON_ARR) bad(bd, "post_processor has no \"single\" template");
    *flags |= F_HAS_POST;
    for (size_t i = 0; i < single->len; i++) {
        const json *it = &single->items[i];
        const json *sp = json_get(it, "SpecialToken"), *sq = json_get(it, "Sequence");
        if (sp) {
            const char *id = json_get_str(sp, "id");
            const json *st = id ? json_get(specials, id) : NULL;
            const json *ids = json_get(st, "ids");
            if (!ids || ids->type != JSON_ARR) bad(bd, "post_processor special token '%s' is not in special_tokens", id ? id : "?");
            op *o = op_add(bd, ST_POST, T_SPECIAL);
            o->x = (int32_t)bd->nints;
            o->y = (int32_t)ids->len;
            for (size_t k = 0; k < ids->len; k++) {
                if (ids->items[k].type != JSON_NUM || !ids->items[k].is_int || ids->items[k].i < 0 || ids->items[k].i >= ntok)
                    bad(bd, "post_processor special token '%s' has a bad id", id);
                int_add(bd, (int32_t)ids->items[k].i);
            }
        } else if (sq) {
            const char *id = json_get_str(sq, "id");
            if (id && !strcmp(id, "A")) op_add(bd, ST_POST, T_SEQ_A);
            else bad(bd, "post_processor single template names sequence '%s'", id ? id : "?");
        } else {
            bad(bd, "post_processor template item is neither SpecialToken nor Sequence");
        }
    }
}

/* A trie of the added tokens' bytes, flattened: node n's edges are te_*[tn_first[n] .. tn_first[n+1]),
 * sorted by byte. */
typedef struct {
    uint32_t *first_child, *next_sib, *child_of;  /* build-time linked lists */
    uint8_t *byte;
    int32_t *added;
    uint32_t n, cap;
} trie_build;

static uint32_t trie_node(trie_build *t) {
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 1024;
        t->first_child = xrealloc(t->first_child, t->cap * sizeof(uint32_t));
        t->next_sib = xrealloc(t->next_sib, t->cap * sizeof(uint32_t));
        t->byte = xrealloc(t->byte, t->cap);
        t->added = xrealloc(t->added, t->cap * sizeof(int32_t));
    }
    uint32_t k = t->n++;
    t->first_child[k] = 0;
    t->next_sib[k] = 0;
    t->byte[k] = 0;
    t->added[k] = -1;
    return k;
}

static void trie_insert(trie_build *t, const unsigned char *s, size_t n, int32_t added) {
    uint32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = t->first_child[node];
        while (c && t->byte[c] != s[i]) c = t->next_sib[c];
        if (!c) {
            c = trie_node(t);
            t->byte[c] = s[i];
            t->next_sib[c] = t->first_child[node];
            t->first_child[node] = c;
        }
        node = c;
    }
    t->added[node] = added;   /* the last added token with this content wins, as in the JS Map */
}

/* ---- blob assembly ---- */

typedef struct { unsigned char *p; size_t n, cap; } blobw;

static uint64_t blob_put(blobw *w, const void *p, size_t n) {
    size_t at = (w->n + 63) & ~(size_t)63;
    if (at + n > w->cap) {
        w->cap = 2 * (at + n) + 4096;
        w->p = xrealloc(w->p, w->cap);
    }
    memset(w->p + w->n, 0, at - w->n);
    if (n) memcpy(w->p + at, p, n);
    w->n = at + n;
    return at;
}

static int cmp_u32pair(const void *a, const void *b) {
    const uint32_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/* What the compiled form is assembled from, besides the builder's symbols and pipeline. */
typedef struct {
    blob_hdr h;
    uint32_t flags;
    added_tok *added;
    size_t nadded;
    int64_t maxid, idcap;              /* the largest id seen; the ids the file's entries can name */
    merge_slot *mt;
    uint32_t mbits;
    size_t msize, nmerges;
    int32_t *tok_sym;
    uint8_t *tok_flags;
    uint32_t ntok;
    trie_build tb;
    uint32_t *tn_first, *te_child, ne;
    uint8_t *te_byte;
} tables;

/* The "model" object: a BPE model entk can run (no dropout, no subword prefix or suffix); its
 * flags into t. */
static const json *read_model(builder *bd, const json *root, tables *t) {
    if (root->type != JSON_OBJ) bad(bd, "not a tokenizer.json (top level is not an object)");
    const json *model = json_get(root, "model");
    if (!model || model->type != JSON_OBJ) bad(bd, "not a tokenizer.json (no \"model\" object)");
    const char *mtype = json_get_str(model, "type");
    const json *vocab = json_get(model, "vocab"), *merges = json_get(model, "merges");
    if (mtype && strcmp(mtype, "BPE") != 0)
        bad(bd, "unsupported tokenizer model type '%s' (entk reads BPE tokenizers)", mtype);
    if (!mtype && !json_get(model, "vocab")) bad(bd, "model has no \"type\" and no vocab");
    if (!vocab || vocab->type != JSON_OBJ) bad(bd, "BPE model has no \"vocab\" object");
    if (!merges || merges->type != JSON_ARR) {
        if (!mtype) bad(bd, "unsupported tokenizer model (no \"type\" and no merges: not BPE)");
        bad(bd, "BPE model has no \"merges\" array");
    }
    const json *dropout = json_get(model, "dropout");
    if (dropout && dropout->type != JSON_NULL && !(dropout->type == JSON_NUM && dropout->num == 0))
        bad(bd, "unsupported BPE dropout (entk encodes deterministically)");
    const char *keys[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const json *v = json_get(model, keys[i]);
        if (v && v->type != JSON_NULL && !(v->type == JSON_STR && v->len == 0)) bad(bd, "unsupported BPE option %s", keys[i]);
    }
    if (get_bool(bd, model, "byte_fallback", 0)) t->flags |= F_BYTE_FALLBACK;
    if (get_bool(bd, model, "fuse_unk", 0)) t->flags |= F_FUSE_UNK;
    if (get_bool(bd, model, "ignore_merges", 0)) t->flags |= F_IGNORE_MERGES;
    return model;
}

/* The vocabulary, the unknown token and the added tokens, as symbols with their token ids. */
static void read_tokens(builder *bd, const json *model, const json *added_j, tables *t) {
    const json *vocab = json_get(model, "vocab");
    /* vocabulary: ids index tables of (largest id + 1) entries, so an id must be below the number
     * of entries that can name one (a 1 KB file claiming id 2^30 - 1 would cost gigabytes) */
    t->maxid = -1;
    t->idcap = (int64_t)vocab->len + (int64_t)t->nadded;
    for (size_t i = 0; i < vocab->len; i++) {
        const json *v = &vocab->items[i];
        if (v->type != JSON_NUM || !v->is_int || v->i < 0)
            bad(bd, "vocab entry \"%.40s\" has no valid id", vocab->keys[i]);
        if (v->i >= t->idcap)
            bad(bd, "vocab entry \"%.40s\" has id %lld, beyond the %lld ids the file's entries can name", vocab->keys[i],
                (long long)v->i, (long long)t->idcap);
        int32_t s = sym_intern(bd, vocab->keys[i], vocab->keylens[i]);
        bd->sym_tok[s] = (int32_t)v->i;
        if (v->i > t->maxid) t->maxid = v->i;
    }
    t->h.unk = -1;
    const char *unk_s = json_get_str(model, "unk_token");
    if (unk_s) {   /* the JS port takes the unk id from the vocab alone, before added tokens */
        int32_t s = sym_intern(bd, unk_s, strlen(unk_s));
        t->h.unk = bd->sym_tok[s];
    }
    added_tok *added = t->added = xcalloc(t->nadded ? t->nadded : 1, sizeof *added);
    for (size_t i = 0; i < t->nadded; i++) {
        const json *a = &added_j->items[i];
        const json *c = json_get(a, "content");
        int64_t id;
        if (!c || c->type != JSON_STR || !json_get_int(a, "id", &id) || id < 0)
            bad(bd, "added_tokens[%zu] needs a string content and an id", i);
        if (id >= t->idcap)
            bad(bd, "added_tokens[%zu] has id %lld, beyond the %lld ids the file's entries can name", i, (long long)id,
                (long long)t->idcap);
        added[i].tok = (int32_t)id;
        added[i].off = bd->sym_off[sym_intern(bd, c->s, c->len)];
        added[i].len = (uint32_t)c->len;
        added[i].special = (uint8_t)get_bool(bd, a, "special", 0);
        added[i].lstrip = (uint8_t)get_bool(bd, a, "lstrip", 0);
        added[i].rstrip = (uint8_t)get_bool(bd, a, "rstrip", 0);
        if (id > t->maxid) t->maxid = id;
    }
    for (size_t i = 0; i < t->nadded; i++) {
        int32_t s = sym_intern(bd, bd->pool.p + added[i].off, added[i].len);
        bd->sym_tok[s] = added[i].tok;
    }
}

/* The merges: pairs of symbols -> (rank, merged symbol), a repeated pair keeping its last rank.
 * Also whether words can be encoded one at a time (F_WORD_SPLIT): no rule joins across a word
 * start but after at most SPLIT_BAD_MAX kinds of character, which bpe_piece then watches for. */
static void read_merges(builder *bd, const json *merges, tables *t) {
    size_t nm = t->nmerges = merges->len;
    t->mbits = 4;
    while (((size_t)1 << t->mbits) < 2 * nm + 16) t->mbits++;
    size_t msize = t->msize = (size_t)1 << t->mbits;
    merge_slot *mt = t->mt = xmalloc(msize * sizeof *mt);
    for (size_t k = 0; k < msize; k++) mt[k] = (merge_slot){UINT64_MAX, 0, 0};
    bytebuf cat = {0};
    int split_ok = 1;
    uint32_t nbad = 0, *split_bad = t->h.split_bad;
    for (size_t i = 0; i < nm; i++) {
        const json *m = &merges->items[i];
        const char *a, *b;
        size_t al, bl;
        if (m->type == JSON_ARR && m->len == 2 && m->items[0].type == JSON_STR && m->items[1].type == JSON_STR) {
            a = m->items[0].s; al = m->items[0].len;
            b = m->items[1].s; bl = m->items[1].len;
        } else if (m->type == JSON_STR) {
            const char *sp = memchr(m->s, ' ', m->len);
            if (!sp || memchr(sp + 1, ' ', m->len - (size_t)(sp + 1 - m->s))) bad(bd, "merges[%zu] \"%.40s\" is not two space-separated strings", i, m->s);
            a = m->s; al = (size_t)(sp - m->s);
            b = sp + 1; bl = m->len - al - 1;
        } else {
            bad(bd, "merges[%zu] is neither a pair of strings nor a string", i);
        }
        int32_t sa = sym_intern(bd, a, al), sb = sym_intern(bd, b, bl);
        if (bl >= 3 && memcmp(b, "\xE2\x96\x81", 3) == 0) {   /* a rule that can join across a word start */
            size_t q = al;
            while (q > 0 && ((unsigned char)a[q - 1] & 0xC0) == 0x80) q--;
            if (q == 0 || al - (q - 1) > 4) split_ok = 0;
            else {
                uint32_t cp = char_cp((const unsigned char *)a + q - 1, al - (q - 1));
                int seen = cp == 0x2581;
                for (uint32_t k = 0; k < nbad && !seen; k++) seen = split_bad[k] == cp;
                if (!seen) {
                    if (nbad == SPLIT_BAD_MAX) split_ok = 0;
                    else split_bad[nbad++] = cp;
                }
            }
        }
        cat.n = 0;
        bytebuf_add(&cat, a, al);
        bytebuf_add(&cat, b, bl);
        int32_t sr = sym_intern(bd, cat.p, cat.n);
        uint64_t key = (uint64_t)(uint32_t)sa << 32 | (uint32_t)sb;
        uint32_t k = pair_slot(key, 64 - t->mbits);
        while (mt[k].key != UINT64_MAX && mt[k].key != key) k = (k + 1) & (uint32_t)(msize - 1);
        mt[k] = (merge_slot){key, (uint32_t)i, sr};
    }
    free(cat.p);
    t->h.nsplit_bad = nbad;
    if (split_ok && !(t->flags & F_IGNORE_MERGES)) t->flags |= F_WORD_SPLIT;
}

/* token -> symbol (the added token's content wins, as in the JS vocab array) and token flags; the
 * byte-fallback tokens and the ASCII characters' symbols into the header. */
static void token_tables(builder *bd, const json *vocab, tables *t) {
    uint32_t ntok = t->ntok = (uint32_t)t->maxid + 1;
    int32_t *tok_sym = t->tok_sym = xmalloc(ntok * sizeof *tok_sym);
    uint8_t *tok_flags = t->tok_flags = xcalloc(ntok, 1);
    for (uint32_t k = 0; k < ntok; k++) tok_sym[k] = -1;
    for (size_t i = 0; i < vocab->len; i++)
        tok_sym[vocab->items[i].i] = sym_intern(bd, vocab->keys[i], vocab->keylens[i]);
    uint8_t *sym_special = xcalloc(bd->nsym + 1, 1);
    for (size_t i = 0; i < t->nadded; i++) {
        int32_t s = sym_intern(bd, bd->pool.p + t->added[i].off, t->added[i].len);
        tok_sym[t->added[i].tok] = s;
        if (t->added[i].special) sym_special[s] = 1;
    }
    /* the JS decoder skips "special" tokens by their string */
    for (uint32_t k = 0; k < ntok; k++)
        if (tok_sym[k] >= 0 && sym_special[tok_sym[k]]) tok_flags[k] |= TOK_SPECIAL;
    free(sym_special);
    for (int c = 0; c < 256; c++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", c);
        int32_t sy = sym_intern(bd, s, 6);
        t->h.byte_tok[c] = bd->sym_tok[sy];
    }
    for (int c = 0; c < 128; c++) {
        char s = (char)c;
        t->h.ascii_sym[c] = sym_intern(bd, &s, 1);
    }
}

/* The added tokens' trie, flattened: node n's edges te_*[tn_first[n] .. tn_first[n+1]), sorted by
 * byte; the root's children also in the header. */
static void added_trie(builder *bd, tables *t) {
    trie_build *tb = &t->tb;
    trie_node(tb);
    for (size_t i = 0; i < t->nadded; i++)
        if (t->added[i].len) trie_insert(tb, (const unsigned char *)bd->pool.p + t->added[i].off, t->added[i].len, (int32_t)i);
    t->tn_first = xcalloc(tb->n + 1, sizeof(uint32_t));
    t->te_byte = xmalloc(tb->n + 1);
    t->te_child = xmalloc((tb->n + 1) * sizeof(uint32_t));
    uint32_t *tmp = xmalloc(2 * 256 * sizeof(uint32_t));
    uint32_t ne = 0;
    for (uint32_t node = 0; node < tb->n; node++) {
        t->tn_first[node] = ne;
        uint32_t k = 0;
        for (uint32_t c = tb->first_child[node]; c; c = tb->next_sib[c]) { tmp[2 * k] = tb->byte[c]; tmp[2 * k + 1] = c; k++; }
        qsort(tmp, k, 2 * sizeof(uint32_t), cmp_u32pair);
        for (uint32_t i = 0; i < k; i++) { t->te_byte[ne] = (uint8_t)tmp[2 * i]; t->te_child[ne] = tmp[2 * i + 1]; ne++; }
        if (node == 0)
            for (uint32_t i = 0; i < k; i++) t->h.root_child[tmp[2 * i]] = tmp[2 * i + 1];
    }
    t->tn_first[tb->n] = ne;
    t->ne = ne;
    free(tmp);
}

/* The blob: the header, then each section 64-byte aligned, where the header says. */
static void *assemble(builder *bd, tables *t, size_t *blob_n) {
    /* the pipeline's strings go after the symbols' */
    uint32_t base = (uint32_t)bd->pool.n;
    bytebuf_add(&bd->pool, bd->aux.p, bd->aux.n);
    for (uint32_t k = 0; k < bd->nops; k++) {
        bd->ops[k].a_off += base;
        bd->ops[k].b_off += base;
    }
    /* final string table, sized for the final symbol count */
    uint32_t sbits = 4;
    while (((uint64_t)1 << sbits) < 2ull * bd->nsym) sbits++;
    ht_rebuild(bd, sbits);

    blob_hdr *h = &t->h;
    memcpy(h->magic, BLOB_MAGIC, 8);
    h->version = BPE_FORMAT_VERSION;
    h->nsym = bd->nsym;
    h->ntok = t->ntok;
    h->str_bits = sbits;
    h->merge_bits = t->mbits;
    h->nnodes = t->tb.n;
    h->nedges = t->ne;
    h->nadded = (uint32_t)t->nadded;
    h->nops = bd->nops;
    h->nints = bd->nints;
    h->nmerges = (uint32_t)t->nmerges;
    h->flags = t->flags;

    blobw w = {0};
    blob_put(&w, h, sizeof *h);
    struct { const void *p; size_t n; } sect[NSECT] = {
        [S_POOL] = {bd->pool.p, bd->pool.n},
        [S_SYM_OFF] = {bd->sym_off, (size_t)(bd->nsym + 1) * 4},
        [S_SYM_TOK] = {bd->sym_tok, (size_t)bd->nsym * 4},
        [S_TOK_SYM] = {t->tok_sym, (size_t)t->ntok * 4},
        [S_TOK_FLAGS] = {t->tok_flags, t->ntok},
        [S_STR_HT] = {bd->ht, ((size_t)1 << sbits) * 4},
        [S_MERGE] = {t->mt, t->msize * sizeof *t->mt},
        [S_TN_FIRST] = {t->tn_first, (size_t)(t->tb.n + 1) * 4},
        [S_TE_BYTE] = {t->te_byte, t->ne},
        [S_TE_CHILD] = {t->te_child, (size_t)t->ne * 4},
        [S_TN_ADDED] = {t->tb.added, (size_t)t->tb.n * 4},
        [S_ADDED] = {t->added, t->nadded * sizeof *t->added},
        [S_OPS] = {bd->ops, (size_t)bd->nops * sizeof(op)},
        [S_INTS] = {bd->ints, (size_t)bd->nints * 4},
    };
    for (int s = 0; s < NSECT; s++) {
        uint64_t at = blob_put(&w, sect[s].p, sect[s].n);
        blob_hdr *hp = (blob_hdr *)w.p;
        hp->sect_off[s] = at;
        hp->sect_len[s] = sect[s].n;
    }
    *blob_n = w.n;
    return w.p;
}

void *bpe_compile(const char *path, size_t *blob_n) {
    size_t n;
    char *text = read_file(path, &n);
    char err[256];
    builder bdv = {.path = path}, *bd = &bdv;
    json *root = json_parse(text, n, err, sizeof err);
    if (!root) bad(bd, "not valid JSON: %s", err);
    tables t;
    memset(&t, 0, sizeof t);
    const json *model = read_model(bd, root, &t);
    const json *added_j = json_get(root, "added_tokens");
    if (added_j && added_j->type != JSON_ARR && added_j->type != JSON_NULL) bad(bd, "\"added_tokens\" is not an array");
    t.nadded = added_j && added_j->type == JSON_ARR ? added_j->len : 0;
    ht_rebuild(bd, 20);
    read_tokens(bd, model, added_j, &t);
    read_merges(bd, json_get(model, "merges"), &t);
    if (t.maxid < 0) bad(bd, "empty vocabulary");
    token_tables(bd, json_get(model, "vocab"), &t);
    /* pipeline */
    compile_normalizer(bd, json_get(root, "normalizer"));
    compile_pretokenizer(bd, json_get(root, "pre_tokenizer"));
    compile_post(bd, json_get(root, "post_processor"), &t.flags, t.ntok);
    const json *dec = json_get(root, "decoder");
    if (dec && dec->type != JSON_NULL) t.flags |= F_HAS_DECODER;
    compile_decoder(bd, dec);
    added_trie(bd, &t);
    void *blob = assemble(bd, &t, blob_n);

    free(bd->pool.p); free(bd->aux.p); free(bd->sym_off); free(bd->sym_tok); free(bd->ht); free(bd->ops); free(bd->ints);
    free(t.tok_sym); free(t.tok_flags); free(t.mt); free(t.added);
    free(t.tn_first); free(t.te_byte); free(t.te_child);
    free(t.tb.first_child); free(t.tb.next_sib); free(t.tb.byte); free(t.tb.added);
    json_free(root);
    free(text);
    return blob;
}
