/* entk-tag: part-of-speech and morphology tagger (averaged perceptron, lib/text/tagger.c).
 *   train: CoNLL-U treebanks -> model file
 *   eval:  model + CoNLL-U -> accuracy tables (stdout) and a record frame (-o)
 *   tag:   model + raw text -> per-word byte offsets, UPOS, XPOS and features as frames or TSV */
#include "core/cli.h"
#include "text/conllu.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/frame.h"
#include "core/hash.h"
#include "core/outfile.h"
#include "text/tageval.h"
#include "text/tagger.h"
#include "text/wordsplit.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *help_main =
    "Usage: entk-tag train -o MODEL [--epochs N] [--seed S] [--holdout K|FILE]... FILE.conllu...\n"
    "       entk-tag eval -m MODEL [--holdout K] [-o FRAMES] FILE.conllu...\n"
    "       entk-tag tag -m MODEL [--stories] [--tsv] [-o OUT] [FILE|-]\n"
    "Part-of-speech tagger: an averaged perceptron (Honnibal 2013) predicting UPOS, Penn XPOS and the\n"
    "UD features Case Definite Gender Mood Number Person PronType Tense VerbForm. `entk-tag CMD --help`\n"
    "describes each command.\n"
    "Example:\n"
    "  entk-tag train -o ud.tag --holdout 10 ../shared/data/ud/*.conllu\n"
    "  entk-tag eval -m ud.tag --holdout 10 ../shared/data/ud/*.conllu\n"
    "  echo 'The cat sat on the mat.' | entk-tag tag -m ud.tag --tsv\n";

static const char *usage_train =
    "Usage: entk-tag train -o MODEL [options] FILE.conllu...\n"
    "Trains the tagger on CoNLL-U files ('-' = stdin) and writes the model file MODEL (atomically:\n"
    "-o, required). The feature perceptrons learn only from files that annotate FEATS (at least 10%\n"
    "of words).\n";

static const char *examples_train =
    "Example:\n"
    "  entk-tag train -o ud.tag --holdout 10 ../shared/data/ud/*.conllu\n";

static const char *usage_eval =
    "Usage: entk-tag eval -m MODEL [options] FILE.conllu...\n"
    "Tags the gold sentences with MODEL and prints UPOS and XPOS accuracy, per-class accuracy, feature\n"
    "accuracy (on files that annotate FEATS) and the UPOS confusion matrix on stdout (on stderr when\n"
    "the frames go to stdout). With -o, also writes frames: a record \"tag_eval\" with the numbers and\n"
    "i64 tensors \"upos_confusion\" and \"xpos_confusion\" [gold, predicted] (tag names in meta \"names\").\n";

static const char *examples_eval =
    "Example:\n"
    "  entk-tag eval -m ud.tag --holdout 10 ../shared/data/ud/*.conllu\n";

static const char *usage_tag =
    "Usage: entk-tag tag -m MODEL [options] [FILE|-]\n"
    "Splits raw English text into words and sentences and tags every word. Output frames, per text:\n"
    "  \"text\" u8 [bytes]       the text the offsets refer to; meta text (index), start (its byte\n"
    "                          offset in the input), words\n"
    "  \"offsets\" i64 [n,2]     start and end byte of each word in the text\n"
    "  \"sentence\" i32 [n]      sentence number of each word within the text\n"
    "  \"upos\", \"xpos\" i32 [n]  tag ids; meta names = the tag names, space-separated, in id order\n"
    "  \"feats\" i32 [n,9]       value ids of Case Definite Gender Mood Number Person PronType Tense\n"
    "                          VerbForm (0 = absent); meta names, and values_<Feature> = '_ v1 v2 ...'\n"
    "after a record \"tagset\" holding all the names. Every frame has meta text.\n";

static const char *examples_tag =
    "Example:\n"
    "  entk-tag tag -m ud.tag --stories ../shared/data/tinystories/tinystories_sample.txt > tags.frames\n"
    "  echo 'The cat sat on the mat.' | entk-tag tag -m ud.tag --tsv\n";

/* ------------------------------------------------------------------ shared */

static int is_holdout(size_t sent, long k) { return k > 0 && sent % (size_t)k == (size_t)k - 1; }

/* ------------------------------------------------------------------ train */

/* --holdout K (every K-th sentence) or --holdout FILE (a whole input file; repeatable) */
typedef struct {
    long every;
    const char *skip[64];
    int nskip;
} holdout;

static void parse_holdout(const char *opt, const char *arg, void *dest) {
    holdout *h = dest;
    if (arg[0] >= '0' && arg[0] <= '9' && strspn(arg, "0123456789") == strlen(arg)) {
        h->every = cli_long(opt, arg, 2, 1000000);
    } else {
        if (h->nskip == 64) entk_die(ENTK_EXIT_USAGE, "%s FILE: at most 64 files", opt);
        h->skip[h->nskip++] = arg;
    }
}

static int cmd_train(int argc, char **argv) {
    long epochs = 5;
    uint64_t seed = 1;
    holdout ho = {0};
    /* train writes a model file, not frames: no option enters a key */
    cli_opt opts[] = {
        /* long name, letter, kind, destination, argument, key policy; then the kind's extras and the help */
        {"epochs", 0, CLI_LONG, &epochs, "N", CLI_NOKEY, .min = 1, .max = 1000, .help = "passes over the data (default 5)"},
        {"seed", 0, CLI_U64, &seed, "S", CLI_NOKEY, .min = 0, .max = 0x7fffffffffffffffL,
         .help = "seed of the sentence order in each pass (default 1)"},
        {"holdout", 0, CLI_CUSTOM, &ho, "K|FILE", CLI_NOKEY, .parse = parse_holdout,
         .help = "K: leave out every K-th sentence of each file (the 0-based sentence numbers\n"
                 "K-1, 2K-1, ...), for `entk-tag eval --holdout K` on the same files;\n"
                 "FILE: leave out the input file FILE altogether (repeatable)"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage_train, .examples = examples_train, .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    cli_common co = spec.co;
    long every = ho.every;
    const char **skip = ho.skip;
    int nskip = ho.nskip;
    if (!co.output) entk_die(ENTK_EXIT_USAGE, "train needs -o MODEL (see --help)");
    if (first >= argc) entk_die(ENTK_EXIT_USAGE, "train needs CoNLL-U files (see --help)");
    for (int k = 0; k < nskip; k++) {
        int found = 0;
        for (int i = first; i < argc; i++) found |= strcmp(argv[i], skip[k]) == 0;
        if (!found) entk_die(ENTK_EXIT_USAGE, "--holdout %s is not one of the input files", skip[k]);
    }
    int nfiles = argc - first;
    conllu_file *files = xcalloc((size_t)nfiles, sizeof *files);
    size_t cap = 0, ns = 0, nheld = 0, nwords = 0;
    tag_sentence *sents = NULL;
    int used = 0;
    for (int i = 0; i < nfiles; i++) {
        const char *path = argv[first + i];
        int skipped = 0;
        for (int k = 0; k < nskip; k++) skipped |= strcmp(path, skip[k]) == 0;
        if (skipped) { entk_log("%s: held out", path); continue; }
        conllu_file *f = &files[i];
        conllu_read(f, path);
        used++;
        int feats = conllu_has_feats(f);
        size_t kept = 0;
        for (size_t j = 0; j < f->nsents; j++) {
            if (is_holdout(j, every)) { nheld++; continue; }
            if (ns == cap) sents = xrealloc(sents, (cap = cap ? 2 * cap : 4096) * sizeof *sents);
            sents[ns++] = (tag_sentence){f->words + f->sents[j].first, f->sents[j].n, feats};
            nwords += (size_t)f->sents[j].n;
            kept++;
        }
        entk_log("%s: %zu sentences, %zu words%s; training on %zu sentences", f->path, f->nsents, f->nwords,
                 feats ? ", with FEATS" : "", kept);
    }
    if (ns == 0) entk_die(ENTK_EXIT_INPUT, "no training sentences left");
    char info[512];
    int len = snprintf(info, sizeof info, "entk-tag %s: %zu words in %zu sentences from %d files; epochs %ld, seed %llu",
                       ENTK_VERSION, nwords, ns, used, epochs, (unsigned long long)seed);
    if (every) len += snprintf(info + len, sizeof info - (size_t)len, "; held out every %ld-th sentence (%zu)", every, nheld);
    if (nskip) snprintf(info + len, sizeof info - (size_t)len, "; held out %d files", nskip);
    tag_train_opts o = {(int)epochs, seed, info};
    tagger *t = tagger_train(sents, ns, &o);
    tagger_save(t, co.output);
    entk_log("wrote %s", co.output);
    tagger_free(t);
    for (int i = 0; i < nfiles; i++) conllu_free(&files[i]);
    free(files);
    free(sents);
    return 0;
}

/* ------------------------------------------------------------------ eval */

static int cmd_eval(int argc, char **argv) {
    const char *model = NULL;
    long every = 0;
    cli_opt opts[] = {
        /* long name, letter, kind, destination, argument, key policy; then the kind's extras and the help */
        {"model", 'm', CLI_STR, &model, "MODEL", CLI_INPUT, .help = "model file from `entk-tag train` (required)"},
        {"holdout", 0, CLI_LONG, &every, "K", CLI_KEY_ARG_EQ, .min = 2, .max = 1000000,
         .help = "evaluate only every K-th sentence: those `train --holdout K` left out"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage_eval, .examples = examples_eval, .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    cli_common co = spec.co;
    if (!model) entk_die(ENTK_EXIT_USAGE, "eval needs -m MODEL (see --help)");
    if (first >= argc) entk_die(ENTK_EXIT_USAGE, "eval needs CoNLL-U files (see --help)");
    tagger *t = tagger_load(model);
    tag_eval ev;
    tag_eval_init(&ev, t);
    int nfiles = argc - first;
    entk_key *keys = xmalloc((size_t)(nfiles + 1) * sizeof *keys);
    for (int i = 0; i < nfiles; i++) {
        conllu_file f;
        conllu_read(&f, argv[first + i]);
        keys[i] = f.key;
        int has_feats = conllu_has_feats(&f);
        for (size_t j = 0; j < f.nsents; j++)
            if (!every || is_holdout(j, every)) tag_eval_sentence(&ev, t, f.words + f.sents[j].first, f.sents[j].n, has_feats);
        conllu_free(&f);
    }
    FILE *out = co.output && strcmp(co.output, "-") == 0 ? stderr : stdout;
    fprintf(out, "model: %s (%s)\n", model, tagger_info(t));
    fprintf(out, "evaluated on %ld words in %ld sentences", ev.upos.n, ev.sentences);
    if (every) fprintf(out, " (held out by --holdout %ld: sentences %ld, %ld, ... of each file)", every, every - 1, 2 * every - 1);
    fputc('\n', out);
    tag_eval_print(out, &ev, t);
    fflush(out);

    if (co.output) {
        frame_header h = {0};
        snprintf(h.producer, sizeof h.producer, "entk-tag");
        cli_args args = {0};
        cli_args_add(&args, "eval");
        cli_args_key(&args, &spec);
        h.argc = args.argc;
        h.argv = args.argv;
        h.ninputs = 1;
        snprintf(h.input_name[0], sizeof h.input_name[0], "%s", model);
        h.input_key[0] = hash_file(model);
        if (nfiles < FRAME_MAX_INPUTS) {
            for (int i = 0; i < nfiles; i++) {
                snprintf(h.input_name[h.ninputs], sizeof h.input_name[0], "%s", argv[first + i]);
                h.input_key[h.ninputs++] = keys[i];
            }
        } else {   /* too many to list: one key for all of them */
            keybuilder kb;
            keybuilder_init(&kb, "entk-tag eval inputs");
            for (int i = 0; i < nfiles; i++) keybuilder_str(&kb, keys[i].hex);
            snprintf(h.input_name[h.ninputs], sizeof h.input_name[0], "%d CoNLL-U files", nfiles);
            h.input_key[h.ninputs++] = keybuilder_final(&kb);
        }
        h.key = frame_derive_key(h.producer, h.argc, h.argv, h.ninputs, h.input_key);
        frame_writer w;
        frame_writer_open(&w, co.output, &h);
        tag_eval_write(&w, &ev, t, every);
        frame_writer_close(&w);
        cli_args_free(&args);
    }
    tag_eval_free(&ev);
    free(keys);
    tagger_free(t);
    return 0;
}

/* ------------------------------------------------------------------ tag */

typedef struct {
    size_t start, len;   /* the text's bytes in the input */
} text_span;

/* Stories are separated by lines reading <|endoftext|>; each is trimmed of surrounding whitespace.
 * Empty stories are kept (with no words) so that text i is always the i-th story. */
static void add_span(text_span **sp, size_t *k, size_t *cap, const char *buf, size_t s, size_t e) {
    while (s < e && (unsigned char)buf[s] <= ' ') s++;
    while (e > s && (unsigned char)buf[e - 1] <= ' ') e--;
    if (*k == *cap) *sp = xrealloc(*sp, (*cap = *cap ? 2 * *cap : 256) * sizeof **sp);
    (*sp)[(*k)++] = (text_span){s, e - s};
}

static size_t split_stories(const char *buf, size_t n, int keep_partial, text_span **out) {
    static const char sep[] = "<|endoftext|>";
    size_t cap = 0, k = 0, seg = 0, p = 0;
    text_span *sp = NULL;
    while (p < n) {
        const char *nl = memchr(buf + p, '\n', n - p);
        size_t eol = nl ? (size_t)(nl - buf) : n, a = p, b = eol;
        while (a < b && (buf[a] == ' ' || buf[a] == '\t')) a++;
        while (b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\t' || buf[b - 1] == '\r')) b--;
        if (b - a == sizeof sep - 1 && memcmp(buf + a, sep, sizeof sep - 1) == 0) {
            add_span(&sp, &k, &cap, buf, seg, p);
            seg = nl ? eol + 1 : n;
        }
        p = nl ? eol + 1 : n;
    }
    size_t s = seg, e = n;
    while (s < e && (unsigned char)buf[s] <= ' ') s++;
    if (s < e) {
        /* with no separator at all, the input is one whole story */
        if (keep_partial || k == 0) add_span(&sp, &k, &cap, buf, seg, n);
        else entk_log("dropped %zu bytes after the last <|endoftext|>: a cut-off story (--keep-partial keeps it)", n - s);
    }
    *out = sp;
    return k;
}

static void print_feats(FILE *out, const tagger *t, const int *f) {
    int any = 0;
    for (int q = 0; q < TAG_NFEATS; q++) {
        if (!f[q]) continue;
        fprintf(out, "%s%s=%s", any ? "|" : "", tag_feat_names[q], tagger_class(t, TAG_FEAT0 + q, f[q]));
        any = 1;
    }
    if (!any) fputc('_', out);
}

/* Retags a treebank: its words (not its raw text) get predicted UPOS, XPOS and FEATS. */
static int tag_conllu(tagger *t, const char *in, const char *output) {
    conllu_file f;
    conllu_read(&f, in);
    outfile o;
    outfile_open(&o, output);
    tag_sent sb = {0};
    for (size_t j = 0; j < f.nsents; j++) {
        const conllu_word *w = f.words + f.sents[j].first;
        int n = f.sents[j].n;
        tag_sent_run(&sb, t, w, n);
        int *up = sb.up, *xp = sb.xp, *fp = sb.fp;
        fprintf(o.fp, "# source = %s:%ld\n", f.path, f.sents[j].line);
        for (int k = 0; k < n; k++) {
            fprintf(o.fp, "%d\t%s\t_\t%s\t%s\t", k + 1, w[k].form, tagger_class(t, TAG_UPOS, up[k]),
                    tagger_class(t, TAG_XPOS, xp[k]));
            print_feats(o.fp, t, fp + (size_t)k * TAG_NFEATS);
            fputs("\t_\t_\t_\t_\n", o.fp);
        }
        fputc('\n', o.fp);
        if (ferror(o.fp)) entk_die(ENTK_EXIT_FAIL, "writing output: %s", strerror(errno));
    }
    outfile_commit(&o);
    entk_log("tagged %zu words in %zu sentences", f.nwords, f.nsents);
    tag_sent_free(&sb);
    conllu_free(&f);
    tagger_free(t);
    return 0;
}

/* The tag set's names as the frames carry them in meta. */
typedef struct {
    char *unames, *xnames, *fvalues[TAG_NFEATS];
    char fvkey[TAG_NFEATS][32], fnames[256];
} tagset_names;

static void tagset_names_make(tagset_names *tn, const tagger *t) {
    tn->unames = tagger_class_names(t, TAG_UPOS);
    tn->xnames = tagger_class_names(t, TAG_XPOS);
    tn->fnames[0] = 0;
    for (int q = 0; q < TAG_NFEATS; q++) {
        tn->fvalues[q] = tagger_class_names(t, TAG_FEAT0 + q);
        snprintf(tn->fvkey[q], sizeof tn->fvkey[q], "values_%s", tag_feat_names[q]);
        snprintf(tn->fnames + strlen(tn->fnames), sizeof tn->fnames - strlen(tn->fnames), "%s%s", q ? " " : "", tag_feat_names[q]);
    }
}

static void tagset_names_free(tagset_names *tn) {
    free(tn->unames);
    free(tn->xnames);
    for (int q = 0; q < TAG_NFEATS; q++) free(tn->fvalues[q]);
}

/* One tagged text: its words and their tags, as ints (tagger) and as the frames' arrays. */
typedef struct {
    size_t index;
    const text_span *span;
    const char *text;
    size_t nw;
    const ws_word *words;
    char **forms;
    const int *up, *xp, *fp;
    const int64_t *off;
    const int32_t *sent, *u32, *x32, *f32;
} tagged_text;

static void write_text_tsv(FILE *o, const tagger *t, const tagged_text *x) {
    size_t start = x->span->start;
    fprintf(o, "# text %zu start=%zu bytes=%zu\n", x->index, start, x->span->len);
    for (size_t k = 0; k < x->nw; k++) {
        fprintf(o, "%zu\t%zu\t%s\t%s\t%s\t", start + x->words[k].start, start + x->words[k].end, x->forms[k],
                tagger_class(t, TAG_UPOS, x->up[k]), tagger_class(t, TAG_XPOS, x->xp[k]));
        print_feats(o, t, x->fp + k * TAG_NFEATS);
        fputc('\n', o);
        if (k + 1 == x->nw || x->words[k + 1].sent_start) fputc('\n', o);
    }
    if (ferror(o)) entk_die(ENTK_EXIT_FAIL, "writing output: %s", strerror(errno));
}

static void write_text_frames(frame_writer *w, const tagset_names *tn, const tagged_text *x) {
    int64_t nw = (int64_t)x->nw;
    tensor tt = {.dt = DT_U8, .ndim = 1, .shape = {(int64_t)x->span->len}, .data = (void *)x->text};
    meta m = {0};
    meta_i64(&m, "text", (int64_t)x->index);
    meta_i64(&m, "start", (int64_t)x->span->start);
    meta_i64(&m, "words", nw);
    frame_write_tensor(w, "text", &tt, &m);
    meta mt = {0};
    meta_i64(&mt, "text", (int64_t)x->index);
    tensor to = {.dt = DT_I64, .ndim = 2, .shape = {nw, 2}, .data = (void *)x->off};
    frame_write_tensor(w, "offsets", &to, &mt);
    tensor ts = {.dt = DT_I32, .ndim = 1, .shape = {nw}, .data = (void *)x->sent};
    frame_write_tensor(w, "sentence", &ts, &mt);
    meta mu = mt, mx = mt, mf = mt;
    meta_str(&mu, "names", tn->unames);
    tensor tu = {.dt = DT_I32, .ndim = 1, .shape = {nw}, .data = (void *)x->u32};
    frame_write_tensor(w, "upos", &tu, &mu);
    meta_str(&mx, "names", tn->xnames);
    tensor tx = {.dt = DT_I32, .ndim = 1, .shape = {nw}, .data = (void *)x->x32};
    frame_write_tensor(w, "xpos", &tx, &mx);
    meta_str(&mf, "names", tn->fnames);
    for (int q = 0; q < TAG_NFEATS; q++) meta_str(&mf, tn->fvkey[q], tn->fvalues[q]);
    tensor tfe = {.dt = DT_I32, .ndim = 2, .shape = {nw, TAG_NFEATS}, .data = (void *)x->f32};
    frame_write_tensor(w, "feats", &tfe, &mf);
}

/* The frame stream of `entk-tag tag`: its header (args from the option table, the model's and
 * the text's keys) and the record "tagset". */
static void open_tag_frames(frame_writer *w, const cli_spec *spec, const char *output, const char *model, const char *in,
                            const char *buf, size_t n, const tagger *t, const tagset_names *tn, size_t ntexts) {
    frame_header h = {0};
    snprintf(h.producer, sizeof h.producer, "entk-tag");
    cli_args args = {0};
    cli_args_add(&args, "tag");
    cli_args_key(&args, spec);
    h.argc = args.argc;
    h.argv = args.argv;
    h.ninputs = 2;
    snprintf(h.input_name[0], sizeof h.input_name[0], "%s", model);
    h.input_key[0] = hash_file(model);
    snprintf(h.input_name[1], sizeof h.input_name[1], "%s", in);
    h.input_key[1] = hash_bytes(buf, n);
    h.key = frame_derive_key(h.producer, h.argc, h.argv, h.ninputs, h.input_key);
    frame_writer_open(w, output, &h);
    meta m = {0};
    meta_str(&m, "info", tagger_info(t));
    meta_i64(&m, "texts", (int64_t)ntexts);
    meta_str(&m, "upos", tn->unames);
    meta_str(&m, "xpos", tn->xnames);
    meta_str(&m, "features", tn->fnames);
    for (int q = 0; q < TAG_NFEATS; q++) meta_str(&m, tn->fvkey[q], tn->fvalues[q]);
    frame_write_record(w, "tagset", &m);
    cli_args_free(&args);
}

static int cmd_tag(int argc, char **argv) {
    const char *model = NULL;
    int stories = 0, keep_partial = 0, tsv = 0, conllu = 0;
    cli_opt opts[] = {
        /* long name, letter, kind, destination, argument, key policy; then the kind's extras and the help */
        {"model", 'm', CLI_STR, &model, "MODEL", CLI_INPUT, .help = "model file from `entk-tag train` (required)"},
        {"stories", 0, CLI_FLAG, &stories, NULL, CLI_KEY_SET,
         .help = "the input is stories separated by lines <|endoftext|> (TinyStories): each\n"
                 "story, trimmed of surrounding whitespace, is one text (text i = story i);\n"
                 "a cut-off story after the last separator is dropped"},
        {"keep-partial", 0, CLI_FLAG, &keep_partial, NULL, CLI_KEY_SET, .help = "with --stories, keep the cut-off last story"},
        /* the TSV and CoNLL-U outputs have no header to key */
        {"tsv", 0, CLI_FLAG, &tsv, NULL, CLI_NOKEY,
         .help = "write a readable table instead: '# text I start=S bytes=B' per text, then\n"
                 "one line per word: start end word UPOS XPOS FEATS (offsets in the input),\n"
                 "a blank line after each sentence"},
        {"conllu", 0, CLI_FLAG, &conllu, NULL, CLI_NOKEY,
         .help = "the input is CoNLL-U: tag its words (not its raw text) and write CoNLL-U\n"
                 "with predicted UPOS, XPOS and FEATS (LEMMA, HEAD, DEPREL, DEPS, MISC '_')"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage_tag, .examples = examples_tag, .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    cli_common co = spec.co;
    if (!model) entk_die(ENTK_EXIT_USAGE, "tag needs -m MODEL (see --help)");
    if (argc - first > 1) entk_die(ENTK_EXIT_USAGE, "tag reads one input (FILE or -), got %d", argc - first);
    if (keep_partial && !stories) entk_die(ENTK_EXIT_USAGE, "--keep-partial goes with --stories");
    if (conllu && (stories || tsv)) entk_die(ENTK_EXIT_USAGE, "--conllu goes with neither --stories nor --tsv");
    const char *in = first < argc ? argv[first] : "-";
    tagger *t = tagger_load(model);
    if (conllu) return tag_conllu(t, in, co.output);
    size_t n;
    char *buf = read_file(in, &n);
    text_span *texts;
    size_t ntexts;
    if (stories) {
        ntexts = split_stories(buf, n, keep_partial, &texts);
    } else {
        texts = xmalloc(sizeof *texts);
        texts[0] = (text_span){0, n};
        ntexts = 1;
    }

    frame_writer w;
    outfile tf;
    tagset_names tn;
    tagset_names_make(&tn, t);
    if (tsv) {
        outfile_open(&tf, co.output);
        fprintf(tf.fp, "# entk-tag: start end word UPOS XPOS FEATS; byte offsets into %s\n",
                strcmp(in, "-") == 0 ? "the input" : in);
    } else {
        open_tag_frames(&w, &spec, co.output, model, in, buf, n, t, &tn, ntexts);
    }

    ws_word *words = NULL;
    size_t wcap = 0, nw_total = 0;
    double t0 = entk_now();
    for (size_t ti = 0; ti < ntexts; ti++) {
        const char *text = buf + texts[ti].start;
        size_t nw = 0;
        ws_split(text, texts[ti].len, &words, &nw, &wcap);
        nw_total += nw;
        int64_t *off = xmalloc((nw + 1) * 2 * sizeof *off);
        int32_t *sent = xmalloc((nw + 1) * sizeof *sent), *u32 = xmalloc((nw + 1) * sizeof *u32),
                *x32 = xmalloc((nw + 1) * sizeof *x32), *f32 = xmalloc((nw + 1) * TAG_NFEATS * sizeof *f32);
        char **forms = xmalloc((nw + 1) * sizeof *forms);
        int *up = xmalloc((nw + 1) * sizeof *up), *xp = xmalloc((nw + 1) * sizeof *xp),
            *fp = xmalloc((nw + 1) * TAG_NFEATS * sizeof *fp);
        for (size_t k = 0; k < nw; k++) forms[k] = strndup(text + words[k].start, words[k].end - words[k].start);
        int32_t si = -1;
        for (size_t a = 0, b; a < nw; a = b) {
            for (b = a + 1; b < nw && !words[b].sent_start; b++) {}
            si++;
            tagger_tag(t, (int)(b - a), (const char *const *)forms + a, up + a, xp + a, fp + a * TAG_NFEATS);
            for (size_t k = a; k < b; k++) sent[k] = si;
        }
        for (size_t k = 0; k < nw; k++) {
            off[2 * k] = (int64_t)words[k].start;
            off[2 * k + 1] = (int64_t)words[k].end;
            u32[k] = up[k];
            x32[k] = xp[k];
            for (int q = 0; q < TAG_NFEATS; q++) f32[k * TAG_NFEATS + q] = fp[k * TAG_NFEATS + q];
        }
        tagged_text tx = {ti, &texts[ti], text, nw, words, forms, up, xp, fp, off, sent, u32, x32, f32};
        if (tsv) write_text_tsv(tf.fp, t, &tx);
        else write_text_frames(&w, &tn, &tx);
        for (size_t k = 0; k < nw; k++) free(forms[k]);
        free(forms); free(off); free(sent); free(u32); free(x32); free(f32); free(up); free(xp); free(fp);
        if (ntexts > 1) entk_progress("texts tagged", (long)ti + 1, (long)ntexts);
    }
    if (ntexts > 1) entk_progress_end();
    if (tsv) outfile_commit(&tf);
    else frame_writer_close(&w);
    entk_log("tagged %zu words in %zu texts (%.1f s)", nw_total, ntexts, entk_now() - t0);
    free(words); free(texts); free(buf);
    tagset_names_free(&tn);
    tagger_free(t);
    return 0;
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    if (argc < 2) entk_die(ENTK_EXIT_USAGE, "missing command: train, eval or tag (see --help)");
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        fputs(help_main, stdout);
        fputs(CLI_COMMON_HELP, stdout);
        return 0;
    }
    if (strcmp(cmd, "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0) return cmd_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "tag") == 0) return cmd_tag(argc - 1, argv + 1);
    if (cmd[0] == '-') entk_die(ENTK_EXIT_USAGE, "unknown option '%s'; a command comes first: train, eval or tag (see --help)", cmd);
    entk_die(ENTK_EXIT_USAGE, "unknown command '%s': train, eval or tag (see --help)", cmd);
}
