/* tensor: a plain n-d array (row-major, little-endian host) with a dtype and a shape. */
#ifndef ENTK_TENSOR_H
#define ENTK_TENSOR_H
#include <stddef.h>
#include <stdint.h>

typedef enum { DT_F32, DT_F64, DT_I32, DT_I64, DT_U8, DT_NONE } dtype;
/* Every dtype's name, in order, as the choices of an option-table row (core/cli.h) whose int
 * value is a dtype. */
#define DTYPE_CHOICES "f32|f64|i32|i64|u8"
#define TENSOR_MAXDIM 8

typedef struct {
    dtype dt;
    int ndim;
    int64_t shape[TENSOR_MAXDIM];
    void *data;
} tensor;

const char *dtype_name(dtype d);
int dtype_parse(const char *s, dtype *out);      /* 1 on success */
size_t dtype_size(dtype d);
int dtype_is_float(dtype d);

tensor tensor_new(dtype d, int ndim, const int64_t *shape);   /* zero-filled */
tensor tensor_1d(dtype d, int64_t a);
tensor tensor_2d(dtype d, int64_t a, int64_t b);
tensor tensor_3d(dtype d, int64_t a, int64_t b, int64_t c);
int64_t tensor_numel(const tensor *t);
size_t tensor_nbytes(const tensor *t);
void tensor_free(tensor *t);
/* A new tensor holding t's values as dtype d (float<->float or int<->int). */
tensor tensor_as(const tensor *t, dtype d);
/* Element i as a double, whatever the dtype. */
double tensor_get(const tensor *t, int64_t i);
/* Index of the first NaN or infinity in p[0, n), or -1. One pass over the bits in blocks whose
 * test vectorises: loaders check every weight with it at the cost of a memory read. */
int64_t f32_nonfinite_at(const float *p, size_t n);
int64_t f64_nonfinite_at(const double *p, size_t n);
/* The same for a tensor (-1 for integer dtypes). */
int64_t tensor_nonfinite_at(const tensor *t);
/* "[841,841] f64" into buf. */
const char *tensor_desc(const tensor *t, char *buf, size_t n);
#endif
