"""Peer check of entk-train: the same AdamW steps in PyTorch from the same initial weights.

usage: train_ref.py INIT DATA RESULT STEPS LR WD BATCH [SEEDLESS]
INIT/RESULT are entk checkpoints (RESULT = entk-train --init INIT after STEPS optimizer steps of
full-batch training: BATCH must be 0 = full batch, so no shuffling order is involved).
Exits 1 if any tensor differs by more than the tolerance (relative Frobenius: 1e-6 f32, 1e-12 f64)."""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from entkio import load_safetensors, tensors  # noqa: E402
from ntk_ref import model_fn  # noqa: E402


def main():
    init, data, result, steps, lr, wd = sys.argv[1:7]
    w0, meta = load_safetensors(init)
    w1, _ = load_safetensors(result)
    dtype = torch.float32 if next(iter(w0.values())).dtype == np.float32 else torch.float64
    params = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in w0.items()}
    d = tensors(data)
    train = np.array(d["train"]["array"]).astype(bool)
    x = torch.tensor(np.array(d["x"]["array"])[train])
    x = x.to(dtype) if x.dtype.is_floating_point else x.long()
    y = torch.tensor(np.array(d["labels"]["array"])[train]).long()
    f = model_fn(meta)
    p = int(meta["p"])
    opt = torch.optim.AdamW(list(params.values()), lr=float(lr), weight_decay=float(wd))
    for _ in range(int(steps)):
        opt.zero_grad()
        out = f(params, x)
        if meta["entk_model"] == "mlp":
            loss = F.mse_loss(out, F.one_hot(y, p).to(dtype))
        else:
            loss = F.cross_entropy(out[:, :p], y)  # the transformer's outputs are all p + 1 logits
        loss.backward()
        opt.step()
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    bad = 0
    for k, v in params.items():
        ref = v.detach().numpy().astype(np.float64)
        got = w1[k].astype(np.float64)
        err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        ok = err <= tol
        bad += not ok
        print(f"{'ok' if ok else 'FAIL'} {k}: rel err {err:.2e} after {steps} AdamW steps (tol {tol:g})")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
