#include "lm/llama2.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/fileio.h"
#include "core/tensor.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Copies n floats from the checkpoint at *off, advancing it. */
static float *take(const char *buf, size_t *off, size_t n) {
    float *p = lm_alloc(n);
    memcpy(p, buf + *off, n * sizeof(float));
    *off += n * sizeof(float);
    return p;
}

/* The file size a llama2.c header h describes, or 0 if h is not one. */
static size_t expected_size(const int32_t h[7]) {
    int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kv_heads = h[4], vocab = h[5], seq = h[6];
    int shared = vocab > 0;
    if (vocab < 0 && vocab > INT32_MIN) vocab = -vocab;   /* -INT32_MIN does not exist: left negative, refused below */
    if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kv_heads <= 0 || vocab <= 0 || seq <= 0 ||
        dim > 65536 || hidden > 1 << 20 || layers > 4096 || heads > dim || kv_heads > heads || vocab > 1 << 24 ||
        seq > 1 << 24 || dim % heads || heads % kv_heads)
        return 0;
    size_t D = (size_t)dim, F = (size_t)hidden, L = (size_t)layers, V = (size_t)vocab, hs = D / (size_t)heads;
    size_t kvd = (size_t)kv_heads * hs;
    size_t nw = V * D + L * D + L * D * D + 2 * L * D * kvd + L * D * D + L * D + 3 * L * D * F + D;
    return 28 + 4 * (nw + (size_t)seq * hs + (shared ? 0 : V * D));
}

int llama2_probe(const char *path) {
    struct stat sb;
    int32_t h[7];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int ok = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && fread(h, sizeof h, 1, f) == 1;
    fclose(f);
    return ok && expected_size(h) == (size_t)sb.st_size;
}

lm_model *llama2_load(const char *path) {
    size_t size;
    char *buf = read_file(path, &size);
    if (size < 28) entk_die(ENTK_EXIT_INPUT, "%s: not a llama2.c checkpoint (%zu bytes, shorter than its header)", path, size);
    int32_t h[7];
    memcpy(h, buf, sizeof h);
    int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kv_heads = h[4], vocab = h[5], seq = h[6];
    int shared = vocab > 0;
    if (vocab < 0 && vocab > INT32_MIN) vocab = -vocab;
    size_t expect = expected_size(h);
    if (!expect)
        entk_die(ENTK_EXIT_INPUT, "%s: not a llama2.c checkpoint (header dim %d hidden %d layers %d heads %d kv %d vocab %d seq %d)",
                 path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    size_t D = (size_t)dim, F = (size_t)hidden, L = (size_t)layers, V = (size_t)vocab, hs = D / (size_t)heads;
    size_t kvd = (size_t)kv_heads * hs;
    if (size != expect)
        entk_die(ENTK_EXIT_INPUT, "%s: %zu bytes, but its header (dim %d, %d layers, vocab %d, seq_len %d) needs %zu", path, size,
                 dim, layers, vocab, seq, expect);
    /* every weight finite (a NaN makes every output NaN), checked where it lies in the file */
    struct { const char *name; size_t n; } parts[] = {
        {"token_embedding_table", V * D}, {"rms_att_weight", L * D}, {"wq", L * D * D}, {"wk", L * kvd * D},
        {"wv", L * kvd * D}, {"wo", L * D * D}, {"rms_ffn_weight", L * D}, {"w1", L * F * D}, {"w2", L * D * F},
        {"w3", L * F * D}, {"rms_final_weight", D}, {"freq_cis", (size_t)seq * hs}, {"wcls", shared ? 0 : V * D}};
    size_t at = 28;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; at += 4 * parts[i].n, i++) {
        if (i == 11) continue;   /* the legacy RoPE tables are not used */
        int64_t bad = f32_nonfinite_at((const float *)(buf + at), parts[i].n);
        if (bad >= 0)
            entk_die(ENTK_EXIT_INPUT, "%s: tensor '%s' has a non-finite value at element %lld", path, parts[i].name, (long long)bad);
    }
    lm_model *m = xcalloc(1, sizeof *m);
    m->arch = LM_LLAMA2;
    m->vocab = vocab;
    m->dim = dim;
    m->ffn = hidden;
    m->n_layers = layers;
    m->n_heads = heads;
    m->n_kv_heads = kv_heads;
    m->head_dim = (int)hs;
    m->max_pos = seq;
    m->eps64 = 1e-5;
    m->eps = 1e-5f;
    m->norm_plus_one = 0;
    m->rope_adjacent = 1;
    m->act = LM_ACT_SILU;
    m->attn_scale = 1.0f / sqrtf((float)hs);
    m->attn_scale64 = 1.0 / sqrt((double)hs);
    m->embed_scale = 1.0f;
    m->embed_scale64 = 1.0;
    m->bos = 1;
    m->eos = 2;
    m->layers = xcalloc(L, sizeof(lm_layer));
    size_t off = 28;
    m->embed = take(buf, &off, V * D);
    for (size_t l = 0; l < L; l++) m->layers[l].attn_norm = take(buf, &off, D);
    size_t nqkv = D + 2 * kvd;
    for (size_t l = 0; l < L; l++) m->layers[l].qkv = lm_alloc(nqkv * D);
    for (size_t l = 0; l < L; l++) memcpy(m->layers[l].qkv, buf + off + l * D * D * 4, D * D * 4);
    off += L * D * D * 4;
    for (size_t l = 0; l < L; l++) memcpy(m->layers[l].qkv + D * D, buf + off + l * kvd * D * 4, kvd * D * 4);
    off += L * kvd * D * 4;
    for (size_t l = 0; l < L; l++) memcpy(m->layers[l].qkv + (D + kvd) * D, buf + off + l * kvd * D * 4, kvd * D * 4);
    off += L * kvd * D * 4;
    for (size_t l = 0; l < L; l++) m->layers[l].o = take(buf, &off, D * D);
    for (size_t l = 0; l < L; l++) m->layers[l].ffn_norm = take(buf, &off, D);
    for (size_t l = 0; l < L; l++) m->layers[l].gate_up = lm_alloc(2 * F * D);
    for (size_t l = 0; l < L; l++) memcpy(m->layers[l].gate_up, buf + off + l * F * D * 4, F * D * 4); /* w1 */
    off += L * F * D * 4;
    for (size_t l = 0; l < L; l++) m->layers[l].down = take(buf, &off, D * F); /* w2 */
    for (size_t l = 0; l < L; l++) memcpy(m->layers[l].gate_up + F * D, buf + off + l * F * D * 4, F * D * 4); /* w3 */
    off += L * F * D * 4;
    m->final_norm = take(buf, &off, D);
    off += (size_t)seq * hs * 4; /* legacy freq_cis_real, freq_cis_imag */
    m->head = shared ? m->embed : take(buf, &off, V * D);
    for (size_t l = 0; l < L; l++) {
        lm_layer *Ly = &m->layers[l];
        Ly->inv_freq = lm_alloc(hs / 2);
        for (size_t i = 0; i < hs / 2; i++) Ly->inv_freq[i] = 1.0f / powf(10000.0f, (float)(2 * i) / (float)hs);
    }
    lm_finish(m);
    keybuilder kb;
    keybuilder_init(&kb, "entk-lm-model");
    keybuilder_str(&kb, "llama2");
    keybuilder_str(&kb, hash_bytes(buf, size).hex);
    m->key = keybuilder_final(&kb);
    free(buf);
    return m;
}
