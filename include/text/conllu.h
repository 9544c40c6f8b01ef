/* conllu: read CoNLL-U treebanks (Universal Dependencies) into memory.
 *
 * A file is read whole; token lines are split in place, so every string points into one buffer.
 * Comment lines (#), multi-word token ranges ("2-3") and empty nodes ("8.1") are skipped: what
 * remains are the syntactic words a tagger sees. Any malformed line is a one-line error naming
 * FILE:LINE and the problem (exit 3). */
#ifndef ENTK_CONLLU_H
#define ENTK_CONLLU_H
#include <stddef.h>
#include "core/hash.h"

typedef struct {
    const char *form, *upos, *xpos, *feats;   /* columns 2, 4, 5, 6 ("_" when empty) */
} conllu_word;

typedef struct {
    size_t first;   /* index of its first word in conllu_file.words */
    int n;          /* number of words */
    long line;      /* line number of its first word, for messages */
} conllu_sent;

typedef struct {
    char *path;
    char *text;               /* the file's bytes; the words point into it */
    conllu_word *words;
    size_t nwords;
    conllu_sent *sents;
    size_t nsents;
    size_t nfeats;            /* words whose FEATS column is not "_" */
    entk_key key;             /* xxh3-128 of the file's bytes, for frame headers */
} conllu_file;

/* Reads path ("-" = stdin); dies with ENTK_EXIT_INPUT on any malformed line or an empty file. */
void conllu_read(conllu_file *f, const char *path);
void conllu_free(conllu_file *f);
/* 1 if the file is annotated with morphological features at all: UD_English-CHILDES leaves FEATS
 * empty, so "_" there means "not annotated", not "no features". */
int conllu_has_feats(const conllu_file *f);
#endif
