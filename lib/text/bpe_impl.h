/* bpe_impl: what the BPE tokenizer's files share (private to lib/text): the compiled form of a
 * tokenizer.json (one blob: the cache holds it as is) that bpe_compile.c builds, bpe.c loads and
 * bpe_codec.c encodes and decodes with, and the UTF-8 helpers they all read characters with. */
#ifndef ENTK_BPE_IMPL_H
#define ENTK_BPE_IMPL_H
#include "core/hash.h"
#include "core/heap.h"
#include "text/bpe.h"
#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

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

/* tokenizer.json at path compiled into one blob (malloc'd; *blob_n its size); dies (exit 3)
 * naming what it cannot run */
void *bpe_compile(const char *path, size_t *blob_n);
#endif
