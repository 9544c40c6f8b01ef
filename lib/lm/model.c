#include "lm/model.h"
#include "core/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Big buffers are 2 MB aligned and marked for transparent huge pages: fewer page faults when they
 * are first written and fewer TLB misses in the matrix products that stream through them. */
static void *big_alloc(size_t bytes) {
    void *p = NULL;
    size_t align = bytes >= ((size_t)4 << 20) ? ((size_t)2 << 20) : 64;
    bytes = (bytes + align - 1) / align * align;
    if (posix_memalign(&p, align, bytes ? bytes : align) != 0) entk_die(ENTK_EXIT_FAIL, "out of memory (%zu MB)", bytes >> 20);
    if (align > 64) madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

float *lm_alloc(size_t n) { return big_alloc(n * sizeof(float)); }

void lm_finish(lm_model *m) {
    /* a loader that set only the f32 constants: f64 uses their values */
    if (m->eps64 == 0) m->eps64 = m->eps;
    if (m->attn_scale64 == 0) m->attn_scale64 = m->attn_scale;
    if (m->attn_softcap64 == 0) m->attn_softcap64 = m->attn_softcap;
    if (m->embed_scale64 == 0) m->embed_scale64 = m->embed_scale;
    if (m->n_heads % m->n_kv_heads) entk_die(ENTK_EXIT_INPUT, "num_attention_heads %d is not a multiple of num_key_value_heads %d", m->n_heads, m->n_kv_heads);
    if (m->head_dim % 2) entk_die(ENTK_EXIT_INPUT, "head_dim %d is odd (RoPE needs pairs)", m->head_dim);
    snprintf(m->desc, sizeof m->desc, "%s: %d layers, dim %d, ffn %d, %d heads (%d kv) of %d, vocab %d",
             m->arch == LM_GEMMA3 ? "gemma3" : "llama2", m->n_layers, m->dim, m->ffn, m->n_heads, m->n_kv_heads,
             m->head_dim, m->vocab);
}

static double *widen(const float *src, size_t n) {
    if (!src) return NULL;
    double *d = big_alloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = src[i];
    return d;
}

void lm_widen(lm_model *m) {
    if (m->layers64) return;
    size_t D = (size_t)m->dim, F = (size_t)m->ffn, hd = (size_t)m->head_dim;
    size_t nq = (size_t)m->n_heads * hd, nkv = (size_t)m->n_kv_heads * hd;
    m->embed64 = widen(m->embed, (size_t)m->vocab * D);
    m->head64 = m->head == m->embed ? m->embed64 : widen(m->head, (size_t)m->vocab * D);
    m->final_norm64 = widen(m->final_norm, D);
    m->layers64 = xcalloc((size_t)m->n_layers, sizeof(lm_layer64));
    for (int l = 0; l < m->n_layers; l++) {
        const lm_layer *L = &m->layers[l];
        lm_layer64 *W = &m->layers64[l];
        W->attn_norm = widen(L->attn_norm, D);
        W->qkv = widen(L->qkv, (nq + 2 * nkv) * D);
        W->q_norm = widen(L->q_norm, hd);
        W->k_norm = widen(L->k_norm, hd);
        W->o = widen(L->o, D * nq);
        W->post_attn_norm = widen(L->post_attn_norm, D);
        W->ffn_norm = widen(L->ffn_norm, D);
        W->gate_up = widen(L->gate_up, 2 * F * D);
        W->down = widen(L->down, D * F);
        W->post_ffn_norm = widen(L->post_ffn_norm, D);
    }
}

void lm_free(lm_model *m) {
    if (!m) return;
    for (int l = 0; l < m->n_layers; l++) {
        lm_layer *L = &m->layers[l];
        free(L->attn_norm); free(L->qkv); free(L->q_norm); free(L->k_norm); free(L->o);
        free(L->post_attn_norm); free(L->ffn_norm); free(L->gate_up); free(L->down);
        free(L->post_ffn_norm); free(L->inv_freq);
        if (m->layers64) {
            lm_layer64 *W = &m->layers64[l];
            free(W->attn_norm); free(W->qkv); free(W->q_norm); free(W->k_norm); free(W->o);
            free(W->post_attn_norm); free(W->ffn_norm); free(W->gate_up); free(W->down);
            free(W->post_ffn_norm);
        }
    }
    if (m->head != m->embed) free(m->head);
    if (m->head64 != m->embed64) free(m->head64);
    free(m->embed);
    free(m->embed64);
    free(m->final_norm);
    free(m->final_norm64);
    free(m->layers);
    free(m->layers64);
    free(m);
}
