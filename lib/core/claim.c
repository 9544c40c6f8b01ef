#include "core/claim.h"
#include "core/cache.h"
#include "core/err.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void claim_path(const entk_key *key, char *p, size_t n) {
    snprintf(p, n, "%s/claims", cache_dir());
    for (char *s = p + 1; *s; s++) /* the cache directory may not exist yet */
        if (*s == '/') { *s = 0; mkdir(p, 0777); *s = '/'; }
    mkdir(p, 0777);
    snprintf(p, n, "%s/claims/%s", cache_dir(), key->hex);
}

/* Is the holder written in the claim file at path gone? */
static int holder_gone(const char *path) {
    char buf[300] = "", host[256] = "", me[256] = "";
    long pid = 0;
    struct stat sb;
    FILE *f = fopen(path, "r");
    if (!f || fstat(fileno(f), &sb) != 0) {
        if (f) fclose(f);
        return 0; /* vanished: the next attempt decides */
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (sscanf(buf, "%255s %ld", host, &pid) != 2) return time(NULL) - sb.st_mtime > 10; /* its writer died mid-write */
    gethostname(me, sizeof me - 1);
    if (strcmp(host, me) == 0) return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
    return time(NULL) - sb.st_mtime > CLAIM_STALE_SECONDS;
}

int claim_take(const entk_key *key) {
    if (!cache_enabled()) return 1;
    char path[4096], me[256] = "";
    claim_path(key, path, sizeof path);
    gethostname(me, sizeof me - 1);
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0) {
            char line[300];
            int n = snprintf(line, sizeof line, "%s %ld\n", me, (long)getpid());
            if (write(fd, line, (size_t)n) != n) { close(fd); unlink(path); entk_die(ENTK_EXIT_FAIL, "cannot write claim %s", path); }
            close(fd);
            return 1;
        }
        if (errno != EEXIST) entk_die(ENTK_EXIT_FAIL, "cannot create claim %s: %s", path, strerror(errno));
        if (!holder_gone(path)) return 0;
        unlink(path); /* a dead holder's: take it over (the O_EXCL retry settles a race between takers) */
    }
    return 0;
}

void claim_touch(const entk_key *key) {
    if (!cache_enabled()) return;
    char path[4096];
    claim_path(key, path, sizeof path);
    utimensat(AT_FDCWD, path, NULL, 0);
}

void claim_drop(const entk_key *key) {
    if (!cache_enabled()) return;
    char path[4096];
    claim_path(key, path, sizeof path);
    unlink(path);
}
