/* tagger_impl: what the tagger's parts share (private to lib/text): tagger.c (words, features,
 * tagging), tagger_train.c (training) and tagger_model.c (feature tables, perceptrons, the model
 * file). */
#ifndef ENTK_TAGGER_IMPL_H
#define ENTK_TAGGER_IMPL_H
#include <stddef.h>
#include <stdint.h>
#include "text/tagger.h"

/* After the public models (tagger.h), the second-stage UPOS and XPOS models. */
enum { TAG_UPOS2 = TAG_NMODELS, TAG_XPOS2, TAG_ALLMODELS };
extern const char *const tag_model_names[TAG_ALLMODELS];

#define WMAX 48        /* bytes kept of a word for features; longer words are truncated */
#define MAXKEYS 64     /* features of one word for one model */

/* Open addressing from a feature's key to its row of (class, weight) entries; keys are already
 * hashes, so their low bits index directly. key 0 marks a free slot (fkey never returns 0). The
 * row lives in the slot itself, so scoring a feature costs two memory reads: slot, then entries. */
typedef struct {
    uint64_t key;
    uint32_t off;      /* first entry of the row (label sets: the label's id) */
    uint16_t n, cap;   /* entries used, and allocated while training */
} fslot;

typedef struct {
    fslot *slot;
    size_t cap, n;
} ftable;

void ftable_init(ftable *t, size_t want);
void ftable_free(ftable *t);
const fslot *ftable_get(const ftable *t, uint64_t k);
/* The slot of k, inserted (zeroed but for the key) if absent; *fresh says which. The pointer is
 * valid until the next insertion. */
fslot *ftable_add(ftable *t, uint64_t k, int *fresh);

/* Training form: each feature row is a small growable vector of (class, weight) entries, since a
 * feature meets only a few of the classes; a full row moves to a block twice its size at the end
 * of the pool. Scoring reads only the packed (class, weight) pairs; the averaging state lives in a
 * parallel array: total accumulates weight x steps, brought up to date whenever the weight changes. */
typedef struct {
    uint16_t cls;
    float w;
} went;

typedef struct {
    double total;
    int32_t ts;
} wacc;

typedef struct {
    int ncls;
    ftable tab;
    went *e;
    wacc *acc;
    size_t ne, cape;
    int32_t i;      /* instances seen: the averaging clock */
} ptrain;

/* Final form: averaged weights; rows are contiguous in entry order, rowkey/off keep that order
 * for the file. */
typedef struct {
    int ncls;
    char **cls;
    size_t nrows, ne;
    uint64_t *rowkey;
    uint32_t *off;     /* [nrows + 1] */
    uint16_t *ecls;
    float *w;
    ftable tab;
} pmodel;

void ptrain_init(ptrain *p, int ncls);
void ptrain_free(ptrain *p);
void ptrain_score(const ptrain *p, const uint64_t *keys, int nk, float *sc);
/* One instance seen (the averaging clock); a wrong guess moves the features towards truth. */
void ptrain_update(ptrain *p, int truth, int guess, const uint64_t *keys, int nk);
/* Averages the weights and packs them into m (whose classes the caller sets). */
void ptrain_finish(ptrain *p, pmodel *m);
void pmodel_score(const pmodel *m, const uint64_t *keys, int nk, float *sc);
void pmodel_free(pmodel *m);
int cls_argmax(const float *sc, int n);

struct tagger {
    pmodel m[TAG_ALLMODELS];
    /* Frequent words that (nearly) always get one tag pair are tagged by lookup, as in Honnibal's
     * tagger: slot.off = UPOS id, slot.n = XPOS id. */
    ftable dict;
    uint64_t *dictkey;
    uint16_t *dictu, *dictx;
    size_t ndict;
    char *info;
    /* compat[u * nxpos + x]: XPOS x was seen with UPOS u in training; tagging picks the best such
     * pair, so the two tags of a word agree (no PROPN tagged NN). */
    uint8_t *compat;
    int pron, noun, propn;   /* UPOS ids used by the agreement features, -2 if absent */
    /* The lexicon: for the words seen at least LEX_MIN_FREQ times in training (key: lex_key of
     * the lowercased form), the set of UPOS tags each takes at least LEX_MIN_SHARE of the time, as
     * a bit mask (slot.off). It lets the greedy tagger look ahead: the tags the next two words can
     * take are features of the current one. */
    ftable lex;
    uint64_t *lexkey;
    uint32_t *lexmask;
    size_t nlex;
};

void tag_dict_insert(tagger *t, uint64_t key, int upos, int xpos);
/* The UPOS ids the agreement features use, from the UPOS class names. */
void tag_set_pron_ids(tagger *t);
/* One sentence prepared for feature extraction. Word arrays are indexed i + 2: two sentinels on
 * each side stand for the words before the start and after the end. */
typedef struct {
    int n, cap;
    char (*norm)[WMAX];    /* lowercased; numbers collapsed to !YEAR / !DIGITS */
    char (*lower)[WMAX];   /* lowercased form, for prefixes and suffixes */
    char (*shape)[WMAX];   /* Xx / d / punctuation of the form, runs collapsed to two */
    const char **utag, **xtag;   /* predicted tag names, indexed i + 2, sentinels around */
    const char **u2tag, **x2tag; /* the same from the second stage, while it runs */
    const char **rtag, **rxtag;  /* the first stage's UPOS and XPOS: the second stage's right context */
    uint64_t *dkey;        /* [i]: key of the form in the tag dictionary */
    uint32_t *amb;         /* lexicon tag set of each word (0: not in the lexicon), indexed i + 2 */
    char (*cased)[WMAX];   /* the form, quotes normalised, case kept, indexed i + 2 */
} sctx;

/* t may be NULL (or have no lexicon yet): the lexicon tag sets are then all 0. */
void sctx_prepare(sctx *c, const tagger *t, int n, const char *const *form);
void sctx_free(sctx *c);
/* The form with quote variants replaced, truncated to WMAX - 1 bytes. */
size_t norm_quotes(const char *f, char *out);
/* The lexicon's key of a normalised (sctx.norm) form. */
uint64_t lex_key(const char *norm);

/* The feature keys of word i (tagger.c says which); each returns how many it wrote to k. */
int word_keys(const sctx *c, int i, uint64_t *k);
int history_keys(const sctx *c, int i, const char *const *tag, uint64_t *k);
int right_keys(const sctx *c, int i, const char *const *tag, uint64_t *k);
int upos_keys(const sctx *c, int i, const char *const *utag, uint64_t *k);
int morph_keys(const tagger *t, const sctx *c, const int *upos, int i, uint64_t *k);
/* Both POS stages over a prepared sentence: class ids into upos[n], xpos[n]. */
void tag_pos(const tagger *t, sctx *c, int *upos, int *xpos);
#endif
