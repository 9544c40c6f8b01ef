#!/usr/bin/env bash
# pipelines/mlp-modadd on a small setting: the make pipeline runs, a second make has nothing to
# do, a removed OUT is rebuilt from the cache, and the same shell pipeline gives the same frames.
source "$(dirname "$0")/lib.sh"
cd "$T"
export ENTK_CACHE_DIR=$T/cache
O=$T/out
ARGS="P=11 HIDDEN=64 EPOCHS=60 EVERY=20 TOP=60 OUT=$O BIN=$ROOT/bin"
check "make pipeline runs" make -s -C "$ROOT/pipelines/mlp-modadd" -j2 $ARGS
check "summary.json written" test -s $O/summary.json
for k in overlap_sum overlap_diff onset_epoch derivative_peak_epoch final_test_accuracy cliff_ratios; do
    check "summary has $k" grep -q "\"$k\":" $O/summary.json
done
check "summary.json is valid JSON" $PY -c "import json,sys; json.load(open('$O/summary.json'))"
check "report with plots" bash -c "grep -q 'spectrum.png' $O/report.md && test -s $O/spectrum.png && test -s $O/overlap.png && test -s $O/accuracy.png"
check "second make has nothing to do" make -q -C "$ROOT/pipelines/mlp-modadd" $ARGS
rm -rf $O/eig $O/align
make -s -C "$ROOT/pipelines/mlp-modadd" $ARGS Q= 2> rebuild.err >/dev/null
check "rebuild hits the cache only" bash -c "grep -q 'cache: [0-9]* hits, 0 misses' rebuild.err && ! grep -q ' [1-9][0-9]* misses' rebuild.err"

# the same computation as a shell pipeline gives the same frames (and the same keys)
entk-jacobian -q -m $O/ckpt/epoch-00060.safetensors $O/data.frames | entk-gram -q --reduce trace | entk-eig -q --top 60 \
  | entk-align -q --range 22:41 - $O/features.frames > shell.fr
check "shell pipeline = make pipeline (frames)" diff <(entk-show shell.fr | tail -n +2) <(entk-show $O/align/epoch-00060.frames | tail -n +2)
check "shell pipeline = make pipeline (key)" test "$(entk-show shell.fr | head -n 1 | grep -o '"key":"[0-9a-f]*"')" = \
    "$(entk-show $O/align/epoch-00060.frames | head -n 1 | grep -o '"key":"[0-9a-f]*"')"

# pipelines/transformer-modadd on a toy setting: runs, writes its summary and report, and is idempotent
O2=$T/out2
ARGS2="P=11 D_MODEL=16 HEADS=2 D_MLP=32 EPOCHS=60 EVERY=20 TOP=10 NKEYS=1 OUT=$O2 BIN=$ROOT/bin"
check "transformer pipeline runs" make -s -C "$ROOT/pipelines/transformer-modadd" -j2 $ARGS2
for k in key_frequencies overlap_sum_top5 overlap_axis_sum_6_9 onset_epoch derivative_peak_epoch final_test_accuracy; do
    check "transformer summary has $k" grep -q "\"$k\":" $O2/summary.json
done
check "transformer summary.json is valid JSON" $PY -c "import json; d = json.load(open('$O2/summary.json')); assert len(d['per_tensor_overlap_sum_top5']) == 10"
check "transformer report with plots" bash -c "test -s $O2/report.md && test -s $O2/spectra.png && test -s $O2/fourier.png"
check "transformer: second make has nothing to do" make -q -C "$ROOT/pipelines/transformer-modadd" $ARGS2
