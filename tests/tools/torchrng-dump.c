/* torchrng-dump: prints lib/torchrng streams as text, one line per request, for the PyTorch /
 * CPython peer (tests/peer/torchrng_ref.py) to compare against the real generators.
 *   torchrng-dump SEED OP N [OP N ...]
 * OPs act in sequence on one torch generator seeded with SEED (as one script would):
 *   randn N, uniform N (uniform_(-1, 1)), randperm N, loader N (one DataLoader pass over N items),
 *   random64 N; and pyshuffle N (random.seed(SEED); random.shuffle(list(range(N)))). */
#include "core/cli.h"
#include "core/err.h"
#include "core/torchrng.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    entk_init(argv[0]);
    if (argc < 2 || (argc - 2) % 2) entk_die(ENTK_EXIT_USAGE, "usage: torchrng-dump SEED OP N [OP N ...]");
    uint64_t seed = (uint64_t)cli_long("SEED", argv[1], 0, 1L << 62);
    mt19937 g;
    torch_seed(&g, seed);
    for (int a = 2; a < argc; a += 2) {
        const char *op = argv[a];
        int64_t n = cli_long("N", argv[a + 1], 1, 1L << 24);
        float *f = xmalloc((size_t)n * sizeof(float));
        int64_t *ix = xmalloc((size_t)n * sizeof(int64_t));
        printf("%s", op);
        if (strcmp(op, "randn") == 0 || strcmp(op, "uniform") == 0) {
            if (op[0] == 'r') torch_randn_f32(&g, n, f); else torch_uniform_f32(&g, n, -1.0f, 1.0f, f);
            for (int64_t i = 0; i < n; i++) printf(" %.9g", f[i]);
        } else if (strcmp(op, "random64") == 0) {
            for (int64_t i = 0; i < n; i++) printf(" %llu", (unsigned long long)torch_random64(&g));
        } else if (strcmp(op, "randperm") == 0 || strcmp(op, "loader") == 0 || strcmp(op, "pyshuffle") == 0) {
            if (op[0] == 'r') torch_randperm(&g, n, ix);
            else if (op[0] == 'l') torch_dataloader_order(&g, n, ix);
            else { mt19937 py; python_seed(&py, seed); python_shuffle(&py, n, ix); }
            for (int64_t i = 0; i < n; i++) printf(" %lld", (long long)ix[i]);
        } else {
            entk_die(ENTK_EXIT_USAGE, "unknown op '%s'", op);
        }
        printf("\n");
        free(f); free(ix);
    }
    return 0;
}
