/* entk-eig: top-k eigenpairs of a Gram stream, or (--lanczos) of a language model's Setting 3 eNTK. */
#include "core/cache.h"
#include "core/cli.h"
#include "ntk/eig.h"
#include "core/err.h"
#include "core/frame.h"
#include "ntk/gram.h"
#include "lm/linearize.h"
#include "lm/load.h"
#include "lm/spectrum.h"
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
    "\n"
    "       entk-eig --lanczos -m MODEL [--top 25] [--steps 50] [--seed S] [--converge] [--tol X] [LINEAR|-]\n"
    "The top eigenpairs of a language model's Setting 3 eNTK K~ = S^1/2 J J^T S^1/2 (S = U^T U of the output\n"
    "head) from the linearisation entk-jacobian writes (one stream per block), by Lanczos with full\n"
    "re-orthogonalisation on J^T S J, never forming J: each product is one JVP and one VJP per chunk of\n"
    "windows (README \"Setting 3\"). Writes record lanczos (provenance, work done), eigenvalues [K],\n"
    "residuals [K] (||A v - theta v||), residuals_w [K] (the bound it implies on ||K~ w - theta w||),\n"
    "converged [K] (u8: residual <= tol * theta_1), one frame eigenvector [N, D] per pair, and scores\n"
    "[K, N]: each eigenvector's rank-1 per-window score u1 sigma1, for entk-labels (README, Scoring).\n"
    "  --steps M      Krylov dimension: products of the fixed budget (default 50, METHOD.md)\n"
    "  --converge     go on with thick restarts (a basis of M, the best kept) until the top K converge\n"
    "  --tol X        convergence (default 1e-4 in f32, 1e-10 in f64)\n"
    "  --max-products P  with --converge: stop after P products (default 20 M)\n"
    "  --seed S       start vector (default 0)\n"
    "  --chunk W      windows per chunk (default: about 256 MB of activations each, from the model's\n"
    "                 shapes alone, so every machine cuts the same chunks)\n"
    "  --mem MB       activations kept between products (default 12288); the other chunks recompute\n"
    "                 their forward at every product\n"
    "  --threads N    chunks computed side by side (default: the cores)\n"
    "Products are cached by chunk: a killed run started again redoes only the chunks that were in\n"
    "flight, and processes sharing the cache directory split the chunks of each product between them\n"
    "and all end with the same bits (README).\n"
    "  --pca          instead: the top K (default 25) principal components of activations as\n"
    "                 entk-forward --outputs resid --positions last writes them, per layer: a scores\n"
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
    "  entk-jacobian -m stories260K.bin --layer 4 windows.frames | entk-eig --lanczos -m stories260K.bin \\\n"
    "      | entk-show --name eigenvalues --values\n"
    "Example (PCA of stories260K's residual stream after block 2, at the last token of each window):\n"
    "  entk-forward -m stories260K.bin --outputs resid --positions last --layers 2 windows.frames \\\n"
    "    | entk-eig --pca --top 25 -o pca.frames && entk-show --name explained_variance --values pca.frames\n";

typedef struct {
    const char *model;
    long top, steps, max_products, chunk, threads;
    int converge, top_given;
    double tol;
    uint64_t seed;
    size_t mem;
} lanczos_cli;

/* One linearisation stream in, one eigenpair stream out. */
static void lanczos_stream(frame_reader *r, frame_writer *w, const char *output, lm_model *m, const lanczos_cli *o) {
    lm_linear L;
    lm_linear_read(r, &L);
    if (strcmp(L.model_key.hex, m->key.hex) != 0)
        entk_die(ENTK_EXIT_INPUT, "%s: the linearisation is of model %s, but %s is %s", r->src, L.model_key.hex, o->model, m->key.hex);
    if (L.D != m->dim) entk_die(ENTK_EXIT_INPUT, "%s: D = %d but the model's hidden size is %d", r->src, L.D, m->dim);
    long top = o->top_given ? o->top : 25;
    double tol = o->tol > 0 ? o->tol : L.dt == DT_F32 ? 1e-4 : 1e-10;
    char a[7][64];
    snprintf(a[0], 64, "lanczos=1");
    snprintf(a[1], 64, "top=%ld", top);
    snprintf(a[2], 64, "steps=%ld", o->steps);
    snprintf(a[3], 64, "seed=%llu", (unsigned long long)o->seed);
    snprintf(a[4], 64, "converge=%d", o->converge);
    snprintf(a[5], 64, "tol=%.17g", tol);
    snprintf(a[6], 64, "chunk=%ld", o->chunk);
    char *args[] = {a[0], a[1], a[2], a[3], a[4], a[5], a[6]};
    const char *inames[] = {r->src, o->model};
    entk_key ikeys[] = {r->h.key, m->key};
    frame_header h;
    frame_header_make(&h, "entk-eig", 7, args, 2, inames, ikeys);
    lm_entk *op = lm_entk_new(m, L.dt, L.layer, L.param, L.N, L.T, L.x, (int)o->chunk, o->mem, (int)o->threads);
    if (top > op->P) entk_die(ENTK_EXIT_USAGE, "--top %ld exceeds the weight's %lld parameters", top, (long long)op->P);
    lanczos_opts lo = {.k = (int)top, .steps = (int)o->steps, .restart = o->converge, .max_products = (int)o->max_products,
                       .tol = tol, .seed = o->seed};
    if (lo.steps < lo.k) lo.steps = lo.k;
    lm_spectrum s;
    lm_spectrum_run(op, &lo, &s);
    long computed, cached;
    double flops, seconds;
    lm_entk_counts(op, &computed, &cached, &flops, &seconds);
    int nconv = 0;
    for (int i = 0; i < s.k; i++) nconv += s.converged[i];
    entk_log("lanczos: block %d %s: theta_1 = %.6g, %d of %d converged (tol %.1e), %d products in %.1f s; %ld chunks computed, %ld from the cache, %.2f GFLOP/s",
             L.layer, lm_param_name(L.param), s.values[0], nconv, s.k, tol, s.products, s.seconds, computed, cached,
             seconds > 0 ? flops / seconds * 1e-9 : 0.0);
    frame_writer_stream(w, output, &h);
    meta mt = {0};
    meta_str(&mt, "model_key", m->key.hex);
    meta_str(&mt, "windows_key", L.windows_key.hex);
    meta_str(&mt, "linear_key", r->h.key.hex);
    meta_i64(&mt, "layer", L.layer);
    meta_str(&mt, "param", lm_param_name(L.param));
    meta_str(&mt, "dtype", dtype_name(L.dt));
    meta_i64(&mt, "N", L.N);
    meta_i64(&mt, "T", L.T);
    meta_i64(&mt, "D", L.D);
    meta_i64(&mt, "steps", lo.steps);
    meta_i64(&mt, "k", s.k);
    meta_i64(&mt, "seed", (int64_t)o->seed);
    meta_i64(&mt, "converge", o->converge);
    meta_f64(&mt, "tol", tol);
    meta_i64(&mt, "products", s.products);
    meta_i64(&mt, "cycles", s.cycles);
    meta_i64(&mt, "converged", nconv);
    meta_i64(&mt, "chunk", op->chunk);
    meta_i64(&mt, "chunks", op->nchunks);
    frame_write_record(w, "lanczos", &mt);
    meta ms = {0};
    meta_str(&ms, "solver", "lanczos");
    meta_i64(&ms, "layer", L.layer);
    meta_str(&ms, "param", lm_param_name(L.param));
    tensor tv = {.dt = DT_F64, .ndim = 1, .shape = {s.k}, .data = s.values};
    tensor tb = {.dt = DT_F64, .ndim = 1, .shape = {s.k}, .data = s.bounds};
    tensor tw = {.dt = DT_F64, .ndim = 1, .shape = {s.k}, .data = s.bounds_w};
    tensor tc = {.dt = DT_U8, .ndim = 1, .shape = {s.k}, .data = s.converged};
    frame_write_tensor(w, "eigenvalues", &tv, &ms);
    frame_write_tensor(w, "residuals", &tb, &ms);
    frame_write_tensor(w, "residuals_w", &tw, &ms);
    frame_write_tensor(w, "converged", &tc, &ms);
    for (int i = 0; i < s.k; i++) {
        meta me = {0};
        meta_i64(&me, "index", i);
        meta_f64(&me, "eigenvalue", s.values[i]);
        meta_f64(&me, "residual", s.bounds[i]);
        meta_i64(&me, "converged", s.converged[i]);
        tensor te = {.dt = DT_F64, .ndim = 2, .shape = {L.N, L.D}, .data = s.vectors + (size_t)i * L.N * L.D};
        frame_write_tensor(w, "eigenvector", &te, &me);
    }
    /* each eigenvector's per-window score (its rank-1 part), as entk-labels reads scores */
    score_set ss = {.method = "entk", .values_are = "eigenvalue", .layer = L.layer, .values = s.values};
    snprintf(ss.model, sizeof ss.model, "%s", m->key.hex);
    snprintf(ss.windows, sizeof ss.windows, "%s", L.windows_key.hex);
    ss.scores = tensor_2d(DT_F64, s.k, L.N);
    for (int i = 0; i < s.k; i++)
        score_rank1(s.vectors + (size_t)i * L.N * L.D, L.N, L.D, (double *)ss.scores.data + (size_t)i * L.N);
    scores_write(w, &ss, NULL);
    tensor_free(&ss.scores);
    lm_spectrum_free(&s);
    lm_entk_free(op);
    free(L.x);
}

/* --pca: one scores stream per layer of each activation stream (see pca.h). */
static void pca_streams(frame_reader *r, frame_writer *w, const char *output, long top, int top_given) {
    do {
        pca_acts a;
        if (!pca_acts_read(r, "resid", &a)) entk_die(ENTK_EXIT_INPUT, "%s: no 'resid' frames (entk-forward --outputs resid)", r->src);
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
    entk_key content = frame_reader_content(r); /* the eigenpairs follow what the stream holds */

    char a[5][64];
    snprintf(a[0], 64, "top=%ld", top);
    snprintf(a[1], 64, "ridge=%.17g", ridge);
    snprintf(a[2], 64, "dtype=%s", dtype_name(K.dt));
    /* the solvers' last bits depend on OpenBLAS's thread count (one unless OPENBLAS_NUM_THREADS
     * says otherwise): the key names it */
    snprintf(a[3], 64, "blas_threads=%d", openblas_get_num_threads());
    snprintf(a[4], 64, "solver=full");
    char *args[] = {a[0], a[1], a[2], a[3], a[4]};
    const char *iname[] = {r->src};
    frame_header h;
    /* solver=full only when asked for: the default keeps the key it had before there was a choice */
    frame_header_make(&h, "entk-eig", solver == EIG_FULL ? 5 : 4, args, 1, iname, &content);
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
    int lanczos = 0, pca = 0, top_given = 0, eig_opts = 0;
    lanczos_cli lc = {.steps = 50, .mem = (size_t)12288 << 20};
    enum { O_TOP = OPT_FIRST_CUSTOM, O_RIDGE, O_SOLVER, O_LANCZOS, O_STEPS, O_SEED, O_CONVERGE, O_TOL, O_MAXP, O_CHUNK, O_MEM, O_THREADS, O_PCA };
    static struct option lo[] = {CLI_COMMON_LONGOPTS, {"top", required_argument, 0, O_TOP},
                                 {"ridge", required_argument, 0, O_RIDGE}, {"dtype", required_argument, 0, OPT_DTYPE},
                                 {"solver", required_argument, 0, O_SOLVER}, {"lanczos", no_argument, 0, O_LANCZOS},
                                 {"model", required_argument, 0, 'm'}, {"steps", required_argument, 0, O_STEPS},
                                 {"seed", required_argument, 0, O_SEED}, {"converge", no_argument, 0, O_CONVERGE},
                                 {"tol", required_argument, 0, O_TOL}, {"max-products", required_argument, 0, O_MAXP},
                                 {"chunk", required_argument, 0, O_CHUNK}, {"mem", required_argument, 0, O_MEM},
                                 {"threads", required_argument, 0, O_THREADS}, {"pca", no_argument, 0, O_PCA}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:qhm:", lo, NULL)) != -1) {
        if (cli_common_opt(c, &co, help)) continue;
        switch (c) {
        case O_TOP: top = lc.top = cli_long("--top", optarg, 1, 1L << 30); lc.top_given = top_given = 1; break;
        case O_PCA: pca = 1; break;
        case O_LANCZOS: lanczos = 1; break;
        case 'm': lc.model = optarg; break;
        case O_STEPS: lc.steps = cli_long("--steps", optarg, 1, 100000); break;
        case O_SEED: lc.seed = (uint64_t)cli_long("--seed", optarg, 0, 1L << 62); break;
        case O_CONVERGE: lc.converge = 1; break;
        case O_TOL:
            lc.tol = cli_double("--tol", optarg);
            if (!(lc.tol > 0 && lc.tol < 1)) entk_die(ENTK_EXIT_USAGE, "--tol must be in (0, 1), not '%s'", optarg);
            break;
        case O_MAXP: lc.max_products = cli_long("--max-products", optarg, 1, 1000000); break;
        case O_CHUNK: lc.chunk = cli_long("--chunk", optarg, 1, 1L << 30); break;
        case O_MEM: lc.mem = (size_t)cli_long("--mem", optarg, 0, 1L << 30) << 20; break;
        case O_THREADS: lc.threads = cli_long("--threads", optarg, 1, 1024); break;
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
    if (lanczos && pca) entk_die(ENTK_EXIT_USAGE, "--lanczos and --pca exclude each other");
    if (lanczos) {
        if (!lc.model) entk_die(ENTK_EXIT_USAGE, "--lanczos needs -m MODEL, the model of the linearisation");
        if (argc - optind > 1) entk_die(ENTK_EXIT_USAGE, "one linearisation stream expected, got %d", argc - optind);
        if (!lm_is_model(lc.model)) entk_die(ENTK_EXIT_INPUT, "%s is not a language model (a Gemma 3 directory or a llama2.c checkpoint)", lc.model);
        cache_init(co.cache_dir);
        lm_model *m = lm_load(lc.model);
        frame_reader r;
        frame_reader_open_streams(&r, optind < argc ? argv[optind] : "-");
        frame_writer w = {0};
        do {
            lanczos_stream(&r, &w, co.output, m, &lc);
        } while (frame_reader_next_stream(&r));
        frame_writer_close(&w);
        cache_report();
        frame_reader_close(&r);
        lm_free(m);
        return 0;
    }
    if (lc.model || lc.converge || lc.chunk) entk_die(ENTK_EXIT_USAGE, "-m, --converge and --chunk go with --lanczos");
    /* One OpenBLAS thread unless OPENBLAS_NUM_THREADS says otherwise. OpenBLAS threads wait for
     * each other spinning, so while another process kept the other core of this 2-core machine
     * busy, syevr on an 841 x 841 Gram took 0.59 s (median) with 2 threads against 0.16 s with 1;
     * with a free core 2 threads gain 1.5x (0.10 s), and the low-rank path gains nothing either
     * way (0.02-0.03 s). */
    if (!getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(1);
    if (argc - optind > 1) entk_die(ENTK_EXIT_USAGE, "one input stream expected, got %d", argc - optind);
    if (pca && eig_opts) entk_die(ENTK_EXIT_USAGE, "--pca takes no --ridge, --dtype or --solver");
    frame_reader r;
    frame_reader_open_streams(&r, optind < argc ? argv[optind] : "-");
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
