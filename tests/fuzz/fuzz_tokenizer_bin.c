/* Fuzz harness: llama2.c tokenizer.bin (text/llama2tok.c, the one reader): load, encode, decode
 * whole texts, and decode token by token as run.c prints them (l2tok_piece, for generation). */
#include "fuzz.h"
#include "text/llama2tok.h"

static void fuzz_cleanup(void) {}

static const char text[] = "Once upon a time, a  little\tgirl\nsaw \xc3\xbc <0x41> \xf0\x9f\x98\x80!";

static int fuzz_one(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    l2tok *t = l2tok_load(path);
    tok_seq ts = {0};
    l2tok_encode(t, text, sizeof text - 1, 1, 1, &ts);
    bytebuf out = {0};
    l2tok_decode(t, ts.ids, ts.n, 0, &out);
    l2tok_decode(t, ts.ids, ts.n, 1, &out);
    for (int32_t k = -1; k < l2tok_ntokens(t) && k < 300; k++) l2tok_piece(t, 1, k, &out);
    free(out.p);
    tok_seq_free(&ts);
    l2tok_free(t);
    return 0;
}

FUZZ_MAIN
