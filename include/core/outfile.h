/* outfile: outputs that appear complete or not at all.
 *
 * A named output is written to "<path>.tmp.<host>.<pid>" and renamed over <path> only by
 * outfile_commit; if the program dies first or is ended by a signal, the temporary is removed
 * (tmpfiles.h), so make never sees a half-written target. "-" or NULL means stdout; an existing non-regular file (/dev/null, a fifo)
 * is written in place. */
#ifndef ENTK_OUTFILE_H
#define ENTK_OUTFILE_H
#include <stdio.h>

typedef struct {
    FILE *fp;
    char *path;   /* final name, NULL for stdout */
    char *tmp;    /* temporary name while open */
    int special;  /* an existing device or fifo, written in place */
} outfile;

void outfile_open(outfile *o, const char *path);
void outfile_commit(outfile *o);     /* flush, fsync, rename; dies on any failure */
/* Writes buf to path atomically in one go. */
void outfile_write_all(const char *path, const void *buf, size_t n);
#endif
