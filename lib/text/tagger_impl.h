/* tagger_impl: what the tagger's parts share (private to lib/text): tagger.c (words, features,
 * tagging), tagger_train.c (training) and tagger_model.c (feature tables, perceptrons, the model
 * file). */
#ifndef ENTK_TAGGER_IMPL_H
#define ENTK_TAGGER_IMPL_H
#include <stddef.h>
#include <stdint.h>
#include "text/tagger.h"

/* After the public models (tagger.h), the second-stage UPOS and XPOS models, then the first
 * stage's right-to-left UPOS and XPOS models. */
enum { TAG_UPOS2 = TAG_NMODELS, TAG_XPOS2, TAG_UPOSR, TAG_XPOSR, TAG_ALLMODELS };
extern const char *const tag_model_names[TAG_ALLMODELS];

#define WMAX 48        /* bytes kept of a word for features; longer words are truncated */
#define MAXKEYS 160    /* features of one word for one model */

/* While training, each feature of the POS models also has a copy private to the sentence's
 * domain (augment in tagger_beam.c): its key XOR one of these. Feature keys keep their top two
 * bits clear, so a key's top bits tell a feature (00) from its written-text (10) or speech (11)
 * copy, and XOR gives the feature back. Tagging reads written text only, so the saved model
 * keeps each feature's weights plus its written copy's under the feature's key and drops the
 * speech copies (ptrain_finish_written): half the lookups when tagging. */
#define KEY_FEATURE_MASK 0x3FFFFFFFFFFFFFFFULL
#define KEY_COPY_WRITTEN 0xA7D4EB2F165667C5ULL
#define KEY_COPY_SPEECH 0xDBD1E9955BD1E995ULL

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
/* Adds v to the weight of class cls of each feature; the clock does not move. */
void ptrain_step(ptrain *p, int cls, const uint64_t *keys, int nk, float v);
/* sc[c] += the weights of the features (sc is not cleared). */
void ptrain_add_scores(const ptrain *p, const uint64_t *keys, int nk, float *sc);
void pmodel_add_scores(const pmodel *m, const uint64_t *keys, int nk, float *sc);
/* Averages the weights and packs them into m (whose classes the caller sets). */
void ptrain_finish(ptrain *p, pmodel *m);
/* The same for a POS model trained with domain copies: see KEY_COPY_WRITTEN. */
void ptrain_finish_written(ptrain *p, pmodel *m);
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
    const char **rtag, **rxtag;  /* the first stage's UPOS and XPOS: the second stage's right context */
    const char **ltag, **lxtag;  /* the same from the first stage's right-to-left pass */
    uint64_t *dkey;        /* [i]: key of the form in the tag dictionary */
    uint32_t *amb;         /* lexicon tag set of each word (0: not in the lexicon), indexed i + 2 */
    char (*cased)[WMAX];   /* the form, quotes normalised, case kept, indexed i + 2 */
    char title[4];         /* how many of the sentence's words (after the first) are capitalised:
                            * "0" few .. "2" most, "1" too few letters to tell; headlines and
                            * all-caps text make case a weaker cue for PROPN */
    int domain;            /* 1: the sentence is from a treebank without FEATS (CHILDES child
                            * speech; training only); 0: annotated written text, and always when
                            * tagging (augment in tagger_beam.c) */
} sctx;

/* t may be NULL (or have no lexicon yet): the lexicon tag sets are then all 0. */
void sctx_prepare(sctx *c, const tagger *t, int n, const char *const *form);
/* r = c with its words in reverse order (for the right-to-left pass). */
void sctx_reverse(const sctx *c, sctx *r);
void sctx_free(sctx *c);
/* The form with quote variants replaced, truncated to WMAX - 1 bytes. */
size_t norm_quotes(const char *f, char *out);
/* The lexicon's key of a normalised (sctx.norm) form. */
uint64_t lex_key(const char *norm);

/* The feature keys of word i (tagger.c says which); each returns how many it wrote to k. */
int word_keys(const sctx *c, int i, uint64_t *k);
int history_keys(const sctx *c, int i, const char *t1, const char *t2, const char *r, uint64_t *k);
int right_keys(const sctx *c, int i, uint64_t *k);
int upos_keys(const sctx *c, int i, const char *u, uint64_t *k);
int morph_keys(const tagger *t, const sctx *c, const int *upos, int i, uint64_t *k);
/* Both POS stages over a prepared sentence: class ids into upos[n], xpos[n]; leaves the tag
 * names in c->utag, c->xtag. */
void tag_pos(const tagger *t, sctx *c, int *upos, int *xpos);

/* Weights while training (p) or final (m): whichever is set. */
typedef struct {
    const ptrain *p;
    const pmodel *m;
} tscorer;

/* Items kept per word by the beam search. 1 is greedy; 4 keeps the histories that the tags of a
 * few words later prove right: EWT dev UPOS 95.55 % instead of 95.45 %, for a third more time
 * tagging and training. */
#define TAG_BEAM 4

/* One stage of POS tagging as tagger_beam.c runs it. */
typedef struct {
    const tagger *t;               /* its tag dictionary and UPOS/XPOS compatibility table */
    tscorer su, sx;                /* UPOS and XPOS weights */
    const char *const *un, *const *xn;   /* class names */
    int nu, nx;
    int stage;                     /* 1: the second stage (right_keys) */
} tstage;

typedef struct {
    float score;
    int back;          /* the item it extends in the previous word's beam; -1 at the first word */
    uint16_t u, x;
} bitem;

/* The beams of a sentence's words, and each word's features and scores that do not depend on
 * the history (computed once per word). Grows as needed; reused between sentences. */
typedef struct {
    int cap, nu, nx;
    bitem *it;         /* [word * TAG_BEAM + k], best first */
    int *cnt;          /* items in each word's beam */
    uint64_t *wkeys;   /* [word * MAXKEYS] */
    int *nwk;
    float *wsu, *wsx;  /* [word * nu], [word * nx] */
} tbeam;

void tbeam_free(tbeam *b);
/* The best-scoring (UPOS, XPOS) sequence of the stage into u[c->n], x[c->n]. */
void beam_decode(const tstage *st, const sctx *c, tbeam *bm, int *u, int *x);
/* Decodes with the weights in training (pu, px, which st->su.p, st->sx.p point to) and, if a
 * prefix of the gold sequence gu, gx (gx < 0: no XPOS; the first compatible one stands in)
 * scores below the beam's best prefix, updates towards the gold prefix where the violation is
 * largest (Huang et al. 2012). The predicted sequence goes into u, x. */
void beam_train(const tstage *st, ptrain *pu, ptrain *px, const sctx *c, tbeam *bm, const int *gu, const int *gx, int *u, int *x);
#endif
