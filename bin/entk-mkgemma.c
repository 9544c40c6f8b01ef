/* entk-mkgemma: writes a random Gemma 3 model directory (config.json + model.safetensors). */
#include "core/cli.h"
#include "core/err.h"
#include "core/outfile.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/tensor.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage =
    "Usage: entk-mkgemma -o DIR [options]\n"
    "Writes a Gemma 3 text model with random weights as Hugging Face stores one: DIR/config.json and\n"
    "DIR/model.safetensors (tensor names of Gemma3ForCausalLM, tied head). Matrices are N(0, std^2),\n"
    "norm weights N(0, norm-std^2) (Gemma norms scale by 1 + w), all from --seed, so the same command\n"
    "writes the same bytes. For tests and benchmarks of entk-forward. -o DIR is the model directory\n"
    "(created; files replaced atomically).\n"
    "\n";

static const char *examples =
    "\n"
    "Example:\n"
    "  entk-mkgemma -o /tmp/gemma-tiny --preset tiny --seed 1 && \\\n"
    "      entk-forward -m /tmp/gemma-tiny --ids 2,5,7,9 --outputs hidden | entk-show\n";

typedef struct {
    long vocab, hidden, layers, ffn, heads, kv, hd, window, pattern, maxpos;
    double qscalar, attn_softcap, final_softcap, rope_scaling;
} shape;

/* N(0, std^2) values for tensor number `which`: Marsaglia's polar method in float, in chunks of
 * 2^20 values each drawn from its own stream seeded by (seed, which, chunk), so chunks fill in
 * parallel and the bytes do not depend on the number of threads. */
static void fill_normal(uint64_t seed, int which, float *p, size_t n, float std) {
    const size_t chunk = (size_t)1 << 20;
    long nchunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(dynamic, 1)
    for (long c = 0; c < nchunks; c++) {
        rng r;
        rng_seed(&r, seed ^ ((uint64_t)which << 40) ^ ((uint64_t)c * 0x9e3779b97f4a7c15ull));
        size_t end = (size_t)(c + 1) * chunk < n ? (size_t)(c + 1) * chunk : n;
        for (size_t i = (size_t)c * chunk; i < end; i += 2) {
            float u, v, s;
            do {
                uint64_t b = rng_next(&r);
                u = (float)(b >> 40) * 0x1.0p-23f - 1.0f; /* two 24-bit uniforms in [-1, 1) */
                v = (float)((b >> 16) & 0xffffff) * 0x1.0p-23f - 1.0f;
                s = u * u + v * v;
            } while (s >= 1.0f || s == 0.0f);
            float m = sqrtf(-2.0f * logf(s) / s) * std;
            p[i] = u * m;
            if (i + 1 < end) p[i + 1] = v * m;
        }
    }
}

/* config.json, keys as google/gemma-3-270m's */
static char *config_json(const shape *s, int untied, st_dtype store, size_t *out_len) {
    size_t cap = 8192, len = 0;
    char *cfg = xmalloc(cap);
#define PUT(...) do { \
        int k_ = snprintf(cfg + len, cap - len, __VA_ARGS__); \
        if ((size_t)k_ >= cap - len) { cap = 2 * (cap + (size_t)k_); cfg = xrealloc(cfg, cap); snprintf(cfg + len, cap - len, __VA_ARGS__); } \
        len += (size_t)k_; \
    } while (0)
    PUT("{\n  \"architectures\": [\"Gemma3ForCausalLM\"],\n  \"model_type\": \"gemma3_text\",\n");
    PUT("  \"_sliding_window_pattern\": %ld,\n  \"attention_bias\": false,\n  \"attention_dropout\": 0.0,\n", s->pattern);
    if (s->attn_softcap > 0) PUT("  \"attn_logit_softcapping\": %.17g,\n", s->attn_softcap);
    else PUT("  \"attn_logit_softcapping\": null,\n");
    PUT("  \"bos_token_id\": 2,\n  \"eos_token_id\": 1,\n");
    if (s->final_softcap > 0) PUT("  \"final_logit_softcapping\": %.17g,\n", s->final_softcap);
    else PUT("  \"final_logit_softcapping\": null,\n");
    PUT("  \"head_dim\": %ld,\n  \"hidden_activation\": \"gelu_pytorch_tanh\",\n  \"hidden_size\": %ld,\n", s->hd, s->hidden);
    PUT("  \"initializer_range\": 0.02,\n  \"intermediate_size\": %ld,\n  \"layer_types\": [", s->ffn);
    for (long l = 0; l < s->layers; l++) PUT("%s\n    \"%s\"", l ? "," : "", (l + 1) % s->pattern ? "sliding_attention" : "full_attention");
    PUT("\n  ],\n  \"max_position_embeddings\": %ld,\n  \"num_attention_heads\": %ld,\n", s->maxpos, s->heads);
    PUT("  \"num_hidden_layers\": %ld,\n  \"num_key_value_heads\": %ld,\n  \"pad_token_id\": 0,\n", s->layers, s->kv);
    PUT("  \"query_pre_attn_scalar\": %.17g,\n  \"rms_norm_eps\": 1e-06,\n  \"rope_local_base_freq\": 10000.0,\n", s->qscalar);
    if (s->rope_scaling > 0) PUT("  \"rope_scaling\": {\"factor\": %.17g, \"rope_type\": \"linear\"},\n", s->rope_scaling);
    else PUT("  \"rope_scaling\": null,\n");
    PUT("  \"rope_theta\": 1000000.0,\n  \"sliding_window\": %ld,\n  \"tie_word_embeddings\": %s,\n", s->window, untied ? "false" : "true");
    PUT("  \"torch_dtype\": \"%s\",\n  \"use_bidirectional_attention\": false,\n  \"use_cache\": true,\n", store == ST_BF16 ? "bfloat16" : "float32");
    PUT("  \"vocab_size\": %ld\n}\n", s->vocab);
#undef PUT
    *out_len = len;
    return cfg;
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    shape tiny = {512, 64, 4, 128, 4, 2, 16, 8, 3, 2048, 32, 0, 0, 0};
    shape g270 = {262144, 640, 18, 2048, 4, 1, 256, 512, 6, 32768, 256, 0, 0, 0};
    shape s = tiny, ov = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    int untied = 0, preset = 0, dtype_i = 0;
    long seed = 0;
    double std = 0.02, nstd = 0.1;
    const long big = 1L << 24;
    /* entk-mkgemma writes model files, not frames: no option enters a key */
    cli_opt opts[] = {
        /* long name, letter, kind, destination, argument, key policy; then the kind's extras and the help */
        {"preset", 0, CLI_CHOICE, &preset, "tiny|270m", CLI_NOKEY,
         .help = "tiny (default: vocab 512, hidden 64, 4 layers, ffn 128, 4 heads, 2 kv,\n"
                 "head_dim 16, window 8, every 3rd layer global, query_pre_attn_scalar 32)\n"
                 "or 270m (the shapes of google/gemma-3-270m: vocab 262144, hidden 640,\n"
                 "18 layers, ffn 2048, 4 heads, 1 kv, head_dim 256, window 512, 5 local : 1\n"
                 "global, rope 1e6 / local 1e4, query_pre_attn_scalar 256, 32768 positions)"},
        {.kind = CLI_HEADING, .help = "The preset's sizes, overridden:"},
        {"layers", 0, CLI_LONG, &ov.layers, "N", CLI_NOKEY, .min = 1, .max = 4096, .help = "blocks"},
        {"vocab", 0, CLI_LONG, &ov.vocab, "N", CLI_NOKEY, .min = 1, .max = big, .help = "vocabulary size"},
        {"hidden", 0, CLI_LONG, &ov.hidden, "N", CLI_NOKEY, .min = 1, .max = 65536, .help = "hidden size"},
        {"ffn", 0, CLI_LONG, &ov.ffn, "N", CLI_NOKEY, .min = 1, .max = 1 << 20, .help = "MLP intermediate size"},
        {"heads", 0, CLI_LONG, &ov.heads, "N", CLI_NOKEY, .min = 1, .max = 4096, .help = "attention heads"},
        {"kv-heads", 0, CLI_LONG, &ov.kv, "N", CLI_NOKEY, .min = 1, .max = 4096, .help = "key/value heads (divides --heads)"},
        {"head-dim", 0, CLI_LONG, &ov.hd, "N", CLI_NOKEY, .min = 2, .max = 65536, .help = "head dimension (even)"},
        {"window", 0, CLI_LONG, &ov.window, "N", CLI_NOKEY, .min = 1, .max = big, .help = "sliding window of local layers"},
        {"pattern", 0, CLI_LONG, &ov.pattern, "N", CLI_NOKEY, .min = 1, .max = 4096, .help = "every N-th layer is global"},
        {"qscalar", 0, CLI_DOUBLE, &ov.qscalar, "X", CLI_NOKEY, .help = "query_pre_attn_scalar"},
        {.kind = CLI_HEADING, .help = "Other settings:"},
        {"attn-softcap", 0, CLI_DOUBLE, &ov.attn_softcap, "X", CLI_NOKEY, .help = "attention logit softcapping (default none)"},
        {"final-softcap", 0, CLI_DOUBLE, &ov.final_softcap, "X", CLI_NOKEY, .help = "final logit softcapping (default none)"},
        {"rope-scaling", 0, CLI_DOUBLE, &ov.rope_scaling, "F", CLI_NOKEY, .help = "linear RoPE scaling factor F on global layers"},
        {"untied", 0, CLI_FLAG, &untied, NULL, CLI_NOKEY, .help = "store a separate lm_head.weight"},
        {"dtype", 0, CLI_CHOICE, &dtype_i, "bf16|f32", CLI_NOKEY, .help = "bf16 (default) or f32"},
        {"seed", 0, CLI_LONG, &seed, "N", CLI_NOKEY, .min = 0, .max = 1L << 62, .help = "random seed (default 0)"},
        {"std", 0, CLI_DOUBLE, &std, "X", CLI_NOKEY, .help = "std of matrix weights (default 0.02)"},
        {"norm-std", 0, CLI_DOUBLE, &nstd, "X", CLI_NOKEY, .help = "std of norm weights (default 0.1)"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    const char *out = spec.co.output;
    if (!out) entk_die(ENTK_EXIT_USAGE, "-o DIR is required (see --help)");
    if (first < argc) entk_die(ENTK_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[first]);
    st_dtype store = dtype_i == 0 ? ST_BF16 : ST_F32;
    s = preset == 0 ? tiny : g270;
    /* sizes and scales that would make no model */
    const char *positive[] = {"qscalar", "attn-softcap", "final-softcap", "rope-scaling"};
    for (int i = 0; i < 4; i++) {
        cli_opt *o = cli_find(&spec, positive[i]);
        if (o->given && !(*(double *)o->dest > 0)) entk_die(ENTK_EXIT_USAGE, "--%s must be > 0", positive[i]);
    }
    if (std < 0 || nstd < 0) entk_die(ENTK_EXIT_USAGE, "--std and --norm-std must be >= 0");
#define OV(f) if (ov.f >= 0) s.f = ov.f
    OV(vocab); OV(hidden); OV(layers); OV(ffn); OV(heads); OV(kv); OV(hd); OV(window); OV(pattern);
    if (ov.qscalar > 0) s.qscalar = ov.qscalar;
    if (ov.attn_softcap > 0) s.attn_softcap = ov.attn_softcap;
    if (ov.final_softcap > 0) s.final_softcap = ov.final_softcap;
    if (ov.rope_scaling > 0) s.rope_scaling = ov.rope_scaling;
#undef OV
    if (s.heads % s.kv) entk_die(ENTK_EXIT_USAGE, "--heads %ld is not a multiple of --kv-heads %ld", s.heads, s.kv);
    if (s.hd % 2) entk_die(ENTK_EXIT_USAGE, "--head-dim must be even");

    if (mkdir(out, 0777) != 0 && errno != EEXIST) entk_die(ENTK_EXIT_FAIL, "cannot create %s: %s", out, strerror(errno));

    size_t len;
    char *cfg = config_json(&s, untied, store, &len);

    /* weights, in file order */
    int nt = 2 + (untied ? 1 : 0) + 13 * (int)s.layers, k = 0;
    st_entry *e = xcalloc((size_t)nt, sizeof *e);
    tensor *t = xcalloc((size_t)nt, sizeof *t);
    char **names = xcalloc((size_t)nt, sizeof(char *));
    long nq = s.heads * s.hd, nkv = s.kv * s.hd;
#define ADD(nm, isnorm, ...) do { \
        names[k] = xstrdup(nm); \
        int64_t dims_[] = {__VA_ARGS__}; \
        t[k] = tensor_new(DT_F32, (int)(sizeof dims_ / sizeof dims_[0]), dims_); \
        fill_normal((uint64_t)seed, k, t[k].data, (size_t)tensor_numel(&t[k]), (float)((isnorm) ? nstd : std)); \
        e[k] = (st_entry){names[k], &t[k], store}; \
        k++; \
    } while (0)
    ADD("model.embed_tokens.weight", 0, s.vocab, s.hidden);
    char nm[256];
    for (long l = 0; l < s.layers; l++) {
#define N(x) (snprintf(nm, sizeof nm, "model.layers.%ld.%s", l, x), nm)
        ADD(N("input_layernorm.weight"), 1, s.hidden);
        ADD(N("self_attn.q_proj.weight"), 0, nq, s.hidden);
        ADD(N("self_attn.k_proj.weight"), 0, nkv, s.hidden);
        ADD(N("self_attn.v_proj.weight"), 0, nkv, s.hidden);
        ADD(N("self_attn.q_norm.weight"), 1, s.hd);
        ADD(N("self_attn.k_norm.weight"), 1, s.hd);
        ADD(N("self_attn.o_proj.weight"), 0, s.hidden, nq);
        ADD(N("post_attention_layernorm.weight"), 1, s.hidden);
        ADD(N("pre_feedforward_layernorm.weight"), 1, s.hidden);
        ADD(N("mlp.gate_proj.weight"), 0, s.ffn, s.hidden);
        ADD(N("mlp.up_proj.weight"), 0, s.ffn, s.hidden);
        ADD(N("mlp.down_proj.weight"), 0, s.hidden, s.ffn);
        ADD(N("post_feedforward_layernorm.weight"), 1, s.hidden);
#undef N
    }
    ADD("model.norm.weight", 1, s.hidden);
    if (untied) ADD("lm_head.weight", 0, s.vocab, s.hidden);
#undef ADD
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    const char *meta_kv[] = {"format", "pt"};
    st_save(path, k, e, 1, meta_kv);
    snprintf(path, sizeof path, "%s/config.json", out);
    outfile_write_all(path, cfg, len);
    entk_log("wrote %s: gemma3_text, %ld layers, hidden %ld, vocab %ld, %s", out, s.layers, s.hidden, s.vocab,
             store == ST_BF16 ? "bf16" : "f32");
    for (int i = 0; i < k; i++) { tensor_free(&t[i]); free(names[i]); }
    free(t); free(e); free(names); free(cfg);
    return 0;
}
