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

static const char *help =
    "Usage: entk-mkgemma -o DIR [options]\n"
    "Writes a Gemma 3 text model with random weights as Hugging Face stores one: DIR/config.json and\n"
    "DIR/model.safetensors (tensor names of Gemma3ForCausalLM, tied head). Matrices are N(0, std^2),\n"
    "norm weights N(0, norm-std^2) (Gemma norms scale by 1 + w), all from --seed, so the same command\n"
    "writes the same bytes. For tests and benchmarks of entk-lmforward.\n"
    "\n"
    "Options:\n"
    "  -o, --output DIR      the model directory (created; files replaced atomically)\n"
    "      --preset NAME     tiny (default: vocab 512, hidden 64, 4 layers, ffn 128, 4 heads, 2 kv,\n"
    "                        head_dim 16, window 8, every 3rd layer global, query_pre_attn_scalar 32)\n"
    "                        or 270m (the shapes of google/gemma-3-270m: vocab 262144, hidden 640,\n"
    "                        18 layers, ffn 2048, 4 heads, 1 kv, head_dim 256, window 512, 5 local : 1\n"
    "                        global, rope 1e6 / local 1e4, query_pre_attn_scalar 256, 32768 positions)\n"
    "      --layers N  --vocab N  --hidden N  --ffn N  --heads N  --kv-heads N  --head-dim N\n"
    "      --window N  --pattern N  --qscalar X      override the preset's sizes\n"
    "      --attn-softcap X  --final-softcap X        set attn/final logit softcapping (default none)\n"
    "      --rope-scaling F  linear RoPE scaling factor F on global layers\n"
    "      --untied          store a separate lm_head.weight\n"
    "      --dtype D         bf16 (default) or f32\n"
    "      --seed N          random seed (default 0)\n"
    "      --std X           std of matrix weights (default 0.02)\n"
    "      --norm-std X      std of norm weights (default 0.1)\n"
    "\n"
    "Example:\n"
    "  entk-mkgemma -o /tmp/gemma-tiny --preset tiny --seed 1 && \\\n"
    "      entk-lmforward -m /tmp/gemma-tiny --ids 2,5,7,9 --outputs hidden | entk-show\n";

enum {
    OPT_PRESET = OPT_FIRST_CUSTOM, OPT_LAYERS, OPT_VOCAB, OPT_HIDDEN, OPT_FFN, OPT_HEADS, OPT_KV, OPT_HD, OPT_WINDOW,
    OPT_PATTERN, OPT_QS, OPT_ASOFT, OPT_FSOFT, OPT_ROPESC, OPT_UNTIED, OPT_DT, OPT_SEED, OPT_STD, OPT_NSTD
};

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

int main(int argc, char **argv) {
    cli_start(argc, argv);
    cli_common co = {0};
    shape tiny = {512, 64, 4, 128, 4, 2, 16, 8, 3, 2048, 32, 0, 0, 0};
    shape g270 = {262144, 640, 18, 2048, 4, 1, 256, 512, 6, 32768, 256, 0, 0, 0};
    shape s = tiny, ov = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    int untied = 0;
    st_dtype store = ST_BF16;
    long seed = 0;
    double std = 0.02, nstd = 0.1;
    const char *preset = "tiny";
    static struct option lo[] = {CLI_COMMON_LONGOPTS,
                                 {"preset", required_argument, 0, OPT_PRESET},
                                 {"layers", required_argument, 0, OPT_LAYERS},
                                 {"vocab", required_argument, 0, OPT_VOCAB},
                                 {"hidden", required_argument, 0, OPT_HIDDEN},
                                 {"ffn", required_argument, 0, OPT_FFN},
                                 {"heads", required_argument, 0, OPT_HEADS},
                                 {"kv-heads", required_argument, 0, OPT_KV},
                                 {"head-dim", required_argument, 0, OPT_HD},
                                 {"window", required_argument, 0, OPT_WINDOW},
                                 {"pattern", required_argument, 0, OPT_PATTERN},
                                 {"qscalar", required_argument, 0, OPT_QS},
                                 {"attn-softcap", required_argument, 0, OPT_ASOFT},
                                 {"final-softcap", required_argument, 0, OPT_FSOFT},
                                 {"rope-scaling", required_argument, 0, OPT_ROPESC},
                                 {"untied", no_argument, 0, OPT_UNTIED},
                                 {"dtype", required_argument, 0, OPT_DT},
                                 {"seed", required_argument, 0, OPT_SEED},
                                 {"std", required_argument, 0, OPT_STD},
                                 {"norm-std", required_argument, 0, OPT_NSTD},
                                 {0, 0, 0, 0}};
    int c;
    const long big = 1L << 24;
    while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
        if (cli_common_opt(c, &co, help)) continue;
        switch (c) {
        case OPT_PRESET: preset = optarg; break;
        case OPT_LAYERS: ov.layers = cli_long("--layers", optarg, 1, 4096); break;
        case OPT_VOCAB: ov.vocab = cli_long("--vocab", optarg, 1, big); break;
        case OPT_HIDDEN: ov.hidden = cli_long("--hidden", optarg, 1, 65536); break;
        case OPT_FFN: ov.ffn = cli_long("--ffn", optarg, 1, 1 << 20); break;
        case OPT_HEADS: ov.heads = cli_long("--heads", optarg, 1, 4096); break;
        case OPT_KV: ov.kv = cli_long("--kv-heads", optarg, 1, 4096); break;
        case OPT_HD: ov.hd = cli_long("--head-dim", optarg, 2, 65536); break;
        case OPT_WINDOW: ov.window = cli_long("--window", optarg, 1, big); break;
        case OPT_PATTERN: ov.pattern = cli_long("--pattern", optarg, 1, 4096); break;
        case OPT_QS: ov.qscalar = cli_double_min("--qscalar", optarg, 0, 1); break;
        case OPT_ASOFT: ov.attn_softcap = cli_double_min("--attn-softcap", optarg, 0, 1); break;
        case OPT_FSOFT: ov.final_softcap = cli_double_min("--final-softcap", optarg, 0, 1); break;
        case OPT_ROPESC: ov.rope_scaling = cli_double_min("--rope-scaling", optarg, 0, 1); break;
        case OPT_UNTIED: untied = 1; break;
        case OPT_DT:
            if (strcmp(optarg, "bf16") == 0) store = ST_BF16;
            else if (strcmp(optarg, "f32") == 0) store = ST_F32;
            else entk_die(ENTK_EXIT_USAGE, "--dtype must be bf16 or f32, not '%s'", optarg);
            break;
        case OPT_SEED: seed = cli_long("--seed", optarg, 0, 1L << 62); break;
        case OPT_STD: std = cli_double_min("--std", optarg, 0, 0); break;
        case OPT_NSTD: nstd = cli_double_min("--norm-std", optarg, 0, 0); break;
        default: cli_bad_option(argv);
        }
    }
    if (!co.output) entk_die(ENTK_EXIT_USAGE, "-o DIR is required (see --help)");
    if (optind < argc) entk_die(ENTK_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[optind]);
    if (strcmp(preset, "tiny") == 0) s = tiny;
    else if (strcmp(preset, "270m") == 0) s = g270;
    else entk_die(ENTK_EXIT_USAGE, "--preset must be tiny or 270m, not '%s'", preset);
#define OV(f) if (ov.f >= 0) s.f = ov.f
    OV(vocab); OV(hidden); OV(layers); OV(ffn); OV(heads); OV(kv); OV(hd); OV(window); OV(pattern);
    if (ov.qscalar > 0) s.qscalar = ov.qscalar;
    if (ov.attn_softcap > 0) s.attn_softcap = ov.attn_softcap;
    if (ov.final_softcap > 0) s.final_softcap = ov.final_softcap;
    if (ov.rope_scaling > 0) s.rope_scaling = ov.rope_scaling;
#undef OV
    if (s.heads % s.kv) entk_die(ENTK_EXIT_USAGE, "--heads %ld is not a multiple of --kv-heads %ld", s.heads, s.kv);
    if (s.hd % 2) entk_die(ENTK_EXIT_USAGE, "--head-dim must be even");

    if (mkdir(co.output, 0777) != 0 && errno != EEXIST) entk_die(ENTK_EXIT_FAIL, "cannot create %s: %s", co.output, strerror(errno));

    /* config.json, keys as google/gemma-3-270m's */
    size_t cap = 8192, len = 0;
    char *cfg = xmalloc(cap);
#define PUT(...) do { \
        int k_ = snprintf(cfg + len, cap - len, __VA_ARGS__); \
        if ((size_t)k_ >= cap - len) { cap = 2 * (cap + (size_t)k_); cfg = xrealloc(cfg, cap); snprintf(cfg + len, cap - len, __VA_ARGS__); } \
        len += (size_t)k_; \
    } while (0)
    PUT("{\n  \"architectures\": [\"Gemma3ForCausalLM\"],\n  \"model_type\": \"gemma3_text\",\n");
    PUT("  \"_sliding_window_pattern\": %ld,\n  \"attention_bias\": false,\n  \"attention_dropout\": 0.0,\n", s.pattern);
    if (s.attn_softcap > 0) PUT("  \"attn_logit_softcapping\": %.17g,\n", s.attn_softcap);
    else PUT("  \"attn_logit_softcapping\": null,\n");
    PUT("  \"bos_token_id\": 2,\n  \"eos_token_id\": 1,\n");
    if (s.final_softcap > 0) PUT("  \"final_logit_softcapping\": %.17g,\n", s.final_softcap);
    else PUT("  \"final_logit_softcapping\": null,\n");
    PUT("  \"head_dim\": %ld,\n  \"hidden_activation\": \"gelu_pytorch_tanh\",\n  \"hidden_size\": %ld,\n", s.hd, s.hidden);
    PUT("  \"initializer_range\": 0.02,\n  \"intermediate_size\": %ld,\n  \"layer_types\": [", s.ffn);
    for (long l = 0; l < s.layers; l++) PUT("%s\n    \"%s\"", l ? "," : "", (l + 1) % s.pattern ? "sliding_attention" : "full_attention");
    PUT("\n  ],\n  \"max_position_embeddings\": %ld,\n  \"num_attention_heads\": %ld,\n", s.maxpos, s.heads);
    PUT("  \"num_hidden_layers\": %ld,\n  \"num_key_value_heads\": %ld,\n  \"pad_token_id\": 0,\n", s.layers, s.kv);
    PUT("  \"query_pre_attn_scalar\": %.17g,\n  \"rms_norm_eps\": 1e-06,\n  \"rope_local_base_freq\": 10000.0,\n", s.qscalar);
    if (s.rope_scaling > 0) PUT("  \"rope_scaling\": {\"factor\": %.17g, \"rope_type\": \"linear\"},\n", s.rope_scaling);
    else PUT("  \"rope_scaling\": null,\n");
    PUT("  \"rope_theta\": 1000000.0,\n  \"sliding_window\": %ld,\n  \"tie_word_embeddings\": %s,\n", s.window, untied ? "false" : "true");
    PUT("  \"torch_dtype\": \"%s\",\n  \"use_bidirectional_attention\": false,\n  \"use_cache\": true,\n", store == ST_BF16 ? "bfloat16" : "float32");
    PUT("  \"vocab_size\": %ld\n}\n", s.vocab);
#undef PUT

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
    snprintf(path, sizeof path, "%s/model.safetensors", co.output);
    const char *meta_kv[] = {"format", "pt"};
    st_save(path, k, e, 1, meta_kv);
    snprintf(path, sizeof path, "%s/config.json", co.output);
    outfile_write_all(path, cfg, len);
    entk_log("wrote %s: gemma3_text, %ld layers, hidden %ld, vocab %ld, %s", co.output, s.layers, s.hidden, s.vocab,
             store == ST_BF16 ? "bf16" : "f32");
    for (int i = 0; i < k; i++) { tensor_free(&t[i]); free(names[i]); }
    free(t); free(e); free(names); free(cfg);
    return 0;
}
