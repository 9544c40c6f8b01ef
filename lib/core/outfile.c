#include "core/outfile.h"
#include "core/err.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void remove_tmp(void *arg) {
    outfile *o = arg;
    if (o->tmp) unlink(o->tmp);
}

void outfile_open(outfile *o, const char *path) {
    memset(o, 0, sizeof *o);
    if (!path || strcmp(path, "-") == 0) {
        o->fp = stdout;
        return;
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        /* a device or pipe (/dev/null, a fifo): write straight into it; renaming a temporary
         * over it would replace the device node with a plain file */
        o->fp = fopen(path, "wb");
        if (!o->fp) entk_die(ENTK_EXIT_FAIL, "cannot open %s: %s", path, strerror(errno));
        o->special = 1;
        return;
    }
    o->path = xstrdup(path);
    size_t n = strlen(path) + 32;
    o->tmp = xmalloc(n);
    snprintf(o->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    o->fp = fopen(o->tmp, "wb");
    if (!o->fp) entk_die(ENTK_EXIT_FAIL, "cannot create %s: %s", o->tmp, strerror(errno));
    entk_on_die(remove_tmp, o);
}

void outfile_commit(outfile *o) {
    if (o->special) {
        if (fclose(o->fp) != 0) entk_die(ENTK_EXIT_FAIL, "writing output: %s", strerror(errno));
        o->fp = NULL;
        return;
    }
    if (!o->path) {
        if (fflush(stdout) != 0 || ferror(stdout))
            entk_die(ENTK_EXIT_FAIL, "writing stdout: %s", strerror(errno));
        return;
    }
    if (fflush(o->fp) != 0 || ferror(o->fp) || fsync(fileno(o->fp)) != 0)
        entk_die(ENTK_EXIT_FAIL, "writing %s: %s", o->tmp, strerror(errno));
    if (fclose(o->fp) != 0) entk_die(ENTK_EXIT_FAIL, "closing %s: %s", o->tmp, strerror(errno));
    o->fp = NULL;
    if (rename(o->tmp, o->path) != 0)
        entk_die(ENTK_EXIT_FAIL, "renaming %s to %s: %s", o->tmp, o->path, strerror(errno));
    entk_off_die(remove_tmp, o);
    free(o->tmp);
    free(o->path);
    o->tmp = o->path = NULL;
}

void outfile_write_all(const char *path, const void *buf, size_t n) {
    outfile o;
    outfile_open(&o, path);
    if (fwrite(buf, 1, n, o.fp) != n) entk_die(ENTK_EXIT_FAIL, "writing %s: %s", path, strerror(errno));
    outfile_commit(&o);
}
