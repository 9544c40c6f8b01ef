/* cli: the option handling every entk filter shares.
 *
 * Common options: -o/--output FILE (atomic; default stdout), -q/--quiet, --cache-dir DIR,
 * -h/--help. Unknown options and bad values are one-line usage errors (exit 2).
 *
 * A filter declares its options once, in a table (cli_opt rows, as datamash declares its
 * operations): long name, short letter, argument kind, where the value goes, its help line, and
 * whether and how it enters the cache key and the frame header's args. From that one table come
 * the getopt_long parser (cli_parse, common options included), the --help option list (cli_help)
 * and the canonical header args (cli_key_args), so an option cannot be parsed but forgotten in a
 * key: every row must say CLI_NOKEY, CLI_INPUT, CLI_KEY_VIA or how it is printed. What a filter
 * resolves after parsing (a default that depends on the input, the layer of this stream, a value
 * made of several options) enters through derived rows (.derived) at its place in the key. Every filter
 * in bin/ declares its options so; README.md ("Declaring a filter's options") shows a table. */
#ifndef ENTK_CLI_H
#define ENTK_CLI_H
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

#define CLI_COMMON_HELP \
    "Common options:\n" \
    "  -o, --output FILE   write frames to FILE (atomically: temp file + rename); default stdout\n" \
    "  -q, --quiet         no log or progress lines on stderr\n" \
    "      --cache-dir DIR cache directory (default $ENTK_CACHE_DIR or ~/.cache/entk; 'off' disables)\n" \
    "  -h, --help          this help\n" \
    "Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 bad input data (README.md, Exit codes).\n"

typedef struct {
    const char *output;
    const char *cache_dir;
} cli_common;

/* Call at the top of main: sets the program name, disables getopt's own messages and records the
 * program's code identity (ENTK_TOOL_ID, which the Makefile defines for each bin/ program as a
 * hash of its source: core/codeid.h). */
void cli_start_tool(int argc, char **argv, const char *tool_id);
#ifndef ENTK_TOOL_ID
#define ENTK_TOOL_ID ""
#endif
#define cli_start(argc, argv) cli_start_tool(argc, argv, ENTK_TOOL_ID)
long cli_long(const char *opt, const char *s, long min, long max);
double cli_double(const char *opt, const char *s);
/* A number > min (strict) or >= min, else a usage error saying so: a learning rate of -1 is not
 * a request for the default. */
double cli_double_min(const char *opt, const char *s, double min, int strict);
/* Splits "a,b,c" into a NULL-terminated malloc'd array of strings. */
char **cli_split(const char *s, int *n);
/* Parses "1,12" into ints; returns count. */
int cli_ints(const char *opt, const char *s, long *out, int max);

/* ------------------------------------------------------------------ option tables */

typedef enum {
    CLI_END = 0,        /* the row that ends a table */
    CLI_FLAG,           /* no argument: *(int *)dest = ival (1 unless set) */
    CLI_INT,            /* int *dest, in [min, max] */
    CLI_LONG,           /* long *dest, in [min, max] */
    CLI_U64,            /* uint64_t *dest, in [min, max] */
    CLI_DOUBLE,         /* double *dest, finite */
    CLI_STR,            /* const char **dest = the argument */
    CLI_CHOICE,         /* int *dest = index of the argument in choices ("word|rest") */
    CLI_CUSTOM,         /* parse(option, argument, dest) */
    CLI_HEADING,        /* not an option: a heading line (help) in the --help list */
} cli_kind;

/* Whether and how an option enters the cache key and the frame header's args. */
typedef enum {
    CLI_NOKEY = 1,      /* does not change the frames (where they go, speed, logging), or the
                         * filter writes no frames */
    CLI_INPUT,          /* names an input: its content key enters the header's inputs */
    CLI_KEY_VIA,        /* enters through the canonical value of the row named key_name (whose
                         * printing accounts for it) */
    CLI_KEY_EQ,         /* one arg "K=V", K = key_name (default: the long name) */
    CLI_KEY_ARG,        /* two args "--K" "V" */
    CLI_KEY_ARG_EQ,     /* one arg "--K=V" */
    CLI_KEY_SET,        /* a flag: one arg "--K" when given, none otherwise */
    CLI_KEY_ONOFF,      /* a flag: "--NAME" when given, else "--K" (key_name: the other spelling) */
    CLI_KEY_VALUE,      /* one arg, the value alone; a flag: "K" when given, none otherwise */
} cli_key;

typedef struct cli_opt cli_opt;
struct cli_opt {
    const char *name;       /* long name without "--"; NULL: short letter only */
    int letter;             /* short option letter, or 0 */
    cli_kind kind;
    void *dest;             /* where the value goes (type by kind) */
    const char *arg;        /* the argument's name in --help ("N", "LIST"); for CLI_CHOICE the
                             * choices, '|'-separated */
    cli_key key;
    /* the rest as designated initializers (.help always, so no row is a partial positional one) */
    const char *help;       /* --help text; '\n' continues on an indented line */
    long min, max;          /* CLI_INT, CLI_LONG, CLI_U64 */
    int ival;               /* CLI_FLAG: the value stored when given (0 means 1) */
    const char *key_name;   /* the name in the key when it is not the long name; CLI_KEY_VIA: the
                             * row that carries this one's effect (a derived row of that name first,
                             * so an option may enter through a derived row of its own name) */
    void (*parse)(const char *opt, const char *arg, void *dest);          /* CLI_CUSTOM */
    /* the canonical value, when not the kind's own printing (decimal, %.17g, the string (a NULL
     * string is left out), the choice); writes it to buf (n bytes) and returns buf, or NULL to
     * leave the option out. Called by cli_args_key, so it may print what the filter resolved
     * since parsing (a default that depends on the input, this stream's layer) */
    const char *(*show)(const cli_opt *o, char *buf, size_t n);
    /* 1: not an option but a value the filter resolves (from several options, their defaults or its
     * input) that enters the key at this place in the table: dest holds it, printed by the kind
     * (CLI_CUSTOM: by .show). The options it accounts for say CLI_KEY_VIA and name it; neither
     * parsed nor listed in --help */
    int derived;
    unsigned only;          /* 0: the option applies to every run; else a mask of the filter's
                             * kinds of run (cli_spec.kind) it applies to: outside them it is
                             * left out of the key, and cli_misplaced finds it given */
    int given;              /* set by cli_parse: how often the option was given */
};

/* The row that ends a table. */
#define CLI_TABLE_END {.kind = CLI_END}

typedef struct {
    const char *usage;      /* --help: the usage line(s) and what the filter does */
    const char *examples;   /* --help: after the option list ("Example:\n  ...") */
    cli_opt *opts;          /* the table, ended by a CLI_END row */
    cli_common co;          /* -o, --cache-dir, filled by cli_parse */
    unsigned kind;          /* the kind of run, for rows with `only` (set by the filter) */
} cli_spec;

/* Parses argv by s's table and the common options (-h prints cli_help and exits 0); returns the
 * index of the first operand. Dies (exit 2) on an unknown option or a bad value, and (exit 1) on
 * a table row without a key policy. */
int cli_parse(cli_spec *s, int argc, char **argv);
/* The --help text: usage, the option list, examples, the common options. */
void cli_help(const cli_spec *s, FILE *fp);
/* The row of option name (long name, or the letter as a one-character string), or NULL. */
cli_opt *cli_find(cli_spec *s, const char *name);
/* The first option given whose `only` excludes s->kind, or NULL. */
const cli_opt *cli_misplaced(const cli_spec *s);
/* "--name" (or "-c") of a row, for messages. */
const char *cli_opt_name(const cli_opt *o, char *buf, size_t n);

/* Canonical header args: strings owned by the list. */
typedef struct {
    int argc;
    char **argv;
} cli_args;
void cli_args_add(cli_args *a, const char *arg);
/* Appends the keyed rows of s's table, in table order, as their key policy prints them. */
void cli_args_key(cli_args *a, const cli_spec *s);
void cli_args_free(cli_args *a);
/* A .show for rows whose value is an int (CLI_FLAG, CLI_INT, CLI_CHOICE): the kind's printing, or
 * NULL (left out) while it is 0 - an option that entered the key only when it was asked for, so
 * that keys from before it existed stay what they were. */
const char *cli_show_nonzero(const cli_opt *o, char *buf, size_t n);
#endif
