"""Peer check of entk-eig: its eigenpairs against numpy.linalg.eigh, or two entk-eig results of the
same Gram against each other (e.g. --solver auto against --solver full).

usage: eig_ref.py EIG K [REF_EIG] [--each TOL | --norm TOL] [--vec TOL]
  EIG      an entk-eig output (eigenvalues [k], eigenvectors [k, n]) of the Gram stream K
  REF_EIG  compare with this entk-eig output of the same K instead of with numpy's eigh of
           K + ridge I (ridge read from EIG's meta), computed in f64 whatever K's dtype
  --each   eigenvalues: max_i |lambda_i - ref_i| / |ref_i| <= TOL (default 1e-10 for f64)
  --norm   eigenvalues: max_i |lambda_i - ref_i| / |ref_1| <= TOL (default 1e-4 for f32: small
           eigenvalues of an f32 solve carry absolute errors of order eps_f32 * lambda_1)
  --vec    eigenvectors: each v_i must lie in the span of the reference eigenvectors whose
           eigenvalues are within w of lambda_i, up to ||(I - P) v_i|| <= TOL (default 1e-6 f64,
           2e-2 f32), with w = 1e-8 lambda_1 (f64) or 1e-5 lambda_1 (f32). Eigenvectors are only
           defined up to sign and, for (nearly) equal eigenvalues, up to a rotation within their
           eigenspace: this accepts exactly that freedom. With REF_EIG, a window that holds
           eigenvalues of K past the reference's k (whose vectors it lacks) is an error.
  Also: the vectors are orthonormal (max |V V^T - I| <= 1e3 eps sqrt(n)) and each has its largest
  |entry| positive (entk's sign convention).
Prints one summary line; exits 1 if a check fails."""
import sys

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from entkio import tensors  # noqa: E402


def load_eig(path):
    t = tensors(path)
    vals, vecs = t["eigenvalues"], t["eigenvectors"]
    return vals["array"].astype(np.float64), vecs["array"].astype(np.float64), vals["meta"], vals["dtype"]


def main():
    args, opts, i = [], {}, 1
    while i < len(sys.argv):
        a = sys.argv[i]
        if a in ("--each", "--norm", "--vec"):
            opts[a] = float(sys.argv[i + 1])
            i += 2
        else:
            args.append(a)
            i += 1
    if len(args) not in (2, 3) or ("--each" in opts and "--norm" in opts):
        raise SystemExit(__doc__)
    lam, V, meta, dt = load_eig(args[0])
    k, n = V.shape
    f64 = dt == "f64"
    eps = np.finfo(np.float64 if f64 else np.float32).eps
    K = tensors(args[1])["K"]["array"].astype(np.float64)
    w, Z = np.linalg.eigh(K + meta["ridge"] * np.eye(n))
    full = w[::-1]  # the whole spectrum, to see which windows a k-vector reference cannot cover
    if len(args) == 3:
        ref, U, _, _ = load_eig(args[2])
        what = args[2]
    else:
        ref, U = full, Z[:, ::-1].T
        what = "numpy eigh"
    bad = []
    # eigenvalues
    d = np.abs(lam - ref[:k])
    if "--norm" in opts or ("--each" not in opts and not f64):
        tol = opts.get("--norm", 1e-4)
        err, how = d.max() / abs(ref[0]), "max |dl|/|l_1|"
    else:
        tol = opts.get("--each", 1e-10)
        err, how = (d / np.abs(ref[:k])).max(), "max |dl|/|l|"
    if not err <= tol:
        bad.append(f"eigenvalues {how} {err:.2e} > {tol:g}")
    # orthonormality and sign convention
    orth = np.abs(V @ V.T - np.eye(k)).max()
    if not orth <= 1e3 * eps * np.sqrt(n):
        bad.append(f"vectors not orthonormal ({orth:.1e})")
    big = V[np.arange(k), np.abs(V).argmax(1)]
    if (big <= 0).any():
        bad.append(f"{int((big <= 0).sum())} vectors break the sign convention")
    # eigenvectors up to sign / rotation within (near-)eigenspaces
    win = (1e-8 if f64 else 1e-5) * abs(ref[0])
    vtol = opts.get("--vec", 1e-6 if f64 else 2e-2)
    worst, nclu = 0.0, 0
    for j in range(k):
        near = np.abs(ref - lam[j]) <= win
        if (np.abs(full[len(ref):] - lam[j]) <= win).any():
            bad.append(f"eigenvalue {j + 1}: its window holds eigenvalues past the reference's {len(ref)}")
            continue
        nclu += near.sum() > 1
        B = U[near]
        out = np.linalg.norm(V[j] - B.T @ (B @ V[j]))
        worst = max(worst, out)
    if not worst <= vtol:
        bad.append(f"vectors: max ||(I-P)v|| {worst:.2e} > {vtol:g}")
    print(f"{args[0]} vs {what}: top {k} of {n} {dt} ({meta.get('solver', '?')}): eigenvalues {how} {err:.2e}, "
          f"vectors off their eigenspace by <= {worst:.1e} ({nclu} in clusters), orthonormal to {orth:.1e}"
          + ("" if not bad else "; FAIL: " + "; ".join(bad)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
