/* entk-eig: top-k eigenpairs of a Gram stream. */
#include "cli.h"
#include "eig.h"
#include "err.h"
#include "frame.h"
#include <stdio.h>
#include <string.h>

static const char *help =
    "Usage: entk-eig [--top K] [--ridge R] [--dtype f32|f64] [GRAM|-]\n"
    "Top-K eigenpairs of the symmetric K of an entk-gram stream (LAPACK syevr) after adding\n"
    "R * mean(diag K) to the diagonal; descending order; each eigenvector's largest entry positive.\n"
    "Writes tensor frames eigenvalues [K] and eigenvectors [K, N] (row i belongs to eigenvalue i) and\n"
    "logs the worst residual ||K v - lambda v|| / ||K||_F.\n"
    "  --top K        number of eigenpairs (default 200, at most N)\n"
    "  --ridge R      relative ridge (default 1e-8)\n"
    "  --dtype D      solve precision (default: K's dtype)\n"
    "Example:\n"
    "  entk-jacobian -m model.safetensors data.frames | entk-gram | entk-eig --top 200 -o eig.frames\n"
    "  entk-show --name eigenvalues --values eig.frames | head -3\n";

int main(int argc, char **argv) {
    cli_start(argc, argv);
    cli_common co = {0};
    long top = 200;
    double ridge = 1e-8;
    dtype dt = DT_NONE;
    enum { O_TOP = OPT_FIRST_CUSTOM, O_RIDGE };
    static struct option lo[] = {CLI_COMMON_LONGOPTS, {"top", required_argument, 0, O_TOP},
                                 {"ridge", required_argument, 0, O_RIDGE}, {"dtype", required_argument, 0, OPT_DTYPE}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
        if (cli_common_opt(c, &co, help)) continue;
        switch (c) {
        case O_TOP: top = cli_long("--top", optarg, 1, 1L << 30); break;
        case O_RIDGE: ridge = cli_double("--ridge", optarg); break;
        case OPT_DTYPE: dt = dtype_float_option(optarg); break;
        default: cli_bad_option(argv);
        }
    }
    if (ridge < 0) entk_die(ENTK_EXIT_USAGE, "--ridge must be >= 0");
    if (argc - optind > 1) entk_die(ENTK_EXIT_USAGE, "one Gram stream expected, got %d", argc - optind);
    frame_reader r;
    frame_reader_open(&r, optind < argc ? argv[optind] : "-");
    frame f;
    frame_read_tensor(&r, &f, "K");
    frame_expect_shape(&r, &f, 2, (int64_t[]){f.t.shape[0], f.t.shape[0]});
    if (!dtype_is_float(f.t.dt)) frame_fail(&r, &f, "K must be f32 or f64, not %s", dtype_name(f.t.dt));
    if (top > f.t.shape[0]) entk_die(ENTK_EXIT_USAGE, "--top %ld exceeds the Gram size %lld", top, (long long)f.t.shape[0]);
    char red[16] = "", params[512] = "";
    meta_get_str(&f.meta, "reduce", red, sizeof red);
    meta_get_str(&f.meta, "params", params, sizeof params);
    tensor K = frame_take(&r, &f, dt == DT_NONE ? f.t.dt : dt);
    if (frame_read(&r, &f)) frame_fail(&r, &f, "unexpected frame after K");

    char a[3][64];
    snprintf(a[0], 64, "top=%ld", top);
    snprintf(a[1], 64, "ridge=%.17g", ridge);
    snprintf(a[2], 64, "dtype=%s", dtype_name(K.dt));
    char *args[] = {a[0], a[1], a[2]};
    const char *iname[] = {r.src};
    frame_header h;
    frame_header_make(&h, "entk-eig", 3, args, 1, iname, &r.h.key);
    double t0 = entk_now();
    eig_result e;
    eig_top(&K, top, ridge, &e);
    entk_log("eig: top %ld of %lld in %.2fs, lambda_1 = %.6g, worst residual %.2e", top, (long long)e.n, entk_now() - t0,
             tensor_get(&e.values, 0), e.residual);
    frame_writer w;
    frame_writer_open(&w, co.output, &h);
    meta mt = {0};
    meta_str(&mt, "reduce", red);
    meta_str(&mt, "params", params);
    meta_f64(&mt, "ridge", e.ridge_abs);
    meta_f64(&mt, "residual", e.residual);
    frame_write_tensor(&w, "eigenvalues", &e.values, &mt);
    frame_write_tensor(&w, "eigenvectors", &e.vectors, &mt);
    frame_writer_close(&w);
    frame_reader_close(&r);
    eig_free(&e);
    tensor_free(&K);
    return 0;
}
