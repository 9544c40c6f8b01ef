/* tageval: scoring the tagger (text/tagger.h) against gold CoNLL-U sentences: UPOS and XPOS
 * accuracy with per-class tables and confusion matrices, and per-feature accuracy, precision and
 * recall on treebanks that annotate FEATS. `entk-tag eval` is argument parsing around it; the
 * accuracy that Setting 3's labels rest on is computed here, in one place.
 *
 * Conventions: a word whose gold UPOS/XPOS the model never saw counts as wrong and is left out of
 * the confusion matrix (counted in `unseen`); a word whose gold XPOS is outside the Penn tag set
 * (tagger_gold_xpos NULL) is not scored for XPOS; a feature is right when the predicted value id
 * equals the gold one, or both say "absent". */
#ifndef ENTK_TAGEVAL_H
#define ENTK_TAGEVAL_H
#include <stdio.h>
#include "core/frame.h"
#include "text/conllu.h"
#include "text/tagger.h"

/* Buffers for tagging gold-tokenised sentences (a treebank's words, not raw text), grown as needed. */
typedef struct {
    const char **forms;
    int *up, *xp, *fp;      /* [n], [n], [n * TAG_NFEATS] predictions of the last sentence */
    int cap;
} tag_sent;
void tag_sent_run(tag_sent *b, const tagger *t, const conllu_word *w, int n);
void tag_sent_free(tag_sent *b);

/* Gold x predicted counts of one tag set. */
typedef struct {
    int ncls;
    long *conf;             /* [ncls, ncls] gold x predicted */
    long n, right, unseen;
} tag_scores;

typedef struct {
    tag_scores upos, xpos;
    long sentences;
    long bad_xpos;          /* words with a gold XPOS outside the tag set: not scored */
    long feat_words;        /* words from files that annotate FEATS */
    long feat_all;          /* ... with all TAG_NFEATS features right */
    long fright[TAG_NFEATS], fgold[TAG_NFEATS], fpred[TAG_NFEATS], fhit[TAG_NFEATS];
    tag_sent buf;
} tag_eval;

void tag_eval_init(tag_eval *e, const tagger *t);
/* Tags the gold sentence w[0, n) and scores it; has_feats: its file annotates FEATS. */
void tag_eval_sentence(tag_eval *e, const tagger *t, const conllu_word *w, int n, int has_feats);
/* The tables as `entk-tag eval` prints them: accuracies, features, per class, UPOS confusion. */
void tag_eval_print(FILE *out, const tag_eval *e, const tagger *t);
/* A record "tag_eval" with the numbers (holdout as given) and i64 tensors "upos_confusion" and
 * "xpos_confusion" [gold, predicted] with the tag names in meta "names". */
void tag_eval_write(frame_writer *w, const tag_eval *e, const tagger *t, long holdout);
void tag_eval_free(tag_eval *e);
/* "ADJ ADP ...": the class names of one of the tagger's models, space-separated (malloc'd). */
char *tagger_class_names(const tagger *t, int model);
#endif
