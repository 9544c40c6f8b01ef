"""Setting 2 the best plain PyTorch way, for tests/bench/transformer-modadd.

Same data split and initial weights as the entk run; AdamW minibatches of 64 (torch's own
shuffle); every EVERY epochs the class-mean W_U eNTK from functorch Jacobians of the summed
logits (never the (N,N,C,C) tensor), torch.linalg.eigh, top 40 kept; at the end the key
frequencies of W_E, the top-5 overlaps with `sum` over training, and all nine per-tensor eNTKs.
usage: transformer_modadd_torch.py DATA INIT EPOCHS EVERY -> JSON on stdout"""
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
from transformer_ref import transformer_fn  # noqa: E402


def top_eig(K, k):
    K = K.double()
    K = K + 1e-8 * K.diagonal().mean() * torch.eye(K.shape[0], dtype=torch.float64)
    w, v = torch.linalg.eigh(K)
    return w.flip(0)[:k], v.flip(1)[:, :k]


def main():
    data, init, epochs, every = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    t_start = time.time()
    torch.manual_seed(0)
    w0, meta = load_safetensors(init)
    p = int(meta["p"])
    d = tensors(data)
    x = torch.tensor(np.array(d["x"]["array"])).long()
    y = torch.tensor(np.array(d["labels"]["array"])).long()
    train = torch.tensor(np.array(d["train"]["array"]).astype(bool))
    params = {k: torch.tensor(v, requires_grad=True) for k, v in w0.items()}
    f = transformer_fn(meta)
    opt = torch.optim.AdamW(list(params.values()), lr=3e-4, weight_decay=1.0)
    xtr, ytr = x[train], y[train]

    def summed(name):
        def g(w, ps, xx):
            q = dict(ps)
            q[name] = w
            return f(q, xx).sum()
        return g

    snaps, acc = [], []
    for ep in range(epochs + 1):
        if ep > 0:
            perm = torch.randperm(len(xtr))
            for b in range(0, len(xtr), 64):
                idx = perm[b : b + 64]
                opt.zero_grad()
                F.cross_entropy(f(params, xtr[idx])[:, :p], ytr[idx]).backward()
                opt.step()
        if ep % every == 0:
            ps = {k: v.detach() for k, v in params.items()}
            with torch.no_grad():
                acc.append(float((f(ps, x[~train])[:, :p].argmax(1) == y[~train]).float().mean()))
            J = vmap(jacrev(summed("W_U")), in_dims=(None, None, 0))(ps["W_U"], ps, x).reshape(len(x), -1)
            C = p + 1
            snaps.append(top_eig(J @ J.T / C**2, 40)[1][:, :5])
    ps = {k: v.detach() for k, v in params.items()}
    power = (torch.fft.fft(ps["W_E"][:p].double(), dim=0).abs() ** 2).mean(1)
    score = {k: float(power[k] + power[p - k]) for k in range(1, p // 2 + 1)}
    keys = sorted(score, key=lambda k: -score[k])[:2]
    n, m = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    v = ((n + m) % p).reshape(-1)
    cols = [c for k in keys for c in (np.cos(2 * np.pi * k * v / p), np.sin(2 * np.pi * k * v / p))]
    Fm = torch.tensor(np.stack(cols, 1))
    Fq = torch.linalg.qr(Fm - Fm.mean(0))[0]
    series = [float((torch.linalg.qr(V)[0].T @ Fq).pow(2).sum()) for V in snaps]
    finals = {}
    for name in ps:
        J = vmap(jacrev(summed(name)), in_dims=(None, None, 0))(ps[name], ps, x).reshape(len(x), -1)
        V = top_eig(J @ J.T / (p + 1) ** 2, 40)[1][:, :5]
        finals[name] = float((torch.linalg.qr(V)[0].T @ Fq).pow(2).sum())
    print(json.dumps({"seconds": time.time() - t_start, "key_frequencies": keys, "overlap_sum_top5": series[-1],
                      "final_test_accuracy": acc[-1], "snapshots": len(series), "per_tensor": finals}))


if __name__ == "__main__":
    main()
