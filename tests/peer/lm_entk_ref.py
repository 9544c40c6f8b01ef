#!/usr/bin/env python3
"""PyTorch + functorch peer of Setting 3's eNTK (entk-jacobian for language models, entk-eig
--lanczos): a functional re-implementation of the Gemma 3 and llama2.c forward in float64, the
final hidden state at each window's last position as a function of one weight of one block, and
its derivatives by functorch (jvp, vjp, jacrev).

The f64 model is the config's: rms_norm_eps, query_pre_attn_scalar**-0.5 and sqrt(hidden_size)
as Python floats; RoPE angles t * inv_freq in float32 (as transformers and run.c compute them),
their cos and sin in float64.

  lm_entk_ref.py randvec OUT.frames NAME ROWS COLS SEED [OUT NAME ROWS COLS SEED ...]
      writes each OUT with one N(0,1) tensor frame NAME [ROWS, COLS]
  lm_entk_ref.py check MODEL WINDOWS.frames --tol TOL [cases...]
      prints one "ok NAME ..." or "FAIL NAME ..." line per comparison; cases (repeatable):
        --jvp L P U JVP   entk's J u (frame jvp) for weight P of block L against functorch.jvp
        --vjp L P Z VJP   entk's J^T z (frame vjp) against functorch.vjp
        --gram L P K      entk's K~ (entk-jacobian --form explicit | entk-gram --reduce flat: class-major)
                          against S^1/2 J J^T S^1/2 with J from functorch.jacrev
        --logit L P       K~'s nonzero eigenvalues against those of the logit eNTK over the whole
                          vocabulary, (I x U) J J^T (I x U)^T, formed explicitly
        --eig L P E       entk-eig --lanczos's converged pairs against numpy eigh of the dense K~
                          (values to --eig-tol relative, vectors up to sign), every residual bound honest
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import entkio  # noqa: E402

if __name__ == "__main__" and sys.argv[1:2] == ["randvec"]:  # before torch: it takes a second to import
    g = sys.argv[2:]
    for i in range(0, len(g), 5):
        out, name, r, c, seed = g[i], g[i + 1], int(g[i + 2]), int(g[i + 3]), int(g[i + 4])
        entkio.write_arrays(out, "lm_entk_ref.py", [(name, np.random.default_rng(seed).standard_normal((r, c)))])
    sys.exit(0)

import torch  # noqa: E402
from functorch import jacrev, jvp, vjp  # noqa: E402

torch.set_default_dtype(torch.float64)
PARAM_OF = {"down": "down", "gate": "gate", "up": "up", "o": "o", "q": "q", "k": "k", "v": "v"}


# ----------------------------------------------------------------------------- models, as f64 weights

class Model:
    pass


def f32(x):
    return np.float32(x)


def load_gemma(path):
    d = json.load(open(os.path.join(path, "config.json")))
    if d.get("model_type") == "gemma3":
        d = d["text_config"]
    st, _ = entkio.load_safetensors(os.path.join(path, "model.safetensors"))
    m = Model()
    m.arch = "gemma3"
    m.D, m.F, m.L = d["hidden_size"], d["intermediate_size"], d["num_hidden_layers"]
    m.nh = d["num_attention_heads"]
    m.nkv = d.get("num_key_value_heads", m.nh)
    m.hd = d.get("head_dim", 256)
    m.eps = d.get("rms_norm_eps", 1e-6)
    m.scale = d.get("query_pre_attn_scalar", 256) ** -0.5
    m.softcap = d.get("attn_logit_softcapping")
    m.embed_scale = m.D ** 0.5
    m.plus_one, m.adjacent, m.act = True, False, "gelu_tanh"
    pattern = d.get("sliding_window_pattern", d.get("_sliding_window_pattern", 6))
    types = d.get("layer_types") or ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(m.L)]
    window = d.get("sliding_window", 4096)
    pre = "model."
    T = lambda n: torch.from_numpy(st[n].astype(np.float64))  # noqa: E731
    m.embed = T(pre + "embed_tokens.weight")
    m.final_norm = T(pre + "norm.weight")
    m.head = T("lm_head.weight") if "lm_head.weight" in st and not d.get("tie_word_embeddings", True) else m.embed
    m.layers = []
    for l in range(m.L):
        p = f"{pre}layers.{l}."
        sliding = types[l] == "sliding_attention"
        base = d.get("rope_local_base_freq", 1e4) if sliding else d.get("rope_theta", 1e6)
        fac = 1.0
        rs = d.get("rope_scaling")
        if not sliding and isinstance(rs, dict) and rs.get("rope_type", rs.get("type")) == "linear":
            fac = rs["factor"]
        e = np.arange(0, m.hd, 2).astype(np.float32) / f32(m.hd)
        inv = (f32(1) / np.power(f32(base), e)) / f32(fac)
        w = {
            "attn_norm": T(p + "input_layernorm.weight"), "post_attn_norm": T(p + "post_attention_layernorm.weight"),
            "ffn_norm": T(p + "pre_feedforward_layernorm.weight"),
            "post_ffn_norm": T(p + "post_feedforward_layernorm.weight"),
            "q_norm": T(p + "self_attn.q_norm.weight"), "k_norm": T(p + "self_attn.k_norm.weight"),
            "q": T(p + "self_attn.q_proj.weight"), "k": T(p + "self_attn.k_proj.weight"),
            "v": T(p + "self_attn.v_proj.weight"), "o": T(p + "self_attn.o_proj.weight"),
            "gate": T(p + "mlp.gate_proj.weight"), "up": T(p + "mlp.up_proj.weight"),
            "down": T(p + "mlp.down_proj.weight"),
            "window": window if sliding else 0, "inv_freq": inv.astype(np.float32),
        }
        m.layers.append(w)
    return m


def load_llama2(path):
    raw = open(path, "rb").read()
    dim, hidden, L, nh, nkv, vocab, seq = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    a = np.frombuffer(raw[28:], dtype="<f4")
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        out = torch.from_numpy(a[off:off + n].astype(np.float64).reshape(shape))
        off += n
        return out

    m = Model()
    m.arch = "llama2"
    m.D, m.F, m.L, m.nh, m.nkv = dim, hidden, L, nh, nkv
    m.hd = dim // nh
    m.eps, m.scale, m.softcap, m.embed_scale = 1e-5, 1.0 / math.sqrt(m.hd), None, 1.0
    m.plus_one, m.adjacent, m.act = False, True, "silu"
    kvd = nkv * m.hd
    m.embed = take(vocab, dim)
    att, wq, wk, wv, wo = take(L, dim), take(L, dim, dim), take(L, kvd, dim), take(L, kvd, dim), take(L, dim, dim)
    ffn, w1, w2, w3 = take(L, dim), take(L, hidden, dim), take(L, dim, hidden), take(L, hidden, dim)
    m.final_norm = take(dim)
    off += seq * m.hd  # legacy freq_cis_real, freq_cis_imag
    m.head = m.embed if shared else take(vocab, dim)
    e = np.arange(0, m.hd, 2).astype(np.float32) / f32(m.hd)
    inv = (f32(1) / np.power(f32(10000), e)).astype(np.float32)
    m.layers = [{"attn_norm": att[l], "q": wq[l], "k": wk[l], "v": wv[l], "o": wo[l], "ffn_norm": ffn[l],
                 "gate": w1[l], "down": w2[l], "up": w3[l], "q_norm": None, "k_norm": None, "post_attn_norm": None,
                 "post_ffn_norm": None, "window": 0, "inv_freq": inv} for l in range(L)]
    return m


def load(path):
    return load_gemma(path) if os.path.isdir(path) else load_llama2(path)


# ----------------------------------------------------------------------------- the functional forward

def rmsnorm(m, x, w):
    y = x / torch.sqrt((x * x).mean(-1, keepdim=True) + m.eps)
    return y * ((1.0 + w) if m.plus_one else w)


def rope(m, x, cos, sin):
    if m.adjacent:
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)
    h = x.shape[-1] // 2
    a, b = x[..., :h], x[..., h:]
    return torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1)


def block(m, w, x):
    N, T, D = x.shape
    xn = rmsnorm(m, x, w["attn_norm"])
    q = (xn @ w["q"].T).view(N, T, m.nh, m.hd)
    k = (xn @ w["k"].T).view(N, T, m.nkv, m.hd)
    v = (xn @ w["v"].T).view(N, T, m.nkv, m.hd)
    if w["q_norm"] is not None:
        q, k = rmsnorm(m, q, w["q_norm"]), rmsnorm(m, k, w["k_norm"])
    ang = np.arange(T, dtype=np.float32)[:, None] * w["inv_freq"][None, :]  # float32, as the models do
    cos = torch.from_numpy(np.cos(ang.astype(np.float64)))[None, :, None, :]
    sin = torch.from_numpy(np.sin(ang.astype(np.float64)))[None, :, None, :]
    q, k = rope(m, q, cos, sin), rope(m, k, cos, sin)
    g = m.nh // m.nkv
    k, v = k.repeat_interleave(g, dim=2), v.repeat_interleave(g, dim=2)
    s = torch.einsum("nihd,njhd->nhij", q, k) * m.scale
    if m.softcap:
        s = m.softcap * torch.tanh(s / m.softcap)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = (j <= i) & ((j > i - w["window"]) if w["window"] > 0 else torch.ones_like(j, dtype=torch.bool))
    s = s.masked_fill(~allowed, float("-inf"))
    p = torch.softmax(s, dim=-1)
    att = torch.einsum("nhij,njhd->nihd", p, v).reshape(N, T, m.nh * m.hd)
    o = att @ w["o"].T
    h = x + (rmsnorm(m, o, w["post_attn_norm"]) if w["post_attn_norm"] is not None else o)
    hn = rmsnorm(m, h, w["ffn_norm"])
    gt, up = hn @ w["gate"].T, hn @ w["up"].T
    if m.act == "gelu_tanh":
        a = torch.nn.functional.gelu(gt, approximate="tanh")
    else:
        a = gt * torch.sigmoid(gt)
    d = (a * up) @ w["down"].T
    return h + (rmsnorm(m, d, w["post_ffn_norm"]) if w["post_ffn_norm"] is not None else d)


def make_f(m, ids, layer, param):
    """W -> final hidden states at the last positions [N, D], W = weight `param` of block `layer`."""
    ids = torch.as_tensor(ids, dtype=torch.long)

    def f(W):
        x = m.embed[ids] * m.embed_scale
        for l, w in enumerate(m.layers):
            if l == layer:
                w = dict(w)
                w[PARAM_OF[param]] = W
            x = block(m, w, x)
        return rmsnorm(m, x[:, -1, :], m.final_norm)

    return f


# ----------------------------------------------------------------------------- checks

relerr = entkio.relerr


def report(name, err, tol, extra=""):
    print(f"{'ok' if err <= tol else 'FAIL'} {name}: relative error {err:.3e} (tol {tol:g}){extra}", flush=True)


def windows_of(path):
    t = entkio.tensors(path)
    w = t.get("windows") or t.get("ids")
    a = w["array"]
    return a.reshape(-1, a.shape[-1]).astype(np.int64)


def sqrt_psd(S):
    lam, V = np.linalg.eigh(S)
    return (V * np.sqrt(np.clip(lam, 0, None))) @ V.T


def dense(m, ids, layer, param):
    """J (rows (n, a)), S^1/2 and K~ = S^1/2 J J^T S^1/2 for weight `param` of block `layer`."""
    N = ids.shape[0]
    f = make_f(m, ids, layer, param)
    J = jacrev(f)(m.layers[layer][PARAM_OF[param]].clone()).reshape(N * m.D, -1).numpy()
    U = m.head.numpy()
    Sh = sqrt_psd(U.T @ U)
    Jw = np.einsum("ab,nbp->nap", Sh, J.reshape(N, m.D, -1)).reshape(N * m.D, -1)
    return J, U, Jw @ Jw.T


def check_eig(K, path, tol, slack, name):
    t = entkio.tensors(path)
    vals, conv, bw = t["eigenvalues"]["array"], t["converged"]["array"], t["residuals_w"]["array"]
    vecs = [x["array"] for x in entkio.frames(path) if x.get("kind") == "tensor" and x["name"] == "eigenvector"]
    lamv, V = np.linalg.eigh(K)
    lamv, V = lamv[::-1], V[:, ::-1]
    worst_v, worst_e, worst_b, nconv = 0.0, 0.0, 0.0, 0
    scale = lamv[0]
    for i, th in enumerate(vals):
        w = vecs[i].reshape(-1)  # [N, D] row-major = rows (n, a)
        res = float(np.linalg.norm(K @ w - th * w))
        worst_b = max(worst_b, (res - bw[i]) / scale)  # the true residual within the reported bound
        if not conv[i]:
            continue
        nconv += 1
        worst_e = max(worst_e, abs(th - lamv[i]) / scale)
        gap = min(abs(lamv[i] - lamv[i - 1]) if i > 0 else np.inf, abs(lamv[i] - lamv[i + 1]))
        if gap > 1e-3 * scale:  # a vector is defined (up to sign) where its eigenvalue is separated
            worst_v = max(worst_v, min(np.linalg.norm(w - V[:, i]), np.linalg.norm(w + V[:, i])))
    report(f"{name}: {nconv} of {len(vals)} converged eigenvalues = numpy eigh", worst_e, tol)
    report(f"{name}: converged eigenvectors = numpy eigh up to sign", worst_v, math.sqrt(tol))
    # entk's bound is for its own operator, which differs from this exact K~ by its rounding (slack)
    report(f"{name}: every residual bound holds (unconverged pairs flagged, bounds honest)", max(worst_b, 0.0), slack)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("model")
    ap.add_argument("windows")
    ap.add_argument("--tol", type=float, required=True)
    ap.add_argument("--jvp", nargs=4, action="append", default=[])
    ap.add_argument("--vjp", nargs=4, action="append", default=[])
    ap.add_argument("--gram", nargs=3, action="append", default=[])
    ap.add_argument("--logit", nargs=2, action="append", default=[])
    ap.add_argument("--eig", nargs=3, action="append", default=[])
    ap.add_argument("--eig-tol", type=float, default=1e-6)
    a = ap.parse_args()
    m = load(a.model)
    ids = windows_of(a.windows)
    N = ids.shape[0]
    for L, p, upath, out in a.jvp:
        f = make_f(m, ids, int(L), p)
        u = torch.from_numpy(entkio.tensors(upath)["u"]["array"].astype(np.float64))
        _, ju = jvp(f, (m.layers[int(L)][PARAM_OF[p]].clone(),), (u,))
        report(f"jvp block {L} {p}", relerr(entkio.tensors(out)["jvp"]["array"], ju.numpy()), a.tol)
    for L, p, zpath, out in a.vjp:
        f = make_f(m, ids, int(L), p)
        z = torch.from_numpy(entkio.tensors(zpath)["z"]["array"].astype(np.float64))
        _, back = vjp(f, m.layers[int(L)][PARAM_OF[p]].clone())
        (g,) = back(z)
        report(f"vjp block {L} {p}", relerr(entkio.tensors(out)["vjp"]["array"], g.numpy()), a.tol)
    for L, p, kpath in a.gram:
        _, _, K = dense(m, ids, int(L), p)
        Ke = entkio.tensors(kpath)["K"]["array"].astype(np.float64)
        perm = np.arange(N * m.D).reshape(N, m.D).T.reshape(-1)  # entk-gram's flat K is class-major (row c*N + n)
        Kp = K[np.ix_(perm, perm)]
        report(f"dense K~ block {L} {p} (jacrev)", float(np.linalg.norm(Ke - Kp) / np.linalg.norm(Kp)), a.tol)
    for L, p in a.logit:
        J, U, K = dense(m, ids, int(L), p)
        lam = np.linalg.eigvalsh(K)[::-1]
        JU = np.einsum("vb,nbp->nvp", U, J.reshape(N, m.D, -1)).reshape(N * U.shape[0], -1)
        ev = np.linalg.eigvalsh(JU @ JU.T)[::-1]  # the logit eNTK itself, (N V) x (N V)
        r = min(len(ev), len(lam))
        keep = lam[:r] > lam[0] * 1e-9
        report(f"K~ block {L} {p} = logit eNTK over the {U.shape[0]}-token vocabulary: nonzero eigenvalues",
               float(np.abs(lam[:r][keep] - ev[:r][keep]).max() / lam[0]), a.tol, f" ({int(keep.sum())} eigenvalues)")
    for L, p, epath in a.eig:
        _, _, K = dense(m, ids, int(L), p)
        check_eig(K, epath, a.eig_tol, a.tol, f"Lanczos block {L} {p} ({os.path.basename(epath)})")


if __name__ == "__main__":
    main()
