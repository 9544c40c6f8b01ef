#!/usr/bin/env python3
"""PyTorch reference for llama2.c checkpoints (e.g. stories260K): the model of llama2.c's model.py
(Transformer: RMSNorm, RoPE via complex pairs, grouped-query attention, SiLU-gated FFN, tied
classifier) loaded from run.c's checkpoint format, and run.c's tokenizer (BPE by scores over
tok512.bin with a dummy-prefix space and byte fallback). The peer of entk-forward for llama2.

  llama2_ref.py encode TOK.bin TEXT             ids with BOS, as run.c's encode(text, bos=1)
  llama2_ref.py decode TOK.bin IDS              text, as run.c prints it (stops at BOS)
  llama2_ref.py generate CKPT.bin IDS N         greedy continuation (N ids), as run.c at temperature 0
  llama2_ref.py compare CKPT.bin IDS OUT.frames [--c C]
      compares logits / hidden / resid / mlp / generated frames written by entk-forward
      Tolerance: C u sqrt(d) L (default C = 4), u = eps_f32 (entk computes in f32), d the model
      width and L its number of layers: every layer's matrix products round over an inner length
      of about d (a random walk: u sqrt(d) relative), and the layers' errors add. Measured:
      at most 1.5e-6 (13 u) on the Gemma 3 peers (gemma3_ref.py); 7.6e-7 on stories260K (bound 1.9e-5).
"""
import argparse
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import entkio  # noqa: E402


# ----------------------------------------------------------------------------- model.py

class ModelArgs:
    def __init__(self, dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, max_seq_len):
        self.dim, self.hidden_dim, self.n_layers = dim, hidden_dim, n_layers
        self.n_heads, self.n_kv_heads, self.vocab_size, self.max_seq_len = n_heads, n_kv_heads, vocab_size, max_seq_len
        self.norm_eps = 1e-5


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        return self._norm(x.float()).type_as(x) * self.weight


def precompute_freqs_cis(dim, end, theta=10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, device=freqs.device)
    freqs = torch.outer(t, freqs).float()
    return torch.cos(freqs), torch.sin(freqs)


def reshape_for_broadcast(freqs_cis, x):
    ndim = x.ndim
    shape = [d if i == 1 or i == ndim - 1 else 1 for i, d in enumerate(x.shape)]
    return freqs_cis.view(shape)


def apply_rotary_emb(xq, xk, freqs_cos, freqs_sin):
    xq_r, xq_i = xq.float().reshape(xq.shape[:-1] + (-1, 2)).unbind(-1)
    xk_r, xk_i = xk.float().reshape(xk.shape[:-1] + (-1, 2)).unbind(-1)
    freqs_cos = reshape_for_broadcast(freqs_cos, xq_r)
    freqs_sin = reshape_for_broadcast(freqs_sin, xq_r)
    xq_out_r = xq_r * freqs_cos - xq_i * freqs_sin
    xq_out_i = xq_r * freqs_sin + xq_i * freqs_cos
    xk_out_r = xk_r * freqs_cos - xk_i * freqs_sin
    xk_out_i = xk_r * freqs_sin + xk_i * freqs_cos
    xq_out = torch.stack([xq_out_r, xq_out_i], dim=-1).flatten(3)
    xk_out = torch.stack([xk_out_r, xk_out_i], dim=-1).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


def repeat_kv(x, n_rep):
    bs, slen, n_kv_heads, head_dim = x.shape
    if n_rep == 1:
        return x
    return x[:, :, :, None, :].expand(bs, slen, n_kv_heads, n_rep, head_dim).reshape(bs, slen, n_kv_heads * n_rep, head_dim)


class Attention(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.n_kv_heads = args.n_kv_heads
        self.n_local_heads = args.n_heads
        self.n_rep = args.n_heads // args.n_kv_heads
        self.head_dim = args.dim // args.n_heads
        self.wq = nn.Linear(args.dim, args.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * self.head_dim, args.dim, bias=False)

    def forward(self, x, freqs_cos, freqs_sin):
        bsz, seqlen, _ = x.shape
        xq, xk, xv = self.wq(x), self.wk(x), self.wv(x)
        xq = xq.view(bsz, seqlen, self.n_local_heads, self.head_dim)
        xk = xk.view(bsz, seqlen, self.n_kv_heads, self.head_dim)
        xv = xv.view(bsz, seqlen, self.n_kv_heads, self.head_dim)
        xq, xk = apply_rotary_emb(xq, xk, freqs_cos, freqs_sin)
        xk = repeat_kv(xk, self.n_rep)
        xv = repeat_kv(xv, self.n_rep)
        xq, xk, xv = xq.transpose(1, 2), xk.transpose(1, 2), xv.transpose(1, 2)
        # the manual path of model.py (no flash attention)
        scores = torch.matmul(xq, xk.transpose(2, 3)) / math.sqrt(self.head_dim)
        mask = torch.triu(torch.full((1, 1, seqlen, seqlen), float("-inf")), diagonal=1)
        scores = scores + mask
        scores = F.softmax(scores.float(), dim=-1).type_as(xq)
        output = torch.matmul(scores, xv)
        output = output.transpose(1, 2).contiguous().view(bsz, seqlen, -1)
        return self.wo(output)


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)
        self.captured = None

    def forward(self, x):
        h = F.silu(self.w1(x)) * self.w3(x)
        self.captured = h
        return self.w2(h)


class TransformerBlock(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.attention = Attention(args)
        self.feed_forward = FeedForward(args.dim, args.hidden_dim)
        self.attention_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, eps=args.norm_eps)

    def forward(self, x, freqs_cos, freqs_sin):
        h = x + self.attention.forward(self.attention_norm(x), freqs_cos, freqs_sin)
        return h + self.feed_forward.forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self, params):
        super().__init__()
        self.params = params
        self.tok_embeddings = nn.Embedding(params.vocab_size, params.dim)
        self.layers = nn.ModuleList([TransformerBlock(params) for _ in range(params.n_layers)])
        self.norm = RMSNorm(params.dim, eps=params.norm_eps)
        self.output = nn.Linear(params.dim, params.vocab_size, bias=False)
        self.tok_embeddings.weight = self.output.weight
        cos, sin = precompute_freqs_cis(params.dim // params.n_heads, params.max_seq_len)
        self.register_buffer("freqs_cos", cos, persistent=False)
        self.register_buffer("freqs_sin", sin, persistent=False)

    @torch.no_grad()
    def forward(self, tokens):
        """(hidden after final norm [B,T,D], residual after each block, mlp hidden per block, logits [B,T,V])"""
        _bsz, seqlen = tokens.shape
        h = self.tok_embeddings(tokens)
        cos, sin = self.freqs_cos[:seqlen], self.freqs_sin[:seqlen]
        resid, mlp = [], []
        for layer in self.layers:
            h = layer(h, cos, sin)
            resid.append(h)
            mlp.append(layer.feed_forward.captured)
        h = self.norm(h)
        return h, resid, mlp, self.output(h)


def load_checkpoint(path):
    """run.c's format (legacy version 0): header of 7 int32, then f32 weights."""
    with open(path, "rb") as f:
        data = f.read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq = struct.unpack("<7i", data[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    w = np.frombuffer(data, dtype="<f4", offset=28)
    args = ModelArgs(dim, hidden, n_layers, n_heads, n_kv, vocab, seq)
    model = Transformer(args)
    hs = dim // n_heads
    kvd = n_kv * hs
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        t = torch.from_numpy(w[off:off + n].copy()).view(*shape)
        off += n
        return t

    with torch.no_grad():
        model.tok_embeddings.weight.copy_(take(vocab, dim))
        for l in model.layers: l.attention_norm.weight.copy_(take(dim))
        for l in model.layers: l.attention.wq.weight.copy_(take(dim, dim))
        for l in model.layers: l.attention.wk.weight.copy_(take(kvd, dim))
        for l in model.layers: l.attention.wv.weight.copy_(take(kvd, dim))
        for l in model.layers: l.attention.wo.weight.copy_(take(dim, dim))
        for l in model.layers: l.ffn_norm.weight.copy_(take(dim))
        for l in model.layers: l.feed_forward.w1.weight.copy_(take(hidden, dim))
        for l in model.layers: l.feed_forward.w2.weight.copy_(take(dim, hidden))
        for l in model.layers: l.feed_forward.w3.weight.copy_(take(hidden, dim))
        model.norm.weight.copy_(take(dim))
        off += seq * hs  # legacy freq_cis_real / freq_cis_imag
        if not shared:
            model.output = nn.Linear(dim, vocab, bias=False)
            model.output.weight.copy_(take(vocab, dim))
    assert off == w.size, (off, w.size)
    model.eval()
    return model


def greedy(model, ids, n):
    """Appends n argmax tokens to every window (a list of lists of equal length)."""
    seq = torch.tensor(ids, dtype=torch.long)
    out = []
    for _ in range(n):
        logits = model(seq)[3][:, -1, :]
        nxt = torch.argmax(logits, dim=-1)
        out.append(nxt)
        seq = torch.cat([seq, nxt[:, None]], dim=1)
    return torch.stack(out, dim=1).tolist()


# ----------------------------------------------------------------------------- tokenizer (run.c)

def load_vocab(path):
    return entkio.tokenizer_bin(path)


def encode(pieces, scores, text):
    lookup = {}
    for i, p in enumerate(pieces):
        lookup.setdefault(p, i)
    tokens = [1]  # BOS
    raw = text.encode("utf-8")
    if raw:
        tokens.append(lookup[b" "])
    i = 0
    while i < len(raw):  # one UTF-8 code point at a time, bytes + 3 if it has no token
        j = i + 1
        while j < len(raw) and (raw[j] & 0xC0) == 0x80 and j - i < 4:
            j += 1
        cp = raw[i:j]
        if cp in lookup:
            tokens.append(lookup[cp])
        else:
            tokens.extend(b + 3 for b in cp)
        i = j
    while True:
        best, best_id, best_idx = -1e10, -1, -1
        for k in range(len(tokens) - 1):
            merged = pieces[tokens[k]] + pieces[tokens[k + 1]]
            tid = lookup.get(merged, -1)
            if tid != -1 and scores[tid] > best:
                best, best_id, best_idx = scores[tid], tid, k
        if best_idx == -1:
            break
        tokens[best_idx:best_idx + 2] = [best_id]
    return tokens


def decode(pieces, ids):
    out = b""
    prev = -1
    for t, tok in enumerate(ids):
        if tok == 1 and t > 0:
            break
        if tok != 1:
            p = pieces[tok]
            if prev == 1 and p.startswith(b" "):
                p = p[1:]
            if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
                p = bytes([int(p[3:5], 16)])
            out += p
        prev = tok
    return out.decode("utf-8", errors="replace")


# ----------------------------------------------------------------------------- frames

read_frames = entkio.items


parse_ids = entkio.parse_ids
relerr = entkio.relerr


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode"); e.add_argument("vocab"); e.add_argument("text")
    d = sub.add_parser("decode"); d.add_argument("vocab"); d.add_argument("ids")
    g = sub.add_parser("generate"); g.add_argument("ckpt"); g.add_argument("ids"); g.add_argument("n", type=int)
    c = sub.add_parser("compare"); c.add_argument("ckpt"); c.add_argument("ids"); c.add_argument("frames")
    c.add_argument("--c", type=float, default=4.0)
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.cmd == "encode":
        print(",".join(map(str, encode(*load_vocab(a.vocab), a.text))))
    elif a.cmd == "decode":
        print(decode(load_vocab(a.vocab)[0], parse_ids(a.ids)[0]))
    elif a.cmd == "generate":
        print(";".join(",".join(map(str, row)) for row in greedy(load_checkpoint(a.ckpt), parse_ids(a.ids), a.n)))
    else:
        model = load_checkpoint(a.ckpt)
        windows = parse_ids(a.ids)
        worst, checked, bad = 0.0, 0, 0
        for kind, name, meta, arr in read_frames(a.frames):
            if name not in ("logits", "hidden", "resid", "mlp", "generated"):
                continue
            w0 = int(meta["window0"])
            n = arr.shape[0]
            ids = windows[w0:w0 + n]
            if name == "generated":
                ref = greedy(model, ids, arr.shape[1])
                same = arr.tolist() == ref
                print(f"generated windows {w0}..{w0 + n - 1}: {arr.shape[1]} tokens, "
                      f"{'identical' if same else 'DIFFERENT'} to torch greedy")
                if not same:
                    print(f"  entk  {arr.tolist()}\n  torch {ref}")
                    bad += 1
                checked += 1
                continue
            pos = [int(x) for x in meta["positions"]]
            hidden, resid, mlp, logits = model(torch.tensor(ids, dtype=torch.long))
            ref = {"logits": lambda: logits, "hidden": lambda: hidden,
                   "resid": lambda: resid[int(meta["layer"])], "mlp": lambda: mlp[int(meta["layer"])]}[name]()
            ref = ref[:, pos, :].numpy()
            err = relerr(arr, ref) if ref.shape == arr.shape else float("inf")
            what = name + (f"[layer {meta['layer']}]" if "layer" in meta else "")
            print(f"{what} windows {w0}..{w0 + n - 1}: rel err {err:.2e}")
            worst = max(worst, err)
            checked += 1
        if checked == 0:
            print("FAIL nothing to compare")
            sys.exit(1)
        tol = a.c * np.finfo(np.float32).eps * math.sqrt(model.params.dim) * model.params.n_layers
        print(f"max relative error {worst:.3e} over {checked} frames (tol {tol:.2g} = {a.c:g} u sqrt(d) L); {bad} generations differ")
        sys.exit(0 if worst <= tol and bad == 0 else 1)


if __name__ == "__main__":
    main()
