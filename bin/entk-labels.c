/* entk-labels: how well single directions (eNTK or PCA scores) pick out the part-of-speech and
 * morphology labels of Setting 3's windows. A filter of its own next to entk-align: entk-align
 * measures subspaces against feature families, this one ranks windows by one direction at a time
 * against binary labels, with a train/test split; the inputs, options and records differ. */
#include "core/cli.h"
#include "core/err.h"
#include "core/frame.h"
#include "ntk/score.h"
#include "windows/windows.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "Usage: entk-labels [--seed S] [--top K] WINDOWS SCORES\n"
    "Scores the labels of an entk-windows stream (WINDOWS: each UPOS class one-vs-rest, group pos; each\n"
    "feature label, group morph) against a scores stream (SCORES: entk-eig --pca, or eNTK rank-1 scores;\n"
    "README, Scoring). The windows are split 50/50 within each class (seeded); for each label the one\n"
    "direction among the first K, and the sign, with the best average precision on the train half is\n"
    "measured on the test half: AP, AUROC, precision@quota (quota = test positives), enrichment.\n"
    "Writes per scores stream a tensor 'split' u8 [N] (1 = train, 0 = test), a record 'label_score' per\n"
    "label {method, layer, group, label, direction (1-based), sign, train_ap, ap, auroc,\n"
    "precision_at_quota, enrichment, prevalence, positives_train, positives_test, n_train, n_test} (a\n"
    "label without positives or negatives in a half: skipped = why, no metrics) and a record 'macro'\n"
    "per group {method, layer, group, labels, skipped, ap, auroc, precision_at_quota, enrichment}.\n"
    "Several scores streams (one per layer, say) give as many output streams. Either input may be '-'.\n";

static const char *examples =
    "Example (PCA of stories260K's residual stream after block 2 against the window labels):\n"
    "  make -C pipelines/lm-windows OUT=lmw && W=lmw/stories260K/windows.frames\n"
    "  entk-forward -m ../shared/models/stories260K/stories260K.bin --outputs resid --layers 2 $W \\\n"
    "    | entk-eig --pca | entk-labels $W - \\\n"
    "    | entk-show --name label_score --fields group,label,direction,sign,ap,auroc,precision_at_quota,enrichment\n";

/* The labels of one group: 0/1 rows [n, N] and their names. */
typedef struct {
    const char *group;
    int n;
    char **names;
    uint8_t *y;
} label_group;

static label_group class_group(const win_labels *l) {
    label_group g = {"pos", l->nclasses, l->class_names, xmalloc((size_t)(l->nclasses * l->n) + 1)};
    for (int c = 0; c < l->nclasses; c++)
        for (int64_t i = 0; i < l->n; i++) g.y[c * l->n + i] = l->cls[i] == c;
    return g;
}

static label_group feature_group(const win_labels *l) {
    label_group g = {"morph", l->nfeats, l->feat_names, xmalloc((size_t)(l->nfeats * l->n) + 1)};
    for (int c = 0; c < l->nfeats; c++)
        for (int64_t i = 0; i < l->n; i++) g.y[c * l->n + i] = l->feats[i * l->nfeats + c] != 0;
    return g;
}

/* The k test windows that direction r->direction with sign r->sign ranks highest (ties: the lower
 * index first): record 'examples' {method, layer, group, label, direction, sign, windows, positive,
 * text (one line each, when the windows stream has its text)}. */
static void write_examples(frame_writer *w, const score_set *s, const win_labels *l, const char *group, const char *label,
                           const score_label_result *r, const uint8_t *y, const uint8_t *train, int k) {
    int64_t N = l->n, n = 0;
    const double *sc = (const double *)s->scores.data + (int64_t)r->direction * N;
    int64_t *best = xmalloc((size_t)k * sizeof *best);
    for (int64_t i = 0; i < N; i++) { /* insertion into the k best so far */
        if (train[i]) continue;
        double v = r->sign * sc[i];
        int64_t j = n < k ? n++ : k;
        if (j == k && !(v > r->sign * sc[best[k - 1]])) continue;
        if (j == k) j = k - 1;
        while (j > 0 && v > r->sign * sc[best[j - 1]]) { best[j] = best[j - 1]; j--; }
        best[j] = i;
    }
    int64_t *pos = xmalloc((size_t)k * sizeof *pos);
    size_t len = 1;
    for (int64_t i = 0; i < n; i++) {
        pos[i] = y[best[i]];
        if (l->text) len += strlen(l->text[best[i]]) + 1;
    }
    char *text = xmalloc(len);
    text[0] = 0;
    for (int64_t i = 0; l->text && i < n; i++) strcat(strcat(text, l->text[best[i]]), "\n");
    meta m = {0};
    meta_str(&m, "method", s->method);
    meta_i64(&m, "layer", s->layer);
    meta_str(&m, "group", group);
    meta_str(&m, "label", label);
    meta_i64(&m, "direction", r->direction + 1);
    meta_i64(&m, "sign", r->sign);
    meta_i64s(&m, "windows", best, n);
    meta_i64s(&m, "positive", pos, n);
    if (l->text) meta_str(&m, "text", text);
    frame_write_record(w, "examples", &m);
    free(best);
    free(pos);
    free(text);
}

typedef struct {
    long top;
    uint64_t seed;
    int examples;
    cli_spec *spec;     /* the options, for the header's canonical args */
} label_opts;

/* One scores stream against the labels: one output stream. */
static void score_stream(frame_reader *sr, const score_set *s, const win_labels *l, const char *wsrc, const uint8_t *train,
                         const label_group *groups, int ngroups, const label_opts *o, frame_writer *w) {
    long top = o->top;
    int examples = o->examples;
    int64_t k = s->scores.shape[0], N = s->scores.shape[1];
    if (N != l->n)
        entk_die(ENTK_EXIT_INPUT, "%s scores %lld windows but %s labels %lld: not the same windows", sr->src, (long long)N, wsrc,
                 (long long)l->n);
    if (s->windows[0] && strcmp(s->windows, l->key.hex) != 0)
        entk_die(ENTK_EXIT_INPUT, "%s scores the windows of stream %s but %s is stream %s: not the same windows", sr->src,
                 s->windows, wsrc, l->key.hex);
    if (!s->windows[0]) entk_log("note: %s does not say which windows it scores; only their number is checked", sr->src);
    if (k < top)
        entk_die(cli_find(o->spec, "top")->given ? ENTK_EXIT_USAGE : ENTK_EXIT_INPUT, "%s has %lld directions, fewer than --top %ld", sr->src,
                 (long long)k, top);
    cli_args a = {0};
    cli_args_key(&a, o->spec);
    const char *inames[] = {wsrc, sr->src};
    entk_key ikeys[] = {l->key, sr->h.key};
    frame_header h;
    frame_header_make(&h, "entk-labels", a.argc, a.argv, 2, inames, ikeys);
    frame_writer_stream(w, o->spec->co.output, &h);
    cli_args_free(&a);
    tensor split = tensor_1d(DT_U8, N);
    memcpy(split.data, train, (size_t)N);
    int64_t ntrain = 0;
    for (int64_t i = 0; i < N; i++) ntrain += train[i];
    meta ms = {0};
    meta_i64(&ms, "seed", (int64_t)o->seed);
    meta_i64(&ms, "n_train", ntrain);
    meta_i64(&ms, "n_test", N - ntrain);
    frame_write_tensor(w, "split", &split, &ms);
    tensor_free(&split);
    for (int gi = 0; gi < ngroups; gi++) {
        const label_group *g = &groups[gi];
        score_label_result *res = xcalloc((size_t)g->n + 1, sizeof *res);
        for (int c = 0; c < g->n; c++) {
            score_label(s->scores.data, top, N, g->y + (int64_t)c * N, train, &res[c]);
            if (res[c].skipped[0]) entk_log("%s %s: skipped: %s", g->group, g->names[c], res[c].skipped);
            score_write_label(w, s, g->group, g->names[c], &res[c]);
            if (examples > 0 && !res[c].skipped[0])
                write_examples(w, s, l, g->group, g->names[c], &res[c], g->y + (int64_t)c * N, train, examples);
        }
        score_macro m;
        score_macro_of(res, g->n, &m);
        score_write_macro(w, s, g->group, &m);
        if (m.scored)
            entk_log("%s layer %lld, %s: macro AP %.3f, AUROC %.3f, precision@quota %.3f, enrichment %.2f over %d labels (%d skipped)",
                     s->method, (long long)s->layer, g->group, m.ap, m.auroc, m.precision, m.enrichment, m.scored, m.skipped);
        else
            entk_log("%s layer %lld, %s: no label scored (%d skipped)", s->method, (long long)s->layer, g->group, m.skipped);
        free(res);
    }
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    label_opts o = {.top = 25};
    cli_opt opts[] = {
        {"seed", 0, CLI_U64, &o.seed, "S", CLI_KEY_EQ, .min = 0, .max = 0x7fffffffffffffffL, .help = "seed of the split (default 0)"},
        {"top", 0, CLI_LONG, &o.top, "K", CLI_KEY_EQ, .min = 1, .max = 1L << 30,
         .help = "directions to choose from (default 25; the scores must have at least K)"},
        /* examples=K only when asked for: plain runs keep their keys */
        {"examples", 0, CLI_INT, &o.examples, "K", CLI_KEY_EQ, .min = 0, .max = 1000, .show = cli_show_nonzero,
         .help = "also a record 'examples' per scored label: the K test windows its direction ranks\n"
                 "highest {method, layer, group, label, direction, sign, windows, positive, text: one\n"
                 "line each, the window's last 12 tokens, a tab and the next word, when WINDOWS has\n"
                 "its text}"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    o.spec = &spec;
    int first = cli_parse(&spec, argc, argv);
    if (argc - first != 2) entk_die(ENTK_EXIT_USAGE, "need WINDOWS and SCORES inputs (see --help)");
    if (strcmp(argv[first], "-") == 0 && strcmp(argv[first + 1], "-") == 0) entk_die(ENTK_EXIT_USAGE, "only one input can be stdin");
    frame_reader wr;
    frame_reader_open(&wr, argv[first]);
    win_labels l;
    win_labels_read(&wr, &l);
    char wsrc[256];
    snprintf(wsrc, sizeof wsrc, "%s", wr.src);
    frame_reader_close(&wr);
    uint8_t *train = xmalloc((size_t)l.n + 1);
    score_split(l.cls, l.n, o.seed, train);
    label_group groups[2] = {class_group(&l), feature_group(&l)};

    frame_reader sr;
    frame_reader_open_streams(&sr, argv[first + 1]);
    frame_writer w = {0};
    do {
        score_set s;
        if (!scores_read(&sr, &s)) entk_die(ENTK_EXIT_INPUT, "%s: no 'scores' frame (entk-eig --pca writes one)", sr.src);
        score_stream(&sr, &s, &l, wsrc, train, groups, 2, &o, &w);
        scores_free(&s);
    } while (frame_reader_next_stream(&sr));
    frame_writer_close(&w);
    frame_reader_close(&sr);
    free(groups[0].y);
    free(groups[1].y);
    free(train);
    win_labels_free(&l);
    return 0;
}
