/* Fuzz harness: llama2.c tokenizer.bin, both readers (text/llama2tok.c for entk-tokenize,
 * lm/llama2.c's llama2_vocab for generation): load, encode, decode. */
#include "fuzz.h"
#include "lm/llama2.h"
#include "text/llama2tok.h"

static void fuzz_cleanup(void) {}

static const char text[] = "Once upon a time, a  little\tgirl\nsaw \xc3\xbc <0x41> \xf0\x9f\x98\x80!";

static int fuzz_one(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    llama2_vocab *v = llama2_vocab_load(path);
    char buf[64];
    for (int t = -1; t < v->n && t < 300; t++) llama2_decode(v, 1, t, buf, sizeof buf);
    llama2_vocab_free(v);
    l2tok *t = l2tok_load(path);
    tok_seq ts = {0};
    l2tok_encode(t, text, sizeof text - 1, 1, 1, &ts);
    bytebuf out = {0};
    l2tok_decode(t, ts.ids, ts.n, 0, &out);
    l2tok_decode(t, ts.ids, ts.n, 1, &out);
    free(out.p);
    tok_seq_free(&ts);
    l2tok_free(t);
    return 0;
}

FUZZ_MAIN
