#include "text/wordsplit.h"
#include "core/err.h"
#include <string.h>
#include <strings.h>

enum { K_WORD, K_FINAL, K_OPEN, K_CLOSE, K_QUOTE };

typedef struct {
    const char *t;
    ws_word **w;
    size_t *n, *cap;
    int new_sent;       /* a line break was crossed: the next word starts a sentence */
    int pending_end;    /* the last word ended a sentence if the next one looks like a start */
    int dq_open;        /* inside "..." (straight quotes are opening or closing by position) */
} splitter;

static int is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static int is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_alpha(unsigned char c) { return is_upper(c) || is_lower(c); }
/* bytes of UTF-8 sequences count as letters: é, ß and friends are word characters */
static int is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c) || c >= 0x80; }

/* The 3-byte punctuation U+2018..U+201D, U+2013, U+2014, U+2026 is E2 80 xx. */
static int u3(const char *t, size_t i, size_t b, unsigned char x) {
    return i + 3 <= b && (unsigned char)t[i] == 0xE2 && (unsigned char)t[i + 1] == 0x80 && (unsigned char)t[i + 2] == x;
}
/* « » ¡ ¿ are C2 xx. */
static int u2(const char *t, size_t i, size_t b, unsigned char x) {
    return i + 2 <= b && (unsigned char)t[i] == 0xC2 && (unsigned char)t[i + 1] == x;
}
enum { U_LAQUO = 0xAB, U_RAQUO = 0xBB, U_IEXCL = 0xA1, U_IQUEST = 0xBF };
enum { U_LSQ = 0x98, U_RSQ = 0x99, U_LDQ = 0x9C, U_RDQ = 0x9D, U_NDASH = 0x93, U_MDASH = 0x94, U_ELLIPSIS = 0xA6 };

static void emit(splitter *s, size_t a, size_t b, int kind) {
    if (a >= b) return;
    if (kind == K_QUOTE) kind = s->dq_open ? K_CLOSE : K_OPEN;
    if (s->t[a] == '"') s->dq_open = kind == K_OPEN;
    unsigned char c = (unsigned char)s->t[a];
    int start = *s->n == 0 || s->new_sent;
    if (!start && s->pending_end && kind != K_CLOSE && (kind == K_OPEN || is_upper(c) || is_digit(c))) start = 1;
    if (*s->n == *s->cap) {
        *s->cap = *s->cap ? 2 * *s->cap : 1024;
        *s->w = xrealloc(*s->w, *s->cap * sizeof **s->w);
    }
    (*s->w)[(*s->n)++] = (ws_word){a, b, start};
    s->new_sent = 0;
    if (kind == K_FINAL) s->pending_end = 1;
    else if (kind != K_CLOSE) s->pending_end = 0;
}

static int ieq(const char *t, size_t a, size_t b, const char *w) {
    size_t n = strlen(w);
    return b - a == n && strncasecmp(t + a, w, n) == 0;
}

/* Words the treebanks split inside, and where: gon|na, haf|ta, du|n|no, ... */
static const struct { const char *word; int cut1, cut2; } fused[] = {
    {"gonna", 3, 0}, {"wanna", 3, 0}, {"gotta", 3, 0}, {"hafta", 3, 0}, {"hasta", 3, 0}, {"hadta", 3, 0},
    {"needta", 4, 0}, {"useta", 3, 0}, {"sposta", 4, 0}, {"outta", 3, 0}, {"oughta", 5, 0}, {"kinda", 4, 0},
    {"lotta", 4, 0}, {"lotsa", 4, 0}, {"whatcha", 4, 0}, {"cannot", 3, 0}, {"lemme", 3, 0}, {"gimme", 3, 0},
    {"dunno", 2, 3}, {NULL, 0, 0}};
static const char *const clitics[] = {"s", "re", "ll", "ve", "m", "d", NULL};

/* A word piece without punctuation: splits clitics off. */
static void emit_piece(splitter *s, size_t a, size_t b) {
    const char *t = s->t;
    if (a >= b) return;
    for (int k = 0; fused[k].word; k++)
        if (ieq(t, a, b, fused[k].word)) {
            size_t c1 = a + (size_t)fused[k].cut1, c2 = fused[k].cut2 ? a + (size_t)fused[k].cut2 : c1;
            emit(s, a, c1, K_WORD);
            emit(s, c1, c2, K_WORD);
            emit(s, c2, b, K_WORD);
            return;
        }
    size_t n = b - a;
    if (n > 3 && (t[b - 3] == 'n' || t[b - 3] == 'N') && t[b - 2] == '\'' && (t[b - 1] == 't' || t[b - 1] == 'T')) {
        emit(s, a, b - 3, K_WORD);
        emit(s, b - 3, b, K_WORD);
        return;
    }
    if (n > 5 && (t[b - 5] == 'n' || t[b - 5] == 'N') && u3(t, b - 4, b, U_RSQ) && (t[b - 1] == 't' || t[b - 1] == 'T')) {
        emit(s, a, b - 5, K_WORD);
        emit(s, b - 5, b, K_WORD);
        return;
    }
    /* the last apostrophe, if a clitic follows it */
    for (size_t q = b; q-- > a + 1;) {
        size_t after;
        if (t[q] == '\'') after = q + 1;
        else if (q + 3 <= b && u3(t, q, b, U_RSQ)) after = q + 3;
        else continue;
        for (int k = 0; clitics[k]; k++)
            if (ieq(t, after, b, clitics[k])) {
                emit(s, a, q, K_WORD);
                emit(s, q, b, K_WORD);
                return;
            }
        break;
    }
    emit(s, a, b, K_WORD);
}

/* Prefixes EWT keeps attached to a hyphen (e-mail, re-wording, vice-president). */
static const char *const hyphen_prefixes[] = {"re", "pre", "co", "non", "anti", "semi", "vice", "ex", "mid",
                                              "multi", "post", "sub", "inter", "un", "bi", "tri", "de", "mis",
                                              "self", "uh", "mm", "x", NULL};

static int keep_hyphen(const char *t, size_t a, size_t b) {
    if (b - a == 1) return is_alpha((unsigned char)t[a]);   /* e-mail, T-shirt, x-ray; not 3-year */
    for (int k = 0; hyphen_prefixes[k]; k++)
        if (ieq(t, a, b, hyphen_prefixes[k])) return 1;
    return 0;
}

static int is_url(const char *t, size_t a, size_t b) {
    if (b - a >= 4 && strncasecmp(t + a, "www.", 4) == 0) return 1;
    for (size_t i = a; i + 3 <= b; i++)
        if (t[i] == ':' && t[i + 1] == '/' && t[i + 2] == '/') return 1;
    for (size_t i = a + 1; i + 1 < b; i++)
        if (t[i] == '@') return memchr(t + i, '.', b - i) != NULL;
    return 0;
}

/* The chunk between whitespace with its leading and trailing punctuation removed. */
static void split_core(splitter *s, size_t a, size_t b) {
    const char *t = s->t;
    if (is_url(t, a, b)) { emit(s, a, b, K_WORD); return; }
    size_t p = a, i = a;
    while (i < b) {
        unsigned char c = (unsigned char)t[i];
        size_t len = 0;
        int kind = K_WORD;
        if (c == '.' && i + 1 < b && t[i + 1] == '.') {
            while (i + len < b && t[i + len] == '.') len++;
            kind = K_FINAL;
        } else if (u3(t, i, b, U_ELLIPSIS)) {
            len = 3;
            kind = K_FINAL;
        } else if (u3(t, i, b, U_MDASH) || u3(t, i, b, U_NDASH)) {
            len = 3;
        } else if (u3(t, i, b, U_LDQ)) {
            len = 3;
            kind = K_OPEN;
        } else if (u3(t, i, b, U_RDQ)) {
            len = 3;
            kind = K_CLOSE;
        } else if (u2(t, i, b, U_LAQUO)) {
            len = 2;
            kind = K_OPEN;
        } else if (u2(t, i, b, U_RAQUO)) {
            len = 2;
            kind = K_CLOSE;
        } else if (c == '-' && i + 1 < b && t[i + 1] == '-') {
            while (i + len < b && t[i + len] == '-') len++;
        } else if (c == '-') {
            /* digit-digit is a number (phone numbers, 235-1972); 15-year and 3-D are split */
            int digits = i > a && i + 1 < b && is_digit((unsigned char)t[i - 1]) && is_digit((unsigned char)t[i + 1]);
            if (!digits && !(i > p && keep_hyphen(t, p, i))) len = 1;
        } else if (c == ',') {
            if (!(i > a && i + 1 < b && is_digit((unsigned char)t[i - 1]) && is_digit((unsigned char)t[i + 1]))) len = 1;
        } else if (c == '/') {
            if (i > a && i + 1 < b && is_alpha((unsigned char)t[i - 1]) && is_alpha((unsigned char)t[i + 1])) len = 1;
        } else if (c == '!' || c == '?') {
            while (i + len < b && t[i + len] == (char)c) len++;
            kind = K_FINAL;
        } else if (c == ';') {
            len = 1;
        } else if (c == '(' || c == '[' || c == '{') {
            len = 1;
            kind = K_OPEN;
        } else if (c == ')' || c == ']' || c == '}') {
            len = 1;
            kind = K_CLOSE;
        } else if (c == '"') {
            len = 1;
            kind = K_QUOTE;
        } else if (c == '.' && i >= p + 2 && i + 1 < b && is_lower((unsigned char)t[i - 1]) &&
                   is_lower((unsigned char)t[i - 2]) && is_upper((unsigned char)t[i + 1])) {
            len = 1;   /* a missing space: "home.The" */
            kind = K_FINAL;
        }
        if (len) {
            emit_piece(s, p, i);
            emit(s, i, i + len, kind);
            i += len;
            p = i;
        } else {
            i++;
        }
    }
    emit_piece(s, p, b);
}

static const char *const abbreviations[] = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "inc", "ltd", "co",
                                            "corp", "vs", "etc", "mt", "jan", "feb", "aug", "sept", "oct", "nov",
                                            "dec", "gen", "col", "sgt", "capt", "lt", "rev", "approx", "dept",
                                            "ave", "blvd", "rd", NULL};

/* Does w (without its final period) keep the period? */
static int is_abbrev(const char *t, size_t a, size_t b) {
    if (b - a == 1) return is_upper((unsigned char)t[a]) && t[a] != 'I';   /* an initial: J. (not "Can I.") */
    int inner = 0;
    for (size_t i = a; i < b; i++) {
        if (t[i] == '.') inner = 1;
        else if (!is_alpha((unsigned char)t[i])) { inner = -1; break; }
    }
    if (inner == 1) return 1;   /* U.S e.g a.m */
    for (int k = 0; abbreviations[k]; k++)
        if (ieq(t, a, b, abbreviations[k])) return 1;
    return 0;
}

/* Leading apostrophes that belong to the word: 'em 'cause 'til 'bout 'round 'n '90s */
static int apostrophe_word(const char *t, size_t a, size_t b, size_t qlen) {
    static const char *const words[] = {"em", "cause", "til", "tis", "twas", "bout", "round", "n", NULL};
    size_t w = a + qlen, e = w;
    while (e < b && is_alnum((unsigned char)t[e])) e++;
    if (e > w && is_digit((unsigned char)t[w])) return 1;
    for (int k = 0; words[k]; k++)
        if (ieq(t, w, e, words[k])) return 1;
    return 0;
}

static void split_chunk(splitter *s, size_t a, size_t b) {
    const char *t = s->t;
    if (b - a == 1 && t[a] == '"') { emit(s, a, b, K_QUOTE); return; }
    /* leading: opening quotes and brackets, dashes, ellipses, currency */
    while (a < b) {
        unsigned char c = (unsigned char)t[a];
        size_t len = 0;
        int kind = K_OPEN;
        if (c == '"' || c == '(' || c == '[' || c == '{') len = 1;
        else if (c == '`') len = a + 1 < b && t[a + 1] == '`' ? 2 : 1;
        else if (c == '\'' && a + 1 < b && t[a + 1] == '\'') len = 2;
        else if (c == '\'' && !apostrophe_word(t, a, b, 1)) len = 1;
        else if (u3(t, a, b, U_LDQ)) len = 3;
        else if (u2(t, a, b, U_LAQUO) || u2(t, a, b, U_IEXCL) || u2(t, a, b, U_IQUEST)) len = 2;
        else if (u3(t, a, b, U_LSQ) && !apostrophe_word(t, a, b, 3)) len = 3;
        else if (u3(t, a, b, U_MDASH) || u3(t, a, b, U_NDASH)) { len = 3; kind = K_WORD; }
        else if (c == '-' || c == '.' || c == '*') {
            while (a + len < b && t[a + len] == (char)c) len++;
            if (c == '.' && len == 1 && a + 1 < b && is_digit((unsigned char)t[a + 1])) len = 0;   /* .5 */
            if (c == '-' && len == 1 && a + 1 < b && is_digit((unsigned char)t[a + 1])) len = 0;   /* -5 */
            kind = c == '.' ? K_FINAL : K_WORD;
        } else if (c == '$' || c == '#') { len = 1; kind = K_WORD; }
        if (!len || len == b - a) break;
        emit(s, a, a + len, kind);
        a += len;
    }
    /* trailing: closing quotes and brackets, sentence punctuation, commas; kept to emit after */
    struct { size_t a, b; int kind; } tail[32];
    int nt = 0;
    while (b > a && nt < 32) {
        unsigned char c = (unsigned char)t[b - 1];
        size_t len = 0;
        int kind = K_WORD;
        if (c == '"' || c == ')' || c == ']' || c == '}') { len = 1; kind = K_CLOSE; }
        else if (b - a >= 3 && (u3(t, b - 3, b, U_RSQ) || u3(t, b - 3, b, U_RDQ))) { len = 3; kind = K_CLOSE; }
        else if (b - a >= 2 && u2(t, b - 2, b, U_RAQUO)) { len = 2; kind = K_CLOSE; }
        else if (c == '\'') { len = b - a >= 2 && t[b - 2] == '\'' ? 2 : 1; kind = K_CLOSE; }
        else if (c == '.') {
            while (len < b - a && t[b - 1 - len] == '.') len++;
            if (len == 1 && is_abbrev(t, a, b - 1)) break;
            kind = K_FINAL;
        } else if (c == '!' || c == '?') {
            while (len < b - a && t[b - 1 - len] == (char)c) len++;
            kind = K_FINAL;
        } else if (b - a >= 3 && u3(t, b - 3, b, U_ELLIPSIS)) { len = 3; kind = K_FINAL; }
        else if (b - a >= 3 && (u3(t, b - 3, b, U_MDASH) || u3(t, b - 3, b, U_NDASH))) len = 3;
        else if (c == ',' || c == ';' || c == ':' || c == '%') len = 1;
        else if (c == '-') { while (len < b - a && t[b - 1 - len] == '-') len++; }
        if (!len || len == b - a) break;
        tail[nt].a = b - len;
        tail[nt].b = b;
        tail[nt++].kind = kind;
        b -= len;
    }
    split_core(s, a, b);
    while (nt > 0) {
        nt--;
        emit(s, tail[nt].a, tail[nt].b, tail[nt].kind);
    }
}

static int is_space(const char *t, size_t i, size_t n, size_t *len) {
    unsigned char c = (unsigned char)t[i];
    *len = 1;
    if (c <= ' ' || c == 0x7F) return 1;
    if (c == 0xC2 && i + 1 < n && (unsigned char)t[i + 1] == 0xA0) { *len = 2; return 1; }   /* no-break space */
    return 0;
}

size_t ws_split(const char *text, size_t n, ws_word **words, size_t *nwords, size_t *cap) {
    splitter s = {text, words, nwords, cap, 1, 0, 0};
    size_t before = *nwords, i = 0, len;
    /* the first word of this text starts a sentence even if earlier texts were appended */
    while (i < n) {
        while (i < n && is_space(text, i, n, &len)) {
            if (text[i] == '\n') s.new_sent = 1;
            i += len;
        }
        size_t a = i;
        while (i < n && !is_space(text, i, n, &len)) i++;
        if (i > a) split_chunk(&s, a, i);
    }
    return *nwords - before;
}
