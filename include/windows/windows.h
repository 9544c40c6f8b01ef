/* lmwindows: the TinyStories window data set of the paper's Setting 3 (METHOD.md).
 *
 * Input: tagged stories (text, word byte ranges, the tagger's UPOS and features per word, as
 * `entk-tag tag --stories` writes them), the model and its tokenizer. Each story is tokenized
 * whole, without BOS; the token byte ranges map words to tokens.
 *
 * Candidates. A word is a candidate position when
 *   - its UPOS is one of the classes (default PUNCT PRON PROPN DET ADV CCONJ NOUN VERB);
 *   - it is a single word for the tokenizer: its first token starts at the word (or at the
 *     whitespace just before it, as "▁cat" does) and its last token ends at the word (or in the
 *     whitespace after it), so no token is shared with a neighbouring word: the window ends exactly
 *     before the word and the tokens that follow spell this word alone (a token like ',"' makes
 *     neither ',' nor '"' a candidate; nor does 'n't' when "don't" is one token);
 *   - at least T (default 64) tokens of the story come before its first token.
 * The window is the T tokens right before the word's first token (no BOS).
 *
 * Sampling. All candidates are shuffled once (seed); each class takes its candidates in that
 * order. The model-agreement filter is evaluated lazily, in batches, only as far down each class's
 * order as it takes to keep `cap` windows, so the kept set is the first `cap` agreeing candidates of
 * each class in the sampling order (cap 0: all of them).
 *
 * Agreement filter. The model continues the window greedily, token by token (batched forwards of
 * many windows), until the first generated word is complete (the text goes on after it) or
 * gen_tokens tokens are generated, or it emits BOS/EOS. The window and the continuation are decoded
 * together; the word splitter (wordsplit.h) finds the first word that ends after the window's text;
 * the tagger tags the sentence it is in, from the sentence's start in the window's text up to and
 * including that word (context WIN_CTX_WORD: "window text + generated word") or up to the end of the
 * generated text (WIN_CTX_REST). The window is kept iff that word's UPOS equals the true word's
 * UPOS. No word (only whitespace, BOS/EOS, or a continuation of the window's last word, as "the" +
 * "re") counts as disagreement.
 *
 * Feature labels: for every UD feature value the tagger predicts (Number=Sing, Tense=Past, ...),
 * the binary label "the true word has it", kept if at least min_support kept windows have it. */
#ifndef ENTK_LMWINDOWS_H
#define ENTK_LMWINDOWS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "text/bpe.h"
#include "core/frame.h"
#include "core/hash.h"
#include "lm/model.h"
#include "text/tagger.h"
#include "text/tokenizer.h"

/* One tagged story. */
typedef struct {
    const char *text;
    size_t len;
    int64_t file_start;     /* byte offset of text in the original file (entk-tag's meta start) */
    size_t nwords;
    const int64_t *offs;    /* [nwords, 2] word byte ranges in text */
    const int32_t *upos;    /* [nwords] tagger UPOS ids */
    const int32_t *feats;   /* [nwords, TAG_NFEATS] tagger feature value ids (0 = absent) */
} win_story;

enum { WIN_CTX_WORD = 0, WIN_CTX_REST = 1 };

typedef struct {
    int T;                  /* window length in tokens (64) */
    int cap;                /* windows per class (128); 0 = every agreeing candidate */
    int nclasses;
    char **classes;         /* UPOS names */
    uint64_t seed;          /* sampling order */
    int gen_tokens;         /* most tokens generated per window (8) */
    int context;            /* WIN_CTX_WORD or WIN_CTX_REST */
    int min_support;        /* feature labels kept with at least this many positives (30) */
    int batch;              /* windows per forward (64) */
    int filter;             /* 0: keep candidates without running the model */
} win_opts;

/* One examined window (kept or dropped). */
typedef struct {
    int cls;                /* index into opts classes */
    int32_t story, word;    /* story index, word index in the story */
    int64_t start, end;     /* the word's bytes in the story text */
    int64_t win_start;      /* byte where the window's text starts in the story text */
    int32_t token;          /* index of the word's first token in the story's tokens */
    int32_t next_token;     /* that token's id (the true next token) */
    int32_t predicted;      /* tagger UPOS id of the generated word; -1: no word (dropped) */
    int ngen;               /* tokens generated */
    int32_t *ids;           /* [T] the window (points into the result's storage) */
    int32_t *gen;           /* [gen_tokens] generated ids, -1 after ngen */
} win_item;

typedef struct {
    long words;             /* words tagged with the class */
    long unaligned;         /* not a single word for the tokenizer */
    long early;             /* fewer than T tokens before the word */
    long candidates;        /* the rest: candidate positions */
    long examined;          /* candidates run through the filter (a prefix of the sampling order) */
    long dropped;           /* ... and dropped by it */
    long dropped_noword;    /* ... of which the model produced no new word */
    long kept;
} win_class_stats;

typedef struct {
    int T, G, nclasses;
    int *class_upos;                /* [nclasses] tagger UPOS id of each class */
    win_class_stats *stats;         /* [nclasses] */
    size_t nkept, ndropped;
    win_item *kept, *dropped;       /* kept: by class, then story and word; dropped likewise */
    int nlabels;                    /* feature labels with support >= min_support */
    char **label_names;             /* "Number=Sing" */
    int64_t *label_support;         /* [nlabels] positives among the kept windows */
    int *label_feat, *label_value;  /* [nlabels] feature index (tag_feat_names) and value id */
    long forwards, gen_steps;       /* model calls and window-steps run */
    double seconds_model;
    void *mem[3];
} win_result;

win_result *win_build(const win_story *stories, size_t nstories, const tokenizer *tk, const lm_model *m,
                      const tagger *tg, const win_opts *o);
/* Feature label row of an item: u8[nlabels]. */
void win_feature_row(const win_result *r, const win_story *stories, const win_item *it, uint8_t *row);
/* The text of item it for people to read: the last `tail` tokens of its window decoded, a tab, and
 * the true next word; tabs and line breaks of the text become spaces. Appended to out. */
void win_example_text(const win_result *r, const win_story *stories, const tokenizer *tk, const win_item *it, int tail,
                      bytebuf *out);
/* The per-class table, one entk_log line each. */
void win_log_stats(const win_result *r, const win_opts *o);
void win_result_free(win_result *r);

/* The labels of a windows stream (entk-windows' output), for label scoring: the class of each
 * window ('labels' i32 [N], meta names) and the feature labels ('feature_labels' u8 [N, L], meta
 * names; absent or L = 0: none), and each window's example text when the stream has it (frame
 * 'text', win_example_text's lines). Dies (exit 3) on a stream without labels, with class ids out of
 * range, or with a text of another number of lines. */
typedef struct {
    int64_t n;
    int nclasses, nfeats;
    char **class_names, **feat_names;
    int32_t *cls;       /* [n] */
    uint8_t *feats;     /* [n, nfeats] */
    char **text;        /* [n] each window's example line (frame 'text'), or NULL without one */
    char *text_mem;
    entk_key key;       /* the stream's header key: what scores name as their windows */
} win_labels;

void win_labels_read(frame_reader *r, win_labels *l);
void win_labels_free(win_labels *l);
#endif
