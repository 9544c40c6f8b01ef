/* fourier: candidate feature families over the p^2 modular-addition inputs (index n*p + m),
 * METHOD.md "Subspace overlap": for each frequency k, the columns cos(2 pi k v / p) and
 * sin(2 pi k v / p) with v = n (family n), m (m), n+m (sum), n-m (diff); axis_sum and axis_diff
 * are F_k(n) + F_k(m) and F_k(n) - F_k(m); random is a Gaussian control of the same shape. */
#ifndef ENTK_FOURIER_H
#define ENTK_FOURIER_H
#include <stdint.h>
#include "core/tensor.h"

/* freqs NULL = all k = 1..floor(p/2). Returns [p^2, 2*nfreq] f64. dies on an unknown family. */
tensor features_make(const char *family, int p, const long *freqs, int nfreq, uint64_t seed);
/* Key frequencies of an embedding E [>=p, d]: the mean over columns of |FFT_k(E[:p, col])|^2 for
 * k = 0..p-1 into power[p]; returns the nkeep frequencies in 1..p/2 with the largest power
 * (counting k and p-k together), sorted by decreasing power, into keys [p/2]. nkeep <= 0: those with at
 * least a tenth of the strongest frequency's power. */
int features_key_frequencies(const tensor *E, int p, int nkeep, double *power, long *keys);
#endif
