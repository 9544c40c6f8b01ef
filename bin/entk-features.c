/* entk-features: Fourier feature families over the modular-addition inputs, and key frequencies. */
#include "core/cli.h"
#include "core/err.h"
#include "modadd/features.h"
#include "core/frame.h"
#include "modadd/model.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *help =
    "Usage: entk-features -p P [--family LIST] [--freqs K1,K2 | --key-freqs MODEL [--nkeys N]] [--seed S]\n"
    "Writes one tensor frame per family, named after it: [P^2, 2*#freqs] f64, rows in input order\n"
    "n*P+m, columns cos(2 pi k v/P), sin(2 pi k v/P) per frequency k.\n"
    "  -p P             modulus (default 29)\n"
    "  --family LIST    n, m, sum, diff, axis_sum, axis_diff, random (default n,m,sum,diff)\n"
    "  --freqs LIST     frequencies (default all 1..P/2)\n"
    "  --key-freqs FILE use the key frequencies of a transformer checkpoint's W_E[:P] (mean |FFT|^2\n"
    "                   over d_model); also writes a tensor frame 'fourier_power' [P] and a record\n"
    "                   'key_frequencies' and prints them on stderr\n"
    "  --nkeys N|auto   how many key frequencies (default 2); auto: those with at least a tenth of the\n"
    "                   strongest one's power (a trained model uses a few, far above the rest)\n"
    "  --seed S         seed of the random family (default 0)\n"
    "Example:\n"
    "  entk-features -p 29 --family sum,diff,random -o F.frames && entk-show F.frames\n";

int main(int argc, char **argv) {
    cli_start(argc, argv);
    cli_common co = {0};
    int p = 29, nfreq = 0, nkeys = 2;
    long freqs[512], seed = 0;
    const char *families = "n,m,sum,diff", *keyfile = NULL;
    enum { O_FAMILY = OPT_FIRST_CUSTOM, O_FREQS, O_KEYF, O_NKEYS, O_SEED };
    static struct option lo[] = {CLI_COMMON_LONGOPTS, {"family", required_argument, 0, O_FAMILY},
                                 {"freqs", required_argument, 0, O_FREQS}, {"key-freqs", required_argument, 0, O_KEYF},
                                 {"nkeys", required_argument, 0, O_NKEYS}, {"seed", required_argument, 0, O_SEED}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:qhp:", lo, NULL)) != -1) {
        if (cli_common_opt(c, &co, help)) continue;
        switch (c) {
        case 'p': p = (int)cli_long("-p", optarg, 2, 1000); break;
        case O_FAMILY: families = optarg; break;
        case O_FREQS: nfreq = cli_ints("--freqs", optarg, freqs, 512); break;
        case O_KEYF: keyfile = optarg; break;
        case O_NKEYS: nkeys = strcmp(optarg, "auto") == 0 ? 0 : (int)cli_long("--nkeys", optarg, 1, 500); break;
        case O_SEED: seed = cli_long("--seed", optarg, 0, 1L << 62); break;
        default: cli_bad_option(argv);
        }
    }
    if (optind < argc) entk_die(ENTK_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[optind]);
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
        nfreq = features_key_frequencies(&m.w[k], p, nkeys, power, freqs);
        ikey[0] = m.key;
        model_free(&m);
    }
    char a[4][600];
    snprintf(a[0], sizeof a[0], "p=%d", p);
    snprintf(a[1], sizeof a[1], "family=%s", families);
    int k = snprintf(a[2], sizeof a[2], "freqs=%s", keyfile ? "key:" : "");
    for (int i = 0; i < nfreq && k < (int)sizeof a[2] - 12; i++) k += snprintf(a[2] + k, sizeof a[2] - (size_t)k, "%s%ld", i ? "," : "", freqs[i]);
    snprintf(a[3], sizeof a[3], "seed=%ld", seed);
    char *args[] = {a[0], a[1], a[2], a[3]};
    frame_header h;
    frame_header_make(&h, "entk-features", 4, args, keyfile ? 1 : 0, iname, ikey);
    frame_writer w;
    frame_writer_open(&w, co.output, &h);
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
    return 0;
}
