#include "core/frame.h"
#include "core/codeid.h"
#include "core/err.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <math.h>

/* ------------------------------------------------------------------ metadata */

static void meta_push(meta *m, const char *key, char type) {
    if (m->n >= META_MAX) entk_die(ENTK_EXIT_FAIL, "internal: too many metadata fields");
    memset(&m->it[m->n], 0, sizeof m->it[0]);
    m->it[m->n].key = key;
    m->it[m->n].type = type;
    m->n++;
}
void meta_i64(meta *m, const char *key, int64_t v) { meta_push(m, key, 'i'); m->it[m->n - 1].i = v; }
void meta_f64(meta *m, const char *key, double v) { meta_push(m, key, 'f'); m->it[m->n - 1].f = v; }
void meta_str(meta *m, const char *key, const char *s) { meta_push(m, key, 's'); m->it[m->n - 1].s = s; }
void meta_f64s(meta *m, const char *key, const double *v, int64_t n) {
    meta_push(m, key, 'F');
    m->it[m->n - 1].fa = v;
    m->it[m->n - 1].len = n;
}
void meta_i64s(meta *m, const char *key, const int64_t *v, int64_t n) {
    meta_push(m, key, 'I');
    m->it[m->n - 1].ia = v;
    m->it[m->n - 1].len = n;
}

/* ------------------------------------------------------------------ writer */

static void pack_str(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_meta(msgpack_packer *pk, const meta *m) {
    int n = m ? m->n : 0;
    msgpack_pack_map(pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        pack_str(pk, m->it[i].key);
        switch (m->it[i].type) {
        case 'i': msgpack_pack_int64(pk, m->it[i].i); break;
        case 'f': msgpack_pack_double(pk, m->it[i].f); break;
        case 's': pack_str(pk, m->it[i].s); break;
        case 'F':
            msgpack_pack_array(pk, (size_t)m->it[i].len);
            for (int64_t j = 0; j < m->it[i].len; j++) msgpack_pack_double(pk, m->it[i].fa[j]);
            break;
        case 'I':
            msgpack_pack_array(pk, (size_t)m->it[i].len);
            for (int64_t j = 0; j < m->it[i].len; j++) msgpack_pack_int64(pk, m->it[i].ia[j]);
            break;
        }
    }
}

static void flush_sb(frame_writer *w) {
    if (w->sb.size && fwrite(w->sb.data, 1, w->sb.size, w->out.fp) != w->sb.size)
        entk_die(ENTK_EXIT_FAIL, "writing frames: %s", strerror(errno));
    msgpack_sbuffer_clear(&w->sb);
}

static void write_header(frame_writer *w, const frame_header *h) {
    msgpack_packer *pk = &w->pk;
    msgpack_pack_map(pk, 3);
    pack_str(pk, "kind"); pack_str(pk, "header");
    pack_str(pk, "name"); pack_str(pk, h->producer);
    pack_str(pk, "meta");
    msgpack_pack_map(pk, 4);
    pack_str(pk, "version"); pack_str(pk, ENTK_VERSION);
    pack_str(pk, "args");
    msgpack_pack_array(pk, (size_t)h->argc);
    for (int i = 0; i < h->argc; i++) pack_str(pk, h->argv[i]);
    pack_str(pk, "inputs");
    msgpack_pack_array(pk, (size_t)h->ninputs);
    for (int i = 0; i < h->ninputs; i++) {
        msgpack_pack_map(pk, 2);
        pack_str(pk, "name"); pack_str(pk, h->input_name[i]);
        pack_str(pk, "key"); pack_str(pk, h->input_key[i].hex);
    }
    pack_str(pk, "key"); pack_str(pk, h->key.hex);
    flush_sb(w);
}

static void write_end(frame_writer *w) {
    msgpack_pack_map(&w->pk, 3);
    pack_str(&w->pk, "kind"); pack_str(&w->pk, "end");
    pack_str(&w->pk, "name"); pack_str(&w->pk, "end");
    pack_str(&w->pk, "meta");
    msgpack_pack_map(&w->pk, 1);
    pack_str(&w->pk, "frames"); msgpack_pack_int64(&w->pk, w->nframes);
    flush_sb(w);
    w->nframes = 0;
}

void frame_writer_open(frame_writer *w, const char *path, const frame_header *h) {
    memset(w, 0, sizeof *w);
    outfile_open(&w->out, path);
    /* as gzip does: binary on a terminal is noise to the reader and can upset the terminal */
    if (isatty(fileno(w->out.fp)))
        entk_die(ENTK_EXIT_USAGE, "will not write binary frames to a terminal: pipe them into entk-show, or use -o FILE");
    msgpack_sbuffer_init(&w->sb);
    msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
    write_header(w, h);
}

void frame_writer_stream(frame_writer *w, const char *path, const frame_header *h) {
    if (!w->out.fp) {
        frame_writer_open(w, path, h);
        return;
    }
    write_end(w);
    /* a finished stream leaves now, so that the filter downstream can finish it while we compute
     * the next one (its end frame would otherwise wait in our buffer) */
    if (fflush(w->out.fp) != 0) entk_die(ENTK_EXIT_FAIL, "writing frames: %s", strerror(errno));
    write_header(w, h);
}

void frame_pack_tensor(msgpack_sbuffer *buf, const char *name, const tensor *t, const meta *m) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    size_t nb = tensor_nbytes(t);
    msgpack_pack_map(&pk, 7);
    pack_str(&pk, "kind"); pack_str(&pk, "tensor");
    pack_str(&pk, "name"); pack_str(&pk, name);
    pack_str(&pk, "dtype"); pack_str(&pk, dtype_name(t->dt));
    pack_str(&pk, "shape");
    msgpack_pack_array(&pk, (size_t)t->ndim);
    for (int i = 0; i < t->ndim; i++) msgpack_pack_int64(&pk, t->shape[i]);
    pack_str(&pk, "meta"); pack_meta(&pk, m);
    pack_str(&pk, "check"); msgpack_pack_uint64(&pk, hash64(t->data, nb));
    pack_str(&pk, "data");
    if (nb > UINT32_MAX) entk_die(ENTK_EXIT_FAIL, "tensor %s is %zu bytes, over msgpack's 4 GiB bin limit: use smaller blocks", name, nb);
    msgpack_pack_bin(&pk, nb);
    msgpack_pack_bin_body(&pk, t->data, nb);
}

void frame_write_tensor(frame_writer *w, const char *name, const tensor *t, const meta *m) {
    frame_pack_tensor(&w->sb, name, t, m);
    flush_sb(w);
    w->nframes++;
}

void frame_write_record(frame_writer *w, const char *name, const meta *m) {
    msgpack_pack_map(&w->pk, 3);
    pack_str(&w->pk, "kind"); pack_str(&w->pk, "record");
    pack_str(&w->pk, "name"); pack_str(&w->pk, name);
    pack_str(&w->pk, "meta"); pack_meta(&w->pk, m);
    flush_sb(w);
    w->nframes++;
}

long frame_count_packed(const void *bytes, size_t n) { return mp_count_objects(bytes, n); }

static int obj_is_str(const msgpack_object *o, const char *s);

int frame_packed_next(const void *bytes, size_t n, size_t *off, packed_frame *v, char *why, size_t nwhy) {
    memset(v, 0, sizeof *v);
    msgpack_unpacked_init(&v->u);
    const char *bad = NULL;
    if (*off >= n) bad = "fewer frames than expected";
    else if (msgpack_unpack_next(&v->u, bytes, n, off) != MSGPACK_UNPACK_SUCCESS) bad = "not whole msgpack frames";
    const msgpack_object *o = &v->u.data, *dt = NULL, *sh = NULL, *data = NULL, *ck = NULL, *nm = NULL;
    if (!bad && (o->type != MSGPACK_OBJECT_MAP || !obj_is_str(meta_get(o, "kind"), "tensor"))) bad = "not a tensor frame";
    if (!bad) {
        nm = meta_get(o, "name"), dt = meta_get(o, "dtype"), sh = meta_get(o, "shape");
        data = meta_get(o, "data"), ck = meta_get(o, "check");
        const msgpack_object *m = meta_get(o, "meta");
        if (m) v->meta = *m;
        char dts[8] = "";
        if (!nm || nm->type != MSGPACK_OBJECT_STR || nm->via.str.size >= sizeof v->name || !dt || dt->type != MSGPACK_OBJECT_STR ||
            dt->via.str.size >= sizeof dts || !sh || sh->type != MSGPACK_OBJECT_ARRAY || sh->via.array.size > TENSOR_MAXDIM ||
            !data || data->type != MSGPACK_OBJECT_BIN || !ck || ck->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            bad = "malformed tensor frame";
        else {
            memcpy(v->name, nm->via.str.ptr, nm->via.str.size);
            memcpy(dts, dt->via.str.ptr, dt->via.str.size);
            if (!dtype_parse(dts, &v->t.dt)) bad = "unknown dtype";
            v->t.ndim = (int)sh->via.array.size;
            uint64_t numel = 1;
            for (int i = 0; !bad && i < v->t.ndim; i++) {
                const msgpack_object *d = &sh->via.array.ptr[i];
                if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER || d->via.u64 > (1ull << 40)) bad = "bad shape";
                else if ((numel *= d->via.u64) > (1ull << 40)) bad = "shape too large";
                else v->t.shape[i] = (int64_t)d->via.u64;
            }
            if (!bad && data->via.bin.size != numel * dtype_size(v->t.dt)) bad = "data size does not match the shape";
            else if (!bad && ck->via.u64 != hash64(data->via.bin.ptr, data->via.bin.size)) bad = "data checksum mismatch";
            v->t.data = (void *)data->via.bin.ptr;
        }
    }
    if (!bad) return 1;
    snprintf(why, nwhy, "%s", bad);
    return 0;
}

void packed_frame_free(packed_frame *v) { msgpack_unpacked_destroy(&v->u); }

int packed_frame_is(const packed_frame *v, const char *name, dtype dt, int ndim, const int64_t *dims,
                    const char *const *skeys, const char *const *svals, const char *const *ikeys, const int64_t *ivals,
                    char *why, size_t nwhy) {
    char d[128];
    if (strcmp(v->name, name) != 0) { snprintf(why, nwhy, "frame '%s' where '%s' was expected", v->name, name); return 0; }
    int ok = v->t.dt == dt && v->t.ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = dims[i] < 0 || dims[i] == v->t.shape[i];
    if (!ok) { snprintf(why, nwhy, "frame '%s' is %s, not of the shape and dtype expected", name, tensor_desc(&v->t, d, sizeof d)); return 0; }
    for (int i = 0; skeys && skeys[i]; i++)
        if (!obj_is_str(meta_get(&v->meta, skeys[i]), svals[i])) {
            snprintf(why, nwhy, "frame '%s': meta %s is not '%s'", name, skeys[i], svals[i]);
            return 0;
        }
    for (int i = 0; ikeys && ikeys[i]; i++) {
        int64_t x;
        if (!meta_get_i64(&v->meta, ikeys[i], &x) || x != ivals[i]) {
            snprintf(why, nwhy, "frame '%s': meta %s is not %lld", name, ikeys[i], (long long)ivals[i]);
            return 0;
        }
    }
    return 1;
}

void frame_write_packed(frame_writer *w, const void *bytes, size_t n, long nframes) {
    if (nframes < 0) entk_die(ENTK_EXIT_FAIL, "internal: packed frames are not whole msgpack objects");
    if (n && fwrite(bytes, 1, n, w->out.fp) != n) entk_die(ENTK_EXIT_FAIL, "writing frames: %s", strerror(errno));
    w->nframes += nframes;
}

void frame_writer_close(frame_writer *w) {
    write_end(w);
    msgpack_sbuffer_destroy(&w->sb);
    outfile_commit(&w->out);
}

entk_key frame_derive_key(const char *producer, int argc, char **argv, int ninputs, const entk_key *inputs) {
    keybuilder kb;
    keybuilder_init(&kb, "stream");
    keybuilder_str(&kb, producer);
    keybuilder_str(&kb, ENTK_VERSION);
    keybuilder_code(&kb, 1);
    keybuilder_i64(&kb, argc);
    for (int i = 0; i < argc; i++) keybuilder_str(&kb, argv[i]);
    keybuilder_i64(&kb, ninputs);
    for (int i = 0; i < ninputs; i++) keybuilder_str(&kb, inputs[i].hex);
    return keybuilder_final(&kb);
}

/* ------------------------------------------------------------------ reader */

void frame_fail(const frame_reader *r, const frame *f, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->after_end) entk_die(ENTK_EXIT_INPUT, "%s: trailing data after the end frame: %s", r->src, msg);
    if (f && f->name)
        entk_die(ENTK_EXIT_INPUT, "%s: frame %ld (%s): %s", r->src, f->index, f->name, msg);
    entk_die(ENTK_EXIT_INPUT, "%s: frame %ld: %s", r->src, r->nframes, msg);
}

/* Reads what the input has now (0 only at its end) after the unconsumed bytes, making room for an
 * object of need bytes. Not fread: fread waits for its whole buffer, so a filter would not see a
 * frame until the ones after it had been written, and the stages of a pipeline would take turns
 * instead of running side by side (the Transformer's W_U series: 5.0 s with fread, 3.9 s with
 * read). Lengths claimed by the input are not trusted: the buffer grows to at most twice what has
 * arrived (plus 1 MiB), so a header claiming 4 GiB costs nothing until 4 GiB come. */
static size_t fill(frame_reader *r, size_t need) {
    if (r->start > 0) {
        memmove(r->in, r->in + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    size_t want = need > r->end + 65536 ? need : r->end + 65536;
    /* a file holds what it holds (next_object checked need against it); a pipe must send it */
    size_t cap = r->file_left >= 0 ? r->end + (size_t)r->file_left + 1 : 2 * r->end + (1 << 20);
    if (want > cap) want = cap;
    if (want > r->incap) {
        r->incap = want;
        r->in = xrealloc(r->in, r->incap);
    }
    for (;;) {
        ssize_t got = read(r->fd, r->in + r->end, r->incap - r->end);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) entk_die(ENTK_EXIT_FAIL, "%s: read error: %s", r->src, strerror(errno));
        r->end += (size_t)got;
        if (r->file_left >= 0) r->file_left -= got < r->file_left ? got : r->file_left;
        return (size_t)got;
    }
}

/* Next top-level msgpack object into r->res, or 0 at a clean end of input. The object is scanned
 * whole (mpscan.h) before msgpack-c sees it, so msgpack-c allocates only for items that exist. */
static int next_object(frame_reader *r) {
    r->start += r->used;
    r->used = 0;
    memset(&r->scan, 0, sizeof r->scan);
    for (;;) {
        size_t have = r->end - r->start, need = 1;
        if (have > 0) {
            int st = mp_scan_step(&r->scan, r->in + r->start, have, &need);
            if (st == MP_WHOLE) break;
            if (st == MP_BAD) frame_fail(r, NULL, "corrupt data (%s)", r->scan.why);
        }
        /* a file cannot grow the bytes a length claims: say so now instead of reading to its end */
        int short_file = r->file_left >= 0 && need - have > (uint64_t)r->file_left;
        if (short_file || fill(r, need) == 0) {
            if (have == 0 && r->end == r->start) return 0;
            frame_fail(r, NULL, "truncated frame (input ended inside a frame)");
        }
    }
    size_t len = r->scan.pos, off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(&r->res, (const char *)r->in + r->start, len, &off);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR) entk_die(ENTK_EXIT_FAIL, "%s: out of memory reading frames", r->src);
    if (ret != MSGPACK_UNPACK_SUCCESS || off != len) frame_fail(r, NULL, "corrupt data (not a msgpack frame)");
    r->used = len;
    return 1;
}

static int obj_is_str(const msgpack_object *o, const char *s) {
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) && memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

const msgpack_object *meta_get(const msgpack_object *map, const char *key) {
    if (!map || map->type != MSGPACK_OBJECT_MAP) return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (obj_is_str(&map->via.map.ptr[i].key, key)) return &map->via.map.ptr[i].val;
    return NULL;
}

int meta_get_f64(const msgpack_object *map, const char *key, double *out) {
    const msgpack_object *o = meta_get(map, key);
    if (!o) return 0;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; return 1;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; return 1;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; return 1;
    default: return 0;
    }
}

int meta_get_i64(const msgpack_object *map, const char *key, int64_t *out) {
    const msgpack_object *o = meta_get(map, key);
    if (!o) return 0;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) { *out = (int64_t)o->via.u64; return 1; }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) { *out = o->via.i64; return 1; }
    return 0;
}

const char *meta_get_str(const msgpack_object *map, const char *key, char *buf, size_t n) {
    const msgpack_object *o = meta_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_STR || n == 0) return NULL;
    size_t k = o->via.str.size < n - 1 ? o->via.str.size : n - 1;
    memcpy(buf, o->via.str.ptr, k);
    buf[k] = 0;
    return buf;
}

static void copy_str(const frame_reader *r, const msgpack_object *o, char *buf, size_t n, const char *what) {
    if (!o || o->type != MSGPACK_OBJECT_STR) frame_fail(r, NULL, "missing or non-string '%s'", what);
    if (o->via.str.size >= n) frame_fail(r, NULL, "'%s' too long", what);
    memcpy(buf, o->via.str.ptr, o->via.str.size);
    buf[o->via.str.size] = 0;
}

/* The content digest (frame.h) takes each frame after the header as kind, name and meta (packed
 * again, so equal maps give equal bytes), and for a tensor its dtype, shape and data checksum. */
static void digest_str(frame_reader *r, const char *s) {
    uint64_t n = strlen(s);
    XXH3_128bits_update(r->content, &n, sizeof n);
    XXH3_128bits_update(r->content, s, n);
}

static void digest_frame(frame_reader *r, const frame *f, uint64_t check) {
    digest_str(r, f->kind);
    digest_str(r, f->name);
    msgpack_sbuffer_clear(&r->metabuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &r->metabuf, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, f->meta);
    uint64_t n = r->metabuf.size;
    XXH3_128bits_update(r->content, &n, sizeof n);
    XXH3_128bits_update(r->content, r->metabuf.data, n);
    if (strcmp(f->kind, "tensor") != 0) return;
    digest_str(r, dtype_name(f->t.dt));
    int64_t dims[TENSOR_MAXDIM + 1] = {f->t.ndim};
    for (int i = 0; i < f->t.ndim; i++) dims[i + 1] = f->t.shape[i];
    XXH3_128bits_update(r->content, dims, (size_t)(f->t.ndim + 1) * sizeof dims[0]);
    XXH3_128bits_update(r->content, &check, sizeof check);
}

entk_key frame_reader_content(const frame_reader *r) {
    if (!r->done) entk_die(ENTK_EXIT_FAIL, "internal: %s: content digest asked for before the stream's end", r->src);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(r->content));
    entk_key k;
    for (int i = 0; i < 16; i++) snprintf(k.hex + 2 * i, 3, "%02x", c.digest[i]);
    return k;
}

static void read_header(frame_reader *r) {
    if (!next_object(r)) frame_fail(r, NULL, "empty input (expected an entk frame stream)");
    msgpack_object *o = &r->res.data;
    if (o->type != MSGPACK_OBJECT_MAP) frame_fail(r, NULL, "not an entk frame stream (first object is not a map)");
    char kind[16];
    copy_str(r, meta_get(o, "kind"), kind, sizeof kind, "kind");
    if (strcmp(kind, "header") != 0) frame_fail(r, NULL, "stream does not start with a header frame (got '%s')", kind);
    frame_header *h = &r->h;
    memset(h, 0, sizeof *h);
    copy_str(r, meta_get(o, "name"), h->producer, sizeof h->producer, "name");
    const msgpack_object *m = meta_get(o, "meta");
    if (!m || m->type != MSGPACK_OBJECT_MAP) frame_fail(r, NULL, "header has no meta map");
    copy_str(r, meta_get(m, "version"), h->version, sizeof h->version, "version");
    char key[40];
    copy_str(r, meta_get(m, "key"), key, sizeof key, "key");
    if (!key_valid(key)) frame_fail(r, NULL, "header key '%s' is not 32 hex digits", key);
    memcpy(h->key.hex, key, 33);
    const msgpack_object *in = meta_get(m, "inputs");
    if (!in || in->type != MSGPACK_OBJECT_ARRAY) frame_fail(r, NULL, "header has no inputs array");
    if (in->via.array.size > FRAME_MAX_INPUTS) frame_fail(r, NULL, "header lists too many inputs");
    h->ninputs = (int)in->via.array.size;
    for (int i = 0; i < h->ninputs; i++) {
        const msgpack_object *e = &in->via.array.ptr[i];
        copy_str(r, meta_get(e, "name"), h->input_name[i], sizeof h->input_name[i], "inputs.name");
        copy_str(r, meta_get(e, "key"), key, sizeof key, "inputs.key");
        if (!key_valid(key)) frame_fail(r, NULL, "header input key '%s' is not 32 hex digits", key);
        memcpy(h->input_key[i].hex, key, 33);
    }
    const msgpack_object *args = meta_get(m, "args");
    if (!args || args->type != MSGPACK_OBJECT_ARRAY) frame_fail(r, NULL, "header has no args array");
    h->argc = (int)args->via.array.size;
    h->argv = xcalloc((size_t)h->argc + 1, sizeof(char *));
    for (int i = 0; i < h->argc; i++) {
        const msgpack_object *a = &args->via.array.ptr[i];
        if (a->type != MSGPACK_OBJECT_STR) frame_fail(r, NULL, "header args must be strings");
        h->argv[i] = xmalloc(a->via.str.size + 1);
        memcpy(h->argv[i], a->via.str.ptr, a->via.str.size);
        h->argv[i][a->via.str.size] = 0;
    }
    r->nframes = 1;
    r->done = 0;
    XXH3_128bits_reset(r->content);
    r->after_end = 0;
}

static int starts_map(const frame_reader *r) {
    unsigned c = r->end > r->start ? r->in[r->start] : 0;
    return (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf;
}

/* Opens the input; 0 if it is not a frame stream and raw is allowed (its bytes stay buffered). */
static int reader_start(frame_reader *r, const char *path, int streams, int raw) {
    memset(r, 0, sizeof *r);
    r->streams = streams;
    r->file_left = -1;
    if (!path || strcmp(path, "-") == 0) {
        r->fd = 0;
        path = "<stdin>";
    } else {
        r->fd = open(path, O_RDONLY);
        if (r->fd < 0) entk_die(ENTK_EXIT_INPUT, "cannot open %s: %s", path, strerror(errno));
        r->close_fd = 1;
    }
    r->src = xstrdup(path);
    struct stat sb;
    off_t at;
    if (fstat(r->fd, &sb) == 0 && S_ISREG(sb.st_mode) && (at = lseek(r->fd, 0, SEEK_CUR)) >= 0)
        r->file_left = sb.st_size > at ? (int64_t)(sb.st_size - at) : 0;
    msgpack_unpacked_init(&r->res);
    msgpack_sbuffer_init(&r->metabuf);
    if (!(r->content = XXH3_createState())) entk_die(ENTK_EXIT_FAIL, "out of memory");
    if (raw) {
        if (r->end == r->start) fill(r, 1);
        if (!starts_map(r)) return 0;
    }
    read_header(r);
    return 1;
}

void frame_reader_open(frame_reader *r, const char *path) { reader_start(r, path, 0, 0); }
void frame_reader_open_streams(frame_reader *r, const char *path) { reader_start(r, path, 1, 0); }
int frame_reader_open_or_raw(frame_reader *r, const char *path) { return reader_start(r, path, 1, 1); }

char *frame_reader_slurp(frame_reader *r, size_t *n) {
    r->start += r->used;
    r->used = 0;
    while (fill(r, r->end - r->start + (1 << 20)) > 0) {}
    size_t len = r->end - r->start;
    char *out = xmalloc(len + 1);
    memcpy(out, r->in + r->start, len);
    out[len] = 0;
    r->start = r->end;
    *n = len;
    return out;
}

int frame_reader_next_stream(frame_reader *r) {
    if (!r->done) return 0;
    /* any further bytes mean another stream must follow */
    r->start += r->used;
    r->used = 0;
    if (r->end == r->start && fill(r, 1) == 0) return 0;
    for (int i = 0; i < r->h.argc; i++) free(r->h.argv[i]);
    free(r->h.argv);
    r->h.argv = NULL;
    r->h.argc = 0;
    r->after_end = 1;
    read_header(r);
    return 1;
}

/* After the end frame of a reader of one stream: the input must end there. */
static void expect_end(frame_reader *r) {
    r->start += r->used;
    r->used = 0;
    if (r->end == r->start && fill(r, 1) == 0) return;
    r->after_end = 1;
    char kind[16];
    if (starts_map(r) && next_object(r) && meta_get_str(&r->res.data, "kind", kind, sizeof kind) && strcmp(kind, "header") == 0)
        frame_fail(r, NULL, "a second stream follows (%s reads one stream)", entk_prog());
    frame_fail(r, NULL, "not a frame stream");
}

int frame_read(frame_reader *r, frame *f) {
    memset(f, 0, sizeof *f);
    if (r->done) return 0;
    if (!next_object(r)) frame_fail(r, NULL, "truncated stream (no end frame after %ld frames)", r->nframes);
    msgpack_object *o = &r->res.data;
    f->index = r->nframes;
    if (o->type != MSGPACK_OBJECT_MAP) frame_fail(r, NULL, "frame is not a map");
    copy_str(r, meta_get(o, "kind"), r->kind, sizeof r->kind, "kind");
    copy_str(r, meta_get(o, "name"), r->name, sizeof r->name, "name");
    f->kind = r->kind;
    f->name = r->name;
    const msgpack_object *m = meta_get(o, "meta");
    if (m && m->type != MSGPACK_OBJECT_MAP && m->type != MSGPACK_OBJECT_NIL) frame_fail(r, f, "meta is not a map");
    if (m) f->meta = *m;
    if (strcmp(r->kind, "end") == 0) {
        int64_t n;
        if (!meta_get_i64(m, "frames", &n)) frame_fail(r, f, "end frame has no frame count");
        if (n != r->nframes - 1)
            frame_fail(r, f, "stream has %ld frames but its end frame says %lld (frames lost or spliced)", r->nframes - 1, (long long)n);
        r->done = 1;
        if (!r->streams) expect_end(r);
        return 0;
    }
    r->nframes++;
    if (strcmp(r->kind, "record") == 0) {
        digest_frame(r, f, 0);
        return 1;
    }
    if (strcmp(r->kind, "header") == 0) frame_fail(r, f, "header frame inside a stream (missing end frame of the previous stream?)");
    if (strcmp(r->kind, "tensor") != 0) frame_fail(r, f, "unknown frame kind '%s'", r->kind);
    char dts[8];
    copy_str(r, meta_get(o, "dtype"), dts, sizeof dts, "dtype");
    if (!dtype_parse(dts, &f->t.dt)) frame_fail(r, f, "unknown dtype '%s'", dts);
    const msgpack_object *sh = meta_get(o, "shape");
    if (!sh || sh->type != MSGPACK_OBJECT_ARRAY) frame_fail(r, f, "missing shape");
    if (sh->via.array.size > TENSOR_MAXDIM) frame_fail(r, f, "rank %u exceeds %d", sh->via.array.size, TENSOR_MAXDIM);
    f->t.ndim = (int)sh->via.array.size;
    const msgpack_object *data = meta_get(o, "data");
    if (!data || data->type != MSGPACK_OBJECT_BIN) frame_fail(r, f, "missing data (bin)");
    /* the product is checked before it can wrap: [2^40, 2^24] must not pass as 0 elements */
    uint64_t numel = 1, need;
    for (int i = 0; i < f->t.ndim; i++) {
        const msgpack_object *d = &sh->via.array.ptr[i];
        if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER || d->via.u64 > (1ull << 40))
            frame_fail(r, f, "shape entry %d is not a non-negative integer", i);
        f->t.shape[i] = (int64_t)d->via.u64;
        if (__builtin_mul_overflow(numel, d->via.u64, &numel) || numel > (1ull << 40))
            frame_fail(r, f, "shape too large");
    }
    if (__builtin_mul_overflow(numel, (uint64_t)dtype_size(f->t.dt), &need)) frame_fail(r, f, "shape too large");
    if (data->via.bin.size != need) {
        char d[128];
        frame_fail(r, f, "data is %u bytes but shape %s needs %llu", data->via.bin.size, tensor_desc(&f->t, d, sizeof d),
                   (unsigned long long)need);
    }
    const msgpack_object *ck = meta_get(o, "check");
    if (!ck || ck->type != MSGPACK_OBJECT_POSITIVE_INTEGER) frame_fail(r, f, "missing data checksum");
    if (ck->via.u64 != hash64(data->via.bin.ptr, need)) frame_fail(r, f, "data checksum mismatch (corrupt frame)");
    digest_frame(r, f, ck->via.u64);
    if (need > r->bufcap) {
        free(r->buf);
        r->bufcap = (need + 63) / 64 * 64;
        r->buf = aligned_alloc(64, r->bufcap);
        if (!r->buf) entk_die(ENTK_EXIT_FAIL, "out of memory reading %s", r->src);
    }
    /* copy into an aligned buffer: msgpack's bin payload may sit at any address */
    if (need) memcpy(r->buf, data->via.bin.ptr, need);
    f->t.data = r->buf;
    return 1;
}

void frame_read_tensor(frame_reader *r, frame *f, const char *name) {
    if (!frame_read(r, f)) frame_fail(r, NULL, "stream ended; expected tensor frame '%s'", name);
    if (strcmp(f->kind, "tensor") != 0 || strcmp(f->name, name) != 0)
        frame_fail(r, f, "expected tensor frame '%s', got %s '%s'", name, f->kind, f->name);
}

void frame_expect_shape(const frame_reader *r, const frame *f, int ndim, const int64_t *dims) {
    char d[128];
    int ok = f->t.ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        if (dims[i] >= 0 && dims[i] != f->t.shape[i]) ok = 0;
    if (ok) return;
    char want[128];
    size_t k = (size_t)snprintf(want, sizeof want, "[");
    for (int i = 0; i < ndim && k < sizeof want; i++)
        k += dims[i] >= 0 ? (size_t)snprintf(want + k, sizeof want - k, "%s%lld", i ? "," : "", (long long)dims[i])
                          : (size_t)snprintf(want + k, sizeof want - k, "%s*", i ? "," : "");
    if (k < sizeof want) snprintf(want + k, sizeof want - k, "]");
    frame_fail(r, f, "wrong shape %s, expected %s", tensor_desc(&f->t, d, sizeof d), want);
}

tensor frame_take(const frame_reader *r, const frame *f, dtype d) {
    if (dtype_is_float(d) != dtype_is_float(f->t.dt))
        frame_fail(r, f, "wrong dtype %s, expected %s", dtype_name(f->t.dt), dtype_name(d));
    return tensor_as(&f->t, d);
}

void frame_reader_close(frame_reader *r) {
    if (r->close_fd) close(r->fd);
    msgpack_unpacked_destroy(&r->res);
    free(r->in);
    for (int i = 0; i < r->h.argc; i++) free(r->h.argv[i]);
    free(r->h.argv);
    free(r->buf);
    free(r->src);
    XXH3_freeState(r->content);
    msgpack_sbuffer_destroy(&r->metabuf);
    memset(r, 0, sizeof *r);
}

void frame_header_make(frame_header *h, const char *producer, int argc, char **argv, int ninputs,
                       const char *const *input_names, const entk_key *input_keys) {
    memset(h, 0, sizeof *h);
    snprintf(h->producer, sizeof h->producer, "%s", producer);
    h->argc = argc;
    h->argv = argv;
    if (ninputs > FRAME_MAX_INPUTS) entk_die(ENTK_EXIT_USAGE, "at most %d inputs", FRAME_MAX_INPUTS);
    h->ninputs = ninputs;
    for (int i = 0; i < ninputs; i++) {
        snprintf(h->input_name[i], sizeof h->input_name[i], "%s", input_names[i]);
        h->input_key[i] = input_keys[i];
    }
    h->key = frame_derive_key(producer, argc, argv, ninputs, input_keys);
}

void print_json_str(FILE *fp, const char *s, size_t n) {
    fputc('"', fp);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(fp, "\\%c", c);
        else if (c == '\n') fputs("\\n", fp);
        else if (c < 0x20) fprintf(fp, "\\u%04x", c);
        else fputc(c, fp);
    }
    fputc('"', fp);
}

void msgpack_print_json(FILE *fp, const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: fputs("null", fp); break;
    case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "true" : "false", fp); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf(fp, "%llu", (unsigned long long)o->via.u64); break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(fp, "%lld", (long long)o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (isfinite(o->via.f64)) fprintf(fp, "%.17g", o->via.f64); else fputs("null", fp);
        break;
    case MSGPACK_OBJECT_STR: print_json_str(fp, o->via.str.ptr, o->via.str.size); break;
    case MSGPACK_OBJECT_BIN: fprintf(fp, "\"<%u bytes>\"", o->via.bin.size); break;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', fp);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i) fputc(',', fp);
            msgpack_print_json(fp, &o->via.array.ptr[i]);
        }
        fputc(']', fp);
        break;
    case MSGPACK_OBJECT_MAP:
        fputc('{', fp);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (i) fputc(',', fp);
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type == MSGPACK_OBJECT_STR) print_json_str(fp, k->via.str.ptr, k->via.str.size);
            else fputs("\"?\"", fp);
            fputc(':', fp);
            msgpack_print_json(fp, &o->via.map.ptr[i].val);
        }
        fputc('}', fp);
        break;
    default: fputs("null", fp);
    }
}
