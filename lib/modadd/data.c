#include "modadd/data.h"
#include "core/err.h"
#include "core/rng.h"
#include "core/torchrng.h"
#include <stdlib.h>
#include <string.h>

void modadd_make(modadd *d, int p, const char *encoding, double train_frac, const char *rng_name, uint64_t seed) {
    memset(d, 0, sizeof *d);
    d->p = p;
    d->N = (int64_t)p * p;
    snprintf(d->encoding, sizeof d->encoding, "%s", encoding);
    d->pairs = tensor_2d(DT_I32, d->N, 2);
    d->labels = tensor_1d(DT_I32, d->N);
    d->train = tensor_1d(DT_U8, d->N);
    int32_t *pr = d->pairs.data, *lb = d->labels.data;
    for (int n = 0; n < p; n++)
        for (int m = 0; m < p; m++) {
            int64_t i = (int64_t)n * p + m;
            pr[2 * i] = n;
            pr[2 * i + 1] = m;
            lb[i] = (n + m) % p;
        }
    /* the first floor(frac * N) entries of a seeded permutation are the training set (as the
     * reference code's pairs[:int(frac * len(pairs))] and perm[:n_train]) */
    int64_t *perm = xmalloc((size_t)d->N * sizeof(int64_t));
    snprintf(d->rng, sizeof d->rng, "%s", rng_name);
    d->seed = (int64_t)seed;
    if (strcmp(rng_name, "entk") == 0) {
        rng r;
        rng_seed(&r, seed);
        rng_permutation(&r, d->N, perm);
    } else if (strcmp(rng_name, "torch") == 0) {
        mt19937 g;
        torch_seed(&g, seed);
        torch_randperm(&g, d->N, perm);
        d->torch_draws = (int64_t)g.draws;
    } else if (strcmp(rng_name, "python") == 0) {
        mt19937 g;
        python_seed(&g, seed);
        python_shuffle(&g, d->N, perm);
    } else {
        entk_die(ENTK_EXIT_USAGE, "--rng must be entk, torch or python, not '%s'", rng_name);
    }
    int64_t ntrain = (int64_t)(train_frac * (double)d->N);
    uint8_t *mask = d->train.data;
    for (int64_t i = 0; i < ntrain; i++) mask[perm[i]] = 1;
    d->train_order = tensor_1d(DT_I64, ntrain);
    int64_t *order = d->train_order.data;
    if (strcmp(rng_name, "entk") == 0) {
        for (int64_t n = 0, j = 0; n < d->N; n++)
            if (mask[n]) order[j++] = n;
    } else {
        memcpy(order, perm, (size_t)ntrain * sizeof(int64_t));
    }
    free(perm);
    if (strcmp(encoding, "onehot") == 0) {
        d->x = tensor_2d(DT_F64, d->N, 2 * p);
        double *x = d->x.data;
        for (int64_t i = 0; i < d->N; i++) {
            x[i * 2 * p + pr[2 * i]] = 1;
            x[i * 2 * p + p + pr[2 * i + 1]] = 1;
        }
    } else if (strcmp(encoding, "tokens") == 0) {
        d->x = tensor_2d(DT_I32, d->N, 3);
        int32_t *x = d->x.data;
        for (int64_t i = 0; i < d->N; i++) {
            x[3 * i] = pr[2 * i];
            x[3 * i + 1] = pr[2 * i + 1];
            x[3 * i + 2] = p;
        }
    } else {
        entk_die(ENTK_EXIT_USAGE, "--encoding must be onehot or tokens, not '%s'", encoding);
    }
}

void modadd_write(frame_writer *w, const modadd *d) {
    meta m = {0};
    meta_i64(&m, "p", d->p);
    frame_write_tensor(w, "pairs", &d->pairs, &m);
    frame_write_tensor(w, "labels", &d->labels, &m);
    frame_write_tensor(w, "train", &d->train, &m);
    meta split = m;
    meta_str(&split, "rng", d->rng);
    meta_i64(&split, "seed", d->seed);
    meta_i64(&split, "torch_draws", d->torch_draws);
    frame_write_tensor(w, "train_order", &d->train_order, &split);
    meta_str(&m, "encoding", d->encoding);
    frame_write_tensor(w, "x", &d->x, &m);
}

void modadd_read(frame_reader *r, modadd *d) {
    memset(d, 0, sizeof *d);
    frame f;
    frame_read_tensor(r, &f, "pairs");
    int64_t p;
    if (!meta_get_i64(&f.meta, "p", &p) || p < 2 || p > 100000) frame_fail(r, &f, "missing or bad modulus p");
    d->p = (int)p;
    d->N = p * p;
    frame_expect_shape(r, &f, 2, (int64_t[]){d->N, 2});
    d->pairs = frame_take(r, &f, DT_I32);
    frame_read_tensor(r, &f, "labels");
    frame_expect_shape(r, &f, 1, (int64_t[]){d->N});
    d->labels = frame_take(r, &f, DT_I32);
    frame_read_tensor(r, &f, "train");
    frame_expect_shape(r, &f, 1, (int64_t[]){d->N});
    d->train = frame_take(r, &f, DT_U8);
    frame_read_tensor(r, &f, "train_order");
    int64_t ntrain = 0;
    for (int64_t i = 0; i < d->N; i++) ntrain += ((const uint8_t *)d->train.data)[i] != 0;
    frame_expect_shape(r, &f, 1, (int64_t[]){ntrain});
    d->train_order = frame_take(r, &f, DT_I64);
    if (!meta_get_str(&f.meta, "rng", d->rng, sizeof d->rng) || !meta_get_i64(&f.meta, "seed", &d->seed) ||
        !meta_get_i64(&f.meta, "torch_draws", &d->torch_draws) || d->torch_draws < 0)
        frame_fail(r, &f, "missing or bad rng, seed or torch_draws");
    /* every training row exactly once: a sampler indexing this list must see the training set */
    uint8_t *seen = xcalloc((size_t)d->N, 1);
    for (int64_t i = 0; i < ntrain; i++) {
        int64_t n = ((const int64_t *)d->train_order.data)[i];
        if (n < 0 || n >= d->N || !((const uint8_t *)d->train.data)[n] || seen[n])
            frame_fail(r, &f, "entry %lld (%lld) is not a training row listed once", (long long)i, (long long)n);
        seen[n] = 1;
    }
    free(seen);
    frame_read_tensor(r, &f, "x");
    if (!meta_get_str(&f.meta, "encoding", d->encoding, sizeof d->encoding)) frame_fail(r, &f, "missing encoding");
    if (strcmp(d->encoding, "onehot") == 0) {
        frame_expect_shape(r, &f, 2, (int64_t[]){d->N, 2 * p});
        d->x = frame_take(r, &f, DT_F64);
    } else if (strcmp(d->encoding, "tokens") == 0) {
        frame_expect_shape(r, &f, 2, (int64_t[]){d->N, 3});
        d->x = frame_take(r, &f, DT_I32);
    } else {
        frame_fail(r, &f, "unknown encoding '%s'", d->encoding);
    }
    const int32_t *pr = d->pairs.data, *lb = d->labels.data;
    for (int64_t i = 0; i < d->N; i++)
        if (pr[2 * i] < 0 || pr[2 * i] >= p || pr[2 * i + 1] < 0 || pr[2 * i + 1] >= p || lb[i] < 0 || lb[i] >= p)
            frame_fail(r, &f, "pair or label %lld out of range for p=%lld", (long long)i, (long long)p);
}

void modadd_free(modadd *d) {
    tensor_free(&d->pairs);
    tensor_free(&d->labels);
    tensor_free(&d->train);
    tensor_free(&d->train_order);
    tensor_free(&d->x);
}
