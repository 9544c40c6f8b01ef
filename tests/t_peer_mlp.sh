#!/usr/bin/env bash
# Setting-1 numerics against PyTorch autograd + functorch on the same weights: every eNTK (full and
# layerwise, three reductions, factored and explicit, f64 and f32), top eigenvalues, exact sums of
# partial Grams, and AdamW training steps.
source "$(dirname "$0")/lib.sh"
cd "$T"
REF="$PY $ROOT/tests/peer/ntk_ref.py"
export ENTK_CACHE_DIR=off

entk-modadd -p 11 -o d.fr
entk-train -q --model mlp --hidden 64 --epochs 40 --ckpt-every 40 --ckpt-dir ck --dtype f64 -o /dev/null d.fr
M=ck/epoch-00040.safetensors
for dt in f64 f32; do
    for red in trace mean flat; do
        for params in W1,W2 W1 W2; do
            entk-jacobian -q --dtype $dt --params $params -m $M d.fr | entk-gram -q --reduce $red -o "K-$dt-$red-$params.fr"
        done
        entk-jacobian -q --dtype $dt --form explicit --block-rows 9 -m $M d.fr | entk-gram -q --reduce $red -o "X-$dt-$red.fr"
    done
done
$REF $M d.fr K-*.fr X-*.fr > ref.out 2>&1
peer_results ref.out 24

for dt in f64 f32; do
    for red in trace mean flat; do
        check "factored = explicit ($dt, $red)" $REF --compare $M "X-$dt-$red.fr" "K-$dt-$red-W1,W2.fr"
        entk-gram -q --sum "K-$dt-$red-W1.fr" "K-$dt-$red-W2.fr" -o "S-$dt-$red.fr"
        check "sum of layerwise Grams = full ($dt, $red)" $REF --compare $M "S-$dt-$red.fr" "K-$dt-$red-W1,W2.fr"
    done
    entk-eig -q --top 30 -o "E-$dt.fr" "K-$dt-trace-W1,W2.fr"
    check "top eigenvalues vs numpy on the functorch eNTK ($dt)" $REF --eig $M d.fr "E-$dt.fr" 30
done
# the benchmark's factored PyTorch route (tests/bench/mlp_modadd_torch.py: per layer (X X^T) . (G G^T),
# functorch for G) gives entk's Grams, within ntk_ref.py's 2 u sqrt(m)
for dt in f64 f32; do
    check "the benchmark's factored PyTorch route = entk's Gram ($dt)" \
        $PY "$ROOT/tests/bench/mlp_modadd_torch.py" --check $M d.fr "K-$dt-trace-W1,W2.fr"
done
check_fails "sum of different reductions" 3 'reduction mean differs' entk-gram --sum K-f64-trace-W1.fr K-f64-mean-W2.fr

# the Jacobian of the summed logits (one backward pass): its Gram / C^2 is the class-mean eNTK
for dt in f64 f32; do
    for params in W1,W2 W1 W2; do
        entk-jacobian -q --outputs sum --dtype $dt --params $params -m $M d.fr | entk-gram -q --reduce mean -o "U-$dt-$params.fr"
        check "summed outputs = class mean ($dt, $params)" $REF --compare $M "U-$dt-$params.fr" "K-$dt-mean-$params.fr"
    done
    entk-jacobian -q --outputs sum --form explicit --block-rows 9 --dtype $dt -m $M d.fr | entk-gram -q --reduce mean -o "UX-$dt.fr"
    check "summed outputs, explicit blocks = class mean ($dt)" $REF --compare $M "UX-$dt.fr" "K-$dt-mean-W1,W2.fr"
done
# W2 is a final linear layer: with --factor its Gram is kept as its exact factor (512 x N), both reductions
for red in trace mean; do
    entk-jacobian -q --params W2 -m $M d.fr | entk-gram -q --reduce $red --factor -o "F2-$red.fr"
    check "W2 Gram as its exact factor ($red): F^T F = K" $PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/peer')
import numpy as np; from entkio import tensors
F = tensors('F2-$red.fr')['K_factor']['array']; K = tensors('K-f64-$red-W2.fr')['K']['array']
e = np.linalg.norm(F.T @ F - K) / np.linalg.norm(K)  # within 4 u sqrt(N), as tests/t_eig.sh's close()
sys.exit(int(F.shape != (64, 121) or e > 4 * np.finfo(K.dtype).eps * np.sqrt(K.shape[0])))"
done
check_fails "summed outputs give the class mean only" 2 'gives only --reduce mean, not trace' \
    bash -c "entk-jacobian -q --outputs sum -m $M d.fr | entk-gram --reduce trace"
check_fails "unknown --outputs" 2 "--outputs must be all or sum, not 'max'" entk-jacobian --outputs max -m $M d.fr

# AdamW: entk-train from the same initial weights as PyTorch, three full-batch steps
for dt in f32 f64; do
    entk-train -q --model mlp --hidden 64 --epochs 0 --ckpt-dir i-$dt --dtype $dt --seed 3 -o /dev/null d.fr
    entk-train -q --model mlp --init i-$dt/epoch-00000.safetensors --epochs 3 --ckpt-every 3 --dtype $dt --ckpt-dir r-$dt -o /dev/null d.fr
    check "AdamW steps match torch.optim.AdamW ($dt)" $PY "$ROOT/tests/peer/train_ref.py" i-$dt/epoch-00000.safetensors d.fr r-$dt/epoch-00003.safetensors 3 0.05 0.01
done
