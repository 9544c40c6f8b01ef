#include "core/hash.h"
#include "core/err.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

static entk_key key_from(XXH128_hash_t h) {
    entk_key k;
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    for (int i = 0; i < 16; i++) snprintf(k.hex + 2 * i, 3, "%02x", c.digest[i]);
    return k;
}

void keybuilder_init(keybuilder *kb, const char *domain) {
    kb->st = XXH3_createState();
    if (!kb->st) entk_die(ENTK_EXIT_FAIL, "out of memory (hash state)");
    XXH3_128bits_reset(kb->st);
    keybuilder_str(kb, "entk-key-v1");
    keybuilder_str(kb, domain);
}

void keybuilder_bytes(keybuilder *kb, const void *p, size_t n) { XXH3_128bits_update(kb->st, p, n); }

void keybuilder_i64(keybuilder *kb, int64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)v >> (8 * i));
    keybuilder_bytes(kb, b, 8);
}

void keybuilder_str(keybuilder *kb, const char *s) {
    size_t n = strlen(s);
    keybuilder_i64(kb, (int64_t)n);
    keybuilder_bytes(kb, s, n);
}

entk_key keybuilder_final(keybuilder *kb) {
    entk_key k = key_from(XXH3_128bits_digest(kb->st));
    XXH3_freeState(kb->st);
    kb->st = NULL;
    return k;
}

entk_key hash_bytes(const void *p, size_t n) { return key_from(XXH3_128bits(p, n)); }

uint64_t hash64(const void *p, size_t n) { return XXH3_64bits(p, n); }

entk_key hash_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) entk_die(ENTK_EXIT_INPUT, "cannot open %s: %s", path, strerror(errno));
    XXH3_state_t *st = XXH3_createState();
    XXH3_128bits_reset(st);
    static char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) XXH3_128bits_update(st, buf, n);
    if (ferror(f)) entk_die(ENTK_EXIT_FAIL, "reading %s: %s", path, strerror(errno));
    fclose(f);
    entk_key k = key_from(XXH3_128bits_digest(st));
    XXH3_freeState(st);
    return k;
}

int key_valid(const char *hex) {
    if (!hex || strlen(hex) != 32) return 0;
    for (int i = 0; i < 32; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'))) return 0;
    return 1;
}
