"""The Setting-2 Transformer in plain PyTorch, for functorch eNTKs and AdamW steps (peer tests).
Layouts as documented in lib/modadd/transformer.c: W_E [V,D], W_pos [3,D], W_Q/W_K/W_V [H,D,E],
W_O [H,E,D], W_in [D,F], W_out [F,D], W_U [D,V]; outputs = all V logits at position 2 (the loss
uses the first p)."""
import numpy as np
import torch


def transformer_fn(meta, hidden=False):
    """f(params, tokens) -> the V logits at position 2; with hidden, resid_post at position 2."""

    def f(ps, tok):
        single = tok.dim() == 1
        if single:
            tok = tok[None]
        T = tok.shape[1]
        x = ps["W_E"][tok] + ps["W_pos"][:T]                      # [B, T, D]
        q = torch.einsum("btd,hde->bhte", x, ps["W_Q"])
        k = torch.einsum("btd,hde->bhte", x, ps["W_K"])
        v = torch.einsum("btd,hde->bhte", x, ps["W_V"])
        s = q @ k.transpose(-1, -2) / np.sqrt(q.shape[-1])
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        s = s.masked_fill(mask, float("-inf"))
        z = torch.softmax(s, -1) @ v                              # [B, H, T, E]
        mid = x + torch.einsum("bhte,hed->btd", z, ps["W_O"])
        post = mid + torch.relu(mid @ ps["W_in"]) @ ps["W_out"]
        out = post[:, -1] if hidden else post[:, -1] @ ps["W_U"]
        return out[0] if single else out

    return f
