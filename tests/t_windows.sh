#!/usr/bin/env bash
# entk-windows and pipelines/lm-windows: the TinyStories window data set of Setting 3.
# Runs the pipeline (tagger, tags, windows for stories260K), then checks in Python, from the tag
# frames, an independent tokenization (entk-tokenize, whose ids are compared with a Python port of
# llama2.c's encoder on a sample of stories) and the raw file: every window is the T tokens right
# before its word (no BOS, pieces spell the text up to the word), the candidate counts follow the
# single-word rule, class caps, kept labels = the tagger's tags of the true words, feature labels
# = all values with support >= 30; the agreement filter is replayed for a sample of kept and
# dropped windows with entk-forward --generate and entk-tag on the decoded text; determinism,
# parameters, the Gemma 3 path (random tiny model with the real tokenizer) and bad input.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TS=$SHARED/data/tinystories/tinystories_sample.txt
S260=$SHARED/models/stories260K
PEER=$ROOT/tests/peer
O=$T/pipe
W=$O/stories260K

if entk-windows --help | grep -q '^Example' && entk-windows --help | grep -q 'entk-windows -m'; then
    pass "help shows an example"
else
    fail "help shows an example" "missing"
fi

# ---- the pipeline: tagger, tags, windows (stories260K)
t0=$(date +%s.%N)
check "make pipelines/lm-windows runs (stories260K)" make -s -C "$ROOT/pipelines/lm-windows" OUT="$O" BIN="$BIN"
echo "INFO pipeline took $(echo "$(date +%s.%N) - $t0" | bc) s"
check "second make has nothing to do" make -q -C "$ROOT/pipelines/lm-windows" OUT="$O" BIN="$BIN"
check "stats.tsv has the 8 classes and a total" test "$(grep -cE '^(PUNCT|PRON|PROPN|DET|ADV|CCONJ|NOUN|VERB|all)\b' "$W/stats.tsv")" = 9
check "stats on stderr (windows.log): per-class table and the filter summary" \
    bash -c "grep -qE 'entk-windows: VERB +[0-9]+' '$W/windows.log' && grep -q 'agreement filter: kept' '$W/windows.log'"
sed 's/^/INFO stats: /' "$W/stats.tsv" | tr '\t' ' '
sed 's/^/INFO labels: /' "$W/labels.tsv" | tr '\t' ' '
grep 'agreement filter' "$W/windows.log" | sed 's/^/INFO /'

# wcheck.py: the checks of a window stream against the tag frames and an independent tokenization
# of the same texts (entk-tag's stories, written out one per <|endoftext|> line)
cat >"$T/wcheck.py" <<'EOF'
"""Checks entk-windows output against tag frames and an independent tokenization.
  wcheck.py texts TAGS OUT.txt                   write the tagged texts separated by <|endoftext|> lines
  wcheck.py check TAGS TOK VOCAB STORIES T CAP MIN_SUPPORT KEPT [REJECTED]"""
import json, sys
sys.path.insert(0, sys.argv[0].rsplit('/', 1)[0])
from entkio import frames, tokenizer_bin

def read_tags(path):
    texts, offs, upos, feats, tagset = [], [], [], [], None
    for fr in frames(path):
        if fr["kind"] == "record" and fr["name"] == "tagset": tagset = fr["meta"]
        if fr["kind"] != "tensor": continue
        a = fr.get("array")
        if fr["name"] == "text": texts.append(a.tobytes())
        elif fr["name"] == "offsets": offs.append(a.copy())
        elif fr["name"] == "upos": upos.append(a.copy())
        elif fr["name"] == "feats": feats.append(a.copy())
    return texts, offs, upos, feats, tagset

mode = sys.argv[1]
if mode == "texts":
    texts = read_tags(sys.argv[2])[0]
    open(sys.argv[3], "wb").write(b"".join(t + b"\n<|endoftext|>\n" for t in texts))
    sys.exit(0)

tags, tokp, vocabp, storiesp = sys.argv[2:6]
T, CAP, MINSUP = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
texts, woffs, wupos, wfeats, tagset = read_tags(tags)
raw = open(storiesp, "rb").read()
UPOS = tagset["upos"].split()
FEATS = tagset["features"].split()
VALUES = [tagset["values_" + f].split() for f in FEATS]

# the tokenization (entk-tokenize frames of texts.txt: one 'ids' and 'offsets' per text)
tids, toffs = [], []
for fr in frames(tokp):
    if fr["kind"] == "tensor" and fr["name"] == "ids": tids.append(fr["array"].astype(int).tolist())
    if fr["kind"] == "tensor" and fr["name"] == "offsets": toffs.append(fr["array"].tolist())
assert len(tids) == len(texts), f"{len(tids)} tokenized texts, {len(texts)} tagged"

# token pieces as bytes, for spelling windows
if vocabp.endswith(".json"):
    import os, pickle
    cached = os.path.join(os.path.dirname(sys.argv[0]), "pieces.pickle")   # the 33 MB JSON loads slowly
    if os.path.exists(cached):
        pieces = pickle.load(open(cached, "rb"))
    else:
        tj = json.load(open(vocabp, encoding="utf-8"))
        pieces = {}
        for p, i in tj["model"]["vocab"].items():
            if len(p) == 6 and p.startswith("<0x") and p.endswith(">"): pieces[i] = bytes([int(p[3:5], 16)])
            else: pieces[i] = p.replace("\u2581", " ").encode()
        pickle.dump(pieces, open(cached, "wb"))
    BOS, dummy = 2, False
else:
    pieces = {}
    for i, p in enumerate(tokenizer_bin(vocabp)[0]):
        p = p.split(b"\0")[0]
        pieces[i] = bytes([int(p[3:5], 16)]) if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">") else p
    BOS, dummy = 1, True

def isws(b): return all(c in b" \t\n\r\f\v" for c in b)

import bisect
_ends = {}
def first_token(s, start):
    """index of the first non-empty token of text s ending after byte start"""
    if s not in _ends:
        ne = [(b, k) for k, (a, b) in enumerate(toffs[s]) if b > a]
        _ends[s] = ([b for b, k in ne], [k for b, k in ne])
    ends, idx = _ends[s]
    j = bisect.bisect_right(ends, start)
    return idx[j] if j < len(idx) else len(toffs[s])

# independent count of the candidate rule per class
def classify(s, w):
    """'unaligned', 'early' or the first token index"""
    text, offs = texts[s], toffs[s]
    ws, we = woffs[s][w]
    prev_end = woffs[s][w - 1][1] if w else 0
    next_start = woffs[s][w + 1][0] if w + 1 < len(woffs[s]) else len(text)
    k = first_token(s, ws)
    if k == len(offs) or not (prev_end <= offs[k][0] <= ws) or not isws(text[offs[k][0]:ws]): return "unaligned"
    q = k
    while q + 1 < len(offs) and offs[q + 1][0] < we: q += 1
    e = offs[q][1]
    if e < we or e > next_start or not isws(text[we:e]): return "unaligned"
    return "early" if k < T else k

def load_windows(path):
    d, meta = {}, {}
    for fr in frames(path):
        if fr["kind"] == "record" and fr["name"] == "window_stats": meta = fr["meta"]
        if fr["kind"] == "tensor": d[fr["name"]] = fr
    return d, meta

errors = []
def err(msg):
    if len(errors) < 10: errors.append(msg)

kept, stats = load_windows(sys.argv[9])
rej = load_windows(sys.argv[10])[0] if len(sys.argv) > 10 else None
classes = kept["labels"]["meta"]["names"].split()
cls_upos = [UPOS.index(c) for c in classes]

# stats: words per class and the single-word rule, recounted
counts = {c: {"words": 0, "unaligned": 0, "early": 0, "candidates": 0} for c in range(len(classes))}
for s in range(len(texts)):
    for w in range(len(woffs[s])):
        u = int(wupos[s][w])
        if u not in cls_upos: continue
        c = cls_upos.index(u)
        counts[c]["words"] += 1
        r = classify(s, w)
        counts[c][r if isinstance(r, str) else "candidates"] += 1
for c in range(len(classes)):
    for key in ("words", "unaligned", "early", "candidates"):
        if stats[key][c] != counts[c][key]: err(f"{classes[c]}: {key} {stats[key][c]} != recount {counts[c][key]}")

def check_set(d, is_kept):
    W = d["windows"]["array"]; P = d["provenance"]["array"]; L = d["labels"]["array"]
    NT = d["next_token"]["array"]; PR = d["predicted"]["array"]
    assert W.shape[1] == T, W.shape
    names = d["feature_labels"]["meta"]["names"].split()
    F = d["feature_labels"]["array"]
    for i in range(len(W)):
        s, start, end, wstart, token, foff = (int(x) for x in P[i])
        text, offs, ids = texts[s], toffs[s], tids[s]
        wl = [j for j, (a, b) in enumerate(woffs[s].tolist()) if a == start and b == end]
        if len(wl) != 1: err(f"window {i}: no tagged word at story {s} [{start},{end})"); continue
        w = wl[0]
        k = classify(s, w)
        if not isinstance(k, int): err(f"window {i}: word is {k}"); continue
        if token != k: err(f"window {i}: token {token}, independently {k}")
        if list(W[i]) != ids[k - T:k]: err(f"window {i}: ids are not the {T} tokens before the word")
        if BOS in W[i]: err(f"window {i}: contains BOS")
        if NT[i] != ids[k]: err(f"window {i}: next_token {NT[i]} != {ids[k]}")
        if wstart != offs[k - T][0]: err(f"window {i}: window_start {wstart} != {offs[k - T][0]}")
        spelled = b"".join(pieces[t] for t in W[i])
        want = text[offs[k - T][0]:offs[k][0]]
        if not (spelled == want or (dummy and k == T and spelled == b" " + want)):
            err(f"window {i}: pieces spell {spelled[-40:]!r}, text {want[-40:]!r}")
        if raw[foff:foff + end - start] != text[start:end]: err(f"window {i}: file_offset {foff} does not hold the word")
        if UPOS[int(wupos[s][w])] != classes[L[i]]: err(f"window {i}: label {classes[L[i]]} but the tagger says {UPOS[int(wupos[s][w])]}")
        agree = PR[i] == cls_upos[L[i]]
        if agree != is_kept: err(f"window {i}: predicted {PR[i]}, label {classes[L[i]]}, kept={is_kept}")
        for l, nm in enumerate(names):
            f, v = nm.split("=")
            q = FEATS.index(f)
            if F[i][l] != (VALUES[q][int(wfeats[s][w][q])] == v): err(f"window {i}: feature label {nm} wrong")
    return L

L = check_set(kept, True)
n = [int((L == c).sum()) for c in range(len(classes))]
for c in range(len(classes)):
    if CAP and n[c] > CAP: err(f"{classes[c]}: {n[c]} windows > cap {CAP}")
    if stats["kept"][c] != n[c]: err(f"{classes[c]}: stats kept {stats['kept'][c]} != {n[c]} windows")
    if stats["examined"][c] != stats["kept"][c] + stats["dropped"][c]: err(f"{classes[c]}: examined != kept + dropped")
    if (not CAP or n[c] < CAP) and stats["examined"][c] != stats["candidates"][c]:
        err(f"{classes[c]}: {n[c]} windows, under the cap, but only {stats['examined'][c]} of {stats['candidates'][c]} candidates examined")
if rej is not None:
    LR = check_set(rej, False)
    for c in range(len(classes)):
        if stats["dropped"][c] != int((LR == c).sum()): err(f"{classes[c]}: stats dropped != rejected windows")
# feature labels: exactly the values with support >= MINSUP among the kept windows
sup = {}
P = kept["provenance"]["array"]
for i in range(len(P)):
    s, start = int(P[i][0]), int(P[i][1])
    w = [j for j, (a, b) in enumerate(woffs[s].tolist()) if a == start][0]
    for q, f in enumerate(FEATS):
        v = int(wfeats[s][w][q])
        if v: sup[f + "=" + VALUES[q][v]] = sup.get(f + "=" + VALUES[q][v], 0) + 1
want = sorted(k for k, x in sup.items() if x >= MINSUP)
names = kept["feature_labels"]["meta"]["names"].split()
if sorted(names) != want: err(f"feature labels {names} != values with support >= {MINSUP}: {want}")
got_sup = list(kept["feature_labels"]["meta"].get("support", []))
if [sup.get(nm, 0) for nm in names] != got_sup: err(f"support meta {got_sup} wrong")
if kept["feature_labels"]["array"].sum(axis=0).tolist() != got_sup: err("support != column sums")
if errors:
    print("\n".join(errors)); sys.exit(1)
print(f"ok: {len(L)} kept" + (f", {len(rej['labels']['array'])} rejected" if rej else "") + f", {len(names)} feature labels")
EOF

tok_texts() {   # tok_texts TAGS TOKENIZER OUT [--no-bos]: the tagged texts through entk-tokenize
    $PY "$T/wcheck.py" texts "$1" "$T/texts.txt" && entk-tokenize -q -t "$2" --no-bos --delim '<|endoftext|>' "$T/texts.txt" -o "$3"
}
export -f tok_texts
export T PY
cp "$PEER/entkio.py" "$T/"
check "tokenize the tagged stories independently (entk-tokenize)" tok_texts "$O/tags.frames" "$S260/tok512.bin" "$T/tok.frames"

# entk-tokenize's ids against the Python port of llama2.c's encoder, on the stories of a sample of windows
$PY - "$T/texts.txt" "$T/tok.frames" "$S260/tok512.bin" "$W/windows.frames" >"$T/port.out" 2>&1 <<EOF
import sys; sys.path.insert(0, "$T"); sys.path.insert(0, "$PEER")
from entkio import frames
import llama2_encode as le
texts = open(sys.argv[1], "rb").read().split(b"\n<|endoftext|>\n")[:-1]
ids = [fr["array"].tolist() for fr in frames(sys.argv[2]) if fr["kind"] == "tensor" and fr["name"] == "ids"]
vocab, scores = le.load(sys.argv[3]); lookup = {}
for i, v in enumerate(vocab): lookup.setdefault(v, i)
P = [fr["array"] for fr in frames(sys.argv[4]) if fr["kind"] == "tensor" and fr["name"] == "provenance"][0]
stories = sorted(set(int(s) for s in P[::40, 0]))
bad = [s for s in stories if le.encode(texts[s], vocab, scores, lookup, False, False) != ids[s]]
print(f"{len(stories)} stories, {len(bad)} differ: {bad[:5]}")
sys.exit(1 if bad or not stories else 0)
EOF
[ $? = 0 ] && pass "entk-tokenize = Python llama2.c encoder on the windows' stories ($(cat "$T/port.out"))" || fail "entk-tokenize = Python llama2.c encoder" "$(tail -3 "$T/port.out")"

if $PY "$T/wcheck.py" check "$O/tags.frames" "$T/tok.frames" "$S260/tok512.bin" "$TS" 64 128 30 "$W/windows.frames" "$W/rejected.frames" >"$T/check.out" 2>&1; then
    pass "stories260K: windows = the 64 tokens before the word, no BOS; counts, caps, labels, feature labels ($(cat "$T/check.out"))"
else
    fail "stories260K: windows, counts, caps, labels, feature labels" "$(tail -5 "$T/check.out" | tr '\n' ' ')"
fi
check "stories260K: 128 windows in every class" $PY -c "
import sys; sys.path.insert(0, '$PEER'); from entkio import frames
import numpy as np
L = [f['array'] for f in frames('$W/windows.frames') if f['kind'] == 'tensor' and f['name'] == 'labels'][0]
sys.exit(0 if np.bincount(L, minlength=8).tolist() == [128] * 8 else 1)"
check "the filter dropped windows (rejected.frames is not empty)" $PY -c "
import sys; sys.path.insert(0, '$PEER'); from entkio import frames
L = [f['array'] for f in frames('$W/rejected.frames') if f['kind'] == 'tensor' and f['name'] == 'labels'][0]
sys.exit(0 if len(L) > 100 else 1)"

# ---- the agreement filter replayed: entk-forward's greedy tokens, entk-tag's tag of the decoded word
cat >"$T/replay.py" <<'EOF'
"""replay.py prep KEPT REJ VOCAB N IDS META | tag1 META TSV1 CUT | tag2 META TSV2 GEN"""
import json, sys
sys.path.insert(0, sys.argv[0].rsplit('/', 1)[0])
from entkio import frames, tokenizer_bin
mode = sys.argv[1]
SEP = b"\n<|endoftext|>\n"
def tsv_words(path, lengths):
    """per text (written one after the other, each followed by SEP): [(start, end, upos)] relative
    to the text's start (entk-tag --stories trims the texts; its offsets are in the input)"""
    ustart, pos = [], 0
    for n in lengths: ustart.append(pos); pos += n + len(SEP)
    out = []
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith("# text "):
            out.append([])
        elif line.strip() and not line.startswith("#"):
            a, b, w, u = line.rstrip("\n").split("\t")[:4]
            i = len(out) - 1
            out[i].append((int(a) - ustart[i], int(b) - ustart[i], u))
    return out
if mode == "prep":
    kept, rej, vocabp, n, idsp, metap = sys.argv[2:8]
    n = int(n)
    pieces = []
    for p in tokenizer_bin(vocabp)[0]:
        p = p.split(b"\0")[0]
        pieces.append(bytes([int(p[3:5], 16)]) if len(p) == 6 and p.startswith(b"<0x") else p)
    def dec(ids):   # run.c's decode: the first piece loses its leading space
        out = b""
        for j, t in enumerate(ids):
            p = pieces[t]
            if j == 0 and p.startswith(b" "): p = p[1:]
            out += p
        return out
    rows, texts = [], []
    for path in (kept, rej):
        d = {f["name"]: f for f in frames(path) if f["kind"] == "tensor"}
        W, G, PR = d["windows"]["array"], d["generated"]["array"], d["predicted"]["array"]
        names = d["predicted"]["meta"]["names"].split()
        step = max(1, len(W) // n)
        for i in range(0, len(W), step)[:n]:
            g = [int(t) for t in G[i] if t >= 0]
            ctx, full = dec(W[i].tolist()), dec(W[i].tolist() + g)
            rows.append({"ids": W[i].tolist(), "gen": g, "pred": names[PR[i]] if PR[i] >= 0 else None,
                         "ctx": len(ctx), "full": full.decode("latin-1")})
    open(idsp, "w").write(";".join(",".join(map(str, r["ids"])) for r in rows))
    json.dump(rows, open(metap, "w"))
    open(metap + ".txt", "wb").write(b"".join(r["full"].encode("latin-1") + SEP for r in rows))
elif mode == "tag1":
    metap, tsv, cut = sys.argv[2:5]
    rows = json.load(open(metap))
    words = tsv_words(tsv, [len(r["full"]) for r in rows])
    assert len(words) == len(rows), (len(words), len(rows))
    out = []
    for r, ws in zip(rows, words):
        full = r["full"].encode("latin-1")
        w = [x for x in ws if x[1] > r["ctx"]]
        if not w or w[0][0] < r["ctx"]: r["want"] = None; r["end"] = None; out.append(full)
        else: r["want"] = "?"; r["end"] = w[0][1]; out.append(full[:w[0][1]])
        r["cutlen"] = len(out[-1])
    json.dump(rows, open(metap, "w"))
    open(cut, "wb").write(b"".join(t + SEP for t in out))
elif mode == "tag2":
    metap, tsv, genp = sys.argv[2:5]
    rows = json.load(open(metap))
    words = tsv_words(tsv, [r["cutlen"] for r in rows])
    gen = [f["array"] for f in frames(genp) if f["kind"] == "tensor" and f["name"] == "generated"]
    import numpy as np
    gen = np.concatenate(gen).tolist()
    bad = []
    for i, (r, ws) in enumerate(zip(rows, words)):
        g, ref = r["gen"], gen[i]
        if ref[:len(g)] != g: bad.append(f"row {i}: generated {g} but entk-forward {ref[:len(g)]}")
        if r["want"] is not None:
            last = [u for a, b, u in ws if b == r["end"]]
            r["want"] = last[0] if last else "missing"
        if r["want"] != r["pred"]: bad.append(f"row {i}: entk-windows predicted {r['pred']}, replay {r['want']}")
    npred = sum(r["pred"] is not None for r in rows)
    print(f"{len(rows)} windows replayed ({npred} with a word)"); print("\n".join(bad[:8]))
    sys.exit(1 if bad else 0)
EOF
replay() {
    $PY "$T/replay.py" prep "$W/windows.frames" "$W/rejected.frames" "$S260/tok512.bin" 40 "$T/rp.ids" "$T/rp.json" &&
    entk-forward -q -m "$S260/stories260K.bin" --ids @"$T/rp.ids" --generate 8 -o "$T/rp.gen" &&
    entk-tag tag -q -m "$O/ud.tag" --stories --tsv "$T/rp.json.txt" -o "$T/rp1.tsv" &&
    $PY "$T/replay.py" tag1 "$T/rp.json" "$T/rp1.tsv" "$T/rp.cut" &&
    entk-tag tag -q -m "$O/ud.tag" --stories --tsv "$T/rp.cut" -o "$T/rp2.tsv" &&
    $PY "$T/replay.py" tag2 "$T/rp.json" "$T/rp2.tsv" "$T/rp.gen"
}
if replay >"$T/replay.out" 2>&1; then
    pass "agreement filter replayed on kept and dropped windows: entk-forward tokens, entk-tag UPOS ($(head -1 "$T/replay.out"))"
else
    fail "agreement filter replayed" "$(tail -6 "$T/replay.out" | tr '\n' ' ')"
fi

# ---- a 300-story subset: determinism, batching, seed, parameters, --no-filter
$PY - "$TS" "$T/s300.txt" <<'EOF'
import sys
s = open(sys.argv[1], "rb").read().split(b"<|endoftext|>\n")
open(sys.argv[2], "wb").write(b"".join(x + b"<|endoftext|>\n" for x in s[:300]))
EOF
entk-tag tag -q -m "$O/ud.tag" --stories "$T/s300.txt" -o "$T/t300.frames"
M=(-m "$S260/stories260K.bin" -t "$S260/tok512.bin" --tagger "$O/ud.tag")
entk-windows -q "${M[@]}" --per-class 24 -o "$T/a.frames" "$T/t300.frames"
entk-windows -q "${M[@]}" --per-class 24 -o "$T/b.frames" <"$T/t300.frames"
entk-windows -q "${M[@]}" --per-class 24 --batch 5 -o "$T/c.frames" "$T/t300.frames"
entk-windows -q "${M[@]}" --per-class 24 --seed 7 -o "$T/d.frames" "$T/t300.frames"
entk-windows -q "${M[@]}" --per-class 24 -o "$T/a2.frames" "$T/t300.frames"
check "deterministic: the same run twice gives identical bytes" cmp "$T/a.frames" "$T/a2.frames"
check "reading the tags from stdin gives the same frames" diff <(entk-show --data "$T/a.frames" | tail -n +2) <(entk-show --data "$T/b.frames" | tail -n +2)
check "the batch size does not change the result" cmp "$T/a.frames" "$T/c.frames"
check "another seed samples other windows" bash -c "! cmp -s <(entk-show --name provenance --data '$T/a.frames') <(entk-show --name provenance --data '$T/d.frames')"
check "tokenize the 300 stories" tok_texts "$T/t300.frames" "$S260/tok512.bin" "$T/tok300.frames"
check "--seed 7: windows, counts, caps and labels check out" $PY "$T/wcheck.py" check "$T/t300.frames" "$T/tok300.frames" "$S260/tok512.bin" "$T/s300.txt" 64 24 30 "$T/d.frames"
check "--window 32 --per-class 10 --classes NOUN,VERB --min-support 5 --context rest" bash -c "
    entk-windows -q ${M[*]} --window 32 --per-class 10 --classes NOUN,VERB --min-support 5 --context rest -o '$T/e.frames' '$T/t300.frames' &&
    $PY '$T/wcheck.py' check '$T/t300.frames' '$T/tok300.frames' '$S260/tok512.bin' '$T/s300.txt' 32 10 5 '$T/e.frames' &&
    test \"\$(entk-show --name windows '$T/e.frames' | grep -o '\"shape\":\[[0-9,]*\]')\" = '\"shape\":[20,32]'"
check "--no-filter: the first candidates of each class, nothing examined by the model" bash -c "
    entk-windows -q ${M[*]} --no-filter --per-class 50 -o '$T/f.frames' '$T/t300.frames' &&
    $PY '$T/wcheck.py' check '$T/t300.frames' '$T/tok300.frames' '$S260/tok512.bin' '$T/s300.txt' 64 50 30 '$T/f.frames' &&
    entk-show --name window_stats --fields kept,dropped '$T/f.frames' | grep -qx '\[50,50,50,50,50,50,50,50\]	\[0,0,0,0,0,0,0,0\]' &&
    ! entk-show '$T/f.frames' | grep -q '\"name\":\"generated\"'"
check "--per-class 0: every agreeing candidate (stories 0-7)" bash -c "
    $PY -c \"import sys; s=open('$TS','rb').read().split(b'<|endoftext|>\n'); open('$T/s8.txt','wb').write(b''.join(x+b'<|endoftext|>\n' for x in s[:8]))\" &&
    entk-tag tag -q -m '$O/ud.tag' --stories '$T/s8.txt' -o '$T/t8.frames' &&
    entk-windows -q ${M[*]} --per-class 0 -o '$T/g.frames' '$T/t8.frames' && tok_texts '$T/t8.frames' '$S260/tok512.bin' '$T/tok8.frames' &&
    $PY '$T/wcheck.py' check '$T/t8.frames' '$T/tok8.frames' '$S260/tok512.bin' '$T/s8.txt' 64 0 30 '$T/g.frames'"

# ---- Gemma 3: a random tiny model with the real tokenizer's vocabulary (262144)
if GEMMA_TOK=$("$PEER/fetch-gemma-tokenizer.sh" --offline 2>"$T/fetch.err"); then
    G=$T/gemma
    entk-mkgemma -q -o "$G" --preset tiny --vocab 262144 --seed 3 && cp "$GEMMA_TOK" "$G/tokenizer.json"
    check "Gemma 3 dir (tokenizer.json inside): windows with the filter" \
        entk-windows -q -m "$G" --tagger "$O/ud.tag" --per-class 3 --gen-tokens 3 -o "$T/gf.frames" "$T/t8.frames"
    check "Gemma 3: --no-filter windows" entk-windows -q -m "$G" -t "$GEMMA_TOK" --tagger "$O/ud.tag" --no-filter --per-class 40 -o "$T/gn.frames" "$T/t8.frames"
    check "tokenize the 8 stories with the Gemma 3 tokenizer" tok_texts "$T/t8.frames" "$GEMMA_TOK" "$T/gtok.frames"
    check "Gemma 3: windows = the 64 tokens before the word (no <bos>), counts, labels (filter)" \
        $PY "$T/wcheck.py" check "$T/t8.frames" "$T/gtok.frames" "$GEMMA_TOK" "$T/s8.txt" 64 3 30 "$T/gf.frames"
    check "Gemma 3: windows = the 64 tokens before the word (no <bos>), counts, labels (no filter)" \
        $PY "$T/wcheck.py" check "$T/t8.frames" "$T/gtok.frames" "$GEMMA_TOK" "$T/s8.txt" 64 40 30 "$T/gn.frames"
    check "make pipelines/lm-windows MODEL=<Gemma 3 dir> (tokenizer.json inside; tagger and tags reused)" \
        make -s -C "$ROOT/pipelines/lm-windows" OUT="$O" BIN="$BIN" MODEL="$G" PER_CLASS=2 GEN_TOKENS=2 CLASSES=NOUN,PUNCT
    check "... its stats.tsv: NOUN and PUNCT, at most 2 kept each, tags not rebuilt" bash -c "
        awk -F'\t' '\$1 == \"NOUN\" || \$1 == \"PUNCT\" { n++; if (\$9 > 2) bad = 1 } END { exit !(n == 2 && !bad) }' '$O/gemma/stats.tsv' &&
        test '$O/tags.frames' -ot '$O/stories260K/windows.frames' && test -s '$O/gemma/windows.frames'"
    check_fails "Gemma tokenizer with the stories260K model: exit 3" 3 'outside the model.s vocabulary' \
        entk-windows -m "$S260/stories260K.bin" -t "$GEMMA_TOK" --tagger "$O/ud.tag" "$T/t8.frames"
    check_fails "tok512 with a Gemma 3 model: exit 3" 3 'not the model.s tokenizer' \
        entk-windows -m "$G" -t "$S260/tok512.bin" --tagger "$O/ud.tag" "$T/t8.frames"
else
    echo "INFO skip Gemma 3 path: no Gemma 3 tokenizer.json ($(cat "$T/fetch.err"))"
fi

# ---- bad input
check_fails "unknown option: exit 2" 2 'unknown option' entk-windows --frob "${M[@]}" "$T/t8.frames"
check_fails "unknown class: exit 2" 2 "class 'NOUNS' is not a UPOS tag" entk-windows "${M[@]}" --classes NOUN,NOUNS "$T/t8.frames"
check_fails "bad --context: exit 2" 2 'context must be word or rest' entk-windows "${M[@]}" --context left "$T/t8.frames"
check_fails "missing --tagger: exit 2" 2 'tagger is required' entk-windows -m "$S260/stories260K.bin" -t "$S260/tok512.bin" "$T/t8.frames"
check_fails "text instead of tag frames: exit 3" 3 's8\.txt' entk-windows "${M[@]}" -o "$T/x.frames" "$T/s8.txt"
check "... and no output file is left behind" test ! -e "$T/x.frames"
head -c $(( $(stat -c %s "$T/t8.frames") / 2 )) "$T/t8.frames" >"$T/cut.frames"
check_fails "truncated tag frames: exit 3" 3 'cut\.frames' entk-windows "${M[@]}" "$T/cut.frames"
check_fails "token frames instead of tag frames: exit 3" 3 'not the output of entk-tag tag|before any text' entk-windows "${M[@]}" "$T/tok8.frames"
entk-tag train -q -o "$T/small.tag" "$SHARED/data/ud/childes-Violet_Providence_eud_gold.conllu" 2>/dev/null
check_fails "a tagger with another tag set than the tags: exit 3" 3 'tagged with (another|other)' \
    entk-windows -m "$S260/stories260K.bin" -t "$S260/tok512.bin" --tagger "$T/small.tag" "$T/t8.frames"
check_fails "a tokenizer as the tagger: exit 3" 3 'tok512\.bin: not an entk-tag model' \
    entk-windows -m "$S260/stories260K.bin" -t "$S260/tok512.bin" --tagger "$S260/tok512.bin" "$T/t8.frames"
check_fails "a tokenizer as the model: exit 3" 3 'tok512\.bin: not a llama2\.c checkpoint' \
    entk-windows -m "$S260/tok512.bin" -t "$S260/tok512.bin" --tagger "$O/ud.tag" "$T/t8.frames"
check_fails "missing model: exit 3" 3 'nonexistent' entk-windows -m "$T/nonexistent.bin" -t "$S260/tok512.bin" --tagger "$O/ud.tag" "$T/t8.frames"
check_fails "a tagger model as the tokenizer: exit 3" 3 'ud\.tag: not a llama2\.c tokenizer' entk-windows -m "$S260/stories260K.bin" -t "$O/ud.tag" --tagger "$O/ud.tag" "$T/t8.frames"
