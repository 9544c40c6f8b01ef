/* bpe: loading a tokenizer.json's compiled form (from the cache, or compiling it: bpe_compile.c),
 * and the small buffers and UTF-8 decoding the tokenizers share. Encoding and decoding with the
 * compiled form: bpe_codec.c. */
#include "text/bpe.h"
#include "bpe_impl.h"
#include "core/cache.h"
#include "core/codeid.h"
#include "core/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ------------------------------------------------------------------ loading */

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
        b->blob = bpe_compile(path, &b->blob_n);
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
