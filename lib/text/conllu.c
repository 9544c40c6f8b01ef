#include "text/conllu.h"
#include "core/err.h"
#include "core/fileio.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ID column kinds: a word ("7"), a multi-word token range ("7-8") or an empty node ("7.1"). */
enum { ID_WORD, ID_RANGE, ID_EMPTY, ID_BAD };

static int id_kind(const char *s, long *id) {
    char *e;
    if (*s < '0' || *s > '9') return ID_BAD;
    *id = strtol(s, &e, 10);
    if (*e == 0) return *id > 0 ? ID_WORD : ID_BAD;
    if ((*e == '-' || *e == '.') && e[1] >= '0' && e[1] <= '9') {
        int kind = *e == '-' ? ID_RANGE : ID_EMPTY;
        strtol(e + 1, &e, 10);
        return *e == 0 ? kind : ID_BAD;
    }
    return ID_BAD;
}

void conllu_read(conllu_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    f->path = xstrdup(name);
    size_t n;
    f->text = read_file(path, &n);
    f->key = hash_bytes(f->text, n);
    size_t capw = 1024, caps = 64;
    f->words = xmalloc(capw * sizeof *f->words);
    f->sents = xmalloc(caps * sizeof *f->sents);
    long lineno = 0, expect = 1;   /* expect: the next word ID of the current sentence */
    conllu_sent cur = {0, 0, 0};
    char *p = f->text, *end = f->text + n;
    while (p < end || cur.n) {
        char *line = p;
        char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        char *eol = nl ? nl : end;
        p = nl ? nl + 1 : end;
        lineno++;
        if (eol > line && eol[-1] == '\r') eol--;
        *eol = 0;
        if (line == eol) {             /* blank line (or end of file) closes the sentence */
            if (cur.n) {
                if (f->nsents == caps) f->sents = xrealloc(f->sents, (caps *= 2) * sizeof *f->sents);
                f->sents[f->nsents++] = cur;
            }
            cur.n = 0;
            expect = 1;
            if (line >= end) break;
            continue;
        }
        if (line[0] == '#') continue;
        char *col[10];
        int ncol = 0;
        for (char *q = line;; q++) {
            if (ncol < 10) col[ncol] = q;
            ncol++;
            q = strchr(q, '\t');
            if (!q) break;
            *q = 0;
        }
        if (ncol != 10)
            entk_die(ENTK_EXIT_INPUT, "%s:%ld: expected 10 tab-separated columns, found %d", name, lineno, ncol);
        long id;
        int kind = id_kind(col[0], &id);
        if (kind == ID_BAD) entk_die(ENTK_EXIT_INPUT, "%s:%ld: bad ID '%.40s'", name, lineno, col[0]);
        if (kind != ID_WORD) continue;
        if (id != expect)
            entk_die(ENTK_EXIT_INPUT, "%s:%ld: word ID %ld out of sequence (expected %ld)", name, lineno, id, expect);
        expect++;
        for (int c = 1; c < 6; c++)
            if (!col[c][0]) entk_die(ENTK_EXIT_INPUT, "%s:%ld: empty column %d", name, lineno, c + 1);
        if (f->nwords == capw) f->words = xrealloc(f->words, (capw *= 2) * sizeof *f->words);
        if (cur.n == 0) { cur.first = f->nwords; cur.line = lineno; }
        f->words[f->nwords++] = (conllu_word){col[1], col[3], col[4], col[5]};
        f->nfeats += strcmp(col[5], "_") != 0;
        cur.n++;
    }
    if (f->nsents == 0) entk_die(ENTK_EXIT_INPUT, "%s: no sentences", name);
}

void conllu_free(conllu_file *f) {
    free(f->path);
    free(f->text);
    free(f->words);
    free(f->sents);
    memset(f, 0, sizeof *f);
}

int conllu_has_feats(const conllu_file *f) {
    /* EWT annotates about 2/3 of its words, CHILDES a handful of 30k: 10% separates them */
    return f->nwords && f->nfeats * 10 >= f->nwords;
}
