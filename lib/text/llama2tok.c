#include "text/llama2tok.h"
#include "core/err.h"
#include "core/heap.h"
#include "core/fileio.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* a queued merge: key = merge_key(score, position); a, b the pair's tokens when it was queued */
typedef struct { uint64_t key; int32_t a, b; } l2_ent;
#define L2_FIRST(x, y) ((x).key < (y).key)
HEAP_DEFINE(l2_heap, l2_ent, L2_FIRST)
typedef struct { int32_t id; uint32_t start, end; int32_t prev, next; } l2_sym;
typedef struct { int32_t id; uint32_t len; } l2_part;                   /* a token of a word */
typedef struct { uint64_t h; uint32_t woff, wlen, roff, rn; } l2_wc;    /* a cached word */
#define L2_WC_SIZE (1 << 17)
#define L2_WC_BYTES (1 << 22)

struct l2tok {
    entk_key file_key;
    int32_t n;              /* tokens */
    char *bytes;            /* all token strings, each NUL-terminated */
    uint32_t *off, *len;    /* token i = bytes[off[i], off[i] + len[i]) (len up to the first NUL) */
    float *score;
    uint32_t *ht;           /* string -> token + 1; the lowest id wins for a repeated string */
    uint32_t mask;
    /* pair (a, b) -> merged token or -1, filled as pairs are met */
    uint64_t *pkey;
    int32_t *pval;
    uint32_t pmask, pcount;
    /* words split before a space whose preceding byte is not in before_space (l2tok_encode) */
    uint8_t before_space[256];
    int split_ok;
    l2_wc *wc;
    unsigned char *wc_bytes;
    l2_part *wc_parts;
    size_t wc_bused, wc_pused, wc_count;
    /* encode scratch */
    l2_sym *syms;
    size_t symcap;
    l2_heap heap;
    char *cat;
    size_t catcap;
};

static uint32_t l2_hash(const void *p, size_t n) { return (uint32_t)XXH3_64bits(p, n); }

static int32_t l2_lookup(const l2tok *t, const char *s, size_t n) {
    uint32_t i = l2_hash(s, n) & t->mask;
    for (;;) {
        uint32_t v = t->ht[i];
        if (!v) return -1;
        uint32_t id = v - 1;
        if (t->len[id] == n && memcmp(t->bytes + t->off[id], s, n) == 0) return (int32_t)id;
        i = (i + 1) & t->mask;
    }
}

static uint32_t rd32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

l2tok *l2tok_load(const char *path) {
    size_t n;
    unsigned char *f = (unsigned char *)read_file(path, &n);
    l2tok *t = xcalloc(1, sizeof *t);
    t->file_key = hash_bytes(f, n);
    if (n < 4) entk_die(ENTK_EXIT_INPUT, "%s: not a llama2.c tokenizer (%zu bytes, no header)", path, n);
    int32_t maxlen = (int32_t)rd32(f);
    if (maxlen <= 0 || maxlen > (1 << 20)) entk_die(ENTK_EXIT_INPUT, "%s: not a llama2.c tokenizer (max_token_length %d)", path, maxlen);
    /* count the records first so every array is allocated once */
    size_t pos = 4, count = 0;
    while (pos < n) {
        if (n - pos < 8) entk_die(ENTK_EXIT_INPUT, "%s: truncated at token %zu (record header cut off)", path, count);
        int32_t len = (int32_t)rd32(f + pos + 4);
        if (len < 0 || (size_t)len > n - pos - 8)
            entk_die(ENTK_EXIT_INPUT, "%s: token %zu has length %d, past the end of the file (truncated or not a llama2.c tokenizer)", path, count, len);
        pos += 8 + (size_t)len;
        count++;
    }
    if (count < 259) entk_die(ENTK_EXIT_INPUT, "%s: %zu tokens; a llama2.c tokenizer has at least 259 (<unk>, BOS, EOS, 256 byte tokens)", path, count);
    if (count > (1u << 30)) entk_die(ENTK_EXIT_INPUT, "%s: too many tokens", path);
    t->n = (int32_t)count;
    t->off = xmalloc(count * sizeof *t->off);
    t->len = xmalloc(count * sizeof *t->len);
    t->score = xmalloc(count * sizeof *t->score);
    t->bytes = xmalloc(n);
    size_t bo = 0;
    pos = 4;
    for (size_t i = 0; i < count; i++) {
        uint32_t sb = rd32(f + pos);
        memcpy(&t->score[i], &sb, 4);
        uint32_t len = rd32(f + pos + 4);
        memcpy(t->bytes + bo, f + pos + 8, len);
        t->bytes[bo + len] = 0;
        t->off[i] = (uint32_t)bo;
        t->len[i] = (uint32_t)strnlen(t->bytes + bo, len);   /* run.c uses them as C strings */
        bo += len + 1;
        pos += 8 + len;
    }
    free(f);
    uint32_t bits = 4;
    while ((1u << bits) < 2 * count) bits++;
    t->mask = (1u << bits) - 1;
    t->ht = xcalloc((size_t)1 << bits, sizeof *t->ht);
    for (size_t id = 0; id < count; id++) {
        uint32_t i = l2_hash(t->bytes + t->off[id], t->len[id]) & t->mask;
        int dup = 0;
        while (t->ht[i]) {
            uint32_t o = t->ht[i] - 1;
            if (t->len[o] == t->len[id] && memcmp(t->bytes + t->off[o], t->bytes + t->off[id], t->len[id]) == 0) { dup = 1; break; }
            i = (i + 1) & t->mask;
        }
        if (!dup) t->ht[i] = (uint32_t)id + 1;
    }
    for (size_t id = 0; id < count; id++) {
        const unsigned char *p = (const unsigned char *)t->bytes + t->off[id];
        for (uint32_t k = 1; k < t->len[id]; k++)
            if (p[k] == ' ') t->before_space[p[k - 1]] = 1;
    }
    t->split_ok = !t->before_space['>'];
    t->pmask = 4095;
    t->pkey = xmalloc(4096 * sizeof *t->pkey);
    t->pval = xmalloc(4096 * sizeof *t->pval);
    memset(t->pkey, 0xff, 4096 * sizeof *t->pkey);
    return t;
}

void l2tok_free(l2tok *t) {
    if (!t) return;
    free(t->bytes); free(t->off); free(t->len); free(t->score); free(t->ht);
    free(t->pkey); free(t->pval); free(t->syms); l2_heap_free(&t->heap); free(t->cat);
    free(t->wc); free(t->wc_bytes); free(t->wc_parts);
    free(t);
}

int32_t l2tok_ntokens(const l2tok *t) { return t->n; }
entk_key l2tok_file_key(const l2tok *t) { return t->file_key; }

static inline uint32_t pslot(uint64_t key, uint32_t mask) { return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask; }

/* The token whose string is vocab[a] + vocab[b], or -1: run.c's sprintf + str_lookup, memoized. */
static int32_t pair_merge(l2tok *t, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t i = pslot(key, t->pmask);
    while (t->pkey[i] != UINT64_MAX) {
        if (t->pkey[i] == key) return t->pval[i];
        i = (i + 1) & t->pmask;
    }
    size_t la = t->len[a], lb = t->len[b];
    if (la + lb > t->catcap) {
        t->catcap = 2 * (la + lb) + 64;
        t->cat = xrealloc(t->cat, t->catcap);
    }
    memcpy(t->cat, t->bytes + t->off[a], la);
    memcpy(t->cat + la, t->bytes + t->off[b], lb);
    int32_t id = l2_lookup(t, t->cat, la + lb);
    t->pkey[i] = key;
    t->pval[i] = id;
    if (++t->pcount * 2 > t->pmask) {   /* grow */
        uint32_t om = t->pmask;
        uint64_t *ok = t->pkey;
        int32_t *ov = t->pval;
        t->pmask = 2 * om + 1;
        t->pkey = xmalloc(((size_t)t->pmask + 1) * sizeof *t->pkey);
        t->pval = xmalloc(((size_t)t->pmask + 1) * sizeof *t->pval);
        memset(t->pkey, 0xff, ((size_t)t->pmask + 1) * sizeof *t->pkey);
        for (uint32_t k = 0; k <= om; k++) {
            if (ok[k] == UINT64_MAX) continue;
            uint32_t j = pslot(ok[k], t->pmask);
            while (t->pkey[j] != UINT64_MAX) j = (j + 1) & t->pmask;
            t->pkey[j] = ok[k];
            t->pval[j] = ov[k];
        }
        free(ok);
        free(ov);
    }
    return id;
}

/* Orders scores so that a smaller key is a better merge: higher score first, then leftmost.
 * -0.0 and 0.0 are equal, as for run.c's float comparison. */
static inline uint64_t merge_key(float score, uint32_t pos) {
    if (score == 0) score = 0;
    uint32_t u;
    memcpy(&u, &score, 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return (uint64_t)(~u) << 32 | pos;
}

/* run.c only takes a merge whose score beats its starting best_score of -1e10 */
static void queue_pair(l2tok *t, int32_t i) {
    l2_sym *s = t->syms;
    int32_t j = s[i].next;
    if (j < 0) return;
    int32_t m = pair_merge(t, s[i].id, s[j].id);
    if (m < 0 || !(t->score[m] > -1e10f)) return;
    l2_heap_push(&t->heap, (l2_ent){merge_key(t->score[m], (uint32_t)i), s[i].id, s[j].id});
}

static void sym_add(l2tok *t, size_t *ns, int32_t id, uint32_t start, uint32_t end) {
    if (*ns == t->symcap) {
        t->symcap = 2 * t->symcap + 256;
        t->syms = xrealloc(t->syms, t->symcap * sizeof *t->syms);
    }
    t->syms[*ns] = (l2_sym){id, start, end, (int32_t)*ns - 1, (int32_t)*ns + 1};
    (*ns)++;
}

/* run.c's characters of text[ws, we): a non-continuation byte and the (at most 3) continuation
 * bytes after it, looked up as a string, or their bytes' ids when it is not a token. A space
 * never continues a character, so a word starting with one is split exactly as in the whole. */
static void add_chars(l2tok *t, size_t *ns, const unsigned char *s, size_t ws, size_t we) {
    size_t len = 0;
    for (size_t c = ws; c < we; c++) {
        if ((s[c] & 0xC0) != 0x80) len = 0;
        len++;
        unsigned next = c + 1 < we ? s[c + 1] : 0;
        if ((next & 0xC0) == 0x80 && len < 4) continue;
        size_t st = c + 1 - len;
        int32_t id = l2_lookup(t, (const char *)s + st, len);
        if (id >= 0) sym_add(t, ns, id, (uint32_t)st, (uint32_t)(c + 1));
        else
            for (size_t i = 0; i < len; i++) sym_add(t, ns, s[st + i] + 3, (uint32_t)(st + i), (uint32_t)(st + i + 1));
        len = 0;
    }
}

/* Merges t->syms[0, ns) as run.c does: the best-scoring pair first, the leftmost on ties. The
 * result is the list linked from symbol 0. */
static void merge_all(l2tok *t, size_t ns) {
    l2_sym *sy = t->syms;
    sy[ns - 1].next = -1;
    t->heap.n = 0;
    for (size_t i = 0; i + 1 < ns; i++) queue_pair(t, (int32_t)i);
    while (t->heap.n > 0) {
        l2_ent e = l2_heap_pop(&t->heap);
        int32_t i = (int32_t)(uint32_t)e.key;
        if (sy[i].id != e.a) continue;      /* stale: a side has changed since it was queued */
        int32_t j = sy[i].next;
        if (j < 0 || sy[j].id != e.b) continue;
        sy[i].id = pair_merge(t, e.a, e.b);
        sy[i].end = sy[j].end;
        sy[i].next = sy[j].next;
        if (sy[j].next >= 0) sy[sy[j].next].prev = i;
        sy[j].id = -1;
        if (sy[i].prev >= 0) queue_pair(t, sy[i].prev);
        queue_pair(t, i);
    }
}

/* The tokens of the word s[ws, we) (it starts with a space), through the word cache. */
static void encode_word(l2tok *t, const unsigned char *s, size_t ws, size_t we, tok_seq *out) {
    size_t len = we - ws;
    uint64_t h = 0;
    uint32_t i = 0;
    int cacheable = len <= 256;
    if (cacheable) {
        if (!t->wc) {
            t->wc = xcalloc(L2_WC_SIZE, sizeof *t->wc);
            t->wc_bytes = xmalloc(L2_WC_BYTES);
            t->wc_parts = xmalloc(L2_WC_BYTES * sizeof *t->wc_parts);
        }
        h = XXH3_64bits(s + ws, len);
        for (i = (uint32_t)h & (L2_WC_SIZE - 1); t->wc[i].rn; i = (i + 1) & (L2_WC_SIZE - 1)) {
            const l2_wc *e = &t->wc[i];
            if (e->h == h && e->wlen == len && memcmp(t->wc_bytes + e->woff, s + ws, len) == 0) {
                size_t pos = ws;
                for (uint32_t k = 0; k < e->rn; k++) {
                    const l2_part *p = &t->wc_parts[e->roff + k];
                    tok_seq_push(out, p->id, (int64_t)pos, (int64_t)(pos + p->len));
                    pos += p->len;
                }
                return;
            }
        }
    }
    size_t ns = 0;
    add_chars(t, &ns, s, ws, we);
    merge_all(t, ns);
    size_t first = out->n;
    for (int32_t k = 0; k >= 0; k = t->syms[k].next) tok_seq_push(out, t->syms[k].id, t->syms[k].start, t->syms[k].end);
    if (!cacheable) return;
    size_t rn = out->n - first;
    if (t->wc_count >= L2_WC_SIZE / 2 || t->wc_bused + len > L2_WC_BYTES || t->wc_pused + rn > L2_WC_BYTES) {
        memset(t->wc, 0, L2_WC_SIZE * sizeof *t->wc);   /* full: start afresh */
        t->wc_count = t->wc_bused = t->wc_pused = 0;
        i = (uint32_t)h & (L2_WC_SIZE - 1);
    }
    memcpy(t->wc_bytes + t->wc_bused, s + ws, len);
    for (size_t k = 0; k < rn; k++)
        t->wc_parts[t->wc_pused + k] = (l2_part){out->ids[first + k], (uint32_t)(out->offs[2 * (first + k) + 1] - out->offs[2 * (first + k)])};
    t->wc[i] = (l2_wc){h, (uint32_t)t->wc_bused, (uint32_t)len, (uint32_t)t->wc_pused, (uint32_t)rn};
    t->wc_bused += len;
    t->wc_pused += rn;
    t->wc_count++;
}

/* run.c merges over the whole text, which is quadratic there and needs a word cache here to be
 * fast. A symbol boundary disappears only when the strings on its two sides concatenate to a
 * token; before a space at text position p that needs a token with a space after its first byte,
 * preceded by the byte before p (or by '>', the last byte of a <0xXX> piece). l2tok_load collects
 * those bytes (none in tok512.bin); at the other spaces the text splits into words that merge
 * exactly as they would inside the whole, independently of each other. */
void l2tok_encode(l2tok *t, const char *text, size_t n, int bos, int eos, tok_seq *out) {
    if (n >= INT32_MAX / 2) entk_die(ENTK_EXIT_INPUT, "text of %zu bytes is too long to tokenize", n);
    const unsigned char *s = (const unsigned char *)text;
    size_t p1 = n;   /* end of the first word */
    if (t->split_ok)
        for (size_t p = 1; p < n; p++)
            if (s[p] == ' ' && !t->before_space[s[p - 1]]) { p1 = p; break; }
    size_t ns = 0;
    if (bos) sym_add(t, &ns, 1, 0, 0);
    if (n > 0) {
        int32_t sp = l2_lookup(t, " ", 1);
        if (sp < 0) entk_die(ENTK_EXIT_INPUT, "the tokenizer has no \" \" token for the dummy prefix");
        sym_add(t, &ns, sp, 0, 0);
    }
    add_chars(t, &ns, s, 0, p1);
    if (ns > 0) {
        merge_all(t, ns);
        for (int32_t i = 0; i >= 0; i = t->syms[i].next) tok_seq_push(out, t->syms[i].id, t->syms[i].start, t->syms[i].end);
    }
    size_t ws = p1;
    for (size_t p = p1 + 1; p < n; p++) {
        if (s[p] != ' ' || t->before_space[s[p - 1]]) continue;
        encode_word(t, s, ws, p, out);
        ws = p;
    }
    if (ws < n) encode_word(t, s, ws, n, out);
    if (eos) tok_seq_push(out, 2, (int64_t)n, (int64_t)n);
}

static int hexd(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* A <0xXX> piece: 1 and its byte in *byte. */
static int byte_piece(const char *p, size_t len, unsigned char *byte) {
    if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>' || hexd(p[3]) < 0 || hexd(p[4]) < 0) return 0;
    *byte = (unsigned char)(hexd(p[3]) * 16 + hexd(p[4]));
    return 1;
}

void l2tok_decode(const l2tok *t, const int32_t *ids, size_t n, int skip_special, bytebuf *out) {
    int first = 1, after_bos = 0;
    if (!out->p) bytebuf_add(out, "", 0);
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n) entk_die(ENTK_EXIT_INPUT, "token id %d is not in the tokenizer (ids are 0..%d)", id, t->n - 1);
        if (skip_special && (id == 1 || id == 2)) { after_bos = id == 1; continue; }
        const char *p = t->bytes + t->off[id];
        size_t len = t->len[id];
        if ((first || after_bos) && len && p[0] == ' ') { p++; len--; }
        first = 0;
        after_bos = id == 1;
        unsigned char byte;
        if (byte_piece(p, len, &byte)) bytebuf_add(out, &byte, 1);
        else bytebuf_add(out, p, len);
    }
}

void l2tok_piece(const l2tok *t, int32_t prev, int32_t tok, bytebuf *out) {
    if (!out->p) bytebuf_add(out, "", 0);
    if (tok < 0 || tok >= t->n) return;
    const char *p = t->bytes + t->off[tok];
    size_t len = t->len[tok];
    if (prev == 1 && len && p[0] == ' ') { p++; len--; }
    unsigned char byte;
    if (byte_piece(p, len, &byte)) bytebuf_add(out, &byte, 1);
    else bytebuf_add(out, p, len);
}
