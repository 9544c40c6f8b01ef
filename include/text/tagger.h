/* tagger: an averaged-perceptron part-of-speech and morphology tagger.
 *
 * After M. Honnibal, "A good part-of-speech tagger in about 200 lines of Python" (2013): features
 * from the word (lowercased, and as written), its prefixes, suffixes and shape, the shapes of its
 * neighbours, the two previous tags and the neighbouring words; weights averaged over all training
 * steps. Additions that look to the right, which a left-to-right pass cannot see: a lexicon of the
 * UPOS tags each frequent training word takes (the tag sets of the word and of the two after it
 * are features); a first stage run in both directions (left to right, and right to left over the
 * reversed sentence); and a second stage, which tags the sentence again seeing both first-stage
 * taggings of the word and of the words around it (it learns from the first stage's tags of the
 * first training epoch, made before the model had seen each sentence, so as noisy as at run time).
 * Each stage has a UPOS and a Penn XPOS perceptron (XPOS also sees the word's UPOS; only pairs that
 * occur in training are considered, so the two tags agree) and finds the best-scoring sequence of
 * (UPOS, XPOS) pairs by beam search; it is trained as a structured perceptron with max-violation
 * updates (lib/text/tagger_beam.c). While training, every feature also has a copy private to the
 * sentence's domain: treebanks that annotate FEATS (written text: EWT) or not (child speech:
 * CHILDES); the model keeps each feature's weights plus its written copy's (tagging reads written
 * text) and drops the speech copies. Then, once the sentence is tagged, one
 * perceptron per UD morphological feature (tag_feat_names), whose classes are "_" (absent) and the
 * feature's values, and which see the predicted tags of the word, its neighbours and the nearest
 * preceding noun or pronoun (for verb agreement). The feature perceptrons learn only from
 * treebanks annotated with FEATS (conllu_has_feats).
 * On UD English EWT dev, trained on every other shared treebank (CHILDES and EWT train, 431k
 * words, 5 epochs): UPOS 95.55 %, XPOS 94.93 % (version 2, greedy and one domain: 95.29 %,
 * 94.69 %; the plain greedy tagger: 94.81 %, 94.30 %).
 *
 * Model file (little-endian; written atomically; every count, offset and class id is checked
 * on load, and a trailing checksum catches any other corruption):
 *   "ENTKTAG\0"  u32 version (TAGGER_VERSION)  u64 file size  str info  u32 nmodels (15)
 *   per model:   str name  u32 nclasses  str class[nclasses]  u32 nrows  u32 nentries
 *                u64 key[nrows]  u32 off[nrows+1]  u16 cls[nentries]  f32 weight[nentries]
 *   u8 compat[nclasses(upos) * nclasses(xpos)]  (1: that UPOS, XPOS pair occurs in training)
 *   u32 ndict  u64 dictkey[ndict]  u16 dict_upos[ndict]  u16 dict_xpos[ndict]
 *   u32 nlex   u64 lexkey[nlex]  u32 lexmask[nlex]
 *   u64 xxh3-64 of all bytes before it
 * where str = u32 length + bytes. The models are upos, xpos, the nine features, then the second
 * stage's upos2 and xpos2 and the right-to-left first stage's uposr and xposr (with the classes
 * of upos and xpos). Row r holds the nonzero averaged
 * weights of the feature whose key (xxh3-64 of its template and strings, see lib/text/tagger.c)
 * is key[r]: entries off[r]..off[r+1]. The tag dictionary holds the frequent words that (nearly)
 * always get one UPOS+XPOS pair: they are tagged by lookup (dictkey = xxh3-64 of the form, case
 * kept, quotes normalised). The lexicon maps the lowercased form's xxh3-64 (| 1) to a bit mask of
 * UPOS ids. Changing a feature template changes TAGGER_VERSION. */
#ifndef ENTK_TAGGER_H
#define ENTK_TAGGER_H
#include <stddef.h>
#include <stdint.h>
#include "text/conllu.h"

#define TAGGER_VERSION 3
#define TAG_NFEATS 9
/* Model ids: TAG_UPOS, TAG_XPOS, then TAG_FEAT0 + k for tag_feat_names[k]. */
enum { TAG_UPOS, TAG_XPOS, TAG_FEAT0 };
#define TAG_NMODELS (TAG_FEAT0 + TAG_NFEATS)
/* Alphabetical, as UD orders FEATS: Case Definite Gender Mood Number Person PronType Tense VerbForm */
extern const char *const tag_feat_names[TAG_NFEATS];

typedef struct tagger tagger;

typedef struct {
    const conllu_word *w;
    int n;
    int has_feats;      /* the treebank annotates FEATS, so "_" is a gold "absent" */
} tag_sentence;

typedef struct {
    int epochs;
    uint64_t seed;      /* order of sentences in each epoch */
    const char *info;   /* stored in the model, shown by tagger_info */
} tag_train_opts;

tagger *tagger_train(const tag_sentence *s, size_t ns, const tag_train_opts *o);
void tagger_save(const tagger *t, const char *path);
/* Dies with ENTK_EXIT_INPUT on a missing, truncated or corrupt model file. */
tagger *tagger_load(const char *path);
void tagger_free(tagger *t);
const char *tagger_info(const tagger *t);

/* Tags one sentence of n words: class ids into upos[n], xpos[n], feats[n * TAG_NFEATS]
 * (row-major; 0 = feature absent). */
void tagger_tag(const tagger *t, int n, const char *const *form, int *upos, int *xpos, int *feats);

int tagger_nclasses(const tagger *t, int model);
const char *tagger_class(const tagger *t, int model, int cls);
/* Class id of name[0..len), or -1 if the model never saw it. */
int tagger_class_id(const tagger *t, int model, const char *name, size_t len);

/* The gold labels of a treebank word as the tagger learns them. XPOS: CHILDES writes "?" and "!"
 * where Penn (and EWT) writes ".", so those are mapped to "."; a tag outside the Penn set (a few
 * CHILDES annotation slips: "VV", "adv", "_") gives NULL: the word is not used for XPOS. Feature
 * k: its value in FEATS, or "_" when absent; sets *len. */
const char *tagger_gold_xpos(const conllu_word *w);
const char *tagger_gold_feat(const conllu_word *w, int k, size_t *len);
#endif
