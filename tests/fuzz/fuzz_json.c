/* Fuzz harness: the JSON parser (core/json.c) that reads safetensors headers, config.json and
 * tokenizer.json. It reports errors instead of dying; a document it accepts is walked. */
#include "fuzz.h"
#include "core/json.h"

static void fuzz_cleanup(void) {}

static void walk(const json *j, int depth) {
    if (depth > 600) abort();   /* the parser limits nesting to 512 */
    if (j->type == JSON_STR && strlen(j->s) > j->len) abort();
    if (j->type == JSON_ARR || j->type == JSON_OBJ)
        for (size_t i = 0; i < j->len; i++) {
            if (j->type == JSON_OBJ && json_get(j, j->keys[i]) == NULL) abort();
            walk(&j->items[i], depth + 1);
        }
}

static int fuzz_one(const uint8_t *data, size_t size) {
    char err[256];
    json *root = json_parse((const char *)data, size, err, sizeof err);
    if (!root) return 0;
    walk(root, 0);
    int64_t v;
    json_get_int(root, "id", &v);
    const char *s = json_get_str(root, "type");
    if (s) {
        size_t len = 0, cap = 8;
        char *q = xmalloc(cap);
        json_quote(&q, &len, &cap, s);
        free(q);
    }
    json_free(root);
    return 0;
}

FUZZ_MAIN
