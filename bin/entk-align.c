/* entk-align: subspace overlap between a span of eigenvectors and feature families. */
#include "ntk/align.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/frame.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "Usage: entk-align [--range A:B] EIG FEATURES\n"
    "Overlap ||Q^T F||_F^2 between eigenvectors A..B (1-based, inclusive; default all) of an entk-eig\n"
    "stream and each family of an entk-features stream (columns centred, both orthonormalised). Writes\n"
    "one record 'overlap' per family {family, overlap, d, rank, percent (= 100 overlap / d), lo, hi,\n"
    "sigma (cosines of the principal angles)} and prints a summary line per family on stderr.\n"
    "Either input may be '-'.\n";

static const char *examples =
    "Example (the second cliff of the trained MLP against the sum and diff families):\n"
    "  entk-features -p 29 --family sum,diff > F.frames\n"
    "  entk-jacobian -m model.safetensors data.frames | entk-gram | entk-eig --top 200 \\\n"
    "    | entk-align --range 58:113 - F.frames | entk-show --fields family,overlap,d,percent\n";

/* --range A:B; hi -1: to the last eigenvector, which each stream resolves (its k) into `end` */
typedef struct {
    long lo, hi, end;
} range;

static void parse_range(const char *opt, const char *arg, void *dest) {
    range *r = dest;
    const char *colon = strchr(arg, ':');
    if (!colon) entk_die(ENTK_EXIT_USAGE, "%s needs A:B, not '%s'", opt, arg);
    char a[64];
    snprintf(a, sizeof a, "%.*s", (int)(colon - arg < 63 ? colon - arg : 63), arg);
    r->lo = cli_long(opt, a, 1, 1L << 30);
    r->hi = cli_long(opt, colon + 1, 1, 1L << 30);
    if (r->hi < r->lo) entk_die(ENTK_EXIT_USAGE, "%s %ld:%ld is empty", opt, r->lo, r->hi);
}

/* "A:B" as this stream resolved it */
static const char *show_range(const cli_opt *o, char *buf, size_t n) {
    const range *r = o->dest;
    snprintf(buf, n, "%ld:%ld", r->lo, r->end);
    return buf;
}

/* The overlaps of eigenvectors lo..hi of one eigenpair stream with every family. */
static void align_stream(frame_reader *er, frame_writer *w, const cli_spec *spec, range *rg, const frame_reader *fr,
                         int nfam, char fam[][64], const tensor *F) {
    long lo_i = rg->lo, hi_i = rg->hi;
    frame f;
    frame_read_tensor(er, &f, "eigenvalues");
    frame_read_tensor(er, &f, "eigenvectors");
    if (f.t.ndim != 2) frame_expect_shape(er, &f, 2, (int64_t[]){-1, -1});
    int64_t k = f.t.shape[0], N = f.t.shape[1];
    if (hi_i < 0) hi_i = k;
    if (hi_i > k) entk_die(ENTK_EXIT_USAGE, "--range end %ld exceeds the %lld eigenvectors in %s", hi_i, (long long)k, er->src);
    for (int i = 0; i < nfam; i++)
        if (F[i].shape[0] != N)
            entk_die(ENTK_EXIT_INPUT, "%s: family %s has %lld rows but the eigenvectors have %lld", fr->src, fam[i],
                     (long long)F[i].shape[0], (long long)N);
    tensor all = frame_take(er, &f, DT_F64);
    tensor V = tensor_2d(DT_F64, hi_i - lo_i + 1, N);
    memcpy(V.data, (double *)all.data + (lo_i - 1) * N, (size_t)((hi_i - lo_i + 1) * N) * sizeof(double));
    tensor_free(&all);
    if (frame_read(er, &f)) frame_fail(er, &f, "unexpected frame after eigenvectors");

    rg->end = hi_i;
    cli_args a = {0};
    cli_args_key(&a, spec);
    const char *inames[] = {er->src, fr->src};
    entk_key ikeys[] = {er->h.key, fr->h.key};
    frame_header h;
    frame_header_make(&h, "entk-align", a.argc, a.argv, 2, inames, ikeys);
    frame_writer_stream(w, spec->co.output, &h);
    cli_args_free(&a);
    for (int i = 0; i < nfam; i++) {
        overlap_result o;
        align_overlap(&V, &F[i], &o);
        meta mt = {0};
        meta_str(&mt, "family", fam[i]);
        meta_f64(&mt, "overlap", o.overlap);
        meta_i64(&mt, "d", o.d);
        meta_i64(&mt, "rank", o.rank_f);
        meta_f64(&mt, "percent", 100.0 * o.overlap / (double)o.d);
        meta_i64(&mt, "lo", lo_i);
        meta_i64(&mt, "hi", hi_i);
        meta_f64s(&mt, "sigma", o.sigma, o.nsigma);
        frame_write_record(w, "overlap", &mt);
        entk_log("eigenvectors %ld..%ld vs %s: %.3f / %lld (%.1f%%), top cosines %.3f %.3f", lo_i, hi_i, fam[i], o.overlap,
                 (long long)o.d, 100.0 * o.overlap / (double)o.d, o.nsigma > 0 ? o.sigma[0] : 0, o.nsigma > 1 ? o.sigma[1] : 0);
        free(o.sigma);
    }
    tensor_free(&V);
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    range rg = {1, -1, -1};
    cli_opt opts[] = {
        {"range", 0, CLI_CUSTOM, &rg, "A:B", CLI_KEY_EQ, .parse = parse_range, .show = show_range,
         .help = "eigenvectors A..B, 1-based, inclusive (default: all of each stream)"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    if (argc - first != 2) entk_die(ENTK_EXIT_USAGE, "need EIG and FEATURES inputs (see --help)");
    if (strcmp(argv[first], "-") == 0 && strcmp(argv[first + 1], "-") == 0)
        entk_die(ENTK_EXIT_USAGE, "only one input can be stdin");
    /* the families first: they are small, and one set serves every eigenvector stream */
    frame_reader fr;
    frame_reader_open(&fr, argv[first + 1]);
    frame f;
    char fam[64][64];
    tensor F[64];
    int nfam = 0;
    while (frame_read(&fr, &f)) {
        if (strcmp(f.kind, "tensor") != 0) continue;
        char name[64];
        if (!meta_get_str(&f.meta, "family", name, sizeof name)) continue; /* e.g. fourier_power */
        if (nfam == 64) frame_fail(&fr, &f, "more than 64 feature families");
        snprintf(fam[nfam], sizeof fam[nfam], "%s", name);
        frame_expect_shape(&fr, &f, 2, (int64_t[]){-1, -1});
        F[nfam++] = frame_take(&fr, &f, DT_F64);
    }
    if (nfam == 0) entk_die(ENTK_EXIT_INPUT, "%s: no feature families", fr.src);

    frame_reader er;
    frame_reader_open_streams(&er, argv[first]);
    frame_writer w = {0};
    /* several eigenpair streams (one per checkpoint, say) give as many overlap streams */
    do {
        align_stream(&er, &w, &spec, &rg, &fr, nfam, fam, F);
    } while (frame_reader_next_stream(&er));
    frame_writer_close(&w);
    frame_reader_close(&er);
    frame_reader_close(&fr);
    for (int i = 0; i < nfam; i++) tensor_free(&F[i]);
    return 0;
}
