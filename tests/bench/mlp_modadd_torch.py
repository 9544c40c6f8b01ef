"""The whole Setting-1 computation in plain PyTorch, two ways, for tests/bench/mlp-modadd.

Same data split and initial weights as the entk run (read from its data.frames and epoch-0
checkpoint), AdamW full batch, and every EVERY epochs the class-traced eNTK, torch.linalg.eigh and
the overlaps of eigenvectors 58..113 with the centred, orthonormalised sum/diff families. The eNTK:
  factored  the best PyTorch way: per layer, K_l = (X_l X_l^T) . (G_l G_l^T) (Hadamard; README
            "Factored Jacobians"), X_l the layer's input and G_l = d f / d (W_l X_l) the Jacobian of
            the outputs with respect to the layer's output, by functorch vmap(jacrev); the N*C x |W|
            Jacobian is never formed (include/modadd/model.h, "Factored Jacobian")
  einsum    the full Jacobian by functorch vmap(jacrev) w.r.t. the weights, then one einsum per
            parameter (the route of the functorch tutorial), about 45 s per snapshot here: timed on
            EINSUM_SNAPSHOTS snapshots only (first, middle, last), its end-to-end time estimated as
            the factored run's time with those snapshots' eNTK time replaced by the einsum's mean
usage: mlp_modadd_torch.py DATA INIT EPOCHS EVERY [EINSUM_SNAPSHOTS [GRAM_OUT.npy]]
       -> prints JSON with seconds and results; GRAM_OUT gets the final snapshot's factored K (f32)
       mlp_modadd_torch.py --check MODEL DATA K_FRAMES
       -> the factored route in f64 against an entk Gram (entk-gram --reduce trace of all
          parameters): relative Frobenius error <= 2 u sqrt(m) (tests/peer/ntk_ref.py's rule)"""
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


def model(p, hidden):
    def f(ps, xx):
        h = xx @ ps["W1"].T / np.sqrt(2 * p)
        return (h * h) @ ps["W2"].T / hidden
    return f


def gram_einsum(f, ps, x, C):
    jac = vmap(jacrev(f), in_dims=(None, 0))(ps, x)  # name -> [N, C, *shape]
    return sum(torch.einsum("nc...,mc...->nm", J, J) for J in jac.values()) / C


def gram_factored(ps, x, p, hidden):
    """The class-traced eNTK layer by layer: (1/C) sum_l (X_l X_l^T) . (G_l G_l^T)."""
    W1, W2 = ps["W1"], ps["W2"]
    C = W2.shape[0]
    X1 = x / np.sqrt(2 * p)                     # layer 1: y1 = W1 X1
    Y1 = X1 @ W1.T
    X2 = Y1 * Y1                                # layer 2: y2 = W2 X2, f = y2 / hidden
    Y2 = X2 @ W2.T
    G1 = vmap(jacrev(lambda y1: (y1 * y1) @ W2.T / hidden))(Y1)   # [N, C, hidden]
    G2 = vmap(jacrev(lambda y2: y2 / hidden))(Y2)                 # [N, C, C]
    K = 0
    for X, G in ((X1, G1), (X2, G2)):
        Gf = G.reshape(G.shape[0], -1)
        K = K + (X @ X.T) * (Gf @ Gf.T)
    return K / C


def check(model_path, data, kfile):
    torch.set_default_dtype(torch.float64)
    w, meta = load_safetensors(model_path)
    p, hidden = int(meta["p"]), int(meta["hidden"])
    ps = {k: torch.tensor(v, dtype=torch.float64) for k, v in w.items()}
    x = torch.tensor(np.array(tensors(data)["x"]["array"]), dtype=torch.float64)
    fr = tensors(kfile)["K"]
    got = fr["array"].astype(np.float64)
    assert fr["meta"]["reduce"] == "trace" and set(fr["meta"]["params"].split(",")) == {"W1", "W2"}
    K = gram_factored(ps, x, p, hidden).numpy()
    u = np.finfo(fr["array"].dtype).eps
    m = sum(v.size for v in w.values()) * p
    err = np.linalg.norm(got - K) / np.linalg.norm(K)
    print(f"factored PyTorch route vs entk: rel err {err:.2e} = {err / u / np.sqrt(m):.2g} u sqrt(m = {m}) (tol 2)")
    sys.exit(0 if err <= 2 * u * np.sqrt(m) else 1)


def main():
    if sys.argv[1] == "--check":
        return check(*sys.argv[2:5])
    data, init, epochs, every = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    n_einsum = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    gram_out = sys.argv[6] if len(sys.argv) > 6 else None
    t_start = time.time()
    w0, meta = load_safetensors(init)
    p, hidden = int(meta["p"]), int(meta["hidden"])
    d = tensors(data)
    x = torch.tensor(np.array(d["x"]["array"]), dtype=torch.float32)
    y = torch.tensor(np.array(d["labels"]["array"])).long()
    train = torch.tensor(np.array(d["train"]["array"]).astype(bool))
    params = {k: torch.tensor(v, requires_grad=True) for k, v in w0.items()}
    f = model(p, hidden)
    fams = {k: family(p, k) for k in ("sum", "diff")}
    opt = torch.optim.AdamW(list(params.values()), lr=0.05, weight_decay=0.01)
    yt = F.one_hot(y[train], p).float()
    snaps = list(range(0, epochs + 1, every))
    timed = {snaps[0], snaps[len(snaps) // 2], snaps[-1]} if n_einsum >= 3 else set(snaps[len(snaps) - n_einsum:])
    series, t_gram, t_einsum, einsum_err = [], [], [], 0.0
    dd = 2 * (p // 2)
    lo, hi = 2 + 2 * dd, 1 + 4 * dd  # cliff 2: eigenvectors 58..113 (1-based) for p = 29
    for ep in range(epochs + 1):
        if ep > 0:
            opt.zero_grad()
            loss = F.mse_loss(f(params, x[train]), yt)
            loss.backward()
            opt.step()
        if ep % every == 0:
            ps = {k: v.detach() for k, v in params.items()}
            t0 = time.time()
            K = gram_factored(ps, x, p, hidden)
            t_gram.append(time.time() - t0)
            if ep in timed:  # the einsum route on the same weights, timed, and its Gram compared
                t0 = time.time()
                KE = gram_einsum(f, ps, x, p)
                t_einsum.append(time.time() - t0)
                einsum_err = max(einsum_err, float(torch.linalg.norm(KE - K) / torch.linalg.norm(KE)))
                del KE
            K64 = K.double()
            K64 += 1e-8 * K64.diagonal().mean() * torch.eye(K64.shape[0], dtype=torch.float64)
            evals, evecs = torch.linalg.eigh(K64)
            evals, evecs = evals.flip(0)[:200], evecs.flip(1)[:, :200]
            Q = torch.linalg.qr(evecs[:, lo - 1 : hi])[0]
            ov = {k: float((Q.T @ Fm).pow(2).sum()) for k, Fm in fams.items()}
            series.append({"epoch": ep, **ov})
            print(f"torch: epoch {ep}: sum {ov['sum']:.3f} diff {ov['diff']:.3f} gram {t_gram[-1]:.2f}s ({time.time() - t_start:.0f}s)",
                  file=sys.stderr)
    if gram_out:
        np.save(gram_out, K.numpy())
    seconds = time.time() - t_start - sum(t_einsum)   # the factored run alone
    ev = evals.numpy()
    print(json.dumps({"seconds": seconds, "snapshots": len(series),
                      "gram_seconds_per_snapshot": sum(t_gram) / len(t_gram),
                      "einsum_gram_seconds_per_snapshot": sum(t_einsum) / len(t_einsum) if t_einsum else None,
                      "einsum_snapshots_timed": len(t_einsum),
                      "einsum_seconds_estimated": seconds + len(series) * (sum(t_einsum) / len(t_einsum) - sum(t_gram) / len(t_gram))
                      if t_einsum else None,
                      "einsum_vs_factored_gram_rel_err": einsum_err,
                      "overlap_sum": series[-1]["sum"], "overlap_diff": series[-1]["diff"],
                      "cliff_ratios": [float(ev[56] / ev[57]), float(ev[112] / ev[113])]}))


if __name__ == "__main__":
    main()
