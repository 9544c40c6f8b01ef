/* llama2tok: the tokenizer of karpathy's llama2.c (tokenizer.bin, tok512.bin), encode and decode.
 *
 * File format (run.c build_tokenizer): int32 max_token_length, then for every token a float32
 * score, an int32 byte length and the bytes; the token count is whatever the file holds. Ids 1 and
 * 2 are BOS and EOS, ids 3..258 the byte-fallback tokens <0x00>..<0xFF>.
 *
 * Encoding is run.c's encode(): optional BOS, a dummy-prefix " " token when the text is not empty,
 * one token per UTF-8 character (a lead byte and up to three continuation bytes, looked up as a
 * string; unknown ones become their bytes' ids, byte + 3), then repeatedly the adjacent pair whose
 * concatenation is the vocabulary string with the highest score is merged, leftmost first on ties.
 * run.c rescans the whole sequence for every merge (quadratic); this does the same merges in the
 * same order with a priority queue. Strings are C strings, as in run.c (a token's bytes end at a
 * NUL). Offsets are byte ranges into the text; BOS and the dummy prefix are empty ranges at 0.
 *
 * This is entk's one reader of tokenizer.bin: the language-model side (a generated story's text
 * in entk-forward) decodes through l2tok_piece, as run.c prints tokens one at a time. */
#ifndef ENTK_LLAMA2TOK_H
#define ENTK_LLAMA2TOK_H
#include <stddef.h>
#include <stdint.h>
#include "text/bpe.h"
#include "core/hash.h"

typedef struct l2tok l2tok;

/* Loads path; dies (exit 3) naming the problem if it is not a llama2.c tokenizer. */
l2tok *l2tok_load(const char *path);
void l2tok_free(l2tok *t);
int32_t l2tok_ntokens(const l2tok *t);
entk_key l2tok_file_key(const l2tok *t);
/* Appends the tokens of text[0,n) to out (the text's raw bytes, as run.c sees them). */
void l2tok_encode(l2tok *t, const char *text, size_t n, int bos, int eos, tok_seq *out);
/* Appends the text of ids to out: pieces concatenated, <0xXX> tokens as their byte, the dummy
 * prefix's space dropped from the first piece (and after a BOS, as run.c's decode does).
 * skip_special drops BOS and EOS. Dies (exit 3) on an id out of range. */
void l2tok_decode(const l2tok *t, const int32_t *ids, size_t n, int skip_special, bytebuf *out);
/* Appends the text of token tok following token prev as run.c's decode() prints it: the leading
 * space of the piece dropped after BOS (1) only, a <0xXX> piece as that byte. A tok out of range
 * appends nothing (a model may have more ids than its tokenizer). */
void l2tok_piece(const l2tok *t, int32_t prev, int32_t tok, bytebuf *out);
#endif
