"""Peer check of entk-train: the same AdamW steps in PyTorch from the same initial weights.

usage: train_ref.py INIT DATA RESULT STEPS LR WD [METRICS [C]]
INIT/RESULT are entk checkpoints (RESULT = entk-train --init INIT --batch 0 after STEPS optimizer
steps of full-batch training, so no shuffling order is involved).
Tolerance: tol = C u STEPS (default C = 16), u = eps of the checkpoints' dtype. Each step's forward,
backward and update round at a few u relative (AdamW's update is normalised, so rounding in the
gradient changes it by about as much relative), and the steps' errors add up; measured at most
2.1 u after 3 MLP steps and 1.0 u after 5 Transformer steps, in f32 and f64.
Exits 1 if any tensor differs by more than tol (relative Frobenius).
With METRICS (entk-train's metrics stream, one record per epoch: --ckpt-every 1) also checks
- the loss of every epoch (the loss its step started from; epoch 0: at INIT) to tol relative,
- train_acc and test_acc of the last epoch against torch's predictions with RESULT's weights: they
  must agree except on examples whose top two logits are within 100 tol relative (weights off by
  tol move the logits by up to that times the network's gain, 100 leaving room for it)."""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from entkio import frames, load_safetensors, tensors  # noqa: E402
from ntk_ref import model_fn  # noqa: E402


def main():
    init, data, result, steps, lr, wd = sys.argv[1:7]
    metrics = sys.argv[7] if len(sys.argv) > 7 else None
    w0, meta = load_safetensors(init)
    w1, _ = load_safetensors(result)
    dtype = torch.float32 if next(iter(w0.values())).dtype == np.float32 else torch.float64
    u = np.finfo(np.float32 if dtype == torch.float32 else np.float64).eps
    tol = (float(sys.argv[8]) if len(sys.argv) > 8 else 16.0) * u * int(steps)
    params = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in w0.items()}
    d = tensors(data)
    train = np.array(d["train"]["array"]).astype(bool)
    xall = torch.tensor(np.array(d["x"]["array"]))
    xall = xall.to(dtype) if xall.dtype.is_floating_point else xall.long()
    yall = torch.tensor(np.array(d["labels"]["array"])).long()
    x, y = xall[train], yall[train]
    f = model_fn(meta)
    p = int(meta["p"])

    def loss_fn(out):
        if meta["entk_model"] == "mlp":
            return F.mse_loss(out, F.one_hot(y, p).to(dtype))
        return F.cross_entropy(out[:, :p], y)  # the transformer's outputs are all p + 1 logits

    opt = torch.optim.AdamW(list(params.values()), lr=float(lr), weight_decay=float(wd))
    losses = []
    for _ in range(int(steps)):
        opt.zero_grad()
        loss = loss_fn(f(params, x))
        losses.append(loss.item())
        loss.backward()
        opt.step()
    bad = 0
    for k, v in params.items():
        ref = v.detach().numpy().astype(np.float64)
        got = w1[k].astype(np.float64)
        err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        ok = err <= tol
        bad += not ok
        print(f"{'ok' if ok else 'FAIL'} {k}: rel err {err:.2e} = {err / u:.2g} u after {steps} AdamW steps (tol {tol:.2g})")
    if metrics:
        recs = {int(fr["meta"]["epoch"]): fr["meta"] for fr in frames(metrics) if fr.get("name") == "metrics"}
        for ep in range(int(steps) + 1):
            ref = losses[max(ep - 1, 0)]  # epoch e logs the loss its one step started from
            err = abs(recs[ep]["loss"] - ref) / abs(ref)
            ok = err <= tol
            bad += not ok
            print(f"{'ok' if ok else 'FAIL'} loss at epoch {ep}: {recs[ep]['loss']:.9g} vs {ref:.9g} (rel err {err:.1e})")
        with torch.no_grad():
            out = f({k: torch.tensor(v, dtype=dtype) for k, v in w1.items()}, xall)[:, :p]
        top2 = out.topk(2, dim=1).values
        near = ((top2[:, 0] - top2[:, 1]) <= 100 * tol * top2[:, 0].abs()).numpy()
        right = (out.argmax(1) == yall).numpy()
        last = recs[max(recs)]
        for name, split in (("train_acc", train), ("test_acc", ~train)):
            n = int(split.sum())
            lo, hi = (right & split & ~near).sum() / n, (right & split | near & split).sum() / n
            r = 2 * np.finfo(np.float64).eps  # both sides are ratios of counts, each rounded once in f64
            ok = lo - r <= last[name] <= hi + r
            bad += not ok
            print(f"{'ok' if ok else 'FAIL'} {name} at epoch {max(recs)}: {last[name]:.6f}, torch {lo:.6f}..{hi:.6f}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
