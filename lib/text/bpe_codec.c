/* bpe_codec: encoding and decoding with a compiled tokenizer.json (bpe_impl.h): added tokens
 * matched on the raw text, the normalizer and pre-tokenizer, BPE merges by rank (a heap per word,
 * words cached), byte fallback; the decoder's steps on the tokens' strings. */
#include "bpe_impl.h"
#include "core/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* JS String.prototype.trim's whitespace: WhiteSpace and LineTerminator code points. */
static int js_space(uint32_t cp) {
    switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: case 0xFEFF:
        return 1;
    }
    return cp >= 0x2000 && cp <= 0x200A;
}

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
