#!/usr/bin/env bash
# Setting-2 numerics against PyTorch + functorch on the same weights: every per-tensor eNTK and the
# full one (three reductions, f64 and f32), their exact sum, AdamW steps (one, and five through
# the training path on three shapes), key frequencies; and
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
    # the Jacobian of the summed logits (one backward pass): its Gram / C^2 is the class-mean eNTK
    for prm in $PARAMS all; do
        entk-jacobian -q --outputs sum --dtype $dt --params $prm -m $M d.fr | entk-gram -q --reduce mean -o "U-$dt-$prm.fr"
        check "summed outputs = class mean ($dt, $prm)" $REF --compare $M "U-$dt-$prm.fr" "K-$dt-mean-$prm.fr"
    done
    entk-gram -q --sum $(for p in $PARAMS; do echo "K-$dt-mean-$p.fr"; done) -o "S-$dt.fr"
    check "nine per-tensor Grams sum to the full one ($dt)" $REF --compare $M "S-$dt.fr" "K-$dt-mean-all.fr"
done
entk-jacobian -q --form explicit --block-rows 5 --params W_K,W_U -m $M d.fr | entk-gram -q --reduce mean -o X.fr
entk-gram -q --sum K-f64-mean-W_K.fr K-f64-mean-W_U.fr -o XS.fr
check "explicit blocks = factored (W_K + W_U)" $REF --compare $M X.fr XS.fr

# one AdamW step on the same weights and batch (the whole training split as one batch)
for dt in f32 f64; do
    entk-train -q --model transformer --d-model 16 --heads 2 --d-mlp 32 --epochs 0 --ckpt-dir i-$dt --dtype $dt -o m0.fr d.fr
    entk-train -q --model transformer --init i-$dt/epoch-00000.safetensors --batch 0 --epochs 1 --ckpt-every 1 --dtype $dt --ckpt-dir r-$dt -o m1.fr d.fr
    check "AdamW step matches torch.optim.AdamW ($dt)" $PY "$ROOT/tests/peer/train_ref.py" i-$dt/epoch-00000.safetensors d.fr r-$dt/epoch-00001.safetensors 1 3e-4 1.0
done

# five steps through the training path (transformer_loss_grad's lanes, chunks and packed weights;
# the accuracies through transformer_forward), full batch so that no shuffling order is involved:
# p=11 with 64 training examples is one default minibatch, p=29 (420) runs as 7 chunks, widths
# 24/3/40 take the kernels' remainder code. Tolerance: train_ref.py's default, 16 u per step.
for cfg in "11 0.53 64 4 256" "29 0.5 64 4 256" "11 0.6 24 3 40"; do
    set -- $cfg
    entk-modadd -p $1 --encoding tokens --train-frac $2 -o s.fr
    for dt in f32 f64; do
        rm -rf si sr
        entk-train -q --model transformer --d-model $3 --heads $4 --d-mlp $5 --epochs 0 --ckpt-dir si --dtype $dt -o s0.fr s.fr
        entk-train -q --model transformer --init si/epoch-00000.safetensors --batch 0 --epochs 5 --ckpt-every 1 --dtype $dt --ckpt-dir sr -o s1.fr s.fr
        check "5 AdamW steps, losses and accuracies match torch (p=$1, d_model $3, $dt)" \
            $PY "$ROOT/tests/peer/train_ref.py" si/epoch-00000.safetensors s.fr sr/epoch-00005.safetensors 5 3e-4 1.0 s1.fr
    done
done
# the batch is split in two lanes whatever the thread count: one thread gives the same bytes
entk-train -q --model transformer --epochs 3 --ckpt-every 3 --ckpt-dir t2 -o t2.fr s.fr
OMP_NUM_THREADS=1 entk-train -q --model transformer --epochs 3 --ckpt-every 3 --ckpt-dir t1 -o t1.fr s.fr
check "training on one thread = on two (bit for bit)" cmp t1/epoch-00003.safetensors t2/epoch-00003.safetensors

entk-features -p 7 --key-freqs $M --nkeys 2 --family sum -o F.fr 2>/dev/null
check "key frequencies = numpy FFT of W_E" $PY "$ROOT/tests/peer/fft_ref.py" $M F.fr 2
# the reference run (its split, weights and batch order), trained in full: about 5 s
entk-modadd -p 29 --encoding tokens --train-frac 0.5 --rng python --seed 0 -o ref.fr
entk-train -q --model transformer --rng torch --seed 2 --ckpt-every 4000 --ckpt-dir refck -o refm.fr ref.fr
entk-features -p 29 --key-freqs refck/epoch-04000.safetensors --nkeys auto --family sum -o RF.fr 2>/dev/null
check "--nkeys auto = numpy FFT of W_E with the same rule" $PY "$ROOT/tests/peer/fft_ref.py" refck/epoch-04000.safetensors RF.fr auto
check "the reference run's key frequencies: 1 and 12 (as the paper's)" \
    test "$(entk-show --name key_frequencies --fields freqs RF.fr | tr -d '[]' | tr , '\n' | sort -n | paste -sd,)" = "1,12"
check "the reference run generalises: test accuracy 1.0 at epoch 4000" \
    test "$(entk-show --name metrics --fields epoch,test_acc refm.fr | tail -n 1)" = "$(printf '4000\t1')"

# checkpoints that do not fit the declared model
$CRAFT st-drop $M drop.st W_O
check_fails "checkpoint missing W_O" 3 "tensor 'W_O' is missing" entk-jacobian -m drop.st d.fr
$CRAFT st-reshape $M reshape.st W_in
check_fails "W_in of the wrong shape" 3 "tensor 'W_in' has shape \[32,16\], expected \[16,32\]" entk-jacobian -m reshape.st d.fr
check_fails "one-hot data for a transformer" 3 "model needs tokens inputs" entk-jacobian -m $M <(entk-modadd -p 7)
