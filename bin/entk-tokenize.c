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

static const char *help =
    "Usage: entk-tokenize -t TOKENIZER [options] [FILE...]\n"
    "Tokenizes text (FILEs or stdin; '-' = stdin) into frames: per text a tensor 'ids' (i32 [n]) with\n"
    "meta {text, file, start, bytes} and a tensor 'offsets' (i64 [n,2]): the byte range [start, end)\n"
    "of each token in its text (which is bytes [start, start + bytes) of input 'file'). Reads a\n"
    "Hugging Face tokenizer.json with a BPE model (Gemma 3) or a llama2.c tokenizer.bin. The compiled\n"
    "tokenizer.json is kept in the cache, so only the first load parses the JSON.\n"
    "  -t, --tokenizer PATH  tokenizer.json or llama2.c tokenizer .bin (required)\n"
    "      --format F        hf or llama2 (default: hf if the file is JSON)\n"
    "Texts (default: each FILE is one text):\n"
    "      --lines           one text per line (the newline is not part of the text)\n"
    "      --delim LINE      texts are separated by lines equal to LINE, e.g. '<|endoftext|>'\n"
    "      --drop-tail       with --delim: drop the text after the last delimiter line (cut off)\n"
    "      --invalid-utf8 M  error (default: exit 3), replace (each ill-formed sequence is U+FFFD, as a\n"
    "                        JS program reading the file sees it), bytes (llama2.c: raw bytes, as run.c)\n"
    "Tokens:\n"
    "      --no-bos          no BOS (tokenizer.json: none of the post-processor's special tokens)\n"
    "      --eos             llama2.c: append EOS (id 2)\n"
    "      --text            print plain text instead of frames: one line of ids per text\n"
    "      --offsets         with --text: print each token as id:start:end\n"
    "Decoding:\n"
    "      --decode          read 'ids' frames (or lines of ids, as --text prints them) and print the\n"
    "                        texts, joined as the split options say (none, newline, delimiter line)\n"
    "      --keep-special    with --decode: keep special tokens (<bos>, <eos>, ...)\n"
    "Examples:\n"
    "  echo 'Once upon a time' | entk-tokenize -t ../shared/models/stories260K/tok512.bin --lines --text\n"
    "  entk-tokenize -t \"$(tests/peer/fetch-gemma-tokenizer.sh)\" --delim '<|endoftext|>' --drop-tail \\\n"
    "      ../shared/data/tinystories/tinystories_sample.txt -o stories.tok\n"
    "  entk-tokenize -t \"$(tests/peer/fetch-gemma-tokenizer.sh)\" --decode --delim '<|endoftext|>' stories.tok\n";

enum { OPT_TOKENIZER = OPT_FIRST_CUSTOM, OPT_FORMAT, OPT_LINES, OPT_DELIM, OPT_DROP_TAIL, OPT_NO_BOS, OPT_EOS,
       OPT_INVALID, OPT_TEXT, OPT_OFFSETS, OPT_DECODE, OPT_KEEP_SPECIAL };

enum { SPLIT_WHOLE, SPLIT_LINES, SPLIT_DELIM };
enum { BAD_ERROR, BAD_REPLACE, BAD_BYTES };

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

int main(int argc, char **argv) {
    cli_start(argc, argv);
    cli_common co = {0};
    const char *tok_path = NULL, *format = NULL, *delim = NULL;
    int split = SPLIT_WHOLE, drop_tail = 0, bos = 1, eos = 0, invalid = BAD_ERROR, text_out = 0, offsets = 0, decode = 0,
        keep_special = 0;
    static struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"tokenizer", required_argument, 0, 't'},
        {"format", required_argument, 0, OPT_FORMAT},
        {"lines", no_argument, 0, OPT_LINES},
        {"delim", required_argument, 0, OPT_DELIM},
        {"drop-tail", no_argument, 0, OPT_DROP_TAIL},
        {"no-bos", no_argument, 0, OPT_NO_BOS},
        {"eos", no_argument, 0, OPT_EOS},
        {"invalid-utf8", required_argument, 0, OPT_INVALID},
        {"text", no_argument, 0, OPT_TEXT},
        {"offsets", no_argument, 0, OPT_OFFSETS},
        {"decode", no_argument, 0, OPT_DECODE},
        {"keep-special", no_argument, 0, OPT_KEEP_SPECIAL},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "o:qht:", longopts, NULL)) != -1) {
        if (cli_common_opt(c, &co, help)) continue;
        switch (c) {
        case 't': tok_path = optarg; break;
        case OPT_FORMAT:
            if (strcmp(optarg, "hf") != 0 && strcmp(optarg, "llama2") != 0)
                entk_die(ENTK_EXIT_USAGE, "--format must be hf or llama2, not '%s'", optarg);
            format = optarg;
            break;
        case OPT_LINES: split = SPLIT_LINES; break;
        case OPT_DELIM:
            if (!*optarg || strchr(optarg, '\n')) entk_die(ENTK_EXIT_USAGE, "--delim needs a non-empty line without newlines");
            split = SPLIT_DELIM;
            delim = optarg;
            break;
        case OPT_DROP_TAIL: drop_tail = 1; break;
        case OPT_NO_BOS: bos = 0; break;
        case OPT_EOS: eos = 1; break;
        case OPT_INVALID:
            if (!strcmp(optarg, "error")) invalid = BAD_ERROR;
            else if (!strcmp(optarg, "replace")) invalid = BAD_REPLACE;
            else if (!strcmp(optarg, "bytes")) invalid = BAD_BYTES;
            else entk_die(ENTK_EXIT_USAGE, "--invalid-utf8 must be error, replace or bytes, not '%s'", optarg);
            break;
        case OPT_TEXT: text_out = 1; break;
        case OPT_OFFSETS: offsets = 1; break;
        case OPT_DECODE: decode = 1; break;
        case OPT_KEEP_SPECIAL: keep_special = 1; break;
        default: cli_bad_option(argv);
        }
    }
    if (!tok_path) entk_die(ENTK_EXIT_USAGE, "-t/--tokenizer is required (see --help)");
    if (drop_tail && split != SPLIT_DELIM) entk_die(ENTK_EXIT_USAGE, "--drop-tail needs --delim");
    if (offsets && !text_out) entk_die(ENTK_EXIT_USAGE, "--offsets goes with --text (frames always carry offsets)");
    if (decode && (text_out || offsets)) entk_die(ENTK_EXIT_USAGE, "--decode prints text; --text/--offsets are for encoding");
    if (keep_special && !decode) entk_die(ENTK_EXIT_USAGE, "--keep-special goes with --decode");
    if (split == SPLIT_LINES && delim) entk_die(ENTK_EXIT_USAGE, "--lines and --delim exclude each other");

    if (!format) format = tokenizer_kind(tok_path);
    int hf = strcmp(format, "hf") == 0;
    if (eos && hf) entk_die(ENTK_EXIT_USAGE, "--eos is for llama2.c tokenizers (a tokenizer.json's post-processor says what to add)");
    if (invalid == BAD_BYTES && hf) entk_die(ENTK_EXIT_USAGE, "--invalid-utf8 bytes is for llama2.c tokenizers (a tokenizer.json takes text)");

    int nfiles = argc - optind;
    char *stdin_only[] = {"-"};
    char **files = nfiles ? argv + optind : stdin_only;
    if (!nfiles) nfiles = 1;

    /* read and check every input before loading the tokenizer: the header's key names their
     * content, and bad input should not wait for a 33 MB tokenizer.json to load */
    char **data = NULL;
    size_t *dlen = NULL;
    entk_key text_key = {{0}};
    if (!decode) {
        data = xmalloc((size_t)nfiles * sizeof *data);
        dlen = xmalloc((size_t)nfiles * sizeof *dlen);
        keybuilder kb;
        keybuilder_init(&kb, "entk-tokenize-text");
        for (int i = 0; i < nfiles; i++) {
            data[i] = read_file(files[i], &dlen[i]);
            entk_key k = hash_bytes(data[i], dlen[i]);
            keybuilder_str(&kb, k.hex);
            if (invalid == BAD_ERROR) {
                size_t at = utf8_invalid_at((const unsigned char *)data[i], dlen[i]);
                if (at < dlen[i])
                    entk_die(ENTK_EXIT_INPUT, "%s: invalid UTF-8 at byte %zu (--invalid-utf8 replace reads it as U+FFFD)",
                             strcmp(files[i], "-") ? files[i] : "<stdin>", at);
            }
        }
        text_key = keybuilder_final(&kb);
    }

    cache_init(co.cache_dir);
    tok_run tk = {.bos = bos, .eos = eos};
    bpe_load_info li;
    tokenizer_load(&tk.t, tok_path, format, &li);
    entk_key tok_key = tk.t.key;
    if (hf)
        entk_log("loaded %s: %d tokens in %.3f s (%s, %.1f MB compiled)", tok_path, tk.t.ntokens, li.seconds,
                 li.from_cache ? "from the cache" : cache_enabled() ? "parsed and compiled; now cached" : "parsed and compiled; cache off",
                 li.bytes / 1e6);
    else
        entk_log("loaded %s: %d tokens in %.3f s (llama2.c format)", tok_path, tk.t.ntokens, li.seconds);

    if (decode) {
        const char *sep = split == SPLIT_WHOLE ? "" : split == SPLIT_LINES ? "\n" : NULL;
        char *dsep = NULL;
        if (!sep) {
            size_t l = strlen(delim) + 3;
            dsep = xmalloc(l);
            snprintf(dsep, l, "\n%s\n", delim);
            sep = dsep;
        }
        outfile o;
        outfile_open(&o, co.output);
        for (int i = 0; i < nfiles; i++) decode_input(o.fp, &tk, files[i], keep_special, sep);
        outfile_commit(&o);
        free(dsep);
        tokenizer_free(&tk.t);
        return 0;
    }

    char *cargv[16];
    int cargc = 0;
    cargv[cargc++] = "--format";
    cargv[cargc++] = (char *)format;
    cargv[cargc++] = split == SPLIT_WHOLE ? "--whole" : split == SPLIT_LINES ? "--lines" : "--delim";
    if (split == SPLIT_DELIM) cargv[cargc++] = (char *)delim;
    if (drop_tail) cargv[cargc++] = "--drop-tail";
    cargv[cargc++] = bos ? "--bos" : "--no-bos";
    if (eos) cargv[cargc++] = "--eos";
    cargv[cargc++] = "--invalid-utf8";
    cargv[cargc++] = invalid == BAD_ERROR ? "error" : invalid == BAD_REPLACE ? "replace" : "bytes";
    const char *in_names[2] = {tok_path, nfiles == 1 ? (strcmp(files[0], "-") ? files[0] : "<stdin>") : "text files"};
    entk_key in_keys[2] = {tok_key, text_key};

    frame_writer w;
    outfile to;
    if (text_out) {
        outfile_open(&to, co.output);
    } else {
        frame_header h;
        frame_header_make(&h, "entk-tokenize", cargc, cargv, 2, in_names, in_keys);
        frame_writer_open(&w, co.output, &h);
    }

    tok_seq ts = {0};
    long ntext = 0;
    size_t total_bytes = 0, total_tokens = 0;
    double t_enc = 0;
    unsigned char *clean = NULL;
    uint32_t *cs = NULL, *ce = NULL;
    size_t cleancap = 0;
    for (int fi = 0; fi < nfiles; fi++) {
        size_t *rg;
        size_t nt = split_texts(data[fi], dlen[fi], split, delim, drop_tail, &rg);
        for (size_t k = 0; k < nt; k++) {
            const char *text = data[fi] + rg[2 * k];
            size_t n = rg[2 * k + 1] - rg[2 * k];
            ts.n = 0;
            double t0 = entk_now();
            if (invalid == BAD_REPLACE && utf8_invalid_at((const unsigned char *)text, n) < n) {
                if (3 * n + 1 > cleancap) {
                    cleancap = 3 * n + 1;
                    clean = xrealloc(clean, cleancap);
                    cs = xrealloc(cs, cleancap * sizeof *cs);
                    ce = xrealloc(ce, cleancap * sizeof *ce);
                }
                size_t m = utf8_replace((const unsigned char *)text, n, clean, cs, ce);
                tk_encode(&tk, (const char *)clean, m, &ts);
                /* offsets back into the raw text */
                for (size_t q = 0; q < ts.n; q++) {
                    int64_t s = ts.offs[2 * q], e = ts.offs[2 * q + 1];
                    if (s < e) { ts.offs[2 * q] = cs[s]; ts.offs[2 * q + 1] = ce[e - 1]; }
                    else { int64_t p = s < (int64_t)m ? cs[s] : (int64_t)n; ts.offs[2 * q] = ts.offs[2 * q + 1] = p; }
                }
            } else {
                tk_encode(&tk, text, n, &ts);
            }
            t_enc += entk_now() - t0;
            total_bytes += n;
            total_tokens += ts.n;
            if (text_out) {
                write_text_line(to.fp, &ts, offsets);
            } else {
                tensor ids = {.dt = DT_I32, .ndim = 1, .shape = {(int64_t)ts.n}, .data = ts.ids};
                tensor offs = {.dt = DT_I64, .ndim = 2, .shape = {(int64_t)ts.n, 2}, .data = ts.offs};
                meta m = {0};
                meta_i64(&m, "text", ntext);
                meta_i64(&m, "file", fi);
                meta_i64(&m, "start", (int64_t)rg[2 * k]);
                meta_i64(&m, "bytes", (int64_t)n);
                frame_write_tensor(&w, "ids", &ids, &m);
                meta m2 = {0};
                meta_i64(&m2, "text", ntext);
                frame_write_tensor(&w, "offsets", &offs, &m2);
            }
            ntext++;
            if (nt > 1000) entk_progress("texts", (long)k + 1, (long)nt);
        }
        free(rg);
    }
    entk_progress_end();
    if (text_out) outfile_commit(&to);
    else frame_writer_close(&w);
    entk_log("%ld texts, %zu bytes -> %zu tokens; encoding took %.3f s (%.1f MB/s)", ntext, total_bytes, total_tokens, t_enc,
             t_enc > 0 ? total_bytes / t_enc / 1e6 : 0.0);
    if (hf) cache_report();
    for (int i = 0; i < nfiles; i++) free(data[i]);
    free(data);
    free(dlen);
    free(clean);
    free(cs);
    free(ce);
    tok_seq_free(&ts);
    tokenizer_free(&tk.t);
    return 0;
}
