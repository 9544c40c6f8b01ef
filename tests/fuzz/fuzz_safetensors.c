/* Fuzz harness: safetensors files (core/safetensors.c; its header goes through core/json.c). */
#include "fuzz.h"
#include "core/safetensors.h"

static safetensors st;

static void fuzz_cleanup(void) {
    if (st.map && st.map != MAP_FAILED) munmap(st.map, st.size);
    memset(&st, 0, sizeof st);
}

static int fuzz_one(const uint8_t *data, size_t size) {
    memset(&st, 0, sizeof st);
    st_open(&st, fuzz_file(data, size));
    st_meta(&st, "entk_model");
    for (int i = 0; i < st.n; i++) {
        const st_tensor *t = &st.t[i];
        if (t->nbytes > (1 << 20)) continue;
        int is_float = t->dt == ST_F32 || t->dt == ST_F64 || t->dt == ST_BF16 || t->dt == ST_F16;
        tensor x = st_load(&st, t->name, is_float ? (i & 1 ? DT_F32 : DT_F64) : DT_I64, t->ndim, t->shape);
        tensor_nonfinite_at(&x);
        tensor_free(&x);
    }
    st_close(&st);
    return 0;
}

FUZZ_MAIN
