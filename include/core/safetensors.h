/* safetensors: read and write Hugging Face safetensors files (F32, F64, BF16, F16, I32, I64, U8),
 * so weights move between entk and PyTorch unchanged. Files are mmapped; every header field and
 * offset is validated before any tensor is touched. */
#ifndef ENTK_SAFETENSORS_H
#define ENTK_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "core/hash.h"
#include "core/json.h"
#include "core/tensor.h"

typedef enum { ST_F32, ST_F64, ST_BF16, ST_F16, ST_I32, ST_I64, ST_U8, ST_BOOL } st_dtype;

typedef struct {
    char *name;
    st_dtype dt;
    int ndim;
    int64_t shape[TENSOR_MAXDIM];
    const unsigned char *ptr;   /* into the mapping */
    size_t nbytes;
} st_tensor;

typedef struct {
    char *path;
    unsigned char *map;
    size_t size;
    int n;
    st_tensor *t;
    json *header;
    const json *metadata;   /* "__metadata__" object or NULL */
} safetensors;

/* Opens and validates; dies with ENTK_EXIT_INPUT naming the problem. */
void st_open(safetensors *st, const char *path);
void st_close(safetensors *st);
const st_tensor *st_find(const safetensors *st, const char *name);
/* Loads a tensor converted to d; dies naming the tensor if it is missing or not of the expected
 * shape (ndim/dims; -1 = any, dims may be NULL). */
tensor st_load(const safetensors *st, const char *name, dtype d, int ndim, const int64_t *dims);
const char *st_meta(const safetensors *st, const char *key);   /* __metadata__ string or NULL */
const char *st_dtype_name(st_dtype d);

typedef struct {
    const char *name;
    const tensor *t;
    st_dtype store;    /* how to store it: F32, F64, BF16 or F16 for float tensors */
} st_entry;

/* Writes the file atomically (temporary + rename). meta_kv holds nmeta key/value pairs. */
void st_save(const char *path, int n, const st_entry *e, int nmeta, const char *const *meta_kv);

float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
#endif
