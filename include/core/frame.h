/* frame: entk's msgpack frame streams.
 *
 * A stream is a sequence of top-level msgpack maps ("frames"), never one big array, so a reader
 * holds one frame at a time. Every frame is a map with
 *   kind  : "header" | "tensor" | "record" | "end"
 *   name  : string
 *   meta  : map (string keys; ints, floats, strings, arrays)
 * and, for kind "tensor", also
 *   dtype : "f32" | "f64" | "i32" | "i64" | "u8"
 *   shape : array of non-negative ints (row-major)
 *   data  : bin, little-endian, exactly prod(shape) * sizeof(dtype) bytes
 *   check : xxh3-64 of data (uint), verified on read
 * The first frame is the header: name = producing program, meta = {version, args, inputs:
 * [{name, key}], key}. `key` (xxh3-128 hex) is derived from the producer, its arguments and the
 * keys of what it consumed, so provenance and cache keys chain through a pipeline. The last frame
 * is "end" with meta {frames: number of frames before it}: a stream cut at a frame boundary is
 * detected too. README.md "Frame format" documents this for users.
 * A header's key says where a stream came from, but a stream can be edited under its old header:
 * what a result depends on is the stream's content. So the reader also keeps a content digest of
 * every stream (frame_reader_content): kind, name, dtype, shape, meta and the data's checksum of
 * each frame after the header, as git names an object by its content. The data enter through the
 * xxh3-64 `check` that the reader verifies anyway, so the digest costs next to nothing. */
#ifndef ENTK_FRAME_H
#define ENTK_FRAME_H
#include <msgpack.h>
#include <stdint.h>
#include "core/hash.h"
#include "core/mpscan.h"
#include "core/outfile.h"
#include "core/tensor.h"

#define ENTK_VERSION "0.1.0"
#define FRAME_MAX_INPUTS 16

typedef struct {
    char producer[64];
    char version[32];
    int ninputs;
    char input_name[FRAME_MAX_INPUTS][256];
    entk_key input_key[FRAME_MAX_INPUTS];
    entk_key key;
    int argc;
    char **argv;  /* the producer's arguments (writer: borrowed; reader: owned) */
} frame_header;

/* ---- metadata builder (writer side) ---- */
#define META_MAX 48
typedef struct {
    int n;
    struct {
        const char *key;
        char type;        /* 'i' int, 'f' float, 's' string, 'F' float array, 'I' int array */
        int64_t i;
        double f;
        const char *s;
        const double *fa;
        const int64_t *ia;
        int64_t len;
    } it[META_MAX];
} meta;

void meta_i64(meta *m, const char *key, int64_t v);
void meta_f64(meta *m, const char *key, double v);
void meta_str(meta *m, const char *key, const char *s);
void meta_f64s(meta *m, const char *key, const double *v, int64_t n);
void meta_i64s(meta *m, const char *key, const int64_t *v, int64_t n);

/* ---- writer ---- */
typedef struct {
    outfile out;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    long nframes;
} frame_writer;

/* Opens path ("-" = stdout) and writes the header frame. */
void frame_writer_open(frame_writer *w, const char *path, const frame_header *h);
void frame_write_tensor(frame_writer *w, const char *name, const tensor *t, const meta *m);
void frame_write_record(frame_writer *w, const char *name, const meta *m);
/* Packs a tensor frame into buf (appending) instead of a stream: used for cache entries. */
void frame_pack_tensor(msgpack_sbuffer *buf, const char *name, const tensor *t, const meta *m);
/* Number of top-level msgpack objects in a packed buffer (-1 if it is not whole objects). */
long frame_count_packed(const void *bytes, size_t n);
/* One packed tensor frame (a cache entry's payload), parsed to be checked against a request. */
typedef struct {
    msgpack_unpacked u;     /* owns what name and meta point into */
    char name[256];
    tensor t;               /* dtype, ndim, shape; data points into u (unaligned), not owned */
    msgpack_object meta;
} packed_frame;
/* Parses the next frame of bytes[*off..n) into v and advances *off: 1 if it is a well-formed tensor
 * frame (kind, name, dtype, shape, data of exactly the size the shape needs, matching check), else
 * 0 with why set. Release v with packed_frame_free either way. */
int frame_packed_next(const void *bytes, size_t n, size_t *off, packed_frame *v, char *why, size_t nwhy);
void packed_frame_free(packed_frame *v);
/* Checks packed frame v: name, dtype, shape (dims -1 = any) and the string and integer meta
 * entries given as NULL-terminated key lists with their values; 1, or 0 with why set. */
int packed_frame_is(const packed_frame *v, const char *name, dtype dt, int ndim, const int64_t *dims,
                    const char *const *skeys, const char *const *svals, const char *const *ikeys, const int64_t *ivals,
                    char *why, size_t nwhy);
/* Copies already-packed frames (from frame_pack_tensor) into the stream. */
void frame_write_packed(frame_writer *w, const void *bytes, size_t n, long nframes);
/* Starts a stream on the output. A writer not yet open (zero-initialised) opens path, as
 * frame_writer_open; an open one ends its current stream and starts another on the same output:
 * filters that get several streams (one per checkpoint, say) answer each with one, concatenated
 * like `cat` would. */
void frame_writer_stream(frame_writer *w, const char *path, const frame_header *h);
/* Writes the end frame and commits the output (rename into place). */
void frame_writer_close(frame_writer *w);

/* ---- reader ---- */
typedef struct {
    const char *kind;       /* "tensor" or "record" */
    const char *name;
    tensor t;               /* kind "tensor": data is owned by the reader, valid until the next read */
    msgpack_object meta;    /* a map, or nil; valid until the next read */
    long index;             /* 0-based frame number in the stream (header = 0) */
} frame;

typedef struct {
    int fd, close_fd;
    char *src;              /* for messages: the path, or "<stdin>" */
    unsigned char *in;      /* input bytes; in[start, end) are not consumed yet */
    size_t incap, start, end;
    size_t used;            /* length of the current object at in[start]: consumed by the next read */
    int64_t file_left;      /* a regular file: bytes not read yet; -1 for a pipe or terminal */
    mp_scan scan;
    msgpack_unpacked res;
    long nframes;
    int done;
    int streams;            /* several streams may follow one another (frame_reader_open_streams) */
    int after_end;          /* reading past an end frame: messages say so */
    frame_header h;
    void *buf;              /* reader-owned aligned copy of the current frame's data */
    size_t bufcap;
    char kind[16], name[256];
    XXH3_state_t *content;  /* digest of the current stream's frames after its header */
    msgpack_sbuffer metabuf;
} frame_reader;

/* Opens path ("-" = stdin) and reads and validates the header of its one stream: anything after
 * that stream's end frame (a second stream, stray bytes) is an error, reported when the end frame
 * is read. */
void frame_reader_open(frame_reader *r, const char *path);
/* The same for filters that answer each of several concatenated streams (frame_reader_next_stream);
 * bytes after an end frame must still be another stream. */
void frame_reader_open_streams(frame_reader *r, const char *path);
/* For inputs that are frames or something else (entk-tokenize --decode: frames or lines of ids):
 * 1 and the reader open as frame_reader_open_streams if the first byte starts a msgpack map, else
 * 0 and the input stays in the reader, whole, for frame_reader_slurp. One reader owns the input
 * either way, so no byte is read ahead by one mechanism and lost to another. */
int frame_reader_open_or_raw(frame_reader *r, const char *path);
/* After frame_reader_open_or_raw returned 0: all the input's bytes (NUL-terminated; free them). */
char *frame_reader_slurp(frame_reader *r, size_t *n);
/* Next tensor or record frame: 1, or 0 after a valid end frame. Dies on any malformed input. */
int frame_read(frame_reader *r, frame *f);
/* Like frame_read but dies unless a tensor frame called name follows. */
void frame_read_tensor(frame_reader *r, frame *f, const char *name);
void frame_reader_close(frame_reader *r);
/* After frame_read returned 0: 1 if another stream (header) follows, which is then opened. */
int frame_reader_next_stream(frame_reader *r);
/* The content digest of the current stream (see above), once frame_read has returned 0 at its end
 * frame; dies (internal error) before. Streams with equal frames have equal digests whatever their
 * headers say. */
entk_key frame_reader_content(const frame_reader *r);

/* Dies with "<src>: frame N (name): ..." */
void frame_fail(const frame_reader *r, const frame *f, const char *fmt, ...) __attribute__((format(printf, 3, 4), __noreturn__));

/* Metadata lookups on a frame (NULL / 0 if absent or of another type). */
const msgpack_object *meta_get(const msgpack_object *map, const char *key);
int meta_get_f64(const msgpack_object *map, const char *key, double *out);
int meta_get_i64(const msgpack_object *map, const char *key, int64_t *out);
/* Copies a string value into buf; returns buf or NULL. */
const char *meta_get_str(const msgpack_object *map, const char *key, char *buf, size_t n);

/* Checks a tensor frame's rank and dims (-1 = any) or dies naming the frame. */
void frame_expect_shape(const frame_reader *r, const frame *f, int ndim, const int64_t *dims);
/* An owned copy of the frame's tensor converted to dtype d (float<->float only). */
tensor frame_take(const frame_reader *r, const frame *f, dtype d);

/* Key of a stream made by producer from inputs, with args: the chaining rule for header keys. It
 * also names the code (core/codeid.h: the library, the program's own source, the BLAS kernels). */
entk_key frame_derive_key(const char *producer, int argc, char **argv, int ninputs, const entk_key *inputs);

/* Fills a header for producer with canonical args and the keys of its inputs, and derives its key. */
void frame_header_make(frame_header *h, const char *producer, int argc, char **argv, int ninputs,
                       const char *const *input_names, const entk_key *input_keys);
/* Prints s[0, n) as a JSON string literal (quoted and escaped) to fp. */
void print_json_str(FILE *fp, const char *s, size_t n);
/* Prints a msgpack object as JSON to fp. */
void msgpack_print_json(FILE *fp, const msgpack_object *o);
#endif
