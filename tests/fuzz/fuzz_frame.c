/* Fuzz harness: the frame reader (core/frame.c, core/mpscan.c) on a stream of frames. */
#include "fuzz.h"
#include "core/frame.h"

static frame_reader r;

static void fuzz_cleanup(void) {
    if (r.close_fd) close(r.fd);
    memset(&r, 0, sizeof r);
}

static int fuzz_one(const uint8_t *data, size_t size) {
    static FILE *null;
    if (!null) {   /* kept across inputs: made outside the tracking that frees what an input left */
        fuzz_tracking = 0;
        null = fopen("/dev/null", "w");
        fuzz_tracking = 1;
    }
    mp_count_objects(data, size);
    memset(&r, 0, sizeof r);
    const char *path = fuzz_file(data, size);
    /* both policies: one stream only (odd sizes), or several */
    if (size & 1) frame_reader_open(&r, path);
    else frame_reader_open_streams(&r, path);
    do {
        frame f;
        while (frame_read(&r, &f)) {
            int64_t i;
            double d;
            char s[32];
            meta_get_i64(&f.meta, "N", &i);
            meta_get_f64(&f.meta, "epoch", &d);
            meta_get_str(&f.meta, "rng", s, sizeof s);
            msgpack_print_json(null, &f.meta);
            print_json_str(null, f.name, strlen(f.name));
            if (strcmp(f.kind, "tensor") == 0) {
                tensor_nonfinite_at(&f.t);
                if (tensor_numel(&f.t) <= (1 << 16)) {
                    tensor t = frame_take(&r, &f, dtype_is_float(f.t.dt) ? DT_F64 : DT_I64);
                    tensor_free(&t);
                }
            }
        }
    } while (frame_reader_next_stream(&r));
    frame_reader_close(&r);
    return 0;
}

FUZZ_MAIN
