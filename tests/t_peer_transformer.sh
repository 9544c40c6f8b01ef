#!/usr/bin/env bash
# Setting-2 numerics against PyTorch + functorch on the same weights: every per-tensor eNTK and the
# full one (three reductions, f64 and f32), their exact sum, AdamW steps, key frequencies; and
# checkpoints that do not fit the declared model.
source "$(dirname "$0")/lib.sh"
cd "$T"
REF="$PY $ROOT/tests/peer/ntk_ref.py"
CRAFT="$PY $ROOT/tests/peer/craft.py"
export ENTK_CACHE_DIR=off

entk-modadd -p 7 --encoding tokens --train-frac 0.5 -o d.fr
entk-train -q --model transformer --d-model 16 --heads 2 --d-mlp 32 --epochs 20 --ckpt-every 20 --ckpt-dir ck --dtype f64 -o m.fr d.fr
M=ck/epoch-00020.safetensors
PARAMS="W_E W_pos W_Q W_K W_V W_O W_in W_out W_U"
for dt in f64 f32; do
    for red in mean trace flat; do
        for prm in $PARAMS all; do
            entk-jacobian -q --dtype $dt --params $prm -m $M d.fr | entk-gram -q --reduce $red -o "K-$dt-$red-$prm.fr"
        done
    done
done
$REF $M d.fr K-*.fr > ref.out 2>&1
peer_results ref.out 60
for dt in f64 f32; do
    tol=$([ $dt = f64 ] && echo 1e-10 || echo 1e-5)
    entk-gram -q --sum $(for p in $PARAMS; do echo "K-$dt-mean-$p.fr"; done) -o "S-$dt.fr"
    check "nine per-tensor Grams sum to the full one ($dt)" $REF --compare "S-$dt.fr" "K-$dt-mean-all.fr" $tol
done
entk-jacobian -q --form explicit --block-rows 5 --params W_K,W_U -m $M d.fr | entk-gram -q --reduce mean -o X.fr
entk-gram -q --sum K-f64-mean-W_K.fr K-f64-mean-W_U.fr -o XS.fr
check "explicit blocks = factored (W_K + W_U)" $REF --compare X.fr XS.fr 1e-10

# one AdamW step on the same weights and batch (the whole training split as one batch)
for dt in f32 f64; do
    entk-train -q --model transformer --d-model 16 --heads 2 --d-mlp 32 --epochs 0 --ckpt-dir i-$dt --dtype $dt -o m0.fr d.fr
    entk-train -q --model transformer --init i-$dt/epoch-00000.safetensors --batch 0 --epochs 1 --ckpt-every 1 --dtype $dt --ckpt-dir r-$dt -o m1.fr d.fr
    check "AdamW step matches torch.optim.AdamW ($dt)" $PY "$ROOT/tests/peer/train_ref.py" i-$dt/epoch-00000.safetensors d.fr r-$dt/epoch-00001.safetensors 1 3e-4 1.0
done

entk-features -p 7 --key-freqs $M --nkeys 2 --family sum -o F.fr 2>/dev/null
check "key frequencies = numpy FFT of W_E" $PY "$ROOT/tests/peer/fft_ref.py" $M F.fr 2

# checkpoints that do not fit the declared model
$CRAFT st-drop $M drop.st W_O
check_fails "checkpoint missing W_O" 3 "tensor 'W_O' is missing" entk-jacobian -m drop.st d.fr
$CRAFT st-reshape $M reshape.st W_in
check_fails "W_in of the wrong shape" 3 "tensor 'W_in' has shape \[32,16\], expected \[16,32\]" entk-jacobian -m reshape.st d.fr
check_fails "one-hot data for a transformer" 3 "model needs tokens inputs" entk-jacobian -m $M <(entk-modadd -p 7)
