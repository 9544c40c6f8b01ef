#include "core/json.h"
#include "core/err.h"
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bump allocator: tokenizer.json has ~10^6 nodes, so per-node malloc would dominate load time. */
typedef struct block { struct block *next; size_t used, cap; char data[]; } block;
typedef struct { block *head; } arena;

static void *arena_alloc(arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->used + n > a->head->cap) {
        size_t cap = n > (1 << 20) ? n : (1 << 20);
        block *b = xmalloc(sizeof(block) + cap);
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

typedef struct {
    const char *p, *start, *end;
    arena a;
    char *err;
    size_t errn;
    jmp_buf jb;
    int depth;
    /* scratch stacks for children while an array/object is being parsed */
    json *stack;
    char **kstack;
    size_t *klstack;
    size_t sp, scap;
} parser;

static void fail(parser *ps, const char *what) {
    int line = 1, col = 1;
    for (const char *q = ps->start; q < ps->p && q < ps->end; q++) {
        if (*q == '\n') { line++; col = 1; } else col++;
    }
    snprintf(ps->err, ps->errn, "line %d col %d: %s", line, col, what);
    longjmp(ps->jb, 1);
}

static void ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t')) ps->p++;
}

static void push(parser *ps, json v, char *k, size_t kl) {
    if (ps->sp == ps->scap) {
        ps->scap = ps->scap ? ps->scap * 2 : 1024;
        ps->stack = xrealloc(ps->stack, ps->scap * sizeof(json));
        ps->kstack = xrealloc(ps->kstack, ps->scap * sizeof(char *));
        ps->klstack = xrealloc(ps->klstack, ps->scap * sizeof(size_t));
    }
    ps->stack[ps->sp] = v;
    ps->kstack[ps->sp] = k;
    ps->klstack[ps->sp] = kl;
    ps->sp++;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static unsigned read_u4(parser *ps) {
    if (ps->end - ps->p < 4) fail(ps, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)ps->p[i]);
        if (h < 0) fail(ps, "bad \\u escape");
        v = v * 16 + (unsigned)h;
    }
    ps->p += 4;
    return v;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static char *parse_string(parser *ps, size_t *len) {
    ps->p++; /* opening quote */
    const char *q = ps->p;
    while (q < ps->end && *q != '"' && *q != '\\') q++;
    /* fast path: no escapes */
    if (q < ps->end && *q == '"') {
        size_t n = (size_t)(q - ps->p);
        char *s = arena_alloc(&ps->a, n + 1);
        memcpy(s, ps->p, n);
        s[n] = 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20) fail(ps, "control character in string");
        ps->p = q + 1;
        *len = n;
        return s;
    }
    /* escapes never lengthen the text, so the remaining input length bounds the output */
    const char *e = ps->p;
    while (e < ps->end && *e != '"') e += (*e == '\\') ? 2 : 1;
    if (e >= ps->end) fail(ps, "unterminated string");
    char *s = arena_alloc(&ps->a, (size_t)(e - ps->p) + 4);
    size_t n = 0;
    while (ps->p < ps->end && *ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) fail(ps, "control character in string");
        if (c != '\\') { s[n++] = (char)c; ps->p++; continue; }
        ps->p++;
        if (ps->p >= ps->end) fail(ps, "unterminated string");
        char ec = *ps->p++;
        switch (ec) {
        case '"': s[n++] = '"'; break;
        case '\\': s[n++] = '\\'; break;
        case '/': s[n++] = '/'; break;
        case 'b': s[n++] = '\b'; break;
        case 'f': s[n++] = '\f'; break;
        case 'n': s[n++] = '\n'; break;
        case 'r': s[n++] = '\r'; break;
        case 't': s[n++] = '\t'; break;
        case 'u': {
            unsigned cp = read_u4(ps);
            if (cp >= 0xD800 && cp < 0xDC00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                const char *save = ps->p;
                ps->p += 2;
                unsigned lo = read_u4(ps);
                if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else ps->p = save;
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; /* lone surrogate */
            n += put_utf8(s + n, cp);
            break;
        }
        default: fail(ps, "bad escape in string");
        }
    }
    if (ps->p >= ps->end) fail(ps, "unterminated string");
    ps->p++;
    s[n] = 0;
    *len = n;
    return s;
}

static void parse_value(parser *ps, json *out);

static void parse_container(parser *ps, json *out, int is_obj) {
    if (++ps->depth > 512) fail(ps, "nesting too deep");
    ps->p++;
    size_t base = ps->sp;
    ws(ps);
    char close = is_obj ? '}' : ']';
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
    } else {
        for (;;) {
            char *k = NULL;
            size_t kl = 0;
            ws(ps);
            if (is_obj) {
                if (ps->p >= ps->end || *ps->p != '"') fail(ps, "expected a string key");
                k = parse_string(ps, &kl);
                ws(ps);
                if (ps->p >= ps->end || *ps->p != ':') fail(ps, "expected ':'");
                ps->p++;
            }
            json v;
            parse_value(ps, &v);
            push(ps, v, k, kl);
            ws(ps);
            if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
            if (ps->p < ps->end && *ps->p == close) { ps->p++; break; }
            fail(ps, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    size_t n = ps->sp - base;
    memset(out, 0, sizeof *out);
    out->type = is_obj ? JSON_OBJ : JSON_ARR;
    out->len = n;
    out->items = arena_alloc(&ps->a, n * sizeof(json) + 1);
    if (is_obj) {
        out->keys = arena_alloc(&ps->a, n * sizeof(char *) + 1);
        out->keylens = arena_alloc(&ps->a, n * sizeof(size_t) + 1);
    }
    if (n > 0) {   /* the stacks are NULL until something was pushed: no arithmetic on them before */
        memcpy(out->items, ps->stack + base, n * sizeof(json));
        if (is_obj) {
            memcpy(out->keys, ps->kstack + base, n * sizeof(char *));
            memcpy(out->keylens, ps->klstack + base, n * sizeof(size_t));
        }
    }
    ps->sp = base;
    ps->depth--;
}

static void parse_value(parser *ps, json *out) {
    ws(ps);
    memset(out, 0, sizeof *out);
    if (ps->p >= ps->end) fail(ps, "unexpected end of input");
    char c = *ps->p;
    if (c == '{') return parse_container(ps, out, 1);
    if (c == '[') return parse_container(ps, out, 0);
    if (c == '"') {
        out->type = JSON_STR;
        out->s = parse_string(ps, &out->len);
        return;
    }
    if (ps->end - ps->p >= 4 && memcmp(ps->p, "true", 4) == 0) { out->type = JSON_BOOL; out->num = 1; ps->p += 4; return; }
    if (ps->end - ps->p >= 5 && memcmp(ps->p, "false", 5) == 0) { out->type = JSON_BOOL; ps->p += 5; return; }
    if (ps->end - ps->p >= 4 && memcmp(ps->p, "null", 4) == 0) { out->type = JSON_NULL; ps->p += 4; return; }
    if (c == '-' || (c >= '0' && c <= '9')) {
        const char *q = ps->p;
        int is_int = 1;
        if (*q == '-') q++;
        if (q >= ps->end || !(*q >= '0' && *q <= '9')) fail(ps, "bad number");
        while (q < ps->end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' || *q == '-')) {
            if (*q == '.' || *q == 'e' || *q == 'E') is_int = 0;
            q++;
        }
        char tmp[64];
        size_t n = (size_t)(q - ps->p);
        if (n >= sizeof tmp) fail(ps, "number too long");
        memcpy(tmp, ps->p, n);
        tmp[n] = 0;
        char *endp;
        out->type = JSON_NUM;
        out->num = strtod(tmp, &endp);
        if (*endp) fail(ps, "bad number");
        if (is_int) {
            errno = 0;
            out->i = strtoll(tmp, &endp, 10);
            out->is_int = errno == 0;
        }
        ps->p = q;
        return;
    }
    fail(ps, "unexpected character");
}

json *json_parse(const char *text, size_t n, char *err, size_t errn) {
    parser ps = {.p = text, .start = text, .end = text + n, .err = err, .errn = errn};
    json *root = NULL;
    if (setjmp(ps.jb)) {
        for (block *b = ps.a.head; b;) { block *nx = b->next; free(b); b = nx; }
        free(ps.stack); free(ps.kstack); free(ps.klstack);
        return NULL;
    }
    root = arena_alloc(&ps.a, sizeof(json));
    parse_value(&ps, root);
    ws(&ps);
    if (ps.p != ps.end) fail(&ps, "trailing characters after the JSON value");
    free(ps.stack); free(ps.kstack); free(ps.klstack);
    arena *a = xmalloc(sizeof(arena));
    *a = ps.a;
    root->arena = a;
    return root;
}

void json_free(json *root) {
    if (!root) return;
    arena *a = root->arena;
    for (block *b = a->head; b;) { block *nx = b->next; free(b); b = nx; }
    free(a);
}

const json *json_get(const json *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJ) return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < obj->len; i++)
        if (obj->keylens[i] == kl && memcmp(obj->keys[i], key, kl) == 0) return &obj->items[i];
    return NULL;
}

int json_get_int(const json *obj, const char *key, int64_t *out) {
    const json *v = json_get(obj, key);
    if (!v || v->type != JSON_NUM || !v->is_int) return 0;
    *out = v->i;
    return 1;
}

const char *json_get_str(const json *obj, const char *key) {
    const json *v = json_get(obj, key);
    return v && v->type == JSON_STR ? v->s : NULL;
}

void json_quote(char **buf, size_t *len, size_t *cap, const char *s) {
    size_t need = *len + strlen(s) * 6 + 3;
    if (need > *cap) {
        *cap = need * 2;
        *buf = xrealloc(*buf, *cap);
    }
    char *o = *buf + *len;
    *o++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') { *o++ = '\\'; *o++ = (char)*p; }
        else if (*p == '\n') { *o++ = '\\'; *o++ = 'n'; }
        else if (*p == '\t') { *o++ = '\\'; *o++ = 't'; }
        else if (*p == '\r') { *o++ = '\\'; *o++ = 'r'; }
        else if (*p < 0x20) o += sprintf(o, "\\u%04x", *p);
        else *o++ = (char)*p;
    }
    *o++ = '"';
    *o = 0;
    *len = (size_t)(o - *buf);
}
