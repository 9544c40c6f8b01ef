/* tokenizer: a tokenizer of either kind entk reads, a Hugging Face tokenizer.json (text/bpe.h,
 * Gemma 3) or a llama2.c tokenizer.bin (text/llama2tok.h), behind one load, encode and decode.
 *
 * The one place that decides which kind a file is: unless told (format "hf" or "llama2"), a file
 * whose first non-blank byte opens JSON ('{' or '[') is a tokenizer.json, anything else a
 * tokenizer.bin. Filters that take "a model's tokenizer" (entk-tokenize, entk-windows) load it here
 * and never look at the kind again, except for options only one kind has. */
#ifndef ENTK_TOKENIZER_H
#define ENTK_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>
#include "core/hash.h"
#include "text/bpe.h"
#include "text/llama2tok.h"

typedef struct {
    bpe *hf;            /* tokenizer.json */
    l2tok *l2;          /* llama2.c tokenizer.bin */
    int32_t ntokens;    /* ids are in [0, ntokens) */
    entk_key key;       /* content hash of the file */
    const char *kind;   /* "hf" or "llama2" */
} tokenizer;

/* "hf" or "llama2" for the file at path, by its first non-blank byte. Dies (exit 3) if it cannot
 * be opened. */
const char *tokenizer_kind(const char *path);
/* Loads path as format ("hf", "llama2" or NULL: tokenizer_kind decides). Dies (exit 3) on a bad
 * file. A tokenizer.json goes through the cache: call cache_init first. info, if not NULL, gets
 * the load time (and, for a tokenizer.json, whether it came from the cache). */
void tokenizer_load(tokenizer *tk, const char *path, const char *format, bpe_load_info *info);
void tokenizer_free(tokenizer *tk);
/* Appends the tokens of text[0,n) with their byte ranges. bos: the BOS token (tokenizer.json: its
 * post-processor's special tokens); eos: EOS (llama2.c only; a tokenizer.json's post-processor says
 * what it adds). */
void tokenizer_encode(const tokenizer *tk, const char *text, size_t n, int bos, int eos, tok_seq *out);
/* Appends the text of ids (out->p is never NULL afterwards); skip_special drops BOS, EOS and the
 * other special tokens. Dies (exit 3) on an id that is not a token. */
void tokenizer_decode(const tokenizer *tk, const int32_t *ids, size_t n, int skip_special, bytebuf *out);
#endif
