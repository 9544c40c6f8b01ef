#include "core/cli.h"
#include "core/blasenv.h"
#include "core/err.h"
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_start(int argc, char **argv) {
    (void)argc;
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

noreturn void cli_bad_option(char **argv) {
    const char *arg = argv[optind - 1];
    if (optopt && optopt < 256 && (!arg || arg[0] != '-' || arg[1] == '-' || strchr(arg, optopt) == NULL))
        entk_die(ENTK_EXIT_USAGE, "unknown option '-%c' (see --help)", optopt);
    if (optopt && optopt < 256 && arg && arg[1] != '-')
        entk_die(ENTK_EXIT_USAGE, "option '-%c' is unknown or needs a value (see --help)", optopt);
    entk_die(ENTK_EXIT_USAGE, "unknown option or missing value: '%s' (see --help)", arg ? arg : "?");
}

int cli_common_opt(int c, cli_common *co, const char *help) {
    switch (c) {
    case 'o': co->output = optarg; return 1;
    case 'q': entk_quiet = 1; return 1;
    case OPT_CACHE_DIR: co->cache_dir = optarg; return 1;
    case 'h': fputs(help, stdout); fputs(CLI_COMMON_HELP, stdout); exit(0);
    default: return 0;
    }
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
