#include "lm/gemma3.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/fileio.h"
#include "core/json.h"
#include "core/safetensors.h"
#include "core/tensor.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *path;   /* config.json, for messages */
    const json *obj;    /* the text config object */
} cfg;

static int64_t cfg_int(const cfg *c, const char *key, int64_t def, int required) {
    const json *v = json_get(c->obj, key);
    if (!v || v->type == JSON_NULL) {
        if (required) entk_die(ENTK_EXIT_INPUT, "%s: missing '%s'", c->path, key);
        return def;
    }
    if (v->type != JSON_NUM || !v->is_int) entk_die(ENTK_EXIT_INPUT, "%s: '%s' is not an integer", c->path, key);
    return v->i;
}

static int64_t cfg_pos_int(const cfg *c, const char *key, int64_t def, int required, int64_t max) {
    int64_t v = cfg_int(c, key, def, required);
    if (v <= 0 || v > max)
        entk_die(ENTK_EXIT_INPUT, "%s: '%s' must be a positive integer up to %lld, not %lld", c->path, key, (long long)max, (long long)v);
    return v;
}

/* def when absent or null (null means "off" for the softcaps) */
static double cfg_num(const cfg *c, const json *obj, const char *key, double def) {
    const json *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) return def;
    if (v->type != JSON_NUM || !isfinite(v->num)) entk_die(ENTK_EXIT_INPUT, "%s: '%s' is not a number", c->path, key);
    return v->num;
}

static int cfg_bool(const cfg *c, const char *key, int def) {
    const json *v = json_get(c->obj, key);
    if (!v || v->type == JSON_NULL) return def;
    if (v->type != JSON_BOOL) entk_die(ENTK_EXIT_INPUT, "%s: '%s' is not true or false", c->path, key);
    return v->num != 0;
}

/* Base and linear scaling factor of one layer type's RoPE. */
static void rope_params(const cfg *c, const char *layer_type, int global, double *base, double *factor) {
    *base = global ? cfg_num(c, c->obj, "rope_theta", 1e6) : cfg_num(c, c->obj, "rope_local_base_freq", 1e4);
    *factor = 1;
    const json *rs = NULL;
    const json *rp = json_get(c->obj, "rope_parameters");
    if (rp && rp->type == JSON_OBJ) {
        rs = json_get(rp, layer_type);
        if (rs && rs->type == JSON_OBJ) *base = cfg_num(c, rs, "rope_theta", *base);
    } else if (global) {
        rs = json_get(c->obj, "rope_scaling");
    }
    if (rs && rs->type == JSON_OBJ) {
        const char *type = json_get_str(rs, "rope_type");
        if (!type) type = json_get_str(rs, "type");
        if (type && strcmp(type, "linear") == 0) {
            *factor = cfg_num(c, rs, "factor", 1);
            if (!(*factor > 0)) entk_die(ENTK_EXIT_INPUT, "%s: rope scaling factor must be positive", c->path);
        } else if (type && strcmp(type, "default") != 0) {
            entk_die(ENTK_EXIT_INPUT, "%s: unsupported rope type '%s' (entk implements default and linear)", c->path, type);
        }
    } else if (rs && rs->type != JSON_NULL) {
        entk_die(ENTK_EXIT_INPUT, "%s: rope scaling of '%s' is not an object", c->path, layer_type);
    }
    if (!(*base > 1)) entk_die(ENTK_EXIT_INPUT, "%s: RoPE base of %s layers must be > 1", c->path, layer_type);
}

/* The tensor called name after checking that it has the shape config.json implies. */
static const st_tensor *find_checked(const safetensors *st, const char *name, int ndim, const int64_t *dims) {
    const st_tensor *s = st_find(st, name);
    if (!s) entk_die(ENTK_EXIT_INPUT, "%s: tensor '%s' is missing", st->path, name);
    int ok = s->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = s->shape[i] == dims[i];
    if (!ok) {
        char got[128] = "[", want[128] = "[";
        for (int i = 0; i < s->ndim; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)s->shape[i]);
        for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "", (long long)dims[i]);
        entk_die(ENTK_EXIT_INPUT, "%s: tensor '%s' has shape %s], expected %s] (config.json)", st->path, name, got, want);
    }
    return s;
}

/* Converts one safetensors tensor into dst after checking its shape and, once converted, that
 * every value is finite (a NaN weight makes every output NaN); messages name the tensor. */
static void load_into(const safetensors *st, const char *name, int ndim, const int64_t *dims, float *dst) {
    const st_tensor *s = find_checked(st, name, ndim, dims);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)dims[i];
    const unsigned char *p = s->ptr;
    switch (s->dt) {
    case ST_F32: memcpy(dst, p, n * 4); break;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)(p[2 * i] | (p[2 * i + 1] << 8)) << 16;
            memcpy(dst + i, &u, 4);
        }
        break;
    case ST_F16:
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        break;
    case ST_F64:
        for (size_t i = 0; i < n; i++) { double d; memcpy(&d, p + 8 * i, 8); dst[i] = (float)d; }
        break;
    default:
        entk_die(ENTK_EXIT_INPUT, "%s: tensor '%s' is %s, expected a float tensor", st->path, name, st_dtype_name(s->dt));
    }
    int64_t at = f32_nonfinite_at(dst, n);
    if (at >= 0)
        entk_die(ENTK_EXIT_INPUT, "%s: tensor '%s' has a non-finite value (%g) at element %lld", st->path, name, (double)dst[at],
                 (long long)at);
}

static float *load_new(const safetensors *st, const char *name, int ndim, const int64_t *dims, int *used) {
    find_checked(st, name, ndim, dims);   /* before allocating what config.json claims */
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)dims[i];
    float *p = lm_alloc(n);
    load_into(st, name, ndim, dims, p);
    (*used)++;
    return p;
}

/* Each layer's attention window and RoPE frequencies: after the weights have confirmed the sizes
 * config.json claims, which alone could ask for gigabytes (4096 layers of head_dim 65536). */
static void set_attention(lm_model *m, const gemma3_config *g);

/* Sliding (1) or global (0) attention in layer l. */
static int layer_sliding(const gemma3_config *g, int l) {
    const json *lt = g->layer_types;
    if (!lt) return (l + 1) % g->pattern != 0;
    return lt->items[l].type == JSON_STR && strcmp(lt->items[l].s, "sliding_attention") == 0;
}

static void set_attention(lm_model *m, const gemma3_config *g) {
    for (int l = 0; l < m->n_layers; l++) {
        int sliding = layer_sliding(g, l);
        lm_layer *L = &m->layers[l];
        L->window = sliding ? g->window : 0;
        double base = sliding ? g->base_local : g->base_global, fac = sliding ? g->fac_local : g->fac_global;
        L->inv_freq = lm_alloc((size_t)m->head_dim / 2);
        for (int i = 0; i < m->head_dim / 2; i++) {
            /* as torch: base ** (arange(0, hd, 2).float() / hd) in f32, then 1 / that, then / factor */
            float e = (float)(2 * i) / (float)m->head_dim;
            float p = powf((float)base, e);
            L->inv_freq[i] = (1.0f / p) / (float)fac;
        }
    }
}

void gemma3_parse_config(const json *root, const char *cpath, lm_model *m, gemma3_config *g) {
    memset(g, 0, sizeof *g);
    if (root->type != JSON_OBJ) entk_die(ENTK_EXIT_INPUT, "%s: not a JSON object", cpath);
    cfg c = {cpath, root};
    const char *mt = json_get_str(root, "model_type");
    if (!mt) entk_die(ENTK_EXIT_INPUT, "%s: no model_type (entk reads gemma3_text / gemma3 models)", cpath);
    if (strcmp(mt, "gemma3") == 0) {
        c.obj = json_get(root, "text_config");
        if (!c.obj || c.obj->type != JSON_OBJ) entk_die(ENTK_EXIT_INPUT, "%s: model_type gemma3 without a text_config object", cpath);
    } else if (strcmp(mt, "gemma3_text") != 0) {
        entk_die(ENTK_EXIT_INPUT, "%s: unsupported model_type '%s' (entk reads gemma3_text / gemma3 models)", cpath, mt);
    }
    const char *act = json_get_str(c.obj, "hidden_activation");
    if (!act) act = json_get_str(c.obj, "hidden_act");
    if (act && strcmp(act, "gelu_pytorch_tanh") != 0 && strcmp(act, "gelu_tanh") != 0)
        entk_die(ENTK_EXIT_INPUT, "%s: unsupported hidden_activation '%s' (entk implements gelu_pytorch_tanh)", cpath, act);
    if (cfg_bool(&c, "attention_bias", 0)) entk_die(ENTK_EXIT_INPUT, "%s: attention_bias is not supported", cpath);
    if (cfg_bool(&c, "use_bidirectional_attention", 0))
        entk_die(ENTK_EXIT_INPUT, "%s: use_bidirectional_attention is not supported (causal models only)", cpath);

    memset(m, 0, sizeof *m);
    m->arch = LM_GEMMA3;
    /* the limits are far above any Gemma (262144, 640..5376, 62 layers) and keep every size
     * product within what the weights file must then hold */
    m->vocab = (int)cfg_pos_int(&c, "vocab_size", 0, 1, 1 << 24);
    m->dim = (int)cfg_pos_int(&c, "hidden_size", 0, 1, 1 << 16);
    m->ffn = (int)cfg_pos_int(&c, "intermediate_size", 0, 1, 1 << 20);
    m->n_layers = (int)cfg_pos_int(&c, "num_hidden_layers", 0, 1, 4096);
    m->n_heads = (int)cfg_pos_int(&c, "num_attention_heads", 0, 1, 4096);
    m->n_kv_heads = (int)cfg_pos_int(&c, "num_key_value_heads", m->n_heads, 0, 4096);
    m->head_dim = (int)cfg_pos_int(&c, "head_dim", 256, 0, 1 << 16);
    m->max_pos = (int)cfg_pos_int(&c, "max_position_embeddings", 131072, 0, 1 << 30);
    double eps = cfg_num(&c, c.obj, "rms_norm_eps", 1e-6);
    if (!(eps > 0) || !((float)eps > 0)) entk_die(ENTK_EXIT_INPUT, "%s: 'rms_norm_eps' must be positive, not %g", cpath, eps);
    m->eps64 = eps;
    m->eps = (float)eps;
    m->norm_plus_one = 1;
    m->rope_adjacent = 0;
    m->act = LM_ACT_GELU_TANH;
    double qpas = cfg_num(&c, c.obj, "query_pre_attn_scalar", 256);
    if (!(qpas > 0)) entk_die(ENTK_EXIT_INPUT, "%s: query_pre_attn_scalar must be positive", cpath);
    m->attn_scale64 = pow(qpas, -0.5);
    m->attn_scale = (float)m->attn_scale64;
    m->attn_softcap64 = cfg_num(&c, c.obj, "attn_logit_softcapping", 0);
    m->attn_softcap = (float)m->attn_softcap64;
    m->final_softcap = (float)cfg_num(&c, c.obj, "final_logit_softcapping", 0);
    if (!(m->attn_softcap >= 0 && m->final_softcap >= 0 && isfinite(m->attn_softcap) && isfinite(m->final_softcap)))
        entk_die(ENTK_EXIT_INPUT, "%s: softcapping must be positive", cpath);
    m->embed_scale64 = sqrt((double)m->dim);
    m->embed_scale = (float)m->embed_scale64;
    m->bos = (int)cfg_int(&c, "bos_token_id", 2, 0);
    const json *eos = json_get(c.obj, "eos_token_id");
    m->eos = eos && eos->type == JSON_NUM && eos->is_int ? (int)eos->i : 1;
    g->tied = cfg_bool(&c, "tie_word_embeddings", cfg_bool(&(cfg){cpath, root}, "tie_word_embeddings", 1));
    g->window = (int)cfg_pos_int(&c, "sliding_window", 4096, 0, 1 << 30);
    g->pattern = cfg_int(&c, "sliding_window_pattern", cfg_int(&c, "_sliding_window_pattern", 6, 0), 0);
    if (g->pattern <= 0) entk_die(ENTK_EXIT_INPUT, "%s: sliding_window_pattern must be positive", cpath);
    const json *lt = json_get(c.obj, "layer_types");
    if (lt && lt->type != JSON_NULL && (lt->type != JSON_ARR || (int64_t)lt->len != m->n_layers))
        entk_die(ENTK_EXIT_INPUT, "%s: layer_types is not a list of num_hidden_layers (%d) entries", cpath, m->n_layers);
    g->layer_types = lt && lt->type == JSON_ARR ? lt : NULL;
    for (int l = 0; g->layer_types && l < m->n_layers; l++) {
        const json *e = &lt->items[l];
        if (e->type != JSON_STR || (strcmp(e->s, "sliding_attention") != 0 && strcmp(e->s, "full_attention") != 0))
            entk_die(ENTK_EXIT_INPUT, "%s: layer_types[%d] is not sliding_attention or full_attention", cpath, l);
    }
    rope_params(&c, "sliding_attention", 0, &g->base_local, &g->fac_local);
    rope_params(&c, "full_attention", 1, &g->base_global, &g->fac_global);
    lm_finish(m);
}

lm_model *gemma3_load(const char *path) {
    char *dir = xstrdup(path);
    size_t dl = strlen(dir);
    if (dl >= 11 && strcmp(dir + dl - 11, "config.json") == 0) {
        dir[dl - 11] = 0;
        if (!*dir) strcpy(dir, ".");
    }
    char cpath[4096], wpath[4096];
    snprintf(cpath, sizeof cpath, "%s/config.json", dir);
    snprintf(wpath, sizeof wpath, "%s/model.safetensors", dir);
    size_t n;
    char *text = read_file(cpath, &n);
    char err[256];
    json *root = json_parse(text, n, err, sizeof err);
    if (!root) entk_die(ENTK_EXIT_INPUT, "%s: malformed JSON (%s)", cpath, err);
    lm_model *m = xcalloc(1, sizeof *m);
    gemma3_config g;
    gemma3_parse_config(root, cpath, m, &g);
    int tied = g.tied;

    m->layers = xcalloc((size_t)m->n_layers, sizeof(lm_layer));

    struct stat sb;
    if (stat(wpath, &sb) != 0) {
        char ipath[4200];
        snprintf(ipath, sizeof ipath, "%s.index.json", wpath);
        if (stat(ipath, &sb) == 0) entk_die(ENTK_EXIT_INPUT, "%s: sharded checkpoints are not supported (one model.safetensors expected)", dir);
        entk_die(ENTK_EXIT_INPUT, "cannot open %s: no such file", wpath);
    }
    safetensors st;
    st_open(&st, wpath);
    const char *prefixes[] = {"model.", "language_model.model.", "model.language_model."};
    const char *pre = prefixes[0];
    char name[512];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%sembed_tokens.weight", prefixes[i]);
        if (st_find(&st, name)) { pre = prefixes[i]; break; }
    }
    int used = 0;
    int64_t D = m->dim, F = m->ffn, V = m->vocab, hd = m->head_dim;
    int64_t nq = (int64_t)m->n_heads * hd, nkv = (int64_t)m->n_kv_heads * hd;
    snprintf(name, sizeof name, "%sembed_tokens.weight", pre);
    m->embed = load_new(&st, name, 2, (int64_t[]){V, D}, &used);
    snprintf(name, sizeof name, "%snorm.weight", pre);
    m->final_norm = load_new(&st, name, 1, (int64_t[]){D}, &used);
    if (tied) {
        m->head = m->embed;
    } else {
        m->head = load_new(&st, "lm_head.weight", 2, (int64_t[]){V, D}, &used);
    }
    for (int l = 0; l < m->n_layers; l++) {
        lm_layer *L = &m->layers[l];
#define NAME(s) (snprintf(name, sizeof name, "%slayers.%d.%s", pre, l, s), name)
        L->attn_norm = load_new(&st, NAME("input_layernorm.weight"), 1, (int64_t[]){D}, &used);
        L->post_attn_norm = load_new(&st, NAME("post_attention_layernorm.weight"), 1, (int64_t[]){D}, &used);
        L->ffn_norm = load_new(&st, NAME("pre_feedforward_layernorm.weight"), 1, (int64_t[]){D}, &used);
        L->post_ffn_norm = load_new(&st, NAME("post_feedforward_layernorm.weight"), 1, (int64_t[]){D}, &used);
        L->q_norm = load_new(&st, NAME("self_attn.q_norm.weight"), 1, (int64_t[]){hd}, &used);
        L->k_norm = load_new(&st, NAME("self_attn.k_norm.weight"), 1, (int64_t[]){hd}, &used);
        find_checked(&st, NAME("self_attn.q_proj.weight"), 2, (int64_t[]){nq, D});
        find_checked(&st, NAME("self_attn.k_proj.weight"), 2, (int64_t[]){nkv, D});
        find_checked(&st, NAME("self_attn.v_proj.weight"), 2, (int64_t[]){nkv, D});
        L->qkv = lm_alloc((size_t)(nq + 2 * nkv) * (size_t)D);
        load_into(&st, NAME("self_attn.q_proj.weight"), 2, (int64_t[]){nq, D}, L->qkv);
        load_into(&st, NAME("self_attn.k_proj.weight"), 2, (int64_t[]){nkv, D}, L->qkv + nq * D);
        load_into(&st, NAME("self_attn.v_proj.weight"), 2, (int64_t[]){nkv, D}, L->qkv + (nq + nkv) * D);
        L->o = load_new(&st, NAME("self_attn.o_proj.weight"), 2, (int64_t[]){D, nq}, &used);
        find_checked(&st, NAME("mlp.gate_proj.weight"), 2, (int64_t[]){F, D});
        find_checked(&st, NAME("mlp.up_proj.weight"), 2, (int64_t[]){F, D});
        L->gate_up = lm_alloc((size_t)(2 * F * D));
        load_into(&st, NAME("mlp.gate_proj.weight"), 2, (int64_t[]){F, D}, L->gate_up);
        load_into(&st, NAME("mlp.up_proj.weight"), 2, (int64_t[]){F, D}, L->gate_up + F * D);
        L->down = load_new(&st, NAME("mlp.down_proj.weight"), 2, (int64_t[]){D, F}, &used);
#undef NAME
        used += 5;
    }
    /* A tensor the config does not account for means config and weights disagree (e.g. more
     * layers in the file than num_hidden_layers). A tied head may still be stored. */
    if (used != st.n) {
        for (int i = 0; i < st.n; i++) {
            const char *t = st.t[i].name;
            if (tied && strcmp(t, "lm_head.weight") == 0) continue;
            int known = strncmp(t, pre, strlen(pre)) == 0 && (strcmp(t + strlen(pre), "embed_tokens.weight") == 0 ||
                                                             strcmp(t + strlen(pre), "norm.weight") == 0);
            if (!tied && strcmp(t, "lm_head.weight") == 0) known = 1;
            int layer;
            if (!known && strncmp(t, pre, strlen(pre)) == 0 && sscanf(t + strlen(pre), "layers.%d.", &layer) == 1 &&
                layer >= 0 && layer < m->n_layers)
                known = 1;
            if (!known)
                entk_die(ENTK_EXIT_INPUT, "%s: tensor '%s' is not part of the model config.json describes (%d layers)", wpath, t,
                         m->n_layers);
        }
    }
    set_attention(m, &g);
    keybuilder kb;
    keybuilder_init(&kb, "entk-lm-model");
    keybuilder_str(&kb, "gemma3");
    entk_key kc = hash_bytes(text, n), kw = hash_file(wpath);
    keybuilder_str(&kb, kc.hex);
    keybuilder_str(&kb, kw.hex);
    m->key = keybuilder_final(&kb);
    st_close(&st);
    json_free(root);
    free(text);
    free(dir);
    return m;
}
