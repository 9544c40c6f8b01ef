/* lm/load: opens a language model of any kind entk reads: a directory (or its config.json) is a
 * Hugging Face Gemma 3 model (lm/gemma3.h), a file a llama2.c checkpoint (lm/llama2.h). */
#ifndef ENTK_LM_LOAD_H
#define ENTK_LM_LOAD_H
#include "lm/model.h"

/* Dies with ENTK_EXIT_INPUT naming the problem. */
lm_model *lm_load(const char *path);
/* 1 if path names a model lm_load takes as Gemma 3 (a directory or a config.json). */
int lm_path_is_hf(const char *path);
/* 1 if path is a language model lm_load takes: a Gemma 3 directory (or config.json), or a file
 * that is a llama2.c checkpoint by its header and size. */
int lm_is_model(const char *path);
#endif
