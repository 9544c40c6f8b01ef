"""The whole Setting-1 computation the best plain PyTorch way, for tests/bench/mlp-modadd.

Same data split and initial weights as the entk run (read from its data.frames and epoch-0
checkpoint), AdamW full batch, and every EVERY epochs: functorch vmap(jacrev) Jacobians, the
class-traced Gram by one einsum per parameter (never the (N,N,C,C) tensor), torch.linalg.eigh,
overlaps of eigenvectors 58..113 with the centred, orthonormalised sum/diff families.
usage: mlp_modadd_torch.py DATA INIT EPOCHS EVERY  -> prints JSON with seconds and results"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from functorch import jacrev, vmap

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "peer"))
from entkio import load_safetensors, tensors  # noqa: E402


def family(p, kind):
    n, m = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    v = {"sum": (n + m) % p, "diff": (n - m) % p}[kind].reshape(-1)
    cols = []
    for k in range(1, p // 2 + 1):
        cols += [np.cos(2 * np.pi * k * v / p), np.sin(2 * np.pi * k * v / p)]
    Fm = torch.tensor(np.stack(cols, 1))
    Fm = Fm - Fm.mean(0)
    return torch.linalg.qr(Fm)[0]


def main():
    data, init, epochs, every = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    t_start = time.time()
    w0, meta = load_safetensors(init)
    p, hidden = int(meta["p"]), int(meta["hidden"])
    d = tensors(data)
    x = torch.tensor(np.array(d["x"]["array"]), dtype=torch.float32)
    y = torch.tensor(np.array(d["labels"]["array"])).long()
    train = torch.tensor(np.array(d["train"]["array"]).astype(bool))
    params = {k: torch.tensor(v, requires_grad=True) for k, v in w0.items()}

    def f(ps, xx):
        h = xx @ ps["W1"].T / np.sqrt(2 * p)
        return (h * h) @ ps["W2"].T / hidden

    fams = {k: family(p, k) for k in ("sum", "diff")}
    opt = torch.optim.AdamW(list(params.values()), lr=0.05, weight_decay=0.01)
    yt = F.one_hot(y[train], p).float()
    series, t_ntk = [], 0.0
    d = 2 * (p // 2)
    lo, hi = 2 + 2 * d, 1 + 4 * d  # cliff 2: eigenvectors 58..113 (1-based) for p = 29
    K = None
    for ep in range(epochs + 1):
        if ep > 0:
            opt.zero_grad()
            loss = F.mse_loss(f(params, x[train]), yt)
            loss.backward()
            opt.step()
        if ep % every == 0:
            t0 = time.time()
            ps = {k: v.detach() for k, v in params.items()}
            jac = vmap(jacrev(f), in_dims=(None, 0))(ps, x)
            K = sum(torch.einsum("nc...,mc...->nm", J, J) for J in jac.values()) / p
            del jac
            K64 = K.double()
            K64 += 1e-8 * K64.diagonal().mean() * torch.eye(K64.shape[0], dtype=torch.float64)
            evals, evecs = torch.linalg.eigh(K64)
            evals, evecs = evals.flip(0)[:200], evecs.flip(1)[:, :200]
            Q = torch.linalg.qr(evecs[:, lo - 1 : hi])[0]
            ov = {k: float((Q.T @ Fm).pow(2).sum()) for k, Fm in fams.items()}
            t_ntk += time.time() - t0
            series.append({"epoch": ep, **ov})
            print(f"torch: epoch {ep}: sum {ov['sum']:.3f} diff {ov['diff']:.3f} ({time.time() - t_start:.0f}s)", file=sys.stderr)
    ev = evals.numpy()
    print(json.dumps({"seconds": time.time() - t_start, "ntk_seconds": t_ntk, "snapshots": len(series),
                      "overlap_sum": series[-1]["sum"], "overlap_diff": series[-1]["diff"],
                      "cliff_ratios": [float(ev[56] / ev[57]), float(ev[112] / ev[113])]}))


if __name__ == "__main__":
    main()
