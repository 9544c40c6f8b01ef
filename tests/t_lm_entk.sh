#!/usr/bin/env bash
# Setting 3's eNTK (entk-jacobian on a language model, entk-eig --lanczos): J u and J^T z against
# functorch's jvp and vjp for every weight kind, in f64 and f32, on random tiny Gemma 3 models and
# on stories260K; the dense K~ against jacrev; K~'s spectrum against the logit eNTK over the whole
# vocabulary; Lanczos against numpy eigh; the same bits whatever the threads, after kill -9 and
# across two GNU parallel job slots; bad input.
. "$(dirname "$0")/lib.sh"
cd "$T"
PEER="$PY $ROOT/tests/peer/lm_entk_ref.py"
S260=$SHARED/models/stories260K/stories260K.bin
export OMP_NUM_THREADS=2
SECONDS=0
section() { echo "INFO ${SECONDS}s: $1"; }

entk-mkgemma -q -o g --preset tiny --seed 1 --dtype f32 2>/dev/null
entk-mkgemma -q -o gx --preset tiny --seed 2 --dtype f32 --attn-softcap 20 --final-softcap 30 --untied \
    --rope-scaling 2 --kv-heads 1 2>/dev/null
# random windows: 4 of 12 tokens for the tiny models (window 8: sliding attention is exercised), 8 of
# 16 and 32 of 64 for stories260K
$PY -c "
import sys, numpy as np; sys.path.insert(0, '$ROOT/tests/peer'); import entkio
r = np.random.default_rng(7)
entkio.write_arrays('w.frames', 'test', [('windows', r.integers(0, 512, (4, 12)).astype(np.int32))])
entkio.write_arrays('ws.frames', 'test', [('windows', r.integers(0, 512, (8, 16)).astype(np.int32))])
entkio.write_arrays('w32.frames', 'test', [('windows', r.integers(0, 512, (32, 64)).astype(np.int32))])
entkio.write_arrays('wlen.frames', 'test', [('ids', r.integers(0, 512, (12,)).astype(np.int32)), ('ids', r.integers(0, 512, (11,)).astype(np.int32))])
entkio.write_arrays('wbig.frames', 'test', [('windows', np.full((2, 12), 600, np.int32))])
"

if entk-jacobian --help | grep -q 'entk-eig --lanczos' && entk-eig --help | grep -q 'entk-eig --lanczos -m'; then
    pass "help of entk-jacobian and entk-eig shows the language-model pipe"
else
    fail "help of entk-jacobian and entk-eig shows the language-model pipe" "missing"
fi

shape() { # weight -> "rows cols" in the tiny preset (dim 64, ffn 128, 4 heads of 16, 2 kv) or stories260K
    case "$1:$2" in
    *:down) [ "${3:-}" = s ] && echo "64 172" || echo "64 128" ;;
    *:gate | *:up) echo "128 64" ;;
    *:o | *:q) echo "64 64" ;;
    gx:k | gx:v) echo "16 64" ;;
    *:k | *:v) echo "32 64" ;;
    esac
}

section "J u and J^T z"
# ---- J u and J^T z against functorch, every weight, the lean last block and a full one
# case MODEL LAYER WEIGHT DTYPE WINDOWS NWIN: random u and z, entk's J u and J^T z, and the peer's
# arguments for them (in cases_<MODEL>_<DTYPE>)
n=0
vecs=()
jobs=()
case_() {
    local model=$1 L=$2 p=$3 dt=$4 w=$5 nw=$6 r c
    read -r r c < <(shape "$(basename "$model")" $p "$([ "$model" = "$S260" ] && echo s)")
    vecs+=(u$n.fr u $r $c $n z$n.fr z $nw 64 $((n + 100)))
    jobs+=("entk-jacobian -q -m $model --layer $L --params $p --dtype $dt --jvp u$n.fr $w -o jvp$n.fr")
    jobs+=("entk-jacobian -q -m $model --layer $L --params $p --dtype $dt --vjp z$n.fr $w -o vjp$n.fr")
    echo "--jvp $L $p u$n.fr jvp$n.fr --vjp $L $p z$n.fr vjp$n.fr" >>"cases-$(basename "$model")-$dt"
    n=$((n + 1))
}
for L in 1 3; do
    for p in down gate up o q k v; do case_ g $L $p f64 w.frames 4; done
    for p in down q k; do case_ gx $L $p f64 w.frames 4; done
    for p in down q; do case_ g $L $p f32 w.frames 4; done
done
for L in 0 2 4; do
    case_ $S260 $L down f64 ws.frames 8
    case_ $S260 $L down f32 ws.frames 8
done
$PEER randvec "${vecs[@]}"
for j in "${jobs[@]}"; do $j 2>>jobs.err || fail "$j" "$(tail -n 1 jobs.err)"; done
peer_lines() { # FILE N NAME: one PASS/FAIL per peer line, and a check that there were N
    local out=$1 n=$2 name=$3 status rest
    while read -r status rest; do
        [ "$status" = ok ] && pass "functorch agrees: $rest" || fail "functorch agrees: ${rest%%:*}" "$rest"
    done < <(grep -E '^(ok|FAIL) ' "$out")
    [ "$(grep -cE '^(ok|FAIL) ' "$out")" -eq "$n" ] && pass "$name: all $n compared" || fail "$name: all $n compared" "$(tail -n 3 "$out")"
}
# shellcheck disable=SC2046
$PEER check g w.frames --tol 1e-10 $(cat cases-g-f64) >peer-g.out 2>&1
peer_lines peer-g.out 28 "tiny Gemma 3, f64, 7 weights x 2 blocks, J u and J^T z"
$PEER check gx w.frames --tol 1e-10 $(cat cases-gx-f64) >peer-gx.out 2>&1
peer_lines peer-gx.out 12 "tiny Gemma 3 with softcaps, untied head, RoPE scaling, MQA, f64"
$PEER check g w.frames --tol 1e-5 $(cat cases-g-f32) >peer-g32.out 2>&1
peer_lines peer-g32.out 8 "tiny Gemma 3, f32 against f64 autograd"
for dt in f64 f32; do
    tol=1e-10; [ $dt = f32 ] && tol=1e-5
    $PEER check $S260 ws.frames --tol $tol $(cat cases-stories260K.bin-$dt) >peer-s$dt.out 2>&1
    peer_lines peer-s$dt.out 6 "stories260K, $dt, blocks 0, 2, 4"
done

section "dense"
# ---- the dense K~ (explicit whitened Jacobian | entk-gram --reduce flat) and the logit eNTK
entk-jacobian -q -m g --layer 2 --dtype f64 --form explicit w.frames | entk-gram -q --reduce flat -o K2.fr
entk-jacobian -q -m g --layer 3 --params q --dtype f64 --form explicit w.frames | entk-gram -q --reduce flat -o K3q.fr
entk-jacobian -q -m $S260 --layer 3 --form explicit ws.frames | entk-gram -q --reduce flat -o Ks3.fr
$PEER check g w.frames --tol 1e-10 --gram 2 down K2.fr --gram 3 q K3q.fr --logit 2 down --logit 3 q >peer-dense.out 2>&1
peer_lines peer-dense.out 4 "dense K~ and the logit eNTK over the vocabulary, tiny Gemma 3, f64"
$PEER check $S260 ws.frames --tol 1e-5 --gram 3 down Ks3.fr >peer-dense32.out 2>&1
peer_lines peer-dense32.out 1 "dense K~, stories260K, f32"

section "lanczos"
# ---- Lanczos: 50 steps (the paper's budget) and --converge, against numpy eigh of the dense K~
entk-jacobian -q -m g --layer 2 --dtype f64 w.frames -o lin2.fr
entk-eig -q --lanczos -m g --cache-dir off lin2.fr -o e50.fr
entk-eig -q --lanczos -m g --cache-dir off --converge lin2.fr -o ec.fr
entk-jacobian -q -m $S260 --layer 3 ws.frames -o lins3.fr
entk-eig -q --lanczos -m $S260 --cache-dir off --converge lins3.fr -o es3.fr
$PEER check g w.frames --tol 1e-10 --eig-tol 1e-8 --eig 2 down e50.fr --eig 2 down ec.fr >peer-eig.out 2>&1
peer_lines peer-eig.out 6 "Lanczos on tiny Gemma 3, f64"
$PEER check $S260 ws.frames --tol 1e-5 --eig-tol 1e-5 --eig 3 down es3.fr >peer-eig32.out 2>&1
peer_lines peer-eig32.out 3 "Lanczos on stories260K, f32"
nc=$(entk-show --name converged --values ec.fr | tr '\t' '\n' | grep -c '^1$')
[ "$nc" = 25 ] && pass "--converge: all 25 pairs converge" || fail "--converge: all 25 pairs converge" "$nc converged"
nc=$(entk-show --name converged --values e50.fr | tr '\t' '\n' | grep -c '^0$')
[ "$nc" -gt 0 ] && pass "50 steps: unconverged pairs are flagged ($nc of 25)" || fail "50 steps: unconverged pairs are flagged" "none flagged"

section "threads"
# ---- the same bits: whatever the threads; chunks of another size agree to rounding
OMP_NUM_THREADS=1 entk-eig -q --lanczos -m g --cache-dir off --chunk 1 lin2.fr -o t1.fr
OMP_NUM_THREADS=2 entk-eig -q --lanczos -m g --cache-dir off --chunk 1 lin2.fr -o t2.fr
check "one thread or two: the same bits (4 chunks)" cmp t1.fr t2.fr
check "chunks of 1 window or all 4: eigenvalues agree to rounding" $PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/peer'); import entkio, numpy as np
a = entkio.tensors('t1.fr')['eigenvalues']['array']; b = entkio.tensors('e50.fr')['eigenvalues']['array']
assert np.abs(a - b).max() <= 1e3 * np.finfo(float).eps * a[0], np.abs(a - b).max() / a[0]"

section "kill"
# ---- kill -9 at random moments, then finish: the same bits, finished chunks not recomputed
entk-jacobian -q -m $S260 --layer 0 w32.frames -o lin0.fr
# exec: a background `run` is then entk-eig itself, and kill -9 kills it, not a subshell
run() { exec entk-eig --lanczos -m $S260 --chunk 4 --threads 2 --cache-dir "$1" lin0.fr -o "$2" 2>"$3"; }
t0=$(date +%s.%N)
(run "$T/c0" ref.fr ref.log)
dur=$(echo "$(date +%s.%N) - $t0" | bc)
total=$(grep -o '[0-9]* chunks computed' ref.log | tail -n 1 | cut -d' ' -f1)
for k in 1 2 3; do
    (run "$T/c1" resumed.fr kill$k.log) &
    pid=$!
    sleep "$(echo "scale=3; $dur * (0.05 + 0.1 * $RANDOM / 32768)" | bc)"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
done
# what the killed runs finished, from the cache's own listing: whole products (of 8 chunks each)
# and single chunks' products of the product in flight
prod=$(entk-cache -q --cache-dir "$T/c1" ls | cut -f6 | grep -c '^lm eNTK product (')
chunks=$(entk-cache -q --cache-dir "$T/c1" ls | cut -f6 | grep -c '^lm eNTK product of chunk')
(run "$T/c1" resumed.fr resumed.log)
computed=$(grep -o '[0-9]* chunks computed' resumed.log | tail -n 1 | cut -d' ' -f1)
check "kill -9 three times, then finish: the same bits as one uninterrupted run" cmp ref.fr resumed.fr
if [ -n "$computed" ] && [ "$computed" -eq $((total - 8 * prod - chunks)) ] && [ "$computed" -lt "$total" ]; then
    pass "the finishing run computed only what the killed runs had not finished: $computed of $total chunk products"
else
    fail "the finishing run computed only what the killed runs had not finished" \
        "computed $computed of $total; $prod products and $chunks chunk products were stored"
fi
left=$(find . "$T/c1" -name '*.tmp.*' | wc -l)
[ "$left" -eq 0 ] && pass "no temporary files left after kill -9 and rerun" || fail "no temporary files left after kill -9 and rerun" "$left"

section "parallel"
# ---- two GNU parallel job slots sharing a cache split the chunks and end with the same bits
if command -v parallel >/dev/null; then
    parallel -j2 --halt now,fail=1 "entk-eig --lanczos -m $S260 --chunk 4 --threads 1 --cache-dir $T/cp lin0.fr -o par{}.fr 2>par{}.log" ::: 1 2
    check "GNU parallel slot 1 = one process" cmp ref.fr par1.fr
    check "GNU parallel slot 2 = one process" cmp ref.fr par2.fr
    c1=$(grep -o '[0-9]* chunks computed' par1.log | tail -n 1 | cut -d' ' -f1)
    c2=$(grep -o '[0-9]* chunks computed' par2.log | tail -n 1 | cut -d' ' -f1)
    if [ "$c1" -gt 0 ] && [ "$c2" -gt 0 ] && [ $((c1 + c2)) -le $((total + 4)) ]; then
        pass "the two slots split the work: $c1 + $c2 chunk products (one process: $total)"
    else
        fail "the two slots split the work" "$c1 + $c2 of $total"
    fi
else
    fail "GNU parallel is installed (make deps)" "parallel not found"
fi

section "bad input"
# ---- bad input: one line, the documented exit code, no output
check_fails "a token id outside the vocabulary" 3 'outside the vocabulary' entk-jacobian -q -m g --layer 1 -o o.fr wbig.frames
check_fails "windows of different lengths" 3 'every window must have one length' entk-jacobian -q -m g --layer 1 -o o.fr wlen.frames
check_fails "a layer out of range" 2 'out of range: the model has blocks 0..3' entk-jacobian -q -m g --layer 4 -o o.fr w.frames
check_fails "an unknown weight" 2 "'ffn' is not a weight of a block" entk-jacobian -q -m g --layer 1 --params ffn -o o.fr w.frames
check_fails "no --layer for a language model" 2 '--layer is required' entk-jacobian -m g -o o.fr w.frames
entk-modadd -p 5 -o d.fr && entk-train -q --model mlp --hidden 8 --epochs 1 --ckpt-every 1 --ckpt-dir ck -o mt.fr d.fr
check_fails "--layer with a modular-addition model" 2 'are for language models' entk-jacobian -m ck/epoch-00001.safetensors --layer 0 -o o.fr d.fr
check_fails "--lanczos without -m" 2 '--lanczos needs -m' entk-eig --lanczos -o o.fr lin2.fr
check_fails "--lanczos with another model" 3 'the linearisation is of model' entk-eig --lanczos -m gx -o o.fr lin2.fr
check_fails "--lanczos on a Gram stream" 3 "no 'lm_linear' record" entk-eig --lanczos -m g -o o.fr K2.fr
head -c $(($(stat -c %s lin2.fr) - 100)) lin2.fr >cut.fr
check_fails "--lanczos on a truncated linearisation" 3 'truncated' entk-eig --lanczos -m g -o o.fr cut.fr
check_fails "--lanczos with a modular-addition model" 3 'not a language model' entk-eig --lanczos -m ck/epoch-00001.safetensors -o o.fr lin2.fr
[ ! -e o.fr ] && pass "no output file after any of these" || fail "no output file after any of these" "o.fr exists"
section "end"
