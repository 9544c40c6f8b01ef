/* Fuzz harness: CoNLL-U treebanks (text/conllu.c). */
#include "fuzz.h"
#include "text/conllu.h"

static void fuzz_cleanup(void) {}

static int fuzz_one(const uint8_t *data, size_t size) {
    conllu_file f;
    conllu_read(&f, fuzz_file(data, size));
    conllu_has_feats(&f);
    conllu_free(&f);
    return 0;
}

FUZZ_MAIN
