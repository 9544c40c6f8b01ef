#include "core/torchrng.h"
#include "core/err.h"
#include "core/rng.h"
#include <math.h>
#include <stdlib.h>

enum { MT_N = 624, MT_M = 397 };

static void mt_init(mt19937 *g, uint32_t s) {
    g->mt[0] = s;
    for (int i = 1; i < MT_N; i++) g->mt[i] = 1812433253u * (g->mt[i - 1] ^ (g->mt[i - 1] >> 30)) + (uint32_t)i;
    g->next = MT_N;
    g->draws = 0;
    g->has_normal = 0;
}

static void mt_twist(mt19937 *g) {
    for (int i = 0; i < MT_N; i++) {
        uint32_t y = (g->mt[i] & 0x80000000u) | (g->mt[(i + 1) % MT_N] & 0x7fffffffu);
        g->mt[i] = g->mt[(i + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    g->next = 0;
}

uint32_t mt_next(mt19937 *g) {
    if (g->next >= MT_N) mt_twist(g);
    uint32_t y = g->mt[g->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    g->draws++;
    return y;
}

void torch_seed(mt19937 *g, uint64_t seed) { mt_init(g, (uint32_t)(seed & 0xffffffffu)); }

void torch_skip(mt19937 *g, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) mt_next(g);
}

uint64_t torch_random64(mt19937 *g) {
    uint64_t hi = mt_next(g), lo = mt_next(g);
    return hi << 32 | lo;
}

/* uniform_real_distribution<float>(0, 1): the low 24 bits of one draw */
static float uniform01_f32(mt19937 *g) { return (float)(mt_next(g) & 0xffffffu) * 0x1.0p-24f; }

/* torch's normal_fill_16: Box-Muller over 16 uniforms, first half cos, second half sin */
static void normal_fill_16(float *d) {
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j], u2 = d[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        float theta = (float)(2.0 * M_PI) * u2; /* in float, as torch */
        d[j] = radius * cosf(theta);
        d[j + 8] = radius * sinf(theta);
    }
}

/* normal_distribution<double> of torch's scalar path (tensors under 16 elements): 53-bit uniforms,
 * and the sin half kept in the generator for the next call */
static double normal_scalar(mt19937 *g) {
    if (g->has_normal) {
        g->has_normal = 0;
        return g->normal_spare;
    }
    double u1 = (double)(torch_random64(g) & ((1ull << 53) - 1)) * 0x1.0p-53;
    double u2 = (double)(torch_random64(g) & ((1ull << 53) - 1)) * 0x1.0p-53;
    double r = sqrt(-2.0 * log(1.0 - u2)), theta = 2.0 * M_PI * u1;
    g->normal_spare = r * sin(theta);
    g->has_normal = 1;
    return r * cos(theta);
}

void torch_randn_f32(mt19937 *g, int64_t n, float *out) {
    if (n < 16) {
        for (int64_t i = 0; i < n; i++) out[i] = (float)normal_scalar(g);
        return;
    }
    for (int64_t i = 0; i < n; i++) out[i] = uniform01_f32(g);
    for (int64_t i = 0; i + 16 <= n; i += 16) normal_fill_16(out + i);
    if (n % 16) {
        /* torch redraws the last 16 values (overlapping the last full block) */
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = uniform01_f32(g);
        normal_fill_16(tail);
    }
}

void torch_uniform_f32(mt19937 *g, int64_t n, float a, float b, float *out) {
    for (int64_t i = 0; i < n; i++) {
        float x = uniform01_f32(g) * (b - a) + a;
        if (out) out[i] = x;
    }
}

void torch_randperm(mt19937 *g, int64_t n, int64_t *out) {
    for (int64_t i = 0; i < n; i++) out[i] = i;
    /* forward Fisher-Yates with a modulo draw, as ATen's randperm_cpu */
    for (int64_t i = 0; i < n - 1; i++) {
        int64_t z = (int64_t)(mt_next(g) % (uint64_t)(n - i)), t = out[i];
        out[i] = out[z + i];
        out[z + i] = t;
    }
}

void torch_dataloader_order(mt19937 *g, int64_t n, int64_t *out) {
    torch_random64(g); /* _BaseDataLoaderIter._base_seed, for workers we do not have */
    /* RandomSampler: int(torch.empty((), dtype=torch.int64).random_()) seeds a fresh generator */
    uint64_t seed = torch_random64(g) % (1ull << 63);
    mt19937 sampler;
    torch_seed(&sampler, seed);
    torch_randperm(&sampler, n, out);
}

void python_seed(mt19937 *g, uint64_t seed) {
    /* random.seed(int): init_by_array over the 32-bit words of |seed|, at least one word */
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    int klen = key[1] ? 2 : 1;
    mt_init(g, 19650218u);
    uint32_t *mt = g->mt;
    int i = 1, j = 0;
    for (int k = MT_N > klen ? MT_N : klen; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++; j++;
        if (i >= MT_N) { mt[0] = mt[MT_N - 1]; i = 1; }
        if (j >= klen) j = 0;
    }
    for (int k = MT_N - 1; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= MT_N) { mt[0] = mt[MT_N - 1]; i = 1; }
    }
    mt[0] = 0x80000000u;
}

/* Random._randbelow_with_getrandbits: rejection sampling on bit_length(n) bits */
static uint64_t python_randbelow(void *g, uint64_t n) {
    int k = 0;
    while (k < 64 && (n >> k)) k++;
    if (k > 32) entk_die(ENTK_EXIT_USAGE, "python_shuffle: lists over 2^32 elements are not supported");
    uint64_t r;
    do r = mt_next(g) >> (32 - k); while (r >= n);
    return r;
}

void python_shuffle(mt19937 *g, int64_t n, int64_t *out) { fisher_yates(n, out, python_randbelow, g); }
