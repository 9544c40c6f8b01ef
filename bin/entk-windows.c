/* entk-windows: the TinyStories window data set of Setting 3 (METHOD.md): tagged stories in,
 * model-agreeing windows before words of eight UPOS classes out, with UPOS and feature labels and
 * provenance. The sampling and the filter are lib/windows/windows.c. */
#include "core/cache.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/frame.h"
#include "core/hash.h"
#include "lm/load.h"
#include "text/tageval.h"
#include "text/tagger.h"
#include "windows/windows.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage =
    "Usage: entk-windows -m MODEL [-t TOKENIZER] --tagger TAGGER [options] [TAGS.frames|-]\n"
    "Builds the window data set of the paper's Setting 3 from stories tagged by `entk-tag tag --stories`\n"
    "(TAGS.frames, or stdin): for words of the chosen UPOS classes that are single words for the\n"
    "tokenizer (no token shared with a neighbour) and have at least T tokens of their story before\n"
    "them, the window is the T tokens right before the word (no BOS). Candidates are shuffled (--seed)\n"
    "and taken per class in that order; a window is kept only if the model's greedy next word, tagged in\n"
    "context (the window's text + that word) by TAGGER, has the true word's UPOS; at most --per-class\n"
    "per class. Per-class counts of what was kept and dropped are printed on stderr.\n"
    "Output frames (N windows, ordered by class, then story and word):\n"
    "  windows         i32 [N,T]  token ids (entk-forward reads them)\n"
    "  labels          i32 [N]    class of the true next word (index into meta names)\n"
    "  feature_labels  u8  [N,L]  1 if the true word has the feature value (meta names, e.g.\n"
    "                             Number=Sing; only values with >= --min-support positives; meta support)\n"
    "  provenance      i64 [N,6]  story (index of entk-tag's text), start, end (the word's bytes in the\n"
    "                             story), window_start (byte where the window's text starts), token\n"
    "                             (index of the word's first token in the story), file_offset (of the\n"
    "                             word in the stories file)\n"
    "  next_token      i32 [N]    the word's first token id\n"
    "  generated       i32 [N,G]  the greedy continuation that was tagged (-1 after its end)\n"
    "  predicted       i32 [N]    tagger UPOS id of the generated word (meta names; -1 = no word)\n"
    "  window_stats    record     per class: words, unaligned, early, candidates, examined, dropped,\n"
    "                             dropped_noword, kept\n";

static const char *examples =
    "Example:\n"
    "  entk-tag train -o ud.tag ../shared/data/ud/*.conllu\n"
    "  entk-tag tag -m ud.tag --stories ../shared/data/tinystories/tinystories_sample.txt -o tags.frames\n"
    "  entk-windows -m ../shared/models/stories260K/stories260K.bin -t ../shared/models/stories260K/tok512.bin \\\n"
    "      --tagger ud.tag tags.frames -o windows.frames && entk-show --name window_stats windows.frames\n";

/* ------------------------------------------------------------------ reading entk-tag frames */

typedef struct {
    win_story *st;
    size_t n, cap;
    char upos_names[4096];
    char feat_values[TAG_NFEATS][1024];
    int have_tagset;
} tags_in;

static void *copy_of(const tensor *t) {
    size_t n = tensor_nbytes(t);
    void *p = xmalloc(n ? n : 1);
    if (n) memcpy(p, t->data, n);
    return p;
}

static void read_tags(frame_reader *r, tags_in *in) {
    frame f;
    win_story *cur = NULL;
    int have = 0;   /* bits: 1 text, 2 offsets, 4 upos, 8 feats of cur */
    while (frame_read(r, &f)) {
        if (strcmp(f.kind, "record") == 0) {
            if (strcmp(f.name, "tagset") != 0) continue;
            if (!meta_get_str(&f.meta, "upos", in->upos_names, sizeof in->upos_names))
                frame_fail(r, &f, "tagset has no upos names");
            for (int q = 0; q < TAG_NFEATS; q++) {
                char key[64];
                snprintf(key, sizeof key, "values_%s", tag_feat_names[q]);
                if (!meta_get_str(&f.meta, key, in->feat_values[q], sizeof in->feat_values[q]))
                    frame_fail(r, &f, "tagset has no %s", key);
            }
            in->have_tagset = 1;
            continue;
        }
        if (strcmp(f.name, "text") == 0) {
            if (cur && have != 15) frame_fail(r, &f, "text %zu lacks offsets, upos or feats", in->n - 1);
            if (f.t.dt != DT_U8 || f.t.ndim != 1) frame_fail(r, &f, "text must be u8 [bytes]");
            if (in->n == in->cap) in->st = xrealloc(in->st, (in->cap = in->cap ? 2 * in->cap : 1024) * sizeof *in->st);
            cur = &in->st[in->n++];
            memset(cur, 0, sizeof *cur);
            int64_t idx = -1, start = 0;
            if (!meta_get_i64(&f.meta, "text", &idx) || idx != (int64_t)in->n - 1)
                frame_fail(r, &f, "texts must come in order 0, 1, ... (expected %zu)", in->n - 1);
            meta_get_i64(&f.meta, "start", &start);
            char *s = xmalloc((size_t)f.t.shape[0] + 1);
            memcpy(s, f.t.data, (size_t)f.t.shape[0]);
            s[f.t.shape[0]] = 0;
            cur->text = s;
            cur->len = (size_t)f.t.shape[0];
            cur->file_start = start;
            have = 1;
            continue;
        }
        int bit = strcmp(f.name, "offsets") == 0 ? 2 : strcmp(f.name, "upos") == 0 ? 4 : strcmp(f.name, "feats") == 0 ? 8 : 0;
        if (!bit) continue;
        if (!cur) frame_fail(r, &f, "%s before any text frame: not entk-tag tag output", f.name);
        int64_t n = bit == 2 ? f.t.shape[0] : f.t.ndim >= 1 ? f.t.shape[0] : -1;
        if (bit == 2) {
            int64_t d[2] = {-1, 2};
            frame_expect_shape(r, &f, 2, d);
            if (f.t.dt != DT_I64) frame_fail(r, &f, "offsets must be i64");
            cur->nwords = (size_t)n;
            cur->offs = copy_of(&f.t);
            for (int64_t k = 0; k < n; k++) {
                int64_t a = cur->offs[2 * k], b = cur->offs[2 * k + 1];
                if (a < 0 || b < a || b > (int64_t)cur->len || (k && a < cur->offs[2 * k - 1]))
                    frame_fail(r, &f, "word %lld has bad offsets [%lld, %lld) in a text of %zu bytes", (long long)k,
                                (long long)a, (long long)b, cur->len);
            }
        } else {
            if (!(have & 2)) frame_fail(r, &f, "%s before offsets", f.name);
            int64_t d[2] = {(int64_t)cur->nwords, TAG_NFEATS};
            frame_expect_shape(r, &f, bit == 4 ? 1 : 2, d);
            if (f.t.dt != DT_I32) frame_fail(r, &f, "%s must be i32", f.name);
            if (bit == 4) cur->upos = copy_of(&f.t);
            else cur->feats = copy_of(&f.t);
        }
        have |= bit;
    }
    if (cur && have != 15) entk_die(ENTK_EXIT_INPUT, "%s: text %zu lacks offsets, upos or feats", r->src, in->n - 1);
    if (!in->have_tagset) entk_die(ENTK_EXIT_INPUT, "%s: no tagset record: not the output of entk-tag tag", r->src);
    if (!in->n) entk_die(ENTK_EXIT_INPUT, "%s: no texts", r->src);
}

/* The ids in the frames index the tagger's classes: the tagger must have the same tag set. */
static void check_tagset(const tags_in *in, const tagger *tg, const char *src, const char *tagger_path) {
    char *u = tagger_class_names(tg, TAG_UPOS);
    if (strcmp(u, in->upos_names) != 0)
        entk_die(ENTK_EXIT_INPUT, "%s: the stories were tagged with another UPOS tag set than %s's", src, tagger_path);
    free(u);
    for (int q = 0; q < TAG_NFEATS; q++) {
        char *v = tagger_class_names(tg, TAG_FEAT0 + q);
        if (strcmp(v, in->feat_values[q]) != 0)
            entk_die(ENTK_EXIT_INPUT, "%s: the stories were tagged with other %s values than %s has", src, tag_feat_names[q], tagger_path);
        free(v);
    }
    int nup = tagger_nclasses(tg, TAG_UPOS);
    for (size_t s = 0; s < in->n; s++)
        for (size_t w = 0; w < in->st[s].nwords; w++) {
            if (in->st[s].upos[w] < 0 || in->st[s].upos[w] >= nup)
                entk_die(ENTK_EXIT_INPUT, "%s: text %zu word %zu: UPOS id %d out of range", src, s, w, in->st[s].upos[w]);
            for (int q = 0; q < TAG_NFEATS; q++) {
                int v = in->st[s].feats[w * TAG_NFEATS + q];
                if (v < 0 || v >= tagger_nclasses(tg, TAG_FEAT0 + q))
                    entk_die(ENTK_EXIT_INPUT, "%s: text %zu word %zu: %s value id %d out of range", src, s, w, tag_feat_names[q], v);
            }
        }
}

/* ------------------------------------------------------------------ writing */

static void write_items(frame_writer *w, const win_result *r, const win_story *st, const tokenizer *tk,
                        const win_item *items, size_t n, const win_opts *o, const char *class_names,
                        const char *upos_names, const char *label_names, const char *which) {
    int T = r->T, G = r->G, L = r->nlabels;
    tensor tw = tensor_2d(DT_I32, (int64_t)n, T), tl = tensor_1d(DT_I32, (int64_t)n), tf = tensor_2d(DT_U8, (int64_t)n, L),
           tp = tensor_2d(DT_I64, (int64_t)n, 6), tn = tensor_1d(DT_I32, (int64_t)n), tpr = tensor_1d(DT_I32, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        const win_item *it = &items[i];
        memcpy((int32_t *)tw.data + i * (size_t)T, it->ids, (size_t)T * sizeof(int32_t));
        ((int32_t *)tl.data)[i] = it->cls;
        win_feature_row(r, st, it, (uint8_t *)tf.data + i * (size_t)L);
        int64_t *p = (int64_t *)tp.data + 6 * i;
        p[0] = it->story, p[1] = it->start, p[2] = it->end, p[3] = it->win_start, p[4] = it->token;
        p[5] = st[it->story].file_start + it->start;
        ((int32_t *)tn.data)[i] = it->next_token;
        ((int32_t *)tpr.data)[i] = it->predicted;
    }
    meta mw = {0};
    meta_str(&mw, "windows", which);
    meta_i64(&mw, "window", T);
    meta_i64(&mw, "bos", 0);
    meta_str(&mw, "classes", class_names);
    frame_write_tensor(w, "windows", &tw, &mw);
    meta ml = {0};
    meta_str(&ml, "names", class_names);
    frame_write_tensor(w, "labels", &tl, &ml);
    meta mf = {0};
    meta_str(&mf, "names", label_names);
    meta_i64s(&mf, "support", r->label_support, L);
    meta_i64(&mf, "min_support", o->min_support);
    frame_write_tensor(w, "feature_labels", &tf, &mf);
    meta mp = {0};
    meta_str(&mp, "columns", "story start end window_start token file_offset");
    frame_write_tensor(w, "provenance", &tp, &mp);
    frame_write_tensor(w, "next_token", &tn, NULL);
    if (G) {
        tensor tg = tensor_2d(DT_I32, (int64_t)n, G);
        for (size_t i = 0; i < n; i++) memcpy((int32_t *)tg.data + i * (size_t)G, items[i].gen, (size_t)G * sizeof(int32_t));
        meta mg = {0};
        meta_str(&mg, "context", o->context == WIN_CTX_REST ? "rest" : "word");
        frame_write_tensor(w, "generated", &tg, &mg);
        tensor_free(&tg);
    }
    meta mpr = {0};
    meta_str(&mpr, "names", upos_names);
    frame_write_tensor(w, "predicted", &tpr, &mpr);
    /* what a reader of a report needs to see what a direction picks up (entk-labels --examples) */
    bytebuf text = {0};
    for (size_t i = 0; i < n; i++) win_example_text(r, st, tk, &items[i], 12, &text);
    tensor tt = {.dt = DT_U8, .ndim = 1, .shape = {(int64_t)text.n}, .data = text.p};
    meta mt = {0};
    meta_str(&mt, "format", "one line per window: the text of its last 12 tokens, a tab, the next word");
    frame_write_tensor(w, "text", &tt, &mt);
    free(text.p);
    tensor_free(&tw); tensor_free(&tl); tensor_free(&tf); tensor_free(&tp); tensor_free(&tn); tensor_free(&tpr);
}

static void write_stats(frame_writer *w, const win_result *r, const win_opts *o, const char *class_names) {
    int nc = r->nclasses;
    int64_t *v = xmalloc(8 * (size_t)nc * sizeof *v);
    for (int c = 0; c < nc; c++) {
        const win_class_stats *s = &r->stats[c];
        int64_t row[8] = {s->words, s->unaligned, s->early, s->candidates, s->examined, s->dropped, s->dropped_noword, s->kept};
        for (int k = 0; k < 8; k++) v[k * nc + c] = row[k];
    }
    static const char *keys[8] = {"words", "unaligned", "early", "candidates", "examined", "dropped", "dropped_noword", "kept"};
    meta m = {0};
    meta_str(&m, "classes", class_names);
    for (int k = 0; k < 8; k++) meta_i64s(&m, keys[k], v + k * nc, nc);
    meta_i64(&m, "per_class", o->cap);
    meta_i64(&m, "window", o->T);
    meta_i64(&m, "seed", (int64_t)o->seed);
    meta_i64(&m, "filter", o->filter);
    frame_write_record(w, "window_stats", &m);
    free(v);
}

/* Reads the tag frames at in_path into in, checks they were tagged with tg's tag set, and
 * returns the stream's key; *tagger_key gets the key of the tagger file. */
static entk_key read_tag_stream(const char *in_path, const char *tagger_path, const tagger *tg, tags_in *in, entk_key *tagger_key) {
    frame_reader rd;
    frame_reader_open(&rd, in_path);
    read_tags(&rd, in);
    entk_key tags_key = rd.h.key;
    int tags_tagger_known = rd.h.ninputs >= 1;
    entk_key tags_tagger_key = tags_tagger_known ? rd.h.input_key[0] : (entk_key){{0}};
    char src[256];
    snprintf(src, sizeof src, "%s", rd.src);
    frame_reader_close(&rd);
    check_tagset(in, tg, src, tagger_path);
    *tagger_key = hash_file(tagger_path);
    if (tags_tagger_known && strcmp(tags_tagger_key.hex, tagger_key->hex) != 0)
        entk_log("note: %s was made with another tagger model file than %s (same tag set)", src, tagger_path);
    return tags_key;
}

static void tags_free(tags_in *in) {
    for (size_t s = 0; s < in->n; s++) {
        free((void *)in->st[s].text);
        free((void *)in->st[s].offs);
        free((void *)in->st[s].upos);
        free((void *)in->st[s].feats);
    }
    free(in->st);
}

/* "a b c" */
static char *join_words(char *const *w, int n) {
    size_t len = 1;
    for (int k = 0; k < n; k++) len += strlen(w[k]) + 1;
    char *s = xmalloc(len), *p = s;
    *p = 0;
    for (int k = 0; k < n; k++) p += sprintf(p, "%s%s", k ? " " : "", w[k]);
    return s;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    cli_start(argc, argv);
    const char *model_path = NULL, *tok_path = NULL, *tagger_path = NULL, *rejected = NULL;
    const char *classes_arg = "PUNCT,PRON,PROPN,DET,ADV,CCONJ,NOUN,VERB";
    win_opts o = {.T = 64, .cap = 128, .seed = 0, .gen_tokens = 8, .context = WIN_CTX_WORD, .min_support = 30, .batch = 64, .filter = 1};
    int no_filter = 0;
    cli_opt opts[] = {
        /* long name, letter, kind, destination, argument, key policy; then the kind's extras and the help */
        {"model", 'm', CLI_STR, &model_path, "PATH", CLI_INPUT, .help = "llama2.c checkpoint or Gemma 3 directory (required)"},
        {"tokenizer", 't', CLI_STR, &tok_path, "PATH", CLI_INPUT,
         .help = "the model's tokenizer: llama2.c .bin or tokenizer.json (default for a\n"
                 "model directory: MODEL/tokenizer.json)"},
        {"tagger", 0, CLI_STR, &tagger_path, "PATH", CLI_INPUT, .help = "the entk-tag model that tagged the stories (required)"},
        {"window", 0, CLI_INT, &o.T, "T", CLI_KEY_ARG, .min = 1, .max = 1 << 20, .help = "tokens per window (default 64)"},
        {"per-class", 0, CLI_INT, &o.cap, "N", CLI_KEY_ARG, .min = 0, .max = 1 << 30,
         .help = "windows per class (default 128; 0 = all agreeing candidates)"},
        {"classes", 0, CLI_STR, &classes_arg, "LIST", CLI_KEY_ARG, .help = "UPOS classes (default PUNCT,PRON,PROPN,DET,ADV,CCONJ,NOUN,VERB)"},
        {"seed", 0, CLI_U64, &o.seed, "S", CLI_KEY_ARG, .min = 0, .max = 0x7fffffffffffffffL, .help = "seed of the sampling order (default 0)"},
        {"gen-tokens", 0, CLI_INT, &o.gen_tokens, "N", CLI_KEY_ARG, .min = 1, .max = 1024,
         .help = "most tokens generated to complete the next word (default 8; 0 with --no-filter)"},
        {"context", 0, CLI_CHOICE, &o.context, "word|rest", CLI_KEY_ARG,
         .help = "word: tag the generated word after the window's text (default); rest: with\n"
                 "the rest of the generated text as right context"},
        {"min-support", 0, CLI_INT, &o.min_support, "N", CLI_KEY_ARG, .min = 1, .max = 1 << 30,
         .help = "feature labels need N positives among the kept windows (default 30)"},
        {"no-filter", 0, CLI_FLAG, &no_filter, NULL, CLI_KEY_ONOFF, .key_name = "filter",
         .help = "keep candidates without the agreement filter (the model is not run)"},
        {"batch", 0, CLI_INT, &o.batch, "N", CLI_NOKEY, .min = 1, .max = 1 << 16,
         .help = "windows per forward (default 64; does not change the result)"},
        {"rejected", 0, CLI_STR, &rejected, "FILE", CLI_NOKEY,
         .help = "also write the windows the filter dropped, as the same frames (their header\n"
                 "says \"rejected\" where the kept ones' says \"kept\")"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    o.filter = !no_filter;
    if (!model_path) entk_die(ENTK_EXIT_USAGE, "-m/--model is required (see --help)");
    if (!tagger_path) entk_die(ENTK_EXIT_USAGE, "--tagger is required: the entk-tag model that tagged the stories (see --help)");
    if (argc - first > 1) entk_die(ENTK_EXIT_USAGE, "one input (TAGS.frames or -), got %d", argc - first);
    if (rejected && !o.filter) entk_die(ENTK_EXIT_USAGE, "--rejected needs the filter (drop --no-filter)");
    o.classes = cli_split(classes_arg, &o.nclasses);
    if (o.nclasses == 0) entk_die(ENTK_EXIT_USAGE, "--classes is empty");
    if (!o.filter) o.gen_tokens = 0;
    struct stat sb;
    int model_dir = stat(model_path, &sb) == 0 && S_ISDIR(sb.st_mode);
    char *tok_default = NULL;
    if (!tok_path) {
        if (!model_dir) entk_die(ENTK_EXIT_USAGE, "-t/--tokenizer is required for a llama2.c checkpoint (e.g. tok512.bin)");
        size_t len = strlen(model_path) + 32;
        tok_default = xmalloc(len);
        snprintf(tok_default, len, "%s/tokenizer.json", model_path);
        tok_path = tok_default;
    }
    const char *in_path = first < argc ? argv[first] : "-";

    tagger *tg = tagger_load(tagger_path);
    tags_in in = {0};
    entk_key tagger_key, tags_key = read_tag_stream(in_path, tagger_path, tg, &in, &tagger_key);

    cache_init(spec.co.cache_dir);
    tokenizer tk;
    tokenizer_load(&tk, tok_path, NULL, NULL);
    lm_model *m = lm_load(model_path);
    if (m->vocab > tk.ntokens + 1024)
        entk_die(ENTK_EXIT_INPUT, "%s has %d tokens but the model's vocabulary is %d: not the model's tokenizer", tok_path,
                 tk.ntokens, m->vocab);

    if (o.filter && o.T + o.gen_tokens - 1 > m->max_pos)
        entk_die(ENTK_EXIT_USAGE, "--window %d plus --gen-tokens %d exceed the model's %d positions", o.T, o.gen_tokens, m->max_pos);
    win_result *r = win_build(in.st, in.n, &tk, m, tg, &o);
    win_log_stats(r, &o);

    /* canonical arguments: everything that changes the result, then which windows the stream holds */
    cli_args cargs = {0};
    cli_args_key(&cargs, &spec);
    cli_args_add(&cargs, "kept");
    const char *in_names[4] = {model_path, tok_path, tagger_path, strcmp(in_path, "-") ? in_path : "<stdin>"};
    entk_key in_keys[4] = {m->key, tk.key, tagger_key, tags_key};

    char *class_names = join_words(o.classes, o.nclasses), *label_names = join_words(r->label_names, r->nlabels);
    char *upos_names = tagger_class_names(tg, TAG_UPOS);

    frame_writer w, wr;
    frame_header h;
    frame_header_make(&h, "entk-windows", cargs.argc, cargs.argv, 4, in_names, in_keys);
    frame_writer_open(&w, spec.co.output, &h);
    if (rejected) {
        free(cargs.argv[cargs.argc - 1]);
        cargs.argv[cargs.argc - 1] = xstrdup("rejected");
        frame_header hr;
        frame_header_make(&hr, "entk-windows", cargs.argc, cargs.argv, 4, in_names, in_keys);
        frame_writer_open(&wr, rejected, &hr);
    }
    write_stats(&w, r, &o, class_names);
    write_items(&w, r, in.st, &tk, r->kept, r->nkept, &o, class_names, upos_names, label_names, "kept");
    if (rejected) {
        write_items(&wr, r, in.st, &tk, r->dropped, r->ndropped, &o, class_names, upos_names, label_names, "rejected");
        frame_writer_close(&wr);
    }
    frame_writer_close(&w);
    entk_log("wrote %zu windows of %d tokens, %d feature labels%s", r->nkept, o.T, r->nlabels,
             rejected ? " (and the rejected ones)" : "");

    win_result_free(r);
    lm_free(m);
    tokenizer_free(&tk);
    tagger_free(tg);
    tags_free(&in);
    free(o.classes[0]);
    free(o.classes);
    free(class_names); free(label_names); free(upos_names); free(tok_default);
    cli_args_free(&cargs);
    return 0;
}
