/* Fuzz harness: Hugging Face tokenizer.json (lib/text/bpe*.c): compile, then encode and decode a text. */
#include "fuzz.h"
#include "text/bpe.h"

static void fuzz_cleanup(void) {}

static const char text[] = "Once upon a time, <bos>a  little\tgirl\nsaw \xc3\xbc\xe2\x96\x81 \xf0\x9f\x98\x80 <unk>!";

static int fuzz_one(const uint8_t *data, size_t size) {
    bpe *b = bpe_load(fuzz_file(data, size), NULL);
    tok_seq ts = {0};
    bpe_encode(b, text, sizeof text - 1, 1, &ts);
    bytebuf out = {0};
    bpe_decode(b, ts.ids, ts.n, 0, &out);
    bpe_decode(b, ts.ids, ts.n, 1, &out);
    int32_t ids[4] = {0, 1, bpe_ntokens(b) - 1, bpe_ntokens(b) / 2};
    bpe_decode(b, ids, 4, 0, &out);
    free(out.p);
    tok_seq_free(&ts);
    bpe_free(b);
    return 0;
}

FUZZ_MAIN
