#!/usr/bin/env bash
# pipelines/mlp-modadd on a small setting: the make pipeline runs, a second make has nothing to
# do, a removed OUT is rebuilt from the cache, and the same shell pipeline gives the same frames.
source "$(dirname "$0")/lib.sh"
cd "$T"
export ENTK_CACHE_DIR=$T/cache
O=$T/out
ARGS="P=11 HIDDEN=64 EPOCHS=60 EVERY=20 TOP=60 OUT=$O BIN=$BIN"
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

# the same computation as a shell pipeline gives the same frames (and the same keys), with the
# pipelines' one OpenBLAS thread per program (pipelines/blas.mk): the factored Gram's last bits
# depend on the thread count, which is therefore in its key
export OPENBLAS_NUM_THREADS=1
entk-jacobian -q -m $O/ckpt/epoch-00060.safetensors $O/data.frames | entk-gram -q --reduce trace | entk-eig -q --top 60 \
  | entk-align -q --range 22:41 - $O/features.frames > shell.fr
check "shell pipeline = make pipeline (frames)" diff <(entk-show shell.fr | tail -n +2) <(entk-show $O/align/epoch-00060.frames | tail -n +2)
check "shell pipeline = make pipeline (key)" test "$(entk-show shell.fr | head -n 1 | grep -o '"key":"[0-9a-f]*"')" = \
    "$(entk-show $O/align/epoch-00060.frames | head -n 1 | grep -o '"key":"[0-9a-f]*"')"

# pipelines/transformer-modadd on a toy setting: runs, writes its summary and report, and is idempotent
O2=$T/out2
ARGS2="P=11 D_MODEL=16 HEADS=2 D_MLP=32 EPOCHS=60 EVERY=20 TOP=10 NKEYS=1 OUT=$O2 BIN=$BIN"
check "transformer pipeline runs" make -s -C "$ROOT/pipelines/transformer-modadd" -j2 $ARGS2
for k in key_frequencies overlap_sum_top5 overlap_axis_sum_6_9 onset_epoch derivative_peak_epoch final_test_accuracy; do
    check "transformer summary has $k" grep -q "\"$k\":" $O2/summary.json
done
check "transformer summary.json is valid JSON" $PY -c "import json; d = json.load(open('$O2/summary.json')); assert len(d['per_tensor_overlap_sum_top5']) == 10"
check "transformer report with plots" bash -c "test -s $O2/report.md && test -s $O2/spectra.png && test -s $O2/fourier.png"
check "transformer: second make has nothing to do" make -q -C "$ROOT/pipelines/transformer-modadd" $ARGS2

# several models through one pipeline: each filter answers every stream with one of its own, and
# the result is the single-model pipelines' outputs concatenated, frame for frame and key for key
C2=$O2/ckpt
one() { entk-jacobian -q -m "$1" $O2/data.frames | entk-gram -q --reduce mean | entk-eig -q --top 10 | entk-align -q --range 1:3 - $O2/features.frames; }
{ one $C2/epoch-00020.safetensors; one $C2/epoch-00060.safetensors; } > cat.fr
entk-jacobian -q -m $C2/epoch-00020.safetensors -m $C2/epoch-00060.safetensors $O2/data.frames | entk-gram -q --reduce mean \
  | entk-eig -q --top 10 | entk-align -q --range 1:3 - $O2/features.frames > multi.fr
check "a multi-model pipeline = the single-model pipelines concatenated" diff <(entk-show cat.fr) <(entk-show multi.fr)
check "a multi-model pipeline gives one stream per model" test "$(entk-show multi.fr | grep -c '"kind":"header"')" -eq 2
$PY "$ROOT/tests/peer/craft.py" st-drop $C2/epoch-00040.safetensors drop.st W_O
check_fails "a bad model late in the list fails before any output" 3 "tensor 'W_O' is missing" \
    entk-jacobian -m $C2/epoch-00020.safetensors -m drop.st $O2/data.frames -o part.fr
[ ! -e part.fr ] && pass "no partial multi-model output" || fail "no partial multi-model output" "part.fr exists"
check "the series in the make pipeline has one overlap stream per checkpoint" \
    test "$(entk-show $O2/series-align.frames | grep -c '"kind":"header"')" -eq 4
