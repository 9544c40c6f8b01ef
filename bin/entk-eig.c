/* entk-eig: top-k eigenpairs of a Gram stream. */
#include "core/cli.h"
#include "ntk/eig.h"
#include "core/err.h"
#include "core/frame.h"
#include "ntk/gram.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *help =
    "Usage: entk-eig [--top K] [--ridge R] [--dtype f32|f64] [--solver auto|full] [GRAM|-]\n"
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
    "Example (a Transformer's W_U eNTK has rank at most d_model = 64: auto takes the low-rank path):\n"
    "  entk-modadd -p 29 --encoding tokens --train-frac 0.5 -o data.frames\n"
    "  entk-train --model transformer --epochs 40 --ckpt-every 40 -o metrics.frames data.frames\n"
    "  entk-jacobian --params W_U -m ckpt/epoch-00040.safetensors data.frames | entk-gram --reduce mean -o K.frames\n"
    "  entk-eig --top 40 -o eig.frames K.frames                    # logs (low-rank r=64)\n"
    "  entk-eig --top 40 --solver full -o eig-full.frames K.frames # logs (full)\n"
    "  entk-show --name eigenvalues --values eig.frames | cut -f1-3\n"
    "  entk-show --name eigenvalues --fields solver,residual eig.frames eig-full.frames\n";

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
    enum { O_TOP = OPT_FIRST_CUSTOM, O_RIDGE, O_SOLVER };
    static struct option lo[] = {CLI_COMMON_LONGOPTS, {"top", required_argument, 0, O_TOP},
                                 {"ridge", required_argument, 0, O_RIDGE}, {"dtype", required_argument, 0, OPT_DTYPE},
                                 {"solver", required_argument, 0, O_SOLVER}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
        if (cli_common_opt(c, &co, help)) continue;
        switch (c) {
        case O_TOP: top = cli_long("--top", optarg, 1, 1L << 30); break;
        case O_RIDGE: ridge = cli_double("--ridge", optarg); break;
        case OPT_DTYPE: dt = dtype_float_option(optarg); break;
        case O_SOLVER:
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
    if (argc - optind > 1) entk_die(ENTK_EXIT_USAGE, "one Gram stream expected, got %d", argc - optind);
    frame_reader r;
    frame_reader_open_streams(&r, optind < argc ? argv[optind] : "-");
    frame_writer w = {0};
    /* several Gram streams (one per checkpoint, say) give as many eigenpair streams */
    do {
        eig_stream(&r, &w, co.output, top, ridge, dt, solver);
    } while (frame_reader_next_stream(&r));
    frame_writer_close(&w);
    frame_reader_close(&r);
    return 0;
}
