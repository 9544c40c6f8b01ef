"""Peer check of entk's eNTKs: PyTorch autograd + functorch on the same weights and inputs.

usage: ntk_ref.py MODEL DATA K_FILE... : checks every K file (its reduce/params/dtype from its
frames) against the functorch eNTK; prints one line per file and exits 1 if any is off.
       ntk_ref.py --eig MODEL DATA EIG_FILE TOP: top eigenvalues of the full trace eNTK.
       ntk_ref.py --compare K_A K_B TOL: two entk Grams against each other.
       ntk_ref.py --forward MODEL DATA FRAMES: entk-forward's logits (and hidden) frames against
the model's forward in PyTorch (the first p logits; hidden = the input of the readout).
Tolerances: relative Frobenius error <= 1e-10 for f64 results, <= 1e-5 for f32."""
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


def main():
    if sys.argv[1] == "--compare":  # two K files of entk against each other
        _, _, a, b, tol = sys.argv
        ka = tensors(a)["K"]["array"].astype(np.float64)
        kb = tensors(b)["K"]["array"].astype(np.float64)
        err = np.linalg.norm(ka - kb) / np.linalg.norm(kb)
        print(f"{a} vs {b}: rel err {err:.2e} (tol {float(tol):g})")
        sys.exit(0 if err <= float(tol) else 1)
    if sys.argv[1] == "--forward":
        forward_check(*sys.argv[2:5])
    if sys.argv[1] == "--eig":
        _, _, model, data, eigf, top = sys.argv
        J = entk(model, data, torch.float64)
        K = reduce(J, list(J), "trace").numpy()
        K = K + 1e-8 * np.mean(np.diag(K)) * np.eye(K.shape[0])
        ref = np.linalg.eigvalsh(K)[::-1][: int(top)]
        got = tensors(eigf)["eigenvalues"]["array"].astype(np.float64)
        err = np.abs(got - ref).max() / np.abs(ref).max()
        tol = 1e-10 if tensors(eigf)["eigenvalues"]["dtype"] == "f64" else 1e-5
        print(f"eigenvalues top {top}: max rel error {err:.2e} (tol {tol:g})")
        sys.exit(0 if err <= tol else 1)
    model, data, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    J64 = entk(model, data, torch.float64)
    bad = 0
    for path in files:
        fr = tensors(path)["K"]
        how, names = fr["meta"]["reduce"], fr["meta"]["params"].split(",")
        ref = reduce(J64, names, how).numpy()
        bad += rel_check(path, fr["array"].astype(np.float64), ref, fr["dtype"], f"reduce={how} params={','.join(names)} ")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
