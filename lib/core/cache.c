#include "core/cache.h"
#include "core/err.h"
#include "core/tmpfiles.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *dir;
static long hits, misses, refused, stored;
static unsigned char secret[CACHE_SECRET_BYTES];
static int have_secret;

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

static int read_secret(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t got = read(fd, secret, sizeof secret);
    close(fd);
    return got == (ssize_t)sizeof secret;
}

/* The cache's secret: read, or made once (192 bytes from getrandom, mode 0600). Several processes
 * may start on a new cache at once: each writes its own temporary file and link()s it into place,
 * which fails for all but the first; the others read the winner's. */
const unsigned char *cache_secret(const char *cdir) {
    if (have_secret) return secret;
    size_t n = strlen(cdir) + 64;
    char *path = xmalloc(n), *tmp = xmalloc(n);
    snprintf(path, n, "%s/secret", cdir);
    if (!read_secret(path)) {
        mkdirs(cdir);
        unsigned char fresh[CACHE_SECRET_BYTES];
        if (getrandom(fresh, sizeof fresh, 0) != (ssize_t)sizeof fresh)
            entk_die(ENTK_EXIT_FAIL, "cache: cannot draw a secret: %s", strerror(errno));
        snprintf(tmp, n, "%s/secret.tmp.%ld", cdir, (long)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int ok = fd >= 0 && write(fd, fresh, sizeof fresh) == (ssize_t)sizeof fresh && fsync(fd) == 0;
        if (fd >= 0 && close(fd) != 0) ok = 0;
        if (ok && link(tmp, path) != 0 && errno != EEXIST) ok = 0;
        unlink(tmp);
        if (!ok || !read_secret(path))
            entk_die(ENTK_EXIT_FAIL, "cache: cannot create or read %s (remove it if it is damaged: the cache is then rebuilt)", path);
    }
    free(path);
    free(tmp);
    have_secret = 1;
    return secret;
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

/* The authenticator of an entry: XXH3-128 keyed with the secret over the key and both lengths (the
 * header bytes 8..56), the descriptor and the payload. */
static void entry_mac(const unsigned char *sec, const unsigned char *h, const void *desc, size_t nd, const void *data,
                      size_t n, unsigned char out[16]) {
    XXH3_state_t *st = XXH3_createState();
    if (!st) entk_die(ENTK_EXIT_FAIL, "out of memory (hash state)");
    XXH3_128bits_reset_withSecret(st, sec, CACHE_SECRET_BYTES);
    XXH3_128bits_update(st, h + 8, 48);
    XXH3_128bits_update(st, desc, nd);
    XXH3_128bits_update(st, data, n);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
    XXH3_freeState(st);
    memcpy(out, c.digest, 16);
}

int cache_read_entry(const char *path, const char *cdir, const char *key_hex, cache_raw *e, char *why, size_t nwhy) {
    memset(e, 0, sizeof *e);
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(why, nwhy, "cannot open: %s", strerror(errno)); return -1; }
    unsigned char h[CACHE_HDR];
    const char *bad = NULL;
    struct stat sb;
    if (fread(h, 1, CACHE_HDR, f) != CACHE_HDR) bad = "short header";
    else if (memcmp(h, CACHE_MAGIC, 8) != 0) bad = "bad magic (not an entry of this entk)";
    else if (key_hex && memcmp(h + 8, key_hex, 32) != 0) bad = "stored under another key";
    else if (fstat(fileno(f), &sb) != 0) bad = "cannot stat";
    else {
        e->ndesc = get_u64(h + 40);
        e->n = get_u64(h + 48);
        if (e->ndesc > CACHE_DESC_MAX || (uint64_t)sb.st_size != CACHE_HDR + e->ndesc + e->n) bad = "length mismatch";
    }
    if (!bad) {
        memcpy(e->key, h + 8, 32);
        e->desc = xmalloc(e->ndesc + 1);
        e->data = xmalloc(e->n ? e->n : 1);
        unsigned char mac[16];
        if (fread(e->desc, 1, e->ndesc, f) != e->ndesc || fread(e->data, 1, e->n, f) != e->n) bad = "short payload";
        else {
            e->desc[e->ndesc] = 0;
            entry_mac(cache_secret(cdir), h, e->desc, e->ndesc, e->data, e->n, mac);
            if (memcmp(mac, h + 56, 16) != 0) bad = "authenticator mismatch (corrupt, or not written by this cache)";
        }
    }
    fclose(f);
    if (!bad) return 0;
    snprintf(why, nwhy, "%s", bad);
    cache_raw_free(e);
    return 1;
}

void cache_raw_free(cache_raw *e) {
    free(e->desc);
    free(e->data);
    e->desc = NULL;
    e->data = NULL;
}

static int lookup(const entk_key *key, cache_check_fn check, const void *arg, void **data, size_t *n, long *hit, long *miss) {
    if (!dir) return 0;
    char *path = entry_path(key, 0);
    if (access(path, F_OK) != 0) { (*miss)++; free(path); return 0; }
    cache_raw e;
    char why[256];
    int rc = cache_read_entry(path, dir, key->hex, &e, why, sizeof why);
    if (rc == 0 && check && !check(e.data, e.n, arg, why, sizeof why)) {
        cache_raw_free(&e);
        rc = 1;
    }
    if (rc != 0) {
        /* always said, also under -q: a run that silently repairs its cache hides a real problem */
        entk_warn("cache: refused entry %s (%s): removed, recomputing", path, why);
        unlink(path);
        free(path);
        refused++;
        (*miss)++;
        return 0;
    }
    utimensat(AT_FDCWD, path, NULL, 0); /* last used: gc trims least recently used first */
    free(path);
    free(e.desc);
    (*hit)++;
    *data = e.data;
    *n = e.n;
    return 1;
}

int cache_get(const entk_key *key, cache_check_fn check, const void *arg, void **data, size_t *n) {
    return lookup(key, check, arg, data, n, &hits, &misses);
}

int cache_get_hint(const entk_key *key, cache_check_fn check, const void *arg, void **data, size_t *n) {
    long uncounted = 0;
    return lookup(key, check, arg, data, n, &uncounted, &uncounted);
}

/* The descriptor: "producer\t...\nwhat\t...\nfrom\t...\ncreated\t<unix seconds>\n" */
static char *make_desc(const cache_desc *d, size_t *nd) {
    const char *w = d && d->what ? d->what : "", *f = d && d->from ? d->from : "";
    size_t n = strlen(entk_prog()) + strlen(w) + strlen(f) + 96;
    char *s = xmalloc(n);
    *nd = (size_t)snprintf(s, n, "producer\t%s\nwhat\t%s\nfrom\t%s\ncreated\t%lld\n", entk_prog(), w, f, (long long)time(NULL));
    if (*nd > CACHE_DESC_MAX) *nd = CACHE_DESC_MAX;
    return s;
}

static void store(const entk_key *key, const cache_desc *d, const void *data, size_t n, long *count) {
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
    size_t nd;
    char *desc = make_desc(d, &nd);
    unsigned char h[CACHE_HDR];
    memcpy(h, CACHE_MAGIC, 8);
    memcpy(h + 8, key->hex, 32);
    put_u64(h + 40, nd);
    put_u64(h + 48, n);
    entry_mac(cache_secret(dir), h, desc, nd, data, n, h + 56);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(h, 1, CACHE_HDR, f) == CACHE_HDR && fwrite(desc, 1, nd, f) == nd && fwrite(data, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    if (ok && rename(tmp, path) != 0 && errno == ENOENT) /* a concurrent `entk-cache gc` removed the fan-out directory */
        free(entry_path(key, 1)), ok = rename(tmp, path) == 0;
    else if (ok && access(path, F_OK) != 0) ok = 0;
    /* a cache that cannot be written is a lost speed-up, not a wrong result: warn and go on */
    if (!ok) {
        entk_log("cache: cannot store %s: %s", path, strerror(errno));
        unlink(tmp);
    } else {
        (*count)++;
    }
    free(desc);
    tmp_release(tmp);
    free(tmp);
    free(path);
}

void cache_put(const entk_key *key, const cache_desc *d, const void *data, size_t n) { store(key, d, data, n, &stored); }

void cache_put_hint(const entk_key *key, const cache_desc *d, const void *data, size_t n) {
    long uncounted = 0;
    store(key, d, data, n, &uncounted);
}

int cache_has(const entk_key *key) {
    if (!dir) return 0;
    char *path = entry_path(key, 0);
    struct stat sb;
    int ok = stat(path, &sb) == 0;
    free(path);
    return ok;
}

void cache_remove(const entk_key *key) {
    if (!dir) return;
    char *path = entry_path(key, 0);
    unlink(path);
    free(path);
}

void cache_report(void) {
    if (!dir) return;
    if (refused)
        entk_warn("cache: %ld hits, %ld misses (%ld refused entries removed and recomputed), %ld stored in %s", hits, misses,
                  refused, stored, dir);
    else
        entk_log("cache: %ld hits, %ld misses, %ld stored in %s", hits, misses, stored, dir);
}
