/* entk-jacobian: Jacobian blocks of a modular-addition model's logits, streamed for entk-gram. */
#include "core/cache.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/frame.h"
#include "modadd/jacobian.h"
#include "modadd/data.h"
#include "modadd/model.h"
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
    "Example:\n"
    "  entk-modadd -p 29 > data.frames\n"
    "  entk-jacobian -m ckpt/epoch-00500.safetensors data.frames | entk-gram --reduce trace | entk-eig --top 200\n"
    "  entk-jacobian $(printf -- '-m %s ' ckpt/*.safetensors) data.frames | entk-gram | entk-eig --top 10 \\\n"
    "    | entk-show --name eigenvalues --values | cut -f1   # lambda_1 over training\n";

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

int main(int argc, char **argv) {
    cli_start(argc, argv);
    cli_common co = {0};
    const char *params = "all", *form_s = "factored";
    const char **models = xcalloc((size_t)argc, sizeof(char *));
    int nmodels = 0;
    jac_options o = {0};
    dtype dt = DT_F64;
    enum { O_PARAMS = OPT_FIRST_CUSTOM, O_FORM, O_ROWS, O_MB, O_OUTPUTS };
    static struct option lo[] = {CLI_COMMON_LONGOPTS, {"model", required_argument, 0, 'm'},
                                 {"params", required_argument, 0, O_PARAMS}, {"form", required_argument, 0, O_FORM},
                                 {"block-rows", required_argument, 0, O_ROWS}, {"block-mb", required_argument, 0, O_MB},
                                 {"dtype", required_argument, 0, OPT_DTYPE}, {"outputs", required_argument, 0, O_OUTPUTS}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:qhm:", lo, NULL)) != -1) {
        if (cli_common_opt(c, &co, help)) continue;
        switch (c) {
        case 'm': models[nmodels++] = optarg; break;
        case O_PARAMS: params = optarg; break;
        case O_FORM: form_s = optarg; break;
        case O_ROWS: o.block_rows = cli_long("--block-rows", optarg, 1, 1L << 40); break;
        case O_MB: o.max_block_bytes = (size_t)cli_long("--block-mb", optarg, 1, 1L << 20) << 20; break;
        case OPT_DTYPE: dt = dtype_float_option(optarg); break;
        case O_OUTPUTS:
            if (strcmp(optarg, "sum") == 0) o.sum_outputs = 1;
            else if (strcmp(optarg, "all") != 0) entk_die(ENTK_EXIT_USAGE, "--outputs must be all or sum, not '%s'", optarg);
            break;
        default: cli_bad_option(argv);
        }
    }
    if (!nmodels) entk_die(ENTK_EXIT_USAGE, "-m MODEL is required (see --help)");
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
        if (d.p != m.p) entk_die(ENTK_EXIT_INPUT, "%s: data has p=%d but the model has p=%d", r.src, d.p, m.p);
        if (strcmp(d.encoding, model_encoding(&m)) != 0)
            entk_die(ENTK_EXIT_INPUT, "%s: model needs %s inputs, data has %s", r.src, model_encoding(&m), d.encoding);
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
