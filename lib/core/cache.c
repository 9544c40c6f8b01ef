#include "core/cache.h"
#include "core/err.h"
#include "core/tmpfiles.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;
static long hits, misses, corrupt, stored;

#define MAGIC "ENTKCAC1"
#define HDR (8 + 32 + 8 + 16)

void cache_init(const char *dir_option) {
    const char *d = dir_option;
    if (!d || !*d) d = getenv("ENTK_CACHE_DIR");
    if (d && strcmp(d, "off") == 0) { dir = NULL; return; }
    if (d && *d) {
        dir = xstrdup(d);
    } else {
        const char *home = getenv("HOME");
        size_t n = strlen(home ? home : "/tmp") + 32;
        dir = xmalloc(n);
        snprintf(dir, n, "%s/.cache/entk", home ? home : "/tmp");
    }
}

int cache_enabled(void) { return dir != NULL; }
const char *cache_dir(void) { return dir ? dir : "off"; }

static void mkdirs(const char *path) {
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') { *s = 0; mkdir(p, 0777); *s = '/'; }
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        entk_die(ENTK_EXIT_FAIL, "cannot create cache directory %s: %s", p, strerror(errno));
    free(p);
}

static char *entry_path(const entk_key *key, int make_dir) {
    size_t n = strlen(dir) + 64;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/objects/%.2s", dir, key->hex);
    if (make_dir) mkdirs(p);
    snprintf(p, n, "%s/objects/%.2s/%s", dir, key->hex, key->hex + 2);
    return p;
}

static void put_u64(unsigned char *b, uint64_t v) { for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i)); }
static uint64_t get_u64(const unsigned char *b) { uint64_t v = 0; for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i); return v; }

int cache_get(const entk_key *key, void **data, size_t *n) {
    if (!dir) return 0;
    char *path = entry_path(key, 0);
    FILE *f = fopen(path, "rb");
    if (!f) { misses++; free(path); return 0; }
    unsigned char h[HDR];
    const char *why = NULL;
    unsigned char *buf = NULL;
    uint64_t len = 0;
    if (fread(h, 1, HDR, f) != HDR) why = "short header";
    else if (memcmp(h, MAGIC, 8) != 0) why = "bad magic";
    else if (memcmp(h + 8, key->hex, 32) != 0) why = "key mismatch";
    else {
        len = get_u64(h + 40);
        struct stat sb;
        if (fstat(fileno(f), &sb) != 0 || (uint64_t)sb.st_size != HDR + len) why = "length mismatch";
        else {
            buf = xmalloc(len ? len : 1);
            if (fread(buf, 1, len, f) != len) why = "short payload";
            else {
                XXH128_canonical_t c;
                XXH128_canonicalFromHash(&c, XXH3_128bits(buf, len));
                if (memcmp(c.digest, h + 48, 16) != 0) why = "checksum mismatch";
            }
        }
    }
    fclose(f);
    if (why) {
        entk_log("cache: corrupt entry %s (%s): removed, recomputing", path, why);
        unlink(path);
        free(buf);
        free(path);
        corrupt++;
        misses++;
        return 0;
    }
    free(path);
    hits++;
    *data = buf;
    *n = len;
    return 1;
}

void cache_put(const entk_key *key, const void *data, size_t n) {
    if (!dir) return;
    char *path = entry_path(key, 1);
    /* temporaries go to DIR/tmp, one directory to sweep for what killed runs left behind */
    size_t tl = strlen(dir) + 64;
    char *tdir = xmalloc(tl), *tpath = xmalloc(tl);
    snprintf(tdir, tl, "%s/tmp", dir);
    mkdirs(tdir);
    tmp_sweep(tdir);
    snprintf(tpath, tl, "%s/%s", tdir, key->hex);
    char *tmp = tmp_name(tpath);
    free(tdir);
    free(tpath);
    tmp_register(tmp);
    unsigned char h[HDR];
    memcpy(h, MAGIC, 8);
    memcpy(h + 8, key->hex, 32);
    put_u64(h + 40, n);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(data, n));
    memcpy(h + 48, c.digest, 16);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(h, 1, HDR, f) == HDR && fwrite(data, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    /* a cache that cannot be written is a lost speed-up, not a wrong result: warn and go on */
    if (!ok || rename(tmp, path) != 0) {
        entk_log("cache: cannot store %s: %s", path, strerror(errno));
        unlink(tmp);
    } else {
        stored++;
    }
    tmp_release(tmp);
    free(tmp);
    free(path);
}

void cache_report(void) {
    if (!dir) return;
    if (corrupt)
        entk_log("cache: %ld hits, %ld misses (%ld corrupt entries replaced), %ld stored in %s", hits, misses, corrupt, stored, dir);
    else
        entk_log("cache: %ld hits, %ld misses, %ld stored in %s", hits, misses, stored, dir);
}
