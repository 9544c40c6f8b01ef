/* adamw: AdamW with decoupled weight decay, step for step as torch.optim.AdamW
 * (p *= 1 - lr*wd; m, v moments; bias-corrected step). State is kept in the parameters' dtype. */
#ifndef ENTK_ADAMW_H
#define ENTK_ADAMW_H
#include "core/tensor.h"

typedef struct {
    double lr, wd, beta1, beta2, eps;
    long step;
    int n;
    tensor *m, *v;
} adamw;

void adamw_init(adamw *o, int n, const tensor *params, double lr, double wd);
void adamw_step(adamw *o, tensor *params, const tensor *grads);
void adamw_free(adamw *o);
#endif
