#include "lm/load.h"
#include "core/err.h"
#include "lm/gemma3.h"
#include "lm/llama2.h"
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int lm_path_is_hf(const char *path) {
    struct stat sb;
    size_t n = strlen(path);
    return (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) || (n >= 11 && strcmp(path + n - 11, "config.json") == 0);
}

int lm_is_model(const char *path) { return lm_path_is_hf(path) || llama2_probe(path); }

lm_model *lm_load(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) entk_die(ENTK_EXIT_INPUT, "cannot open model %s: no such file or directory", path);
    return lm_path_is_hf(path) ? gemma3_load(path) : llama2_load(path);
}
