#!/usr/bin/env bash
# entk-tag: the averaged-perceptron tagger. Trains on the shared UD treebanks with every 10th
# sentence held out and checks held-out accuracy; recomputes the accuracies in Python from
# `tag --conllu` output; checks the word splitter against the treebanks' own tokenization and the
# `tag` frames and TSV on the TinyStories sample (offsets, texts, stories); bad input errors.
. "$(dirname "$0")/lib.sh"
UD=$SHARED/data/ud
TS=$SHARED/data/tinystories/tinystories_sample.txt
UDFILES=("$UD"/*.conllu)

if entk-tag --help | grep -q '^Example' && entk-tag train --help | grep -q 'entk-tag train -o' &&
    entk-tag eval --help | grep -q 'entk-tag eval -m' && entk-tag tag --help | grep -q 'entk-tag tag -m'; then
    pass "help of entk-tag and of each command shows an example"
else
    fail "help of entk-tag and of each command shows an example" "missing"
fi

# ---- train on 9/10 of the sentences of every file, evaluate on the other 1/10
t0=$(date +%s.%N)
check "train on the shared UD files, every 10th sentence held out" \
    entk-tag train -q -o "$T/held.tag" --holdout 10 "${UDFILES[@]}"
echo "INFO training with --holdout 10 took $(echo "$(date +%s.%N) - $t0" | bc) s"

entk-tag eval -q -m "$T/held.tag" --holdout 10 -o "$T/eval.frames" "${UDFILES[@]}" >"$T/eval.txt" 2>"$T/eval.err"
if grep -q '^UPOS accuracy' "$T/eval.txt" && grep -q '^XPOS accuracy' "$T/eval.txt" &&
    grep -q '^UPOS per class' "$T/eval.txt" && grep -q '^XPOS per class' "$T/eval.txt" &&
    grep -q '^UPOS confusion matrix' "$T/eval.txt" && grep -qE '^  Number +[0-9.]+%' "$T/eval.txt"; then
    pass "eval prints accuracy, per-class tables, feature accuracy and the confusion matrix"
else
    fail "eval prints accuracy, per-class tables, feature accuracy and the confusion matrix" "$(head -c 300 "$T/eval.txt") $(cat "$T/eval.err")"
fi
grep -E '^(UPOS|XPOS) accuracy|^features:|^  (Case|Definite|Gender|Mood|Number|Person|PronType|Tense|VerbForm) ' \
    "$T/eval.txt" | sed 's/^/INFO held-out: /'
sed -n '/^UPOS per class/,/^$/p;/^UPOS confusion/,$p' "$T/eval.txt" | sed 's/^/INFO /'

# The accuracies again, computed in Python from the gold files and `tag --conllu` predictions.
# (the files go through one run as one stream, so sentence order tells which file a sentence is from)
ok=1
cat "${UDFILES[@]}" | entk-tag tag -q -m "$T/held.tag" --conllu - -o "$T/pred.conllu" || ok=0
read -r upos xpos feats < <(entk-show --name tag_eval --fields upos_accuracy,xpos_accuracy,features_all_accuracy "$T/eval.frames")
if [ $ok = 1 ] && $PY - "$T/pred.conllu" "$upos" "$xpos" "$feats" "${UDFILES[@]}" >"$T/acc.out" 2>&1 <<'EOF'
import sys
pred_path, e_upos, e_xpos, e_feats = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
FEATS = "Case Definite Gender Mood Number Person PronType Tense VerbForm".split()
PENN = set("# $ '' , -LRB- -RRB- . : ADD AFX CC CD DT EX FW GW HYPH IN JJ JJR JJS LS MD NFP NN NNP NNPS "
           "NNS PDT POS PRP PRP$ RB RBR RBS RP SYM TO UH VB VBD VBG VBN VBP VBZ WDT WP WP$ WRB XX ``".split())

def sentences(path):
    sent = []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            if sent: yield sent
            sent = []
        elif not line.startswith("#"):
            c = line.split("\t")
            if "-" in c[0] or "." in c[0]: continue
            sent.append(c)
    if sent: yield sent

def feats(s):
    d = dict(kv.split("=", 1) for kv in s.split("|")) if s != "_" else {}
    return [d.get(f, "_") for f in FEATS]

nu = ru = nx = rx = nf = rf = 0
all_pred = list(sentences(pred_path))
at = 0
for gold_path in sys.argv[5:]:
    gold = list(sentences(gold_path))
    pred = all_pred[at:at + len(gold)]
    at += len(gold)
    has_feats = sum(w[5] != "_" for s in gold for w in s) * 10 >= sum(len(s) for s in gold)
    for j, (g, p) in enumerate(zip(gold, pred)):
        assert [w[1] for w in g] == [w[1] for w in p]
        if j % 10 != 9: continue
        for gw, pw in zip(g, p):
            nu += 1; ru += gw[3] == pw[3]
            gx = "." if gw[4] in ("?", "!") and gw[3] == "PUNCT" else gw[4]
            if gx in PENN:
                nx += 1; rx += gx == pw[4]
            if has_feats:
                nf += 1; rf += feats(gw[5]) == feats(pw[5])
assert at == len(all_pred)
print(f"UPOS {ru}/{nu} = {ru/nu:.4f}, XPOS {rx}/{nx} = {rx/nx:.4f}, all 9 features {rf}/{nf} = {rf/nf:.4f}")
r = 2 * 2.0 ** -52  # a ratio of counts rounds once in f64 on each side: 1 u each
assert abs(ru / nu - e_upos) <= r and abs(rx / nx - e_xpos) <= r and abs(rf / nf - e_feats) <= r, \
    f"eval said {e_upos} {e_xpos} {e_feats}"
assert ru / nu >= 0.95, "UPOS accuracy below 95%"
EOF
then
    pass "held-out UPOS accuracy >= 95%, and eval's UPOS/XPOS/feature accuracies equal Python's count"
else
    fail "held-out UPOS accuracy >= 95%, and eval's UPOS/XPOS/feature accuracies equal Python's count" "$(tail -n 2 "$T/acc.out")"
fi
echo "INFO python recount: $(head -n 1 "$T/acc.out")"

# ---- web text it never saw: trained on every shared file but EWT dev, evaluated on EWT dev. The
# window labels of Setting 3 come from a tagger trained on every file; the issue asks for UPOS
# >= 95.5 % here (this tagger: 95.55 %).
EWT_UPOS_MIN=0.955
t0=$(date +%s.%N)
check "train on every shared UD file except EWT dev (--holdout FILE)" \
    entk-tag train -q -o "$T/noewtdev.tag" --holdout "$UD/en_ewt-ud-dev.conllu" "${UDFILES[@]}"
echo "INFO training without EWT dev took $(echo "$(date +%s.%N) - $t0" | bc) s"
entk-tag eval -q -m "$T/noewtdev.tag" -o "$T/ewtdev.frames" "$UD/en_ewt-ud-dev.conllu" >"$T/ewtdev.txt"
read -r upos xpos feats < <(entk-show --name tag_eval --fields upos_accuracy,xpos_accuracy,features_all_accuracy "$T/ewtdev.frames")
check "EWT dev, never trained on: UPOS >= $EWT_UPOS_MIN (the issue's target is met)" \
    awk -v u="$upos" -v m="$EWT_UPOS_MIN" 'BEGIN { exit !(u >= m) }'
echo "INFO EWT dev (trained without it): UPOS $upos, XPOS $xpos, all 9 features $feats; issue target UPOS 0.955"
grep -E '^  (Case|Definite|Gender|Mood|Number|Person|PronType|Tense|VerbForm) ' "$T/ewtdev.txt" | sed 's/^ */INFO EWT dev feature /'
# The checks below tag with this model (training on every file is pipelines/lm-windows' job, which
# tests/t_windows.sh runs): one full training fewer in the suite.
FULL=$T/noewtdev.tag

# same data and seed, same bytes (two small files keep this quick)
entk-tag train -q -o "$T/a.tag" --seed 7 "$UD/childes-Eve_Brown_eud_gold.conllu" "$UD/en_ewt-ud-dev.conllu"
entk-tag train -q -o "$T/b.tag" --seed 7 "$UD/childes-Eve_Brown_eud_gold.conllu" "$UD/en_ewt-ud-dev.conllu"
check "training is deterministic: same seed, identical model files" cmp "$T/a.tag" "$T/b.tag"

# ---- the word splitter against the treebanks' tokenization of their raw "# text" lines
$PY - "$FULL" "${UDFILES[@]}" >"$T/tok.out" 2>&1 <<'EOF'
import bisect, subprocess, sys
def load(paths):
    texts, golds = [], []
    for path in paths:
        text, words = None, []
        for line in list(open(path, encoding="utf-8")) + [""]:
            line = line.rstrip("\n")
            if line.startswith("# text = "): text = line[9:]
            elif not line:
                if text is not None and words: texts.append(text); golds.append(words)
                text, words = None, []
            elif not line.startswith("#"):
                c = line.split("\t")
                if "-" not in c[0] and "." not in c[0]: words.append(c[1])
    return texts, golds
def score(paths):
    texts, golds = load(paths)
    raw, starts = b"", []
    for t in texts:
        starts.append(len(raw)); raw += t.encode() + b"\n"
    out = subprocess.run(["entk-tag", "tag", "-q", "-m", sys.argv[1], "--tsv"], input=raw,
                         capture_output=True, check=True).stdout.decode()
    pred = [[] for _ in texts]
    for line in out.split("\n"):
        if line and not line.startswith("#"):
            s, e, w = line.split("\t")[:3]
            assert raw[int(s):int(e)].decode() == w
            pred[bisect.bisect_right(starts, int(s)) - 1].append(w)
    tp = npred = ngold = 0
    for p, g in zip(pred, golds):
        def spans(ws):
            pos, out = 0, set()
            for w in ws: out.add((pos, w)); pos += len(w)
            return out
        sp, sg = spans(p), spans(g)
        tp += len(sp & sg); npred += len(sp); ngold += len(sg)
    exact = sum(p == g for p, g in zip(pred, golds)) / len(texts)
    return exact, 2 * tp / (npred + ngold), len(texts)
paths = sys.argv[2:]
ce, cf, cn = score([p for p in paths if "childes" in p])
ee, ef, en = score([p for p in paths if "ewt" in p])
print(f"CHILDES {cn} sentences: {100*ce:.2f}% split exactly as the treebank, word F1 {100*cf:.2f}%; "
      f"EWT {en}: {100*ee:.2f}% exact, word F1 {100*ef:.2f}%")
assert ce >= 0.99 and ef >= 0.97
EOF
if [ $? = 0 ]; then pass "word splitter matches CHILDES (>= 99% of sentences) and EWT (word F1 >= 97%) tokenization"
else fail "word splitter matches CHILDES (>= 99% of sentences) and EWT (word F1 >= 97%) tokenization" "$(tail -n 2 "$T/tok.out")"; fi
echo "INFO word splitter: $(head -n 1 "$T/tok.out")"

# hand-written cases, EWT conventions
split_words() { printf '%s' "$1" | entk-tag tag -q -m "$FULL" --tsv | awk -F'\t' 'NF==6{printf "%s|", $3} NF==0 && NR>2{printf "/"}'; }
tok_ok=1
while IFS='=' read -r text want; do
    got=$(split_words "$text")
    if [ "$got" != "$want" ]; then tok_ok=0; echo "INFO split '$text': got '$got', want '$want'"; fi
done <<'EOF'
I don't know, can't you?=I|do|n't|know|,|ca|n't|you|?|/
"Hi!" said Tom. He smiled.="|Hi|!|"|said|Tom|.|/He|smiled|.|/
They're gonna win 1,000 or 3.5 dollars...=They|'re|gon|na|win|1,000|or|3.5|dollars|...|/
Mr. Lee's well-known e-mail (really)!=Mr.|Lee|'s|well|-|known|e-mail|(|really|)|!|/
“I’m fine,” she said—quietly.=“|I|’m|fine|,|”|she|said|—|quietly|.|/
Won't we? Let's go!=Wo|n't|we|?|/Let|'s|go|!|/
EOF
if [ $tok_ok = 1 ]; then pass "word splitter: clitics, quotes, numbers, abbreviations, hyphens, dialogue sentences"
else fail "word splitter: clitics, quotes, numbers, abbreviations, hyphens, dialogue sentences" "see INFO lines"; fi

# ---- tag the TinyStories sample: frames and TSV
t0=$(date +%s.%N)
check "tag the TinyStories sample (--stories) as frames" \
    entk-tag tag -q -m "$FULL" --stories "$TS" -o "$T/ts.frames"
echo "INFO tagging the TinyStories sample took $(echo "$(date +%s.%N) - $t0" | bc) s"
# the TSV of the first 300 kB (its cut-off last story dropped) must say what the frames say
head -c 300000 "$TS" >"$T/ts-head.txt"
check "tag the start of the TinyStories sample (--stories) as TSV" \
    entk-tag tag -q -m "$FULL" --stories --tsv "$T/ts-head.txt" -o "$T/ts.tsv"
PYTHONPATH="$ROOT/tests/peer" $PY - "$TS" "$T/ts.frames" "$T/ts.tsv" >"$T/ts.out" 2>&1 <<'EOF'
import sys, numpy as np
from entkio import frames as read_frames
raw = open(sys.argv[1], "rb").read()
# the stories as the README defines them: separated by <|endoftext|> lines, the cut-off last one dropped
parts, seg, pos = [], 0, 0
for line in raw.split(b"\n")[:-1] if raw.endswith(b"\n") else raw.split(b"\n"):
    if line.strip() == b"<|endoftext|>":
        parts.append((seg, pos)); seg = pos + len(line) + 1
    pos += len(line) + 1
stories = []
for a, b in parts:
    s = raw[a:b]
    lead = len(s) - len(s.lstrip())
    stories.append((a + lead, s.strip()))
assert len(stories) == 2316, len(stories)
UPOS = set("ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split())
frames = list(read_frames(sys.argv[2]))
assert frames[0]["kind"] == "header" and frames[-1]["kind"] == "end"
tagset = frames[1]
assert tagset["name"] == "tagset" and tagset["meta"]["texts"] == 2316
upos_names = tagset["meta"]["upos"].split(" ")
assert set(upos_names) <= UPOS, upos_names
fvals = [tagset["meta"]["values_" + f].split(" ") for f in tagset["meta"]["features"].split(" ")]
body = frames[2:-1]
assert len(body) == 6 * 2316
def arr(f):
    return f["array"]
# a few unambiguous words of English
def share(word, pred):
    tags = counts[word]
    return sum(pred(t) for t in tags) / len(tags)
checks = {
    b"the": lambda t: t[0] == "DET" and t[1][1] == "Def",
    b"a": lambda t: t[0] == "DET" and t[1][1] == "Ind",
    b".": lambda t: t[0] == "PUNCT",
    b"she": lambda t: t[0] == "PRON" and t[1][0] == "Nom" and t[1][2] == "Fem" and t[1][5] == "3",
    b"they": lambda t: t[0] == "PRON" and t[1][4] == "Plur",
    b"was": lambda t: t[0] in ("AUX", "VERB") and t[1][7] == "Past",
    b"dog": lambda t: t[0] == "NOUN" and t[1][4] == "Sing",
    b"toys": lambda t: t[0] == "NOUN" and t[1][4] == "Plur",
    b"played": lambda t: t[0] == "VERB" and t[1][7] == "Past",
    b"happy": lambda t: t[0] == "ADJ",
    b"and": lambda t: t[0] == "CCONJ",
}
counts = {}
tsv_rows = []
tsv_text = open(sys.argv[3], "rb").read()
ntsv = tsv_text.count(b"\n# text ")
xpos_names = tagset["meta"]["xpos"].split(" ")
nwords = 0
for i in range(2316):
    text, off, sent, up, xp, ft = body[6 * i: 6 * i + 6]
    assert [f["name"] for f in (text, off, sent, up, xp, ft)] == ["text", "offsets", "sentence", "upos", "xpos", "feats"]
    assert all(f["meta"]["text"] == i for f in (text, off, sent, up, xp, ft))
    t = arr(text).tobytes()
    start = text["meta"]["start"]
    assert (start, t) == stories[i], f"story {i} differs"
    o, s, u, x, fe = arr(off), arr(sent), arr(up), arr(xp), arr(ft)
    n = len(o)
    assert o.shape == (n, 2) and s.shape == u.shape == x.shape == (n,) and fe.shape == (n, 9) and n > 0
    assert (o[:, 0] < o[:, 1]).all() and (o[1:, 0] >= o[:-1, 1]).all() and o[0, 0] >= 0 and o[-1, 1] <= len(t)
    # the words cover exactly the non-whitespace bytes: no text is lost or invented
    d = np.zeros(len(t) + 1, np.int64)
    np.add.at(d, o[:, 0], 1)
    np.add.at(d, o[:, 1], -1)
    covered = np.cumsum(d)[:-1] > 0
    tb = np.frombuffer(t, np.uint8)
    assert (covered == ((tb > 32) & (tb != 127))).all(), f"story {i}: words do not cover the text"
    assert s[0] == 0 and set(np.diff(s).tolist()) <= {0, 1}
    assert (u >= 0).all() and (u < len(upos_names)).all() and (x >= 0).all()
    assert all((fe[:, q] >= 0).all() and (fe[:, q] < len(fvals[q])).all() for q in range(9))
    for k, (a, b) in enumerate(o.tolist()):
        w = t[a:b]
        if i < ntsv: tsv_rows.append((start + a, start + b, w, upos_names[u[k]], xpos_names[x[k]]))
        w = w.lower()
        if w in checks:
            counts.setdefault(w, []).append((upos_names[u[k]], tuple(fvals[q][fe[k, q]] for q in range(9))))
    nwords += n
# the TSV holds the same words at absolute offsets
tsv = [l.split(b"\t") for l in tsv_text.split(b"\n") if l and not l.startswith(b"#")]
assert ntsv > 200 and all(len(r) == 6 for r in tsv)
assert [(int(r[0]), int(r[1]), r[2], r[3].decode(), r[4].decode()) for r in tsv] == tsv_rows
low = {w: share(w, p) for w, p in checks.items()}
print(f"{nwords} words in 2316 stories; share right: " + " ".join(f"{w.decode()}={v:.3f}" for w, v in low.items()))
assert all(v >= 0.95 for v in low.values()), low
EOF
if [ $? = 0 ]; then pass "TinyStories frames: 2316 stories equal the README's split, words cover the text, TSV agrees, common words right"
else fail "TinyStories frames: 2316 stories equal the README's split, words cover the text, TSV agrees, common words right" "$(tail -n 3 "$T/ts.out" | tr '\n' ' ')"; fi
echo "INFO TinyStories: $(head -n 1 "$T/ts.out")"

# ---- bad input
printf '# text = The cat\n1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n2\tcat\tcat\tNOUN\tNN\t_\t0\troot\t_\n\n' >"$T/bad.conllu"
check_fails "CoNLL-U line with 9 columns: one-line error naming file:line, exit 3" 3 \
    'bad\.conllu:3: expected 10 tab-separated columns, found 9' entk-tag train -o "$T/bad.tag" "$T/bad.conllu"
check "no model file is left behind by a failed training" test ! -e "$T/bad.tag" -a -z "$(ls "$T" | grep 'bad.tag.tmp')"
printf '1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n3\tcat\tcat\tNOUN\tNN\t_\t0\troot\t_\t_\n\n' >"$T/seq.conllu"
check_fails "CoNLL-U word IDs out of sequence: exit 3" 3 'seq\.conllu:2: word ID 3 out of sequence' \
    entk-tag eval -m "$FULL" "$T/seq.conllu"
head -c 200000 "$FULL" >"$T/trunc.tag"
check_fails "truncated model file: one-line error, exit 3" 3 'trunc\.tag: truncated model file' \
    entk-tag tag -m "$T/trunc.tag" "$TS"
$PY -c "import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[len(b) // 2] ^= 4; open(sys.argv[2], 'wb').write(b)" \
    "$FULL" "$T/flip.tag"
check_fails "model file with a flipped bit: one-line error, exit 3" 3 'flip\.tag: corrupt .*checksum' \
    entk-tag eval -m "$T/flip.tag" "$UD/childes-Violet_Providence_eud_gold.conllu"
check_fails "a CoNLL-U file given as the model: exit 3" 3 'not an entk-tag model' \
    entk-tag tag -m "$T/bad.conllu" "$TS"
check_fails "unknown option to train: exit 2" 2 'unknown option' entk-tag train --bogus -o "$T/x.tag" "$T/bad.conllu"
check_fails "unknown option to tag: exit 2" 2 'unknown option' entk-tag tag -m "$FULL" --frob
check_fails "unknown option to eval: exit 2" 2 'unknown' entk-tag eval -Z -m "$FULL" "$T/bad.conllu"
check_fails "unknown command: exit 2" 2 "unknown command 'frob'" entk-tag frob
check_fails "tag without a model: exit 2" 2 'needs -m MODEL' entk-tag tag "$TS"
check_fails "--holdout FILE that is not an input: exit 2" 2 'not one of the input files' \
    entk-tag train -o "$T/x.tag" --holdout nosuch.conllu "$T/bad.conllu"
