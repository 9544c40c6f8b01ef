/* entk-modadd: the modular-addition data set as frames (pairs, labels, train split, inputs). */
#include "core/cli.h"
#include "core/err.h"
#include "core/frame.h"
#include "modadd/data.h"
#include <stdio.h>

static const char *usage =
    "Usage: entk-modadd [-p P] [--encoding onehot|tokens] [--train-frac F] [--rng R] [--seed S] [-o FILE]\n"
    "Writes all P^2 pairs (n, m) (index n*P+m), labels (n+m) mod P, a seeded train/test split and the\n"
    "model inputs as frames: pairs i32 [N,2], labels i32 [N], train u8 [N], x (onehot f64 [N,2P] or\n"
    "tokens i32 [N,3] = n, m, '=' with '=' = P), and train_order i64 [ntrain]: the training rows in\n"
    "the order the training set lists them (minibatch samplers index this list).\n";

static const char *examples =
    "Example:\n"
    "  entk-modadd -p 29 --train-frac 0.7 --seed 0 -o data.frames && entk-show data.frames\n";

int main(int argc, char **argv) {
    cli_start(argc, argv);
    int p = 29;
    long seed = 0;
    double frac = 0.7;
    const char *enc = "onehot", *rng = "entk";
    cli_opt opts[] = {
        /* long name, letter, kind, destination, argument, key policy; then the kind's extras and the help */
        {NULL, 'p', CLI_INT, &p, "P", CLI_KEY_EQ, .min = 2, .max = 1000, .help = "modulus (default 29)"},
        {"encoding", 0, CLI_STR, &enc, "E", CLI_KEY_EQ, .help = "onehot (MLP, default) or tokens (Transformer)"},
        {"train-frac", 0, CLI_DOUBLE, &frac, "F", CLI_KEY_EQ, .key_name = "train_frac",
         .help = "fraction of pairs in the training set (default 0.7)"},
        {"seed", 0, CLI_LONG, &seed, "S", CLI_KEY_EQ, .min = 0, .max = 1L << 62, .help = "seed of the split permutation (default 0)"},
        {"rng", 0, CLI_STR, &rng, "R", CLI_KEY_EQ,
         .help = "how the split permutation is drawn (default entk):\n"
                 "  entk    entk's own generator; training rows listed in row order\n"
                 "  torch   torch.manual_seed(S); torch.randperm(P*P), as the reference MLP\n"
                 "          notebook (entk-train --rng torch --seed S continues that stream)\n"
                 "  python  random.seed(S); random.shuffle(pairs), as the reference Transformer\n"
                 "          notebook"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    if (first < argc) entk_die(ENTK_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[first]);
    if (frac <= 0 || frac > 1) entk_die(ENTK_EXIT_USAGE, "--train-frac must be in (0, 1]");
    modadd d;
    modadd_make(&d, p, enc, frac, rng, (uint64_t)seed);
    cli_args a = {0};
    cli_args_key(&a, &spec);
    frame_header h;
    frame_header_make(&h, "entk-modadd", a.argc, a.argv, 0, NULL, NULL);
    frame_writer w;
    frame_writer_open(&w, spec.co.output, &h);
    modadd_write(&w, &d);
    frame_writer_close(&w);
    modadd_free(&d);
    cli_args_free(&a);
    return 0;
}
