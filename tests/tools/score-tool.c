/* score-tool: lib/ntk/score.c's metrics and rank-1 scores on given inputs, for the peer tests
 * (tests/t_score.sh) to hold against scikit-learn and numpy.
 * Each input stream gives an output stream.
 *   score-tool metrics IN   IN: tensors 'scores' f64 [k, n] and 'y' u8 [m, n]. Writes a record
 *                           'metrics' {direction, label, sign, ok, ap, auroc, precision_at_quota,
 *                           enrichment} for every row pair (1-based) and both signs.
 *   score-tool rank1 IN     IN: tensor 'directions' f64 [k, N, D]. Writes 'scores' f64 [k, N]
 *                           (u1 sigma1 of each direction) and 'sigma' f64 [k]. */
#include "core/err.h"
#include "core/frame.h"
#include "ntk/score.h"
#include <stdlib.h>
#include <string.h>

static tensor take(frame_reader *r, const char *name, dtype dt, int ndim) {
    frame f;
    while (frame_read(r, &f))
        if (strcmp(f.kind, "tensor") == 0 && strcmp(f.name, name) == 0) {
            if (f.t.dt != dt || f.t.ndim != ndim) frame_fail(r, &f, "expected %s of rank %d", dtype_name(dt), ndim);
            return tensor_as(&f.t, dt);
        }
    entk_die(ENTK_EXIT_INPUT, "%s: no tensor '%s'", r->src, name);
}

/* One input stream: its answer, as the next output stream. */
static void one_stream(frame_reader *r, frame_writer *w, char **argv) {
    frame_header h;
    frame_header_make(&h, "score-tool", 1, argv + 1, 1, (const char *[]){r->src}, &r->h.key);
    frame_writer_stream(w, "-", &h);
    if (strcmp(argv[1], "metrics") == 0) {
        tensor S = take(r, "scores", DT_F64, 2), Y = take(r, "y", DT_U8, 2);
        int64_t k = S.shape[0], n = S.shape[1], m = Y.shape[0];
        if (Y.shape[1] != n) entk_die(ENTK_EXIT_INPUT, "y has %lld columns, scores %lld", (long long)Y.shape[1], (long long)n);
        for (int64_t j = 0; j < k; j++)
            for (int64_t l = 0; l < m; l++)
                for (int sg = 1; sg >= -1; sg -= 2) {
                    score_metrics s;
                    int ok = score_metrics_of((double *)S.data + j * n, (uint8_t *)Y.data + l * n, n, sg, &s);
                    meta mt = {0};
                    meta_i64(&mt, "direction", j + 1);
                    meta_i64(&mt, "label", l + 1);
                    meta_i64(&mt, "sign", sg);
                    meta_i64(&mt, "ok", ok);
                    meta_f64(&mt, "ap", s.ap);
                    meta_f64(&mt, "auroc", s.auroc);
                    meta_f64(&mt, "precision_at_quota", s.precision);
                    meta_f64(&mt, "enrichment", s.enrichment);
                    frame_write_record(w, "metrics", &mt);
                }
        tensor_free(&S);
        tensor_free(&Y);
    } else {
        tensor A = take(r, "directions", DT_F64, 3);
        int64_t k = A.shape[0], N = A.shape[1], D = A.shape[2];
        tensor sc = tensor_2d(DT_F64, k, N), sig = tensor_1d(DT_F64, k);
        for (int64_t j = 0; j < k; j++)
            ((double *)sig.data)[j] = score_rank1((double *)A.data + j * N * D, N, D, (double *)sc.data + j * N);
        frame_write_tensor(w, "scores", &sc, NULL);
        frame_write_tensor(w, "sigma", &sig, NULL);
        tensor_free(&A); tensor_free(&sc); tensor_free(&sig);
    }
    frame f;
    while (frame_read(r, &f)) {}
}

int main(int argc, char **argv) {
    entk_init(argv[0]);
    if (argc != 3 || (strcmp(argv[1], "metrics") && strcmp(argv[1], "rank1")))
        entk_die(ENTK_EXIT_USAGE, "usage: score-tool metrics|rank1 IN");
    frame_reader r;
    frame_reader_open_streams(&r, argv[2]);
    frame_writer w = {0};
    do one_stream(&r, &w, argv);
    while (frame_reader_next_stream(&r));
    frame_writer_close(&w);
    frame_reader_close(&r);
    return 0;
}
