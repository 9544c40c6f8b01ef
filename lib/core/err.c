#include "core/err.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "entk";
int entk_quiet = 0;

static struct { void (*fn)(void *); void *arg; } hooks[16];
static int nhooks;

void entk_init(const char *argv0) {
    const char *s = strrchr(argv0, '/');
    prog = s ? s + 1 : argv0;
}

const char *entk_prog(void) { return prog; }

void entk_on_die(void (*fn)(void *), void *arg) {
    if (nhooks < 16) { hooks[nhooks].fn = fn; hooks[nhooks].arg = arg; nhooks++; }
}

void entk_off_die(void (*fn)(void *), void *arg) {
    for (int i = nhooks - 1; i >= 0; i--)
        if (hooks[i].fn == fn && hooks[i].arg == arg) {
            memmove(&hooks[i], &hooks[i + 1], (size_t)(nhooks - i - 1) * sizeof hooks[0]);
            nhooks--;
            return;
        }
}

static int progress_open;

#ifdef ENTK_FUZZ
static jmp_buf *die_jump;
static int die_quiet;
void entk_die_jump(jmp_buf *jb, int quiet) {
    die_jump = jb;
    die_quiet = quiet;
}
#endif

void entk_die(int code, const char *fmt, ...) {
#ifdef ENTK_FUZZ
    if (die_jump && die_quiet) {
        while (nhooks > 0) { nhooks--; hooks[nhooks].fn(hooks[nhooks].arg); }
        longjmp(*die_jump, code ? code : 1);
    }
#endif
    if (progress_open) fputc('\n', stderr);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one line, whatever the message contained */
    for (char *p = msg; *p; p++) if (*p == '\n' || *p == '\r') *p = ' ';
    fprintf(stderr, "%s: error: %s\n", prog, msg);
    while (nhooks > 0) { nhooks--; hooks[nhooks].fn(hooks[nhooks].arg); }
#ifdef ENTK_FUZZ
    if (die_jump) longjmp(*die_jump, code ? code : 1);
#endif
    exit(code);
}

void entk_log(const char *fmt, ...) {
    if (entk_quiet) return;
    if (progress_open) { fputc('\n', stderr); progress_open = 0; }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

double entk_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void entk_progress(const char *what, long done, long total) {
    static double last;
    if (entk_quiet) return;
    double t = entk_now();
    if (done != total && t - last < 1.0) return;
    last = t;
    char of[32] = "";
    if (total >= 0) snprintf(of, sizeof of, "/%ld", total);
    if (isatty(2)) {
        fprintf(stderr, "\r%s: %s %ld%s", prog, what, done, of);
        progress_open = 1;
    } else {
        fprintf(stderr, "%s: %s %ld%s\n", prog, what, done, of);
    }
}

void entk_progress_end(void) {
    if (progress_open) { fputc('\n', stderr); progress_open = 0; }
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) entk_die(ENTK_EXIT_FAIL, "out of memory allocating %zu bytes", n);
    return p;
}
void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) entk_die(ENTK_EXIT_FAIL, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}
void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) entk_die(ENTK_EXIT_FAIL, "out of memory reallocating %zu bytes", n);
    return p;
}
char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}
