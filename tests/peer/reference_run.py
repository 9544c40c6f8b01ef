"""Peer for entk's reference random streams (--rng torch / python): the reference notebooks' own
setup, written as they write it (github.com/jylin04/mi-ntk: modular_arithmetic_v4.ipynb with ma.py,
modular_arithmetic_transformer_v4.ipynb), run for EPOCHS epochs, compared with entk's checkpoints.

usage: reference_run.py mlp|transformer DATA SEED EPOCHS CKPT0 CKPTE [D_MODEL HEADS D_MLP | HIDDEN]
  mlp:          torch.manual_seed(SEED); perm = torch.randperm(p*p); train = perm[:int(0.7 N)];
                DataLoader(full batch, shuffle=True); Linear layers re-initialised by normal_;
                AdamW(lr 0.05, default wd 0.01); MSE
  transformer:  random.seed(0); random.shuffle(pairs) (the notebook's split); torch.manual_seed(SEED);
                DataLoader(batch 64, shuffle=True); parameters from torch.randn as the notebook's
                modules; AdamW(lr 3e-4, wd 1.0); cross-entropy over the first p logits
Prints "ok ..." / "FAIL ..." lines: the split and its order (identical), the initial weights
against CKPT0 and the weights after EPOCHS epochs against CKPTE, float32 both sides, relative
Frobenius, in units of u = eps_f32:
  initial  8 u: normal draws agree to 3 units in the last place (torch vectorises log/sin/cos),
           about 1 u of the tensor's norm, and the kaiming rescale rounds once more;
  trained  16 u per optimizer step (train_ref.py's rule: each step rounds at a few u and the
           errors add)."""
import math
import os
import random
import sys

import numpy as np
import torch as t
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, os.path.dirname(__file__))
from entkio import load_safetensors, tensors  # noqa: E402

U = float(np.finfo(np.float32).eps)


class MLP(nn.Module):
    """ma.ModularArithmeticMLP"""

    def __init__(self, p, n_hidden):
        super().__init__()
        self.l1 = nn.Linear(2 * p, n_hidden, bias=False)
        self.l2 = nn.Linear(n_hidden, p, bias=False)
        for m in (self.l1, self.l2):
            nn.init.normal_(m.weight, mean=0.0, std=1.0)
        self.p, self.h = p, n_hidden

    def forward(self, x):
        return self.l2((self.l1(x) / math.sqrt(2 * self.p)) ** 2) / self.h


class Transformer(nn.Module):
    """The notebook's MATransformer (Embed, PosEmbed, Attention, MLP, Unembed), in its shapes."""

    def __init__(self, d_vocab, d_model, n_heads, d_mlp):
        super().__init__()
        dh = d_model // n_heads
        self.W_E = nn.Parameter(t.randn(d_vocab, d_model) / np.sqrt(d_model))
        self.W_pos = nn.Parameter(t.randn(3, d_model) / np.sqrt(d_model))
        self.W_Q = nn.Parameter(t.randn(n_heads, dh, d_model) / np.sqrt(d_model))
        self.W_K = nn.Parameter(t.randn(n_heads, dh, d_model) / np.sqrt(d_model))
        self.W_V = nn.Parameter(t.randn(n_heads, dh, d_model) / np.sqrt(d_model))
        self.W_O = nn.Parameter(t.randn(d_model, d_model) / np.sqrt(d_model))
        self.W_in = nn.Parameter(t.randn(d_model, d_mlp) / np.sqrt(d_mlp))
        self.W_out = nn.Parameter(t.randn(d_mlp, d_model) / np.sqrt(d_model))
        self.W_U = nn.Parameter(t.randn(d_model, d_vocab) / np.sqrt(d_vocab))
        self.dh = dh

    def forward(self, x):
        h = self.W_E[x] + self.W_pos.unsqueeze(0)
        q = t.einsum("nhm,bsm->bsnh", self.W_Q, h)
        k = t.einsum("nhm,bsm->bsnh", self.W_K, h)
        v = t.einsum("nhm,bsm->bsnh", self.W_V, h)
        a = t.einsum("bqnh,bknh->bnqk", q, k) / np.sqrt(self.dh)
        a = a.masked_fill(t.triu(t.ones(3, 3), diagonal=1).bool(), float("-inf")).softmax(-1)
        z = t.einsum("bnqk,bknh->bqnh", a, v).flatten(2)
        h = h + t.einsum("mn,bsn->bsm", self.W_O, z)
        h = h + F.relu(h @ self.W_in) @ self.W_out
        return (h @ self.W_U)[:, 2, :]


def entk_layout(name, w):
    """The notebook's tensor in entk's layout (transformer.h)."""
    w = w.detach().numpy().astype(np.float64)
    if name in ("W_Q", "W_K", "W_V"):
        return w.transpose(0, 2, 1)
    if name == "W_O":
        return w.T  # [H*E, D]; entk stores it as [H, E, D]
    return w


def compare(label, got, want, tol):
    bad = 0
    for k in want:
        err = np.linalg.norm(got[k].astype(np.float64).reshape(want[k].shape) - want[k]) / np.linalg.norm(want[k])
        bad += err > tol
        print(f"{'ok' if err <= tol else 'FAIL'} {label} {k}: rel err {err:.2e} = {err / U:.2g} u (tol {tol / U:.3g} u)")
    return bad


def main():
    kind, data, seed, epochs, ck0, cke = sys.argv[1:7]
    seed, epochs = int(seed), int(epochs)
    cfg = [int(a) for a in sys.argv[7:]]
    d = tensors(data)
    p = int(d["pairs"]["meta"]["p"])
    order = np.array(d["train_order"]["array"])
    X = np.array(d["x"]["array"])
    Y = np.array(d["labels"]["array"]).astype(np.int64)
    t.manual_seed(seed)
    if kind == "mlp":
        perm = t.randperm(p * p).numpy()
        n_train = int(p * p * 0.7)
        idx = perm[:n_train]
        ok = np.array_equal(idx, order)
        x_train = t.tensor(X[idx], dtype=t.float32)
        y_train = F.one_hot(t.tensor(Y[idx]), p).float()
        loader = DataLoader(TensorDataset(x_train, y_train), batch_size=len(x_train), shuffle=True)
        model = MLP(p, cfg[0] if cfg else 512)
        opt = t.optim.AdamW(model.parameters(), lr=0.05)
        names = {"W1": model.l1.weight, "W2": model.l2.weight}
        loss_fn = F.mse_loss
    else:
        pairs = [(i, j, p) for i in range(p) for j in range(p)]
        random.seed(0)
        random.shuffle(pairs)
        n_train = int(0.5 * len(pairs))
        idx = np.array([i * p + j for i, j, _ in pairs[:n_train]])
        ok = np.array_equal(idx, order)
        tr = np.array(pairs[:n_train])
        loader = DataLoader(TensorDataset(t.tensor(tr, dtype=t.long), t.tensor((tr[:, 0] + tr[:, 1]) % p, dtype=t.long)),
                            batch_size=64, shuffle=True)
        model = Transformer(p + 1, *(cfg or [64, 4, 256]))
        opt = t.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=1.0)
        names = dict(model.named_parameters())

        def loss_fn(out, y):
            return F.cross_entropy(out[:, :p], y)

    print(f"{'ok' if ok else 'FAIL'} split and its order: {'identical' if ok else 'differ'} ({n_train} training pairs)")
    bad = not ok
    w0, _ = load_safetensors(ck0)
    bad += compare("initial", w0, {k: entk_layout(k, v) for k, v in names.items()}, 8 * U)
    steps = 0
    for _ in range(epochs):
        for x, y in loader:
            steps += 1
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    we, _ = load_safetensors(cke)
    bad += compare(f"after {epochs} epochs", we, {k: entk_layout(k, v) for k, v in names.items()}, 16 * U * steps)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
