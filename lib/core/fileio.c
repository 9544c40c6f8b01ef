#include "core/fileio.h"
#include "core/err.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

char *read_file(const char *path, size_t *n) {
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) entk_die(ENTK_EXIT_INPUT, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0) buf = xrealloc(buf, cap *= 2);
    }
    if (ferror(f)) entk_die(ENTK_EXIT_INPUT, "reading %s: %s", name, strerror(errno));
    if (!is_stdin) fclose(f);
    buf[len] = 0;
    if (n) *n = len;
    return buf;
}
