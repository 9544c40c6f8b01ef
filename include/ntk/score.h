/* score: how well single directions pick out binary labels of windows (Setting 3 of METHOD.md,
 * "Per-window score" to "Scoring"), model-agnostic.
 *
 * A direction is anything that gives each of N windows one number: an eNTK eigenvector reshaped to
 * [N, D] gives its rank-1 score (score_rank1), a principal component of activations its PC score
 * (pca.h). Everything after that sees only a [k, N] matrix of scores, so eNTK and PCA are scored
 * by the same code, and a "scores" stream (score_set) carries either.
 *
 * Metrics of scores s against binary labels y over n windows, P positives, Q = n - P negatives.
 * The thresholds are the distinct values of s (exact equality: tied scores form one group), in
 * descending order; at threshold t the windows with s >= t are predicted positive.
 *   AP        sum over thresholds of (R_t - R_prev) * P_t (recall, precision at t; R_prev = 0 before
 *             the first): scikit-learn's average_precision_score, ties included.
 *   AUROC     the trapezoid through the ROC points of those thresholds, which is the Mann-Whitney
 *             statistic (positive-negative pairs ordered right + 1/2 per tied pair) / (P Q):
 *             roc_auc_score. Counted in integers, divided once.
 *   precision@quota  quota q = P: the share of positives among the q highest scores. If the q-th
 *             place falls in a tied group of m windows with p positives, of which r places are
 *             above the cut, the group counts r p / m positives: the mean over every order of the
 *             tie, so the result never depends on how the windows are numbered.
 *   enrichment  precision@quota / (P / n).
 * A metric needs at least one positive and one negative (score_metrics returns 0 otherwise).
 *
 * Split (score_split): stratified 50/50 by class. One generator (rng.h, xoshiro256** seeded with
 * the seed); for each class c = 0, 1, ... in turn, its windows in increasing index order are
 * permuted by rng_permutation (Fisher-Yates from the back, j = rng_below(i + 1)), and the first
 * floor(n_c / 2) of that order go to train, the rest (the larger half when n_c is odd) to test.
 *
 * Choice (score_label): on the train half, for every direction j = 0..k-1 and sign + then -, the AP
 * of sign * S[j]; the best wins, ties (equal doubles) to the lower j and then to +. The chosen
 * direction and sign are then measured on the test half. A label without positives or without
 * negatives in either half is skipped, with the reason. */
#ifndef ENTK_SCORE_H
#define ENTK_SCORE_H
#include <stdint.h>
#include "core/frame.h"
#include "core/tensor.h"

typedef struct {
    double ap, auroc, precision, enrichment;    /* precision = precision@quota */
    int64_t n, positives;
} score_metrics;

/* The metrics of sign * s against y (0/1) over n windows; 0 (and m zeroed but for n, positives)
 * when y has no positive or no negative. */
int score_metrics_of(const double *s, const uint8_t *y, int64_t n, double sign, score_metrics *m);

/* train[i] = 1 for the train half, 0 for test; cls[i] >= 0 the class of window i. */
void score_split(const int32_t *cls, int64_t n, uint64_t seed, uint8_t *train);

typedef struct {
    char skipped[64];           /* "", or why the label was not scored */
    int direction;              /* 0-based row of S */
    int sign;                   /* +1 or -1 */
    double train_ap;
    int64_t n_train, n_test, pos_train, pos_test;
    score_metrics test;
} score_label_result;

/* S [k, N] row-major; y and train [N]. */
void score_label(const double *S, int64_t k, int64_t N, const uint8_t *y, const uint8_t *train, score_label_result *r);

/* Macro averages of the test metrics over the labels of a group that were scored. */
typedef struct {
    int scored, skipped;
    double ap, auroc, precision, enrichment;
} score_macro;
void score_macro_of(const score_label_result *r, int n, score_macro *m);

/* The rank-1 score of a direction A [N, D] (row-major): u1 * sigma1 of its top singular pair, into
 * score [N]; returns sigma1. Computed as A v1, v1 the top eigenvector of the smaller Gram (A^T A or
 * A A^T, LAPACK syevr for the one eigenpair). Sign: the largest |entry| of the score positive (the
 * first on ties), as entk-eig's eigenvectors. */
double score_rank1(const double *A, int64_t N, int64_t D, double *score);
/* Flips v [n] so its largest |entry| (the first on ties) is positive; returns the sign applied. */
double score_fix_sign(double *v, int64_t n);

/* A "scores" stream: what eNTK and PCA hand to label scoring. Frame 'scores' f64 [k, N] (row j =
 * direction j + 1's score of each window), meta
 *   method  "entk" or "pca"          layer   the block (int; -1 unknown)
 *   model   the model's key (hex)    windows the key of the windows stream scored ("" unknown)
 *   values  f64 [k]: eigenvalues (entk) or explained variances (pca)
 *   values_are  "eigenvalue" or "variance"
 * Other frames in the stream (PCA components, ...) are for people and are skipped by readers. */
typedef struct {
    char method[16], model[64], windows[64], values_are[16];
    int64_t layer;
    tensor scores;              /* [k, N] f64 */
    double *values;             /* [k] */
} score_set;

/* Writes the 'scores' frame, its meta extended by extra (may be NULL). */
void scores_write(frame_writer *w, const score_set *s, const meta *extra);
/* Reads one stream up to its end; returns 0 if it has no 'scores' frame (s untouched). */
int scores_read(frame_reader *r, score_set *s);
void scores_free(score_set *s);

/* Label scoring's records (README, Scoring), each with the method and layer of s:
 *   label_score {method, layer, group, label, direction (1-based), sign, train_ap, ap, auroc,
 *                precision_at_quota, enrichment, prevalence, positives_train, positives_test,
 *                n_train, n_test}; a skipped label has skipped = why instead of the metrics
 *   macro       {method, layer, group, labels (scored), skipped, ap, auroc, precision_at_quota,
 *                enrichment} (no metrics when no label was scored) */
void score_write_label(frame_writer *w, const score_set *s, const char *group, const char *label, const score_label_result *r);
void score_write_macro(frame_writer *w, const score_set *s, const char *group, const score_macro *m);
#endif
