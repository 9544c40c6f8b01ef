/* entk-tokenize: text -> token ids with byte offsets (Gemma 3 tokenizer.json, llama2.c tokenizer),
 * and ids -> text (--decode). */
#include "core/cache.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/frame.h"
#include "core/fileio.h"
#include "core/outfile.h"
#include "text/tokenizer.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "Usage: entk-tokenize -t TOKENIZER [options] [FILE...]\n"
    "Tokenizes text (FILEs or stdin; '-' = stdin) into frames: per text a tensor 'ids' (i32 [n]) with\n"
    "meta {text, file, start, bytes} and a tensor 'offsets' (i64 [n,2]): the byte range [start, end)\n"
    "of each token in its text (which is bytes [start, start + bytes) of input 'file'). Reads a\n"
    "Hugging Face tokenizer.json with a BPE model (Gemma 3) or a llama2.c tokenizer.bin. The compiled\n"
    "tokenizer.json is kept in the cache, so only the first load parses the JSON.\n";

static const char *examples =
    "Examples:\n"
    "  echo 'Once upon a time' | entk-tokenize -t ../shared/models/stories260K/tok512.bin --lines --text\n"
    "  entk-tokenize -t \"$(tests/peer/fetch-gemma-tokenizer.sh)\" --delim '<|endoftext|>' --drop-tail \\\n"
    "      ../shared/data/tinystories/tinystories_sample.txt -o stories.tok\n"
    "  entk-tokenize -t \"$(tests/peer/fetch-gemma-tokenizer.sh)\" --decode --delim '<|endoftext|>' stories.tok\n";

/* The kinds of run (cli_spec.kind): frames, lines of ids (--text), or texts from ids (--decode). */
enum { RUN_FRAMES = 1, RUN_TEXT = 2, RUN_DECODE = 4, RUN_ENCODE = RUN_FRAMES | RUN_TEXT };

enum { SPLIT_WHOLE, SPLIT_LINES, SPLIT_DELIM };
enum { BAD_ERROR, BAD_REPLACE, BAD_BYTES };     /* --invalid-utf8, in the order of its choices */

typedef struct {
    const char *tok_path, *delim;
    int format;             /* index in hf|llama2; -1 until the tokenizer's file says */
    int lines, drop_tail, no_bos, eos, invalid, text_out, offsets, decode, keep_special;
    int split;              /* resolved from --lines and --delim */
} tok_opts;

/* The tokenizer and what this run adds to every text. */
typedef struct {
    tokenizer t;
    int bos, eos;
} tok_run;

static void tk_encode(tok_run *tk, const char *text, size_t n, tok_seq *out) {
    tokenizer_encode(&tk->t, text, n, tk->bos, tk->eos, out);
}

static void tk_decode(const tok_run *tk, const int32_t *ids, size_t n, int skip_special, bytebuf *out) {
    tokenizer_decode(&tk->t, ids, n, skip_special, out);
}

/* The texts of one input as [start, end) byte ranges, split as the options say. */
static size_t split_texts(const char *s, size_t n, int split, const char *delim, int drop_tail, size_t **ranges) {
    size_t cnt = 0, cap = 64;
    size_t *r = xmalloc(2 * cap * sizeof *r);
#define ADD(a_, b_) do { if (cnt == cap) { cap *= 2; r = xrealloc(r, 2 * cap * sizeof *r); } r[2 * cnt] = (a_); r[2 * cnt + 1] = (b_); cnt++; } while (0)
    if (split == SPLIT_WHOLE) {
        ADD(0, n);
    } else {
        size_t dl = delim ? strlen(delim) : 0;
        size_t tstart = 0, tend = 0;   /* delim: the current text's lines so far */
        int tlines = 0;
        size_t i = 0;
        while (i < n) {
            const char *nl = memchr(s + i, '\n', n - i);
            size_t e = nl ? (size_t)(nl - s) : n;   /* the line is s[i, e) */
            if (split == SPLIT_LINES) {
                ADD(i, e);
            } else if (e - i == dl && memcmp(s + i, delim, dl) == 0) {
                if (tlines) ADD(tstart, tend);
                else ADD(i, i);
                tlines = 0;
            } else {
                if (!tlines) tstart = i;
                tend = e;
                tlines++;
            }
            i = nl ? e + 1 : n;
        }
        if (split == SPLIT_DELIM && tlines && !drop_tail) ADD(tstart, tend);
    }
#undef ADD
    *ranges = r;
    return cnt;
}

static void write_text_line(FILE *fp, const tok_seq *ts, int offsets) {
    for (size_t k = 0; k < ts->n; k++) {
        if (k) fputc(' ', fp);
        if (offsets) fprintf(fp, "%d:%lld:%lld", ts->ids[k], (long long)ts->offs[2 * k], (long long)ts->offs[2 * k + 1]);
        else fprintf(fp, "%d", ts->ids[k]);
    }
    fputc('\n', fp);
}

/* ---- decode ---- */

static void emit_decoded(FILE *fp, const tok_run *tk, const int32_t *ids, size_t n, int keep_special, const char *sep) {
    bytebuf b = {0};
    tk_decode(tk, ids, n, !keep_special, &b);
    if (b.n && fwrite(b.p, 1, b.n, fp) != b.n) entk_die(ENTK_EXIT_FAIL, "writing output: %s", strerror(errno));
    fputs(sep, fp);
    free(b.p);
}

static void decode_input(FILE *fp, const tok_run *tk, const char *path, int keep_special, const char *sep) {
    frame_reader r;
    if (frame_reader_open_or_raw(&r, path)) {   /* a frame stream */
        frame f;
        long nids = 0;
        do {
            while (frame_read(&r, &f)) {
                if (strcmp(f.kind, "tensor") != 0 || strcmp(f.name, "ids") != 0) continue;
                if (f.t.dt != DT_I32 && f.t.dt != DT_I64) frame_fail(&r, &f, "ids must be i32 or i64, not %s", dtype_name(f.t.dt));
                if (f.t.ndim != 1) frame_fail(&r, &f, "ids must be one text ([n]), not rank %d", f.t.ndim);
                int64_t n = f.t.shape[0];
                int32_t *ids = xmalloc((size_t)(n ? n : 1) * sizeof *ids);
                for (int64_t k = 0; k < n; k++) {
                    int64_t v = f.t.dt == DT_I32 ? ((int32_t *)f.t.data)[k] : ((int64_t *)f.t.data)[k];
                    if (v < INT32_MIN || v > INT32_MAX) frame_fail(&r, &f, "id %lld out of range", (long long)v);
                    ids[k] = (int32_t)v;
                }
                emit_decoded(fp, tk, ids, (size_t)n, keep_special, sep);
                free(ids);
                nids++;
            }
        } while (frame_reader_next_stream(&r));
        frame_reader_close(&r);
        if (!nids) entk_log("%s: no 'ids' frames", path);
        return;
    }
    /* lines of ids */
    size_t len;
    char *text = frame_reader_slurp(&r, &len);
    frame_reader_close(&r);
    int32_t *ids = NULL;
    size_t idcap = 0, lineno = 0;
    for (char *line = text; line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        char *eol = nl ? nl : text + len;
        *eol = 0;
        lineno++;
        if (memchr(line, 0, (size_t)(eol - line))) entk_die(ENTK_EXIT_INPUT, "%s: line %zu: NUL byte", path, lineno);
        size_t n = 0;
        char *p = line;
        for (;;) {
            while (*p == ' ' || *p == '\t' || *p == '\r') p++;
            if (!*p) break;
            char *e;
            errno = 0;
            long v = strtol(p, &e, 10);
            if (e == p || errno || v < INT32_MIN || v > INT32_MAX || (*e && *e != ' ' && *e != '\t' && *e != '\r' && *e != ':'))
                entk_die(ENTK_EXIT_INPUT, "%s: line %zu: not a token id: '%.20s'", path, lineno, p);
            while (*e && *e != ' ' && *e != '\t' && *e != '\r') e++;   /* id:start:end */
            if (n == idcap) { idcap = 2 * idcap + 256; ids = xrealloc(ids, idcap * sizeof *ids); }
            ids[n++] = (int32_t)v;
            p = e;
        }
        emit_decoded(fp, tk, ids, n, keep_special, sep);
        line = eol + 1;
    }
    free(text);
    free(ids);
}

/* --whole in the key when the texts are whole files (neither --lines nor --delim) */
static const char *show_whole(const cli_opt *o, char *buf, size_t n) {
    const tok_opts *t = o->dest;
    if (t->lines || t->delim) return NULL;
    snprintf(buf, n, "--whole");
    return buf;
}

/* An option of another kind of run, as one line. */
static noreturn void misplaced(const cli_opt *mis, unsigned kind) {
    char nm[80];
    cli_opt_name(mis, nm, sizeof nm);
    if (kind == RUN_DECODE && mis->only == RUN_TEXT)
        entk_die(ENTK_EXIT_USAGE, "--decode prints text; --text/--offsets are for encoding");
    if (mis->only == RUN_TEXT) entk_die(ENTK_EXIT_USAGE, "--offsets goes with --text (frames always carry offsets)");
    if (mis->only == RUN_DECODE) entk_die(ENTK_EXIT_USAGE, "%s goes with --decode", nm);
    entk_die(ENTK_EXIT_USAGE, "%s is for encoding; --decode reads ids", nm);
}

/* Every input read and checked before the tokenizer loads: the header's key names their content,
 * and bad input should not wait for a 33 MB tokenizer.json to load. Returns that key. */
static entk_key read_texts(char **files, int nfiles, int invalid, char ***data, size_t **dlen) {
    *data = xmalloc((size_t)nfiles * sizeof **data);
    *dlen = xmalloc((size_t)nfiles * sizeof **dlen);
    keybuilder kb;
    keybuilder_init(&kb, "entk-tokenize-text");
    for (int i = 0; i < nfiles; i++) {
        (*data)[i] = read_file(files[i], &(*dlen)[i]);
        entk_key k = hash_bytes((*data)[i], (*dlen)[i]);
        keybuilder_str(&kb, k.hex);
        if (invalid == BAD_ERROR) {
            size_t at = utf8_invalid_at((const unsigned char *)(*data)[i], (*dlen)[i]);
            if (at < (*dlen)[i])
                entk_die(ENTK_EXIT_INPUT, "%s: invalid UTF-8 at byte %zu (--invalid-utf8 replace reads it as U+FFFD)",
                         strcmp(files[i], "-") ? files[i] : "<stdin>", at);
        }
    }
    return keybuilder_final(&kb);
}

/* --decode: every input's ids as text, joined as the split options say. */
static void decode_all(const tok_run *tk, char **files, int nfiles, const tok_opts *o, const char *output) {
    const char *sep = o->split == SPLIT_WHOLE ? "" : o->split == SPLIT_LINES ? "\n" : NULL;
    char *dsep = NULL;
    if (!sep) {
        size_t l = strlen(o->delim) + 3;
        dsep = xmalloc(l);
        snprintf(dsep, l, "\n%s\n", o->delim);
        sep = dsep;
    }
    outfile out;
    outfile_open(&out, output);
    for (int i = 0; i < nfiles; i++) decode_input(out.fp, tk, files[i], o->keep_special, sep);
    outfile_commit(&out);
    free(dsep);
}

/* Where the encoded texts go: frames, or lines of ids (--text). */
typedef struct {
    frame_writer w;
    outfile text;
    int text_out, offsets;
} tok_sink;

/* One text's tokens, to the sink. */
static void put_text(tok_sink *k, const tok_seq *ts, long ntext, int fi, size_t start, size_t n) {
    if (k->text_out) {
        write_text_line(k->text.fp, ts, k->offsets);
        return;
    }
    tensor ids = {.dt = DT_I32, .ndim = 1, .shape = {(int64_t)ts->n}, .data = ts->ids};
    tensor offs = {.dt = DT_I64, .ndim = 2, .shape = {(int64_t)ts->n, 2}, .data = ts->offs};
    meta m = {0};
    meta_i64(&m, "text", ntext);
    meta_i64(&m, "file", fi);
    meta_i64(&m, "start", (int64_t)start);
    meta_i64(&m, "bytes", (int64_t)n);
    frame_write_tensor(&k->w, "ids", &ids, &m);
    meta m2 = {0};
    meta_i64(&m2, "text", ntext);
    frame_write_tensor(&k->w, "offsets", &offs, &m2);
}

/* Scratch for --invalid-utf8 replace: the cleaned text and, per byte of it, the raw range. */
typedef struct {
    unsigned char *clean;
    uint32_t *cs, *ce;
    size_t cap;
} utf8_fix;

/* One text's tokens into ts; with --invalid-utf8 replace an ill-formed text is tokenized cleaned
 * and its offsets mapped back into the raw text. */
static void encode_text(tok_run *tk, const char *text, size_t n, int invalid, utf8_fix *fx, tok_seq *ts) {
    ts->n = 0;
    if (invalid != BAD_REPLACE || utf8_invalid_at((const unsigned char *)text, n) >= n) {
        tk_encode(tk, text, n, ts);
        return;
    }
    if (3 * n + 1 > fx->cap) {
        fx->cap = 3 * n + 1;
        fx->clean = xrealloc(fx->clean, fx->cap);
        fx->cs = xrealloc(fx->cs, fx->cap * sizeof *fx->cs);
        fx->ce = xrealloc(fx->ce, fx->cap * sizeof *fx->ce);
    }
    size_t m = utf8_replace((const unsigned char *)text, n, fx->clean, fx->cs, fx->ce);
    tk_encode(tk, (const char *)fx->clean, m, ts);
    for (size_t q = 0; q < ts->n; q++) {
        int64_t s = ts->offs[2 * q], e = ts->offs[2 * q + 1];
        if (s < e) { ts->offs[2 * q] = fx->cs[s]; ts->offs[2 * q + 1] = fx->ce[e - 1]; }
        else { int64_t p = s < (int64_t)m ? fx->cs[s] : (int64_t)n; ts->offs[2 * q] = ts->offs[2 * q + 1] = p; }
    }
}

/* Every text of every input, tokenized to the sink; the totals logged. */
static void encode_all(tok_run *tk, char **data, size_t *dlen, int nfiles, const tok_opts *o, tok_sink *k) {
    tok_seq ts = {0};
    utf8_fix fx = {0};
    long ntext = 0;
    size_t total_bytes = 0, total_tokens = 0;
    double t_enc = 0;
    for (int fi = 0; fi < nfiles; fi++) {
        size_t *rg;
        size_t nt = split_texts(data[fi], dlen[fi], o->split, o->delim, o->drop_tail, &rg);
        for (size_t i = 0; i < nt; i++) {
            size_t n = rg[2 * i + 1] - rg[2 * i];
            double t0 = entk_now();
            encode_text(tk, data[fi] + rg[2 * i], n, o->invalid, &fx, &ts);
            t_enc += entk_now() - t0;
            total_bytes += n;
            total_tokens += ts.n;
            put_text(k, &ts, ntext++, fi, rg[2 * i], n);
            if (nt > 1000) entk_progress("texts", (long)i + 1, (long)nt);
        }
        free(rg);
    }
    entk_progress_end();
    entk_log("%ld texts, %zu bytes -> %zu tokens; encoding took %.3f s (%.1f MB/s)", ntext, total_bytes, total_tokens, t_enc,
             t_enc > 0 ? total_bytes / t_enc / 1e6 : 0.0);
    free(fx.clean);
    free(fx.cs);
    free(fx.ce);
    tok_seq_free(&ts);
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    tok_opts o = {.format = -1};
    cli_opt opts[] = {
        {"tokenizer", 't', CLI_STR, &o.tok_path, "PATH", CLI_INPUT, .help = "tokenizer.json or llama2.c tokenizer .bin (required)"},
        {"format", 0, CLI_CHOICE, &o.format, "hf|llama2", CLI_KEY_ARG, .help = "default: hf if the file is JSON"},
        {.kind = CLI_HEADING, .help = "Texts (default: each FILE is one text):"},
        {"whole", 0, CLI_CUSTOM, &o, NULL, CLI_KEY_VALUE, .derived = 1, .show = show_whole, .help = "neither --lines nor --delim"},
        {"lines", 0, CLI_FLAG, &o.lines, NULL, CLI_KEY_SET, .help = "one text per line (the newline is not part of the text)"},
        {"delim", 0, CLI_STR, &o.delim, "LINE", CLI_KEY_ARG,
         .help = "texts are separated by lines equal to LINE, e.g. '<|endoftext|>'"},
        {"drop-tail", 0, CLI_FLAG, &o.drop_tail, NULL, CLI_KEY_SET,
         .help = "with --delim: drop the text after the last delimiter line (cut off)"},
        {.kind = CLI_HEADING, .help = "Tokens:"},
        {"no-bos", 0, CLI_FLAG, &o.no_bos, NULL, CLI_KEY_ONOFF, .key_name = "bos", .only = RUN_ENCODE,
         .help = "no BOS (tokenizer.json: none of the post-processor's special tokens)"},
        {"eos", 0, CLI_FLAG, &o.eos, NULL, CLI_KEY_SET, .only = RUN_ENCODE, .help = "llama2.c: append EOS (id 2)"},
        {"invalid-utf8", 0, CLI_CHOICE, &o.invalid, "error|replace|bytes", CLI_KEY_ARG, .only = RUN_ENCODE,
         .help = "error (default: exit 3), replace (each ill-formed sequence is U+FFFD,\n"
                 "as a JS program reading the file sees it), bytes (llama2.c: raw bytes, as\n"
                 "run.c)"},
        /* --text and --decode write text, not frames */
        {"text", 0, CLI_FLAG, &o.text_out, NULL, CLI_NOKEY, .only = RUN_TEXT,
         .help = "print plain text instead of frames: one line of ids per text"},
        {"offsets", 0, CLI_FLAG, &o.offsets, NULL, CLI_NOKEY, .only = RUN_TEXT, .help = "with --text: print each token as id:start:end"},
        {.kind = CLI_HEADING, .help = "Decoding:"},
        {"decode", 0, CLI_FLAG, &o.decode, NULL, CLI_NOKEY,
         .help = "read 'ids' frames (or lines of ids, as --text prints them) and print the\n"
                 "texts, joined as the split options say (none, newline, delimiter line)"},
        {"keep-special", 0, CLI_FLAG, &o.keep_special, NULL, CLI_NOKEY, .only = RUN_DECODE,
         .help = "with --decode: keep special tokens (<bos>, <eos>, ...)"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    if (!o.tok_path) entk_die(ENTK_EXIT_USAGE, "-t/--tokenizer is required (see --help)");
    if (o.delim && (!*o.delim || strchr(o.delim, '\n'))) entk_die(ENTK_EXIT_USAGE, "--delim needs a non-empty line without newlines");
    if (o.drop_tail && !o.delim) entk_die(ENTK_EXIT_USAGE, "--drop-tail needs --delim");
    spec.kind = o.decode ? RUN_DECODE : o.text_out ? RUN_TEXT : RUN_FRAMES;
    const cli_opt *mis = cli_misplaced(&spec);
    if (mis) misplaced(mis, spec.kind);
    if (o.lines && o.delim) entk_die(ENTK_EXIT_USAGE, "--lines and --delim exclude each other");
    o.split = o.lines ? SPLIT_LINES : o.delim ? SPLIT_DELIM : SPLIT_WHOLE;
    if (o.format < 0) o.format = strcmp(tokenizer_kind(o.tok_path), "hf") == 0 ? 0 : 1;
    const char *format = o.format == 0 ? "hf" : "llama2";
    int hf = o.format == 0;
    if (o.eos && hf) entk_die(ENTK_EXIT_USAGE, "--eos is for llama2.c tokenizers (a tokenizer.json's post-processor says what to add)");
    if (o.invalid == BAD_BYTES && hf) entk_die(ENTK_EXIT_USAGE, "--invalid-utf8 bytes is for llama2.c tokenizers (a tokenizer.json takes text)");

    int nfiles = argc - first;
    char *stdin_only[] = {"-"};
    char **files = nfiles ? argv + first : stdin_only;
    if (!nfiles) nfiles = 1;
    char **data = NULL;
    size_t *dlen = NULL;
    entk_key text_key = {{0}};
    if (!o.decode) text_key = read_texts(files, nfiles, o.invalid, &data, &dlen);

    cache_init(spec.co.cache_dir);
    tok_run tk = {.bos = !o.no_bos, .eos = o.eos};
    bpe_load_info li;
    tokenizer_load(&tk.t, o.tok_path, format, &li);
    if (hf)
        entk_log("loaded %s: %d tokens in %.3f s (%s, %.1f MB compiled)", o.tok_path, tk.t.ntokens, li.seconds,
                 li.from_cache ? "from the cache" : cache_enabled() ? "parsed and compiled; now cached" : "parsed and compiled; cache off",
                 li.bytes / 1e6);
    else
        entk_log("loaded %s: %d tokens in %.3f s (llama2.c format)", o.tok_path, tk.t.ntokens, li.seconds);
    if (o.decode) {
        decode_all(&tk, files, nfiles, &o, spec.co.output);
        tokenizer_free(&tk.t);
        return 0;
    }

    tok_sink k = {.text_out = o.text_out, .offsets = o.offsets};
    if (o.text_out) {
        outfile_open(&k.text, spec.co.output);
    } else {
        cli_args a = {0};
        cli_args_key(&a, &spec);
        const char *in_names[2] = {o.tok_path, nfiles == 1 ? (strcmp(files[0], "-") ? files[0] : "<stdin>") : "text files"};
        entk_key in_keys[2] = {tk.t.key, text_key};
        frame_header h;
        frame_header_make(&h, "entk-tokenize", a.argc, a.argv, 2, in_names, in_keys);
        frame_writer_open(&k.w, spec.co.output, &h);
        cli_args_free(&a);
    }
    encode_all(&tk, data, dlen, nfiles, &o, &k);
    if (o.text_out) outfile_commit(&k.text);
    else frame_writer_close(&k.w);
    if (hf) cache_report();
    for (int i = 0; i < nfiles; i++) free(data[i]);
    free(data);
    free(dlen);
    tokenizer_free(&tk.t);
    return 0;
}
