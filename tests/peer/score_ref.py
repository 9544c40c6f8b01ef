"""Peer of entk's label scoring (lib/ntk/score.c, lib/ntk/pca.c, entk-labels, entk-eig --pca):
scikit-learn's average_precision_score and roc_auc_score, numpy's SVD, and precision@quota,
enrichment, the split and the choice of direction written again from their definitions in
README.md ("Scoring"). Prints one "ok ..." line per passed check group; fails with an assertion.

  score_ref.py craft-metrics OUT               crafted and random scores/labels for score-tool metrics
  score_ref.py check-metrics IN RECORDS        score-tool metrics output against sklearn / numpy
  score_ref.py craft-rank1 OUT N D SEED        directions [4, N, D] for score-tool rank1
  score_ref.py check-rank1 IN OUT              rank-1 scores against numpy's SVD
  score_ref.py craft-resid OUT N D SEED        an entk-forward-like resid stream (layers 3 and 5)
  score_ref.py check-pca RESID PCA             entk-eig --pca against numpy's SVD of the centred rows
  score_ref.py craft-labels WINDOWS SCORES N K SEED [--windows-key HEX] [--scores-n M]
                                               a synthetic windows stream and a scores stream for it
  score_ref.py check-labels WINDOWS SCORES LABELS TOP   entk-labels output against the peer
"""
import sys

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from entkio import frames, tensor_frame, write_stream  # noqa: E402

EPS = np.finfo(np.float64).eps


def streams(path):
    """The streams of a file: lists of frames, header first."""
    out = []
    for fr in frames(path):
        if fr["kind"] == "header":
            out.append([fr])
        elif fr["kind"] != "end":
            out[-1].append(fr)
    return out


def named(stream, name, kind="tensor"):
    return [fr for fr in stream if fr["kind"] == kind and fr["name"] == name]


# ---------------------------------------------------------------- metrics from the definitions

def precision_at_quota(s, y):
    """README: quota q = P; a tie straddling the q-th place counts its positive share per place."""
    q = int(y.sum())
    t = np.sort(s)[::-1][q - 1]
    above, tied = s > t, s == t
    hits = y[above].sum() + (q - above.sum()) * y[tied].sum() / tied.sum()
    return hits / q, above.sum() + tied.sum() != q


def metrics(s, y):
    from sklearn.metrics import average_precision_score, roc_auc_score   # only where needed: a 1 s import
    p, straddles = precision_at_quota(s, y)
    return {"ap": average_precision_score(y, s), "auroc": roc_auc_score(y, s), "precision_at_quota": p,
            "enrichment": p / (y.sum() / len(y))}, straddles


# ---------------------------------------------------------------- craft / check metrics

def craft_metrics(out):
    rng = np.random.default_rng(5)
    n = 40
    y0 = np.zeros(n, np.uint8)
    y0[rng.choice(n, 13, replace=False)] = 1
    y1 = np.zeros(n, np.uint8)
    y1[7] = 1
    y2 = 1 - y1
    Y = [y0, y1, y2, np.zeros(n, np.uint8), np.ones(n, np.uint8), (np.arange(n) % 2).astype(np.uint8)]
    perfect = np.where(y0 == 1, 2.0, 1.0) + rng.normal(0, 0.1, n)
    ties_at_cut = np.where(y0 == 1, 1.0, 0.0)
    ties_at_cut[np.flatnonzero(y0 == 0)[:5]] = 1.0      # 18 windows tie at the top for a quota of 13
    signed_zero = np.zeros(n)
    signed_zero[::3] = -0.0
    signed_zero[1::5] = 1.0
    S = [perfect, -perfect, np.full(n, 0.5), rng.integers(0, 4, n).astype(float), rng.normal(size=n),
         ties_at_cut, signed_zero, np.round(rng.normal(size=n), 1)]
    # random, larger: n = 1000, some rounded hard so ties are common
    rng2 = np.random.default_rng(6)
    n2 = 1000
    Y2 = [(rng2.random(n2) < p).astype(np.uint8) for p in (0.05, 0.3, 0.5, 0.9)]
    S2 = [rng2.normal(size=n2) + 0.8 * Y2[i % 4] for i in range(6)] + [np.round(rng2.normal(size=n2), d) for d in (0, 1)]
    with open(out, "wb") as f:
        write_stream(f, "score_ref", "0" * 32, [tensor_frame("scores", np.array(S)), tensor_frame("y", np.array(Y))])
        write_stream(f, "score_ref", "1" * 32, [tensor_frame("scores", np.array(S2)), tensor_frame("y", np.array(Y2))])


def check_metrics(inp, recs):
    from sklearn.metrics import precision_score
    ins, outs = streams(inp), streams(recs)
    assert len(ins) == len(outs), (len(ins), len(outs))
    n_cmp = n_skip = n_straddle = n_sk_prec = 0
    for ist, ost in zip(ins, outs):
        S = named(ist, "scores")[0]["array"]
        Y = named(ist, "y")[0]["array"]
        rows = named(ost, "metrics", "record")
        assert len(rows) == 2 * len(S) * len(Y), len(rows)
        for r in rows:
            m = r["meta"]
            s = m["sign"] * S[m["direction"] - 1]
            y = Y[m["label"] - 1].astype(int)
            if y.sum() in (0, len(y)):
                assert m["ok"] == 0, m
                n_skip += 1
                continue
            assert m["ok"] == 1, m
            want, straddles = metrics(s, y)
            for key, v in want.items():
                tol = 1e-13 * (len(y) if key == "enrichment" else 1)
                assert abs(m[key] - v) <= tol, (key, m, v)
            if straddles:
                n_straddle += 1
            else:   # no tie across the cut: the top q by score, as sklearn's precision of s >= t
                q = y.sum()
                t = np.sort(s)[::-1][q - 1]
                assert abs(m["precision_at_quota"] - precision_score(y, s >= t)) <= 1e-13, m
                n_sk_prec += 1
            n_cmp += 1
    assert n_straddle > 10 and n_sk_prec > 10 and n_skip > 0
    print(f"ok metrics: {n_cmp} score/label pairs equal sklearn's AP and AUROC and the definitions of precision@quota "
          f"({n_straddle} with a tie across the cut; {n_sk_prec} also = sklearn precision_score) and enrichment; "
          f"{n_skip} without positives or negatives refused")


# ---------------------------------------------------------------- rank-1

def craft_rank1(out, N, D, seed):
    rng = np.random.default_rng(seed)
    r = min(N, D)
    dirs = []
    for case in range(4):
        U, _ = np.linalg.qr(rng.normal(size=(N, r)))
        V, _ = np.linalg.qr(rng.normal(size=(D, r)))
        s = np.sort(rng.random(r))[::-1] * (1.0, 0.5, 0.9, 0.0)[case]
        s[0] = 3.0 if case != 3 else 1.0    # case 3: exactly rank 1
        dirs.append((U * s) @ V.T)
    dirs[2] = rng.normal(size=(N, D)) + 0.5 * np.outer(rng.normal(size=N), rng.normal(size=D))   # noisy
    with open(out, "wb") as f:
        write_stream(f, "score_ref", "2" * 32, [tensor_frame("directions", np.array(dirs))])


def check_rank1(inp, out):
    A = named(streams(inp)[0], "directions")[0]["array"]
    o = streams(out)[0]
    got, sig = named(o, "scores")[0]["array"], named(o, "sigma")[0]["array"]
    for j, a in enumerate(A):
        U, S, _ = np.linalg.svd(a, full_matrices=False)
        ref = U[:, 0] * S[0]
        g = got[j]
        big = np.argmax(np.abs(g))
        assert g[big] > 0 and np.all(np.abs(g[:big]) < g[big]), f"direction {j}: sign convention"
        gap = (S[0] ** 2 - S[1] ** 2) / S[0] ** 2 if len(S) > 1 else 1.0
        tol = 100 * EPS * max(a.shape) / gap * S[0]
        err = min(np.linalg.norm(g - ref), np.linalg.norm(g + ref))
        assert err <= tol, f"direction {j}: |u1 s1 - numpy| = {err:.3g} > {tol:.3g}"
        assert abs(sig[j] - S[0]) <= 100 * EPS * max(a.shape) * S[0], (sig[j], S[0])
    print(f"ok rank1: {len(A)} directions [{A.shape[1]}, {A.shape[2]}]: u1 sigma1 = numpy's SVD up to sign, "
          f"largest entry positive, sigma1 equal")


# ---------------------------------------------------------------- PCA

def craft_resid(out, N, D, seed):
    rng = np.random.default_rng(seed)
    body = []
    Xs = {L: (rng.normal(size=(N, D)) * np.geomspace(3, 0.1, D) + 5).astype(np.float32) for L in (3, 5)}
    for w0 in range(0, N, 64):
        for L in (3, 5):
            body.append(tensor_frame("resid", Xs[L][w0:w0 + 64, None, :], {"window0": w0, "positions": [63], "layer": L}))
    with open(out, "wb") as f:
        write_stream(f, "entk-forward", "3" * 32, body, inputs=[("model", "4" * 32), ("ids", "5" * 32)])


def resid_layers(stream):
    layers = {}
    for fr in named(stream, "resid"):
        layers.setdefault(fr["meta"]["layer"], []).append((fr["meta"]["window0"], fr["array"][:, 0, :]))
    return {L: np.concatenate([a for _, a in sorted(v, key=lambda t: t[0])]).astype(np.float64) for L, v in layers.items()}


def check_pca(resid, pca):
    rst = streams(resid)[0]
    inputs = {i["name"]: i["key"] for i in rst[0]["meta"]["inputs"]}
    layers = resid_layers(rst)
    outs = streams(pca)
    assert len(outs) == len(layers), (len(outs), list(layers))
    worst = 0
    for o, (L, X) in zip(outs, layers.items()):
        sf = named(o, "scores")[0]
        m = sf["meta"]
        assert m["method"] == "pca" and m["layer"] == L and m["values_are"] == "variance", m
        assert m["model"] == inputs.get("model", "") and m["windows"] == inputs.get("ids", ""), m
        got, comp = sf["array"], named(o, "components")[0]["array"]
        ev = named(o, "explained_variance")[0]
        mean = named(o, "mean")[0]["array"]
        N, D = X.shape
        k = got.shape[0]
        mu = X.mean(axis=0)
        U, S, Vt = np.linalg.svd(X - mu, full_matrices=False)
        assert np.abs(mean - mu).max() <= 100 * EPS * np.abs(X).max()
        var = S ** 2 / (N - 1)
        assert np.allclose(m["values"], var[:k], rtol=100 * EPS * max(N, D), atol=0)
        assert np.allclose(ev["array"], var[:k], rtol=100 * EPS * max(N, D), atol=0)
        assert np.allclose(ev["meta"]["ratio"], S[:k] ** 2 / (S ** 2).sum(), rtol=100 * EPS * max(N, D), atol=0)
        for j in range(k):
            ref = U[:, j] * S[j]
            gaps = [abs(S[j] - S[i]) for i in (j - 1, j + 1) if 0 <= i < len(S)]
            gap = max(min(gaps), EPS * S[0]) / S[0]
            tol = 100 * EPS * max(N, D) * S[0] / gap
            g = got[j]
            sign = 1 if np.linalg.norm(g - ref) <= np.linalg.norm(g + ref) else -1
            err = np.linalg.norm(g - sign * ref)
            assert err <= tol, f"layer {L} PC {j + 1}: |score - numpy| = {err:.3g} > {tol:.3g}"
            assert np.linalg.norm(comp[j] - sign * Vt[j]) <= tol / S[j], f"layer {L} PC {j + 1}: component"
            big = np.argmax(np.abs(g))
            assert g[big] > 0, f"layer {L} PC {j + 1}: largest score entry not positive"
            worst = max(worst, err / (S[0] * EPS * max(N, D)))
    print(f"ok pca: {len(outs)} layers, top {k} PCs of [{N}, {D}]: scores and components = numpy's SVD of the centred "
          f"rows up to sign (worst {worst:.1f} eps max(N,D) sigma1), variances, ratios, mean, keys")


# ---------------------------------------------------------------- the split and label scoring

M64 = (1 << 64) - 1


class Xoshiro:
    """lib/core/rng.c: xoshiro256** seeded by splitmix64; rng_below; rng_permutation."""

    def __init__(self, seed):
        self.s, x = [], seed
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    def next(self):
        s = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M64  # noqa: E731
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        lim = M64 - M64 % n
        while True:
            x = self.next()
            if x < lim:
                return x % n

    def permutation(self, n):
        out = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            out[i], out[j] = out[j], out[i]
        return out


def split(cls, seed):
    """README: per class in id order, its windows (ascending) permuted; the first floor(n_c/2) train."""
    g = Xoshiro(seed)
    train = np.zeros(len(cls), np.uint8)
    for c in range(cls.max() + 1):
        idx = np.flatnonzero(cls == c)
        perm = g.permutation(len(idx))
        train[idx[perm[: len(idx) // 2]]] = 1
    return train


def read_windows(path):
    st = streams(path)[0]
    lab = named(st, "labels")[0]
    groups = [("pos", lab["meta"]["names"].split(), [(lab["array"] == c).astype(int) for c in range(len(lab["meta"]["names"].split()))])]
    fl = named(st, "feature_labels")
    if fl:
        names = fl[0]["meta"]["names"].split()
        groups.append(("morph", names, [fl[0]["array"][:, j].astype(int) for j in range(len(names))]))
    return st[0]["meta"]["key"], lab["array"].astype(int), groups


def check_labels(windows, scores, labels, top):
    from sklearn.metrics import average_precision_score
    wkey, cls, groups = read_windows(windows)
    sst, lst = streams(scores), streams(labels)
    assert len(sst) == len(lst), (len(sst), len(lst))
    nlab = nmacro = nskip = ntie = 0
    for ss, ls in zip(sst, lst):
        sf = named(ss, "scores")[0]
        S = sf["array"][:top]
        sm = sf["meta"]
        sp = named(ls, "split")[0]
        train = sp["array"]
        for c in range(cls.max() + 1):
            nc = (cls == c).sum()
            assert train[cls == c].sum() == nc // 2, f"class {c}: {train[cls == c].sum()} of {nc} in train"
        assert np.array_equal(train, split(cls, sp["meta"]["seed"])), "split differs from the README's definition"
        recs = named(ls, "label_score", "record")
        macros = {r["meta"]["group"]: r["meta"] for r in named(ls, "macro", "record")}
        at = 0
        for group, names, ys in groups:
            tests = []
            skipped = 0
            for name, y in zip(names, ys):
                m = recs[at]["meta"]
                at += 1
                assert (m["group"], m["label"], m["method"], m["layer"]) == (group, name, sm["method"], sm["layer"]), m
                tr, te = train == 1, train == 0
                assert (m["positives_train"], m["positives_test"], m["n_train"], m["n_test"]) == \
                       (y[tr].sum(), y[te].sum(), tr.sum(), te.sum()), m
                lack = [h for h, part in (("train", tr), ("test", te)) if y[part].sum() in (0, part.sum())]
                if lack:
                    assert "skipped" in m and lack[0] in m["skipped"] and "ap" not in m, m
                    skipped += 1
                    nskip += 1
                    continue
                aps = np.array([[average_precision_score(y[tr], sg * S[j][tr]) for sg in (1, -1)] for j in range(len(S))])
                j, sg = m["direction"] - 1, m["sign"]
                mine = aps[j, 0 if sg == 1 else 1]
                assert abs(mine - aps.max()) <= 1e-13, f"{name}: chose AP {mine}, best {aps.max()}"
                assert abs(m["train_ap"] - mine) <= 1e-13, m
                order = np.argsort(-aps.ravel(), kind="stable")
                if aps.ravel()[order[0]] - aps.ravel()[order[1]] > 1e-12:
                    assert (j, sg) == (order[0] // 2, 1 if order[0] % 2 == 0 else -1), (name, m, order[0])
                else:
                    ntie += 1
                want, _ = metrics(sg * S[j][te], y[te])
                for key, v in want.items():
                    assert abs(m[key] - v) <= 1e-13 * (te.sum() if key == "enrichment" else 1), (name, key, m[key], v)
                assert abs(m["prevalence"] - y[te].mean()) <= 1e-15
                tests.append(want)
                nlab += 1
            mc = macros[group]
            assert (mc["labels"], mc["skipped"]) == (len(tests), skipped), mc
            for key in ("ap", "auroc", "precision_at_quota", "enrichment"):
                if tests:
                    v = np.mean([t[key] for t in tests])
                    assert abs(mc[key] - v) <= 1e-13 * max(1, abs(v)), (group, key, mc[key], v)
                else:
                    assert key not in mc
            nmacro += 1
        assert at == len(recs), (at, len(recs))
    print(f"ok labels: {len(lst)} scores streams, split = the README's (stratified, floor half to train), "
          f"{nlab} labels (chosen direction and sign = best sklearn train AP{f', {ntie} near ties' if ntie else ''}; "
          f"test AP/AUROC/precision@quota/enrichment equal), {nskip} skipped as expected, {nmacro} macro averages")


def craft_labels(wpath, spath, N, K, seed, wkey, scores_n):
    rng = np.random.default_rng(seed)
    names = "A B C D".split()
    cls = rng.choice(4, N, p=[0.4, 0.3, 0.2, 0.1]).astype(np.int32)
    cls[:4] = [0, 1, 2, 3]
    F = np.zeros((N, 3), np.uint8)
    F[:, 0] = rng.random(N) < 0.3
    F[:, 1] = (cls == 1) & (rng.random(N) < 0.7)
    F[int(np.flatnonzero(cls == 2)[0]), 2] = 1                   # one positive: one half has none
    key = "%032x" % rng.integers(0, 2**62)
    with open(wpath, "wb") as f:
        write_stream(f, "score_ref", key, [tensor_frame("labels", cls, {"names": " ".join(names)}),
                                           tensor_frame("feature_labels", F, {"names": "R=1 B=70 One=1"})])
    M = scores_n or N
    body = []
    S = rng.normal(size=(K, M))
    S[1] += 1.5 * (cls[:M] == 0)                                # direction 2 finds class A
    S[3] -= 1.0 * F[:M, 1]                                      # direction 4, negated, finds B=70
    S[4] = np.round(S[4])                                       # ties
    S[5] = 0.0                                                  # all tied
    S[6] = S[1]                                                 # an exact duplicate of direction 2
    meta = {"method": "entk", "layer": 7, "model": "6" * 32, "windows": wkey or key,
            "values": list(np.linspace(2, 1, K)), "values_are": "eigenvalue"}
    body.append(tensor_frame("scores", S, meta))
    with open(spath, "wb") as f:
        write_stream(f, "score_ref", "7" * 32, body)


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "craft-metrics":
        craft_metrics(a[0])
    elif cmd == "check-metrics":
        check_metrics(a[0], a[1])
    elif cmd == "craft-rank1":
        craft_rank1(a[0], int(a[1]), int(a[2]), int(a[3]))
    elif cmd == "check-rank1":
        check_rank1(a[0], a[1])
    elif cmd == "craft-resid":
        craft_resid(a[0], int(a[1]), int(a[2]), int(a[3]))
    elif cmd == "check-pca":
        check_pca(a[0], a[1])
    elif cmd == "craft-labels":
        opts = dict(zip(a[5::2], a[6::2]))
        craft_labels(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), opts.get("--windows-key"),
                     int(opts["--scores-n"]) if "--scores-n" in opts else None)
    elif cmd == "check-labels":
        check_labels(a[0], a[1], a[2], int(a[3]))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
