"""Peer check of entk-eig: its eigenpairs against numpy.linalg.eigh, or two entk-eig results of the
same Gram against each other (e.g. --solver auto against --solver full).

usage: eig_ref.py EIG K [REF_EIG] [--c C]
  EIG      an entk-eig output (eigenvalues [k], eigenvectors [k, n]) of the Gram stream K
  REF_EIG  compare with this entk-eig output of the same K instead of with numpy's eigh of
           K + ridge I (ridge read from EIG's meta), computed in f64 whatever K's dtype
Every bound is in units of rounding, u = eps(dtype of EIG) (2.2e-16 f64, 1.2e-7 f32):
  eigenvalues   max_i |lambda_i - ref_i| <= delta, delta = C u sqrt(n) |lambda_1|. A backward
                stable solver returns the exact eigenpairs of K + E with ||E|| of order u sqrt(n)
                ||K||, and by Weyl each eigenvalue moves by at most ||E||: so the bound is relative to
                lambda_1 (the largest), never to lambda_i itself (a small eigenvalue carries the same
                absolute error as a large one). C defaults to 10, entk-eig's own acceptance bound for
                its remainder and residuals (lib/ntk/eig.c, accept_bound).
  residuals     ||(K + ridge I) v_i - lambda_i v_i|| <= C u sqrt(n) ||K||_F, computed here in f64:
                entk-eig's own claim (its residual meta) checked independently.
  eigenvectors  each v_i lies in the span of the reference eigenvectors whose eigenvalues are
                within w = delta of lambda_i (eigenvalues closer than the eigenvalue bound cannot be
                told apart, so their vectors are only defined as a space), up to
                ||(I - P) v_i|| <= 2 r_i / w + 100 u sqrt(n), r_i its residual: by Davis-Kahan a
                vector with residual r is within r / gap of the eigenspace of the eigenvalues within
                the gap, and the gap to those outside the window is >= w; the 2 covers the
                reference's own error, the last term rounding of the projection. Eigenvectors are
                defined only up to sign and, for (nearly) equal eigenvalues, up to a rotation within
                their eigenspace: this accepts exactly that freedom. With REF_EIG, a vector whose window
                holds eigenvalues of K past the reference's k (whose vectors it lacks) cannot be
                checked against it and is counted as such (its residual is still checked).
  orthonormal   max |V V^T - I| <= 100 u sqrt(n) (LAPACK's eigenvectors are orthonormal to
                O(u sqrt(n)) in practice; 100 leaves room for the f32 SVD of a factor), and each
                vector has its largest |entry| positive (entk's sign convention).
Prints one summary line, errors also in units of u sqrt(n); exits 1 if a check fails."""
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
        if a == "--c":
            opts[a] = float(sys.argv[i + 1])
            i += 2
        else:
            args.append(a)
            i += 1
    if len(args) not in (2, 3):
        raise SystemExit(__doc__)
    lam, V, meta, dt = load_eig(args[0])
    k, n = V.shape
    f64 = dt == "f64"
    unit = np.finfo(np.float64 if f64 else np.float32).eps * np.sqrt(n)  # u sqrt(n)
    C = opts.get("--c", 10.0)
    K = tensors(args[1])["K"]["array"].astype(np.float64)
    K = (K + K.T) / 2  # the symmetric part, which entk-eig solves (K itself for entk's own Grams)
    w, Z = np.linalg.eigh(K + meta["ridge"] * np.eye(n))
    full = w[::-1]  # the whole spectrum, to see which windows a k-vector reference cannot cover
    if len(args) == 3:
        ref, U, _, _ = load_eig(args[2])
        what = args[2]
    else:
        ref, U = full, Z[:, ::-1].T
        what = "numpy eigh"
    bad = []
    # eigenvalues, relative to lambda_1
    err = np.abs(lam - ref[:k]).max() / abs(ref[0])
    if not err <= C * unit:
        bad.append(f"eigenvalues max |dl|/|l_1| {err:.2e} = {err / unit:.2g} u sqrt(n) > {C:g}")
    # orthonormality and sign convention
    orth = np.abs(V @ V.T - np.eye(k)).max()
    if not orth <= 100 * unit:
        bad.append(f"vectors not orthonormal ({orth:.1e} = {orth / unit:.2g} u sqrt(n) > 100)")
    big = V[np.arange(k), np.abs(V).argmax(1)]
    if (big <= 0).any():
        bad.append(f"{int((big <= 0).sum())} vectors break the sign convention")
    # residuals on K + ridge I, in f64
    Kr = K + meta["ridge"] * np.eye(n)
    res = np.linalg.norm(V @ Kr - lam[:, None] * V, axis=1)
    fro = np.linalg.norm(K)
    if not res.max() <= C * unit * fro:
        bad.append(f"residual {res.max() / fro:.2e} ||K||_F = {res.max() / fro / unit:.2g} u sqrt(n) > {C:g}")
    # eigenvectors up to sign / rotation within (near-)eigenspaces
    win = C * unit * abs(ref[0])
    worst, worst_tol, nclu, edge = 0.0, 0.0, 0, 0
    for j in range(k):
        near = np.abs(ref - lam[j]) <= win
        if (np.abs(full[len(ref):] - lam[j]) <= win).any():
            edge += 1
            continue
        nclu += near.sum() > 1
        B = U[near]
        out = np.linalg.norm(V[j] - B.T @ (B @ V[j]))
        tol = 2 * res[j] / win + 100 * unit
        if out / tol > worst / max(worst_tol, 1e-300):
            worst, worst_tol = out, tol
        if not out <= tol:
            bad.append(f"vector {j + 1}: ||(I-P)v|| {out:.2e} > 2 r / w + 100 u sqrt(n) = {tol:.1e}")
    how = "max |dl|/|l_1|"
    print(f"{args[0]} vs {what}: top {k} of {n} {dt} ({meta.get('solver', '?')}): eigenvalues {how} {err:.2e} "
          f"({err / unit:.2g} u sqrt(n), C = {C:g}), "
          f"residual <= {res.max() / fro / unit:.2g} u sqrt(n) ||K||_F, vectors off their eigenspace by {worst:.1e} "
          f"(bound {worst_tol:.1e}; {nclu} in clusters"
          f"{f', {edge} past the reference unchecked' if edge else ''}), orthonormal to {orth:.1e}"
          + ("" if not bad else "; FAIL: " + "; ".join(bad)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
