/* Fuzz harness: Gemma 3 config.json parsing (lm/gemma3.c, gemma3_parse_config). */
#include "fuzz.h"
#include "core/json.h"
#include "lm/gemma3.h"

static void fuzz_cleanup(void) {}

static int fuzz_one(const uint8_t *data, size_t size) {
    char err[256];
    json *root = json_parse((const char *)data, size, err, sizeof err);
    if (!root) return 0;
    lm_model m;
    gemma3_config g;
    gemma3_parse_config(root, "config.json", &m, &g);
    json_free(root);
    return 0;
}

FUZZ_MAIN
