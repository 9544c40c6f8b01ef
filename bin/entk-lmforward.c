/* entk-lmforward: forward passes of a decoder-only language model over batches of token windows. */
#include "core/cli.h"
#include "core/err.h"
#include "core/frame.h"
#include "core/hash.h"
#include "core/json.h"
#include "lm/llama2.h"
#include "lm/model.h"
#include "core/safetensors.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *help =
    "Usage: entk-lmforward -m MODEL [options] [IDS.frames|-]\n"
    "Runs a decoder-only language model over token windows and writes what it computed as frames.\n"
    "MODEL is a Hugging Face Gemma 3 directory (config.json + model.safetensors, bf16 or f32) or a\n"
    "llama2.c checkpoint (.bin). Windows come from tensor frames named 'ids' or 'windows' (int, [T]\n"
    "= one window or [N,T] = N windows; e.g. from entk-tokenize) or from --ids. Windows of equal\n"
    "length are batched (--batch) and run in parallel on all cores; all arithmetic is f32.\n"
    "\n"
    "Options:\n"
    "  -m, --model PATH      model directory or llama2.c checkpoint (required)\n"
    "      --ids LIST        token ids of one window, '1,2,3'; ';' separates windows; @FILE reads\n"
    "                        the list from FILE\n"
    "      --outputs LIST    any of logits,hidden,resid,mlp (default logits). Frames, per batch:\n"
    "                          logits [n,P,vocab], hidden [n,P,dim] (after the final norm),\n"
    "                          resid [n,P,dim] (residual stream after block L),\n"
    "                          mlp [n,P,ffn] (MLP hidden = input of down_proj of block L)\n"
    "                        (n windows, P positions; meta window0, positions, layer)\n"
    "      --positions LIST  positions to read outputs at: 'last' (default), 'all', or indices\n"
    "                        ('0,5,-1'; negative counts from the end)\n"
    "      --layers LIST     blocks for resid/mlp: 'all' (default) or indices ('0,16,-1')\n"
    "      --batch N         windows per forward (default 64)\n"
    "      --generate N      also continue every window greedily by N tokens: frame generated [n,N] i32\n"
    "      --vocab FILE      llama2.c tokenizer (tok512.bin): with --generate, also a record 'text'\n"
    "                        per window holding the decoded window and continuation\n"
    "      --bf16-embed-scale  round the Gemma embedding scale sqrt(dim) to bf16, as transformers\n"
    "                        does when it runs a model in bf16 (default: f32, as for torch_dtype f32)\n"
    "\n"
    "Examples:\n"
    "  entk-lmforward -m ../shared/models/stories260K/stories260K.bin --ids 1,403,407,261,378 \\\n"
    "      --generate 40 --vocab ../shared/models/stories260K/tok512.bin --outputs hidden | entk-show\n"
    "  entk-mkgemma -o /tmp/g --preset tiny && echo 'Once upon a time' > /tmp/s.txt &&\n"
    "      entk-tokenize -t ../shared/models/stories260K/tok512.bin /tmp/s.txt |\n"
    "      entk-lmforward -m /tmp/g --outputs hidden,resid --layers 0,-1 --positions all | entk-show\n";

enum { OPT_IDS = OPT_FIRST_CUSTOM, OPT_OUTPUTS, OPT_POSITIONS, OPT_LAYERS, OPT_BATCH, OPT_GENERATE, OPT_VOCAB, OPT_BF16SCALE };

typedef struct {
    const lm_model *m;
    frame_writer *w;
    const llama2_vocab *vocab;
    int want_logits, want_hidden, want_resid, want_mlp;
    const char *positions;
    int nlayers;
    int *layers;
    int generate;
    long windows_done;
    double seconds, flops;
    long tokens;
    lm_acts *acts;          /* reused while batches keep their shape */
} job;

static int parse_index_list(const char *opt, const char *s, int n, int *out, int max) {
    if (strcmp(s, "all") == 0) {
        for (int i = 0; i < n && i < max; i++) out[i] = i;
        return n < max ? n : max;
    }
    if (strcmp(s, "last") == 0) {
        out[0] = n - 1;
        return 1;
    }
    int k;
    char **parts = cli_split(s, &k);
    if (k == 0 || k > max) entk_die(ENTK_EXIT_USAGE, "%s: give 1 to %d indices, 'all' or 'last'", opt, max);
    for (int i = 0; i < k; i++) {
        long v = cli_long(opt, parts[i], -(long)n, (long)n - 1);
        out[i] = (int)(v < 0 ? v + n : v);
    }
    free(parts);
    return k;
}

static void run_batch(job *j, const int32_t *ids, int nb, int T) {
    const lm_model *m = j->m;
    int *pos = xmalloc((size_t)T * sizeof(int));
    int npos = parse_index_list("--positions", j->positions, T, pos, T);
    int64_t posv[4096];
    for (int p = 0; p < npos && p < 4096; p++) posv[p] = pos[p];
    lm_outputs o = {.npos = npos, .pos = pos, .nlayers = j->nlayers, .layers = j->layers};
    tensor logits = {0}, hidden = {0}, resid = {0}, mlp = {0};
    if (j->want_logits) { logits = tensor_3d(DT_F32, nb, npos, m->vocab); o.logits = logits.data; }
    if (j->want_hidden) { hidden = tensor_3d(DT_F32, nb, npos, m->dim); o.hidden = hidden.data; }
    if (j->want_resid) {
        int64_t sh[4] = {j->nlayers, nb, npos, m->dim};
        resid = tensor_new(DT_F32, 4, sh);
        o.resid = resid.data;
    }
    if (j->want_mlp) {
        int64_t sh[4] = {j->nlayers, nb, npos, m->ffn};
        mlp = tensor_new(DT_F32, 4, sh);
        o.mlp = mlp.data;
    }
    if (j->acts && (j->acts->B != nb || j->acts->T != T)) {
        lm_acts_free(j->acts);
        j->acts = NULL;
    }
    if (!j->acts) j->acts = lm_acts_new(m, nb, T, m->n_layers);
    double t0 = entk_now();
    lm_forward(m, ids, j->acts, &o);
    j->seconds += entk_now() - t0;
    j->flops += lm_flops(m, nb, T, j->want_logits ? npos : 0);
    j->tokens += (long)nb * T;
    meta md = {0};
    meta_i64(&md, "window0", j->windows_done);
    meta_i64s(&md, "positions", posv, npos);
    if (j->want_logits) frame_write_tensor(j->w, "logits", &logits, &md);
    if (j->want_hidden) frame_write_tensor(j->w, "hidden", &hidden, &md);
    for (int i = 0; i < j->nlayers && (j->want_resid || j->want_mlp); i++) {
        meta ml = md;
        meta_i64(&ml, "layer", j->layers[i]);
        if (j->want_resid) {
            tensor t = tensor_3d(DT_F32, nb, npos, m->dim);
            memcpy(t.data, (float *)resid.data + (size_t)i * nb * npos * m->dim, tensor_nbytes(&t));
            frame_write_tensor(j->w, "resid", &t, &ml);
            tensor_free(&t);
        }
        if (j->want_mlp) {
            tensor t = tensor_3d(DT_F32, nb, npos, m->ffn);
            memcpy(t.data, (float *)mlp.data + (size_t)i * nb * npos * m->ffn, tensor_nbytes(&t));
            frame_write_tensor(j->w, "mlp", &t, &ml);
            tensor_free(&t);
        }
    }
    if (j->generate > 0) {
        tensor g = tensor_2d(DT_I32, nb, j->generate);
        lm_generate(m, ids, nb, T, j->generate, g.data);
        meta mg = {0};
        meta_i64(&mg, "window0", j->windows_done);
        frame_write_tensor(j->w, "generated", &g, &mg);
        if (j->vocab) {
            const int32_t *gen = g.data;
            for (int b = 0; b < nb; b++) {
                size_t cap = 64 + 64 * ((size_t)T + j->generate), len = 0;
                char *text = xmalloc(cap), piece[512];
                text[0] = 0;
                int prev = -1;
                for (int t = 0; t < T + j->generate; t++) {
                    int tok = t < T ? ids[(size_t)b * T + t] : gen[(size_t)b * j->generate + t - T];
                    if (t >= T && tok == m->bos) break; /* run.c: BOS delimits sequences */
                    if (!(t == 0 && tok == m->bos)) {
                        size_t k = llama2_decode(j->vocab, prev, tok, piece, sizeof piece);
                        if (len + k + 1 > cap) { cap = 2 * (len + k + 1); text = xrealloc(text, cap); }
                        memcpy(text + len, piece, k);
                        len += k;
                        text[len] = 0;
                    }
                    prev = tok;
                }
                meta mt = {0};
                meta_i64(&mt, "window", j->windows_done + b);
                meta_str(&mt, "text", text);
                frame_write_record(j->w, "text", &mt);
                free(text);
            }
        }
        tensor_free(&g);
    }
    j->windows_done += nb;
    tensor_free(&logits);
    tensor_free(&hidden);
    tensor_free(&resid);
    tensor_free(&mlp);
    free(pos);
}

/* Windows waiting for a batch: all of length T. */
typedef struct {
    int32_t *ids;
    int n, T, cap;
} pending;

static void add_window(job *j, pending *p, const int32_t *ids, int T, int batch) {
    if (p->n > 0 && T != p->T) {
        run_batch(j, p->ids, p->n, p->T);
        p->n = 0;
    }
    if (p->n == 0) {
        p->T = T;
        if (p->cap < batch * T) {
            p->cap = batch * T;
            p->ids = xrealloc(p->ids, (size_t)p->cap * sizeof(int32_t));
        }
    }
    memcpy(p->ids + (size_t)p->n * T, ids, (size_t)T * sizeof(int32_t));
    if (++p->n == batch) {
        run_batch(j, p->ids, p->n, p->T);
        p->n = 0;
    }
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    cli_common co = {0};
    const char *model = NULL, *ids_opt = NULL, *outputs = "logits", *layers = "all", *vocab_path = NULL;
    job j = {.positions = "last"};
    int batch = 64, bf16_scale = 0;
    static struct option lo[] = {CLI_COMMON_LONGOPTS,
                                 {"model", required_argument, 0, 'm'},
                                 {"ids", required_argument, 0, OPT_IDS},
                                 {"outputs", required_argument, 0, OPT_OUTPUTS},
                                 {"positions", required_argument, 0, OPT_POSITIONS},
                                 {"layers", required_argument, 0, OPT_LAYERS},
                                 {"batch", required_argument, 0, OPT_BATCH},
                                 {"generate", required_argument, 0, OPT_GENERATE},
                                 {"vocab", required_argument, 0, OPT_VOCAB},
                                 {"bf16-embed-scale", no_argument, 0, OPT_BF16SCALE},
                                 {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:qhm:", lo, NULL)) != -1) {
        if (cli_common_opt(c, &co, help)) continue;
        switch (c) {
        case 'm': model = optarg; break;
        case OPT_IDS: ids_opt = optarg; break;
        case OPT_OUTPUTS: outputs = optarg; break;
        case OPT_POSITIONS: j.positions = optarg; break;
        case OPT_LAYERS: layers = optarg; break;
        case OPT_BATCH: batch = (int)cli_long("--batch", optarg, 1, 1 << 20); break;
        case OPT_GENERATE: j.generate = (int)cli_long("--generate", optarg, 0, 1 << 20); break;
        case OPT_VOCAB: vocab_path = optarg; break;
        case OPT_BF16SCALE: bf16_scale = 1; break;
        default: cli_bad_option(argv);
        }
    }
    if (!model) entk_die(ENTK_EXIT_USAGE, "-m/--model is required (see --help)");
    if (optind < argc - 1) entk_die(ENTK_EXIT_USAGE, "at most one input file (see --help)");
    if (ids_opt && optind < argc) entk_die(ENTK_EXIT_USAGE, "--ids and an input file exclude each other");
    int no;
    char **outs = cli_split(outputs, &no);
    for (int i = 0; i < no; i++) {
        if (strcmp(outs[i], "logits") == 0) j.want_logits = 1;
        else if (strcmp(outs[i], "hidden") == 0) j.want_hidden = 1;
        else if (strcmp(outs[i], "resid") == 0) j.want_resid = 1;
        else if (strcmp(outs[i], "mlp") == 0) j.want_mlp = 1;
        else entk_die(ENTK_EXIT_USAGE, "--outputs: unknown output '%s' (logits, hidden, resid, mlp)", outs[i]);
    }
    if (strcmp(j.positions, "last") && strcmp(j.positions, "all")) {
        int k;
        char **parts = cli_split(j.positions, &k);
        for (int i = 0; i < k; i++) cli_long("--positions", parts[i], -1000000000L, 1000000000L);
        if (k == 0) entk_die(ENTK_EXIT_USAGE, "--positions: give 'last', 'all' or indices");
    }
    llama2_vocab *vocab = NULL;
    if (vocab_path) vocab = llama2_vocab_load(vocab_path);
    frame_reader r;
    int have_reader = 0;
    if (!ids_opt) {
        frame_reader_open_streams(&r, optind < argc ? argv[optind] : "-");
        have_reader = 1;
    }
    lm_model *m = lm_load(model);
    if (bf16_scale) m->embed_scale = bf16_to_f32(f32_to_bf16(m->embed_scale));
    entk_log("%s", m->desc);
    j.m = m;
    j.vocab = vocab;
    j.layers = xmalloc(((size_t)m->n_layers + 1) * sizeof(int));
    if (j.want_resid || j.want_mlp) j.nlayers = parse_index_list("--layers", layers, m->n_layers, j.layers, m->n_layers);

    /* canonical arguments: everything that shapes the output, not where it goes */
    char **cargs = xcalloc(16, sizeof(char *));
    int nc = 0;
    char bbuf[32], gbuf[32];
    cargs[nc++] = "--outputs"; cargs[nc++] = (char *)outputs;
    cargs[nc++] = "--positions"; cargs[nc++] = (char *)j.positions;
    cargs[nc++] = "--layers"; cargs[nc++] = (char *)layers;
    snprintf(gbuf, sizeof gbuf, "%d", j.generate);
    cargs[nc++] = "--generate"; cargs[nc++] = gbuf;
    snprintf(bbuf, sizeof bbuf, "%d", bf16_scale);
    cargs[nc++] = "--bf16-embed-scale"; cargs[nc++] = bbuf;
    const char *in_names[3] = {"model", "ids", "vocab"};
    entk_key in_keys[3] = {m->key};
    if (ids_opt && ids_opt[0] == '@') in_keys[1] = hash_file(ids_opt + 1);
    else in_keys[1] = ids_opt ? hash_bytes(ids_opt, strlen(ids_opt)) : r.h.key;
    int nin = 2;
    if (vocab_path) in_keys[nin++] = hash_file(vocab_path);
    frame_header h;
    frame_header_make(&h, "entk-lmforward", nc, cargs, nin, in_names, in_keys);
    frame_writer w;
    frame_writer_open(&w, co.output ? co.output : "-", &h);
    j.w = &w;

    pending p = {0};
    if (ids_opt) {
        int nw;
        char **wins = NULL;
        char *copy = ids_opt[0] == '@' ? read_file(ids_opt + 1, NULL) : xstrdup(ids_opt);
        int cap = 0;
        nw = 0;
        for (char *s = strtok(copy, ";\n"); s; s = strtok(NULL, ";\n")) {
            if (nw == cap) { cap = cap ? 2 * cap : 8; wins = xrealloc(wins, (size_t)cap * sizeof(char *)); }
            wins[nw++] = s;
        }
        if (nw == 0) entk_die(ENTK_EXIT_USAGE, "--ids: no token ids");
        for (int i = 0; i < nw; i++) {
            int k;
            char **parts = cli_split(wins[i], &k);
            if (k == 0) entk_die(ENTK_EXIT_USAGE, "--ids: empty window");
            int32_t *ids = xmalloc((size_t)k * sizeof(int32_t));
            for (int t = 0; t < k; t++) ids[t] = (int32_t)cli_long("--ids", parts[t], 0, 2147483647L);
            add_window(&j, &p, ids, k, batch);
            free(ids);
            free(parts);
        }
        free(wins);
        free(copy);
    } else {
        frame f;
        do {
            while (frame_read(&r, &f)) {
                if (strcmp(f.kind, "tensor") != 0 || (strcmp(f.name, "ids") != 0 && strcmp(f.name, "windows") != 0)) continue;
                if (f.t.dt != DT_I32 && f.t.dt != DT_I64) frame_fail(&r, &f, "token ids must be i32 or i64, not %s", dtype_name(f.t.dt));
                if (f.t.ndim != 1 && f.t.ndim != 2) frame_fail(&r, &f, "token ids must be [T] or [N,T], not rank %d", f.t.ndim);
                int64_t nwin = f.t.ndim == 1 ? 1 : f.t.shape[0], T = f.t.shape[f.t.ndim - 1];
                if (T <= 0) {
                    if (nwin > 0) frame_fail(&r, &f, "empty window");
                    continue;
                }
                if (T > m->max_pos) frame_fail(&r, &f, "window of %lld tokens exceeds the model's %d positions", (long long)T, m->max_pos);
                int32_t *ids = xmalloc((size_t)T * sizeof(int32_t));
                for (int64_t b = 0; b < nwin; b++) {
                    for (int64_t t = 0; t < T; t++) {
                        int64_t v = (int64_t)tensor_get(&f.t, b * T + t);
                        if (v < 0 || v >= m->vocab)
                            frame_fail(&r, &f, "token id %lld outside the model's vocabulary [0, %d)", (long long)v, m->vocab);
                        ids[t] = (int32_t)v;
                    }
                    add_window(&j, &p, ids, (int)T, batch);
                }
                free(ids);
            }
        } while (frame_reader_next_stream(&r));
    }
    if (p.n > 0) run_batch(&j, p.ids, p.n, p.T);
    frame_writer_close(&w);
    if (j.tokens > 0)
        entk_log("forward: %ld windows, %ld tokens in %.3f s: %.1f tokens/s, %.2f GFLOP/s", j.windows_done, j.tokens, j.seconds,
                 j.tokens / j.seconds, j.flops / j.seconds * 1e-9);
    if (have_reader) frame_reader_close(&r);
    llama2_vocab_free(vocab);
    lm_acts_free(j.acts);
    lm_free(m);
    free(p.ids);
    free(j.layers);
    free(cargs);
    free(outs);
    return 0;
}
