#!/usr/bin/env bash
# pipelines/lm-entk, smoke-sized, on a random tiny Gemma 3 model (with stories260K's tokenizer, whose
# 512 ids it takes): summary.json, report.md and its plots; a second make does nothing; the summary's
# numbers again from the eigenvectors and labels by a numpy/scikit-learn peer; kill -9 during make,
# then make: the same summary.json, no temporary files.
. "$(dirname "$0")/lib.sh"
cd "$T"
mkdir -p ud && ln -s "$SHARED/data/ud/childes-Eve_Brown_eud_gold.conllu" "$SHARED/data/ud/en_ewt-ud-dev.conllu" ud/
entk-mkgemma -q -o g --preset tiny --seed 3 2>/dev/null
# the window set without the model-agreement filter (a random model agrees with nothing), 96 short
# windows; every block of the model, 16 Lanczos products, 8 directions, 2 splits
VARS=(OUT="$T/out" MODEL="$T/g" TOKENIZER="$SHARED/models/stories260K/tok512.bin" UD="$T/ud" TAG_EPOCHS=2 FILTER=0
      PER_CLASS=12 WINDOW=16 MIN_SUPPORT=5 STEPS=16 TOP=8 SPLITS="0 1")
pipe() { make -C "$ROOT/pipelines/lm-entk" "${VARS[@]}" "$@"; }

check "make -C pipelines/lm-entk on a tiny Gemma 3 (-j2)" pipe -s -j2
check "summary.json has every block, both methods, both groups" grep -q '"pca_morph": {"ap"' out/summary.json
for f in report.md auroc-by-layer.png spectra.png labels.png; do
    check "$f written" test -s out/$f
done
check "the plots are PNG images" bash -c "for f in out/*.png; do head -c 8 \$f | od -An -c | grep -q 'P   N   G' || exit 1; done"
check "report.md has the per-block table, the paper's table and each label's top windows" \
    bash -c "grep -q '^| 3 | 0\.' out/report.md && grep -q '^| pos | NOUN |' out/report.md && grep -q '^### pos NOUN (block' out/report.md"
check "a second make does nothing" bash -c "pipe() { make -C '$ROOT/pipelines/lm-entk' $(printf "'%s' " "${VARS[@]}") \"\$@\"; }; pipe -q"
$PY "$ROOT/tests/peer/lm_entk_summary_ref.py" out out/windows/g/windows.frames "0 1 2 3" "0 1" 8 >peer.out 2>&1
while read -r status rest; do
    [ "$status" = ok ] && pass "peer: $rest" || fail "peer: ${rest%%:*}" "$rest"
done < <(grep -E '^(ok|FAIL) ' peer.out)
[ "$(grep -cE '^(ok|FAIL) ' peer.out)" -eq 3 ] && pass "the peer made its 3 comparisons" || fail "the peer made its 3 comparisons" "$(tail -n 3 peer.out)"

# kill -9 at a random moment of the eNTK and scoring steps (everything after the linearisations),
# then make again: the same summary, what was stored reused, nothing left behind
cp out/summary.json summary.ref
rm -rf out/eig out/labels out/summary.json out/report.md
setsid bash -c "cd '$T' && make -C '$ROOT/pipelines/lm-entk' $(printf "'%s' " "${VARS[@]}") -s -j2 >kill.log 2>&1" &
pid=$!
sleep "$(echo "scale=2; 0.3 + 1.5 * $RANDOM / 32768" | bc)"
kill -9 -- -$pid 2>/dev/null
wait $pid 2>/dev/null
check "make after kill -9 finishes" pipe -s -j2
check "... with the same summary.json" cmp summary.ref out/summary.json
left=$(find out -name '*.tmp.*' | wc -l)
[ "$left" -eq 0 ] && pass "no temporary files left in OUT" || fail "no temporary files left in OUT" "$(find out -name '*.tmp.*' | head -n 3)"
