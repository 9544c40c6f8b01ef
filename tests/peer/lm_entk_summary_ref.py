#!/usr/bin/env python3
"""Peer of pipelines/lm-entk's summary: its numbers again, from the eigenvectors and the labels alone,
with numpy and scikit-learn. For every block the eNTK eigenvectors ([N, D] frames of eig/layer-L)
become per-window scores (numpy's SVD: u1 sigma1, the largest |entry| positive), the PCA scores are
read from pca.frames, and for every split seed the split, the choice of direction and sign on the
train half (best average precision, ties to the lower direction, then +) and the test AP and AUROC
(scikit-learn) are computed as README "Scoring" defines them; macro averages per group, their mean,
min and max over the splits, and the per-label best AUROC over the blocks are compared with
summary.json (which prints 6 decimals: tolerance 1e-6).

  lm_entk_summary_ref.py OUT WINDOWS.frames "LAYERS" "SPLITS" TOP
"""
import json
import os
import sys

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, os.path.dirname(__file__))
import entkio  # noqa: E402
from score_ref import read_windows, split  # noqa: E402


def rank1(W):
    U, S, _ = np.linalg.svd(W, full_matrices=False)
    s = U[:, 0] * S[0]
    return s if s[np.argmax(np.abs(s))] > 0 else -s


def label_metrics(S, y, train):
    """(test AP, test AUROC) of the best train-AP direction and sign of S [k, N], or None if skipped."""
    tr, te = train == 1, train == 0
    if y[tr].sum() in (0, tr.sum()) or y[te].sum() in (0, te.sum()):
        return None
    best, choice = -1.0, None
    for j in range(S.shape[0]):
        for sg in (1, -1):
            ap = average_precision_score(y[tr], sg * S[j][tr])
            if ap > best:
                best, choice = ap, (j, sg)
    j, sg = choice
    return average_precision_score(y[te], sg * S[j][te]), roc_auc_score(y[te], sg * S[j][te])


def main():
    out, wpath, layers, splits, top = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split(), int(sys.argv[5])
    summ = json.load(open(os.path.join(out, "summary.json")))
    _, cls, groups = read_windows(wpath)
    scores = {}
    worst_rank1 = 0.0
    for L in layers:
        fr = list(entkio.frames(os.path.join(out, "eig", f"layer-{L}.frames")))
        vecs = [f["array"] for f in fr if f.get("kind") == "tensor" and f["name"] == "eigenvector"]
        mine = np.array([rank1(v) for v in vecs])[:top]
        theirs = [f for f in fr if f.get("kind") == "tensor" and f["name"] == "scores"][0]["array"][:top]
        worst_rank1 = max(worst_rank1, float(np.abs(mine - theirs).max() / np.abs(mine).max()))
        scores[("entk", L)] = mine
    for st in entkio.streams(os.path.join(out, "pca.frames")):
        sf = [f for f in st if f.get("kind") == "tensor" and f["name"] == "scores"][0]
        scores[("pca", str(sf["meta"]["layer"]))] = sf["array"][:top]
    print(f"{'ok' if worst_rank1 <= 1e-9 else 'FAIL'} eNTK per-window scores = numpy's SVD of the eigenvectors "
          f"(worst relative difference {worst_rank1:.2e})")
    trains = {s: split(cls, int(s)) for s in splits}
    per_label = {}  # (method, layer, group, label) -> [auroc per split]
    worst = 0.0
    checked = 0
    for row in summ["per_layer"]:
        L = str(row["layer"])
        for method in ("entk", "pca"):
            S = scores[(method, L)]
            for group, names, ys in groups:
                macro_ap, macro_auc = [], []
                for s in splits:
                    aps, aucs = [], []
                    for name, y in zip(names, ys):
                        r = label_metrics(S, np.asarray(y), trains[s])
                        if r is None:
                            continue
                        aps.append(r[0])
                        aucs.append(r[1])
                        per_label.setdefault((method, L, group, name), []).append(r[1])
                    macro_ap.append(np.mean(aps))
                    macro_auc.append(np.mean(aucs))
                want = row[f"{method}_{group}"]
                mine = {"ap": np.mean(macro_ap), "ap_min": np.min(macro_ap), "ap_max": np.max(macro_ap),
                        "auroc": np.mean(macro_auc), "auroc_min": np.min(macro_auc), "auroc_max": np.max(macro_auc)}
                for k, v in mine.items():
                    worst = max(worst, abs(v - want[k]))
                    checked += 1
    print(f"{'ok' if worst <= 1e-6 else 'FAIL'} summary.json per block: {checked} macro AP/AUROC means and ranges "
          f"over {len(splits)} splits = the peer's (worst difference {worst:.1e})")
    best = {}
    for (method, L, group, name), aucs in per_label.items():
        k = (method, group, name)
        best[k] = max(best.get(k, -1.0), float(np.mean(aucs)))
    worst = 0.0
    for method in ("entk", "pca"):
        for group in ("pos", "morph"):
            v = np.mean([b for (m, g, _), b in best.items() if m == method and g == group])
            worst = max(worst, abs(v - summ["best_over_layers"][f"{method}_{group}_auroc"]))
    print(f"{'ok' if worst <= 1e-6 else 'FAIL'} summary.json best over blocks (the paper's table, macro) = the peer's "
          f"(worst difference {worst:.1e})")


if __name__ == "__main__":
    main()
