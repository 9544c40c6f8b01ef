/* rng: seeded, platform-independent random numbers (xoshiro256** seeded by splitmix64), so a run
 * with the same seed gives the same weights and splits everywhere. */
#ifndef ENTK_RNG_H
#define ENTK_RNG_H
#include <stdint.h>

typedef struct { uint64_t s[4]; int has_spare; double spare; } rng;

void rng_seed(rng *r, uint64_t seed);
uint64_t rng_next(rng *r);
double rng_uniform(rng *r);            /* [0, 1) */
double rng_normal(rng *r);             /* N(0, 1), Box-Muller */
uint64_t rng_below(rng *r, uint64_t n); /* uniform in [0, n) without modulo bias */
void rng_permutation(rng *r, int64_t n, int64_t *out);   /* Fisher-Yates */
/* out = 0..n-1 shuffled by Fisher-Yates from the back, j = below(gen, i + 1) uniform in [0, i + 1)
 * for i = n-1 .. 1: rng_permutation, and CPython's random.shuffle with its own generator
 * (torchrng.h). */
void fisher_yates(int64_t n, int64_t *out, uint64_t (*below)(void *gen, uint64_t k), void *gen);
#endif
