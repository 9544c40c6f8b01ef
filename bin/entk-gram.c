/* entk-gram: eNTK Gram matrices from Jacobian blocks, and exact sums of partial Grams. */
#include "core/cache.h"
#include "core/cli.h"
#include "ntk/eig.h"
#include "core/err.h"
#include "core/frame.h"
#include "ntk/gram.h"
#include "core/linalg.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *help =
    "Usage: entk-gram [--reduce trace|mean|flat] [--params P1,P2] [--dtype f32|f64] [--factor] [--stats] [JACOBIAN|-]\n"
    "       entk-gram --sum GRAM GRAM...\n"
    "Accumulates the eNTK K = J J^T from an entk-jacobian stream, block by block, reduced over classes\n"
    "(trace: (1/C) sum_c K[n,m,c,c]; mean: (1/C^2) sum_cd K[n,m,c,d]; flat: (N*C)^2, class-major).\n"
    "Writes one tensor frame K. --params keeps only those parameters' blocks (a layerwise eNTK).\n"
    "--sum adds Gram streams of the same reduction and size (partial Grams from separate runs add\n"
    "up to the full one). Results are cached by the key of their input stream.\n"
    "  --reduce R     trace (default), mean or flat\n"
    "  --params LIST  only these parameters (default: every parameter in the stream)\n"
    "  --dtype D      accumulation precision (default: the Jacobian's)\n"
    "  --stats        also write a record 'gram_stats' {flops, seconds} (not cached; for benchmarks)\n"
    "  --factor       write the Gram as its factor 'K_factor' F [r, N], K = F^T F, when it has one:\n"
    "                 exactly, without forming K, when every block is a final linear layer's (the\n"
    "                 logits linear in it: W_U, W2; r = its input width), else when K has numerical\n"
    "                 rank r <= N/4 (checked: ||K - F^T F||_F at rounding level). N/r times smaller,\n"
    "                 and entk-eig solves it by one thin SVD; otherwise K as usual\n"
    "Examples:\n"
    "  entk-jacobian -m model.safetensors data.frames | entk-gram --reduce trace > K.frames\n"
    "  entk-jacobian -m model.safetensors --params W1 data.frames | entk-gram -o K1.frames\n"
    "  entk-jacobian -m model.safetensors --params W2 data.frames | entk-gram -o K2.frames\n"
    "  entk-gram --sum K1.frames K2.frames | entk-eig --top 10 | entk-show\n";

static int in_list(const char *name, char **list, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0) return 1;
    return 0;
}

/* The Gram as frame "K", or as "K_factor" F [r, N] with K = F^T F: the exact factor the
 * accumulation kept (exactF, K NULL), or with factor set and K of low numerical rank its verified
 * factorization (eig.h). Packed into keep (for the cache) and written. */
static void write_K(frame_writer *w, const tensor *K, const tensor *exactF, const char *red, const char *params, int64_t N,
                    int64_t C, int factor, msgpack_sbuffer *keep) {
    meta mt = {0};
    meta_str(&mt, "reduce", red);
    meta_str(&mt, "params", params);
    meta_i64(&mt, "N", N);
    meta_i64(&mt, "C", C);
    tensor F = {0};
    char why[96] = "";
    if (!K) {
        frame_pack_tensor(keep, "K_factor", exactF, &mt);
    } else if (factor && eig_factor(K, &F, why, sizeof why)) {
        frame_pack_tensor(keep, "K_factor", &F, &mt);
        tensor_free(&F);
    } else {
        if (factor) entk_log("gram: written whole, not as a factor: %s", why);
        frame_pack_tensor(keep, "K", K, &mt);
    }
    frame_write_packed(w, keep->data, keep->size, 1);
}

/* K from a "K" or "K_factor" frame, as dtype d. */
static tensor take_K(frame_reader *r, frame *f, dtype d) {
    int factored;
    tensor t = gram_take(r, f, d, &factored);
    if (!factored) return t;
    tensor K = eig_unfactor(&t);
    tensor_free(&t);
    return K;
}

static int sum_main(char **files, int n, cli_common *co) {
    if (n < 1) entk_die(ENTK_EXIT_USAGE, "--sum needs at least one Gram stream");
    tensor acc = {0};
    char red[16] = "", params[1024] = "";
    int64_t N = 0, C = 0;
    entk_key keys[FRAME_MAX_INPUTS];
    const char *names[FRAME_MAX_INPUTS];
    if (n > FRAME_MAX_INPUTS) entk_die(ENTK_EXIT_USAGE, "--sum takes at most %d streams", FRAME_MAX_INPUTS);
    for (int i = 0; i < n; i++) {
        frame_reader r;
        frame_reader_open(&r, files[i]);
        keys[i] = r.h.key;
        names[i] = files[i];
        frame f;
        if (!frame_read(&r, &f)) frame_fail(&r, NULL, "no Gram in the stream");
        tensor t = take_K(&r, &f, DT_F64);
        char rd[16], pl[512];
        int64_t n1, c1;
        if (!meta_get_str(&f.meta, "reduce", rd, sizeof rd) || !meta_get_str(&f.meta, "params", pl, sizeof pl) ||
            !meta_get_i64(&f.meta, "N", &n1) || !meta_get_i64(&f.meta, "C", &c1))
            frame_fail(&r, &f, "K frame lacks reduce/params/N/C metadata");
        if (i == 0) {
            snprintf(red, sizeof red, "%s", rd);
            N = n1;
            C = c1;
            int64_t side = strcmp(rd, "flat") == 0 ? N * C : N;
            if (t.shape[0] != side || t.shape[1] != side)
                frame_fail(&r, &f, "Gram is %lld x %lld, expected %lld x %lld", (long long)t.shape[0], (long long)t.shape[1],
                           (long long)side, (long long)side);
            acc = t;
            snprintf(params, sizeof params, "%s", pl);
        } else {
            if (strcmp(rd, red) != 0) frame_fail(&r, &f, "reduction %s differs from the first stream's %s", rd, red);
            if (n1 != N || c1 != C) frame_fail(&r, &f, "N=%lld C=%lld differ from the first stream's", (long long)n1, (long long)c1);
            if (t.shape[0] != acc.shape[0] || t.shape[1] != acc.shape[1])
                frame_fail(&r, &f, "Gram is %lld x %lld, the first stream's %lld x %lld", (long long)t.shape[0],
                           (long long)t.shape[1], (long long)acc.shape[0], (long long)acc.shape[1]);
            la_axpy(DT_F64, tensor_numel(&t), 1.0, t.data, acc.data);
            tensor_free(&t);
            if (strlen(params) + strlen(pl) + 2 < sizeof params) { strcat(params, ","); strcat(params, pl); }
        }
        if (frame_read(&r, &f)) frame_fail(&r, &f, "unexpected frame after K");
        frame_reader_close(&r);
    }
    char a0[32];
    snprintf(a0, sizeof a0, "sum=%d", n);
    char *args[] = {a0};
    frame_header h;
    frame_header_make(&h, "entk-gram", 1, args, n, names, keys);
    frame_writer w;
    frame_writer_open(&w, co->output, &h);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    write_K(&w, &acc, NULL, red, params, N, C, 0, &sb);
    msgpack_sbuffer_destroy(&sb);
    frame_writer_close(&w);
    tensor_free(&acc);
    return 0;
}

/* One Jacobian stream in, one Gram stream out. */
static void gram_stream(frame_reader *r, frame_writer *w, const char *output, reduction red,
                        const char *red_s, const char *params, dtype dt, int stats, int factor) {
    frame f;
    if (!frame_read(r, &f) || strcmp(f.name, "jacobian") != 0 || strcmp(f.kind, "record") != 0)
        frame_fail(r, &f, "not a Jacobian stream (expected a 'jacobian' record first)");
    int64_t N, C;
    char jparams[512], jdt[8];
    if (!meta_get_i64(&f.meta, "N", &N) || !meta_get_i64(&f.meta, "C", &C) || N < 1 || C < 1 ||
        !meta_get_str(&f.meta, "params", jparams, sizeof jparams) || !meta_get_str(&f.meta, "dtype", jdt, sizeof jdt))
        frame_fail(r, &f, "jacobian record lacks N, C, params or dtype");
    if (dt == DT_NONE && !dtype_parse(jdt, &dt)) frame_fail(r, &f, "bad dtype '%s'", jdt);
    /* the Jacobian of summed outputs (entk-jacobian --outputs sum) carries the class-mean eNTK only */
    int64_t summed = 0;
    if (meta_get_i64(&f.meta, "summed", &summed) && summed > 0) {
        if (C != 1) frame_fail(r, &f, "a summed-output Jacobian must have C = 1, not %lld", (long long)C);
        if (red != RED_MEAN)
            entk_die(ENTK_EXIT_USAGE, "%s: a Jacobian of summed outputs (--outputs sum) gives only --reduce mean, not %s", r->src, red_s);
    }
    int npl = 0;
    char **plist = cli_split(params ? params : jparams, &npl);
    if (params) {
        int nj;
        char **jl = cli_split(jparams, &nj);
        for (int i = 0; i < npl; i++)
            if (!in_list(plist[i], jl, nj)) entk_die(ENTK_EXIT_USAGE, "--params: '%s' is not in the Jacobian stream (%s)", plist[i], jparams);
    }
    char used[512] = "";
    for (int i = 0; i < npl; i++) {
        strncat(used, i ? "," : "", sizeof used - strlen(used) - 1);
        strncat(used, plist[i], sizeof used - strlen(used) - 1);
    }
    char a[4][600];
    snprintf(a[0], sizeof a[0], "reduce=%s", red_s);
    snprintf(a[1], sizeof a[1], "params=%s", used);
    snprintf(a[2], sizeof a[2], "dtype=%s", dtype_name(dt));
    snprintf(a[3], sizeof a[3], "factor=1");
    char *args[] = {a[0], a[1], a[2], a[3]};
    const char *iname[] = {r->src};
    frame_header h;
    /* factor=1 only when asked for: plain Grams keep the keys they had before there was a choice */
    frame_header_make(&h, "entk-gram", factor ? 4 : 3, args, 1, iname, &r->h.key);
    frame_writer_stream(w, output, &h);

    void *cached;
    size_t ncached;
    if (!stats && cache_get(&h.key, &cached, &ncached)) {
        /* still read the whole input: a cut or corrupt upstream must fail here as it would otherwise */
        while (frame_read(r, &f)) {}
        frame_write_packed(w, cached, ncached, 1);
        free(cached);
    } else {
        gram g;
        gram_init(&g, red, dt, N, C);
        if (summed > 0) g.classes = summed;
        g.want_factor = factor;
        long nblocks = 0;
        while (frame_read(r, &f)) {
            char param[128], form[16];
            if (!meta_get_str(&f.meta, "param", param, sizeof param) || !meta_get_str(&f.meta, "form", form, sizeof form))
                frame_fail(r, &f, "block lacks param/form metadata");
            int keep = in_list(param, plist, npl);
            if (strcmp(f.name, "J") == 0) {
                frame_expect_shape(r, &f, 3, (int64_t[]){N, C, -1});
                if (!keep) continue;
                tensor J = frame_take(r, &f, dt);
                gram_add_explicit(&g, &J);
                tensor_free(&J);
            } else if (strcmp(f.name, "X") == 0) {
                frame_expect_shape(r, &f, 3, (int64_t[]){N, -1, -1});
                tensor X = keep ? frame_take(r, &f, dt) : (tensor){0}, A = {0};
                int64_t T = f.t.shape[1];
                if (!frame_read(r, &f)) frame_fail(r, NULL, "stream ended inside a factored block");
                int sep = strcmp(f.name, "A") == 0;
                if (sep) {
                    frame_expect_shape(r, &f, 2, (int64_t[]){C, -1});
                    if (keep) A = frame_take(r, &f, dt);
                    frame_read_tensor(r, &f, "G");
                } else if (strcmp(f.name, "G") != 0) {
                    frame_fail(r, &f, "expected tensor frame 'A' or 'G' after 'X'");
                }
                frame_expect_shape(r, &f, 4, (int64_t[]){N, T, sep ? 1 : C, sep ? A.shape[1] : -1});
                if (keep) {
                    tensor G = frame_take(r, &f, dt);
                    gram_add_factored(&g, &X, &G, sep ? &A : NULL);
                    tensor_free(&G);
                    tensor_free(&X);
                    tensor_free(&A);
                }
            } else {
                frame_fail(r, &f, "unexpected frame in a Jacobian stream");
            }
            nblocks++;
            entk_progress("blocks", nblocks, -1);
        }
        entk_progress_end();
        tensor *K = gram_finish(&g);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        write_K(w, K, &g.F, red_s, used, N, summed > 0 ? summed : C, factor, &sb);
        if (!stats) cache_put(&h.key, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        entk_log("gram: %.3g GFLOP in %.3fs (%.1f GFLOP/s)", g.flops * 1e-9, g.seconds,
                 g.seconds > 0 ? g.flops * 1e-9 / g.seconds : 0.0);
        if (stats) {
            meta mt = {0};
            meta_f64(&mt, "flops", g.flops);
            meta_f64(&mt, "seconds", g.seconds);
            frame_write_record(w, "gram_stats", &mt);
        }
        gram_free(&g);
    }
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    cli_common co = {0};
    const char *red_s = "trace", *params = NULL;
    int sum = 0, stats = 0, factor = 0;
    dtype dt = DT_NONE;
    enum { O_REDUCE = OPT_FIRST_CUSTOM, O_PARAMS, O_SUM, O_STATS, O_FACTOR };
    static struct option lo[] = {CLI_COMMON_LONGOPTS, {"reduce", required_argument, 0, O_REDUCE},
                                 {"params", required_argument, 0, O_PARAMS}, {"sum", no_argument, 0, O_SUM},
                                 {"stats", no_argument, 0, O_STATS}, {"dtype", required_argument, 0, OPT_DTYPE},
                                 {"factor", no_argument, 0, O_FACTOR}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
        if (cli_common_opt(c, &co, help)) continue;
        switch (c) {
        case O_REDUCE: red_s = optarg; break;
        case O_PARAMS: params = optarg; break;
        case O_SUM: sum = 1; break;
        case O_STATS: stats = 1; break;
        case O_FACTOR: factor = 1; break;
        case OPT_DTYPE: dt = dtype_float_option(optarg); break;
        default: cli_bad_option(argv);
        }
    }
    if (sum) return sum_main(argv + optind, argc - optind, &co);
    reduction red = reduction_parse(red_s);
    if (argc - optind > 1) entk_die(ENTK_EXIT_USAGE, "one Jacobian stream expected, got %d (use --sum to add Grams)", argc - optind);
    cache_init(co.cache_dir);

    frame_reader r;
    frame_reader_open_streams(&r, optind < argc ? argv[optind] : "-");
    frame_writer w = {0};
    /* several Jacobian streams (entk-jacobian -m A -m B ...) give as many Gram streams */
    do {
        gram_stream(&r, &w, co.output, red, red_s, params, dt, stats, factor);
    } while (frame_reader_next_stream(&r));
    frame_writer_close(&w);
    cache_report();
    frame_reader_close(&r);
    return 0;
}
