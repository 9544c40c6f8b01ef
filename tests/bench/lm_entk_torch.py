#!/usr/bin/env python3
"""The best plain PyTorch way to do what one Lanczos step of Setting 3's eNTK does (benchmark peer
of entk-eig --lanczos, tests/bench/lm-entk): a functional Gemma 3 forward in float32 (as
transformers computes it), the blocks below L run once over all windows and their output kept;
then, per chunk of windows, functorch's vjp taken once (its closure keeps the chunk's activations
for every later step) and, each step, functorch.jvp for J u, the D x D product with S = U^T U, and
the kept vjp closure for J^T z; the chunks' gradients summed. Prints seconds for the prefix, the
set-up and one step.

  lm_entk_torch.py MODEL_DIR WINDOWS.frames LAYER [--chunk 16] [--threads 2] [--steps 2]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from functorch import jvp, vjp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "peer"))
import entkio  # noqa: E402


def load(path):
    d = json.load(open(os.path.join(path, "config.json")))
    st, _ = entkio.load_safetensors(os.path.join(path, "model.safetensors"))
    T = lambda n: torch.from_numpy(np.ascontiguousarray(st[n], dtype=np.float32))  # noqa: E731
    c = dict(D=d["hidden_size"], L=d["num_hidden_layers"], nh=d["num_attention_heads"], nkv=d["num_key_value_heads"],
             hd=d["head_dim"], eps=d.get("rms_norm_eps", 1e-6), scale=d.get("query_pre_attn_scalar", 256) ** -0.5,
             window=d.get("sliding_window", 512))
    pattern = d.get("sliding_window_pattern", 6)
    types = d.get("layer_types") or ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(c["L"])]
    layers = []
    for l in range(c["L"]):
        p = f"model.layers.{l}."
        sliding = types[l] == "sliding_attention"
        base = d.get("rope_local_base_freq", 1e4) if sliding else d.get("rope_theta", 1e6)
        inv = 1.0 / (base ** (torch.arange(0, c["hd"], 2, dtype=torch.int64).float() / c["hd"]))
        layers.append({k: T(p + n) for k, n in [
            ("attn_norm", "input_layernorm.weight"), ("post_attn_norm", "post_attention_layernorm.weight"),
            ("ffn_norm", "pre_feedforward_layernorm.weight"), ("post_ffn_norm", "post_feedforward_layernorm.weight"),
            ("q_norm", "self_attn.q_norm.weight"), ("k_norm", "self_attn.k_norm.weight"),
            ("q", "self_attn.q_proj.weight"), ("k", "self_attn.k_proj.weight"), ("v", "self_attn.v_proj.weight"),
            ("o", "self_attn.o_proj.weight"), ("gate", "mlp.gate_proj.weight"), ("up", "mlp.up_proj.weight"),
            ("down", "mlp.down_proj.weight")]} | {"window": c["window"] if sliding else 0, "inv": inv})
    c["embed"], c["final_norm"] = T("model.embed_tokens.weight"), T("model.norm.weight")
    return c, layers


def rms(c, x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + c["eps"]) * (1.0 + w)


def rot(x, cos, sin):
    h = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., h:], x[..., :h]), -1) * sin


def block(c, w, x):
    N, T, D = x.shape
    xn = rms(c, x, w["attn_norm"])
    q = rms(c, (xn @ w["q"].T).view(N, T, c["nh"], c["hd"]).transpose(1, 2), w["q_norm"])
    k = rms(c, (xn @ w["k"].T).view(N, T, c["nkv"], c["hd"]).transpose(1, 2), w["k_norm"])
    v = (xn @ w["v"].T).view(N, T, c["nkv"], c["hd"]).transpose(1, 2)
    freqs = torch.arange(T, dtype=torch.float32)[:, None] * w["inv"][None, :]
    emb = torch.cat((freqs, freqs), -1)
    q, k = rot(q, emb.cos(), emb.sin()), rot(k, emb.cos(), emb.sin())
    g = c["nh"] // c["nkv"]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    mask = (j <= i) & ((j > i - w["window"]) if w["window"] else True)
    s = (q @ k.transpose(-1, -2)) * c["scale"]
    s = s.masked_fill(~mask, float("-inf"))
    a = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(N, T, -1)
    h = x + rms(c, a @ w["o"].T, w["post_attn_norm"])
    hn = rms(c, h, w["ffn_norm"])
    m = torch.nn.functional.gelu(hn @ w["gate"].T, approximate="tanh") * (hn @ w["up"].T)
    return h + rms(c, m @ w["down"].T, w["post_ffn_norm"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("windows")
    ap.add_argument("layer", type=int)
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    c, layers = load(a.model)
    t = entkio.tensors(a.windows)
    ids = torch.from_numpy(t["windows"]["array"].astype(np.int64))
    L = a.layer
    with torch.no_grad():
        t0 = time.time()
        x = c["embed"][ids] * torch.tensor(c["D"] ** 0.5, dtype=torch.float32)
        for l in range(L):
            x = block(c, layers[l], x)
        prefix = time.time() - t0
        S = (c["embed"].double().T @ c["embed"].double()).float()  # U^T U, tied head

    def f_of(xc):
        def f(W):
            y = xc
            for l in range(L, c["L"]):
                w = layers[l] if l != L else dict(layers[l], down=W)
                y = block(c, w, y)
            return rms(c, y[:, -1, :], c["final_norm"])
        return f

    W0 = layers[L]["down"]
    chunks = [x[i:i + a.chunk] for i in range(0, x.shape[0], a.chunk)]
    t0 = time.time()
    closures = [vjp(f_of(xc), W0)[1] for xc in chunks]  # each keeps its chunk's activations
    setup = time.time() - t0
    u = torch.randn(W0.shape, generator=torch.Generator().manual_seed(0))
    times = []
    for _ in range(a.steps):
        t0 = time.time()
        g = torch.zeros_like(W0)
        for xc, back in zip(chunks, closures):
            _, ju = jvp(f_of(xc), (W0,), (u,))
            g += back(ju @ S)[0]
        times.append(time.time() - t0)
        u = g / g.norm()
    print(f"torch: prefix {prefix:.3f} s, vjp set-up {setup:.3f} s, step {min(times):.3f} s (best of {a.steps})")


if __name__ == "__main__":
    main()
