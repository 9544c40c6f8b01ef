/* err: exit codes, one-line errors, logging and progress lines on stderr.
 *
 * Every entk program exits with one of these codes; README.md "Exit codes" is the
 * user-facing copy of this table. */
#ifndef ENTK_ERR_H
#define ENTK_ERR_H
#include <stddef.h>
#include <stdnoreturn.h>

enum {
    ENTK_EXIT_OK = 0,      /* success */
    ENTK_EXIT_FAIL = 1,    /* runtime failure: I/O, memory, a numeric routine failed */
    ENTK_EXIT_USAGE = 2,   /* bad command line: unknown option, bad value, missing argument */
    ENTK_EXIT_INPUT = 3,   /* bad input data: corrupt/truncated frames, wrong dtype or shape, bad model file */
};

void entk_init(const char *argv0);          /* sets the program name used in messages */
const char *entk_prog(void);
extern int entk_quiet;                       /* -q: silence entk_log and progress */

/* Prints "prog: error: <message>" as one line, runs the exit hooks (temporary outputs are removed)
 * and exits with code. */
noreturn void entk_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void entk_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like entk_log, but said also under -q: for what a pipeline must not miss (a repaired cache). */
void entk_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A progress line that rewrites itself on a terminal and is rate-limited to about 1/s otherwise;
 * total < 0 when the total is not known. With a total, after a couple of seconds it adds the time
 * left at the pace so far ("about 3.5 min left"). */
void entk_progress(const char *what, long done, long total);
void entk_progress_end(void);

#ifdef ENTK_FUZZ
#include <setjmp.h>
/* Fuzz builds only (make fuzz, tests/fuzz): entk_die runs its hooks and then longjmps to jb with
 * the exit code instead of exiting, so a harness survives bad input; quiet drops the message.
 * NULL restores exiting. The normal build has no way to continue after entk_die. */
void entk_die_jump(jmp_buf *jb, int quiet);
#endif

/* Called by entk_die before exiting, most recent first (at most 16). */
void entk_on_die(void (*fn)(void *), void *arg);
void entk_off_die(void (*fn)(void *), void *arg);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
double entk_now(void);                       /* monotonic seconds */
#endif
