/* modadd: the modular-addition data set: all p^2 pairs (n, m), index = n*p + m (the order of
 * torch.cartesian_prod), label (n + m) mod p, a seeded train/test split, and the model inputs:
 * "onehot" (concat of two one-hots, p^2 x 2p, for the MLP) or "tokens" ([n, m, p], p^2 x 3, for the
 * Transformer; token p is '='). Read back from frames by modadd_read. */
#ifndef ENTK_MODADD_H
#define ENTK_MODADD_H
#include <stdint.h>
#include "core/frame.h"
#include "core/tensor.h"

typedef struct {
    int p;
    int64_t N;
    char encoding[16];   /* "onehot" or "tokens" */
    tensor pairs;        /* i32 [N, 2] */
    tensor labels;       /* i32 [N] */
    tensor train;        /* u8 [N]: 1 = training example */
    tensor train_order;  /* i64 [ntrain]: the training rows in the order the training set lists
                          * them (a minibatch sampler indexes this list) */
    char rng[16];        /* how the split was drawn: "entk", "torch" or "python" (split_rng) */
    int64_t seed;
    int64_t torch_draws; /* rng "torch": 32-bit words the split took from torch's generator */
    tensor x;            /* onehot: f64 [N, 2p]; tokens: i32 [N, 3] */
} modadd;

/* The split is the first floor(train_frac * N) entries of a permutation of the rows drawn by rng:
 *   "entk"   entk's own generator (rng.h); the training set is listed in row order
 *   "torch"  torch.manual_seed(seed); torch.randperm(N)          (the reference MLP notebook)
 *   "python" random.seed(seed); random.shuffle(list of pairs)    (the reference Transformer notebook)
 * For torch and python the training set is listed in the permutation's order, as the scripts'. */
void modadd_make(modadd *d, int p, const char *encoding, double train_frac, const char *rng, uint64_t seed);
void modadd_write(frame_writer *w, const modadd *d);
/* Reads the frames modadd_write wrote (after the header), validating shapes. */
void modadd_read(frame_reader *r, modadd *d);
void modadd_free(modadd *d);
#endif
