/* cli-check: exercises core/cli's option tables for tests/t_cli.sh. A demo table with every kind
 * of option and every key policy (and a derived row) parses argv; prints each row's value ("name=value"), then the
 * canonical header args, one per line after "args:", and the misplaced option if any.
 *   cli-check [--run-kind K] [OPTIONS...]   (K: 1 or 2, the kind of run for rows with `only`)
 * CLI_CHECK_BROKEN=1 in the environment: a table with a row that has no key policy; 2: a derived
 * row without its show. */
#include "core/cli.h"
#include "core/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void parse_pair(const char *opt, const char *arg, void *dest) {
    int *v = dest;
    if (sscanf(arg, "%d:%d", &v[0], &v[1]) != 2) entk_die(ENTK_EXIT_USAGE, "%s needs A:B, not '%s'", opt, arg);
}

static const char *show_pair(const cli_opt *o, char *buf, size_t n) {
    const int *v = o->dest;
    if (v[0] == 0 && v[1] == 0) return NULL;   /* the default: left out of the key */
    snprintf(buf, n, "%d..%d", v[0], v[1]);
    return buf;
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    int n = 3, flag = 0, set = 0, off = 0, choice = 1, pair[2] = {0, 0}, kind = 1, broken = getenv("CLI_CHECK_BROKEN") ? atoi(getenv("CLI_CHECK_BROKEN")) : 0;
    int word = 0, span = 1, zero = 0, span_n = 0;   /* span_n: n times --span, resolved after parsing */
    const char *label = NULL;
    long big = -5;
    uint64_t seed = 7;
    double x = 0.1;
    const char *s = "abc", *in = NULL, *via = "v";
    cli_opt opts[] = {
        {"input", 'i', CLI_STR, &in, "FILE", CLI_INPUT, .help = "an input"},
        {NULL, 'n', CLI_INT, &n, "N", CLI_KEY_EQ, .min = 1, .max = 9, .help = "short only, key n=N"},
        {"big", 0, CLI_LONG, &big, "L", CLI_KEY_ARG, .min = -10, .max = 10, .help = "two args --big L"},
        {"seed", 0, CLI_U64, &seed, "S", CLI_KEY_ARG_EQ, .min = 0, .max = 0x7fffffffffffffffL, .help = "one arg --seed=S"},
        {"frac", 0, CLI_DOUBLE, &x, "F", CLI_KEY_EQ, .key_name = "fraction", .help = "fraction=%.17g"},
        {"str", 0, CLI_STR, &s, "S", CLI_KEY_ARG, .only = 2, .help = "only in runs of kind 2"},
        {"mode", 0, CLI_CHOICE, &choice, "fast|exact|both", CLI_KEY_EQ, .help = "a choice"},
        {"pair", 0, CLI_CUSTOM, &pair, "A:B", CLI_KEY_EQ, .parse = parse_pair, .show = show_pair,
         .help = "custom parse and print;\nleft out at its default"},
        {"via", 0, CLI_STR, &via, "V", broken == 1 ? 0 : CLI_KEY_VIA, .key_name = "pair", .help = "enters through --pair"},
        {.kind = CLI_HEADING, .help = "Flags:"},
        {"flag", 0, CLI_FLAG, &flag, NULL, CLI_KEY_ARG, .help = "printed 0/1"},
        {"set", 0, CLI_FLAG, &set, NULL, CLI_KEY_SET, .help = "printed when given"},
        {"no-thing", 0, CLI_FLAG, &off, NULL, CLI_KEY_ONOFF, .key_name = "thing", .help = "--no-thing or --thing"},
        {"word", 0, CLI_FLAG, &word, NULL, CLI_KEY_VALUE, .help = "printed as the word alone when given"},
        {.kind = CLI_HEADING, .help = "More:"},
        {"label", 0, CLI_STR, &label, "L", CLI_KEY_ARG, .help = "a string without default: left out unless given"},
        {"span", 0, CLI_INT, &span, "N", CLI_KEY_VIA, .key_name = "span", .min = 1, .max = 9,
         .help = "enters through the derived row span"},
        {"span", 0, broken == 2 ? CLI_CUSTOM : CLI_INT, &span_n, NULL, CLI_KEY_EQ, .derived = 1, .help = "n times --span"},
        {"zero", 0, CLI_INT, &zero, "Z", CLI_KEY_EQ, .min = 0, .max = 9, .show = cli_show_nonzero,
         .help = "left out while 0"},
        {"run-kind", 0, CLI_INT, &kind, "K", CLI_NOKEY, .min = 1, .max = 2, .help = "the kind of run"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = "Usage: cli-check [options]\n", .examples = "Example:\n  cli-check -n 4 --set\n", .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    spec.kind = (unsigned)kind;
    span_n = n * span;
    printf("input=%s n=%d big=%ld seed=%llu frac=%.17g str=%s mode=%d pair=%d:%d via=%s flag=%d set=%d off=%d word=%d label=%s span=%d zero=%d operands=%d\n",
           in ? in : "(none)", n, big, (unsigned long long)seed, x, s, choice, pair[0], pair[1], via, flag, set, off, word,
           label ? label : "(none)", span, zero, argc - first);
    cli_args a = {0};
    cli_args_key(&a, &spec);
    puts("args:");
    for (int i = 0; i < a.argc; i++) puts(a.argv[i]);
    const cli_opt *m = cli_misplaced(&spec);
    char nm[64];
    if (m) printf("misplaced: %s\n", cli_opt_name(m, nm, sizeof nm));
    cli_args_free(&a);
    return 0;
}
