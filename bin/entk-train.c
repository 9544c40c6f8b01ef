/* entk-train: train a modular-addition model (METHOD.md settings 1 and 2) from entk-modadd
 * frames; writes safetensors checkpoints every k epochs and a metrics stream. */
#include <cblas.h>
#include "modadd/adamw.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/frame.h"
#include "core/linalg.h"
#include "modadd/data.h"
#include "modadd/model.h"
#include "core/rng.h"
#include "core/torchrng.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage =
    "Usage: entk-train --model mlp|transformer [options] [DATA|-] [-o METRICS]\n"
    "Trains on the training split of an entk-modadd stream with AdamW (decoupled weight decay, as\n"
    "torch.optim.AdamW). Writes CKPT_DIR/epoch-NNNNN.safetensors at epoch 0 and every --ckpt-every\n"
    "epochs (atomically), and one 'metrics' record per logged epoch: epoch, loss (training loss),\n"
    "train_acc, test_acc (fractions), checkpoint (path or \"\").\n";

static const char *examples =
    "Example:\n"
    "  entk-modadd -p 29 --train-frac 0.7 | entk-train --model mlp --ckpt-dir ckpt -o metrics.frames\n"
    "  entk-show --name metrics --fields epoch,loss,test_acc metrics.frames | tail -3\n";

/* The options; -1: the model's default (the options refuse negative values). */
typedef struct {
    int kind;               /* model_kind, -1 until given */
    int hidden, d_model, heads, d_mlp;
    long epochs, batch, every, seed;
    double lr, wd;
    int dt, torch_rng;      /* dt: index in f32|f64 (= dtype); torch_rng: index in entk|torch */
    const char *init, *ckpt_dir;
    /* resolved, printed by the derived rows: the model's sizes, the --init checkpoint's key */
    int config[3];
    const char *init_key;
} train_opts;

typedef struct { double loss, train_acc, test_acc; } evals;

static evals evaluate(const model *m, const modadd *d) {
    int64_t N = d->N, C = m->p;
    void *f = xmalloc((size_t)(N * C) * dtype_size(m->dt));
    model_forward(m, &d->x, NULL, N, f);
    const int32_t *y = d->labels.data;
    const uint8_t *tr = d->train.data;
    long ok_tr = 0, ok_te = 0, ntr = 0, nte = 0;
    for (int64_t n = 0; n < N; n++) {
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++)
            if (la_get(m->dt, f, n * C + c) > la_get(m->dt, f, n * C + best)) best = c;
        if (tr[n]) { ntr++; ok_tr += best == y[n]; } else { nte++; ok_te += best == y[n]; }
    }
    free(f);
    evals e = {0, ntr ? (double)ok_tr / (double)ntr : 0, nte ? (double)ok_te / (double)nte : 0};
    return e;
}

static void parse_lr(const char *opt, const char *arg, void *dest) { *(double *)dest = cli_double_min(opt, arg, 0, 1); }
static void parse_wd(const char *opt, const char *arg, void *dest) { *(double *)dest = cli_double_min(opt, arg, 0, 0); }

static const char *show_double(const cli_opt *o, char *buf, size_t n) {
    snprintf(buf, n, "%.17g", *(const double *)o->dest);
    return buf;
}

static const char *show_config(const cli_opt *o, char *buf, size_t n) {
    const int *c = ((const train_opts *)o->dest)->config;
    snprintf(buf, n, "%d,%d,%d", c[0], c[1], c[2]);
    return buf;
}

/* The epochs: a step per minibatch of a fresh order of the training list each epoch; a checkpoint
 * and a metrics record every o->every epochs (and the last). */
static void train_epochs(model *m, const modadd *d, const train_opts *o, mt19937 *torch, frame_writer *w) {
    /* the training set as the data lists it; minibatches are consecutive runs of a fresh shuffle
     * of that list every epoch */
    int64_t ntrain = d->train_order.shape[0];
    const int64_t *tr = d->train_order.data;
    int64_t *perm = xmalloc((size_t)d->N * sizeof(int64_t)), *pos = xmalloc((size_t)d->N * sizeof(int64_t)),
            *bidx = xmalloc((size_t)d->N * sizeof(int64_t));
    int64_t bs = o->batch == 0 || o->batch > ntrain ? ntrain : o->batch;
    rng shuf;
    rng_seed(&shuf, (uint64_t)o->seed ^ 0x5eed5eedull);
    tensor grads[MODEL_MAX_PARAMS];
    for (int k = 0; k < m->nparams; k++) grads[k] = tensor_new(m->dt, m->w[k].ndim, m->w[k].shape);
    adamw opt;
    adamw_init(&opt, m->nparams, m->w, o->lr, o->wd);
    double t0 = entk_now();
    for (long ep = 0; ep <= o->epochs; ep++) {
        double loss = 0;
        if (ep > 0) {
            int64_t nb_total = 0;
            const int64_t *order = tr;
            /* torch: DataLoader(shuffle=True) draws even for one full batch; keep the stream in step */
            if (o->torch_rng || bs < ntrain) {
                if (o->torch_rng) torch_dataloader_order(torch, ntrain, pos);
                else rng_permutation(&shuf, ntrain, pos);
                for (int64_t i = 0; i < ntrain; i++) perm[i] = tr[pos[i]];
                order = perm;
            }
            for (int64_t b0 = 0; b0 < ntrain; b0 += bs) {
                int64_t nb = ntrain - b0 < bs ? ntrain - b0 : bs;
                memcpy(bidx, order + b0, (size_t)nb * sizeof(int64_t));
                loss += model_loss_grad(m, &d->x, d->labels.data, bidx, nb, grads) * (double)nb;
                nb_total += nb;
                adamw_step(&opt, m->w, grads);
            }
            loss /= (double)nb_total;
        }
        if (ep % o->every == 0 || ep == o->epochs) {
            char path[4096] = "";
            if (ep % o->every == 0) {
                snprintf(path, sizeof path, "%s/epoch-%05ld.safetensors", o->ckpt_dir, ep);
                char eps[32];
                snprintf(eps, sizeof eps, "%ld", ep);
                const char *extra[] = {"epoch", eps};
                model_save(m, path, extra, 1);
            }
            if (ep == 0) loss = model_loss_grad(m, &d->x, d->labels.data, tr, ntrain, grads);
            evals e = evaluate(m, d);
            meta mt = {0};
            meta_i64(&mt, "epoch", ep);
            meta_f64(&mt, "loss", loss);
            meta_f64(&mt, "train_acc", e.train_acc);
            meta_f64(&mt, "test_acc", e.test_acc);
            meta_str(&mt, "checkpoint", path);
            frame_write_record(w, "metrics", &mt);
            fflush(w->out.fp);
            if (!entk_quiet)
                entk_log("epoch %ld: loss %.6g train %.1f%% test %.1f%% (%.1fs)", ep, loss, 100 * e.train_acc,
                         100 * e.test_acc, entk_now() - t0);
        }
    }
    adamw_free(&opt);
    for (int k = 0; k < m->nparams; k++) tensor_free(&grads[k]);
    free(perm);
    free(pos);
    free(bidx);
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    train_opts o = {.kind = -1, .hidden = 512, .d_model = 64, .heads = 4, .d_mlp = 256, .epochs = -1, .batch = -1, .every = -1,
                    .lr = -1, .wd = -1, .ckpt_dir = "ckpt", .init_key = "random"};
    cli_opt opts[] = {
        {"model", 0, CLI_CHOICE, &o.kind, "mlp|transformer", CLI_KEY_EQ,
         .help = "mlp (MSE, full batch) or transformer (cross-entropy, minibatches)"},
        {"config", 0, CLI_CUSTOM, &o, NULL, CLI_KEY_EQ, .derived = 1, .show = show_config, .help = "the model's sizes (or --init's)"},
        {"hidden", 0, CLI_INT, &o.hidden, "H", CLI_KEY_VIA, .key_name = "config", .min = 1, .max = 1 << 20,
         .help = "mlp hidden width (default 512)"},
        {"d-model", 0, CLI_INT, &o.d_model, "D", CLI_KEY_VIA, .key_name = "config", .min = 1, .max = 1 << 16,
         .help = "transformer width (default 64)"},
        {"heads", 0, CLI_INT, &o.heads, "H", CLI_KEY_VIA, .key_name = "config", .min = 1, .max = 256,
         .help = "transformer heads (default 4)"},
        {"d-mlp", 0, CLI_INT, &o.d_mlp, "F", CLI_KEY_VIA, .key_name = "config", .min = 1, .max = 1 << 20,
         .help = "transformer MLP width (default 256)"},
        {"epochs", 0, CLI_LONG, &o.epochs, "E", CLI_KEY_EQ, .min = 0, .max = 100000000,
         .help = "(default mlp 500, transformer 4000; 0 writes the initial checkpoint only)"},
        {"lr", 0, CLI_CUSTOM, &o.lr, "LR", CLI_KEY_EQ, .parse = parse_lr, .show = show_double,
         .help = "learning rate > 0 (default mlp 0.05, transformer 3e-4)"},
        {"wd", 0, CLI_CUSTOM, &o.wd, "WD", CLI_KEY_EQ, .parse = parse_wd, .show = show_double,
         .help = "weight decay >= 0 (default mlp 0.01, transformer 1.0)"},
        {"batch", 0, CLI_LONG, &o.batch, "B", CLI_KEY_EQ, .min = 0, .max = 1L << 30,
         .help = "minibatch size, 0 = full batch (default mlp 0, transformer 64)"},
        {"seed", 0, CLI_LONG, &o.seed, "S", CLI_KEY_EQ, .min = 0, .max = 1L << 62,
         .help = "initialisation and shuffling seed (default 0)"},
        {"ckpt-every", 0, CLI_LONG, &o.every, "K", CLI_KEY_EQ, .key_name = "ckpt_every", .min = 1, .max = 100000000,
         .help = "checkpoint and log every K epochs (default mlp 10, transformer 20)"},
        {"dtype", 0, CLI_CHOICE, &o.dt, "f32|f64", CLI_KEY_EQ, .help = "training precision (default f32, as the PyTorch reference)"},
        {"init", 0, CLI_STR, &o.init, "FILE", CLI_KEY_VIA, .key_name = "init",
         .help = "start from these weights instead of a random initialisation"},
        {"init", 0, CLI_STR, &o.init_key, NULL, CLI_KEY_EQ, .derived = 1, .help = "--init's key, or random"},
        {"rng", 0, CLI_CHOICE, &o.torch_rng, "entk|torch", CLI_KEY_EQ,
         .help = "entk (default): entk's own generator; torch: torch.manual_seed(S), weights\n"
                 "drawn as the reference PyTorch modules draw them and every epoch's order as\n"
                 "a DataLoader(shuffle=True) pass, continuing the split's torch stream when\n"
                 "the data came from entk-modadd --rng torch --seed S (one script's generator)"},
        /* where the checkpoints go: the metrics records name their paths, the training is the same */
        {"ckpt-dir", 0, CLI_STR, &o.ckpt_dir, "DIR", CLI_NOKEY, .help = "where checkpoints go (default ckpt)"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    /* these models' matrices are small (at most a few hundred rows a step): handing them to
     * OpenBLAS worker threads costs more than the product, several times over on a busy machine */
    openblas_set_num_threads(1);
    if (o.kind < 0) entk_die(ENTK_EXIT_USAGE, "--model is required (mlp or transformer; see --help)");
    model_kind kind = (model_kind)o.kind;
    const char *kind_s = kind == MODEL_MLP ? "mlp" : "transformer";
    int is_mlp = kind == MODEL_MLP;
    dtype dt = (dtype)o.dt;
    if (o.epochs < 0) o.epochs = is_mlp ? 500 : 4000;
    if (o.lr < 0) o.lr = is_mlp ? 0.05 : 3e-4;
    if (o.wd < 0) o.wd = is_mlp ? 0.01 : 1.0;
    if (o.batch < 0) o.batch = is_mlp ? 0 : 64;
    if (o.every < 0) o.every = is_mlp ? 10 : 20;
    if (argc - first > 1) entk_die(ENTK_EXIT_USAGE, "one data stream expected, got %d", argc - first);

    frame_reader r;
    frame_reader_open(&r, first < argc ? argv[first] : "-");
    modadd d;
    modadd_read(&r, &d);
    frame f;
    if (frame_read(&r, &f)) frame_fail(&r, &f, "unexpected frame after the data set");
    /* torch: one global generator, as one script that seeds, splits, builds the model and trains */
    mt19937 torch;
    torch_seed(&torch, (uint64_t)o.seed);
    if (o.torch_rng && strcmp(d.rng, "torch") == 0 && d.seed == o.seed) torch_skip(&torch, (uint64_t)d.torch_draws);
    model m;
    if (o.init) {
        model_load(&m, o.init, dt);
        if (m.kind != kind) entk_die(ENTK_EXIT_INPUT, "%s: is not a %s model", o.init, kind_s);
        if (m.p != d.p) entk_die(ENTK_EXIT_INPUT, "%s: model has p=%d but the data has p=%d", o.init, m.p, d.p);
        o.init_key = m.key.hex;
    } else {
        int cfg[3] = {is_mlp ? o.hidden : o.d_model, o.heads, o.d_mlp};
        model_create(&m, kind, d.p, cfg, (uint64_t)o.seed, o.torch_rng ? &torch : NULL, dt);
    }
    if (strcmp(model_encoding(&m), d.encoding) != 0)
        entk_die(ENTK_EXIT_INPUT, "%s model needs --encoding %s data, got %s", kind_s, model_encoding(&m), d.encoding);
    if (d.train_order.shape[0] == 0) entk_die(ENTK_EXIT_INPUT, "%s: the training split is empty", r.src);

    o.config[0] = is_mlp ? m.hidden : m.d_model;
    o.config[1] = m.n_heads;
    o.config[2] = m.d_mlp;
    cli_args a = {0};
    cli_args_key(&a, &spec);
    frame_header h;
    const char *iname[] = {r.src};
    frame_header_make(&h, "entk-train", a.argc, a.argv, 1, iname, &r.h.key);
    frame_writer w;
    frame_writer_open(&w, spec.co.output, &h);
    mkdir(o.ckpt_dir, 0777);
    train_epochs(&m, &d, &o, &torch, &w);
    frame_writer_close(&w);
    frame_reader_close(&r);
    cli_args_free(&a);
    model_free(&m);
    modadd_free(&d);
    return 0;
}
