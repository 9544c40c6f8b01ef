#include "adamw.h"
#include "err.h"
#include "linalg.h"
#include <math.h>
#include <stdlib.h>

void adamw_init(adamw *o, int n, const tensor *params, double lr, double wd) {
    o->lr = lr; o->wd = wd; o->beta1 = 0.9; o->beta2 = 0.999; o->eps = 1e-8;
    o->step = 0;
    o->n = n;
    o->m = xcalloc((size_t)n, sizeof(tensor));
    o->v = xcalloc((size_t)n, sizeof(tensor));
    for (int k = 0; k < n; k++) {
        o->m[k] = tensor_new(params[k].dt, params[k].ndim, params[k].shape);
        o->v[k] = tensor_new(params[k].dt, params[k].ndim, params[k].shape);
    }
}

#define ADAMW_LOOP(T)                                                                   \
    do {                                                                                \
        T *p = params[k].data, *m = o->m[k].data, *v = o->v[k].data;                    \
        const T *g = grads[k].data;                                                     \
        for (int64_t i = 0; i < n; i++) {                                               \
            p[i] *= (T)(1 - o->lr * o->wd);                                             \
            m[i] = (T)(o->beta1 * m[i] + (1 - o->beta1) * g[i]);                        \
            v[i] = (T)(o->beta2 * v[i] + (1 - o->beta2) * (double)g[i] * g[i]);         \
            T denom = (T)(sqrt((double)v[i]) / bc2_sqrt + o->eps);                      \
            p[i] -= (T)(step_size * m[i] / denom);                                      \
        }                                                                               \
    } while (0)

void adamw_step(adamw *o, tensor *params, const tensor *grads) {
    o->step++;
    double bc1 = 1 - pow(o->beta1, (double)o->step), bc2 = 1 - pow(o->beta2, (double)o->step);
    double step_size = o->lr / bc1, bc2_sqrt = sqrt(bc2);
    for (int k = 0; k < o->n; k++) {
        int64_t n = tensor_numel(&params[k]);
        if (params[k].dt == DT_F32) ADAMW_LOOP(float);
        else ADAMW_LOOP(double);
    }
}

void adamw_free(adamw *o) {
    for (int k = 0; k < o->n; k++) { tensor_free(&o->m[k]); tensor_free(&o->v[k]); }
    free(o->m);
    free(o->v);
}
