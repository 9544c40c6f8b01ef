#include "core/safetensors.h"
#include "core/err.h"
#include "core/outfile.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *st_names[] = {"F32", "F64", "BF16", "F16", "I32", "I64", "U8", "BOOL"};
static const size_t st_sizes[] = {4, 8, 2, 2, 4, 8, 1, 1};

const char *st_dtype_name(st_dtype d) { return st_names[d]; }

float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); /* keep NaN a NaN */
    u += 0x7fff + ((u >> 16) & 1);  /* round to nearest even, as torch does */
    return (uint16_t)(u >> 16);
}

float f16_to_f32(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0) {
        if (m == 0) u = s;
        else { float f = ldexpf((float)m, -24); memcpy(&u, &f, 4); u |= s; }
    } else if (e == 31) u = s | 0x7f800000 | (m << 13);
    else u = s | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t s = (uint16_t)((u >> 16) & 0x8000);
    float a = fabsf(f);
    if (isnan(f)) return s | 0x7e00;
    if (a >= 65520.0f) return s | 0x7c00;
    if (a < 6.103515625e-05f) /* subnormal: round to a multiple of 2^-24 */
        return s | (uint16_t)lrintf(a * 16777216.0f);
    int e;
    float m = frexpf(a, &e);             /* a = m * 2^e, m in [0.5,1) */
    uint32_t mant = (uint32_t)lrintf(m * 2048.0f); /* 11 bits incl. implicit one */
    if (mant == 2048) { mant = 1024; e++; }
    return s | (uint16_t)(((uint32_t)(e + 14) << 10) | (mant & 0x3ff));
}

static void bad(const char *path, const char *fmt, const char *a, const char *b) __attribute__((__noreturn__));
static void bad(const char *path, const char *fmt, const char *a, const char *b) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    entk_die(ENTK_EXIT_INPUT, "%s: bad safetensors file: %s", path, msg);
}

void st_open(safetensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    st->path = xstrdup(path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) entk_die(ENTK_EXIT_INPUT, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    int ok = fstat(fd, &sb) == 0;
    st->size = ok ? (size_t)sb.st_size : 0;
    if (ok && S_ISREG(sb.st_mode) && st->size >= 8) st->map = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (!ok) entk_die(ENTK_EXIT_FAIL, "stat %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) entk_die(ENTK_EXIT_INPUT, "%s: not a regular file", path);
    if (st->size < 8) bad(path, "file is shorter than its 8-byte header length%s%s", NULL, NULL);
    if (st->map == MAP_FAILED) entk_die(ENTK_EXIT_FAIL, "mmap %s: %s", path, strerror(errno));
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)st->map[i] << (8 * i);
    if (hlen > st->size - 8 || hlen > (100u << 20)) bad(path, "header length exceeds the file%s%s", NULL, NULL);
    char err[256];
    st->header = json_parse((const char *)st->map + 8, hlen, err, sizeof err);
    if (!st->header) bad(path, "header is not valid JSON (%s)%s", err, NULL);
    if (st->header->type != JSON_OBJ) bad(path, "header is not a JSON object%s%s", NULL, NULL);
    const unsigned char *base = st->map + 8 + hlen;
    size_t datalen = st->size - 8 - hlen;
    st->t = xcalloc(st->header->len, sizeof(st_tensor));
    for (size_t i = 0; i < st->header->len; i++) {
        const char *name = st->header->keys[i];
        const json *v = &st->header->items[i];
        if (strcmp(name, "__metadata__") == 0) {
            if (v->type != JSON_OBJ) bad(path, "__metadata__ is not an object%s%s", NULL, NULL);
            for (size_t k = 0; k < v->len; k++)
                if (v->items[k].type != JSON_STR) bad(path, "__metadata__ value '%s' is not a string%s", v->keys[k], NULL);
            st->metadata = v;
            continue;
        }
        if (v->type != JSON_OBJ) bad(path, "entry '%s' is not an object%s", name, NULL);
        st_tensor *t = &st->t[st->n];
        t->name = v == NULL ? NULL : st->header->keys[i];
        const char *dts = json_get_str(v, "dtype");
        if (!dts) bad(path, "tensor '%s' has no dtype%s", name, NULL);
        int found = 0;
        for (int d = 0; d <= ST_BOOL; d++)
            if (strcmp(dts, st_names[d]) == 0) { t->dt = (st_dtype)d; found = 1; }
        if (!found) bad(path, "tensor '%s' has unsupported dtype %s", name, dts);
        const json *sh = json_get(v, "shape");
        if (!sh || sh->type != JSON_ARR || sh->len > TENSOR_MAXDIM) bad(path, "tensor '%s' has a bad shape%s", name, NULL);
        t->ndim = (int)sh->len;
        /* checked before the product can wrap: a shape must not pass as fewer bytes than it needs */
        uint64_t numel = 1, nbytes;
        for (int d = 0; d < t->ndim; d++) {
            if (sh->items[d].type != JSON_NUM || !sh->items[d].is_int || sh->items[d].i < 0 || sh->items[d].i > (1ll << 40))
                bad(path, "tensor '%s' has a bad shape%s", name, NULL);
            t->shape[d] = sh->items[d].i;
            if (__builtin_mul_overflow(numel, (uint64_t)t->shape[d], &numel))
                bad(path, "tensor '%s' has a shape too large for any file%s", name, NULL);
        }
        if (__builtin_mul_overflow(numel, (uint64_t)st_sizes[t->dt], &nbytes) || nbytes > datalen)
            bad(path, "tensor '%s' has a shape larger than the file's data%s", name, NULL);
        const json *off = json_get(v, "data_offsets");
        if (!off || off->type != JSON_ARR || off->len != 2 || !off->items[0].is_int || !off->items[1].is_int)
            bad(path, "tensor '%s' has bad data_offsets%s", name, NULL);
        int64_t b = off->items[0].i, e = off->items[1].i;
        if (b < 0 || e < b || (uint64_t)e > datalen) bad(path, "tensor '%s' data_offsets point outside the file%s", name, NULL);
        if ((uint64_t)(e - b) != nbytes)
            bad(path, "tensor '%s' data_offsets do not match its shape and dtype%s", name, NULL);
        t->ptr = base + b;
        t->nbytes = (size_t)(e - b);
        st->n++;
    }
}

void st_close(safetensors *st) {
    if (st->map && st->map != MAP_FAILED) munmap(st->map, st->size);
    json_free(st->header);
    free(st->t);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const st_tensor *st_find(const safetensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->t[i].name, name) == 0) return &st->t[i];
    return NULL;
}

const char *st_meta(const safetensors *st, const char *key) { return json_get_str(st->metadata, key); }

tensor st_load(const safetensors *st, const char *name, dtype d, int ndim, const int64_t *dims) {
    const st_tensor *s = st_find(st, name);
    if (!s) entk_die(ENTK_EXIT_INPUT, "%s: tensor '%s' is missing", st->path, name);
    int ok = ndim < 0 || s->ndim == ndim;
    for (int i = 0; ok && dims && i < ndim; i++)
        if (dims[i] >= 0 && dims[i] != s->shape[i]) ok = 0;
    if (!ok) {
        char got[128], want[128];
        tensor g = {.ndim = s->ndim, .dt = d};
        memcpy(g.shape, s->shape, sizeof g.shape);
        tensor w = {.ndim = ndim, .dt = d};
        for (int i = 0; i < ndim; i++) w.shape[i] = dims ? dims[i] : -1;
        tensor_desc(&g, got, sizeof got);
        tensor_desc(&w, want, sizeof want);
        *strrchr(got, ' ') = 0;
        *strrchr(want, ' ') = 0;
        entk_die(ENTK_EXIT_INPUT, "%s: tensor '%s' has shape %s, expected %s", st->path, name, got, want);
    }
    tensor t = tensor_new(d, s->ndim, s->shape);
    int64_t n = tensor_numel(&t);
    int is_float = s->dt == ST_F32 || s->dt == ST_F64 || s->dt == ST_BF16 || s->dt == ST_F16;
    if (is_float != dtype_is_float(d))
        entk_die(ENTK_EXIT_INPUT, "%s: tensor '%s' is %s, expected a %s tensor", st->path, name, st_names[s->dt],
                 dtype_is_float(d) ? "float" : "integer");
    for (int64_t i = 0; i < n; i++) {
        double v = 0;
        const unsigned char *p = s->ptr + (size_t)i * st_sizes[s->dt];
        switch (s->dt) {
        case ST_F32: { float f; memcpy(&f, p, 4); v = f; break; }
        case ST_F64: memcpy(&v, p, 8); break;
        case ST_BF16: { uint16_t h; memcpy(&h, p, 2); v = bf16_to_f32(h); break; }
        case ST_F16: { uint16_t h; memcpy(&h, p, 2); v = f16_to_f32(h); break; }
        case ST_I32: { int32_t x; memcpy(&x, p, 4); v = x; break; }
        case ST_I64: { int64_t x; memcpy(&x, p, 8); v = (double)x; break; }
        case ST_U8: case ST_BOOL: v = *p; break;
        }
        switch (d) {
        case DT_F32: ((float *)t.data)[i] = (float)v; break;
        case DT_F64: ((double *)t.data)[i] = v; break;
        case DT_I32: ((int32_t *)t.data)[i] = (int32_t)v; break;
        case DT_I64: ((int64_t *)t.data)[i] = (int64_t)v; break;
        case DT_U8: ((uint8_t *)t.data)[i] = (uint8_t)v; break;
        default: break;
        }
    }
    return t;
}

void st_save(const char *path, int n, const st_entry *e, int nmeta, const char *const *meta_kv) {
    size_t cap = 4096, len = 0;
    char *h = xmalloc(cap);
    h[len++] = '{';
    h[len] = 0;
    if (nmeta > 0) {
        json_quote(&h, &len, &cap, "__metadata__");
        h[len++] = ':';
        h[len++] = '{';
        h[len] = 0;
        for (int i = 0; i < nmeta; i++) {
            if (i) h[len++] = ',';
            json_quote(&h, &len, &cap, meta_kv[2 * i]);
            h[len++] = ':';
            json_quote(&h, &len, &cap, meta_kv[2 * i + 1]);
        }
        h[len++] = '}';
        h[len] = 0;
    }
    size_t off = 0;
    size_t *sizes = xcalloc((size_t)n + 1, sizeof(size_t));
    for (int i = 0; i < n; i++) {
        const tensor *t = e[i].t;
        st_dtype sd = dtype_is_float(t->dt) ? e[i].store : (t->dt == DT_I32 ? ST_I32 : t->dt == DT_I64 ? ST_I64 : ST_U8);
        sizes[i] = (size_t)tensor_numel(t) * st_sizes[sd];
        if (len > 1) h[len++] = ',';
        h[len] = 0;
        json_quote(&h, &len, &cap, e[i].name);
        char buf[512];
        int k = snprintf(buf, sizeof buf, ":{\"dtype\":\"%s\",\"shape\":[", st_names[sd]);
        for (int d = 0; d < t->ndim; d++) k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        k += snprintf(buf + k, sizeof buf - (size_t)k, "],\"data_offsets\":[%zu,%zu]}", off, off + sizes[i]);
        if (len + (size_t)k + 8 > cap) { cap = (len + (size_t)k) * 2; h = xrealloc(h, cap); }
        memcpy(h + len, buf, (size_t)k + 1);
        len += (size_t)k;
        off += sizes[i];
    }
    if (len + 16 > cap) { cap = len + 16; h = xrealloc(h, cap); }
    h[len++] = '}';
    while (len % 8) h[len++] = ' '; /* the format pads the header with spaces to 8-byte alignment */
    outfile o;
    outfile_open(&o, path);
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)((uint64_t)len >> (8 * i));
    int ok = fwrite(lb, 1, 8, o.fp) == 8 && fwrite(h, 1, len, o.fp) == len;
    for (int i = 0; ok && i < n; i++) {
        const tensor *t = e[i].t;
        int64_t m = tensor_numel(t);
        if (!dtype_is_float(t->dt) || (t->dt == DT_F32 && e[i].store == ST_F32) || (t->dt == DT_F64 && e[i].store == ST_F64)) {
            ok = fwrite(t->data, 1, sizes[i], o.fp) == sizes[i];
            continue;
        }
        unsigned char *buf = xmalloc(sizes[i]);
        for (int64_t j = 0; j < m; j++) {
            double v = tensor_get(t, j);
            switch (e[i].store) {
            case ST_F32: { float f = (float)v; memcpy(buf + 4 * j, &f, 4); break; }
            case ST_F64: memcpy(buf + 8 * j, &v, 8); break;
            case ST_BF16: { uint16_t b = f32_to_bf16((float)v); memcpy(buf + 2 * j, &b, 2); break; }
            case ST_F16: { uint16_t b = f32_to_f16((float)v); memcpy(buf + 2 * j, &b, 2); break; }
            default: entk_die(ENTK_EXIT_FAIL, "internal: cannot store float tensor as %s", st_names[e[i].store]);
            }
        }
        ok = fwrite(buf, 1, sizes[i], o.fp) == sizes[i];
        free(buf);
    }
    if (!ok) entk_die(ENTK_EXIT_FAIL, "writing %s: %s", path, strerror(errno));
    outfile_commit(&o);
    free(h);
    free(sizes);
}
