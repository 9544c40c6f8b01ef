#include "core/mpscan.h"

static uint64_t be(const unsigned char *p, int k) {
    uint64_t v = 0;
    for (int i = 0; i < k; i++) v = v << 8 | p[i];
    return v;
}

/* Size of the item at p: its header length (hdr), the payload after it (body) and, for a
 * container, its item count (items; a map's is twice its entries). 0 if the header is incomplete
 * (n bytes available), -1 if c is not a msgpack type byte. */
static int item_size(const unsigned char *p, size_t n, size_t *hdr, uint64_t *body, uint64_t *items) {
    unsigned c = p[0];
    *body = 0;
    *items = 0;
    *hdr = 1;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) return 1;
    if (c <= 0x8f) { *items = 2ull * (c & 0x0f); return 1; }
    if (c <= 0x9f) { *items = c & 0x0f; return 1; }
    if (c <= 0xbf) { *body = c & 0x1f; return 1; }
    int lenbytes = 0, extra = 0;   /* a length field of lenbytes, then extra bytes before the body */
    switch (c) {
    case 0xc4: case 0xd9: lenbytes = 1; break;
    case 0xc5: case 0xda: lenbytes = 2; break;
    case 0xc6: case 0xdb: lenbytes = 4; break;
    case 0xc7: lenbytes = 1; extra = 1; break;
    case 0xc8: lenbytes = 2; extra = 1; break;
    case 0xc9: lenbytes = 4; extra = 1; break;
    case 0xca: *body = 4; return 1;
    case 0xcb: *body = 8; return 1;
    case 0xcc: case 0xd0: *body = 1; return 1;
    case 0xcd: case 0xd1: *body = 2; return 1;
    case 0xce: case 0xd2: *body = 4; return 1;
    case 0xcf: case 0xd3: *body = 8; return 1;
    case 0xd4: *body = 2; return 1;
    case 0xd5: *body = 3; return 1;
    case 0xd6: *body = 5; return 1;
    case 0xd7: *body = 9; return 1;
    case 0xd8: *body = 17; return 1;
    case 0xdc: case 0xde: case 0xdd: case 0xdf: {
        int k = c == 0xdc || c == 0xde ? 2 : 4;
        if (n < (size_t)(1 + k)) return 0;
        *hdr = 1 + (size_t)k;
        *items = be(p + 1, k) * (c >= 0xde ? 2 : 1);
        return 1;
    }
    default: return -1;   /* 0xc1: never used */
    }
    if (n < (size_t)(1 + lenbytes)) return 0;
    *hdr = 1 + (size_t)lenbytes + (size_t)extra;
    *body = be(p + 1, lenbytes);
    return 1;
}

int mp_scan_step(mp_scan *s, const unsigned char *p, size_t n, size_t *need) {
    for (;;) {
        if (s->pos >= n) { *need = s->pos + 1; return MP_MORE; }
        size_t hdr;
        uint64_t body, items;
        int k = item_size(p + s->pos, n - s->pos, &hdr, &body, &items);
        if (k < 0) { s->why = "byte 0xc1 is not msgpack"; return MP_BAD; }
        if (k == 0 || hdr + body > n - s->pos) {
            *need = k == 0 ? n + 1 : s->pos + hdr + (size_t)body;
            return MP_MORE;
        }
        if (++s->items > MP_MAX_ITEMS || items > MP_MAX_ITEMS - (uint64_t)s->items) {
            s->why = "more msgpack items than a frame may have";
            return MP_BAD;
        }
        s->pos += hdr + (size_t)body;
        /* the item just read fills a slot of the innermost open container */
        if (s->depth > 0) s->left[s->depth - 1]--;
        if (items > 0) {
            if (s->depth == MP_MAX_DEPTH) { s->why = "msgpack nested too deep"; return MP_BAD; }
            s->left[s->depth++] = (uint32_t)items;
        }
        while (s->depth > 0 && s->left[s->depth - 1] == 0) s->depth--;
        if (s->depth == 0) return MP_WHOLE;
    }
}

long mp_count_objects(const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    long count = 0;
    size_t off = 0;
    while (off < n) {
        mp_scan s = {0};
        size_t need;
        if (mp_scan_step(&s, p + off, n - off, &need) != MP_WHOLE) return -1;
        off += s.pos;
        count++;
    }
    return count;
}
