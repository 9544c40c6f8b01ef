#include "core/tensor.h"
#include "core/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *names[] = {"f32", "f64", "i32", "i64", "u8"};
static const size_t sizes[] = {4, 8, 4, 8, 1};

const char *dtype_name(dtype d) { return d < DT_NONE ? names[d] : "none"; }
size_t dtype_size(dtype d) { return d < DT_NONE ? sizes[d] : 0; }
int dtype_is_float(dtype d) { return d == DT_F32 || d == DT_F64; }

int dtype_parse(const char *s, dtype *out) {
    for (int i = 0; i < DT_NONE; i++)
        if (strcmp(s, names[i]) == 0) { *out = (dtype)i; return 1; }
    return 0;
}

int64_t tensor_numel(const tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t tensor_nbytes(const tensor *t) { return (size_t)tensor_numel(t) * dtype_size(t->dt); }

tensor tensor_new(dtype d, int ndim, const int64_t *shape) {
    tensor t = {.dt = d, .ndim = ndim};
    if (ndim < 0 || ndim > TENSOR_MAXDIM) entk_die(ENTK_EXIT_FAIL, "tensor rank %d unsupported", ndim);
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    /* 64-byte alignment keeps BLAS kernels on their fast path */
    size_t n = tensor_nbytes(&t);
    size_t rounded = (n + 63) / 64 * 64;
    t.data = aligned_alloc(64, rounded ? rounded : 64);
    if (!t.data) entk_die(ENTK_EXIT_FAIL, "out of memory allocating %zu bytes", n);
    memset(t.data, 0, rounded ? rounded : 64);
    return t;
}

tensor tensor_1d(dtype d, int64_t a) { return tensor_new(d, 1, (int64_t[]){a}); }
tensor tensor_2d(dtype d, int64_t a, int64_t b) { return tensor_new(d, 2, (int64_t[]){a, b}); }
tensor tensor_3d(dtype d, int64_t a, int64_t b, int64_t c) { return tensor_new(d, 3, (int64_t[]){a, b, c}); }

void tensor_free(tensor *t) {
    free(t->data);
    t->data = NULL;
}

double tensor_get(const tensor *t, int64_t i) {
    switch (t->dt) {
    case DT_F32: return ((const float *)t->data)[i];
    case DT_F64: return ((const double *)t->data)[i];
    case DT_I32: return ((const int32_t *)t->data)[i];
    case DT_I64: return (double)((const int64_t *)t->data)[i];
    case DT_U8: return ((const uint8_t *)t->data)[i];
    default: return 0;
    }
}

tensor tensor_as(const tensor *t, dtype d) {
    tensor r = tensor_new(d, t->ndim, t->shape);
    int64_t n = tensor_numel(t);
    if (t->dt == d) {
        memcpy(r.data, t->data, tensor_nbytes(t));
        return r;
    }
    if (dtype_is_float(d) != dtype_is_float(t->dt))
        entk_die(ENTK_EXIT_INPUT, "cannot use %s data where %s is expected", dtype_name(t->dt), dtype_name(d));
    for (int64_t i = 0; i < n; i++) {
        double v = tensor_get(t, i);
        switch (d) {
        case DT_F32: ((float *)r.data)[i] = (float)v; break;
        case DT_F64: ((double *)r.data)[i] = v; break;
        case DT_I32: ((int32_t *)r.data)[i] = (int32_t)v; break;
        case DT_I64: ((int64_t *)r.data)[i] = (int64_t)v; break;
        case DT_U8: ((uint8_t *)r.data)[i] = (uint8_t)v; break;
        default: break;
        }
    }
    return r;
}

const char *tensor_desc(const tensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "] %s", dtype_name(t->dt));
    return buf;
}


/* Block by block: the OR over a block has no early exit, so it vectorises; only a block that has a
 * non-finite value is searched again for its index. */
#define NONFINITE_AT(name, T, U, EXP)                                                   \
    int64_t name(const T *p, size_t n) {                                                \
        for (size_t b = 0; b < n; b += 4096) {                                          \
            size_t e = n - b < 4096 ? n : b + 4096;                                     \
            U any = 0;                                                                  \
            for (size_t i = b; i < e; i++) {                                            \
                U u;                                                                    \
                memcpy(&u, p + i, sizeof u);                                            \
                any |= (U)((u & EXP) == EXP);                                           \
            }                                                                           \
            if (any)                                                                    \
                for (size_t i = b; i < e; i++) {                                        \
                    U u;                                                                \
                    memcpy(&u, p + i, sizeof u);                                        \
                    if ((u & EXP) == EXP) return (int64_t)i;                            \
                }                                                                       \
        }                                                                               \
        return -1;                                                                      \
    }
NONFINITE_AT(f32_nonfinite_at, float, uint32_t, 0x7f800000u)
NONFINITE_AT(f64_nonfinite_at, double, uint64_t, 0x7ff0000000000000ull)

int64_t tensor_nonfinite_at(const tensor *t) {
    size_t n = (size_t)tensor_numel(t);
    if (t->dt == DT_F32) return f32_nonfinite_at(t->data, n);
    if (t->dt == DT_F64) return f64_nonfinite_at(t->data, n);
    return -1;
}
