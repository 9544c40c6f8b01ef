/* entk-jacobian: Jacobian blocks of a modular-addition model's logits, streamed for entk-gram; for a
 * language model, the linearisation Setting 3's eNTK runs on (lm/linearize.h), or the Jacobian's
 * products. */
#include "core/cache.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/frame.h"
#include "modadd/jacobian.h"
#include "modadd/data.h"
#include "modadd/model.h"
#include "lm/linearize.h"
#include "lm/load.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "Usage: entk-jacobian -m MODEL [-m MODEL...] [--params P1,P2|all] [--form factored|explicit] [--block-rows R]\n"
    "                     [--dtype f32|f64] [DATA|-]\n"
    "       entk-jacobian -m LM --layer LIST [--params W] [--form matfree|explicit | --jvp FILE | --vjp FILE]\n"
    "                     [WINDOWS|-]\n"
    "Streams the Jacobian of all logits on every input of DATA (an entk-modadd stream) w.r.t. the\n"
    "chosen parameter tensors of MODEL (an entk-train checkpoint), as blocks over rows of each\n"
    "parameter: factored blocks (X, G: the Gram never forms J) or explicit blocks (J [N, C, rows*in]).\n"
    "Blocks come from the cache when present (see --cache-dir) and are stored there otherwise, keyed\n"
    "by the checkpoint's bytes, the data's content, the options and the code (README, Cache).\n"
    "Several -m give one stream per model, in order, one after another (as `cat` would join them):\n"
    "entk-gram, entk-eig and entk-align answer each stream with one of theirs, so a whole training\n"
    "run goes through one pipeline.\n"
    "Language models (-m a Gemma 3 directory or a llama2.c checkpoint; input: windows, e.g. from\n"
    "entk-windows, or ids from entk-tokenize, all of one length): the Setting 3 eNTK of the final hidden\n"
    "state at each window's last position w.r.t. one weight of block L (METHOD.md): --form matfree\n"
    "(default) writes the linearisation entk-eig --lanczos runs on: the residual entering block L of\n"
    "every window (one forward of the blocks before the deepest L, cached per 64 windows), record\n"
    "lm_linear and frames x [n, T, D]; --form explicit the (N D) x |W| Jacobian of the whitened outputs\n"
    "(U^T U)^1/2 h as blocks J [N, D, rows*in]: entk-gram --reduce flat then gives K~ itself (small\n"
    "problems: one VJP per row).\n"
    "\n";

static const char *examples =
    "Example:\n"
    "  entk-modadd -p 29 > data.frames\n"
    "  entk-jacobian -m ckpt/epoch-00500.safetensors data.frames | entk-gram --reduce trace | entk-eig --top 200\n"
    "  entk-jacobian $(printf -- '-m %s ' ckpt/*.safetensors) data.frames | entk-gram | entk-eig --top 10 \\\n"
    "    | entk-show --name eigenvalues --values | cut -f1   # lambda_1 over training\n"
    "  entk-jacobian -m stories260K.bin --layer 3 windows.frames | entk-eig --lanczos -m stories260K.bin -o eig.frames\n";

/* The kinds of run (cli_spec.kind): a modular-addition checkpoint; a language model's
 * linearisation (--form matfree); its explicit Jacobian or products (--form explicit, --jvp, --vjp). */
enum { RUN_MODADD = 1, RUN_MATFREE = 2, RUN_EXPLICIT = 4, RUN_LM = RUN_MATFREE | RUN_EXPLICIT };

/* What the header's args name that each stream resolves; the derived rows print them. */
typedef struct {
    char params[512];       /* a checkpoint's --params, its names in the order asked ("all": its own) */
    const char *params_s;   /* = params */
    int layer;              /* a language model's block, counted from 0 */
    const char *param;      /* a language model's weight, canonically named */
    const char *form;       /* factored or explicit; a language model's explicit, jvp or vjp */
} jac_key;

typedef struct {
    const char **models;
    int nmodels;
    const char *params, *form, *layers, *jvp, *vjp;
    int dt;                 /* index in f32|f64 (= dtype); -1 until the kind of run gives the default */
    int outputs, chunk;     /* outputs: 0 all, 1 sum */
    long block_rows, block_mb;
    cli_spec *spec;         /* the options, for the header's canonical args */
    jac_key key;
} jac_cli;

/* The indices of the --params tensors of model m (read from path); dies naming one it lacks. */
static int select_params(const model *m, const char *path, const char *params, int *sel) {
    int nsel = 0;
    if (strcmp(params, "all") == 0) {
        for (int k = 0; k < m->nparams; k++) sel[nsel++] = k;
        return nsel;
    }
    int n;
    char **names = cli_split(params, &n);
    for (int i = 0; i < n; i++) {
        int k = model_param_index(m, names[i]);
        if (k < 0) entk_die(ENTK_EXIT_USAGE, "--params: model %s has no parameter '%s'", path, names[i]);
        if (nsel < MODEL_MAX_PARAMS) sel[nsel++] = k;
    }
    return nsel;
}

/* One model's Jacobian stream. */
static void jacobian_stream(const char *path, frame_reader *r, const entk_key *data_key, const modadd *d, frame_writer *w,
                            jac_cli *c, const jac_options *o) {
    dtype dt = (dtype)c->dt;
    const char *form_s = c->key.form;
    model m;
    model_load(&m, path, dt);
    int sel[MODEL_MAX_PARAMS], nsel = select_params(&m, path, c->params, sel);
    char *plist = c->key.params;
    plist[0] = 0;
    for (int i = 0; i < nsel; i++) {
        strncat(plist, i ? "," : "", sizeof c->key.params - strlen(plist) - 1);
        strncat(plist, m.names[sel[i]], sizeof c->key.params - strlen(plist) - 1);
    }
    cli_args args = {0};
    cli_args_key(&args, c->spec);
    const char *inames[] = {path, r->src};
    entk_key ikeys[] = {m.key, *data_key}; /* by content: the checkpoint's bytes, the data's frames */
    frame_header h;
    frame_header_make(&h, "entk-jacobian", args.argc, args.argv, 2, inames, ikeys);
    frame_writer_stream(w, c->spec->co.output, &h);
    cli_args_free(&args);
    meta mt = {0};
    meta_i64(&mt, "N", d->N);
    meta_i64(&mt, "C", o->sum_outputs ? 1 : m.n_out);
    meta_i64(&mt, "summed", o->sum_outputs ? m.n_out : 0);
    meta_str(&mt, "form", form_s);
    meta_str(&mt, "params", plist);
    meta_str(&mt, "dtype", dtype_name(dt));
    frame_write_record(w, "jacobian", &mt);
    for (int i = 0; i < nsel; i++) jacobian_write_param(w, &m, &d->x, data_key, sel[i], o);
    model_free(&m);
}

/* The tensor frame `name` of FILE as f64 with the given shape, or a one-line error. */
static double *read_vector(const char *path, const char *name, int64_t d0, int64_t d1) {
    frame_reader r;
    frame_reader_open(&r, path);
    frame f;
    double *v = NULL;
    while (frame_read(&r, &f)) {
        if (strcmp(f.kind, "tensor") != 0 || strcmp(f.name, name) != 0) continue;
        frame_expect_shape(&r, &f, 2, (int64_t[]){d0, d1});
        tensor t = frame_take(&r, &f, DT_F64);
        v = t.data;
        break;
    }
    if (!v) entk_die(ENTK_EXIT_INPUT, "%s: no tensor frame '%s' [%lld, %lld]", path, name, (long long)d0, (long long)d1);
    frame_reader_close(&r);
    return v;
}

/* --layer LIST ('16', '0,2,-1' or all) as block indices of a model of n blocks; *nl of them. */
static int *parse_layers(const char *list, int n, int *nl) {
    int *layers = xmalloc(((size_t)n + 1) * sizeof(int));
    *nl = 0;
    if (strcmp(list, "all") == 0) {
        for (int l = 0; l < n; l++) layers[(*nl)++] = l;
        return layers;
    }
    int k;
    char **parts = cli_split(list, &k);
    if (k < 1 || k > n) entk_die(ENTK_EXIT_USAGE, "--layer: give 1 to %d blocks or all", n);
    for (int i = 0; i < k; i++) {
        long v = cli_long("--layer", parts[i], -1000000, 1000000);
        if (v < -n || v >= n) entk_die(ENTK_EXIT_USAGE, "--layer %ld is out of range: the model has blocks 0..%d", v, n - 1);
        layers[(*nl)++] = (int)(v < 0 ? v + n : v);
    }
    free(parts);
    return layers;
}

/* --form explicit: the record 'jacobian' and the (N D) x |W| Jacobian of op as blocks J of W's
 * rows, at most 256 MB each. */
static void write_explicit(frame_writer *w, lm_entk *op, const lm_model *m, lm_param param, dtype dt, int N, int64_t out,
                           int64_t in) {
    meta mt = {0};
    meta_i64(&mt, "N", N);
    meta_i64(&mt, "C", m->dim);
    meta_i64(&mt, "summed", 0);
    meta_str(&mt, "form", "explicit");
    meta_str(&mt, "params", lm_param_name(param));
    meta_str(&mt, "dtype", dtype_name(dt));
    frame_write_record(w, "jacobian", &mt);
    double *J = xmalloc((size_t)N * m->dim * op->P * sizeof(double));
    lm_explicit_jacobian(op, J);
    int64_t rows = ((int64_t)256 << 20) / ((int64_t)N * m->dim * in * (int64_t)dtype_size(dt));
    if (rows < 1) rows = 1;
    for (int64_t r0 = 0, b = 0; r0 < out; r0 += rows, b++) {
        int64_t nr = out - r0 < rows ? out - r0 : rows;
        tensor t = tensor_3d(dt, N, m->dim, nr * in);
        for (int64_t n = 0; n < (int64_t)N * m->dim; n++)
            for (int64_t j = 0; j < nr * in; j++) {
                double v = J[n * op->P + r0 * in + j];
                if (dt == DT_F32) ((float *)t.data)[n * nr * in + j] = (float)v;
                else ((double *)t.data)[n * nr * in + j] = v;
            }
        meta mb = {0};
        meta_str(&mb, "param", lm_param_name(param));
        meta_str(&mb, "form", "explicit");
        meta_i64(&mb, "block", b);
        meta_i64(&mb, "row0", r0);
        meta_i64(&mb, "rows", nr);
        meta_i64(&mb, "out", out);
        meta_i64(&mb, "in", in);
        frame_write_tensor(w, "J", &t, &mb);
        tensor_free(&t);
    }
    free(J);
}

/* The language-model path: one stream per requested layer. */
static int lm_main(const char *input, jac_cli *o) {
    const char *path = o->models[0], *output = o->spec->co.output;
    dtype dt = (dtype)o->dt;
    lm_model *m = lm_load(path); /* first: a model that cannot be read says so (exit 3) */
    if (!o->layers) entk_die(ENTK_EXIT_USAGE, "--layer is required for a language model (see --help)");
    entk_log("%s", m->desc);
    lm_param param;
    if (!lm_param_parse(o->params, &param))
        entk_die(ENTK_EXIT_USAGE, "--params: '%s' is not a weight of a block (down, gate, up, o, q, k, v)", o->params);
    o->key.param = lm_param_name(param);
    o->key.form = o->jvp ? "jvp" : o->vjp ? "vjp" : o->form;
    int matfree = strcmp(o->form, "matfree") == 0;
    if (!matfree && strcmp(o->form, "explicit") != 0)
        entk_die(ENTK_EXIT_USAGE, "--form for a language model is matfree or explicit, not '%s'", o->form);
    int nl, *layers = parse_layers(o->layers, m->n_layers, &nl);
    if ((o->jvp || o->vjp) && nl != 1) entk_die(ENTK_EXIT_USAGE, "--jvp and --vjp take one --layer");
    frame_reader r;
    frame_reader_open_streams(&r, input);
    int N, T;
    int32_t *ids = lm_read_windows(&r, &N, &T);
    entk_key wkey = r.h.key; /* the windows stream, as entk-forward and entk-labels name it */
    void **x = xcalloc((size_t)nl, sizeof(void *));
    lm_prefix(m, dt, ids, N, T, layers, nl, x, 64);
    frame_writer w = {0};
    for (int i = 0; i < nl; i++) {
        o->key.layer = layers[i];
        cli_args args = {0};
        cli_args_key(&args, o->spec);
        const char *inames[3] = {path, r.src, o->jvp ? o->jvp : o->vjp};
        entk_key ikeys[3] = {m->key, wkey};
        int nin = 2;
        if (o->jvp || o->vjp) ikeys[nin++] = hash_file(o->jvp ? o->jvp : o->vjp);
        frame_header h;
        frame_header_make(&h, "entk-jacobian", args.argc, args.argv, nin, inames, ikeys);
        frame_writer_stream(&w, output, &h);
        cli_args_free(&args);
        int64_t out, in;
        lm_param_shape(m, param, &out, &in);
        if (matfree && !o->jvp && !o->vjp) {
            lm_linear L = {m->key, wkey, layers[i], param, dt, N, T, m->dim, out, in, x[i]};
            lm_linear_write(&w, &L, 64);
            continue;
        }
        lm_entk *op = lm_entk_new(m, dt, layers[i], param, N, T, x[i], o->chunk, (size_t)1 << 30, 1);
        if (o->jvp || o->vjp) {
            int64_t d0 = o->jvp ? out : N, d1 = o->jvp ? in : m->dim;
            double *v = read_vector(o->jvp ? o->jvp : o->vjp, o->jvp ? "u" : "z", d0, d1);
            tensor t = o->jvp ? tensor_2d(DT_F64, N, m->dim) : tensor_2d(DT_F64, out, in);
            if (o->jvp) lm_jvp_all(op, v, t.data);
            else lm_vjp_all(op, v, t.data);
            meta mt = {0};
            meta_i64(&mt, "layer", layers[i]);
            meta_str(&mt, "param", lm_param_name(param));
            frame_write_tensor(&w, o->jvp ? "jvp" : "vjp", &t, &mt);
            tensor_free(&t);
            free(v);
        } else {
            write_explicit(&w, op, m, param, dt, N, out, in);
        }
        lm_entk_free(op);
    }
    frame_writer_close(&w);
    cache_report();
    for (int i = 0; i < nl; i++) free(x[i]);
    free(x);
    free(ids);
    free(layers);
    frame_reader_close(&r);
    lm_free(m);
    return 0;
}

static void parse_model(const char *opt, const char *arg, void *dest) {
    jac_cli *c = dest;
    c->models[c->nmodels++] = arg;
}

/* An option of another kind of run than kind, as one line. */
static noreturn void misplaced(const cli_opt *mis, unsigned kind, const char *model) {
    char nm[80];
    cli_opt_name(mis, nm, sizeof nm);
    if (kind == RUN_MODADD)
        entk_die(ENTK_EXIT_USAGE, "--layer, --jvp, --vjp and --chunk are for language models; %s is an entk-train checkpoint", model);
    if (mis->only == RUN_MODADD) entk_die(ENTK_EXIT_USAGE, "%s is for entk-train checkpoints; %s is a language model", nm, model);
    entk_die(ENTK_EXIT_USAGE, "%s is for --form explicit, --jvp and --vjp", nm);
}

/* The checkpoints' path: every model checked against the data before anything is written. */
static int modadd_main(const char *input, jac_cli *c) {
    jac_options o = {.block_rows = c->block_rows, .max_block_bytes = (size_t)c->block_mb << 20, .sum_outputs = c->outputs};
    if (strcmp(c->form, "factored") == 0) o.form = JAC_FACTORED;
    else if (strcmp(c->form, "explicit") == 0) o.form = JAC_EXPLICIT;
    else entk_die(ENTK_EXIT_USAGE, "--form must be factored or explicit, not '%s'", c->form);
    c->key.form = c->form;
    cache_init(c->spec->co.cache_dir);
    frame_reader r;
    frame_reader_open(&r, input);
    modadd d;
    modadd_read(&r, &d);
    frame f;
    if (frame_read(&r, &f)) frame_fail(&r, &f, "unexpected frame after the data set");
    /* blocks are keyed by what the data stream holds, not by what its header claims: a data set
     * edited under its old header must not be served the old blocks */
    entk_key data_key = frame_reader_content(&r);
    /* every model is checked before anything is written: a bad file late in a long list must not
     * leave downstream filters a shorter series that looks complete */
    for (int i = 0; i < c->nmodels; i++) {
        model m;
        model_load(&m, c->models[i], (dtype)c->dt);
        model_check_data(&m, &d, r.src);
        model_free(&m);
    }
    frame_writer w = {0};
    for (int i = 0; i < c->nmodels; i++) jacobian_stream(c->models[i], &r, &data_key, &d, &w, c, &o);
    frame_writer_close(&w);
    entk_progress_end();
    cache_report();
    frame_reader_close(&r);
    modadd_free(&d);
    return 0;
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    jac_cli c = {.models = xcalloc((size_t)argc, sizeof(char *)), .dt = -1};
    jac_key *k = &c.key;
    k->params_s = k->params;
    /* The args of a checkpoint's streams: params= form= dtype= block_rows= [outputs=sum]; of a
     * language model's: layer= param= dtype= [form= chunk=] (matfree: the first three). Both
     * orders come from the one table: derived rows (in --help they are not) print what each
     * stream resolved, where it stands. */
    cli_opt opts[] = {
        {"model", 'm', CLI_CUSTOM, &c, "FILE", CLI_INPUT, .parse = parse_model,
         .help = "checkpoint (.safetensors), Gemma 3 directory or llama2.c checkpoint;\n"
                 "repeatable (checkpoints)"},
        {"params", 0, CLI_STR, &c.params, "LIST", CLI_KEY_VIA, .key_name = "params",
         .help = "comma-separated parameter names, or all (default); a language model:\n"
                 "the weight: down (default), gate, up, o, q, k or v"},
        {"form", 0, CLI_STR, &c.form, "F", CLI_KEY_VIA, .key_name = "form",
         .help = "factored (default) or explicit; a language model: matfree (default) or\nexplicit"},
        {"layer", 0, CLI_INT, &k->layer, NULL, CLI_KEY_EQ, .derived = 1, .only = RUN_LM, .help = "this stream's block"},
        {"param", 0, CLI_STR, &k->param, NULL, CLI_KEY_EQ, .derived = 1, .only = RUN_LM, .help = "--params, canonical"},
        {"params", 0, CLI_STR, &k->params_s, NULL, CLI_KEY_EQ, .derived = 1, .only = RUN_MODADD,
         .help = "--params resolved against this checkpoint"},
        {"form", 0, CLI_STR, &k->form, NULL, CLI_KEY_EQ, .derived = 1, .only = RUN_MODADD, .help = "--form or its default"},
        {"dtype", 0, CLI_CHOICE, &c.dt, "f32|f64", CLI_KEY_EQ,
         .help = "precision (default f64; a language model: f32, f64 for checks)"},
        {"form", 0, CLI_STR, &k->form, NULL, CLI_KEY_EQ, .derived = 1, .only = RUN_EXPLICIT, .help = "explicit, jvp or vjp"},
        {"block-rows", 0, CLI_LONG, &c.block_rows, "R", CLI_KEY_EQ, .key_name = "block_rows", .only = RUN_MODADD, .min = 1,
         .max = 1L << 40, .help = "parameter rows per block (default: blocks of at most --block-mb)"},
        /* Not in the key (as before the tables): it draws the blocks' boundaries only, which each
         * block's own cache key names (row0, rows), and a Gram is keyed by what its stream holds. */
        {"block-mb", 0, CLI_LONG, &c.block_mb, "MB", CLI_NOKEY, .only = RUN_MODADD, .min = 1, .max = 1L << 20,
         .help = "block size bound in MiB when --block-rows is not given (default 256)"},
        /* outputs=sum only when asked for: other streams keep the keys they had */
        {"outputs", 0, CLI_CHOICE, &c.outputs, "all|sum", CLI_KEY_EQ, .show = cli_show_nonzero, .only = RUN_MODADD,
         .help = "all (default): every logit, C of them; sum: the Jacobian of their sum\n"
                 "(C = 1, one backward pass instead of C), whose Gram is the class-mean eNTK\n"
                 "times C^2: entk-gram gives it with --reduce mean, the only reduction it\n"
                 "supports"},
        {.kind = CLI_HEADING, .help = "Language models:"},
        {"layer", 0, CLI_STR, &c.layers, "LIST", CLI_KEY_VIA, .key_name = "layer", .only = RUN_LM,
         .help = "blocks (required): '16', '0,2,-1' or all; one stream per block"},
        {"jvp", 0, CLI_STR, &c.jvp, "FILE", CLI_INPUT, .only = RUN_LM,
         .help = "instead: J u for the tensor frame u [out, in] of FILE: frame jvp [N, D]"},
        {"vjp", 0, CLI_STR, &c.vjp, "FILE", CLI_INPUT, .only = RUN_LM,
         .help = "instead: J^T z for the tensor frame z [N, D] of FILE: frame vjp [out, in]"},
        {"chunk", 0, CLI_INT, &c.chunk, "W", CLI_KEY_EQ, .only = RUN_EXPLICIT, .min = 1, .max = 1 << 30,
         .help = "windows per chunk for --form explicit, --jvp, --vjp (default: by memory)"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    c.spec = &spec;
    int first = cli_parse(&spec, argc, argv);
    if (!c.nmodels) entk_die(ENTK_EXIT_USAGE, "-m MODEL is required (see --help)");
    const char *input = first < argc ? argv[first] : "-";
    int lm = lm_is_model(c.models[0]);
    if (lm) {
        if (c.nmodels > 1) entk_die(ENTK_EXIT_USAGE, "one language model at a time");
        if (c.jvp && c.vjp) entk_die(ENTK_EXIT_USAGE, "--jvp and --vjp exclude each other");
        if (!c.params) c.params = "down";
        if (!c.form) c.form = "matfree";
        spec.kind = strcmp(c.form, "matfree") == 0 && !c.jvp && !c.vjp ? RUN_MATFREE : RUN_EXPLICIT;
    } else {
        if (!c.params) c.params = "all";
        if (!c.form) c.form = "factored";
        spec.kind = RUN_MODADD;
    }
    const cli_opt *mis = cli_misplaced(&spec);
    if (mis) misplaced(mis, spec.kind, c.models[0]);
    if (c.dt < 0) c.dt = lm ? DT_F32 : DT_F64;
    if (argc - first > 1) entk_die(ENTK_EXIT_USAGE, "one %s stream expected, got %d", lm ? "window" : "data", argc - first);
    int rc;
    if (lm) {
        cache_init(spec.co.cache_dir);
        rc = lm_main(input, &c);
    } else {
        rc = modadd_main(input, &c);
    }
    free(c.models);
    return rc;
}
