/* cli: the option handling every entk filter shares.
 *
 * Common options: -o/--output FILE (atomic; default stdout), -q/--quiet, --cache-dir DIR,
 * -h/--help. Unknown options and bad values are one-line usage errors (exit 2). */
#ifndef ENTK_CLI_H
#define ENTK_CLI_H
#include <getopt.h>
#include <stdnoreturn.h>

#define CLI_COMMON_HELP \
    "Common options:\n" \
    "  -o, --output FILE   write frames to FILE (atomically: temp file + rename); default stdout\n" \
    "  -q, --quiet         no log or progress lines on stderr\n" \
    "      --cache-dir DIR cache directory (default $ENTK_CACHE_DIR or ~/.cache/entk; 'off' disables)\n" \
    "  -h, --help          this help\n" \
    "Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 bad input data (README.md, Exit codes).\n"

enum { OPT_CACHE_DIR = 1000, OPT_DTYPE, OPT_FIRST_CUSTOM = 1100 };

#define CLI_COMMON_LONGOPTS \
    {"output", required_argument, 0, 'o'}, {"quiet", no_argument, 0, 'q'}, \
    {"cache-dir", required_argument, 0, OPT_CACHE_DIR}, {"help", no_argument, 0, 'h'}

typedef struct {
    const char *output;
    const char *cache_dir;
} cli_common;

/* Handles a common option; returns 1 if c was one. help is printed for -h. */
int cli_common_opt(int c, cli_common *co, const char *help);
/* Call at the top of main: sets the program name and disables getopt's own messages. */
void cli_start(int argc, char **argv);
noreturn void cli_bad_option(char **argv);
long cli_long(const char *opt, const char *s, long min, long max);
double cli_double(const char *opt, const char *s);
/* A number > min (strict) or >= min, else a usage error saying so: a learning rate of -1 is not
 * a request for the default. */
double cli_double_min(const char *opt, const char *s, double min, int strict);
/* Splits "a,b,c" into a NULL-terminated malloc'd array of strings. */
char **cli_split(const char *s, int *n);
/* Parses "1,12" into ints; returns count. */
int cli_ints(const char *opt, const char *s, long *out, int max);
#endif
