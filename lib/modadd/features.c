#include "modadd/features.h"
#include "core/err.h"
#include "core/rng.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

tensor features_make(const char *family, int p, const long *freqs, int nfreq, uint64_t seed) {
    long all[512];
    if (!freqs) {
        nfreq = p / 2;
        if (nfreq > 512) nfreq = 512;
        for (int i = 0; i < nfreq; i++) all[i] = i + 1;
        freqs = all;
    }
    for (int i = 0; i < nfreq; i++)
        if (freqs[i] < 1 || freqs[i] > p / 2) entk_die(ENTK_EXIT_USAGE, "frequency %ld outside 1..%d", freqs[i], p / 2);
    int64_t N = (int64_t)p * p, d = 2 * nfreq;
    tensor F = tensor_2d(DT_F64, N, d);
    double *f = F.data;
    if (strcmp(family, "random") == 0) {
        rng r;
        rng_seed(&r, seed);
        for (int64_t i = 0; i < N * d; i++) f[i] = rng_normal(&r);
        return F;
    }
    enum { FN, FM, FSUM, FDIFF, FAXSUM, FAXDIFF } kind;
    if (strcmp(family, "n") == 0) kind = FN;
    else if (strcmp(family, "m") == 0) kind = FM;
    else if (strcmp(family, "sum") == 0) kind = FSUM;
    else if (strcmp(family, "diff") == 0) kind = FDIFF;
    else if (strcmp(family, "axis_sum") == 0) kind = FAXSUM;
    else if (strcmp(family, "axis_diff") == 0) kind = FAXDIFF;
    else entk_die(ENTK_EXIT_USAGE, "unknown feature family '%s' (n, m, sum, diff, axis_sum, axis_diff, random)", family);
    for (int n = 0; n < p; n++)
        for (int m = 0; m < p; m++) {
            double *row = f + ((int64_t)n * p + m) * d;
            for (int i = 0; i < nfreq; i++) {
                double w = 2 * M_PI * (double)freqs[i] / p;
                /* reduce v mod p first so cos/sin see small exact arguments */
                int vn = n, vm = m, vs = (n + m) % p, vd = ((n - m) % p + p) % p;
                double c, s;
                switch (kind) {
                case FN: c = cos(w * vn); s = sin(w * vn); break;
                case FM: c = cos(w * vm); s = sin(w * vm); break;
                case FSUM: c = cos(w * vs); s = sin(w * vs); break;
                case FDIFF: c = cos(w * vd); s = sin(w * vd); break;
                case FAXSUM: c = cos(w * vn) + cos(w * vm); s = sin(w * vn) + sin(w * vm); break;
                default: c = cos(w * vn) - cos(w * vm); s = sin(w * vn) - sin(w * vm); break;
                }
                row[2 * i] = c;
                row[2 * i + 1] = s;
            }
        }
    return F;
}

int features_key_frequencies(const tensor *E, int p, int nkeep, double *power, long *keys) {
    int64_t d = E->shape[1];
    for (int k = 0; k < p; k++) {
        double acc = 0;
        for (int64_t col = 0; col < d; col++) {
            double re = 0, im = 0;
            for (int t = 0; t < p; t++) {
                double x = tensor_get(E, (int64_t)t * d + col), a = -2 * M_PI * (double)k * t / p;
                re += x * cos(a);
                im += x * sin(a);
            }
            acc += re * re + im * im;
        }
        power[k] = acc / (double)d;
    }
    int nk = p / 2, n = 0;
    double *score = xmalloc((size_t)(nk + 1) * sizeof(double));
    int *used = xcalloc((size_t)nk + 1, sizeof(int));
    for (int k = 1; k <= nk; k++) score[k] = power[k] + power[p - k];
    int want = nkeep > 0 ? nkeep : nk;
    for (; n < want && n < nk; n++) {
        int best = 0;
        for (int k = 1; k <= nk; k++)
            if (!used[k] && (!best || score[k] > score[best])) best = k;
        used[best] = 1;
        keys[n] = best;
    }
    if (nkeep <= 0) {
        /* a trained model uses a few frequencies whose power stands far above all others (Nanda et
         * al. 2023). For p = 29 we see 2 to 4 of them within a factor 2 of each other, the rest at
         * about 1% of the strongest, and now and then a weak one near 8%: the weak ones do not
         * carry the eNTK's top modes (with it the W_U overlap of one seed drops from 89% to 68%),
         * so keys are the frequencies within an order of magnitude of the strongest */
        int cut = 1;
        while (cut < n && score[keys[cut]] >= 0.1 * score[keys[0]]) cut++;
        n = cut;
    }
    free(score);
    free(used);
    return n;
}
