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

static const char *help =
    "Usage: entk-jacobian -m MODEL [-m MODEL...] [--params P1,P2|all] [--form factored|explicit] [--block-rows R]\n"
    "                     [--dtype f32|f64] [DATA|-]\n"
    "Streams the Jacobian of all logits on every input of DATA (an entk-modadd stream) w.r.t. the\n"
    "chosen parameter tensors of MODEL (an entk-train checkpoint), as blocks over rows of each\n"
    "parameter: factored blocks (X, G: the Gram never forms J) or explicit blocks (J [N, C, rows*in]).\n"
    "Blocks come from the cache when present (see --cache-dir) and are stored there otherwise, keyed\n"
    "by the checkpoint's bytes, the data's content, the options and the code (README, Cache).\n"
    "Several -m give one stream per model, in order, one after another (as `cat` would join them):\n"
    "entk-gram, entk-eig and entk-align answer each stream with one of theirs, so a whole training\n"
    "run goes through one pipeline.\n"
    "  -m, --model FILE   checkpoint (.safetensors); repeatable\n"
    "  --params LIST      comma-separated parameter names, or all (default)\n"
    "  --form F           factored (default) or explicit\n"
    "  --block-rows R     parameter rows per block (default: blocks of at most --block-mb)\n"
    "  --block-mb MB      block size bound in MiB when --block-rows is not given (default 256)\n"
    "  --dtype f32|f64    precision (default f64)\n"
    "  --outputs all|sum  all (default): every logit, C of them; sum: the Jacobian of their sum (C = 1,\n"
    "                     one backward pass instead of C), whose Gram is the class-mean eNTK times C^2:\n"
    "                     entk-gram gives it with --reduce mean, the only reduction it supports\n"
    "Language models (-m a Gemma 3 directory or a llama2.c checkpoint; input: windows, e.g. from\n"
    "entk-windows, or ids from entk-tokenize, all of one length): the Setting 3 eNTK of the final hidden\n"
    "state at each window's last position w.r.t. one weight of block L (METHOD.md):\n"
    "  --layer LIST       blocks (required): '16', '0,2,-1' or all; one stream per block\n"
    "  --params W         the weight: down (default), gate, up, o, q, k or v\n"
    "  --form F           matfree (default): the linearisation entk-eig --lanczos runs on: the residual\n"
    "                     entering block L of every window (one forward of the blocks before the deepest\n"
    "                     L, cached per 64 windows), record lm_linear and frames x [n, T, D];\n"
    "                     explicit: the (N D) x |W| Jacobian of the whitened outputs (U^T U)^1/2 h as\n"
    "                     blocks J [N, D, rows*in]: entk-gram --reduce flat then gives K~ itself (small\n"
    "                     problems: one VJP per row)\n"
    "  --jvp FILE         instead: J u for the tensor frame u [out, in] of FILE: frame jvp [N, D]\n"
    "  --vjp FILE         instead: J^T z for the tensor frame z [N, D] of FILE: frame vjp [out, in]\n"
    "  --dtype f32|f64    precision (default f32; f64 for checks)\n"
    "  --chunk W          windows per chunk for --form explicit, --jvp, --vjp (default: by memory)\n"
    "Example:\n"
    "  entk-modadd -p 29 > data.frames\n"
    "  entk-jacobian -m ckpt/epoch-00500.safetensors data.frames | entk-gram --reduce trace | entk-eig --top 200\n"
    "  entk-jacobian $(printf -- '-m %s ' ckpt/*.safetensors) data.frames | entk-gram | entk-eig --top 10 \\\n"
    "    | entk-show --name eigenvalues --values | cut -f1   # lambda_1 over training\n"
    "  entk-jacobian -m stories260K.bin --layer 3 windows.frames | entk-eig --lanczos -m stories260K.bin -o eig.frames\n";

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
                            const char *output, const char *params, const char *form_s, const jac_options *o, dtype dt) {
    model m;
    model_load(&m, path, dt);
    int sel[MODEL_MAX_PARAMS], nsel = select_params(&m, path, params, sel);
    char plist[512] = "";
    for (int i = 0; i < nsel; i++) {
        strncat(plist, i ? "," : "", sizeof plist - strlen(plist) - 1);
        strncat(plist, m.names[sel[i]], sizeof plist - strlen(plist) - 1);
    }

    char a[5][600];
    snprintf(a[0], sizeof a[0], "params=%s", plist);
    snprintf(a[1], sizeof a[1], "form=%s", form_s);
    snprintf(a[2], sizeof a[2], "dtype=%s", dtype_name(dt));
    snprintf(a[3], sizeof a[3], "block_rows=%lld", (long long)o->block_rows);
    snprintf(a[4], sizeof a[4], "outputs=sum");
    char *args[] = {a[0], a[1], a[2], a[3], a[4]};
    const char *inames[] = {path, r->src};
    entk_key ikeys[] = {m.key, *data_key}; /* by content: the checkpoint's bytes, the data's frames */
    frame_header h;
    /* outputs=sum only when asked for: other streams keep the keys they had */
    frame_header_make(&h, "entk-jacobian", o->sum_outputs ? 5 : 4, args, 2, inames, ikeys);
    frame_writer_stream(w, output, &h);
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

typedef struct {
    const char *layers, *param, *form, *jvp, *vjp;
    int chunk, dtype_given;
    dtype dt;
} lm_opts;

/* The language-model path: one stream per requested layer. */
static int lm_main(const char *path, const char *input, const lm_opts *o, const char *output) {
    lm_model *m = lm_load(path); /* first: a model that cannot be read says so (exit 3) */
    if (!o->layers) entk_die(ENTK_EXIT_USAGE, "--layer is required for a language model (see --help)");
    entk_log("%s", m->desc);
    lm_param param;
    if (!lm_param_parse(o->param, &param))
        entk_die(ENTK_EXIT_USAGE, "--params: '%s' is not a weight of a block (down, gate, up, o, q, k, v)", o->param);
    int matfree = strcmp(o->form, "matfree") == 0;
    if (!matfree && strcmp(o->form, "explicit") != 0)
        entk_die(ENTK_EXIT_USAGE, "--form for a language model is matfree or explicit, not '%s'", o->form);
    int *layers = xmalloc(((size_t)m->n_layers + 1) * sizeof(int)), nl = 0;
    if (strcmp(o->layers, "all") == 0) {
        for (int l = 0; l < m->n_layers; l++) layers[nl++] = l;
    } else {
        int k;
        char **parts = cli_split(o->layers, &k);
        if (k < 1 || k > m->n_layers) entk_die(ENTK_EXIT_USAGE, "--layer: give 1 to %d blocks or all", m->n_layers);
        for (int i = 0; i < k; i++) {
            long v = cli_long("--layer", parts[i], -1000000, 1000000);
            if (v < -m->n_layers || v >= m->n_layers)
                entk_die(ENTK_EXIT_USAGE, "--layer %ld is out of range: the model has blocks 0..%d", v, m->n_layers - 1);
            layers[nl++] = (int)(v < 0 ? v + m->n_layers : v);
        }
        free(parts);
    }
    if ((o->jvp || o->vjp) && nl != 1) entk_die(ENTK_EXIT_USAGE, "--jvp and --vjp take one --layer");
    frame_reader r;
    frame_reader_open_streams(&r, input);
    int N, T;
    int32_t *ids = lm_read_windows(&r, &N, &T);
    entk_key wkey = r.h.key; /* the windows stream, as entk-forward and entk-labels name it */
    void **x = xcalloc((size_t)nl, sizeof(void *));
    lm_prefix(m, o->dt, ids, N, T, layers, nl, x, 64);
    frame_writer w = {0};
    for (int i = 0; i < nl; i++) {
        char a[5][64];
        snprintf(a[0], 64, "layer=%d", layers[i]);
        snprintf(a[1], 64, "param=%s", lm_param_name(param));
        snprintf(a[2], 64, "dtype=%s", dtype_name(o->dt));
        snprintf(a[3], 64, "form=%s", o->jvp ? "jvp" : o->vjp ? "vjp" : o->form);
        snprintf(a[4], 64, "chunk=%d", o->chunk);
        char *args[] = {a[0], a[1], a[2], a[3], a[4]};
        const char *inames[3] = {path, r.src, o->jvp ? o->jvp : o->vjp};
        entk_key ikeys[3] = {m->key, wkey};
        int nin = 2;
        if (o->jvp || o->vjp) ikeys[nin++] = hash_file(o->jvp ? o->jvp : o->vjp);
        frame_header h;
        frame_header_make(&h, "entk-jacobian", matfree && !o->jvp && !o->vjp ? 3 : 5, args, nin, inames, ikeys);
        frame_writer_stream(&w, output, &h);
        int64_t out, in;
        lm_param_shape(m, param, &out, &in);
        if (matfree && !o->jvp && !o->vjp) {
            lm_linear L = {m->key, wkey, layers[i], param, o->dt, N, T, m->dim, out, in, x[i]};
            lm_linear_write(&w, &L, 64);
            continue;
        }
        lm_entk *op = lm_entk_new(m, o->dt, layers[i], param, N, T, x[i], o->chunk, (size_t)1 << 30, 1);
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
            meta mt = {0};
            meta_i64(&mt, "N", N);
            meta_i64(&mt, "C", m->dim);
            meta_i64(&mt, "summed", 0);
            meta_str(&mt, "form", "explicit");
            meta_str(&mt, "params", lm_param_name(param));
            meta_str(&mt, "dtype", dtype_name(o->dt));
            frame_write_record(&w, "jacobian", &mt);
            double *J = xmalloc((size_t)N * m->dim * op->P * sizeof(double));
            lm_explicit_jacobian(op, J);
            /* blocks of W's rows, at most 256 MB each */
            int64_t rows = ((int64_t)256 << 20) / ((int64_t)N * m->dim * in * (int64_t)dtype_size(o->dt));
            if (rows < 1) rows = 1;
            for (int64_t r0 = 0, b = 0; r0 < out; r0 += rows, b++) {
                int64_t nr = out - r0 < rows ? out - r0 : rows;
                tensor t = tensor_3d(o->dt, N, m->dim, nr * in);
                for (int64_t n = 0; n < (int64_t)N * m->dim; n++)
                    for (int64_t j = 0; j < nr * in; j++) {
                        double v = J[n * op->P + r0 * in + j];
                        if (o->dt == DT_F32) ((float *)t.data)[n * nr * in + j] = (float)v;
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
                frame_write_tensor(&w, "J", &t, &mb);
                tensor_free(&t);
            }
            free(J);
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

int main(int argc, char **argv) {
    cli_start(argc, argv);
    cli_common co = {0};
    const char *params = NULL, *form_s = NULL;
    lm_opts lo_ = {.layers = NULL, .chunk = 0};
    const char **models = xcalloc((size_t)argc, sizeof(char *));
    int nmodels = 0;
    jac_options o = {0};
    dtype dt = DT_F64;
    enum { O_PARAMS = OPT_FIRST_CUSTOM, O_FORM, O_ROWS, O_MB, O_OUTPUTS, O_LAYER, O_JVP, O_VJP, O_CHUNK };
    static struct option lo[] = {CLI_COMMON_LONGOPTS, {"model", required_argument, 0, 'm'},
                                 {"params", required_argument, 0, O_PARAMS}, {"form", required_argument, 0, O_FORM},
                                 {"block-rows", required_argument, 0, O_ROWS}, {"block-mb", required_argument, 0, O_MB},
                                 {"dtype", required_argument, 0, OPT_DTYPE}, {"outputs", required_argument, 0, O_OUTPUTS},
                                 {"layer", required_argument, 0, O_LAYER}, {"jvp", required_argument, 0, O_JVP},
                                 {"vjp", required_argument, 0, O_VJP}, {"chunk", required_argument, 0, O_CHUNK}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:qhm:", lo, NULL)) != -1) {
        if (cli_common_opt(c, &co, help)) continue;
        switch (c) {
        case 'm': models[nmodels++] = optarg; break;
        case O_PARAMS: params = optarg; break;
        case O_FORM: form_s = optarg; break;
        case O_ROWS: o.block_rows = cli_long("--block-rows", optarg, 1, 1L << 40); break;
        case O_MB: o.max_block_bytes = (size_t)cli_long("--block-mb", optarg, 1, 1L << 20) << 20; break;
        case OPT_DTYPE: dt = dtype_float_option(optarg); lo_.dtype_given = 1; break;
        case O_LAYER: lo_.layers = optarg; break;
        case O_JVP: lo_.jvp = optarg; break;
        case O_VJP: lo_.vjp = optarg; break;
        case O_CHUNK: lo_.chunk = (int)cli_long("--chunk", optarg, 1, 1 << 30); break;
        case O_OUTPUTS:
            if (strcmp(optarg, "sum") == 0) o.sum_outputs = 1;
            else if (strcmp(optarg, "all") != 0) entk_die(ENTK_EXIT_USAGE, "--outputs must be all or sum, not '%s'", optarg);
            break;
        default: cli_bad_option(argv);
        }
    }
    if (!nmodels) entk_die(ENTK_EXIT_USAGE, "-m MODEL is required (see --help)");
    if (lm_is_model(models[0])) {
        if (nmodels > 1) entk_die(ENTK_EXIT_USAGE, "one language model at a time");
        if (lo_.jvp && lo_.vjp) entk_die(ENTK_EXIT_USAGE, "--jvp and --vjp exclude each other");
        if (argc - optind > 1) entk_die(ENTK_EXIT_USAGE, "one window stream expected, got %d", argc - optind);
        lo_.param = params ? params : "down";
        lo_.form = form_s ? form_s : "matfree";
        lo_.dt = lo_.dtype_given ? dt : DT_F32;
        cache_init(co.cache_dir);
        return lm_main(models[0], optind < argc ? argv[optind] : "-", &lo_, co.output);
    }
    if (lo_.layers || lo_.jvp || lo_.vjp || lo_.chunk)
        entk_die(ENTK_EXIT_USAGE, "--layer, --jvp, --vjp and --chunk are for language models; %s is an entk-train checkpoint", models[0]);
    if (!params) params = "all";
    if (!form_s) form_s = "factored";
    if (strcmp(form_s, "factored") == 0) o.form = JAC_FACTORED;
    else if (strcmp(form_s, "explicit") == 0) o.form = JAC_EXPLICIT;
    else entk_die(ENTK_EXIT_USAGE, "--form must be factored or explicit, not '%s'", form_s);
    if (argc - optind > 1) entk_die(ENTK_EXIT_USAGE, "one data stream expected, got %d", argc - optind);
    cache_init(co.cache_dir);

    frame_reader r;
    frame_reader_open(&r, optind < argc ? argv[optind] : "-");
    modadd d;
    modadd_read(&r, &d);
    frame f;
    if (frame_read(&r, &f)) frame_fail(&r, &f, "unexpected frame after the data set");
    /* blocks are keyed by what the data stream holds, not by what its header claims: a data set
     * edited under its old header must not be served the old blocks */
    entk_key data_key = frame_reader_content(&r);
    /* every model is checked before anything is written: a bad file late in a long list must not
     * leave downstream filters a shorter series that looks complete */
    for (int i = 0; i < nmodels; i++) {
        model m;
        model_load(&m, models[i], dt);
        model_check_data(&m, &d, r.src);
        model_free(&m);
    }
    frame_writer w = {0};
    for (int i = 0; i < nmodels; i++) jacobian_stream(models[i], &r, &data_key, &d, &w, co.output, params, form_s, &o, dt);
    frame_writer_close(&w);
    entk_progress_end();
    cache_report();
    frame_reader_close(&r);
    modadd_free(&d);
    free(models);
    return 0;
}
