#include "modadd/adamw.h"
#include "core/duo.h"
#include "core/err.h"
#include "core/linalg.h"
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

/* One tensor's update in its own precision, as torch.optim.AdamW computes it (p *= 1 - lr wd;
 * m, v moments; p -= step_size m / (sqrt(v) / sqrt(bc2) + eps)), except that dividing by
 * sqrt(bc2) is a multiplication by its inverse. Constants come in as locals and the arrays as
 * restrict so the loop vectorises (adamw.o is built with -fno-math-errno so that sqrt can be):
 * in scalar double arithmetic it took ~400 us of each Transformer training step. */
#define ADAMW_LOOP(T, SQRT)                                                                             \
    static void adamw_##T(int64_t n, T *restrict p, T *restrict m, T *restrict v, const T *restrict g, T decay, \
                          T b1, T c1, T b2, T c2, T step_size, T inv_bc2_sqrt, T eps) {                 \
        for (int64_t i = 0; i < n; i++) {                                                               \
            m[i] = b1 * m[i] + c1 * g[i];                                                               \
            v[i] = b2 * v[i] + c2 * g[i] * g[i];                                                        \
            T denom = SQRT(v[i]) * inv_bc2_sqrt + eps;                                                  \
            p[i] = p[i] * decay - step_size * m[i] / denom;                                             \
        }                                                                                               \
    }
ADAMW_LOOP(float, sqrtf)
ADAMW_LOOP(double, sqrt)

typedef struct {
    adamw *o;
    tensor *params;
    const tensor *grads;
    double decay, step_size, inv_bc2_sqrt;
} step_job;

/* task t of 2: one half of every tensor (53K parameters of the Transformer take ~40 us, worth a
 * second core) */
static void step_task(void *arg, int task, int thread) {
    step_job *j = arg;
    adamw *o = j->o;
    for (int k = 0; k < o->n; k++) {
        tensor *p = &j->params[k];
        int64_t n = tensor_numel(p), lo = n * task / 2, hi = n * (task + 1) / 2;
        if (p->dt == DT_F32)
            adamw_float(hi - lo, (float *)p->data + lo, (float *)o->m[k].data + lo, (float *)o->v[k].data + lo,
                        (const float *)j->grads[k].data + lo, (float)j->decay, (float)o->beta1, (float)(1 - o->beta1),
                        (float)o->beta2, (float)(1 - o->beta2), (float)j->step_size, (float)j->inv_bc2_sqrt,
                        (float)o->eps);
        else
            adamw_double(hi - lo, (double *)p->data + lo, (double *)o->m[k].data + lo, (double *)o->v[k].data + lo,
                         (const double *)j->grads[k].data + lo, j->decay, o->beta1, 1 - o->beta1, o->beta2,
                         1 - o->beta2, j->step_size, j->inv_bc2_sqrt, o->eps);
    }
}

void adamw_step(adamw *o, tensor *params, const tensor *grads) {
    o->step++;
    double bc1 = 1 - pow(o->beta1, (double)o->step), bc2 = 1 - pow(o->beta2, (double)o->step);
    step_job j = {o, params, grads, 1 - o->lr * o->wd, o->lr / bc1, 1 / sqrt(bc2)};
    duo_run(step_task, &j, 2);
}

void adamw_free(adamw *o) {
    for (int k = 0; k < o->n; k++) { tensor_free(&o->m[k]); tensor_free(&o->v[k]); }
    free(o->m);
    free(o->v);
}
