#!/usr/bin/env python3
"""PyTorch reference for Gemma 3 text models: a plain re-implementation of Hugging Face
transformers' modeling_gemma3.py (Gemma3ForCausalLM, eager attention) and of how
Gemma3TextConfig reads config.json, without the transformers package. The peer of
entk-forward for Gemma 3.

  gemma3_ref.py randids --vocab V --windows N --len T [--seed S]     token ids as 'a,b;c,d'
  gemma3_ref.py compare MODEL_DIR IDS OUT.frames [--c C] [--bf16-embed-scale]
      runs the model on IDS ('a,b;c,d' or @file) and compares every logits / hidden / resid /
      mlp frame of OUT.frames (written by entk-forward) with it; exit 1 if a relative error
      (max |entk - torch| / max |torch|) exceeds the tolerance.
      Tolerance: C u sqrt(d) L (default C = 4), u = eps_f32 (entk computes in f32), d the model
      width and L its number of layers: every layer's matrix products round over an inner length
      of about d (a random walk: u sqrt(d) relative), and the layers' errors add. Measured:
      at most 1.5e-6 (13 u) on the tiny and the 270M-shaped models, where the bound is 1.5e-5
      and 7.2e-5.
  gemma3_ref.py bench MODEL_DIR --windows N --len T --batches K [--threads n]
      tokens/s of the forward (logits at the last position) on random windows
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import entkio  # noqa: E402


# ----------------------------------------------------------------------------- files

def load_safetensors(path):
    """name -> float32 torch tensor (bf16 / f16 / f32 / f64 converted exactly)."""
    arrays, _ = entkio.load_safetensors(path)
    return {name: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for name, a in arrays.items()}


class Config:
    """The fields of Gemma3TextConfig that the forward uses, with its defaults."""

    def __init__(self, d):
        if d.get("model_type") == "gemma3":
            d = d["text_config"]
        assert d.get("model_type", "gemma3_text") == "gemma3_text"
        self.vocab_size = d["vocab_size"]
        self.hidden_size = d["hidden_size"]
        self.intermediate_size = d["intermediate_size"]
        self.num_hidden_layers = d["num_hidden_layers"]
        self.num_attention_heads = d["num_attention_heads"]
        self.num_key_value_heads = d.get("num_key_value_heads", self.num_attention_heads)
        self.head_dim = d.get("head_dim", 256)
        self.rms_norm_eps = d.get("rms_norm_eps", 1e-6)
        self.rope_theta = d.get("rope_theta", 1e6)
        self.rope_local_base_freq = d.get("rope_local_base_freq", 1e4)
        self.rope_scaling = d.get("rope_scaling")
        self.query_pre_attn_scalar = d.get("query_pre_attn_scalar", 256)
        self.sliding_window = d.get("sliding_window", 4096)
        self.attn_logit_softcapping = d.get("attn_logit_softcapping")
        self.final_logit_softcapping = d.get("final_logit_softcapping")
        self.tie_word_embeddings = d.get("tie_word_embeddings", True)
        pattern = d.get("sliding_window_pattern", d.get("_sliding_window_pattern", 6))
        self.layer_types = d.get("layer_types") or [
            "sliding_attention" if bool((i + 1) % pattern) else "full_attention"
            for i in range(self.num_hidden_layers)
        ]


# ----------------------------------------------------------------------------- modules (as modeling_gemma3.py)

class Gemma3RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        output = self._norm(x.float())
        output = output * (1.0 + self.weight.float())
        return output.type_as(x)


def rope_inv_freq(base, dim, factor=1.0):
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    return inv_freq / factor


def rope_cos_sin(inv_freq, position_ids, dtype):
    inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
    position_ids_expanded = position_ids[:, None, :].float()
    freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    cos = cos.unsqueeze(1)
    sin = sin.unsqueeze(1)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def repeat_kv(hidden_states, n_rep):
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


class Gemma3Attention(nn.Module):
    def __init__(self, cfg, layer_idx):
        super().__init__()
        self.layer_type = cfg.layer_types[layer_idx]
        self.head_dim = cfg.head_dim
        self.num_key_value_groups = cfg.num_attention_heads // cfg.num_key_value_heads
        self.scaling = cfg.query_pre_attn_scalar ** -0.5
        self.softcap = cfg.attn_logit_softcapping
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.num_attention_heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.num_key_value_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.num_key_value_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.num_attention_heads * cfg.head_dim, cfg.hidden_size, bias=False)
        self.q_norm = Gemma3RMSNorm(cfg.head_dim, cfg.rms_norm_eps)
        self.k_norm = Gemma3RMSNorm(cfg.head_dim, cfg.rms_norm_eps)

    def forward(self, hidden_states, position_embeddings, attention_mask):
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        query_states = self.q_norm(query_states)
        key_states = self.k_norm(key_states)
        cos, sin = position_embeddings
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)
        # eager_attention_forward
        key_states = repeat_kv(key_states, self.num_key_value_groups)
        value_states = repeat_kv(value_states, self.num_key_value_groups)
        attn_weights = torch.matmul(query_states, key_states.transpose(2, 3)) * self.scaling
        if self.softcap is not None:
            attn_weights = attn_weights / self.softcap
            attn_weights = torch.tanh(attn_weights)
            attn_weights = attn_weights * self.softcap
        attn_weights = attn_weights + attention_mask
        attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query_states.dtype)
        attn_output = torch.matmul(attn_weights, value_states)
        attn_output = attn_output.transpose(1, 2).contiguous()
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        return self.o_proj(attn_output)


class Gemma3MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)
        self.captured = None  # input of down_proj, kept when asked for

    def forward(self, x, capture=False):
        h = F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x)
        if capture:
            self.captured = h
        return self.down_proj(h)


class Gemma3DecoderLayer(nn.Module):
    def __init__(self, cfg, layer_idx):
        super().__init__()
        self.attention_type = cfg.layer_types[layer_idx]
        self.self_attn = Gemma3Attention(cfg, layer_idx)
        self.mlp = Gemma3MLP(cfg)
        self.input_layernorm = Gemma3RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = Gemma3RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.pre_feedforward_layernorm = Gemma3RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_feedforward_layernorm = Gemma3RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, hidden_states, position_embeddings, attention_mask, capture=False):
        residual = hidden_states
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states = self.self_attn(hidden_states, position_embeddings, attention_mask)
        hidden_states = self.post_attention_layernorm(hidden_states)
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = self.pre_feedforward_layernorm(hidden_states)
        hidden_states = self.mlp(hidden_states, capture)
        hidden_states = self.post_feedforward_layernorm(hidden_states)
        return residual + hidden_states


class Gemma3ForCausalLM(nn.Module):
    def __init__(self, cfg, bf16_embed_scale=False):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        # Gemma3TextScaledWordEmbedding: the scale is a tensor cast to the weights' dtype
        scale = torch.tensor(cfg.hidden_size ** 0.5)
        self.embed_scale = scale.to(torch.bfloat16).float() if bf16_embed_scale else scale
        self.layers = nn.ModuleList([Gemma3DecoderLayer(cfg, i) for i in range(cfg.num_hidden_layers)])
        self.norm = Gemma3RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        factor = 1.0
        if cfg.rope_scaling and cfg.rope_scaling.get("rope_type", cfg.rope_scaling.get("type")) == "linear":
            factor = cfg.rope_scaling["factor"]
        self.inv_freq = {
            "full_attention": rope_inv_freq(cfg.rope_theta, cfg.head_dim, factor),
            "sliding_attention": rope_inv_freq(cfg.rope_local_base_freq, cfg.head_dim),
        }

    def load(self, weights):
        sd = {}
        for name, t in weights.items():
            if name.startswith("model."):
                sd[name[len("model."):]] = t
            else:
                sd[name] = t
        if self.cfg.tie_word_embeddings:
            sd["lm_head.weight"] = sd["embed_tokens.weight"]
        missing, unexpected = self.load_state_dict(sd, strict=False)
        assert not missing and not unexpected, (missing, unexpected)

    def masks(self, T):
        q = torch.arange(T)[:, None]
        kv = torch.arange(T)[None, :]
        causal = kv <= q
        sliding = causal & (kv > q - self.cfg.sliding_window)
        mn = torch.finfo(torch.float32).min
        to_add = lambda m: torch.where(m, 0.0, mn)[None, None]
        return {"full_attention": to_add(causal), "sliding_attention": to_add(sliding)}

    @torch.no_grad()
    def forward(self, input_ids, capture_layers=(), logits_at=None):
        """Returns (hidden after final norm [B,T,D], residual after each block [L][B,T,D],
        mlp hidden of captured layers {l: [B,T,F]}, logits at positions logits_at or all)."""
        B, T = input_ids.shape
        hidden_states = self.embed_tokens(input_ids) * self.embed_scale.to(self.embed_tokens.weight.dtype)
        position_ids = torch.arange(T)[None, :]
        pe = {k: rope_cos_sin(v, position_ids, hidden_states.dtype) for k, v in self.inv_freq.items()}
        masks = self.masks(T)
        resid = []
        mlp = {}
        for i, layer in enumerate(self.layers):
            cap = i in capture_layers
            hidden_states = layer(hidden_states, pe[layer.attention_type], masks[layer.attention_type], cap)
            resid.append(hidden_states)
            if cap:
                mlp[i] = layer.mlp.captured
                layer.mlp.captured = None
        hidden_states = self.norm(hidden_states)
        sel = hidden_states if logits_at is None else hidden_states[:, logits_at, :]
        logits = self.lm_head(sel)
        if self.cfg.final_logit_softcapping is not None:
            c = self.cfg.final_logit_softcapping
            logits = torch.tanh(logits / c) * c
        return hidden_states, resid, mlp, logits


def load_model(model_dir, bf16_embed_scale=False):
    with open(f"{model_dir}/config.json") as f:
        cfg = Config(json.load(f))
    model = Gemma3ForCausalLM(cfg, bf16_embed_scale)
    model.load(load_safetensors(f"{model_dir}/model.safetensors"))
    model.eval()
    return model


# ----------------------------------------------------------------------------- frames and ids

read_frames = entkio.items


parse_ids = entkio.parse_ids
relerr = entkio.relerr


# ----------------------------------------------------------------------------- commands

def cmd_randids(a):
    rnd = random.Random(a.seed)
    print(";".join(",".join(str(rnd.randrange(a.vocab)) for _ in range(a.len)) for _ in range(a.windows)))


def cmd_compare(a):
    torch.set_num_threads(1)
    model = load_model(a.model, a.bf16_embed_scale)
    windows = parse_ids(a.ids)
    frames = list(read_frames(a.frames))
    layers_needed = {int(m["layer"]) for k, n, m, x in frames if n == "mlp"}
    worst = 0.0
    checked = 0
    cache = {}
    for kind, name, meta, arr in frames:
        if name not in ("logits", "hidden", "resid", "mlp"):
            continue
        w0 = int(meta["window0"])
        pos = [int(p) for p in meta["positions"]]
        n = arr.shape[0]
        key = (w0, n)
        if key not in cache:
            ids = torch.tensor(windows[w0:w0 + n], dtype=torch.long)
            cache = {key: model(ids, capture_layers=layers_needed)}
        hidden, resid, mlp, logits = cache[key]
        if name == "logits":
            ref = logits[:, pos, :]
        elif name == "hidden":
            ref = hidden[:, pos, :]
        elif name == "resid":
            ref = resid[int(meta["layer"])][:, pos, :]
        else:
            ref = mlp[int(meta["layer"])][:, pos, :]
        ref = ref.numpy()
        if ref.shape != arr.shape:
            print(f"FAIL shape of {name}: entk {arr.shape}, torch {ref.shape}")
            sys.exit(1)
        e = relerr(arr, ref)
        what = name + (f"[layer {meta['layer']}]" if "layer" in meta else "")
        print(f"{what} windows {w0}..{w0 + n - 1} positions {pos[:4]}{'...' if len(pos) > 4 else ''}: rel err {e:.2e}")
        worst = max(worst, e)
        checked += 1
    if checked == 0:
        print("FAIL no logits/hidden/resid/mlp frames to compare")
        sys.exit(1)
    tol = a.c * np.finfo(np.float32).eps * math.sqrt(model.cfg.hidden_size) * model.cfg.num_hidden_layers
    print(f"max relative error {worst:.3e} over {checked} frames (tol {tol:.2g} = {a.c:g} u sqrt(d) L)")
    sys.exit(0 if worst <= tol else 1)


def cmd_bench(a):
    if a.threads:
        torch.set_num_threads(a.threads)
    model = load_model(a.model)
    rnd = random.Random(1)
    V = model.cfg.vocab_size
    batches = [torch.tensor([[rnd.randrange(V) for _ in range(a.len)] for _ in range(a.windows)]) for _ in range(a.batches)]
    model(batches[0][:1, :8], logits_at=[-1])  # warm up
    t = time.time()
    for ids in batches:
        model(ids, logits_at=[-1])
    dt = time.time() - t
    tokens = a.windows * a.len * a.batches
    print(f"torch threads {torch.get_num_threads()}: {tokens} tokens in {dt:.3f} s: {tokens / dt:.1f} tokens/s")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("randids")
    r.add_argument("--vocab", type=int, required=True)
    r.add_argument("--windows", type=int, default=1)
    r.add_argument("--len", type=int, required=True)
    r.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("compare")
    c.add_argument("model")
    c.add_argument("ids")
    c.add_argument("frames")
    c.add_argument("--c", type=float, default=4.0)
    c.add_argument("--bf16-embed-scale", action="store_true")
    b = sub.add_parser("bench")
    b.add_argument("model")
    b.add_argument("--windows", type=int, default=64)
    b.add_argument("--len", type=int, default=64)
    b.add_argument("--batches", type=int, default=2)
    b.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    {"randids": cmd_randids, "compare": cmd_compare, "bench": cmd_bench}[a.cmd](a)


if __name__ == "__main__":
    main()
