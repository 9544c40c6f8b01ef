/* lm-ids: writes token-id windows as an entk frame stream, for tests of entk-forward that need an
 * "ids" stream without entk-tokenize.
 *   lm-ids [--matrix | --f32] "1,2,3;4,5,6" > ids.frames
 * One "ids" i32 [T] frame per window, or with --matrix one "windows" i32 [N,T] frame (equal T);
 * --f32 writes the ids as f32 (a bad input). */
#include "core/cli.h"
#include "core/err.h"
#include "core/frame.h"
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    entk_init(argv[0]);
    int matrix = argc > 1 && strcmp(argv[1], "--matrix") == 0, f32 = argc > 1 && strcmp(argv[1], "--f32") == 0;
    if (argc != 2 + matrix + f32) entk_die(ENTK_EXIT_USAGE, "usage: lm-ids [--matrix | --f32] 'ids;ids;...'");
    matrix += f32; /* the argument index below */
    char *copy = xstrdup(argv[1 + matrix]);
    int nw = 0, T = -1;
    int32_t *all = NULL;
    frame_header h;
    entk_key k = hash_bytes(argv[1 + matrix], strlen(argv[1 + matrix]));
    const char *names[1] = {"ids"};
    frame_header_make(&h, "lm-ids", argc - 1, argv + 1, 1, names, &k);
    frame_writer w;
    frame_writer_open(&w, "-", &h);
    for (char *save = NULL, *s = strtok_r(copy, ";", &save); s; s = strtok_r(NULL, ";", &save)) {
        int n;
        char **parts = cli_split(s, &n);
        tensor t = tensor_1d(DT_I32, n);
        for (int i = 0; i < n; i++) ((int32_t *)t.data)[i] = (int32_t)cli_long("ids", parts[i], -2147483647L, 2147483647L);
        if (f32) {
            tensor tf = tensor_1d(DT_F32, n);
            for (int i = 0; i < n; i++) ((float *)tf.data)[i] = (float)((int32_t *)t.data)[i];
            frame_write_tensor(&w, "ids", &tf, NULL);
            tensor_free(&tf);
        } else if (matrix) {
            if (T >= 0 && n != T) entk_die(ENTK_EXIT_USAGE, "--matrix needs windows of equal length");
            T = n;
            all = xrealloc(all, (size_t)(nw + 1) * n * sizeof(int32_t));
            memcpy(all + (size_t)nw * n, t.data, (size_t)n * sizeof(int32_t));
        } else {
            frame_write_tensor(&w, "ids", &t, NULL);
        }
        nw++;
        tensor_free(&t);
        free(parts);
    }
    if (matrix && !f32) {
        tensor t = tensor_2d(DT_I32, nw, T > 0 ? T : 0);
        memcpy(t.data, all, tensor_nbytes(&t));
        frame_write_tensor(&w, "windows", &t, NULL);
        tensor_free(&t);
    }
    frame_writer_close(&w);
    free(all);
    free(copy);
    return 0;
}
