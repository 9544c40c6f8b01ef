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

static const char *help =
    "Usage: entk-train --model mlp|transformer [options] [DATA|-] [-o METRICS]\n"
    "Trains on the training split of an entk-modadd stream with AdamW (decoupled weight decay, as\n"
    "torch.optim.AdamW). Writes CKPT_DIR/epoch-NNNNN.safetensors at epoch 0 and every --ckpt-every\n"
    "epochs (atomically), and one 'metrics' record per logged epoch: epoch, loss (training loss),\n"
    "train_acc, test_acc (fractions), checkpoint (path or \"\").\n"
    "  --model M         mlp (MSE, full batch) or transformer (cross-entropy, minibatches)\n"
    "  --hidden H        mlp hidden width (default 512)\n"
    "  --d-model D --heads H --d-mlp F   transformer sizes (default 64, 4, 256)\n"
    "  --epochs E        (default mlp 500, transformer 4000; 0 writes the initial checkpoint only)\n"
    "  --lr LR --wd WD   LR > 0, WD >= 0 (default mlp 0.05, 0.01; transformer 3e-4, 1.0)\n"
    "  --batch B         minibatch size, 0 = full batch (default mlp 0, transformer 64)\n"
    "  --seed S          initialisation and shuffling seed (default 0)\n"
    "  --rng R           entk (default): entk's own generator; torch: torch.manual_seed(S), weights\n"
    "                    drawn as the reference PyTorch modules draw them and every epoch's order as\n"
    "                    a DataLoader(shuffle=True) pass, continuing the split's torch stream when\n"
    "                    the data came from entk-modadd --rng torch --seed S (one script's generator)\n"
    "  --init FILE       start from these weights instead of a random initialisation\n"
    "  --ckpt-every K    checkpoint and log every K epochs (default mlp 10, transformer 20)\n"
    "  --ckpt-dir DIR    where checkpoints go (default ckpt)\n"
    "  --dtype f32|f64   training precision (default f32, as the PyTorch reference)\n"
    "Example:\n"
    "  entk-modadd -p 29 --train-frac 0.7 | entk-train --model mlp --ckpt-dir ckpt -o metrics.frames\n"
    "  entk-show --name metrics --fields epoch,loss,test_acc metrics.frames | tail -3\n";

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

int main(int argc, char **argv) {
    cli_start(argc, argv);
    cli_common co = {0};
    const char *kind_s = NULL, *init = NULL, *ckpt_dir = "ckpt", *rng_name = "entk";
    int hidden = 512, d_model = 64, heads = 4, d_mlp = 256;
    long epochs = -1, batch = -1, every = -1, seed = 0;
    double lr = -1, wd = -1;   /* -1: the model's default (the options refuse negative values) */
    dtype dt = DT_F32;
    enum { O_MODEL = OPT_FIRST_CUSTOM, O_HIDDEN, O_DMODEL, O_HEADS, O_DMLP, O_EPOCHS, O_LR, O_WD, O_BATCH, O_SEED, O_INIT,
           O_EVERY, O_DIR, O_RNG };
    static struct option lo[] = {CLI_COMMON_LONGOPTS, {"model", required_argument, 0, O_MODEL},
                                 {"hidden", required_argument, 0, O_HIDDEN}, {"d-model", required_argument, 0, O_DMODEL},
                                 {"heads", required_argument, 0, O_HEADS}, {"d-mlp", required_argument, 0, O_DMLP},
                                 {"epochs", required_argument, 0, O_EPOCHS}, {"lr", required_argument, 0, O_LR},
                                 {"wd", required_argument, 0, O_WD}, {"batch", required_argument, 0, O_BATCH},
                                 {"seed", required_argument, 0, O_SEED}, {"init", required_argument, 0, O_INIT},
                                 {"ckpt-every", required_argument, 0, O_EVERY}, {"ckpt-dir", required_argument, 0, O_DIR},
                                 {"dtype", required_argument, 0, OPT_DTYPE}, {"rng", required_argument, 0, O_RNG}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
        if (cli_common_opt(c, &co, help)) continue;
        switch (c) {
        case O_MODEL: kind_s = optarg; break;
        case O_HIDDEN: hidden = (int)cli_long("--hidden", optarg, 1, 1 << 20); break;
        case O_DMODEL: d_model = (int)cli_long("--d-model", optarg, 1, 1 << 16); break;
        case O_HEADS: heads = (int)cli_long("--heads", optarg, 1, 256); break;
        case O_DMLP: d_mlp = (int)cli_long("--d-mlp", optarg, 1, 1 << 20); break;
        case O_EPOCHS: epochs = cli_long("--epochs", optarg, 0, 100000000); break;
        case O_LR: lr = cli_double_min("--lr", optarg, 0, 1); break;
        case O_WD: wd = cli_double_min("--wd", optarg, 0, 0); break;
        case O_BATCH: batch = cli_long("--batch", optarg, 0, 1L << 30); break;
        case O_SEED: seed = cli_long("--seed", optarg, 0, 1L << 62); break;
        case O_INIT: init = optarg; break;
        case O_EVERY: every = cli_long("--ckpt-every", optarg, 1, 100000000); break;
        case O_DIR: ckpt_dir = optarg; break;
        case O_RNG: rng_name = optarg; break;
        case OPT_DTYPE: dt = dtype_float_option(optarg); break;
        default: cli_bad_option(argv);
        }
    }
    /* these models' matrices are small (at most a few hundred rows a step): handing them to
     * OpenBLAS worker threads costs more than the product, several times over on a busy machine */
    openblas_set_num_threads(1);
    if (!kind_s) entk_die(ENTK_EXIT_USAGE, "--model is required (mlp or transformer; see --help)");
    model_kind kind = model_kind_parse(kind_s);
    int is_mlp = kind == MODEL_MLP;
    if (epochs < 0) epochs = is_mlp ? 500 : 4000;
    if (lr < 0) lr = is_mlp ? 0.05 : 3e-4;
    if (wd < 0) wd = is_mlp ? 0.01 : 1.0;
    if (batch < 0) batch = is_mlp ? 0 : 64;
    if (every < 0) every = is_mlp ? 10 : 20;
    int torch_rng = strcmp(rng_name, "torch") == 0;
    if (!torch_rng && strcmp(rng_name, "entk") != 0) entk_die(ENTK_EXIT_USAGE, "--rng must be entk or torch, not '%s'", rng_name);
    if (argc - optind > 1) entk_die(ENTK_EXIT_USAGE, "one data stream expected, got %d", argc - optind);
    const char *in = optind < argc ? argv[optind] : "-";

    frame_reader r;
    frame_reader_open(&r, in);
    modadd d;
    modadd_read(&r, &d);
    frame f;
    if (frame_read(&r, &f)) frame_fail(&r, &f, "unexpected frame after the data set");
    /* torch: one global generator, as one script that seeds, splits, builds the model and trains */
    mt19937 torch;
    torch_seed(&torch, (uint64_t)seed);
    if (torch_rng && strcmp(d.rng, "torch") == 0 && d.seed == seed) torch_skip(&torch, (uint64_t)d.torch_draws);
    model m;
    if (init) {
        model_load(&m, init, dt);
        if (m.kind != kind) entk_die(ENTK_EXIT_INPUT, "%s: is not a %s model", init, kind_s);
        if (m.p != d.p) entk_die(ENTK_EXIT_INPUT, "%s: model has p=%d but the data has p=%d", init, m.p, d.p);
    } else {
        int cfg[3] = {is_mlp ? hidden : d_model, heads, d_mlp};
        model_create(&m, kind, d.p, cfg, (uint64_t)seed, torch_rng ? &torch : NULL, dt);
    }
    if (strcmp(model_encoding(&m), d.encoding) != 0)
        entk_die(ENTK_EXIT_INPUT, "%s model needs --encoding %s data, got %s", kind_s, model_encoding(&m), d.encoding);

    /* the training set as the data lists it; minibatches are consecutive runs of a fresh shuffle
     * of that list every epoch */
    int64_t ntrain = d.train_order.shape[0];
    const int64_t *tr = d.train_order.data;
    int64_t *perm = xmalloc((size_t)d.N * sizeof(int64_t)), *pos = xmalloc((size_t)d.N * sizeof(int64_t)),
            *bidx = xmalloc((size_t)d.N * sizeof(int64_t));
    if (ntrain == 0) entk_die(ENTK_EXIT_INPUT, "%s: the training split is empty", r.src);
    int64_t bs = batch == 0 || batch > ntrain ? ntrain : batch;
    rng shuf;
    rng_seed(&shuf, (uint64_t)seed ^ 0x5eed5eedull);

    tensor grads[MODEL_MAX_PARAMS];
    for (int k = 0; k < m.nparams; k++) grads[k] = tensor_new(dt, m.w[k].ndim, m.w[k].shape);
    adamw opt;
    adamw_init(&opt, m.nparams, m.w, lr, wd);

    char a[11][64];
    snprintf(a[0], 64, "model=%s", kind_s);
    snprintf(a[1], 64, "config=%d,%d,%d", is_mlp ? m.hidden : m.d_model, m.n_heads, m.d_mlp);
    snprintf(a[2], 64, "epochs=%ld", epochs);
    snprintf(a[3], 64, "lr=%.17g", lr);
    snprintf(a[4], 64, "wd=%.17g", wd);
    snprintf(a[5], 64, "batch=%ld", batch);
    snprintf(a[6], 64, "seed=%ld", seed);
    snprintf(a[7], 64, "ckpt_every=%ld", every);
    snprintf(a[8], 64, "dtype=%s", dtype_name(dt));
    snprintf(a[9], 64, "init=%s", init ? m.key.hex : "random");
    snprintf(a[10], 64, "rng=%s", rng_name);
    char *args[11];
    for (int i = 0; i < 11; i++) args[i] = a[i];
    frame_header h;
    const char *iname[] = {r.src};
    frame_header_make(&h, "entk-train", 11, args, 1, iname, &r.h.key);
    frame_writer w;
    frame_writer_open(&w, co.output, &h);
    mkdir(ckpt_dir, 0777);

    double t0 = entk_now();
    for (long ep = 0; ep <= epochs; ep++) {
        double loss = 0;
        if (ep > 0) {
            int64_t nb_total = 0;
            const int64_t *order = tr;
            /* torch: DataLoader(shuffle=True) draws even for one full batch; keep the stream in step */
            if (torch_rng || bs < ntrain) {
                if (torch_rng) torch_dataloader_order(&torch, ntrain, pos);
                else rng_permutation(&shuf, ntrain, pos);
                for (int64_t i = 0; i < ntrain; i++) perm[i] = tr[pos[i]];
                order = perm;
            }
            for (int64_t b0 = 0; b0 < ntrain; b0 += bs) {
                int64_t nb = ntrain - b0 < bs ? ntrain - b0 : bs;
                memcpy(bidx, order + b0, (size_t)nb * sizeof(int64_t));
                loss += model_loss_grad(&m, &d.x, d.labels.data, bidx, nb, grads) * (double)nb;
                nb_total += nb;
                adamw_step(&opt, m.w, grads);
            }
            loss /= (double)nb_total;
        }
        if (ep % every == 0 || ep == epochs) {
            char path[4096] = "";
            if (ep % every == 0) {
                snprintf(path, sizeof path, "%s/epoch-%05ld.safetensors", ckpt_dir, ep);
                char eps[32];
                snprintf(eps, sizeof eps, "%ld", ep);
                const char *extra[] = {"epoch", eps};
                model_save(&m, path, extra, 1);
            }
            if (ep == 0) loss = model_loss_grad(&m, &d.x, d.labels.data, tr, ntrain, grads);
            evals e = evaluate(&m, &d);
            meta mt = {0};
            meta_i64(&mt, "epoch", ep);
            meta_f64(&mt, "loss", loss);
            meta_f64(&mt, "train_acc", e.train_acc);
            meta_f64(&mt, "test_acc", e.test_acc);
            meta_str(&mt, "checkpoint", path);
            frame_write_record(&w, "metrics", &mt);
            fflush(w.out.fp);
            if (!entk_quiet)
                entk_log("epoch %ld: loss %.6g train %.1f%% test %.1f%% (%.1fs)", ep, loss, 100 * e.train_acc,
                         100 * e.test_acc, entk_now() - t0);
        }
    }
    frame_writer_close(&w);
    frame_reader_close(&r);
    adamw_free(&opt);
    for (int k = 0; k < m.nparams; k++) tensor_free(&grads[k]);
    model_free(&m);
    modadd_free(&d);
    free(perm); free(pos); free(bidx);
    return 0;
}
