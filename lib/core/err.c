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

static void vlog(const char *fmt, va_list ap) {
    if (progress_open) { fputc('\n', stderr); progress_open = 0; }
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void entk_log(const char *fmt, ...) {
    if (entk_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void entk_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

double entk_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "12 s", "4.5 min", "2.1 h": an estimate needs no more digits */
static void span(double s, char *buf, size_t n) {
    if (s < 90) snprintf(buf, n, "%.0f s", s);
    else if (s < 5400) snprintf(buf, n, "%.1f min", s / 60);
    else snprintf(buf, n, "%.1f h", s / 3600);
}

void entk_progress(const char *what, long done, long total) {
    static double last, start;
    static long first = -1;
    static char current[96];
    if (entk_quiet) return;
    double t = entk_now();
    /* a new piece of work (another `what`, or a count that starts again) starts the clock */
    if (strncmp(current, what, sizeof current - 1) != 0 || done < first) {
        snprintf(current, sizeof current, "%s", what);
        start = t;
        first = done;
    }
    if (done != total && t - last < 1.0) return;
    last = t;
    char of[32] = "", eta[48] = "";
    if (total >= 0) snprintf(of, sizeof of, "/%ld", total);
    /* the remaining time at the pace so far, once there is a pace to go by */
    if (total > 0 && done > first && done < total && t - start > 2) {
        char s[24];
        span((t - start) / (double)(done - first) * (double)(total - done), s, sizeof s);
        snprintf(eta, sizeof eta, ", about %s left", s);
    }
    if (isatty(2)) {
        fprintf(stderr, "\r%s: %s %ld%s%s   ", prog, what, done, of, eta);
        progress_open = 1;
    } else {
        fprintf(stderr, "%s: %s %ld%s%s\n", prog, what, done, of, eta);
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
