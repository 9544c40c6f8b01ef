/* entk-forward: the forward pass of any model entk knows, written as frames: a language model
 * (Gemma 3 directory or llama2.c checkpoint) over batches of token windows, or a modular-addition
 * checkpoint of entk-train over an entk-modadd data set. */
#include "core/cli.h"
#include "core/err.h"
#include "core/frame.h"
#include "core/hash.h"
#include "core/fileio.h"
#include "core/safetensors.h"
#include "lm/forward.h"
#include "lm/generate.h"
#include "lm/load.h"
#include "modadd/data.h"
#include "modadd/model.h"
#include "text/llama2tok.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage =
    "Usage: entk-forward -m MODEL [options] [INPUT.frames|-]\n"
    "Runs a model forward and writes what it computed as frames. The kind of MODEL is found from it:\n"
    "  a directory (config.json + model.safetensors, bf16 or f32): a Hugging Face Gemma 3 model\n"
    "  a .safetensors file with entk_model in its metadata: an entk-train checkpoint (the MLP or the\n"
    "    Transformer on modular addition); INPUT is an entk-modadd data stream of that p and encoding\n"
    "  any other file: a llama2.c checkpoint (.bin)\n"
    "Language models read windows from tensor frames named 'ids' or 'windows' (int, [T] = one window\n"
    "or [N,T] = N windows; e.g. from entk-tokenize) or from --ids. Windows of equal length are batched\n"
    "(--batch) and run in parallel on all cores; all arithmetic is f32. A modular-addition model runs\n"
    "on every row of the data set in --dtype: logits [N,p] (the first p logits) and hidden [N,H] (the\n"
    "MLP's hidden activations, or the Transformer's residual stream at the last position: the input\n"
    "of the readout).\n"
    "\n";

static const char *examples =
    "\n"
    "Examples:\n"
    "  entk-forward -m ../shared/models/stories260K/stories260K.bin --ids 1,403,407,261,378 \\\n"
    "      --generate 40 --vocab ../shared/models/stories260K/tok512.bin --outputs hidden | entk-show\n"
    "  entk-mkgemma -o /tmp/g --preset tiny && echo 'Once upon a time' > /tmp/s.txt &&\n"
    "      entk-tokenize -t ../shared/models/stories260K/tok512.bin /tmp/s.txt |\n"
    "      entk-forward -m /tmp/g --outputs hidden,resid --layers 0,-1 --positions all | entk-show\n"
    "  entk-modadd -p 29 -o data.frames && entk-train --model mlp --epochs 50 --ckpt-every 50 \\\n"
    "      --ckpt-dir ck -o metrics.frames data.frames &&\n"
    "      entk-forward -m ck/epoch-00050.safetensors --outputs logits,hidden data.frames | entk-show\n";

/* The kinds of run, for the options only one of them takes (cli_opt.only). */
enum { RUN_LM = 1, RUN_MODADD = 2 };

typedef struct {
    const lm_model *m;
    frame_writer *w;
    const l2tok *vocab;
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
                bytebuf text = {0};
                bytebuf_add(&text, "", 0);
                int prev = -1;
                for (int t = 0; t < T + j->generate; t++) {
                    int tok = t < T ? ids[(size_t)b * T + t] : gen[(size_t)b * j->generate + t - T];
                    if (t >= T && tok == m->bos) break; /* run.c: BOS delimits sequences */
                    if (!(t == 0 && tok == m->bos)) l2tok_piece(j->vocab, prev, tok, &text);
                    prev = tok;
                }
                meta mt = {0};
                meta_i64(&mt, "window", j->windows_done + b);
                meta_str(&mt, "text", text.p);
                frame_write_record(j->w, "text", &mt);
                free(text.p);
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

/* ------------------------------------------------------------------ language models */

typedef struct {
    const char *model, *input, *output;
    int have_input;         /* input named on the command line */
    const char *ids, *outputs, *positions, *layers, *vocab;
    int batch, generate, bf16_scale, describe;
    dtype dt;               /* modular-addition models only */
    const cli_spec *spec;   /* the options, for the header's canonical args */
} fwd_opts;

/* The windows of --ids ('1,2,3;4,5,6' or @FILE), batched through j. */
static void windows_from_list(job *j, pending *p, const char *list, int batch) {
    int nw = 0, cap = 0;
    char **wins = NULL;
    char *copy = list[0] == '@' ? read_file(list + 1, NULL) : xstrdup(list);
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
        add_window(j, p, ids, k, batch);
        free(ids);
        free(parts);
    }
    free(wins);
    free(copy);
}

/* The windows of the 'ids' / 'windows' tensor frames of every stream of r, batched through j. */
static void windows_from_frames(job *j, pending *p, frame_reader *r, int batch) {
    const lm_model *m = j->m;
    frame f;
    int64_t nwin, T;
    int32_t *ids;
    do {
        while (frame_read(r, &f)) {
            if (!lm_ids_frame(r, &f, &nwin, &T, &ids)) continue;
            if (nwin > 0 && T > m->max_pos)
                frame_fail(r, &f, "window of %lld tokens exceeds the model's %d positions", (long long)T, m->max_pos);
            for (int64_t i = 0; i < nwin * T; i++)
                if (ids[i] >= m->vocab)
                    frame_fail(r, &f, "token id %d outside the model's vocabulary [0, %d)", ids[i], m->vocab);
            for (int64_t b = 0; b < nwin; b++) add_window(j, p, ids + b * T, (int)T, batch);
            free(ids);
        }
    } while (frame_reader_next_stream(r));
}

/* --describe: the model's shape as one record, for scripts and make (no forward runs) */
static int describe_lm(const fwd_opts *o) {
    lm_model *m = lm_load(o->model);
    const char *names[] = {"model"};
    frame_header h;
    char a0[] = "--describe";
    char *args[] = {a0};
    frame_header_make(&h, "entk-forward", 1, args, 1, names, &m->key);
    frame_writer w;
    frame_writer_open(&w, o->output, &h);
    meta mt = {0};
    meta_str(&mt, "kind", m->arch == LM_GEMMA3 ? "gemma3" : "llama2");
    meta_i64(&mt, "layers", m->n_layers);
    meta_i64(&mt, "dim", m->dim);
    meta_i64(&mt, "ffn", m->ffn);
    meta_i64(&mt, "heads", m->n_heads);
    meta_i64(&mt, "kv_heads", m->n_kv_heads);
    meta_i64(&mt, "head_dim", m->head_dim);
    meta_i64(&mt, "vocab", m->vocab);
    meta_i64(&mt, "max_positions", m->max_pos);
    meta_i64(&mt, "tied", m->head == m->embed);
    meta_str(&mt, "key", m->key.hex);
    frame_write_record(&w, "model", &mt);
    frame_writer_close(&w);
    lm_free(m);
    return 0;
}

static int run_lm(const fwd_opts *o) {
    if (o->describe) return describe_lm(o);
    job j = {.positions = o->positions, .generate = o->generate};
    if (o->ids && o->have_input) entk_die(ENTK_EXIT_USAGE, "--ids and an input file exclude each other");
    int no;
    char **outs = cli_split(o->outputs, &no);
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
        free(parts);
    }
    l2tok *vocab = o->vocab ? l2tok_load(o->vocab) : NULL;
    frame_reader r;
    if (!o->ids) frame_reader_open_streams(&r, o->input);
    lm_model *m = lm_load(o->model);
    if (o->bf16_scale) m->embed_scale64 = m->embed_scale = bf16_to_f32(f32_to_bf16(m->embed_scale));
    entk_log("%s", m->desc);
    j.m = m;
    j.vocab = vocab;
    j.layers = xmalloc(((size_t)m->n_layers + 1) * sizeof(int));
    if (j.want_resid || j.want_mlp) j.nlayers = parse_index_list("--layers", o->layers, m->n_layers, j.layers, m->n_layers);

    /* canonical arguments: everything that shapes the output, not where it goes */
    cli_args cargs = {0};
    cli_args_key(&cargs, o->spec);
    const char *in_names[3] = {"model", "ids", "vocab"};
    entk_key in_keys[3] = {m->key};
    if (o->ids && o->ids[0] == '@') in_keys[1] = hash_file(o->ids + 1);
    else in_keys[1] = o->ids ? hash_bytes(o->ids, strlen(o->ids)) : r.h.key;
    int nin = 2;
    if (o->vocab) in_keys[nin++] = hash_file(o->vocab);
    frame_header h;
    frame_header_make(&h, "entk-forward", cargs.argc, cargs.argv, nin, in_names, in_keys);
    frame_writer w;
    frame_writer_open(&w, o->output, &h);
    j.w = &w;

    pending p = {0};
    if (o->ids) windows_from_list(&j, &p, o->ids, o->batch);
    else windows_from_frames(&j, &p, &r, o->batch);
    if (p.n > 0) run_batch(&j, p.ids, p.n, p.T);
    frame_writer_close(&w);
    if (j.tokens > 0)
        entk_log("forward: %ld windows, %ld tokens in %.3f s: %.1f tokens/s, %.2f GFLOP/s", j.windows_done, j.tokens, j.seconds,
                 j.tokens / j.seconds, j.flops / j.seconds * 1e-9);
    if (!o->ids) frame_reader_close(&r);
    l2tok_free(vocab);
    lm_acts_free(j.acts);
    lm_free(m);
    free(p.ids);
    free(j.layers);
    free(outs);
    cli_args_free(&cargs);
    return 0;
}

/* ------------------------------------------------------------------ modular-addition models */


/* The logits [N, p] (and hidden states) of an entk-train checkpoint on every row of an entk-modadd
 * data stream. */
static int run_modadd(const fwd_opts *o) {
    int want_logits = 0, want_hidden = 0, no;
    char **outs = cli_split(o->outputs, &no);
    for (int i = 0; i < no; i++) {
        if (strcmp(outs[i], "logits") == 0) want_logits = 1;
        else if (strcmp(outs[i], "hidden") == 0) want_hidden = 1;
        else entk_die(ENTK_EXIT_USAGE, "--outputs: '%s' is not an output of a modular-addition model (logits, hidden)", outs[i]);
    }
    model m;
    model_load(&m, o->model, o->dt);
    frame_reader r;
    frame_reader_open(&r, o->input);
    modadd d;
    modadd_read(&r, &d);
    frame f;
    if (frame_read(&r, &f)) frame_fail(&r, &f, "unexpected frame after the data set");
    model_check_data(&m, &d, r.src);
    cli_args cargs = {0};
    cli_args_key(&cargs, o->spec);
    const char *in_names[2] = {o->model, r.src};
    entk_key in_keys[2] = {m.key, r.h.key};
    frame_header h;
    frame_header_make(&h, "entk-forward", cargs.argc, cargs.argv, 2, in_names, in_keys);
    frame_writer w;
    frame_writer_open(&w, o->output, &h);
    meta mt = {0};
    meta_str(&mt, "model", m.kind == MODEL_MLP ? "mlp" : "transformer");
    meta_i64(&mt, "p", m.p);
    if (want_logits) {
        tensor t = tensor_2d(o->dt, d.N, m.p);
        model_forward(&m, &d.x, NULL, d.N, t.data);
        frame_write_tensor(&w, "logits", &t, &mt);
        tensor_free(&t);
    }
    if (want_hidden) {
        tensor t = tensor_2d(o->dt, d.N, model_hidden_dim(&m));
        model_hidden(&m, &d.x, NULL, d.N, t.data);
        frame_write_tensor(&w, "hidden", &t, &mt);
        tensor_free(&t);
    }
    frame_writer_close(&w);
    entk_log("%s: %s, p=%d, %lld inputs", o->model, m.kind == MODEL_MLP ? "mlp" : "transformer", m.p, (long long)d.N);
    frame_reader_close(&r);
    modadd_free(&d);
    model_free(&m);
    free(outs);
    cli_args_free(&cargs);
    return 0;
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    fwd_opts o = {.outputs = "logits", .positions = "last", .layers = "all", .batch = 64};
    int dtype_i = 1;
    cli_opt opts[] = {
        /* long name, letter, kind, destination, argument, key policy; then the kind's extras and the help */
        {"model", 'm', CLI_STR, &o.model, "PATH", CLI_INPUT, .help = "model directory, llama2.c checkpoint or entk-train checkpoint (required)"},
        {"outputs", 0, CLI_STR, &o.outputs, "LIST", CLI_KEY_ARG,
         .help = "any of logits,hidden,resid,mlp (default logits). Frames, per batch:\n"
                 "  logits [n,P,vocab], hidden [n,P,dim] (after the final norm),\n"
                 "  resid [n,P,dim] (residual stream after block L),\n"
                 "  mlp [n,P,ffn] (MLP hidden = input of down_proj of block L)\n"
                 "(n windows, P positions; meta window0, positions, layer); a\n"
                 "modular-addition model: logits and hidden"},
        {"dtype", 0, CLI_CHOICE, &dtype_i, "f32|f64", CLI_KEY_ARG, .only = RUN_MODADD,
         .help = "modular-addition models: precision (default f64)"},
        {.kind = CLI_HEADING, .help = "Language models only:"},
        {"ids", 0, CLI_STR, &o.ids, "LIST", CLI_INPUT, .only = RUN_LM,
         .help = "token ids of one window, '1,2,3'; ';' separates windows; @FILE reads\n"
                 "the list from FILE"},
        {"positions", 0, CLI_STR, &o.positions, "LIST", CLI_KEY_ARG, .only = RUN_LM,
         .help = "positions to read outputs at: 'last' (default), 'all', or indices\n"
                 "('0,5,-1'; negative counts from the end)"},
        {"layers", 0, CLI_STR, &o.layers, "LIST", CLI_KEY_ARG, .only = RUN_LM,
         .help = "blocks for resid/mlp: 'all' (default) or indices ('0,16,-1')"},
        {"batch", 0, CLI_INT, &o.batch, "N", CLI_NOKEY, .only = RUN_LM, .min = 1, .max = 1 << 20,
         .help = "windows per forward (default 64)"},
        {"generate", 0, CLI_INT, &o.generate, "N", CLI_KEY_ARG, .only = RUN_LM, .min = 0, .max = 1 << 20,
         .help = "also continue every window greedily by N tokens: frame generated [n,N] i32"},
        {"vocab", 0, CLI_STR, &o.vocab, "FILE", CLI_INPUT, .only = RUN_LM,
         .help = "llama2.c tokenizer (tok512.bin): with --generate, also a record 'text'\n"
                 "per window holding the decoded window and continuation"},
        {"describe", 0, CLI_FLAG, &o.describe, NULL, CLI_KEY_SET, .only = RUN_LM,
         .help = "instead: the model's shape as one record 'model' {kind, layers, dim, ffn, heads,\n"
                 "kv_heads, head_dim, vocab, max_positions, tied, key}; no input is read"},
        {"bf16-embed-scale", 0, CLI_FLAG, &o.bf16_scale, NULL, CLI_KEY_ARG, .only = RUN_LM,
         .help = "round the Gemma embedding scale sqrt(dim) to bf16, as transformers\n"
                 "does when it runs a model in bf16 (default: f32, as for torch_dtype f32)"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    if (!o.model) entk_die(ENTK_EXIT_USAGE, "-m/--model is required (see --help)");
    if (first < argc - 1) entk_die(ENTK_EXIT_USAGE, "at most one input file (see --help)");
    o.have_input = first < argc;
    o.input = o.have_input ? argv[first] : "-";
    o.output = spec.co.output ? spec.co.output : "-";
    o.dt = dtype_i == 0 ? DT_F32 : DT_F64;
    o.spec = &spec;
    spec.kind = model_is_checkpoint(o.model) ? RUN_MODADD : RUN_LM;
    const cli_opt *mis = cli_misplaced(&spec);
    char nm[80];
    if (mis && spec.kind == RUN_MODADD)
        entk_die(ENTK_EXIT_USAGE, "%s is for language models; %s is a modular-addition checkpoint", cli_opt_name(mis, nm, sizeof nm), o.model);
    if (mis) entk_die(ENTK_EXIT_USAGE, "%s is for the modular-addition models (language models run in f32)", cli_opt_name(mis, nm, sizeof nm));
    return spec.kind == RUN_MODADD ? run_modadd(&o) : run_lm(&o);
}
