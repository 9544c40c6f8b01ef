#include "core/cachefs.h"
#include "core/tmpfiles.h"
#include "core/cache.h"
#include "core/err.h"
#include "core/frame.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return s[n] == 0;
}

/* One descriptor field ("name\tvalue\n") copied into out. */
static void desc_field(const char *desc, const char *name, char *out, size_t n) {
    out[0] = 0;
    size_t k = strlen(name);
    for (const char *p = desc; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, k) == 0 && p[k] == '\t') {
            const char *v = p + k + 1, *e = strchr(v, '\n');
            size_t m = e ? (size_t)(e - v) : strlen(v);
            if (m >= n) m = n - 1;
            memcpy(out, v, m);
            out[m] = 0;
            return;
        }
}

/* The header and descriptor of the entry at e->path, without its payload (ls must be cheap). */
static void read_desc(cachefs_entry *e) {
    FILE *f = fopen(e->path, "rb");
    unsigned char h[CACHE_HDR];
    if (!f || fread(h, 1, CACHE_HDR, f) != CACHE_HDR || memcmp(h, CACHE_MAGIC, 8) != 0) {
        snprintf(e->what, sizeof e->what, "(not an entry of this entk)");
        if (f) fclose(f);
        return;
    }
    uint64_t nd = 0;
    for (int i = 0; i < 8; i++) nd |= (uint64_t)h[40 + i] << (8 * i);
    if (nd > CACHE_DESC_MAX) nd = 0;
    char *desc = xcalloc(nd + 1, 1);
    if (fread(desc, 1, nd, f) != nd) desc[0] = 0;
    fclose(f);
    char created[32];
    desc_field(desc, "producer", e->producer, sizeof e->producer);
    desc_field(desc, "what", e->what, sizeof e->what);
    desc_field(desc, "from", e->from, sizeof e->from);
    desc_field(desc, "created", created, sizeof created);
    e->created = atoll(created);
    free(desc);
}

/* Checks an entry whole, as a hit would: header, authenticator, and a payload of whole frames with
 * their checksums where the descriptor says it holds frames (blocks, Grams) or a key (hints). */
static void verify(const char *dir, cachefs_entry *e) {
    cache_raw r;
    char why[256];
    int rc = cache_read_entry(e->path, dir, e->key, &r, why, sizeof why);
    if (rc != 0) {
        snprintf(e->bad, sizeof e->bad, "%s", why);
        return;
    }
    if (strncmp(e->what, "hint", 4) == 0) {
        char hex[33] = "";
        if (r.n == 32) memcpy(hex, r.data, 32);
        if (!key_valid(hex)) snprintf(e->bad, sizeof e->bad, "hint does not hold a key");
    } else if (strncmp(e->what, "jacobian block", 14) == 0 || strncmp(e->what, "gram", 4) == 0) {
        size_t off = 0;
        while (off < r.n) {
            packed_frame v;
            int ok = frame_packed_next(r.data, r.n, &off, &v, why, sizeof why);
            packed_frame_free(&v);
            if (!ok) { snprintf(e->bad, sizeof e->bad, "payload: %s", why); break; }
        }
    }
    cache_raw_free(&r);
}

static int by_use(const void *a, const void *b) {
    const cachefs_entry *x = a, *y = b;
    return x->used < y->used ? -1 : x->used > y->used ? 1 : strcmp(x->key, y->key);
}

cachefs_entry *cachefs_list(const char *dir, int verify_all, long *n) {
    *n = 0;
    long cap = 0;
    cachefs_entry *out = NULL;
    size_t nb = strlen(dir) + 64;
    char *obj = xmalloc(nb);
    snprintf(obj, nb, "%s/objects", dir);
    DIR *top = opendir(obj);
    if (!top) { free(obj); return NULL; }
    struct dirent *d1, *d2;
    while ((d1 = readdir(top))) {
        if (strlen(d1->d_name) != 2 || !is_hex(d1->d_name, 2)) continue;
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/%s", obj, d1->d_name);
        DIR *fan = opendir(sub);
        if (!fan) continue;
        while ((d2 = readdir(fan))) {
            if (strlen(d2->d_name) != 30 || !is_hex(d2->d_name, 30)) continue; /* temporary files are litter, not entries */
            if (*n == cap) out = xrealloc(out, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *out);
            cachefs_entry *e = &out[*n];
            memset(e, 0, sizeof *e);
            snprintf(e->key, sizeof e->key, "%s%s", d1->d_name, d2->d_name);
            snprintf(e->path, sizeof e->path, "%s/%s", sub, d2->d_name);
            struct stat sb;
            if (stat(e->path, &sb) != 0) continue;
            e->size = (uint64_t)sb.st_size;
            e->used = (int64_t)sb.st_mtime;
            read_desc(e);
            if (verify_all) verify(dir, e);
            (*n)++;
        }
        closedir(fan);
    }
    closedir(top);
    free(obj);
    if (*n) qsort(out, (size_t)*n, sizeof *out, by_use);
    return out;
}

int cachefs_remove(const cachefs_entry *e) { return unlink(e->path); }

static long litter_in(const char *path, int dry_run, uint64_t *bytes, int *empty) {
    DIR *d = opendir(path);
    long found = 0, left = 0;
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        char f[4200];
        snprintf(f, sizeof f, "%s/%s", path, de->d_name);
        struct stat sb;
        if (tmp_dead(de->d_name) && lstat(f, &sb) == 0 && S_ISREG(sb.st_mode)) {
            found++;
            *bytes += (uint64_t)sb.st_size;
            if (dry_run || unlink(f) == 0) continue; /* gone, or would be: not left in the directory */
        }
        left++;
    }
    closedir(d);
    if (empty) *empty = left == 0;
    return found;
}

long cachefs_litter(const char *dir, int dry_run, uint64_t *bytes) {
    long found = litter_in(dir, dry_run, bytes, NULL); /* the secret's temporary */
    size_t nb = strlen(dir) + 64;
    char *obj = xmalloc(nb);
    snprintf(obj, nb, "%s/tmp", dir); /* entries' temporaries (cache.c) */
    found += litter_in(obj, dry_run, bytes, NULL);
    snprintf(obj, nb, "%s/objects", dir);
    DIR *top = opendir(obj);
    struct dirent *d1;
    while (top && (d1 = readdir(top))) {
        if (strlen(d1->d_name) != 2 || !is_hex(d1->d_name, 2)) continue;
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/%s", obj, d1->d_name);
        int empty = 0;
        found += litter_in(sub, dry_run, bytes, &empty);
        if (empty) { /* an empty fan-out directory: litter too (a concurrent store recreates it) */
            found++;
            if (!dry_run) rmdir(sub);
        }
    }
    if (top) closedir(top);
    free(obj);
    return found;
}

static int64_t parse_scaled(const char *s, const char *units, const int64_t *mult) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) return -1;
    int64_t m = 1;
    if (*end) {
        const char *u = strchr(units, tolower((unsigned char)*end));
        if (!u || end[1]) return -1;
        m = mult[u - units];
    }
    return (int64_t)(v * (double)m);
}

int64_t cachefs_parse_size(const char *s) {
    static const int64_t m[] = {1, 1024, 1L << 20, 1L << 30, 1LL << 40};
    return parse_scaled(s, "bkmgt", m);
}

int64_t cachefs_parse_age(const char *s) {
    static const int64_t m[] = {1, 60, 3600, 86400, 7 * 86400};
    return parse_scaled(s, "smhdw", m);
}

void cachefs_human_size(uint64_t b, char *out, int n) {
    const char *u = "BKMGT";
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) v /= 1024, i++;
    if (i == 0) snprintf(out, (size_t)n, "%lluB", (unsigned long long)b);
    else snprintf(out, (size_t)n, v < 10 ? "%.1f%c" : "%.0f%c", v, u[i]);
}

void cachefs_human_age(int64_t s, char *out, int n) {
    if (s < 0) s = 0;
    if (s < 120) snprintf(out, (size_t)n, "%llds", (long long)s);
    else if (s < 7200) snprintf(out, (size_t)n, "%lldm", (long long)(s / 60));
    else if (s < 2 * 86400) snprintf(out, (size_t)n, "%lldh", (long long)(s / 3600));
    else snprintf(out, (size_t)n, "%lldd", (long long)(s / 86400));
}
