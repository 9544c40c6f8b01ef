/* hash: xxh3-128 content keys, as 32 lowercase hex digits.
 *
 * A key names everything that determines a result (weights, inputs, options, tool version), so
 * equal keys mean equal results and cache entries can be shared between runs and tools. */
#ifndef ENTK_HASH_H
#define ENTK_HASH_H
#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

typedef struct { char hex[33]; } entk_key;

typedef struct { XXH3_state_t *st; } keybuilder;

void keybuilder_init(keybuilder *kb, const char *domain);   /* domain separates kinds of keys */
void keybuilder_bytes(keybuilder *kb, const void *p, size_t n);
void keybuilder_str(keybuilder *kb, const char *s);         /* length-prefixed, so "ab"+"c" != "a"+"bc" */
void keybuilder_i64(keybuilder *kb, int64_t v);
entk_key keybuilder_final(keybuilder *kb);                  /* frees the state */

entk_key hash_bytes(const void *p, size_t n);
entk_key hash_file(const char *path);                       /* dies if unreadable */
uint64_t hash64(const void *p, size_t n);
int key_valid(const char *hex);                             /* 32 lowercase hex digits */
#endif
