#!/usr/bin/env bash
# entk's copies of the reference scripts' random streams (lib/torchrng): torch's and CPython's
# generators draw the same numbers, and --rng torch / --rng python reproduce the reference
# notebooks' split, initial weights and minibatch order, checked by training a few epochs both ways.
source "$(dirname "$0")/lib.sh"
cd "$T"
export ENTK_CACHE_DIR=off
OPS="randn 5 randn 3 randn 16 randn 29696 randn 100 randn 17 uniform 50 random64 3 randperm 841 loader 420 randperm 420 pyshuffle 841"
for seed in 0 2 4294967297; do
    torchrng-dump $seed $OPS > dump-$seed.txt
    $PY "$ROOT/tests/peer/torchrng_ref.py" $seed $OPS < dump-$seed.txt > ref-$seed.out 2>&1
    while read -r status rest; do
        [ "$status" = ok ] && pass "torch/CPython generators agree: $rest" || fail "torch/CPython generators agree" "$rest"
    done < <(grep -E '^(ok|FAIL) ' ref-$seed.out)
    [ "$(grep -c '^ok ' ref-$seed.out)" -eq 12 ] && pass "all 12 streams compared (seed $seed)" || fail "all 12 streams compared (seed $seed)" "$(tail -n 3 ref-$seed.out)"
done

# the reference MLP notebook: torch.manual_seed(0), randperm split, nn.Linear + normal_, full batch
entk-modadd -p 29 --rng torch --seed 0 -o mlp.fr
entk-train -q --model mlp --rng torch --seed 0 --epochs 5 --ckpt-every 5 --ckpt-dir ckm -o mm.fr mlp.fr
check "reference MLP run: split, initial weights, 5 epochs" $PY "$ROOT/tests/peer/reference_run.py" mlp mlp.fr 0 5 \
    ckm/epoch-00000.safetensors ckm/epoch-00005.safetensors
# the reference Transformer notebook: random.seed(0) split, torch.manual_seed(2), DataLoader(64, shuffle)
entk-modadd -p 29 --encoding tokens --train-frac 0.5 --rng python --seed 0 -o tf.fr
entk-train -q --model transformer --rng torch --seed 2 --epochs 5 --ckpt-every 5 --ckpt-dir ckt -o mt.fr tf.fr
check "reference Transformer run: split, initial weights, 35 minibatch steps" $PY "$ROOT/tests/peer/reference_run.py" \
    transformer tf.fr 2 5 ckt/epoch-00000.safetensors ckt/epoch-00005.safetensors
# the same weights with entk's own shuffle must not pass: the comparison sees the batch order
entk-train -q --model transformer --init ckt/epoch-00000.safetensors --epochs 5 --ckpt-every 5 --ckpt-dir ckx -o mx.fr tf.fr
if $PY "$ROOT/tests/peer/reference_run.py" transformer tf.fr 2 5 ckt/epoch-00000.safetensors ckx/epoch-00005.safetensors >/dev/null 2>&1; then
    fail "another batch order is detected" "entk's own shuffle passed the reference comparison"
else
    pass "another batch order is detected"
fi

# bad input
check_fails "unknown split generator" 2 "--rng must be entk, torch or python, not 'numpy'" entk-modadd --rng numpy
check_fails "unknown training generator" 2 "--rng must be entk or torch, not 'python'" entk-train --model mlp --rng python mlp.fr
$PY "$ROOT/tests/peer/craft.py" fr-drop tf.fr old.fr train_order
check_fails "data without a train_order frame" 3 "expected tensor frame 'train_order'" entk-train --model transformer -o out.fr old.fr
[ ! -e out.fr ] && pass "no output left by a failed run" || fail "no output left by a failed run" "out.fr exists"
