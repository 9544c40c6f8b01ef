/* entk-modadd: the modular-addition data set as frames (pairs, labels, train split, inputs). */
#include "core/cli.h"
#include "core/err.h"
#include "core/frame.h"
#include "modadd/data.h"
#include <stdio.h>

static const char *help =
    "Usage: entk-modadd [-p P] [--encoding onehot|tokens] [--train-frac F] [--rng R] [--seed S] [-o FILE]\n"
    "Writes all P^2 pairs (n, m) (index n*P+m), labels (n+m) mod P, a seeded train/test split and the\n"
    "model inputs as frames: pairs i32 [N,2], labels i32 [N], train u8 [N], x (onehot f64 [N,2P] or\n"
    "tokens i32 [N,3] = n, m, '=' with '=' = P), and train_order i64 [ntrain]: the training rows in\n"
    "the order the training set lists them (minibatch samplers index this list).\n"
    "  -p P              modulus (default 29)\n"
    "  --encoding E      onehot (MLP, default) or tokens (Transformer)\n"
    "  --train-frac F    fraction of pairs in the training set (default 0.7)\n"
    "  --rng R           how the split permutation is drawn (default entk):\n"
    "                      entk    entk's own generator; training rows listed in row order\n"
    "                      torch   torch.manual_seed(S); torch.randperm(P*P), as the reference MLP\n"
    "                              notebook (entk-train --rng torch --seed S continues that stream)\n"
    "                      python  random.seed(S); random.shuffle(pairs), as the reference Transformer\n"
    "                              notebook\n"
    "  --seed S          seed of the split permutation (default 0)\n"
    "Example:\n"
    "  entk-modadd -p 29 --train-frac 0.7 --seed 0 -o data.frames && entk-show data.frames\n";

int main(int argc, char **argv) {
    cli_start(argc, argv);
    cli_common co = {0};
    int p = 29;
    long seed = 0;
    double frac = 0.7;
    const char *enc = "onehot", *rng = "entk";
    static struct option lo[] = {CLI_COMMON_LONGOPTS, {"encoding", required_argument, 0, 'e'},
                                 {"train-frac", required_argument, 0, 'f'}, {"seed", required_argument, 0, 's'},
                                 {"rng", required_argument, 0, 'r'}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:qhp:", lo, NULL)) != -1) {
        if (cli_common_opt(c, &co, help)) continue;
        switch (c) {
        case 'p': p = (int)cli_long("-p", optarg, 2, 1000); break;
        case 'e': enc = optarg; break;
        case 'f': frac = cli_double("--train-frac", optarg); break;
        case 's': seed = cli_long("--seed", optarg, 0, 1L << 62); break;
        case 'r': rng = optarg; break;
        default: cli_bad_option(argv);
        }
    }
    if (optind < argc) entk_die(ENTK_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[optind]);
    if (frac <= 0 || frac > 1) entk_die(ENTK_EXIT_USAGE, "--train-frac must be in (0, 1]");
    modadd d;
    modadd_make(&d, p, enc, frac, rng, (uint64_t)seed);
    char a0[32], a1[48], a2[48], a3[48], a4[48];
    snprintf(a0, sizeof a0, "p=%d", p);
    snprintf(a1, sizeof a1, "encoding=%s", enc);
    snprintf(a2, sizeof a2, "train_frac=%.17g", frac);
    snprintf(a3, sizeof a3, "seed=%ld", seed);
    snprintf(a4, sizeof a4, "rng=%s", rng);
    char *args[] = {a0, a1, a2, a3, a4};
    frame_header h = {.argc = 5, .argv = args};
    snprintf(h.producer, sizeof h.producer, "entk-modadd");
    h.key = frame_derive_key(h.producer, h.argc, h.argv, 0, NULL);
    frame_writer w;
    frame_writer_open(&w, co.output, &h);
    modadd_write(&w, &d);
    frame_writer_close(&w);
    modadd_free(&d);
    return 0;
}
