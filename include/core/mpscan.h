/* mpscan: walks msgpack bytes without allocating anything, to find where one object ends.
 *
 * msgpack-c allocates a container's items as soon as it reads the container's header: a 5-byte
 * header claiming 2^32 map entries asks for 128 GiB before a single entry has arrived. The frame
 * reader therefore scans each top-level object first and hands it to msgpack-c only once it is
 * whole: every item of every container is then backed by at least one byte of input, so what
 * msgpack-c allocates is bounded by a small multiple of the bytes actually read. The scan also
 * enforces entk's own limits (nesting depth, items per object), which no frame comes near.
 * The scan is resumable: call it again with more bytes and it continues where it stopped. */
#ifndef ENTK_MPSCAN_H
#define ENTK_MPSCAN_H
#include <stddef.h>
#include <stdint.h>

#define MP_MAX_DEPTH 16            /* a frame nests 4 deep (frame, meta, inputs, input) */
#define MP_MAX_ITEMS (1u << 22)    /* items in one object: tensors carry the bulk as one bin */

enum { MP_WHOLE, MP_MORE, MP_BAD };

typedef struct {
    size_t pos;                    /* bytes of the object scanned so far */
    int depth;                     /* open containers */
    uint32_t left[MP_MAX_DEPTH];   /* items still to come in each (a map entry counts 2) */
    uint32_t items;                /* items seen so far */
    const char *why;               /* MP_BAD: what is wrong */
} mp_scan;

/* Continues scanning the object that starts at p[0] (p[0, n) are the bytes available, the same
 * prefix as in earlier calls plus any that arrived since). MP_WHOLE: the object is p[0, s->pos).
 * MP_MORE: it goes on past n; *need is a lower bound on its total length. MP_BAD: s->why. Reset
 * the state (= {0}) before scanning the next object. */
int mp_scan_step(mp_scan *s, const unsigned char *p, size_t n, size_t *need);

/* Number of whole msgpack objects making up bytes[0, n), or -1 if they are not whole objects. */
long mp_count_objects(const void *bytes, size_t n);
#endif
