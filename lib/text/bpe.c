#include "text/bpe.h"
#include "core/cache.h"
#include "core/codeid.h"
#include "core/err.h"
#include "core/heap.h"
#include "core/fileio.h"
#include "core/json.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ------------------------------------------------------------------ small buffers */

void tok_seq_push(tok_seq *s, int32_t id, int64_t start, int64_t end) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->ids = xrealloc(s->ids, s->cap * sizeof *s->ids);
        s->offs = xrealloc(s->offs, 2 * s->cap * sizeof *s->offs);
    }
    s->ids[s->n] = id;
    s->offs[2 * s->n] = start;
    s->offs[2 * s->n + 1] = end;
    s->n++;
}

void tok_seq_free(tok_seq *s) {
    free(s->ids);
    free(s->offs);
    memset(s, 0, sizeof *s);
}

void bytebuf_add(bytebuf *b, const void *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = 2 * (b->n + n + 1) + 64;
        b->p = xrealloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* ------------------------------------------------------------------ UTF-8 */

/* Length of the well-formed sequence at s[0..n), or 0 if s[0] starts an ill-formed one; *bad gets
 * the length of the maximal ill-formed subsequence then (WHATWG: the bytes up to the first one
 * that cannot continue the sequence). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad) {
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else { *bad = 1; return 0; }
    size_t i = 1;
    for (; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) { *bad = i; return 0; }
        lo = 0x80; hi = 0xBF;
    }
    return need + 1;
}

size_t utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0, bad;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        size_t k = utf8_seq(s + i, n - i, &bad);
        if (!k) return i;
        i += k;
    }
    return n;
}

size_t utf8_replace(const unsigned char *s, size_t n, unsigned char *out, uint32_t *ostart, uint32_t *oend) {
    size_t i = 0, o = 0, bad;
    while (i < n) {
        size_t k = utf8_seq(s + i, n - i, &bad);
        if (k) {
            for (size_t j = 0; j < k; j++) {
                out[o] = s[i + j];
                if (ostart) { ostart[o] = (uint32_t)(i + j); oend[o] = (uint32_t)(i + j + 1); }
                o++;
            }
            i += k;
        } else {
            static const unsigned char fffd[3] = {0xEF, 0xBF, 0xBD};
            for (int j = 0; j < 3; j++) {
                out[o] = fffd[j];
                if (ostart) { ostart[o] = (uint32_t)i; oend[o] = (uint32_t)(i + bad); }
                o++;
            }
            i += bad;
        }
    }
    return o;
}

/* Byte length of the character starting with lead byte c (1 for a stray byte). */
static inline size_t char_len(unsigned char c) {
    if (c < 0xC0) return 1;
    if (c < 0xE0) return 2;
    if (c < 0xF0) return 3;
    return 4;
}

/* Code point of a well-formed character of length k. */
static inline uint32_t char_cp(const unsigned char *s, size_t k) {
    switch (k) {
    case 1: return s[0];
    case 2: return ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu);
    case 3: return ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    default: return ((s[0] & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
    }
}

/* JS String.prototype.trim's whitespace: WhiteSpace and LineTerminator code points. */
static int js_space(uint32_t cp) {
    switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: case 0xFEFF:
        return 1;
    }
    return cp >= 0x2000 && cp <= 0x200A;
}

/* ------------------------------------------------------------------ the compiled form
 *
 * One blob, so the cache holds it as is and a load is a read plus pointer set-up. Symbols are the
 * distinct strings of the vocabulary, the added tokens and the merges (a merge may name strings
 * that are not tokens: the JS port merges strings, so they take part and fall back to bytes). */

enum { S_POOL, S_SYM_OFF, S_SYM_TOK, S_TOK_SYM, S_TOK_FLAGS, S_STR_HT, S_MERGE,
       S_TN_FIRST, S_TE_BYTE, S_TE_CHILD, S_TN_ADDED, S_ADDED, S_OPS, S_INTS, NSECT };

enum { F_BYTE_FALLBACK = 1, F_FUSE_UNK = 2, F_IGNORE_MERGES = 4, F_HAS_POST = 8, F_HAS_DECODER = 16, F_WORD_SPLIT = 32 };
#define SPLIT_BAD_MAX 16
enum { TOK_SPECIAL = 1 };

/* pipeline steps, in file order */
enum { ST_NORM = 1, ST_PRE, ST_POST, ST_DEC };
enum { N_REPLACE = 1, N_PREPEND,
       P_SPLIT = 10,
       T_SPECIAL = 20, T_SEQ_A,
       D_REPLACE = 30, D_BYTE_FALLBACK, D_FUSE, D_STRIP, D_UNSUPPORTED };
enum { B_REMOVED, B_ISOLATED, B_MERGED_PREV, B_MERGED_NEXT, B_CONTIGUOUS };

typedef struct {
    uint32_t stage, kind;
    uint32_t a_off, a_len, b_off, b_len;   /* strings in the pool */
    int32_t x, y;                          /* split behaviour; special ids (ints[x..x+y)); strip counts */
} op;

typedef struct {
    int32_t tok;
    uint32_t off, len;                     /* content in the pool */
    uint8_t special, lstrip, rstrip, pad;
} added_tok;

typedef struct {
    char magic[8];
    uint32_t version, nsym, ntok, str_bits, merge_bits, nnodes, nedges, nadded, nops, nints, nmerges;
    int32_t unk;
    uint32_t flags;
    int32_t byte_tok[256];
    int32_t ascii_sym[128];
    uint32_t root_child[256];
    uint32_t nsplit_bad, split_bad[SPLIT_BAD_MAX];   /* see bpe_piece */
    uint64_t sect_off[NSECT], sect_len[NSECT];
} blob_hdr;

#define BLOB_MAGIC "ENTKBPE1"

/* a queued merge: key = rank << 32 | position of the pair's first symbol (the leftmost of equal
 * ranks first); a, b the pair's symbols when it was queued */
typedef struct { uint64_t key; int32_t a, b; } heap_ent;
#define MERGE_FIRST(x, y) ((x).key < (y).key)
HEAP_DEFINE(merge_heap, heap_ent, MERGE_FIRST)
/* merge table slot: pair (a << 32 | b) -> rank and result; key UINT64_MAX = empty. One slot per
 * cache line fetch: the table is 16 MB for Gemma 3 and its misses dominate encoding. */
typedef struct { uint64_t key; uint32_t rank; int32_t res; } merge_slot;
#define PAIR_CACHE 16384   /* recently used pairs, small enough to stay in L2 */
typedef struct { int32_t sym; uint32_t start, end; int32_t prev, next; } bsym;
typedef struct { int32_t sym; uint32_t len; } wpart;                    /* a token of a word */
typedef struct { uint64_t h; uint32_t woff, wlen, roff, rn; } wc_ent;   /* a cached word */
#define WC_SIZE (1 << 17)
#define WC_BYTES (1 << 22)

struct bpe {
    void *blob;
    size_t blob_n;
    entk_key file_key;
    const blob_hdr *h;
    const char *pool;
    const uint32_t *sym_off, *str_ht, *tn_first, *te_child, *root_child;
    const int32_t *sym_tok, *tok_sym, *tn_added, *ints;
    const uint8_t *tok_flags, *te_byte;
    const merge_slot *merge;
    const added_tok *added;
    const op *ops;
    uint32_t str_mask, merge_mask, merge_shift;
    /* encode scratch */
    struct { uint32_t cp; int32_t sym; } cpcache[4096];
    merge_slot pair_cache[PAIR_CACHE];   /* rank UINT32_MAX: the pair does not merge */
    unsigned char *nb[2];
    uint32_t *ns[2], *ne[2];
    size_t ncap;
    bsym *syms;
    wpart *parts;
    size_t symcap;
    wc_ent *wc;
    unsigned char *wc_bytes;
    wpart *wc_parts;
    size_t wc_bused, wc_pused, wc_count;
    merge_heap heap;
    uint32_t *pieces;
    size_t piececap;
    uint32_t *sect;
    size_t sectcap;
};

static inline uint32_t str_hash(const void *s, size_t n) { return (uint32_t)XXH3_64bits(s, n); }
static inline uint32_t pair_slot(uint64_t key, uint32_t shift) { return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> shift); }

static int32_t sym_lookup(const bpe *b, const void *s, size_t n) {
    uint32_t i = str_hash(s, n) & b->str_mask;
    for (;;) {
        uint32_t v = b->str_ht[i];
        if (!v) return -1;
        uint32_t sy = v - 1, o = b->sym_off[sy], l = b->sym_off[sy + 1] - o;
        if (l == n && memcmp(b->pool + o, s, n) == 0) return (int32_t)sy;
        i = (i + 1) & b->str_mask;
    }
}

/* rank and result symbol of merging symbols a and b; 0 if they do not merge */
static inline int merge_lookup(bpe *b, int32_t a, int32_t c, uint32_t *rank, int32_t *res) {
    if (a < 0 || c < 0) return 0;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)c;
    uint32_t h = pair_slot(key, b->merge_shift);
    merge_slot *pc = &b->pair_cache[h & (PAIR_CACHE - 1)];
    if (pc->key != key) {
        uint32_t i = h;
        for (;;) {
            const merge_slot *m = &b->merge[i];
            if (m->key == key) { *pc = *m; break; }
            if (m->key == UINT64_MAX) { pc->key = key; pc->rank = UINT32_MAX; break; }
            i = (i + 1) & b->merge_mask;
        }
    }
    if (pc->rank == UINT32_MAX) return 0;
    *rank = pc->rank;
    *res = pc->res;
    return 1;
}

/* ------------------------------------------------------------------ compiling tokenizer.json */

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

static void *compile(const char *path, size_t *blob_n) {
    size_t n;
    char *text = read_file(path, &n);
    char err[256];
    builder bdv = {.path = path}, *bd = &bdv;
    json *root = json_parse(text, n, err, sizeof err);
    if (!root) bad(bd, "not valid JSON: %s", err);
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
    uint32_t flags = 0;
    if (get_bool(bd, model, "byte_fallback", 0)) flags |= F_BYTE_FALLBACK;
    if (get_bool(bd, model, "fuse_unk", 0)) flags |= F_FUSE_UNK;
    if (get_bool(bd, model, "ignore_merges", 0)) flags |= F_IGNORE_MERGES;
    const json *added_j = json_get(root, "added_tokens");
    if (added_j && added_j->type != JSON_ARR && added_j->type != JSON_NULL) bad(bd, "\"added_tokens\" is not an array");
    size_t nadded = added_j && added_j->type == JSON_ARR ? added_j->len : 0;

    ht_rebuild(bd, 20);
    /* vocabulary: ids index tables of (largest id + 1) entries, so an id must be below the number
     * of entries that can name one (a 1 KB file claiming id 2^30 - 1 would cost gigabytes) */
    int64_t maxid = -1, idcap = (int64_t)vocab->len + (int64_t)nadded;
    for (size_t i = 0; i < vocab->len; i++) {
        const json *v = &vocab->items[i];
        if (v->type != JSON_NUM || !v->is_int || v->i < 0)
            bad(bd, "vocab entry \"%.40s\" has no valid id", vocab->keys[i]);
        if (v->i >= idcap)
            bad(bd, "vocab entry \"%.40s\" has id %lld, beyond the %lld ids the file's entries can name", vocab->keys[i],
                (long long)v->i, (long long)idcap);
        int32_t s = sym_intern(bd, vocab->keys[i], vocab->keylens[i]);
        bd->sym_tok[s] = (int32_t)v->i;
        if (v->i > maxid) maxid = v->i;
    }
    int32_t unk = -1;
    const char *unk_s = json_get_str(model, "unk_token");
    if (unk_s) {   /* the JS port takes the unk id from the vocab alone, before added tokens */
        int32_t s = sym_intern(bd, unk_s, strlen(unk_s));
        unk = bd->sym_tok[s];
    }
    /* added tokens */
    added_tok *added = xcalloc(nadded ? nadded : 1, sizeof *added);
    for (size_t i = 0; i < nadded; i++) {
        const json *a = &added_j->items[i];
        const json *c = json_get(a, "content");
        int64_t id;
        if (!c || c->type != JSON_STR || !json_get_int(a, "id", &id) || id < 0)
            bad(bd, "added_tokens[%zu] needs a string content and an id", i);
        if (id >= idcap)
            bad(bd, "added_tokens[%zu] has id %lld, beyond the %lld ids the file's entries can name", i, (long long)id, (long long)idcap);
        added[i].tok = (int32_t)id;
        added[i].off = bd->sym_off[sym_intern(bd, c->s, c->len)];
        added[i].len = (uint32_t)c->len;
        added[i].special = (uint8_t)get_bool(bd, a, "special", 0);
        added[i].lstrip = (uint8_t)get_bool(bd, a, "lstrip", 0);
        added[i].rstrip = (uint8_t)get_bool(bd, a, "rstrip", 0);
        if (id > maxid) maxid = id;
    }
    for (size_t i = 0; i < nadded; i++) {
        int32_t s = sym_intern(bd, bd->pool.p + added[i].off, added[i].len);
        bd->sym_tok[s] = added[i].tok;
    }
    /* merges: pairs of symbols -> (rank, merged symbol); a repeated pair keeps its last rank */
    size_t nm = merges->len;
    uint32_t mbits = 4;
    while (((size_t)1 << mbits) < 2 * nm + 16) mbits++;
    size_t msize = (size_t)1 << mbits;
    merge_slot *mt = xmalloc(msize * sizeof *mt);
    for (size_t k = 0; k < msize; k++) mt[k] = (merge_slot){UINT64_MAX, 0, 0};
    bytebuf cat = {0};
    int split_ok = 1;
    uint32_t nbad = 0, split_bad[SPLIT_BAD_MAX];
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
        uint32_t k = pair_slot(key, 64 - mbits);
        while (mt[k].key != UINT64_MAX && mt[k].key != key) k = (k + 1) & (uint32_t)(msize - 1);
        mt[k] = (merge_slot){key, (uint32_t)i, sr};
    }
    free(cat.p);
    if (split_ok && !(flags & F_IGNORE_MERGES)) flags |= F_WORD_SPLIT;
    if (maxid < 0) bad(bd, "empty vocabulary");
    uint32_t ntok = (uint32_t)maxid + 1;

    /* token -> symbol (the added token's content wins, as in the JS vocab array) */
    int32_t *tok_sym = xmalloc(ntok * sizeof *tok_sym);
    uint8_t *tok_flags = xcalloc(ntok, 1);
    for (uint32_t t = 0; t < ntok; t++) tok_sym[t] = -1;
    for (size_t i = 0; i < vocab->len; i++)
        tok_sym[vocab->items[i].i] = sym_intern(bd, vocab->keys[i], vocab->keylens[i]);
    uint8_t *sym_special = xcalloc(bd->nsym + 1, 1);
    for (size_t i = 0; i < nadded; i++) {
        int32_t s = sym_intern(bd, bd->pool.p + added[i].off, added[i].len);
        tok_sym[added[i].tok] = s;
        if (added[i].special) sym_special[s] = 1;
    }
    /* the JS decoder skips "special" tokens by their string */
    for (uint32_t t = 0; t < ntok; t++)
        if (tok_sym[t] >= 0 && sym_special[tok_sym[t]]) tok_flags[t] |= TOK_SPECIAL;
    free(sym_special);

    blob_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, BLOB_MAGIC, 8);
    h.version = BPE_FORMAT_VERSION;
    h.unk = unk;
    h.nsplit_bad = nbad;
    memcpy(h.split_bad, split_bad, nbad * sizeof *split_bad);
    for (int c = 0; c < 256; c++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", c);
        int32_t sy = sym_intern(bd, s, 6);
        h.byte_tok[c] = bd->sym_tok[sy];
    }
    for (int c = 0; c < 128; c++) {
        char s = (char)c;
        h.ascii_sym[c] = sym_intern(bd, &s, 1);
    }

    /* pipeline */
    compile_normalizer(bd, json_get(root, "normalizer"));
    compile_pretokenizer(bd, json_get(root, "pre_tokenizer"));
    compile_post(bd, json_get(root, "post_processor"), &flags, ntok);
    const json *dec = json_get(root, "decoder");
    if (dec && dec->type != JSON_NULL) flags |= F_HAS_DECODER;
    compile_decoder(bd, dec);

    /* added-token trie */
    trie_build tb = {0};
    trie_node(&tb);
    for (size_t i = 0; i < nadded; i++)
        if (added[i].len) trie_insert(&tb, (const unsigned char *)bd->pool.p + added[i].off, added[i].len, (int32_t)i);
    uint32_t *tn_first = xcalloc(tb.n + 1, sizeof(uint32_t));
    uint8_t *te_byte = xmalloc(tb.n + 1);
    uint32_t *te_child = xmalloc((tb.n + 1) * sizeof(uint32_t));
    uint32_t *tmp = xmalloc(2 * 256 * sizeof(uint32_t));
    uint32_t ne = 0;
    for (uint32_t node = 0; node < tb.n; node++) {
        tn_first[node] = ne;
        uint32_t k = 0;
        for (uint32_t c = tb.first_child[node]; c; c = tb.next_sib[c]) { tmp[2 * k] = tb.byte[c]; tmp[2 * k + 1] = c; k++; }
        qsort(tmp, k, 2 * sizeof(uint32_t), cmp_u32pair);
        for (uint32_t i = 0; i < k; i++) { te_byte[ne] = (uint8_t)tmp[2 * i]; te_child[ne] = tmp[2 * i + 1]; ne++; }
        if (node == 0)
            for (uint32_t i = 0; i < k; i++) h.root_child[tmp[2 * i]] = tmp[2 * i + 1];
    }
    tn_first[tb.n] = ne;
    free(tmp);

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

    h.nsym = bd->nsym;
    h.ntok = ntok;
    h.str_bits = sbits;
    h.merge_bits = mbits;
    h.nnodes = tb.n;
    h.nedges = ne;
    h.nadded = (uint32_t)nadded;
    h.nops = bd->nops;
    h.nints = bd->nints;
    h.nmerges = (uint32_t)nm;
    h.flags = flags;

    blobw w = {0};
    blob_put(&w, &h, sizeof h);
    struct { const void *p; size_t n; } sect[NSECT] = {
        [S_POOL] = {bd->pool.p, bd->pool.n},
        [S_SYM_OFF] = {bd->sym_off, (size_t)(bd->nsym + 1) * 4},
        [S_SYM_TOK] = {bd->sym_tok, (size_t)bd->nsym * 4},
        [S_TOK_SYM] = {tok_sym, (size_t)ntok * 4},
        [S_TOK_FLAGS] = {tok_flags, ntok},
        [S_STR_HT] = {bd->ht, ((size_t)1 << sbits) * 4},
        [S_MERGE] = {mt, msize * sizeof *mt},
        [S_TN_FIRST] = {tn_first, (size_t)(tb.n + 1) * 4},
        [S_TE_BYTE] = {te_byte, ne},
        [S_TE_CHILD] = {te_child, (size_t)ne * 4},
        [S_TN_ADDED] = {tb.added, (size_t)tb.n * 4},
        [S_ADDED] = {added, nadded * sizeof *added},
        [S_OPS] = {bd->ops, (size_t)bd->nops * sizeof(op)},
        [S_INTS] = {bd->ints, (size_t)bd->nints * 4},
    };
    for (int s = 0; s < NSECT; s++) {
        uint64_t at = blob_put(&w, sect[s].p, sect[s].n);
        blob_hdr *hp = (blob_hdr *)w.p;
        hp->sect_off[s] = at;
        hp->sect_len[s] = sect[s].n;
    }

    free(bd->pool.p); free(bd->aux.p); free(bd->sym_off); free(bd->sym_tok); free(bd->ht); free(bd->ops); free(bd->ints);
    free(tok_sym); free(tok_flags); free(mt); free(added);
    free(tn_first); free(te_byte); free(te_child);
    free(tb.first_child); free(tb.next_sib); free(tb.byte); free(tb.added);
    json_free(root);
    free(text);
    *blob_n = w.n;
    return w.p;
}

/* Points b's tables into its blob; 0 if the blob is not a well-formed compiled tokenizer. */
static int attach(bpe *b) {
    const unsigned char *p = b->blob;
    if (b->blob_n < sizeof(blob_hdr)) return 0;
    const blob_hdr *h = (const blob_hdr *)p;
    if (memcmp(h->magic, BLOB_MAGIC, 8) != 0 || h->version != BPE_FORMAT_VERSION) return 0;
    if (h->str_bits > 31 || h->merge_bits > 31 || h->str_bits < 1 || h->merge_bits < 1) return 0;
    size_t want[NSECT] = {
        [S_POOL] = (size_t)-1,
        [S_SYM_OFF] = ((size_t)h->nsym + 1) * 4,
        [S_SYM_TOK] = (size_t)h->nsym * 4,
        [S_TOK_SYM] = (size_t)h->ntok * 4,
        [S_TOK_FLAGS] = h->ntok,
        [S_STR_HT] = ((size_t)1 << h->str_bits) * 4,
        [S_MERGE] = ((size_t)1 << h->merge_bits) * sizeof(merge_slot),
        [S_TN_FIRST] = ((size_t)h->nnodes + 1) * 4,
        [S_TE_BYTE] = h->nedges,
        [S_TE_CHILD] = (size_t)h->nedges * 4,
        [S_TN_ADDED] = (size_t)h->nnodes * 4,
        [S_ADDED] = (size_t)h->nadded * sizeof(added_tok),
        [S_OPS] = (size_t)h->nops * sizeof(op),
        [S_INTS] = (size_t)h->nints * 4,
    };
    const void *sp[NSECT];
    for (int s = 0; s < NSECT; s++) {
        if (h->sect_off[s] > b->blob_n || h->sect_len[s] > b->blob_n - h->sect_off[s] || h->sect_off[s] % 64) return 0;
        if (want[s] != (size_t)-1 && want[s] != h->sect_len[s]) return 0;
        sp[s] = p + h->sect_off[s];
    }
    b->h = h;
    b->pool = sp[S_POOL];
    b->sym_off = sp[S_SYM_OFF];
    b->sym_tok = sp[S_SYM_TOK];
    b->tok_sym = sp[S_TOK_SYM];
    b->tok_flags = sp[S_TOK_FLAGS];
    b->str_ht = sp[S_STR_HT];
    b->merge = sp[S_MERGE];
    b->tn_first = sp[S_TN_FIRST];
    b->te_byte = sp[S_TE_BYTE];
    b->te_child = sp[S_TE_CHILD];
    b->tn_added = sp[S_TN_ADDED];
    b->added = sp[S_ADDED];
    b->ops = sp[S_OPS];
    b->ints = sp[S_INTS];
    b->root_child = h->root_child;
    b->str_mask = (1u << h->str_bits) - 1;
    b->merge_mask = (1u << h->merge_bits) - 1;
    b->merge_shift = 64 - h->merge_bits;
    if (b->sym_off[h->nsym] > h->sect_len[S_POOL]) return 0;
    for (uint32_t i = 0; i < h->nops; i++) {
        const op *o = &b->ops[i];
        if ((uint64_t)o->a_off + o->a_len > h->sect_len[S_POOL] || (uint64_t)o->b_off + o->b_len > h->sect_len[S_POOL]) return 0;
        if (o->kind == T_SPECIAL && (o->x < 0 || o->y < 0 || (uint64_t)o->x + (uint64_t)o->y > h->nints)) return 0;
    }
    for (int i = 0; i < 4096; i++) b->cpcache[i].cp = UINT32_MAX;
    for (int i = 0; i < PAIR_CACHE; i++) b->pair_cache[i].key = UINT64_MAX;   /* no real pair: symbols < 2^31 */
    return 1;
}

bpe *bpe_load(const char *path, bpe_load_info *info) {
    double t0 = entk_now();
    bpe *b = xcalloc(1, sizeof *b);
    b->file_key = hash_file(path);
    keybuilder kb;
    keybuilder_init(&kb, "bpe-compiled");
    keybuilder_code(&kb, 0); /* compiled by lib/ alone, the same whichever program asks */
    keybuilder_str(&kb, b->file_key.hex);
    keybuilder_i64(&kb, BPE_FORMAT_VERSION);
    keybuilder_i64(&kb, (int64_t)sizeof(blob_hdr));
    entk_key key = keybuilder_final(&kb);
    int hit = cache_get(&key, NULL, NULL, &b->blob, &b->blob_n);
    if (hit && !attach(b)) { /* authentic but not what this code reads: a repair is never silent */
        entk_warn("cache: compiled tokenizer for %s is malformed: recompiling", path);
        free(b->blob);
        hit = 0;
    }
    if (!hit) {
        b->blob = compile(path, &b->blob_n);
        if (!attach(b)) entk_die(ENTK_EXIT_FAIL, "internal error: compiled tokenizer for %s does not verify", path);
        char what[4200], from[128];
        snprintf(what, sizeof what, "compiled tokenizer %s", path);
        snprintf(from, sizeof from, "file (content) %s, code %.8s", b->file_key.hex, codeid_lib());
        cache_put(&key, &(cache_desc){what, from}, b->blob, b->blob_n);
    }
    if (info) {
        info->seconds = entk_now() - t0;
        info->from_cache = hit;
        info->bytes = b->blob_n;
    }
    return b;
}

void bpe_free(bpe *b) {
    if (!b) return;
    free(b->blob);
    for (int i = 0; i < 2; i++) { free(b->nb[i]); free(b->ns[i]); free(b->ne[i]); }
    free(b->syms);
    free(b->parts);
    free(b->wc);
    free(b->wc_bytes);
    free(b->wc_parts);
    merge_heap_free(&b->heap);
    free(b->pieces);
    free(b->sect);
    free(b);
}

int32_t bpe_ntokens(const bpe *b) { return (int32_t)b->h->ntok; }
entk_key bpe_file_key(const bpe *b) { return b->file_key; }

/* ------------------------------------------------------------------ encoding */

static void scratch_reserve(bpe *b, size_t n) {
    if (n <= b->ncap) return;
    b->ncap = 2 * n + 1024;
    for (int i = 0; i < 2; i++) {
        b->nb[i] = xrealloc(b->nb[i], b->ncap);
        b->ns[i] = xrealloc(b->ns[i], b->ncap * sizeof(uint32_t));
        b->ne[i] = xrealloc(b->ne[i], b->ncap * sizeof(uint32_t));
    }
}

/* Queue the merge of symbol i with its right neighbour, if there is one. Ties between equal ranks
 * go to the leftmost pair: the key is (rank, index of the pair's first character). */
static inline void queue_pair(bpe *b, int32_t i) {
    bsym *s = b->syms;
    int32_t j = s[i].next;
    uint32_t rank;
    int32_t res;
    if (j < 0 || !merge_lookup(b, s[i].sym, s[j].sym, &rank, &res)) return;
    merge_heap_push(&b->heap, (heap_ent){(uint64_t)rank << 32 | (uint32_t)i, s[i].sym, s[j].sym});
}

static int32_t char_sym(bpe *b, const unsigned char *s, size_t k) {
    if (k == 1 && s[0] < 128) return b->h->ascii_sym[s[0]];
    uint32_t cp = char_cp(s, k) | (uint32_t)k << 24;   /* k too: a cut-off character is another string */
    uint32_t slot = (cp * 2654435761u) >> 20;
    if (b->cpcache[slot].cp == cp) return b->cpcache[slot].sym;
    int32_t sy = sym_lookup(b, s, k);
    b->cpcache[slot].cp = cp;
    b->cpcache[slot].sym = sy;
    return sy;
}

typedef struct {
    const unsigned char *buf;     /* normalized section text */
    const uint32_t *os, *oe;      /* input range of each of its bytes */
    size_t first;                 /* index in out of this section's first token (fuse_unk stays inside it) */
} section_ctx;

static void emit_unk(bpe *b, tok_seq *out, const section_ctx *c, int64_t start, int64_t end) {
    if (b->h->unk < 0) entk_die(ENTK_EXIT_INPUT, "text has a character the tokenizer cannot encode (no byte fallback and no unk token)");
    if ((b->h->flags & F_FUSE_UNK) && out->n > c->first && out->ids[out->n - 1] == b->h->unk) {
        out->offs[2 * out->n - 1] = end;
        return;
    }
    tok_seq_push(out, b->h->unk, start, end);
}

static void emit_sym(bpe *b, tok_seq *out, const section_ctx *c, int32_t sym, uint32_t s, uint32_t e) {
    int32_t t = sym >= 0 ? b->sym_tok[sym] : -1;
    if (t >= 0) {
        if (t == b->h->unk) emit_unk(b, out, c, c->os[s], c->oe[e - 1]);
        else tok_seq_push(out, t, c->os[s], c->oe[e - 1]);
        return;
    }
    if (b->h->flags & F_BYTE_FALLBACK) {
        int all = 1;
        for (uint32_t k = s; k < e; k++) all &= b->h->byte_tok[c->buf[k]] >= 0;
        if (all) {
            for (uint32_t k = s; k < e; k++) tok_seq_push(out, b->h->byte_tok[c->buf[k]], c->os[k], c->oe[k]);
            return;
        }
    }
    emit_unk(b, out, c, c->os[s], c->oe[e - 1]);
}

/* BPE merges of buf[ps, pe): the final symbols and their byte lengths go to b->parts; returns
 * their count. */
static size_t bpe_merge(bpe *b, const unsigned char *buf, uint32_t ps, uint32_t pe) {
    size_t need = pe - ps;
    if (need > b->symcap) {
        b->symcap = 2 * need;
        b->syms = xrealloc(b->syms, b->symcap * sizeof *b->syms);
        b->parts = xrealloc(b->parts, b->symcap * sizeof *b->parts);
    }
    bsym *s = b->syms;
    int32_t ns = 0;
    for (uint32_t i = ps; i < pe;) {
        size_t k = char_len(buf[i]);
        if (k > pe - i) k = pe - i;
        s[ns] = (bsym){char_sym(b, buf + i, k), i, (uint32_t)(i + k), ns - 1, ns + 1};
        ns++;
        i += (uint32_t)k;
    }
    s[ns - 1].next = -1;
    if (ns > 1) {
        merge_heap *h = &b->heap;
        h->n = 0;
        for (int32_t i = 0; i + 1 < ns; i++) {
            uint32_t rank;
            int32_t res;
            if (!merge_lookup(b, s[i].sym, s[i + 1].sym, &rank, &res)) continue;
            merge_heap_append(h, (heap_ent){(uint64_t)rank << 32 | (uint32_t)i, s[i].sym, s[i + 1].sym});
        }
        merge_heap_heapify(h);
        while (h->n > 0) {
            heap_ent e = merge_heap_pop(h);
            int32_t i = (int32_t)(uint32_t)e.key;
            /* stale if either side has changed since the pair was queued */
            if (s[i].sym != e.a || s[i].start == UINT32_MAX) continue;
            int32_t j = s[i].next;
            if (j < 0 || s[j].sym != e.b) continue;
            uint32_t rank;
            int32_t res = -1;
            merge_lookup(b, e.a, e.b, &rank, &res);
            s[i].sym = res;
            s[i].end = s[j].end;
            s[i].next = s[j].next;
            if (s[j].next >= 0) s[s[j].next].prev = i;
            s[j].start = UINT32_MAX;
            s[j].sym = -2;
            if (s[i].prev >= 0) queue_pair(b, s[i].prev);
            queue_pair(b, i);
        }
    }
    size_t np = 0;
    for (int32_t i = 0; i >= 0; i = s[i].next) b->parts[np++] = (wpart){s[i].sym, s[i].end - s[i].start};
    return np;
}

static void emit_parts(bpe *b, tok_seq *out, const section_ctx *c, const wpart *p, size_t n, uint32_t pos) {
    for (size_t k = 0; k < n; k++) {
        emit_sym(b, out, c, p[k].sym, pos, pos + p[k].len);
        pos += p[k].len;
    }
}

/* BPE of a word through the word cache (like the JS port's, words up to 256 bytes). */
static void bpe_cached(bpe *b, tok_seq *out, const section_ctx *c, uint32_t ps, uint32_t pe) {
    const unsigned char *w = c->buf + ps;
    size_t len = pe - ps;
    if (len > 256) {
        size_t n = bpe_merge(b, c->buf, ps, pe);
        emit_parts(b, out, c, b->parts, n, ps);
        return;
    }
    if (!b->wc) {
        b->wc = xcalloc(WC_SIZE, sizeof *b->wc);
        b->wc_bytes = xmalloc(WC_BYTES);
        b->wc_parts = xmalloc(WC_BYTES * sizeof *b->wc_parts);
    }
    uint64_t h = XXH3_64bits(w, len);
    uint32_t i = (uint32_t)h & (WC_SIZE - 1);
    for (; b->wc[i].rn; i = (i + 1) & (WC_SIZE - 1)) {
        const wc_ent *e = &b->wc[i];
        if (e->h == h && e->wlen == len && memcmp(b->wc_bytes + e->woff, w, len) == 0) {
            emit_parts(b, out, c, b->wc_parts + e->roff, e->rn, ps);
            return;
        }
    }
    size_t n = bpe_merge(b, c->buf, ps, pe);
    if (b->wc_count >= WC_SIZE / 2 || b->wc_bused + len > WC_BYTES || b->wc_pused + n > WC_BYTES) {
        memset(b->wc, 0, WC_SIZE * sizeof *b->wc);   /* full: start afresh */
        b->wc_count = 0;
        b->wc_bused = b->wc_pused = 0;
        i = (uint32_t)h & (WC_SIZE - 1);
    }
    memcpy(b->wc_bytes + b->wc_bused, w, len);
    memcpy(b->wc_parts + b->wc_pused, b->parts, n * sizeof *b->parts);
    b->wc[i] = (wc_ent){h, (uint32_t)b->wc_bused, (uint32_t)len, (uint32_t)b->wc_pused, (uint32_t)n};
    b->wc_bused += len;
    b->wc_pused += n;
    b->wc_count++;
    emit_parts(b, out, c, b->parts, n, ps);
}

/* BPE of one pre-token buf[ps, pe).
 *
 * Gemma's normalizer turns the text of a paragraph into one pre-token, so BPE would run on whole
 * paragraphs and nothing could be reused. But a symbol boundary disappears only through a merge
 * rule (a, b) with a ending at it and b starting at it: where no rule has b starting with "▁"
 * and a ending with the character before the "▁", the boundary before that "▁" stays to the end,
 * and BPE of the parts in isolation gives the same tokens as BPE of the whole (merges on one
 * side never see the other). compile() collects the characters that do have such rules
 * (Gemma 3: only '>', from the rule ('>', '▁</')); the words between the other boundaries go
 * through the word cache. */
static void bpe_piece(bpe *b, tok_seq *out, const section_ctx *c, uint32_t ps, uint32_t pe) {
    if (pe <= ps) return;
    const unsigned char *buf = c->buf;
    const blob_hdr *h = b->h;
    if (h->flags & F_IGNORE_MERGES) {
        int32_t sy = sym_lookup(b, buf + ps, pe - ps);
        if (sy >= 0 && b->sym_tok[sy] >= 0) { emit_sym(b, out, c, sy, ps, pe); return; }
    }
    if (!(h->flags & F_WORD_SPLIT)) {
        size_t n = bpe_merge(b, buf, ps, pe);
        emit_parts(b, out, c, b->parts, n, ps);
        return;
    }
    uint32_t ws = ps;
    for (uint32_t i = ps + 1; i + 3 <= pe; i++) {
        if (buf[i] != 0xE2 || buf[i + 1] != 0x96 || buf[i + 2] != 0x81) continue;
        uint32_t q = i - 1;
        while (q > ws && (buf[q] & 0xC0) == 0x80) q--;
        if (i - q > 4) continue;
        uint32_t cp = char_cp(buf + q, i - q);
        int safe = cp != 0x2581;
        for (uint32_t k = 0; safe && k < h->nsplit_bad; k++) safe = cp != h->split_bad[k];
        if (!safe) continue;
        bpe_cached(b, out, c, ws, i);
        ws = i;
        i += 2;
    }
    bpe_cached(b, out, c, ws, pe);
}

static void push_piece(bpe *b, size_t *np, uint32_t s, uint32_t e) {
    if (e <= s) return;
    if (2 * (*np + 1) > b->piececap) {
        b->piececap = 2 * b->piececap + 64;
        b->pieces = xrealloc(b->pieces, b->piececap * sizeof *b->pieces);
    }
    b->pieces[2 * *np] = s;
    b->pieces[2 * *np + 1] = e;
    (*np)++;
}

/* Normalize, pre-tokenize and BPE the plain text[s, e). */
static void encode_plain(bpe *b, const char *text, uint32_t s, uint32_t e, tok_seq *out) {
    const blob_hdr *h = b->h;
    size_t n = e - s;
    if (n == 0) return;
    int cur = 0;
    scratch_reserve(b, n);
    memcpy(b->nb[0], text + s, n);
    for (size_t i = 0; i < n; i++) { b->ns[0][i] = (uint32_t)(s + i); b->ne[0][i] = (uint32_t)(s + i + 1); }
    for (uint32_t k = 0; k < h->nops; k++) {
        const op *o = &b->ops[k];
        if (o->stage != ST_NORM) continue;
        const unsigned char *a = (const unsigned char *)b->pool + o->a_off, *c = (const unsigned char *)b->pool + o->b_off;
        if (o->kind == N_PREPEND) {
            scratch_reserve(b, n + o->a_len);
            int nx = !cur;
            memcpy(b->nb[nx], a, o->a_len);
            memcpy(b->nb[nx] + o->a_len, b->nb[cur], n);
            uint32_t at = b->ns[cur][0];
            for (uint32_t i = 0; i < o->a_len; i++) { b->ns[nx][i] = at; b->ne[nx][i] = at; }
            memcpy(b->ns[nx] + o->a_len, b->ns[cur], n * 4);
            memcpy(b->ne[nx] + o->a_len, b->ne[cur], n * 4);
            n += o->a_len;
            cur = nx;
        } else if (o->kind == N_REPLACE) {
            size_t grow = o->b_len > o->a_len ? o->b_len - o->a_len : 0;
            size_t maxn = n + (n / o->a_len + 1) * grow;
            scratch_reserve(b, maxn);
            int nx = !cur;
            const unsigned char *in = b->nb[cur];
            const uint32_t *is = b->ns[cur], *ie = b->ne[cur];
            unsigned char *ob = b->nb[nx];
            uint32_t *os = b->ns[nx], *oe = b->ne[nx];
            size_t m = 0, i = 0;
            while (i < n) {
                if (in[i] == a[0] && i + o->a_len <= n && memcmp(in + i, a, o->a_len) == 0) {
                    uint32_t fs = is[i], fe = ie[i + o->a_len - 1];
                    for (uint32_t q = 0; q < o->b_len; q++) { ob[m] = c[q]; os[m] = fs; oe[m] = fe; m++; }
                    i += o->a_len;
                } else {
                    ob[m] = in[i]; os[m] = is[i]; oe[m] = ie[i]; m++;
                    i++;
                }
            }
            n = m;
            cur = nx;
        }
        if (n == 0) return;
    }
    section_ctx ctx = {b->nb[cur], b->ns[cur], b->ne[cur], out->n};
    /* pre-tokenize: pieces as [start, end) pairs; each Split applies to every piece so far */
    size_t np = 0;
    push_piece(b, &np, 0, (uint32_t)n);
    for (uint32_t k = 0; k < h->nops; k++) {
        const op *o = &b->ops[k];
        if (o->stage != ST_PRE) continue;
        const unsigned char *pat = (const unsigned char *)b->pool + o->a_off;
        size_t old = np;
        uint32_t *prev = xmalloc(2 * old * sizeof *prev);
        memcpy(prev, b->pieces, 2 * old * sizeof *prev);
        np = 0;
        for (size_t p = 0; p < old; p++) {
            uint32_t ps = prev[2 * p], pe = prev[2 * p + 1];
            uint32_t seg = ps;                  /* start of the text not yet emitted */
            uint32_t run_s = 0, run_e = 0;      /* Contiguous: the pending run of delimiters */
            int run = 0;
            uint32_t i = ps;
            while (i + o->a_len <= pe) {
                if (ctx.buf[i] != pat[0] || memcmp(ctx.buf + i, pat, o->a_len) != 0) { i++; continue; }
                uint32_t ms = i, me = i + o->a_len;
                switch (o->x) {
                case B_REMOVED: push_piece(b, &np, seg, ms); seg = me; break;
                case B_ISOLATED: push_piece(b, &np, seg, ms); push_piece(b, &np, ms, me); seg = me; break;
                case B_MERGED_PREV: push_piece(b, &np, seg, me); seg = me; break;
                case B_MERGED_NEXT: push_piece(b, &np, seg, ms); seg = ms; break;
                case B_CONTIGUOUS:
                    if (run && run_e == ms) { run_e = me; seg = me; break; }
                    if (run) push_piece(b, &np, run_s, run_e);
                    push_piece(b, &np, seg, ms);
                    run = 1; run_s = ms; run_e = me; seg = me;
                    break;
                }
                i = me;
            }
            if (run) push_piece(b, &np, run_s, run_e);
            push_piece(b, &np, seg, pe);
        }
        free(prev);
    }
    for (size_t p = 0; p < np; p++) bpe_piece(b, out, &ctx, b->pieces[2 * p], b->pieces[2 * p + 1]);
}

/* Longest added token starting at text[i]: its index, and its end in *end; -1 if none. */
static int32_t match_added(const bpe *b, const unsigned char *t, size_t n, size_t i, size_t *end) {
    uint32_t node = b->root_child[t[i]];
    if (!node) return -1;
    int32_t best = b->tn_added[node];
    size_t j = i + 1;
    *end = j;
    while (j < n) {
        uint32_t lo = b->tn_first[node], hi = b->tn_first[node + 1], next = 0;
        for (uint32_t k = lo; k < hi; k++)
            if (b->te_byte[k] == t[j]) { next = b->te_child[k]; break; }
        if (!next) break;
        node = next;
        j++;
        if (b->tn_added[node] >= 0) { best = b->tn_added[node]; *end = j; }
    }
    return best;
}

static void encode_text(bpe *b, const char *text, size_t n, tok_seq *out) {
    const unsigned char *t = (const unsigned char *)text;
    /* sections: (start, end, added index or -1) */
    size_t nsect = 0;
#define SECT(s_, e_, a_) do { \
        if (3 * (nsect + 1) > b->sectcap) { b->sectcap = 2 * b->sectcap + 48; b->sect = xrealloc(b->sect, b->sectcap * sizeof *b->sect); } \
        b->sect[3 * nsect] = (uint32_t)(s_); b->sect[3 * nsect + 1] = (uint32_t)(e_); b->sect[3 * nsect + 2] = (uint32_t)(a_); nsect++; \
    } while (0)
    size_t start = 0, i = 0;
    int any_strip = 0;
    while (i < n) {
        size_t end;
        int32_t a = b->root_child[t[i]] ? match_added(b, t, n, i, &end) : -1;
        if (a < 0) { i++; continue; }
        if (i > start) SECT(start, i, UINT32_MAX);
        SECT(i, end, a);
        any_strip |= b->added[a].lstrip | b->added[a].rstrip;
        i = start = end;
    }
    if (start < n) SECT(start, n, UINT32_MAX);
    if (any_strip) {
        /* the JS port trims the neighbouring sections, whatever they are */
        for (size_t k = 0; k < nsect; k++) {
            uint32_t a = b->sect[3 * k + 2];
            if (a == UINT32_MAX) continue;
            if (b->added[a].lstrip && k > 0) {
                uint32_t s = b->sect[3 * (k - 1)], e = b->sect[3 * (k - 1) + 1];
                while (e > s) {
                    uint32_t q = e - 1;
                    while (q > s && (t[q] & 0xC0) == 0x80) q--;
                    if (!js_space(char_cp(t + q, e - q))) break;
                    e = q;
                }
                b->sect[3 * (k - 1) + 1] = e;
            }
            if (b->added[a].rstrip && k + 1 < nsect) {
                uint32_t s = b->sect[3 * (k + 1)], e = b->sect[3 * (k + 1) + 1];
                while (s < e) {
                    size_t q = char_len(t[s]);
                    if (q > e - s) q = e - s;
                    if (!js_space(char_cp(t + s, q))) break;
                    s += (uint32_t)q;
                }
                b->sect[3 * (k + 1)] = s;
            }
        }
        /* a trimmed added token is plain text unless it still is exactly an added token */
        for (size_t k = 0; k < nsect; k++) {
            uint32_t a = b->sect[3 * k + 2], s = b->sect[3 * k], e = b->sect[3 * k + 1];
            if (a == UINT32_MAX || e - s == b->added[a].len) continue;
            size_t end;
            int32_t m = e > s ? match_added(b, t, e, s, &end) : -1;
            b->sect[3 * k + 2] = (m >= 0 && end == e) ? (uint32_t)m : UINT32_MAX;
        }
    }
    for (size_t k = 0; k < nsect; k++) {
        uint32_t s = b->sect[3 * k], e = b->sect[3 * k + 1], a = b->sect[3 * k + 2];
        if (e <= s) continue;
        if (a != UINT32_MAX) tok_seq_push(out, b->added[a].tok, s, e);
        else encode_plain(b, text, s, e, out);
    }
#undef SECT
}

void bpe_encode(bpe *b, const char *text, size_t n, int add_special, tok_seq *out) {
    if (n >= UINT32_MAX) entk_die(ENTK_EXIT_INPUT, "text of %zu bytes is too long to tokenize (limit 4 GiB)", n);
    if (!(b->h->flags & F_HAS_POST)) { encode_text(b, text, n, out); return; }
    int seen_a = 0;
    for (uint32_t k = 0; k < b->h->nops; k++) {
        const op *o = &b->ops[k];
        if (o->stage != ST_POST) continue;
        if (o->kind == T_SEQ_A) { encode_text(b, text, n, out); seen_a = 1; }
        else if (o->kind == T_SPECIAL && add_special)
            for (int32_t q = 0; q < o->y; q++) tok_seq_push(out, b->ints[o->x + q], seen_a ? (int64_t)n : 0, seen_a ? (int64_t)n : 0);
    }
}

/* ------------------------------------------------------------------ decoding */

typedef struct { bytebuf text; size_t *off; size_t n, cap; } strlist;   /* string i = text[off[i], off[i+1]) */

static void sl_add(strlist *l, const void *p, size_t n) {
    if (l->n + 2 > l->cap) {
        l->cap = 2 * l->cap + 16;
        l->off = xrealloc(l->off, l->cap * sizeof *l->off);
    }
    if (l->n == 0) l->off[0] = 0;
    bytebuf_add(&l->text, p, n);
    l->off[++l->n] = l->text.n;
}

static void sl_free(strlist *l) { free(l->text.p); free(l->off); memset(l, 0, sizeof *l); }

static int hexv(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

void bpe_decode(const bpe *b, const int32_t *ids, size_t n, int skip_special, bytebuf *out) {
    const blob_hdr *h = b->h;
    strlist cur = {0}, nxt = {0};
    for (size_t i = 0; i < n; i++) {
        int32_t t = ids[i];
        if (t < 0 || (uint32_t)t >= h->ntok || b->tok_sym[t] < 0)
            entk_die(ENTK_EXIT_INPUT, "token id %d is not in the tokenizer (ids are 0..%u)", t, h->ntok - 1);
        if (skip_special && (b->tok_flags[t] & TOK_SPECIAL)) continue;
        int32_t sy = b->tok_sym[t];
        sl_add(&cur, b->pool + b->sym_off[sy], b->sym_off[sy + 1] - b->sym_off[sy]);
    }
    for (uint32_t k = 0; k < h->nops; k++) {
        const op *o = &b->ops[k];
        if (o->stage != ST_DEC) continue;
        const char *a = b->pool + o->a_off, *c = b->pool + o->b_off;
        nxt.n = 0;
        nxt.text.n = 0;
        switch (o->kind) {
        case D_UNSUPPORTED:
            entk_die(ENTK_EXIT_INPUT, "cannot decode: unsupported decoder type '%.*s' (entk supports Replace, ByteFallback, Fuse, Strip, Sequence)", (int)o->a_len, a);
        case D_REPLACE:
            for (size_t i = 0; i < cur.n; i++) {
                const char *s = cur.text.p + cur.off[i];
                size_t len = cur.off[i + 1] - cur.off[i];
                bytebuf tmp = {0};
                bytebuf_add(&tmp, "", 0);
                for (size_t q = 0; q < len;) {
                    if (q + o->a_len <= len && memcmp(s + q, a, o->a_len) == 0) { bytebuf_add(&tmp, c, o->b_len); q += o->a_len; }
                    else { bytebuf_add(&tmp, s + q, 1); q++; }
                }
                sl_add(&nxt, tmp.p, tmp.n);
                free(tmp.p);
            }
            break;
        case D_BYTE_FALLBACK: {
            bytebuf run = {0};
            bytebuf_add(&run, "", 0);
            for (size_t i = 0; i <= cur.n; i++) {
                const char *s = i < cur.n ? cur.text.p + cur.off[i] : NULL;
                size_t len = i < cur.n ? cur.off[i + 1] - cur.off[i] : 0;
                int byte = -1;
                if (s && len == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>' && hexv(s[3]) >= 0 && hexv(s[4]) >= 0)
                    byte = hexv(s[3]) * 16 + hexv(s[4]);
                if (byte >= 0) { unsigned char ch = (unsigned char)byte; bytebuf_add(&run, &ch, 1); continue; }
                if (run.n) {   /* the bytes decode as TextDecoder does: U+FFFD for ill-formed ones */
                    unsigned char *u = xmalloc(3 * run.n);
                    size_t m = utf8_replace((const unsigned char *)run.p, run.n, u, NULL, NULL);
                    sl_add(&nxt, u, m);
                    free(u);
                    run.n = 0;
                }
                if (s) sl_add(&nxt, s, len);
            }
            free(run.p);
            break;
        }
        case D_FUSE:
            sl_add(&nxt, cur.text.p, cur.n ? cur.off[cur.n] : 0);
            break;
        case D_STRIP:
            for (size_t i = 0; i < cur.n; i++) {
                const char *s = cur.text.p + cur.off[i];
                size_t len = cur.off[i + 1] - cur.off[i], lo = 0, hi = len;
                for (int32_t q = 0; q < o->x && hi - lo >= o->a_len && memcmp(s + lo, a, o->a_len) == 0; q++) lo += o->a_len;
                for (int32_t q = 0; q < o->y && hi - lo >= o->a_len && memcmp(s + hi - o->a_len, a, o->a_len) == 0; q++) hi -= o->a_len;
                sl_add(&nxt, s + lo, hi - lo);
            }
            break;
        }
        strlist t = cur;
        cur = nxt;
        nxt = t;
    }
    /* no decoder: tokens joined by spaces, as both HF tokenizers and the JS port do */
    const char *sep = (h->flags & F_HAS_DECODER) ? "" : " ";
    for (size_t i = 0; i < cur.n; i++) {
        if (i && *sep) bytebuf_add(out, sep, 1);
        bytebuf_add(out, cur.text.p + cur.off[i], cur.off[i + 1] - cur.off[i]);
    }
    if (!out->p) bytebuf_add(out, "", 0);
    sl_free(&cur);
    sl_free(&nxt);
}
