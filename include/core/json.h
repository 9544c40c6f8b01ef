/* json: a small DOM parser for the JSON entk reads (safetensors headers, config.json,
 * tokenizer.json). Strings are decoded to UTF-8 (\u escapes, surrogate pairs); all nodes live in
 * one arena freed by json_free. */
#ifndef ENTK_JSON_H
#define ENTK_JSON_H
#include <stddef.h>
#include <stdint.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ } json_type;

typedef struct json {
    json_type type;
    int is_int;            /* JSON_NUM written without fraction or exponent */
    int64_t i;             /* its value when is_int */
    double num;            /* JSON_NUM; JSON_BOOL as 0/1 */
    char *s;               /* JSON_STR: NUL-terminated (may contain NUL: use len) */
    size_t len;            /* JSON_STR bytes; JSON_ARR/JSON_OBJ item count */
    struct json *items;    /* JSON_ARR / JSON_OBJ values */
    char **keys;           /* JSON_OBJ keys, NUL-terminated */
    size_t *keylens;
    void *arena;           /* root only */
} json;

/* Parses text; on failure returns NULL and puts "line L col C: what" in err. */
json *json_parse(const char *text, size_t n, char *err, size_t errn);
void json_free(json *root);
const json *json_get(const json *obj, const char *key);     /* NULL if absent or obj not an object */
/* Typed lookups: 1 if key exists with that type. */
int json_get_int(const json *obj, const char *key, int64_t *out);
const char *json_get_str(const json *obj, const char *key);
/* Appends s to buf as a JSON string literal (with quotes). */
void json_quote(char **buf, size_t *len, size_t *cap, const char *s);
#endif
