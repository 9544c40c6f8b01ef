/* gemma3: reads a Hugging Face Gemma 3 text model directory (config.json + model.safetensors, bf16,
 * f16 or f32, tensor names as Gemma3ForCausalLM) into an lm_model (lm/model.h), weights in f32.
 *
 * config.json is read the way transformers' Gemma3TextConfig reads it, defaults included:
 * model_type gemma3_text (or gemma3 with a text_config), layer_types or else
 * sliding_window_pattern (layer i is global iff (i+1) % pattern == 0), rope_theta for global and
 * rope_local_base_freq for sliding layers (or rope_parameters per layer type; linear rope_scaling
 * on global layers), query_pre_attn_scalar, attn/final logit softcapping, tied or untied head.
 * Anything malformed, unsupported, missing or of the wrong shape is a one-line ENTK_EXIT_INPUT
 * error naming the key or tensor. */
#ifndef ENTK_GEMMA3_H
#define ENTK_GEMMA3_H
#include "lm/model.h"

#include "core/json.h"

/* path: the model directory or its config.json. */
lm_model *gemma3_load(const char *path);

/* What config.json says beyond lm_model's fields. */
typedef struct {
    int tied, window;
    int64_t pattern;
    const json *layer_types;   /* validated, or NULL: then the pattern decides */
    double base_local, fac_local, base_global, fac_global;
} gemma3_config;
/* Parses and checks a config.json (root) into m's scalar fields and g, allocating nothing; dies
 * naming the key. Separate from loading the weights so the fuzz harness can reach it alone. */
void gemma3_parse_config(const json *root, const char *cpath, lm_model *m, gemma3_config *g);
#endif
