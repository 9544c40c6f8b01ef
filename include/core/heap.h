/* heap: a binary min-heap over an array of the caller's element type, for priority queues such as
 * the BPE tokenizers' "best merge first" loops (text/bpe_codec.c, text/llama2tok.c).
 *
 * HEAP_DEFINE(name, T, LESS) defines the type `name` (a growable array a[0, n) of T) and static
 * inline functions on it; LESS(x, y) is an expression (usually a macro) that is true when element
 * x must come out before element y. It is a macro, not a comparison callback, because the merge
 * loops push and pop once per merge of every word they tokenize: the comparison must inline.
 *   name##_push(h, e)     adds e (sift up)
 *   name##_append(h, e)   adds e without ordering; call name##_heapify before the next pop
 *   name##_heapify(h)     orders the whole array (bottom-up, linear time)
 *   name##_pop(h)         removes and returns the least element (h->n > 0)
 *   name##_free(h)
 * Among equal elements the order is unspecified: callers that need a deterministic order make
 * their keys unique (the merge loops put the pair's position in the low bits). */
#ifndef ENTK_HEAP_H
#define ENTK_HEAP_H
#include <stddef.h>
#include <stdlib.h>
#include "core/err.h"

/* A user need not call every function a heap has (clang warns of unused static functions defined
 * by a macro in a .c file; gcc does not). */
#define HEAP_FN static inline __attribute__((unused))

#define HEAP_DEFINE(name, T, LESS) \
    typedef struct { T *a; size_t n, cap; } name; \
    HEAP_FN void name##_reserve(name *h, size_t need) { \
        if (need <= h->cap) return; \
        h->cap = h->cap ? 2 * h->cap : 1024; \
        if (h->cap < need) h->cap = need; \
        h->a = xrealloc(h->a, h->cap * sizeof *h->a); \
    } \
    HEAP_FN void name##_append(name *h, T e) { \
        if (h->n == h->cap) name##_reserve(h, h->n + 1); \
        h->a[h->n++] = e; \
    } \
    HEAP_FN void name##_push(name *h, T e) { \
        if (h->n == h->cap) name##_reserve(h, h->n + 1); \
        T *a = h->a; \
        size_t i = h->n++; \
        while (i > 0) { \
            size_t p = (i - 1) / 2; \
            if (!(LESS(e, a[p]))) break; \
            a[i] = a[p]; \
            i = p; \
        } \
        a[i] = e; \
    } \
    HEAP_FN void name##_sift_down_(T *a, size_t n, size_t i) { \
        T e = a[i]; \
        for (;;) { \
            size_t c = 2 * i + 1; \
            if (c >= n) break; \
            if (c + 1 < n && (LESS(a[c + 1], a[c]))) c++; \
            if (!(LESS(a[c], e))) break; \
            a[i] = a[c]; \
            i = c; \
        } \
        a[i] = e; \
    } \
    HEAP_FN void name##_heapify(name *h) { \
        for (size_t i = h->n / 2; i-- > 0;) name##_sift_down_(h->a, h->n, i); \
    } \
    HEAP_FN T name##_pop(name *h) { \
        T top = h->a[0]; \
        h->a[0] = h->a[--h->n]; \
        if (h->n) name##_sift_down_(h->a, h->n, 0); \
        return top; \
    } \
    HEAP_FN void name##_free(name *h) { \
        free(h->a); \
        h->a = NULL; \
        h->n = h->cap = 0; \
    }
#endif
