/* entk-eig: top-k eigenpairs of a Gram stream. */
#include "core/cli.h"
#include "ntk/eig.h"
#include "core/err.h"
#include "core/frame.h"
#include "ntk/gram.h"
#include "ntk/pca.h"
#include "ntk/score.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *help =
    "Usage: entk-eig [--top K] [--ridge R] [--dtype f32|f64] [--solver auto|full] [GRAM|-]\n"
    "       entk-eig --pca [--top K] [ACTIVATIONS|-]\n"
    "Top-K eigenpairs of the symmetric K of an entk-gram stream after adding R * mean(diag K) to the\n"
    "diagonal; descending order; each eigenvector's largest entry positive.\n"
    "Writes tensor frames eigenvalues [K] and eigenvectors [K, N] (row i belongs to eigenvalue i), with\n"
    "meta solver (what produced them) and residual, the worst ||K v - lambda v|| / ||K||_F, also logged.\n"
    "  --top K        number of eigenpairs (default 200, at most N)\n"
    "  --ridge R      relative ridge (default 1e-8)\n"
    "  --dtype D      solve precision (default: K's dtype)\n"
    "  --solver S     auto (default): when pivoted Cholesky finds K = F^T F of rank r with K <= r <= N/4,\n"
    "                 the eigenpairs come from the thin SVD of F (solver \"pivchol-svd r=R\"), kept only if\n"
    "                 ||K - F^T F||_F and the residuals are at rounding level; otherwise, and with full,\n"
    "                 LAPACK syevr on all of K (solver \"syevr\"). Both agree to rounding.\n"
    "A Gram written as its factor (entk-gram --factor: frame K_factor F [r, N], K = F^T F) is solved by\n"
    "the thin SVD of F (solver \"factor-svd r=R\"), or, with --solver full or --top above r, as K.\n"
    "Several Gram streams give as many eigenpair streams.\n"
    "  --pca          instead: the top K (default 25) principal components of activations as\n"
    "                 entk-lmforward --outputs resid --positions last writes them, per layer: a scores\n"
    "                 stream per layer (README, Scoring): scores [K, N] (each window's PC score, meta\n"
    "                 method pca, layer, model, windows, values = explained variances), components\n"
    "                 [K, D], explained_variance [K] (meta ratio, total), mean [D]\n"
    "Example (a Transformer's W_U eNTK has rank at most d_model = 64: auto takes the low-rank path):\n"
    "  entk-modadd -p 29 --encoding tokens --train-frac 0.5 -o data.frames\n"
    "  entk-train --model transformer --epochs 40 --ckpt-every 40 -o metrics.frames data.frames\n"
    "  entk-jacobian --params W_U -m ckpt/epoch-00040.safetensors data.frames | entk-gram --reduce mean -o K.frames\n"
    "  entk-eig --top 40 -o eig.frames K.frames                    # logs (low-rank r=64)\n"
    "  entk-eig --top 40 --solver full -o eig-full.frames K.frames # logs (full)\n"
    "  entk-show --name eigenvalues --values eig.frames | cut -f1-3\n"
    "  entk-show --name eigenvalues --fields solver,residual eig.frames eig-full.frames\n"
    "Example (PCA of stories260K's residual stream after block 2, at the last token of each window):\n"
    "  entk-lmforward -m stories260K.bin --outputs resid --positions last --layers 2 windows.frames \\\n"
    "    | entk-eig --pca --top 25 -o pca.frames && entk-show --name explained_variance --values pca.frames\n";

/* --pca: one scores stream per layer of each activation stream (see pca.h). */
static void pca_streams(frame_reader *r, frame_writer *w, const char *output, long top, int top_given) {
    do {
        pca_acts a;
        if (!pca_acts_read(r, "resid", &a)) entk_die(ENTK_EXIT_INPUT, "%s: no 'resid' frames (entk-lmforward --outputs resid)", r->src);
        for (int l = 0; l < a.nlayers; l++) {
            int64_t N = a.X[l].shape[0], D = a.X[l].shape[1], lim = N < D ? N : D;
            if (N < 2) entk_die(ENTK_EXIT_INPUT, "%s: PCA needs at least 2 windows, got %lld", r->src, (long long)N);
            if (top > lim)
                entk_die(top_given ? ENTK_EXIT_USAGE : ENTK_EXIT_INPUT, "--top %ld exceeds min(windows %lld, width %lld) of layer %lld in %s",
                         top, (long long)N, (long long)D, (long long)a.layer[l], r->src);
            char a0[32], a1[32];
            snprintf(a0, sizeof a0, "top=%ld", top);
            snprintf(a1, sizeof a1, "layer=%lld", (long long)a.layer[l]);
            char *args[] = {"pca", a0, a1};
            const char *iname[] = {r->src};
            frame_header h;
            frame_header_make(&h, "entk-eig", 3, args, 1, iname, &r->h.key);
            double t0 = entk_now();
            pca_result p;
            pca_top(&a.X[l], top, &p);
            double cum = 0;
            for (int64_t j = 0; j < top; j++) cum += p.ratio[j];
            entk_log("pca: layer %lld, %lld windows x %lld in %.3fs: top %ld explain %.1f%% of the variance", (long long)a.layer[l],
                     (long long)N, (long long)D, entk_now() - t0, top, 100 * cum);
            frame_writer_stream(w, output, &h);
            score_set s = {.method = "pca", .values_are = "variance", .layer = a.layer[l], .scores = p.scores, .values = p.variance};
            snprintf(s.model, sizeof s.model, "%s", a.model);
            snprintf(s.windows, sizeof s.windows, "%s", a.windows);
            scores_write(w, &s, NULL);
            frame_write_tensor(w, "components", &p.components, NULL);
            tensor ev = tensor_1d(DT_F64, top);
            memcpy(ev.data, p.variance, (size_t)top * sizeof(double));
            meta me = {0};
            meta_f64s(&me, "ratio", p.ratio, top);
            meta_f64(&me, "total", p.total);
            frame_write_tensor(w, "explained_variance", &ev, &me);
            frame_write_tensor(w, "mean", &p.mean, NULL);
            tensor_free(&ev);
            pca_free(&p);
        }
        pca_acts_free(&a);
    } while (frame_reader_next_stream(r));
}

/* One Gram stream in, one eigenpair stream out. */
static void eig_stream(frame_reader *r, frame_writer *w, const char *output, long top, double ridge, dtype dt,
                       eig_solver solver) {
    frame f;
    if (!frame_read(r, &f)) frame_fail(r, NULL, "no Gram in the stream");
    char red[16] = "", params[512] = "";
    meta_get_str(&f.meta, "reduce", red, sizeof red);
    meta_get_str(&f.meta, "params", params, sizeof params);
    /* K itself, or its factor F [r, N] (K = F^T F) from entk-gram --factor */
    int factored;
    tensor K = gram_take(r, &f, dt, &factored);
    int64_t n = K.shape[factored ? 1 : 0];
    if (top > n) entk_die(ENTK_EXIT_USAGE, "--top %ld exceeds the Gram size %lld", top, (long long)n);
    if (frame_read(r, &f)) frame_fail(r, &f, "unexpected frame after the Gram");

    char a[4][64];
    snprintf(a[0], 64, "top=%ld", top);
    snprintf(a[1], 64, "ridge=%.17g", ridge);
    snprintf(a[2], 64, "dtype=%s", dtype_name(K.dt));
    snprintf(a[3], 64, "solver=full");
    char *args[] = {a[0], a[1], a[2], a[3]};
    const char *iname[] = {r->src};
    frame_header h;
    /* solver=full only when asked for: the default keeps the key it had before there was a choice */
    frame_header_make(&h, "entk-eig", solver == EIG_FULL ? 4 : 3, args, 1, iname, &r->h.key);
    double t0 = entk_now();
    eig_result e;
    if (factored && solver == EIG_FULL) {
        tensor whole = eig_unfactor(&K);
        tensor_free(&K);
        K = whole;
        factored = 0;
    }
    if (factored) eig_top_factor(&K, top, ridge, &e);
    else eig_top(&K, top, ridge, solver, &e);
    entk_log("eig: top %ld of %lld in %.3fs (%s), lambda_1 = %.6g, worst residual %.2e", top, (long long)e.n, entk_now() - t0,
             e.path, tensor_get(&e.values, 0), e.residual);
    frame_writer_stream(w, output, &h);
    meta mt = {0};
    meta_str(&mt, "reduce", red);
    meta_str(&mt, "params", params);
    meta_f64(&mt, "ridge", e.ridge_abs);
    meta_f64(&mt, "residual", e.residual);
    meta_str(&mt, "solver", e.solver);
    frame_write_tensor(w, "eigenvalues", &e.values, &mt);
    frame_write_tensor(w, "eigenvectors", &e.vectors, &mt);
    eig_free(&e);
    tensor_free(&K);
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    cli_common co = {0};
    long top = 200;
    double ridge = 1e-8;
    dtype dt = DT_NONE;
    eig_solver solver = EIG_AUTO;
    int pca = 0, top_given = 0, eig_opts = 0;
    enum { O_TOP = OPT_FIRST_CUSTOM, O_RIDGE, O_SOLVER, O_PCA };
    static struct option lo[] = {CLI_COMMON_LONGOPTS, {"top", required_argument, 0, O_TOP},
                                 {"ridge", required_argument, 0, O_RIDGE}, {"dtype", required_argument, 0, OPT_DTYPE},
                                 {"solver", required_argument, 0, O_SOLVER}, {"pca", no_argument, 0, O_PCA}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
        if (cli_common_opt(c, &co, help)) continue;
        switch (c) {
        case O_TOP: top = cli_long("--top", optarg, 1, 1L << 30); top_given = 1; break;
        case O_PCA: pca = 1; break;
        case O_RIDGE: ridge = cli_double("--ridge", optarg); eig_opts = 1; break;
        case OPT_DTYPE: dt = dtype_float_option(optarg); eig_opts = 1; break;
        case O_SOLVER:
            eig_opts = 1;
            if (strcmp(optarg, "auto") == 0) solver = EIG_AUTO;
            else if (strcmp(optarg, "full") == 0) solver = EIG_FULL;
            else entk_die(ENTK_EXIT_USAGE, "--solver must be auto or full, not '%s'", optarg);
            break;
        default: cli_bad_option(argv);
        }
    }
    if (ridge < 0) entk_die(ENTK_EXIT_USAGE, "--ridge must be >= 0");
    /* One OpenBLAS thread unless OPENBLAS_NUM_THREADS says otherwise. OpenBLAS threads wait for
     * each other spinning, so while another process kept the other core of this 2-core machine
     * busy, syevr on an 841 x 841 Gram took 0.59 s (median) with 2 threads against 0.16 s with 1;
     * with a free core 2 threads gain 1.5x (0.10 s), and the low-rank path gains nothing either
     * way (0.02-0.03 s). */
    if (!getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(1);
    if (argc - optind > 1) entk_die(ENTK_EXIT_USAGE, "one input stream expected, got %d", argc - optind);
    if (pca && eig_opts) entk_die(ENTK_EXIT_USAGE, "--pca takes no --ridge, --dtype or --solver");
    frame_reader r;
    frame_reader_open(&r, optind < argc ? argv[optind] : "-");
    frame_writer w = {0};
    if (pca) {
        pca_streams(&r, &w, co.output, top_given ? top : 25, top_given);
        frame_writer_close(&w);
        frame_reader_close(&r);
        return 0;
    }
    /* several Gram streams (one per checkpoint, say) give as many eigenpair streams */
    do {
        eig_stream(&r, &w, co.output, top, ridge, dt, solver);
    } while (frame_reader_next_stream(&r));
    frame_writer_close(&w);
    frame_reader_close(&r);
    return 0;
}
