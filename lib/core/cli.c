#include "core/cli.h"
#include "core/blasenv.h"
#include "core/codeid.h"
#include "core/err.h"
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_start_tool(int argc, char **argv, const char *tool_id) {
    (void)argc;
    codeid_set_tool(tool_id);
    blasenv_native_kernels(argv);
    /* A filter given a series of streams allocates the same large buffers for each one. By default
     * glibc hands such blocks back to the kernel when they are freed (mmap above 128 KiB, heap
     * trimming) and every stream then page-faults zeroed pages in again: 2.3 s of 4.8 s in
     * entk-jacobian over the 201 checkpoints of the Transformer run. Blocks under 64 MiB are kept
     * for reuse instead; larger ones (model weights, big Grams) are still mapped and returned. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    entk_init(argv[0]);
    opterr = 0;
}

/* getopt_long's codes for the options without a letter: the common --cache-dir, and table row i
 * as OPT_FIRST_CUSTOM + i */
enum { OPT_CACHE_DIR = 1000, OPT_FIRST_CUSTOM = 1100 };

static noreturn void bad_option(char **argv) {
    const char *arg = argv[optind - 1];
    if (optopt && optopt < 256 && (!arg || arg[0] != '-' || arg[1] == '-' || strchr(arg, optopt) == NULL))
        entk_die(ENTK_EXIT_USAGE, "unknown option '-%c' (see --help)", optopt);
    if (optopt && optopt < 256 && arg && arg[1] != '-')
        entk_die(ENTK_EXIT_USAGE, "option '-%c' is unknown or needs a value (see --help)", optopt);
    entk_die(ENTK_EXIT_USAGE, "unknown option or missing value: '%s' (see --help)", arg ? arg : "?");
}

long cli_long(const char *opt, const char *s, long min, long max) {
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || *e || e == s || v < min || v > max)
        entk_die(ENTK_EXIT_USAGE, "%s needs an integer in [%ld, %ld], not '%s'", opt, min, max, s);
    return v;
}

double cli_double(const char *opt, const char *s) {
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (errno || *e || e == s || !isfinite(v)) entk_die(ENTK_EXIT_USAGE, "%s needs a number, not '%s'", opt, s);
    return v;
}

double cli_double_min(const char *opt, const char *s, double min, int strict) {
    double v = cli_double(opt, s);
    if (strict ? !(v > min) : !(v >= min))
        entk_die(ENTK_EXIT_USAGE, "%s must be %s %g, not '%s'", opt, strict ? ">" : ">=", min, s);
    return v;
}

char **cli_split(const char *s, int *n) {
    int k = 1;
    for (const char *p = s; *p; p++) k += *p == ',';
    char **out = xcalloc((size_t)k + 1, sizeof(char *));
    char *copy = xstrdup(s);
    int i = 0;
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) out[i++] = tok;
    if (n) *n = i;
    return out;
}

int cli_ints(const char *opt, const char *s, long *out, int max) {
    int n;
    char **parts = cli_split(s, &n);
    if (n > max) entk_die(ENTK_EXIT_USAGE, "%s: at most %d values", opt, max);
    for (int i = 0; i < n; i++) out[i] = cli_long(opt, parts[i], -1000000000L, 1000000000L);
    free(parts);
    return n;
}

/* ------------------------------------------------------------------ option tables */

const char *cli_opt_name(const cli_opt *o, char *buf, size_t n) {
    if (o->name) snprintf(buf, n, "--%s", o->name);
    else snprintf(buf, n, "-%c", o->letter);
    return buf;
}

static int nrows(const cli_opt *t) {
    int n = 0;
    while (t[n].kind != CLI_END) n++;
    return n;
}

/* The choice named arg in "a|b|c": its index, or -1. */
static int choice_index(const char *choices, const char *arg) {
    size_t len = strlen(arg);
    int i = 0;
    for (const char *p = choices;; i++) {
        const char *e = strchr(p, '|');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == len && strncmp(p, arg, n) == 0) return i;
        if (!e) return -1;
        p = e + 1;
    }
}

/* The choice with index i, into buf. */
static const char *choice_name(const char *choices, int i, char *buf, size_t n) {
    const char *p = choices;
    for (int k = 0; k < i && p; k++) {
        p = strchr(p, '|');
        if (p) p++;
    }
    if (!p) p = "";
    size_t len = strcspn(p, "|");
    snprintf(buf, n, "%.*s", (int)len, p);
    return buf;
}

/* "--x must be a, b or c, not 'v'" */
static noreturn void bad_choice(const char *opt, const char *choices, const char *arg) {
    char list[512] = "";
    int n = 1;
    for (const char *p = choices; *p; p++) n += *p == '|';
    for (int i = 0; i < n; i++) {
        char c[128];
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", choice_name(choices, i, c, sizeof c));
    }
    entk_die(ENTK_EXIT_USAGE, "%s must be %s, not '%s'", opt, list, arg);
}

static void set_value(cli_opt *o, const char *arg) {
    char nm[80];
    const char *opt = cli_opt_name(o, nm, sizeof nm);
    switch (o->kind) {
    case CLI_FLAG: *(int *)o->dest = o->ival ? o->ival : 1; break;
    case CLI_INT: *(int *)o->dest = (int)cli_long(opt, arg, o->min, o->max); break;
    case CLI_LONG: *(long *)o->dest = cli_long(opt, arg, o->min, o->max); break;
    case CLI_U64: *(uint64_t *)o->dest = (uint64_t)cli_long(opt, arg, o->min, o->max); break;
    case CLI_DOUBLE: *(double *)o->dest = cli_double(opt, arg); break;
    case CLI_STR: *(const char **)o->dest = arg; break;
    case CLI_CHOICE: {
        int i = choice_index(o->arg, arg);
        if (i < 0) bad_choice(opt, o->arg, arg);
        *(int *)o->dest = i;
        break;
    }
    case CLI_CUSTOM: o->parse(opt, arg, o->dest); break;
    default: break;
    }
}

/* The row that carries key_name's effect for `from`: a derived row of that name first, then an
 * option of that name other than `from` itself. */
static const cli_opt *via_target(const cli_opt *t, const cli_opt *from) {
    const cli_opt *opt = NULL;
    for (const cli_opt *o = t; o->kind != CLI_END; o++) {
        if (o == from || !o->name || strcmp(o->name, from->key_name) != 0) continue;
        if (o->derived) return o;
        if (o->kind != CLI_HEADING && !opt) opt = o;
    }
    return opt;
}

/* A table that cannot be right is the programmer's mistake: say so before anything runs. */
static void check_table(const cli_opt *t) {
    for (int i = 0; t[i].kind != CLI_END; i++) {
        const cli_opt *o = &t[i];
        if (o->kind == CLI_HEADING) continue;
        char nm[80];
        cli_opt_name(o, nm, sizeof nm);
        if (o->key < CLI_NOKEY || o->key > CLI_KEY_VALUE)
            entk_die(ENTK_EXIT_FAIL, "option table: %s does not say whether it enters the key", nm);
        if ((o->key == CLI_KEY_SET || o->key == CLI_KEY_ONOFF) && o->kind != CLI_FLAG)
            entk_die(ENTK_EXIT_FAIL, "option table: %s: only a flag can be keyed by being given", nm);
        if ((o->key == CLI_KEY_VIA || o->key == CLI_KEY_ONOFF) && !o->key_name)
            entk_die(ENTK_EXIT_FAIL, "option table: %s needs key_name", nm);
        if (o->key == CLI_KEY_VIA && !via_target(t, o))
            entk_die(ENTK_EXIT_FAIL, "option table: %s enters the key via '%s', which is not a row", nm, o->key_name);
        if (o->derived && (!o->name || (o->kind == CLI_CUSTOM && !o->show) || o->kind == CLI_FLAG || o->key == CLI_NOKEY ||
                           o->key == CLI_INPUT || o->key == CLI_KEY_VIA))
            entk_die(ENTK_EXIT_FAIL, "option table: derived row %s needs a name, a printing key policy and a kind (or show) to print it", nm);
        if ((o->kind == CLI_CUSTOM && !o->parse && !o->derived) || (o->kind == CLI_CHOICE && !o->arg) || (!o->name && !o->letter))
            entk_die(ENTK_EXIT_FAIL, "option table: row %d is incomplete", i);
    }
}

/* Rows that are options (not headings, not derived values). */
static int is_option(const cli_opt *o) { return o->kind != CLI_HEADING && !o->derived; }

int cli_parse(cli_spec *s, int argc, char **argv) {
    cli_opt *t = s->opts;
    int n = nrows(t);
    check_table(t);
    struct option *lo = xcalloc((size_t)n + 5, sizeof *lo);
    char shortopts[256] = "o:qh";
    int nl = 0;
    lo[nl++] = (struct option){"output", required_argument, 0, 'o'};
    lo[nl++] = (struct option){"quiet", no_argument, 0, 'q'};
    lo[nl++] = (struct option){"cache-dir", required_argument, 0, OPT_CACHE_DIR};
    lo[nl++] = (struct option){"help", no_argument, 0, 'h'};
    for (int i = 0; i < n; i++) {
        const cli_opt *o = &t[i];
        if (!is_option(o)) continue;
        int has_arg = o->kind != CLI_FLAG;
        if (o->name) lo[nl++] = (struct option){o->name, has_arg ? required_argument : no_argument, 0, o->letter ? o->letter : OPT_FIRST_CUSTOM + i};
        if (o->letter) {
            size_t l = strlen(shortopts);
            snprintf(shortopts + l, sizeof shortopts - l, "%c%s", o->letter, has_arg ? ":" : "");
        }
    }
    int c;
    while ((c = getopt_long(argc, argv, shortopts, lo, NULL)) != -1) {
        switch (c) {
        case 'o': s->co.output = optarg; continue;
        case 'q': entk_quiet = 1; continue;
        case OPT_CACHE_DIR: s->co.cache_dir = optarg; continue;
        case 'h': cli_help(s, stdout); exit(0);
        default: break;
        }
        cli_opt *o = NULL;
        for (int i = 0; i < n && !o; i++)
            if (is_option(&t[i]) && (t[i].letter ? t[i].letter == c : OPT_FIRST_CUSTOM + i == c)) o = &t[i];
        if (!o) bad_option(argv);
        o->given++;
        set_value(o, optarg);
    }
    free(lo);
    return optind;
}

cli_opt *cli_find(cli_spec *s, const char *name) {
    for (cli_opt *o = s->opts; o->kind != CLI_END; o++) {
        if (!is_option(o)) continue;
        if ((o->name && strcmp(o->name, name) == 0) || (o->letter && name[0] == o->letter && !name[1])) return o;
    }
    return NULL;
}

const cli_opt *cli_misplaced(const cli_spec *s) {
    for (const cli_opt *o = s->opts; o->kind != CLI_END; o++)
        if (o->given && o->only && !(o->only & s->kind)) return o;
    return NULL;
}

/* help: "  -m, --model PATH      text", continuation lines indented to column 24 */
static void help_row(FILE *fp, const cli_opt *o) {
    char left[160];
    int k;
    if (o->letter) k = snprintf(left, sizeof left, "  -%c%s", o->letter, o->name ? "," : "");
    else k = snprintf(left, sizeof left, "     ");
    if (o->name) k += snprintf(left + k, sizeof left - (size_t)k, " --%s", o->name);
    if (o->kind != CLI_FLAG && o->arg) snprintf(left + k, sizeof left - (size_t)k, " %s", o->arg);
    fputs(left, fp);
    int col = (int)strlen(left);
    if (col < 23) fprintf(fp, "%*s", 24 - col, "");
    else fprintf(fp, "\n%24s", "");   /* a long option: its help starts on the next line */
    for (const char *p = o->help ? o->help : ""; *p; p++) {
        fputc(*p, fp);
        if (*p == '\n' && p[1]) fprintf(fp, "%24s", "");
    }
    fputc('\n', fp);
}

void cli_help(const cli_spec *s, FILE *fp) {
    if (s->usage) fputs(s->usage, fp);
    if (s->opts[0].kind != CLI_HEADING) fputs("Options:\n", fp);
    for (const cli_opt *o = s->opts; o->kind != CLI_END; o++) {
        if (o->kind == CLI_HEADING) fprintf(fp, "%s\n", o->help);
        else if (!o->derived) help_row(fp, o);
    }
    if (s->examples) fputs(s->examples, fp);
    fputs(CLI_COMMON_HELP, fp);
}

void cli_args_add(cli_args *a, const char *arg) {
    a->argv = xrealloc(a->argv, ((size_t)a->argc + 2) * sizeof *a->argv);
    a->argv[a->argc++] = xstrdup(arg);
    a->argv[a->argc] = NULL;
}

void cli_args_free(cli_args *a) {
    for (int i = 0; i < a->argc; i++) free(a->argv[i]);
    free(a->argv);
    a->argv = NULL;
    a->argc = 0;
}

/* The kind's own printing of a row's value. NULL: left out (a string not given). */
static const char *kind_value(const cli_opt *o, char *buf, size_t n) {
    switch (o->kind) {
    case CLI_FLAG:
    case CLI_INT: snprintf(buf, n, "%d", *(const int *)o->dest); break;
    case CLI_LONG: snprintf(buf, n, "%ld", *(const long *)o->dest); break;
    case CLI_U64: snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)o->dest); break;
    case CLI_DOUBLE: snprintf(buf, n, "%.17g", *(const double *)o->dest); break;
    case CLI_STR:
        if (!*(const char *const *)o->dest) return NULL;
        snprintf(buf, n, "%s", *(const char *const *)o->dest);
        break;
    case CLI_CHOICE: choice_name(o->arg, *(const int *)o->dest, buf, n); break;
    default: entk_die(ENTK_EXIT_FAIL, "option table: %s has no canonical value", o->name ? o->name : "?");
    }
    return buf;
}

const char *cli_show_nonzero(const cli_opt *o, char *buf, size_t n) {
    return *(const int *)o->dest ? kind_value(o, buf, n) : NULL;
}

/* The canonical value of a row: its show(), or its kind's printing. NULL: left out. */
static const char *canonical(const cli_opt *o, char *buf, size_t n) {
    return o->show ? o->show(o, buf, n) : kind_value(o, buf, n);
}

void cli_args_key(cli_args *a, const cli_spec *s) {
    for (const cli_opt *o = s->opts; o->kind != CLI_END; o++) {
        if (o->kind == CLI_HEADING || o->key == CLI_NOKEY || o->key == CLI_INPUT || o->key == CLI_KEY_VIA) continue;
        if (o->only && !(o->only & s->kind)) continue;
        char letter[2] = {(char)o->letter, 0};
        const char *k = o->key_name ? o->key_name : o->name ? o->name : letter;
        char v[4096], one[4200];
        if (o->key == CLI_KEY_SET || o->key == CLI_KEY_ONOFF || (o->key == CLI_KEY_VALUE && o->kind == CLI_FLAG)) {
            int on = *(const int *)o->dest == (o->ival ? o->ival : 1);
            if (!on && o->key != CLI_KEY_ONOFF) continue;
            if (o->key == CLI_KEY_VALUE) snprintf(one, sizeof one, "%s", k);
            else snprintf(one, sizeof one, "--%s", on ? o->name : o->key_name);
            cli_args_add(a, one);
            continue;
        }
        const char *val = canonical(o, v, sizeof v);
        if (!val) continue;
        if (o->key == CLI_KEY_VALUE) {
            cli_args_add(a, val);
        } else if (o->key == CLI_KEY_EQ) {
            snprintf(one, sizeof one, "%s=%s", k, val);
            cli_args_add(a, one);
        } else if (o->key == CLI_KEY_ARG_EQ) {
            snprintf(one, sizeof one, "--%s=%s", k, val);
            cli_args_add(a, one);
        } else {
            snprintf(one, sizeof one, "--%s", k);
            cli_args_add(a, one);
            cli_args_add(a, val);
        }
    }
}
