#include "core/outfile.h"
#include "core/err.h"
#include "core/tmpfiles.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    o->tmp = tmp_name(path);
    tmp_sweep_dir_of(path);       /* what killed runs (kill -9) left here */
    tmp_register(o->tmp);         /* before it exists: no moment when a signal would leave it */
    o->fp = fopen(o->tmp, "wb");
    if (!o->fp) entk_die(ENTK_EXIT_FAIL, "cannot create %s: %s", o->tmp, strerror(errno));
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
    tmp_release(o->tmp);
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
