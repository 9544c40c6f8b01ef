/* entk-features: Fourier feature families over the modular-addition inputs, and key frequencies. */
#include "core/cli.h"
#include "core/err.h"
#include "modadd/features.h"
#include "core/frame.h"
#include "modadd/model.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "Usage: entk-features -p P [--family LIST] [--freqs K1,K2 | --key-freqs MODEL [--nkeys N]] [--seed S]\n"
    "Writes one tensor frame per family, named after it: [P^2, 2*#freqs] f64, rows in input order\n"
    "n*P+m, columns cos(2 pi k v/P), sin(2 pi k v/P) per frequency k.\n";

static const char *examples =
    "Example:\n"
    "  entk-features -p 29 --family sum,diff,random -o F.frames && entk-show F.frames\n";

/* The frequencies: given (--freqs), or found in a checkpoint (--key-freqs); the key names them. */
typedef struct {
    long freqs[512];
    int nfreq;
    const char *keyfile;
} freq_set;

static void parse_freqs(const char *opt, const char *arg, void *dest) {
    freq_set *fs = dest;
    fs->nfreq = cli_ints(opt, arg, fs->freqs, 512);
}

/* "key:" for key frequencies, then the list; a list too long for the 600-byte "freqs=..." arg it
 * always had is cut there, as it always was, so keys stay what they were */
static const char *show_freqs(const cli_opt *o, char *buf, size_t n) {
    const freq_set *fs = o->dest;
    const int pre = 6, cap = 600;   /* strlen("freqs="), the arg's size */
    int k = snprintf(buf, n, "%s", fs->keyfile ? "key:" : "");
    for (int i = 0; i < fs->nfreq && pre + k < cap - 12; i++)
        k += snprintf(buf + k, (size_t)(cap - pre - k), "%s%ld", i ? "," : "", fs->freqs[i]);
    return buf;
}

static void parse_nkeys(const char *opt, const char *arg, void *dest) {
    *(int *)dest = strcmp(arg, "auto") == 0 ? 0 : (int)cli_long(opt, arg, 1, 500);
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    int p = 29, nkeys = 2;
    long seed = 0;
    freq_set fs = {.nfreq = 0};
    const char *families = "n,m,sum,diff";
    cli_opt opts[] = {
        /* long name, letter, kind, destination, argument, key policy; then the kind's extras and the help */
        {NULL, 'p', CLI_INT, &p, "P", CLI_KEY_EQ, .min = 2, .max = 1000, .help = "modulus (default 29)"},
        {"family", 0, CLI_STR, &families, "LIST", CLI_KEY_EQ,
         .help = "n, m, sum, diff, axis_sum, axis_diff, random (default n,m,sum,diff)"},
        {"freqs", 0, CLI_CUSTOM, &fs, "LIST", CLI_KEY_EQ, .parse = parse_freqs, .show = show_freqs,
         .help = "frequencies (default all 1..P/2)"},
        {"key-freqs", 0, CLI_STR, &fs.keyfile, "FILE", CLI_INPUT,
         .help = "use the key frequencies of a transformer checkpoint's W_E[:P] (mean |FFT|^2\n"
                 "over d_model); also writes a tensor frame 'fourier_power' [P] and a record\n"
                 "'key_frequencies' and prints them on stderr"},
        {"nkeys", 0, CLI_CUSTOM, &nkeys, "N|auto", CLI_KEY_VIA, .parse = parse_nkeys, .key_name = "freqs",
         .help = "how many key frequencies (default 2); auto: those with at least a tenth of the\n"
                 "strongest one's power (a trained model uses a few, far above the rest)"},
        {"seed", 0, CLI_LONG, &seed, "S", CLI_KEY_EQ, .min = 0, .max = 1L << 62, .help = "seed of the random family (default 0)"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    if (first < argc) entk_die(ENTK_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[first]);
    const char *keyfile = fs.keyfile;
    int nfreq = fs.nfreq;
    long *freqs = fs.freqs;
    if (keyfile && nfreq) entk_die(ENTK_EXIT_USAGE, "--freqs and --key-freqs exclude each other");
    double power[1000];
    entk_key ikey[1];
    const char *iname[1] = {keyfile};
    if (keyfile) {
        model m;
        model_load(&m, keyfile, DT_F64);
        int k = model_param_index(&m, "W_E");
        if (k < 0) entk_die(ENTK_EXIT_INPUT, "%s: no W_E tensor (key frequencies need a transformer checkpoint)", keyfile);
        if (m.p != p) entk_die(ENTK_EXIT_USAGE, "%s has p=%d, not -p %d", keyfile, m.p, p);
        nfreq = fs.nfreq = features_key_frequencies(&m.w[k], p, nkeys, power, freqs);
        ikey[0] = m.key;
        model_free(&m);
    }
    cli_args a = {0};
    cli_args_key(&a, &spec);
    frame_header h;
    frame_header_make(&h, "entk-features", a.argc, a.argv, keyfile ? 1 : 0, iname, ikey);
    frame_writer w;
    frame_writer_open(&w, spec.co.output, &h);
    int64_t fl[512];
    for (int i = 0; i < nfreq; i++) fl[i] = freqs[i];
    if (keyfile) {
        tensor pw = tensor_1d(DT_F64, p);
        memcpy(pw.data, power, (size_t)p * sizeof(double));
        meta mt = {0};
        frame_write_tensor(&w, "fourier_power", &pw, &mt);
        tensor_free(&pw);
        meta_i64s(&mt, "freqs", fl, nfreq);
        meta_i64(&mt, "count", nfreq);
        frame_write_record(&w, "key_frequencies", &mt);
        char line[256] = "";
        for (int i = 0; i < nfreq; i++) snprintf(line + strlen(line), sizeof line - strlen(line), "%s%ld", i ? ", " : "", freqs[i]);
        entk_log("key frequencies: %s", line);
    }
    int nfam;
    char **fam = cli_split(families, &nfam);
    for (int i = 0; i < nfam; i++) {
        tensor F = features_make(fam[i], p, nfreq ? freqs : NULL, nfreq, (uint64_t)seed);
        meta mt = {0};
        meta_str(&mt, "family", fam[i]);
        meta_i64(&mt, "p", p);
        if (nfreq) meta_i64s(&mt, "freqs", fl, nfreq);
        frame_write_tensor(&w, fam[i], &F, &mt);
        tensor_free(&F);
    }
    frame_writer_close(&w);
    cli_args_free(&a);
    return 0;
}
