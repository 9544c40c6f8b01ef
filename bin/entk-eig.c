/* entk-eig: top-k eigenpairs of a Gram stream, or (--lanczos) of a language model's Setting 3 eNTK. */
#include "core/blasenv.h"
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

static const char *usage =
    "Usage: entk-eig [--top K] [--ridge R] [--dtype f32|f64] [--solver auto|full] [GRAM|-]\n"
    "       entk-eig --pca [--top K] [ACTIVATIONS|-]\n"
    "       entk-eig --lanczos -m MODEL [--top 25] [--steps 50] [--seed S] [--converge] [--tol X] [LINEAR|-]\n"
    "Top-K eigenpairs of the symmetric K of an entk-gram stream after adding R * mean(diag K) to the\n"
    "diagonal; descending order; each eigenvector's largest entry positive.\n"
    "Writes tensor frames eigenvalues [K] and eigenvectors [K, N] (row i belongs to eigenvalue i), with\n"
    "meta solver (what produced them) and residual, the worst ||K v - lambda v|| / ||K||_F, also logged.\n"
    "A Gram written as its factor (entk-gram --factor: frame K_factor F [r, N], K = F^T F) is solved by\n"
    "the thin SVD of F (solver \"factor-svd r=R\"), or, with --solver full or --top above r, as K.\n"
    "Several Gram streams give as many eigenpair streams.\n"
    "\n"
    "--lanczos: the top eigenpairs of a language model's Setting 3 eNTK K~ = S^1/2 J J^T S^1/2 (S = U^T U\n"
    "of the output head) from the linearisation entk-jacobian writes (one stream per block), by Lanczos\n"
    "with full re-orthogonalisation on J^T S J, never forming J: each product is one JVP and one VJP per\n"
    "chunk of windows (README \"Setting 3\"). Writes record lanczos (provenance, work done),\n"
    "eigenvalues [K], residuals [K] (||A v - theta v||), residuals_w [K] (the bound it implies on\n"
    "||K~ w - theta w||), converged [K] (u8: residual <= tol * theta_1), one frame eigenvector [N, D]\n"
    "per pair, and scores [K, N]: each eigenvector's rank-1 per-window score u1 sigma1, for\n"
    "entk-labels (README, Scoring).\n"
    "Products are cached by chunk: a killed run started again redoes only the chunks that were in\n"
    "flight, and processes sharing the cache directory split the chunks of each product between them\n"
    "and all end with the same bits (README).\n"
    "\n";

static const char *examples =
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

/* The kinds of run (cli_spec.kind). */
enum { RUN_GRAM = 1, RUN_PCA = 2, RUN_LANCZOS = 4 };

typedef struct {
    int lanczos, pca;
    long top;               /* 0 until resolved: 200 for a Gram, 25 for --pca and --lanczos */
    double ridge;
    int dt, solver;         /* --dtype: index in f32|f64, -1: K's; --solver: eig_solver */
    const char *model;
    long steps, max_products, chunk, threads, mem_mb;
    int converge;
    double tol;             /* 0: by the linearisation's dtype */
    uint64_t seed;
    cli_spec *spec;         /* the options, for the header's canonical args */
    /* what each stream resolves, printed by the derived rows */
    int kdt;                /* K's dtype */
    long layer;
    double tol_used;
} eig_opts;

/* One linearisation stream in, one eigenpair stream out. */
static void lanczos_stream(frame_reader *r, frame_writer *w, lm_model *m, eig_opts *o) {
    lm_linear L;
    lm_linear_read(r, &L);
    if (strcmp(L.model_key.hex, m->key.hex) != 0)
        entk_die(ENTK_EXIT_INPUT, "%s: the linearisation is of model %s, but %s is %s", r->src, L.model_key.hex, o->model, m->key.hex);
    if (L.D != m->dim) entk_die(ENTK_EXIT_INPUT, "%s: D = %d but the model's hidden size is %d", r->src, L.D, m->dim);
    long top = o->top;
    double tol = o->tol_used = o->tol > 0 ? o->tol : L.dt == DT_F32 ? 1e-4 : 1e-10;
    cli_args args = {0};
    cli_args_key(&args, o->spec);
    const char *inames[] = {r->src, o->model};
    entk_key ikeys[] = {r->h.key, m->key};
    frame_header h;
    frame_header_make(&h, "entk-eig", args.argc, args.argv, 2, inames, ikeys);
    lm_entk *op = lm_entk_new(m, L.dt, L.layer, L.param, L.N, L.T, L.x, (int)o->chunk, (size_t)o->mem_mb << 20, (int)o->threads);
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
    frame_writer_stream(w, o->spec->co.output, &h);
    cli_args_free(&args);
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
static void pca_streams(frame_reader *r, frame_writer *w, eig_opts *o) {
    long top = o->top;
    int top_given = cli_find(o->spec, "top")->given;
    do {
        pca_acts a;
        if (!pca_acts_read(r, "resid", &a)) entk_die(ENTK_EXIT_INPUT, "%s: no 'resid' frames (entk-forward --outputs resid)", r->src);
        for (int l = 0; l < a.nlayers; l++) {
            int64_t N = a.X[l].shape[0], D = a.X[l].shape[1], lim = N < D ? N : D;
            if (N < 2) entk_die(ENTK_EXIT_INPUT, "%s: PCA needs at least 2 windows, got %lld", r->src, (long long)N);
            if (top > lim)
                entk_die(top_given ? ENTK_EXIT_USAGE : ENTK_EXIT_INPUT, "--top %ld exceeds min(windows %lld, width %lld) of layer %lld in %s",
                         top, (long long)N, (long long)D, (long long)a.layer[l], r->src);
            o->layer = (long)a.layer[l];
            cli_args args = {0};
            cli_args_key(&args, o->spec);
            const char *iname[] = {r->src};
            frame_header h;
            frame_header_make(&h, "entk-eig", args.argc, args.argv, 1, iname, &r->h.key);
            double t0 = entk_now();
            pca_result p;
            pca_top(&a.X[l], top, &p);
            double cum = 0;
            for (int64_t j = 0; j < top; j++) cum += p.ratio[j];
            entk_log("pca: layer %lld, %lld windows x %lld in %.3fs: top %ld explain %.1f%% of the variance", (long long)a.layer[l],
                     (long long)N, (long long)D, entk_now() - t0, top, 100 * cum);
            frame_writer_stream(w, o->spec->co.output, &h);
            cli_args_free(&args);
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
static void eig_stream(frame_reader *r, frame_writer *w, eig_opts *o) {
    long top = o->top;
    double ridge = o->ridge;
    dtype dt = o->dt < 0 ? DT_NONE : (dtype)o->dt;
    eig_solver solver = (eig_solver)o->solver;
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

    o->kdt = (int)K.dt;
    cli_args args = {0};
    cli_args_key(&args, o->spec);
    const char *iname[] = {r->src};
    frame_header h;
    frame_header_make(&h, "entk-eig", args.argc, args.argv, 1, iname, &content);
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
    frame_writer_stream(w, o->spec->co.output, &h);
    cli_args_free(&args);
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

static void parse_tol(const char *opt, const char *arg, void *dest) {
    double v = cli_double(opt, arg);
    if (!(v > 0 && v < 1)) entk_die(ENTK_EXIT_USAGE, "%s must be in (0, 1), not '%s'", opt, arg);
    *(double *)dest = v;
}

/* A misplaced option (one of another kind of run), as one line. */
static noreturn void misplaced(const cli_opt *mis, unsigned kind) {
    char nm[80];
    cli_opt_name(mis, nm, sizeof nm);
    if (mis->only == RUN_LANCZOS) entk_die(ENTK_EXIT_USAGE, "%s goes with --lanczos", nm);
    if (kind == RUN_PCA) entk_die(ENTK_EXIT_USAGE, "--pca takes no --ridge, --dtype or --solver");
    entk_die(ENTK_EXIT_USAGE, "%s is for Gram streams, not --lanczos", nm);
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    eig_opts o = {.ridge = 1e-8, .dt = -1, .solver = EIG_AUTO, .steps = 50, .mem_mb = 12288};
    cli_opt opts[] = {
        {"pca", 0, CLI_FLAG, &o.pca, NULL, CLI_KEY_VALUE, .only = RUN_PCA,
         .help = "instead: the top K (default 25) principal components of activations as\n"
                 "entk-forward --outputs resid --positions last writes them, per layer: a\n"
                 "scores stream per layer (README, Scoring): scores [K, N] (each window's PC\n"
                 "score, meta method pca, layer, model, windows, values = explained\n"
                 "variances), components [K, D], explained_variance [K] (meta ratio, total),\n"
                 "mean [D]"},
        {"lanczos", 0, CLI_FLAG, &o.lanczos, NULL, CLI_KEY_EQ, .only = RUN_LANCZOS, .help = "instead: a language model's Setting 3 eNTK (above)"},
        {"top", 0, CLI_LONG, &o.top, "K", CLI_KEY_EQ, .min = 1, .max = 1L << 30,
         .help = "number of eigenpairs (default 200, at most N; --pca, --lanczos: 25)"},
        {"layer", 0, CLI_LONG, &o.layer, NULL, CLI_KEY_EQ, .derived = 1, .only = RUN_PCA, .help = "the input's layer"},
        {.kind = CLI_HEADING, .help = "Gram streams:"},
        {"ridge", 0, CLI_DOUBLE, &o.ridge, "R", CLI_KEY_EQ, .only = RUN_GRAM, .help = "relative ridge (default 1e-8)"},
        {"dtype", 0, CLI_CHOICE, &o.dt, "f32|f64", CLI_KEY_VIA, .key_name = "dtype", .only = RUN_GRAM,
         .help = "solve precision (default: K's dtype)"},
        {"dtype", 0, CLI_CHOICE, &o.kdt, DTYPE_CHOICES, CLI_KEY_EQ, .derived = 1, .only = RUN_GRAM, .help = "--dtype or K's"},
        {"blas_threads", 0, CLI_CUSTOM, NULL, NULL, CLI_KEY_EQ, .derived = 1, .show = blasenv_show_threads, .only = RUN_GRAM,
         .help = "OpenBLAS's thread count"},
        /* solver=full only when asked for: the default keeps the key it had before there was a choice */
        {"solver", 0, CLI_CHOICE, &o.solver, "auto|full", CLI_KEY_EQ, .show = cli_show_nonzero, .only = RUN_GRAM,
         .help = "auto (default): when pivoted Cholesky finds K = F^T F of rank r with\n"
                 "K <= r <= N/4, the eigenpairs come from the thin SVD of F (solver\n"
                 "\"pivchol-svd r=R\"), kept only if ||K - F^T F||_F and the residuals are at\n"
                 "rounding level; otherwise, and with full, LAPACK syevr on all of K (solver\n"
                 "\"syevr\"). Both agree to rounding."},
        {.kind = CLI_HEADING, .help = "--lanczos:"},
        {"model", 'm', CLI_STR, &o.model, "MODEL", CLI_INPUT, .only = RUN_LANCZOS,
         .help = "the model of the linearisation (required)"},
        {"steps", 0, CLI_LONG, &o.steps, "M", CLI_KEY_EQ, .only = RUN_LANCZOS, .min = 1, .max = 100000,
         .help = "Krylov dimension: products of the fixed budget (default 50, METHOD.md)"},
        {"seed", 0, CLI_U64, &o.seed, "S", CLI_KEY_EQ, .only = RUN_LANCZOS, .min = 0, .max = 1L << 62,
         .help = "start vector (default 0)"},
        {"converge", 0, CLI_FLAG, &o.converge, NULL, CLI_KEY_EQ, .only = RUN_LANCZOS,
         .help = "go on with thick restarts (a basis of M, the best kept) until the top K\nconverge"},
        {"tol", 0, CLI_CUSTOM, &o.tol, "X", CLI_KEY_VIA, .key_name = "tol", .only = RUN_LANCZOS, .parse = parse_tol,
         .help = "convergence (default 1e-4 in f32, 1e-10 in f64)"},
        {"tol", 0, CLI_DOUBLE, &o.tol_used, NULL, CLI_KEY_EQ, .derived = 1, .only = RUN_LANCZOS,
         .help = "--tol, or the default for the linearisation's dtype"},
        /* Not in the key (as before the tables): with --converge a smaller budget can stop before
         * convergence, so two runs that differ only here share a header key; the records'
         * converged flags and product counts tell them apart. */
        {"max-products", 0, CLI_LONG, &o.max_products, "P", CLI_NOKEY, .only = RUN_LANCZOS, .min = 1, .max = 1000000,
         .help = "with --converge: stop after P products (default 20 M)"},
        {"chunk", 0, CLI_LONG, &o.chunk, "W", CLI_KEY_EQ, .only = RUN_LANCZOS, .min = 1, .max = 1L << 30,
         .help = "windows per chunk (default: about 256 MB of activations each, from the\n"
                 "model's shapes alone, so every machine cuts the same chunks)"},
        /* speed only: the products are the same bits whatever is kept and however many run */
        {"mem", 0, CLI_LONG, &o.mem_mb, "MB", CLI_NOKEY, .only = RUN_LANCZOS, .min = 0, .max = 1L << 30,
         .help = "activations kept between products (default 12288); the other chunks\n"
                 "recompute their forward at every product"},
        {"threads", 0, CLI_LONG, &o.threads, "N", CLI_NOKEY, .only = RUN_LANCZOS, .min = 1, .max = 1024,
         .help = "chunks computed side by side (default: the cores)"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    o.spec = &spec;
    int first = cli_parse(&spec, argc, argv);
    if (o.ridge < 0) entk_die(ENTK_EXIT_USAGE, "--ridge must be >= 0");
    if (o.lanczos && o.pca) entk_die(ENTK_EXIT_USAGE, "--lanczos and --pca exclude each other");
    spec.kind = o.lanczos ? RUN_LANCZOS : o.pca ? RUN_PCA : RUN_GRAM;
    const cli_opt *mis = cli_misplaced(&spec);
    if (mis) misplaced(mis, spec.kind);
    if (!o.top) o.top = spec.kind == RUN_GRAM ? 200 : 25;
    const char *input = first < argc ? argv[first] : "-";
    if (spec.kind == RUN_LANCZOS) {
        if (!o.model) entk_die(ENTK_EXIT_USAGE, "--lanczos needs -m MODEL, the model of the linearisation");
        if (argc - first > 1) entk_die(ENTK_EXIT_USAGE, "one linearisation stream expected, got %d", argc - first);
        if (!lm_is_model(o.model)) entk_die(ENTK_EXIT_INPUT, "%s is not a language model (a Gemma 3 directory or a llama2.c checkpoint)", o.model);
        cache_init(spec.co.cache_dir);
        lm_model *m = lm_load(o.model);
        frame_reader r;
        frame_reader_open_streams(&r, input);
        frame_writer w = {0};
        do {
            lanczos_stream(&r, &w, m, &o);
        } while (frame_reader_next_stream(&r));
        frame_writer_close(&w);
        cache_report();
        frame_reader_close(&r);
        lm_free(m);
        return 0;
    }
    /* One OpenBLAS thread unless OPENBLAS_NUM_THREADS says otherwise. OpenBLAS threads wait for
     * each other spinning, so while another process kept the other core of this 2-core machine
     * busy, syevr on an 841 x 841 Gram took 0.59 s (median) with 2 threads against 0.16 s with 1;
     * with a free core 2 threads gain 1.5x (0.10 s), and the low-rank path gains nothing either
     * way (0.02-0.03 s). */
    if (!getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(1);
    if (argc - first > 1) entk_die(ENTK_EXIT_USAGE, "one input stream expected, got %d", argc - first);
    frame_reader r;
    frame_reader_open_streams(&r, input);
    frame_writer w = {0};
    if (spec.kind == RUN_PCA) {
        pca_streams(&r, &w, &o);
        frame_writer_close(&w);
        frame_reader_close(&r);
        return 0;
    }
    /* several Gram streams (one per checkpoint, say) give as many eigenpair streams */
    do {
        eig_stream(&r, &w, &o);
    } while (frame_reader_next_stream(&r));
    frame_writer_close(&w);
    frame_reader_close(&r);
    return 0;
}
