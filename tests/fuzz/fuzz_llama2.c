/* Fuzz harness: llama2.c checkpoints (lm/llama2.c, llama2_load). */
#include "fuzz.h"
#include "lm/llama2.h"

static void fuzz_cleanup(void) {}

static int fuzz_one(const uint8_t *data, size_t size) {
    lm_model *m = llama2_load(fuzz_file(data, size));
    lm_free(m);
    return 0;
}

FUZZ_MAIN
