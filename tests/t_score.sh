#!/usr/bin/env bash
# Label scoring (lib/ntk/score.c, entk-labels) and the PCA baseline (entk-eig --pca) against an
# independent peer (tests/peer/score_ref.py): scikit-learn's average_precision_score and
# roc_auc_score and numpy on crafted scores (ties, all-equal, perfect, inverted, signed zeros) and
# random ones; precision@quota and enrichment from their definitions; rank-1 scores and PCA scores
# against numpy's SVD; the whole label-scoring output (split, chosen direction and sign, test
# metrics, macro averages) recomputed from the same scores, labels and the README's split; an
# end-to-end run on stories260K (windows, resid at every block, PCA, labels); bad input.
source "$(dirname "$0")/lib.sh"
cd "$T"
REF="$PY $ROOT/tests/peer/score_ref.py"
SM=$SHARED/models/stories260K
UD=$SHARED/data/ud

if entk-labels --help | grep -q '^Example' && entk-eig --help | grep -q 'entk-eig --pca'; then
    pass "help of entk-labels and entk-eig --pca shows an example"
else
    fail "help of entk-labels and entk-eig --pca shows an example" "missing"
fi

# ---- metrics on crafted and random scores
$REF craft-metrics m.fr && score-tool metrics m.fr >mo.fr
check "AP, AUROC = sklearn; precision@quota, enrichment = their definitions (crafted ties, all-equal, perfect, inverted; random)" \
    $REF check-metrics m.fr mo.fr
$REF check-metrics m.fr mo.fr 2>/dev/null | sed 's/^ok /INFO /'
# the two cases that need no peer: perfect and inverted rankings of label 1 (scores rows 1 and 2)
check "perfect ranking: AP = AUROC = precision@quota = 1; inverted: AUROC = 0" bash -c \
    "entk-show --name metrics --fields direction,label,sign,ap,auroc,precision_at_quota mo.fr | head -n 24 |
     awk -F'\t' '\$1==1 && \$2==1 && \$3==1 { p = (\$4==1 && \$5==1 && \$6==1) } \$1==2 && \$2==1 && \$3==1 { i = (\$5==0) } END { exit !(p && i) }'"

# ---- rank-1 scores: tall, wide and the Setting-3 shape (N = 1024 windows, D = 64)
for nd in "300 40 1" "50 80 2" "1024 64 3"; do
    set -- $nd
    $REF craft-rank1 "r$1.fr" "$1" "$2" "$3" && score-tool rank1 "r$1.fr" >"ro$1.fr"
    check "rank-1 score u1 sigma1 of [$1, $2] directions = numpy's SVD (up to sign), largest entry positive" \
        $REF check-rank1 "r$1.fr" "ro$1.fr"
done

# ---- PCA of a crafted resid stream (two layers, batches of 64 windows)
$REF craft-resid res.fr 200 48 4
check "entk-eig --pca runs on a two-layer resid stream" entk-eig -q --pca --top 10 -o p.fr res.fr
check "one scores stream per layer" test "$(entk-show --name scores --fields layer p.fr | tr '\n' ' ')" = "3 5 "
check "PCA scores, components, variances = numpy's SVD of the centred rows (up to sign); model and windows keys passed on" \
    $REF check-pca res.fr p.fr

# ---- label scoring on synthetic windows and scores: the peer recomputes everything
$REF craft-labels cw.fr cs.fr 301 12 9
entk-labels --top 10 -o cl.fr cw.fr cs.fr 2>cl.log
check "entk-labels = peer: split (README definition, stratified), chosen direction/sign, test metrics, macros" \
    $REF check-labels cw.fr cs.fr cl.fr 10
check "a label with one positive is reported skipped (record and log line), not a crash" bash -c \
    "entk-show --name label_score --fields label,skipped cl.fr | grep -q '^One=1	no positives in the test half\$' &&
     grep -q 'morph One=1: skipped: no positives in the test half' cl.log"
check "the exact duplicate of the best direction loses the tie to the lower index" \
    test "$(entk-show --name label_score --fields label,direction,sign cl.fr | grep '^A	')" = "A	2	1"
check "entk-show prints the macro records as TSV" bash -c \
    "entk-show --name macro --fields group,labels,skipped cl.fr | tr '\t\n' ', ' | grep -qx 'pos,4,0 morph,2,1 '"
entk-labels -q --top 10 --seed 3 -o cl3.fr cw.fr cs.fr
check "--seed 3: another split, still = peer" $REF check-labels cw.fr cs.fr cl3.fr 10
check "--seed 3 changes the split" bash -c "! cmp -s <(entk-show --name split --values cl.fr) <(entk-show --name split --values cl3.fr)"
entk-labels -q --top 10 -o cl-again.fr cw.fr cs.fr
check "same inputs and seed, same bytes" cmp cl.fr cl-again.fr

# ---- end to end on stories260K: a small window set (tagger from two treebanks, the first 400 kB
# of stories, 24 windows per class), the residual stream after every block, PCA, label scoring
head -c 400000 "$SHARED/data/tinystories/tinystories_sample.txt" >ts.txt
entk-tag train -q -o small.tag "$UD/childes-Violet_Providence_eud_gold.conllu" "$UD/en_ewt-ud-dev.conllu" &&
    entk-tag tag -q -m small.tag --stories -o tags.fr ts.txt &&
    entk-windows -q -m "$SM/stories260K.bin" -t "$SM/tok512.bin" --tagger small.tag --per-class 24 --min-support 10 \
        -o w.fr tags.fr
check "stories260K: 192 windows built" test "$(entk-show --name labels --fields names w.fr | wc -l)" = 1
entk-forward -q -m "$SM/stories260K.bin" --outputs resid --positions last --layers all -o resid.fr w.fr
check "stories260K: PCA of the residual stream after each of the 5 blocks" entk-eig -q --pca -o pca.fr resid.fr
check "stories260K: PCA = numpy" $REF check-pca resid.fr pca.fr
$REF check-pca resid.fr pca.fr 2>/dev/null | sed 's/^ok /INFO /'
check "stories260K: label scoring of every layer" entk-labels -q -o lab.fr w.fr pca.fr
check "stories260K: label scoring = peer" $REF check-labels w.fr pca.fr lab.fr 25
entk-show --name macro --fields method,layer,group,labels,ap,auroc lab.fr |
    awk -F'\t' '{ printf "INFO stories260K (N = 192) %s layer %s %s: macro AP %.3f AUROC %.3f over %s labels\n", $1, $2, $3, $5, $6, $4 }'
check "stories260K: the pipe form gives the same records" bash -c \
    "entk-forward -q -m '$SM/stories260K.bin' --outputs resid --layers all w.fr | entk-eig -q --pca | entk-labels -q w.fr - |
     entk-show --name label_score | cmp -s - <(entk-show --name label_score lab.fr)"

# ---- bad input
$REF craft-labels cw.fr short.fr 301 12 9 --scores-n 300
check_fails "scores over another number of windows: exit 3 naming both" 3 'scores 300 windows but cw\.fr labels 301' \
    entk-labels --top 10 cw.fr short.fr
$REF craft-labels cw.fr other.fr 301 12 9 --windows-key 0123456789abcdef0123456789abcdef
check_fails "scores of another windows stream (key differs): exit 3" 3 'scores the windows of stream 0123456789abcdef0123456789abcdef but cw\.fr is stream [0-9a-f]{32}: not the same windows' \
    entk-labels --top 10 cw.fr other.fr
check_fails "12 directions, default --top 25: exit 3 naming both" 3 'cs\.fr has 12 directions, fewer than --top 25' \
    entk-labels cw.fr cs.fr
check_fails "12 directions, --top 13 asked: exit 2" 2 'cs\.fr has 12 directions, fewer than --top 13' \
    entk-labels --top 13 cw.fr cs.fr
check "no output file left by a refused run" bash -c "entk-labels -o bad.fr cw.fr short.fr 2>/dev/null; test ! -e bad.fr && ! ls bad.fr.tmp.* 2>/dev/null"
# p.fr holds several streams: refused as more than the one windows stream (or, a single one, for its lack of labels)
check_fails "WINDOWS that is not a windows stream: exit 3" 3 'p\.fr: (no labels frame|trailing data after the end frame)' entk-labels p.fr cs.fr
check_fails "SCORES without a scores frame: exit 3" 3 'cw\.fr: no .scores. frame' entk-labels cw.fr cw.fr
check_fails "both inputs stdin: exit 2" 2 'only one input can be stdin' entk-labels - -
check_fails "entk-labels unknown option: exit 2" 2 'unknown option' entk-labels --bogus cw.fr cs.fr
check_fails "entk-eig --pca with --solver: exit 2" 2 '--pca takes no --ridge, --dtype or --solver' entk-eig --pca --solver full res.fr
check_fails "entk-eig --pca --top above the width: exit 2" 2 '--top 49 exceeds min\(windows 200, width 48\) of layer 3' \
    entk-eig --pca --top 49 res.fr
check_fails "entk-eig --pca on a stream without resid frames: exit 3" 3 "no 'resid' frames" entk-eig --pca cw.fr
entk-forward -q -m "$SM/stories260K.bin" --outputs resid --positions all --layers 1 --ids '1,403,407;1,403,407' >allpos.fr
check_fails "entk-eig --pca on several positions per window: exit 3" 3 '3 positions per window: PCA takes one' \
    entk-eig --pca --top 2 allpos.fr
$PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/peer')
from entkio import frames, write_stream, tensor_frame
fr = [f for f in frames('res.fr') if f['kind'] == 'tensor']
del fr[2]   # layer 3's second batch: its windows 64..127 are missing
with open('gap.fr', 'wb') as f:
    write_stream(f, 'entk-forward', '3' * 32, [tensor_frame('resid', x['array'], x['meta']) for x in fr])
"
check_fails "entk-eig --pca with a batch missing: exit 3" 3 'layer 3: windows from 128, expected 64' entk-eig --pca gap.fr
