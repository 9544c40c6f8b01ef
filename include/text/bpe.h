/* bpe: Hugging Face tokenizer.json BPE tokenizers (Gemma 3 and the like), encode and decode.
 *
 * Reads the file as it is: vocab and merges, added tokens (matched first, longest match, on the
 * raw text), the declared normalizer (Replace/Prepend/Sequence), pre-tokenizer (Split on a string,
 * Sequence), BPE with byte fallback and fuse_unk, the TemplateProcessing post-processor (<bos>) and
 * the decoder (Replace/ByteFallback/Fuse/Strip). Where Hugging Face tokenizers and its JS port
 * (transformers.js, @lenml/tokenizers) differ, entk follows the JS port, which the tests compare
 * against: added tokens match the raw text whatever their "normalized" and "single_word" say, and
 * lstrip/rstrip trim the neighbouring text as JS trim() does. The one exception is the Split
 * pre-tokenizer, whose behaviours (Removed, Isolated, MergedWithPrevious, MergedWithNext,
 * Contiguous) the JS port does not implement (it isolates the delimiters in every case): entk does
 * what Hugging Face tokenizers does. Gemma 3's Split on " " never matches (its normalizer has
 * already turned every space into "▁"). Anything else in the file (WordPiece, Unigram, regex
 * patterns, NFKC...) is refused with a one-line error naming it (exit 3); an unsupported decoder
 * only when decoding.
 *
 * Parsing the 33 MB Gemma 3 file takes about a second, so the compiled tables are kept in the
 * entk cache (cache.h) under a key made of the file's content hash and BPE_FORMAT_VERSION: the
 * second load reads one verified blob and sets pointers into it.
 *
 * Every token carries the byte range [start, end) of the input text it came from, so words can be
 * mapped to tokens: a token made of normalizer output (the "▁" standing for a space) points at the
 * input bytes it replaced, a byte-fallback token at its one byte, a special token added by the
 * post-processor is empty (0,0 before the text, n,n after). */
#ifndef ENTK_BPE_H
#define ENTK_BPE_H
#include <stddef.h>
#include <stdint.h>
#include "core/hash.h"

/* Token ids and their byte ranges in the encoded text (offs[2i], offs[2i+1]). */
typedef struct {
    int32_t *ids;
    int64_t *offs;
    size_t n, cap;
} tok_seq;
void tok_seq_push(tok_seq *s, int32_t id, int64_t start, int64_t end);
void tok_seq_free(tok_seq *s);

/* A growable byte string. */
typedef struct {
    char *p;
    size_t n, cap;
} bytebuf;
void bytebuf_add(bytebuf *b, const void *p, size_t n);

/* ---- UTF-8 ---- */
/* Offset of the first byte that is not part of a well-formed UTF-8 sequence, or n. */
size_t utf8_invalid_at(const unsigned char *s, size_t n);
/* Decodes s as the WHATWG (and JS TextDecoder) UTF-8 decoder does: each maximal ill-formed
 * subsequence becomes U+FFFD. out must hold 3*n bytes. If ostart/oend are not NULL they receive,
 * for each output byte, the input range of the character it belongs to (one byte for a copied
 * byte, the whole ill-formed subsequence for a U+FFFD). Returns the output length. */
size_t utf8_replace(const unsigned char *s, size_t n, unsigned char *out, uint32_t *ostart, uint32_t *oend);

/* ---- tokenizer.json BPE ---- */
#define BPE_FORMAT_VERSION 1

typedef struct bpe bpe;

typedef struct {
    double seconds;     /* wall time of bpe_load */
    int from_cache;     /* 1: compiled form read from the cache; 0: parsed and compiled */
    size_t bytes;       /* size of the compiled form */
} bpe_load_info;

/* Loads path (dies with exit 3 naming the problem if it is not a tokenizer.json entk can run).
 * Uses the cache (cache_init must have been called; "off" compiles every time). */
bpe *bpe_load(const char *path, bpe_load_info *info);
void bpe_free(bpe *b);
int32_t bpe_ntokens(const bpe *b);          /* ids are in [0, ntokens) */
entk_key bpe_file_key(const bpe *b);        /* content hash of the tokenizer.json */
/* Appends the tokens of text[0,n) (well-formed UTF-8, n < 4 GiB) to out, offsets relative to text.
 * add_special: apply the post-processor's special tokens (Gemma 3: a leading <bos>). */
void bpe_encode(bpe *b, const char *text, size_t n, int add_special, tok_seq *out);
/* Appends the text of ids to out, as the file's decoder makes it. skip_special drops the added
 * tokens marked special (<bos>, <eos>, <pad>...). Dies (exit 3) on an id that is not a token. */
void bpe_decode(const bpe *b, const int32_t *ids, size_t n, int skip_special, bytebuf *out);
#endif
