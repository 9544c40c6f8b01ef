/* entk-gram: eNTK Gram matrices from Jacobian blocks, and exact sums of partial Grams. */
#include "core/blasenv.h"
#include "core/cache.h"
#include "core/codeid.h"
#include "core/cli.h"
#include "ntk/eig.h"
#include "core/err.h"
#include "core/frame.h"
#include "ntk/gram.h"
#include "core/linalg.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "Usage: entk-gram [--reduce trace|mean|flat] [--params P1,P2] [--dtype f32|f64] [--factor] [--stats] [JACOBIAN|-]\n"
    "       entk-gram --sum GRAM GRAM...\n"
    "Accumulates the eNTK K = J J^T from an entk-jacobian stream, block by block, reduced over classes\n"
    "(trace: (1/C) sum_c K[n,m,c,c]; mean: (1/C^2) sum_cd K[n,m,c,d]; flat: (N*C)^2, class-major).\n"
    "Writes one tensor frame K. --params keeps only those parameters' blocks (a layerwise eNTK).\n"
    "--sum adds Gram streams of the same reduction and size (partial Grams from separate runs add\n"
    "up to the full one). Results are cached under a key of the content of their input stream (not\n"
    "its header) and of the code (README, Cache).\n";

static const char *examples =
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

/* The kinds of run (cli_spec.kind): Grams of Jacobian streams, or --sum of Gram streams. */
enum { RUN_GRAM = 1, RUN_SUM = 2 };

/* What the header's args name that each stream resolves: the parameters kept and the dtype (the
 * options', or the Jacobian's), the number of streams summed; the derived rows print them. */
typedef struct {
    char params[512];
    const char *params_s;   /* = params */
    int dt;                 /* dtype */
    int nsum;
} gram_key;

typedef struct {
    const char *params;
    int red;                /* reduction */
    int dt;                 /* --dtype: index in f32|f64 (dtype), -1: the Jacobian's */
    int stats, factor, sum;
    long spool_mb;
    cli_spec *spec;         /* the options, for the header's canonical args */
    gram_key *key;
} gram_opts;

static int sum_main(char **files, int n, const gram_opts *op) {
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
        keys[i] = frame_reader_content(&r); /* the sum follows what its parts hold */
        frame_reader_close(&r);
    }
    op->key->nsum = n;
    cli_args a = {0};
    cli_args_key(&a, op->spec);
    frame_header h;
    frame_header_make(&h, "entk-gram", a.argc, a.argv, n, names, keys);
    frame_writer w;
    frame_writer_open(&w, op->spec->co.output, &h);
    cli_args_free(&a);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    write_K(&w, &acc, NULL, red, params, N, C, 0, &sb);
    msgpack_sbuffer_destroy(&sb);
    frame_writer_close(&w);
    tensor_free(&acc);
    return 0;
}

/* One block of a Jacobian stream (explicit J, or factored X, [A,] G), its tensors owned copies in
 * the Gram's dtype; none when the block's parameter is not kept. */
typedef struct {
    tensor J, X, A, G;
    size_t bytes;
} jblock;

static void jblock_free(jblock *b) {
    tensor_free(&b->J);
    tensor_free(&b->X);
    tensor_free(&b->A);
    tensor_free(&b->G);
}

/* Reads the block whose first frame f is, validating its frames and shapes; copies the tensors only
 * if keep. Returns 1 for a block, 0 at the stream's end. */
static int read_block(frame_reader *r, int64_t N, int64_t C, char **plist, int npl, dtype dt, jblock *b) {
    memset(b, 0, sizeof *b);
    frame f;
    if (!frame_read(r, &f)) return 0;
    char param[128], form[16];
    if (!meta_get_str(&f.meta, "param", param, sizeof param) || !meta_get_str(&f.meta, "form", form, sizeof form))
        frame_fail(r, &f, "block lacks param/form metadata");
    int keep = in_list(param, plist, npl);
    if (strcmp(f.name, "J") == 0) {
        frame_expect_shape(r, &f, 3, (int64_t[]){N, C, -1});
        if (keep) b->J = frame_take(r, &f, dt);
    } else if (strcmp(f.name, "X") == 0) {
        frame_expect_shape(r, &f, 3, (int64_t[]){N, -1, -1});
        if (keep) b->X = frame_take(r, &f, dt);
        int64_t T = f.t.shape[1], R = -1;
        if (!frame_read(r, &f)) frame_fail(r, NULL, "stream ended inside a factored block");
        int sep = strcmp(f.name, "A") == 0;
        if (sep) {
            frame_expect_shape(r, &f, 2, (int64_t[]){C, -1});
            R = f.t.shape[1];
            if (keep) b->A = frame_take(r, &f, dt);
            frame_read_tensor(r, &f, "G");
        } else if (strcmp(f.name, "G") != 0) {
            frame_fail(r, &f, "expected tensor frame 'A' or 'G' after 'X'");
        }
        frame_expect_shape(r, &f, 4, (int64_t[]){N, T, sep ? 1 : C, R});
        if (keep) b->G = frame_take(r, &f, dt);
    } else {
        frame_fail(r, &f, "unexpected frame in a Jacobian stream");
    }
    b->bytes = tensor_nbytes(&b->J) + tensor_nbytes(&b->X) + tensor_nbytes(&b->A) + tensor_nbytes(&b->G);
    return 1;
}

/* Adds a kept block to the Gram and frees it. */
static void add_block(gram *g, jblock *b) {
    if (b->J.data) gram_add_explicit(g, &b->J);
    else if (b->X.data) gram_add_factored(g, &b->X, &b->G, b->A.data ? &b->A : NULL);
    jblock_free(b);
}

/* What a cached Gram must be for this request: one frame, K [side, side] or K_factor [r, N], in
 * the Gram's dtype, with its reduce, params, N and C. */
typedef struct {
    const char *red, *params;
    dtype dt;
    int64_t N, C, side;
} gram_spec;

static int gram_ok(const void *bytes, size_t n, const void *arg, char *why, size_t nwhy) {
    const gram_spec *g = arg;
    const char *sk[] = {"reduce", "params", NULL}, *sv[] = {g->red, g->params}, *ik[] = {"N", "C", NULL};
    int64_t iv[] = {g->N, g->C};
    size_t off = 0;
    packed_frame v;
    int ok = frame_packed_next(bytes, n, &off, &v, why, nwhy);
    if (ok && strcmp(v.name, "K_factor") == 0)
        ok = packed_frame_is(&v, "K_factor", g->dt, 2, (int64_t[]){-1, g->N}, sk, sv, ik, iv, why, nwhy) && v.t.shape[0] <= g->N;
    else if (ok)
        ok = packed_frame_is(&v, "K", g->dt, 2, (int64_t[]){g->side, g->side}, sk, sv, ik, iv, why, nwhy);
    packed_frame_free(&v);
    if (ok && off != n) { snprintf(why, nwhy, "more than one frame"); ok = 0; }
    return ok;
}

static int hint_ok(const void *bytes, size_t n, const void *arg, char *why, size_t nwhy) {
    char hex[33];
    if (n == 32) { memcpy(hex, bytes, 32); hex[32] = 0; }
    if (n != 32 || !key_valid(hex)) { snprintf(why, nwhy, "not a key"); return 0; }
    return 1;
}

/* A Gram's cache key follows the content of the Jacobian stream it is made from (the reader's
 * digest, frame.h), which is known only once the whole stream has been read. Blocks are added as
 * they arrive, so that on a miss the Gram is accumulated while entk-jacobian is still computing
 * the next blocks (the two sides of the pipe overlap); a hit should skip that work. So a small
 * hint entry, keyed by the stream's header key (a claim, never trusted for the result), says that
 * a stream with that header was seen before: then the blocks are spooled in memory (up to
 * --spool-mb) while the digest is computed, and only a miss adds them up. A wrong hint costs only
 * time; what is served is decided by the content key alone.
 *
 * One Jacobian stream in, one Gram stream out. */
static void gram_stream(frame_reader *r, frame_writer *w, const gram_opts *op) {
    frame f;
    if (!frame_read(r, &f) || strcmp(f.name, "jacobian") != 0 || strcmp(f.kind, "record") != 0)
        frame_fail(r, &f, "not a Jacobian stream (expected a 'jacobian' record first)");
    int64_t N, C;
    dtype dt = op->dt < 0 ? DT_NONE : (dtype)op->dt;
    const char *red_s = reduction_name((reduction)op->red);
    char jparams[512], jdt[8];
    if (!meta_get_i64(&f.meta, "N", &N) || !meta_get_i64(&f.meta, "C", &C) || N < 1 || C < 1 ||
        !meta_get_str(&f.meta, "params", jparams, sizeof jparams) || !meta_get_str(&f.meta, "dtype", jdt, sizeof jdt))
        frame_fail(r, &f, "jacobian record lacks N, C, params or dtype");
    if (dt == DT_NONE && !dtype_parse(jdt, &dt)) frame_fail(r, &f, "bad dtype '%s'", jdt);
    /* the Jacobian of summed outputs (entk-jacobian --outputs sum) carries the class-mean eNTK only */
    int64_t summed = 0;
    if (meta_get_i64(&f.meta, "summed", &summed) && summed > 0) {
        if (C != 1) frame_fail(r, &f, "a summed-output Jacobian must have C = 1, not %lld", (long long)C);
        if (op->red != RED_MEAN)
            entk_die(ENTK_EXIT_USAGE, "%s: a Jacobian of summed outputs (--outputs sum) gives only --reduce mean, not %s", r->src, red_s);
    }
    int npl = 0;
    char **plist = cli_split(op->params ? op->params : jparams, &npl);
    if (op->params) {
        int nj;
        char **jl = cli_split(jparams, &nj);
        for (int i = 0; i < npl; i++)
            if (!in_list(plist[i], jl, nj)) entk_die(ENTK_EXIT_USAGE, "--params: '%s' is not in the Jacobian stream (%s)", plist[i], jparams);
    }
    char *used = op->key->params;
    used[0] = 0;
    for (int i = 0; i < npl; i++) {
        strncat(used, i ? "," : "", sizeof op->key->params - strlen(used) - 1);
        strncat(used, plist[i], sizeof op->key->params - strlen(used) - 1);
    }
    op->key->dt = (int)dt;
    cli_args args = {0};
    cli_args_key(&args, op->spec);
    const char *iname[] = {r->src};
    int cached = !op->stats && cache_enabled();
    entk_key hint = frame_derive_key("entk-gram hint", args.argc, args.argv, 1, &r->h.key);
    void *bytes;
    size_t nbytes;
    int spooling = cached && op->spool_mb > 0 && cache_get_hint(&hint, hint_ok, NULL, &bytes, &nbytes);
    if (spooling) free(bytes);

    gram g;
    gram_init(&g, (reduction)op->red, dt, N, C);
    if (summed > 0) g.classes = summed;
    g.want_factor = op->factor;
    jblock *spool = NULL;
    long nspool = 0, nblocks = 0;
    size_t spooled = 0, spool_max = (size_t)op->spool_mb << 20;
    jblock b;
    while (read_block(r, N, C, plist, npl, dt, &b)) {
        nblocks++;
        entk_progress("blocks", nblocks, -1);
        if (spooling && spooled + b.bytes > spool_max) { /* past the bound: add up what is spooled, then stream */
            for (long i = 0; i < nspool; i++) add_block(&g, &spool[i]);
            nspool = 0;
            spooling = 0;
        }
        if (spooling) {
            spool = xrealloc(spool, (size_t)(nspool + 1) * sizeof *spool);
            spool[nspool++] = b;
            spooled += b.bytes;
        } else {
            add_block(&g, &b);
        }
    }
    entk_progress_end();
    /* the result's key, and the output's header key, follow the content that was read */
    entk_key content = frame_reader_content(r);
    frame_header h;
    frame_header_make(&h, "entk-gram", args.argc, args.argv, 1, iname, &content);
    frame_writer_stream(w, op->spec->co.output, &h);
    cli_args_free(&args);
    gram_spec spec = {red_s, used, dt, N, summed > 0 ? summed : C, op->red == RED_FLAT ? N * C : N};
    /* looked up also when the blocks were added up already: the bits are the same, and the counts
     * in the report then say what was in the cache */
    if (cached && cache_get(&h.key, gram_ok, &spec, &bytes, &nbytes)) {
        for (long i = 0; i < nspool; i++) jblock_free(&spool[i]);
        free(spool);
        frame_write_packed(w, bytes, nbytes, 1);
        free(bytes);
        gram_free(&g);
        return;
    }
    for (long i = 0; i < nspool; i++) add_block(&g, &spool[i]);
    free(spool);
    tensor *K = gram_finish(&g);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    write_K(w, K, &g.F, red_s, used, N, summed > 0 ? summed : C, op->factor, &sb);
    if (cached) {
        char what[700], from[256];
        snprintf(what, sizeof what, "gram %s %s %s%s", red_s, used, dtype_name(dt), op->factor ? " factor" : "");
        snprintf(from, sizeof from, "jacobian stream (content) %s, code %.8s/%.8s", content.hex, codeid_lib(), codeid_tool());
        cache_put(&h.key, &(cache_desc){what, from}, sb.data, sb.size);
        snprintf(what, sizeof what, "hint: the Gram of a stream with header key %s", r->h.key.hex);
        cache_put_hint(&hint, &(cache_desc){what, from}, h.key.hex, 32);
    }
    msgpack_sbuffer_destroy(&sb);
    entk_log("gram: %.3g GFLOP in %.3fs (%.1f GFLOP/s)", g.flops * 1e-9, g.seconds, g.seconds > 0 ? g.flops * 1e-9 / g.seconds : 0.0);
    if (op->stats) {
        meta mt = {0};
        meta_f64(&mt, "flops", g.flops);
        meta_f64(&mt, "seconds", g.seconds);
        frame_write_record(w, "gram_stats", &mt);
    }
    gram_free(&g);
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    gram_key key = {.nsum = 0};
    key.params_s = key.params;
    gram_opts op = {.red = RED_TRACE, .dt = -1, .spool_mb = 1024, .key = &key};
    cli_opt opts[] = {
        {"reduce", 0, CLI_CHOICE, &op.red, "trace|mean|flat", CLI_KEY_EQ, .only = RUN_GRAM, .help = "trace (default), mean or flat"},
        {"params", 0, CLI_STR, &op.params, "LIST", CLI_KEY_VIA, .key_name = "params", .only = RUN_GRAM,
         .help = "only these parameters (default: every parameter in the stream)"},
        {"params", 0, CLI_STR, &key.params_s, NULL, CLI_KEY_EQ, .derived = 1, .only = RUN_GRAM,
         .help = "the parameters kept: --params, or every one of the stream's"},
        {"dtype", 0, CLI_CHOICE, &op.dt, "f32|f64", CLI_KEY_VIA, .key_name = "dtype", .only = RUN_GRAM,
         .help = "accumulation precision (default: the Jacobian's)"},
        {"dtype", 0, CLI_CHOICE, &key.dt, DTYPE_CHOICES, CLI_KEY_EQ, .derived = 1, .only = RUN_GRAM,
         .help = "--dtype, or the Jacobian's"},
        {"blas_threads", 0, CLI_CUSTOM, NULL, NULL, CLI_KEY_EQ, .derived = 1, .show = blasenv_show_threads, .only = RUN_GRAM,
         .help = "OpenBLAS's thread count (the environment's)"},
        /* factor=1 only when asked for: Grams written whole keep their keys */
        {"factor", 0, CLI_FLAG, &op.factor, NULL, CLI_KEY_EQ, .show = cli_show_nonzero, .only = RUN_GRAM,
         .help = "write the Gram as its factor 'K_factor' F [r, N], K = F^T F, when it has one:\n"
                 "exactly, without forming K, when every block is a final linear layer's (the\n"
                 "logits linear in it: W_U, W2; r = its input width), else when K has numerical\n"
                 "rank r <= N/4 (checked: ||K - F^T F||_F at rounding level). N/r times smaller,\n"
                 "and entk-eig solves it by one thin SVD; otherwise K as usual"},
        /* timings for benchmarks: a run with --stats is neither served from nor stored in the cache */
        {"stats", 0, CLI_FLAG, &op.stats, NULL, CLI_NOKEY, .only = RUN_GRAM,
         .help = "also write a record 'gram_stats' {flops, seconds} (not cached; for benchmarks)"},
        {"spool-mb", 0, CLI_LONG, &op.spool_mb, "MB", CLI_NOKEY, .only = RUN_GRAM, .min = 0, .max = 1L << 24,
         .help = "when the cache has seen a stream with this header, hold up to MB MiB of its\n"
                 "blocks in memory until the stream's content key says hit or miss (default\n"
                 "1024; 0: never, accumulate as blocks come)"},
        {"sum", 0, CLI_FLAG, &op.sum, NULL, CLI_KEY_VIA, .key_name = "sum",
         .help = "instead: add the Gram streams GRAM... (same reduction and size)"},
        {"sum", 0, CLI_INT, &key.nsum, NULL, CLI_KEY_EQ, .derived = 1, .only = RUN_SUM, .help = "how many streams --sum adds"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    op.spec = &spec;
    int first = cli_parse(&spec, argc, argv);
    spec.kind = op.sum ? RUN_SUM : RUN_GRAM;
    const cli_opt *mis = cli_misplaced(&spec);
    char nm[80];
    if (mis) entk_die(ENTK_EXIT_USAGE, "%s is for Grams of Jacobian streams, not --sum", cli_opt_name(mis, nm, sizeof nm));
    if (op.sum) return sum_main(argv + first, argc - first, &op);
    if (argc - first > 1) entk_die(ENTK_EXIT_USAGE, "one Jacobian stream expected, got %d (use --sum to add Grams)", argc - first);
    cache_init(spec.co.cache_dir);

    frame_reader r;
    frame_reader_open_streams(&r, first < argc ? argv[first] : "-");
    frame_writer w = {0};
    /* several Jacobian streams (entk-jacobian -m A -m B ...) give as many Gram streams */
    do {
        gram_stream(&r, &w, &op);
    } while (frame_reader_next_stream(&r));
    frame_writer_close(&w);
    cache_report();
    frame_reader_close(&r);
    return 0;
}
