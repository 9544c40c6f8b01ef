"""Peer check of entk's eNTKs: PyTorch autograd + functorch on the same weights and inputs.

usage: ntk_ref.py MODEL DATA K_FILE... : checks every K file (its reduce/params/dtype from its
frames) against the functorch eNTK (computed in f64); prints one line per file and exits 1 if any
is off.
       ntk_ref.py --eig MODEL DATA EIG_FILE TOP: top eigenvalues of the full trace eNTK.
       ntk_ref.py --compare MODEL K_A K_B: two entk Grams of MODEL's parameters against each other.
Tolerances, in units of rounding u = eps of the result's dtype (of the less precise of two):
  Grams   relative Frobenius error <= 2 u sqrt(m), m the number of products summed into each entry
          (P parameters named in the frame's meta times C classes for trace and mean, P for flat):
          a sum of m rounded products is off by about u sqrt(m) of the sum of their magnitudes
          (a random walk of m roundings; u m is the never-reached worst case), and each Jacobian
          entry by a few u. Measured on both OpenBLAS kernel families (Haswell, SkylakeX):
          at most 0.15 u sqrt(m), and never above 5 u.
  --eig   max |lambda_i - ref_i| / lambda_1 <= 2 u sqrt(m) ||K||_F / lambda_1 + 10 u sqrt(N): the
          Gram's own error moves each eigenvalue by at most its norm (Weyl), and the solver adds
          its acceptance bound (entk-eig's 10 u sqrt(N), lib/ntk/eig.c).
       ntk_ref.py --forward MODEL DATA FRAMES: entk-forward's logits (and hidden) frames against
the model's forward in PyTorch (the first p logits; hidden = the input of the readout), to 1e-10
relative for f64 results and 1e-5 for f32."""
import sys

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from entkio import load_safetensors, tensors  # noqa: E402

try:  # --compare needs only numpy; torch loads in ~2 s, so it is imported only when used
    import torch
    from functorch import jacrev, vmap
    torch.set_default_dtype(torch.float64)
except ImportError:
    torch = None


def mlp_fn(p, hidden):
    def f(params, x):
        h = x @ params["W1"].T / np.sqrt(2 * p)
        return (h * h) @ params["W2"].T / hidden
    return f


def model_fn(meta):
    if meta["entk_model"] == "mlp":
        return mlp_fn(int(meta["p"]), int(meta["hidden"]))
    sys.path.insert(0, __import__("os").path.dirname(__file__))
    from transformer_ref import transformer_fn
    return transformer_fn(meta)


def rel_check(label, got, ref, dtype, detail=""):
    """Prints 'ok LABEL: ...' or 'FAIL LABEL: ...': the relative Frobenius error of got against ref
    within 1e-10 (f64) or 1e-5 (f32). Returns 1 if it is off."""
    if got.shape != ref.shape:
        print(f"FAIL {label}: shape {got.shape} vs reference {ref.shape}")
        return 1
    err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    tol = 1e-10 if dtype == "f64" else 1e-5
    print(f"{'ok' if err <= tol else 'FAIL'} {label}: {detail}{dtype} rel err {err:.2e} (tol {tol:g})")
    return int(err > tol)


def forward_check(model_path, data_path, frames_path):
    """entk-forward's logits and hidden frames against the PyTorch forward in f64."""
    w, meta = load_safetensors(model_path)
    params = {k: torch.tensor(v, dtype=torch.float64) for k, v in w.items()}
    x = torch.tensor(np.array(tensors(data_path)["x"]["array"]))
    x = x.to(torch.float64) if x.dtype.is_floating_point else x.long()
    p = int(meta["p"])
    if meta["entk_model"] == "mlp":
        h = x @ params["W1"].T / np.sqrt(2 * p)
        ref = {"hidden": h * h}
        ref["logits"] = ref["hidden"] @ params["W2"].T / int(meta["hidden"])
    else:
        sys.path.insert(0, __import__("os").path.dirname(__file__))
        from transformer_ref import transformer_fn
        ref = {"logits": transformer_fn(meta)(params, x)[:, :p], "hidden": transformer_fn(meta, hidden=True)(params, x)}
    got = tensors(frames_path)
    bad = 0
    for name in ("logits", "hidden"):
        if name in got:
            a = got[name]["array"].astype(np.float64)
            bad += rel_check(name, a, ref[name].numpy(), got[name]["dtype"], f"{list(a.shape)} ")
    sys.exit(1 if bad or not got else 0)


def entk(model_path, data_path, dtype):
    w, meta = load_safetensors(model_path)
    params = {k: torch.tensor(v, dtype=dtype) for k, v in w.items()}
    data = tensors(data_path)
    x = torch.tensor(np.array(data["x"]["array"]))
    x = x.to(dtype) if x.dtype.is_floating_point else x.long()
    f = model_fn(meta)
    jac = vmap(jacrev(f), in_dims=(None, 0))(params, x)  # name -> [N, C, *shape]
    return {k: v.reshape(v.shape[0], v.shape[1], -1) for k, v in jac.items()}


def reduce(jacs, names, how):
    N, C = next(iter(jacs.values())).shape[:2]
    K = 0
    for n in names:
        J = jacs[n]
        if how == "trace":
            K = K + torch.einsum("ncp,mcp->nm", J, J) / C
        elif how == "mean":
            s = J.sum(1)
            K = K + s @ s.T / C**2
        else:  # flat, class-major
            Jc = J.transpose(0, 1).reshape(N * C, -1)
            K = K + Jc @ Jc.T
    return K


def unit(*arrays):
    """u: eps of the least precise of the arrays' dtypes."""
    return max(np.finfo(a.dtype).eps for a in arrays)


def terms(fr, sizes):
    """m: the products summed into each entry of Gram frame fr, from the parameter sizes."""
    P = sum(sizes[n] for n in fr["meta"]["params"].split(","))
    return P * (1 if fr["meta"]["reduce"] == "flat" else int(fr["meta"]["C"]))


def main():
    if sys.argv[1] == "--compare":  # two K files of entk against each other
        _, _, model, a, b = sys.argv
        w, _ = load_safetensors(model)
        fa, fb = tensors(a)["K"], tensors(b)["K"]
        m = terms(fa, {k: v.size for k, v in w.items()})
        u = unit(fa["array"], fb["array"])
        ka, kb = fa["array"].astype(np.float64), fb["array"].astype(np.float64)
        err = np.linalg.norm(ka - kb) / np.linalg.norm(kb)
        tol = 2 * u * np.sqrt(m)
        print(f"{a} vs {b}: rel err {err:.2e} = {err / u / np.sqrt(m):.2g} u sqrt(m = {m}) (tol 2)")
        sys.exit(0 if err <= tol else 1)
    if sys.argv[1] == "--forward":
        forward_check(*sys.argv[2:5])
    if sys.argv[1] == "--eig":
        _, _, model, data, eigf, top = sys.argv
        J = entk(model, data, torch.float64)
        K = reduce(J, list(J), "trace").numpy()
        K = K + 1e-8 * np.mean(np.diag(K)) * np.eye(K.shape[0])
        ref = np.linalg.eigvalsh(K)[::-1][: int(top)]
        got = tensors(eigf)["eigenvalues"]["array"]
        u, n = unit(got), K.shape[0]
        m = sum(v.shape[2] for v in J.values()) * next(iter(J.values())).shape[1]
        got = got.astype(np.float64)
        err = np.abs(got - ref).max() / abs(ref[0])
        tol = 2 * u * np.sqrt(m) * np.linalg.norm(K) / abs(ref[0]) + 10 * u * np.sqrt(n)
        print(f"eigenvalues top {top}: max |dl| / l_1 {err:.2e} (tol {tol:.2e} = 2 u sqrt(m = {m}) ||K||_F / l_1 + 10 u sqrt(N))")
        sys.exit(0 if err <= tol else 1)
    model, data, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    J64 = entk(model, data, torch.float64)
    bad = 0
    for path in files:
        fr = tensors(path)["K"]
        how, names = fr["meta"]["reduce"], fr["meta"]["params"].split(",")
        ref = reduce(J64, names, how).numpy()
        got = fr["array"].astype(np.float64)
        if got.shape != ref.shape:
            print(f"FAIL {path}: shape {got.shape} vs reference {ref.shape}")
            bad += 1
            continue
        err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        u, m = unit(fr["array"]), sum(J64[n].shape[2] for n in names) * (1 if how == "flat" else J64[names[0]].shape[1])
        ok = err <= 2 * u * np.sqrt(m)
        bad += not ok
        print(f"{'ok' if ok else 'FAIL'} {path}: reduce={how} params={','.join(names)} {fr['dtype']} rel err {err:.2e} "
              f"= {err / u / np.sqrt(m):.2g} u sqrt(m = {m}) (tol 2)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
