/* torchrng: the random streams of a PyTorch (CPU) and a CPython reference script, re-implemented so
 * entk can start from exactly the weights, data split and minibatch order of the author's code
 * (torch.manual_seed + randn / uniform_ / randperm, DataLoader(shuffle=True), random.shuffle).
 * Integer streams are bit-identical; normal draws agree to float rounding (torch evaluates
 * log/sin/cos with vectorised approximations, we with libm).
 *
 * Both generators are MT19937 (Matsumoto & Nishimura); they differ only in how they are seeded
 * and how draws become numbers. */
#ifndef ENTK_TORCHRNG_H
#define ENTK_TORCHRNG_H
#include <stdint.h>

typedef struct {
    uint32_t mt[624];
    int next;                /* index of the next state word to temper; 624 = regenerate */
    uint64_t draws;          /* 32-bit words drawn since seeding */
    int has_normal;          /* torch caches the second Box-Muller value of its scalar path */
    double normal_spare;
} mt19937;

uint32_t mt_next(mt19937 *g);

/* torch.manual_seed(seed) / torch.Generator().manual_seed(seed): only the low 32 bits count. */
void torch_seed(mt19937 *g, uint64_t seed);
/* Skips n 32-bit draws (what an earlier consumer of the same generator took). */
void torch_skip(mt19937 *g, uint64_t n);
/* generator->random64(): two draws, the first is the high word. */
uint64_t torch_random64(mt19937 *g);
/* x.normal_() / torch.randn for a contiguous float32 tensor of n elements, in place. */
void torch_randn_f32(mt19937 *g, int64_t n, float *out);
/* x.uniform_(a, b) for float32: one draw per element (kaiming_uniform_ of nn.Linear). */
void torch_uniform_f32(mt19937 *g, int64_t n, float a, float b, float *out);
/* torch.randperm(n) (int64, CPU). */
void torch_randperm(mt19937 *g, int64_t n, int64_t *out);
/* The order in which one pass over DataLoader(dataset of n, shuffle=True) visits the dataset,
 * drawn from the global generator g as torch 1.x does: one int64 for the iterator's worker base
 * seed, one for the sampler's private generator, then randperm(n) from that generator. */
void torch_dataloader_order(mt19937 *g, int64_t n, int64_t *out);

/* random.seed(seed) for a non-negative integer seed < 2^64, and random.shuffle(x) applied to the
 * list 0..n-1. */
void python_seed(mt19937 *g, uint64_t seed);
void python_shuffle(mt19937 *g, int64_t n, int64_t *out);
#endif
