#!/usr/bin/env bash
# entk-eig's solvers: the low-rank path (pivoted Cholesky + thin SVD) against syevr (--solver full)
# and against numpy's eigh (tests/peer/eig_ref.py) on the same Grams; automatic fallback to syevr
# for a full-rank Gram, for --top above the rank and for indefinite input, with the same result as
# --solver full; the solver is recorded in the frames and the log.
source "$(dirname "$0")/lib.sh"
cd "$T"
REF="$PY $ROOT/tests/peer/eig_ref.py"
CRAFT="$PY $ROOT/tests/peer/craft.py"
export ENTK_CACHE_DIR=off

# solver_is FILE SOLVER: the solver recorded in both tensor frames of an entk-eig output
solver_is() { [ "$(entk-show --fields solver "$1" | sort -u)" = "$2" ]; }
# same_result A B: bitwise the same eigenvalues and eigenvectors (%.17g text round-trips doubles)
same_result() {
    cmp -s <(entk-show --name eigenvalues --values "$1") <(entk-show --name eigenvalues --values "$2") &&
        cmp -s <(entk-show --name eigenvectors --values "$1") <(entk-show --name eigenvectors --values "$2")
}

# --- the Transformer's W_U eNTK: (1/C^2) s s^T with s [N, d_model = 64], so rank 64 of N = 841
entk-modadd -p 29 --encoding tokens --train-frac 0.5 -o d.fr
entk-train -q --model transformer --epochs 40 --ckpt-every 40 --ckpt-dir ck -o m.fr d.fr
for dt in f64 f32; do
    entk-jacobian -q --dtype $dt --params W_U -m ck/epoch-00040.safetensors d.fr | entk-gram -q --reduce mean -o "U-$dt.fr"
    entk-eig --top 40 -o "A-$dt.fr" "U-$dt.fr" 2>"A-$dt.log"
    entk-eig --top 40 --solver full -o "F-$dt.fr" "U-$dt.fr" 2>"F-$dt.log"
    vals=$([ $dt = f64 ] && echo "--each 1e-10" || echo "--norm 1e-4")
    check "W_U Gram ($dt): auto takes the low-rank path, rank 64" solver_is "A-$dt.fr" "pivchol-svd r=64"
    check "W_U Gram ($dt): the log says so" grep -q '(low-rank r=64)' "A-$dt.log"
    check "W_U Gram ($dt): --solver full runs syevr" solver_is "F-$dt.fr" syevr
    check "W_U Gram ($dt): --solver full logs (full)" grep -q '(full)' "F-$dt.log"
    check "W_U Gram ($dt): auto = full (eigenvalues $vals, vectors up to sign/eigenspace)" $REF "A-$dt.fr" "U-$dt.fr" "F-$dt.fr" $vals
    check "W_U Gram ($dt): auto = numpy eigh" $REF "A-$dt.fr" "U-$dt.fr" $vals
    check "W_U Gram ($dt): full = numpy eigh" $REF "F-$dt.fr" "U-$dt.fr" $vals
done
check "W_U Gram: low-rank residual logged at rounding level" \
    bash -c "entk-show --name eigenvalues --fields residual A-f64.fr | awk '{ exit !(\$1 > 0 && \$1 < 1e-13) }'"
check "only --solver full is recorded in the header args" \
    bash -c "entk-show F-f64.fr | head -n 1 | grep -q '\"solver=full\"' && ! entk-show A-f64.fr | head -n 1 | grep -q solver="

# --top equal to the rank: still low-rank; above it: the eigenvalues past the rank are the ridge,
# and their eigenvectors any basis of the null space, which only syevr gives
entk-eig -q --top 64 -o A64.fr U-f64.fr
check "--top 64 = rank: low-rank path" solver_is A64.fr "pivchol-svd r=64"
check "--top 64 = rank: = numpy eigh" $REF A64.fr U-f64.fr --each 1e-10
entk-eig --top 70 -o A70.fr U-f64.fr 2>A70.log
entk-eig -q --top 70 --solver full -o F70.fr U-f64.fr
check "--top 70 > rank: falls back to syevr" solver_is A70.fr syevr
check "--top 70 > rank: the log says why" grep -q '(full: rank 64 < top 70)' A70.log
check "--top 70 > rank: same result as --solver full" same_result A70.fr F70.fr
# the 6 eigenvalues past the rank are ridge + rounding: relative to lambda_1, not to themselves
check "--top 70 > rank: = numpy eigh (eigenvalues to 1e-10 lambda_1; null vectors in its null space)" \
    $REF A70.fr U-f64.fr --norm 1e-10

# --- a full-rank Gram: the MLP's class-traced eNTK
entk-modadd -p 29 -o dm.fr
entk-train -q --model mlp --epochs 20 --ckpt-every 20 --ckpt-dir ckm -o mm.fr dm.fr
entk-jacobian -q -m ckm/epoch-00020.safetensors dm.fr | entk-gram -q -o M.fr
entk-eig --top 40 -o MA.fr M.fr 2>MA.log
entk-eig -q --top 40 --solver full -o MF.fr M.fr
check "MLP Gram (full rank): auto falls back to syevr" solver_is MA.fr syevr
check "MLP Gram: the log says why" grep -q '(full: rank > N/4 = 210)' MA.log
check "MLP Gram: same result as --solver full" same_result MA.fr MF.fr
check "MLP Gram: = numpy eigh" $REF MA.fr M.fr --each 1e-10

# --- indefinite input. gram-hidden puts a [[0, a], [a, 0]] block (a = 2 lambda_1) on two rows of
# the rank-64 Gram: pivoted Cholesky never pivots on its zero diagonal and stops at rank 64, and
# the SVD's eigenvectors have tiny residuals, but the top eigenvalue a is missing: only the explicit
# remainder ||K - F^T F|| catches it. gram-indefinite subtracts (lambda_1 / 2) w w^T.
# falls_back LABEL GRAM TOP GREP-ARGS...: auto falls back to syevr (its log matching GREP-ARGS) and
# agrees with --solver full and with numpy's eigh (tolerance $vals)
falls_back() {
    local label=$1 gram=$2 top=$3 stem=${2%.fr}; shift 3
    entk-eig --top "$top" -o "$stem-auto.fr" "$gram" 2>"$stem-auto.log"
    entk-eig -q --top "$top" --solver full -o "$stem-full.fr" "$gram"
    check "$label: falls back on the remainder" grep "$@" "$stem-auto.log"
    check "$label: solver syevr" solver_is "$stem-auto.fr" syevr
    check "$label: same result as --solver full" same_result "$stem-auto.fr" "$stem-full.fr"
    check "$label: = numpy eigh" $REF "$stem-auto.fr" "$gram" $vals
}
for dt in f64 f32; do
    vals=$([ $dt = f64 ] && echo "--each 1e-10" || echo "--norm 1e-4")
    $CRAFT gram-hidden "U-$dt.fr" "H-$dt.fr"
    falls_back "hidden indefinite block ($dt)" "H-$dt.fr" 40 -qF '(full: rank 64 leaves ||K - F^T F||_F / ||K||_F = '
    $CRAFT gram-indefinite "U-$dt.fr" "I-$dt.fr" 1
    falls_back "K - s w w^T ($dt)" "I-$dt.fr" 20 -Eq '\(full: rank [0-9]+ leaves \|\|K - F\^T F\|\|_F'
done

# --- a Gram written as its factor (entk-gram --factor): K_factor F [r, N] with K = F^T F
# unfactor FAC K TOL: ||F^T F - K||_F / ||K||_F <= TOL
unfactor() { $PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/peer')
import numpy as np; from entkio import tensors
F = tensors('$1')['K_factor']['array'].astype(float); K = tensors('$2')['K']['array'].astype(float)
e = np.linalg.norm(F.T @ F - K) / np.linalg.norm(K); print(e); sys.exit(int(e > $3))"; }
for dt in f64 f32; do
    vals=$([ $dt = f64 ] && echo "--each 1e-10" || echo "--norm 1e-4")
    entk-jacobian -q --dtype $dt --params W_U -m ck/epoch-00040.safetensors d.fr | entk-gram -q --reduce mean --factor -o "UF-$dt.fr"
    check "factor ($dt): the W_U Gram travels as K_factor [64, 841]" \
        test "$(entk-show --name K_factor "UF-$dt.fr" | grep -o '"shape":\[[0-9,]*\]')" = '"shape":[64,841]'
    check "factor ($dt): F^T F = K" unfactor "UF-$dt.fr" "U-$dt.fr" "$([ $dt = f64 ] && echo 1e-13 || echo 1e-5)"
    entk-eig -q --top 40 -o "AF-$dt.fr" "UF-$dt.fr"
    check "factor ($dt): entk-eig solves it by the SVD of F" solver_is "AF-$dt.fr" "factor-svd r=64"
    check "factor ($dt): = numpy eigh of K" $REF "AF-$dt.fr" "U-$dt.fr" $vals
done
entk-eig --top 70 -o AF70.fr UF-f64.fr 2>AF70.log
check "factor, --top 70 > rank: solved as K by syevr" solver_is AF70.fr syevr
check "factor, --top 70 > rank: the log says why" grep -q '(full: top 70 > rank 64)' AF70.log
check "factor, --top 70 > rank: = numpy eigh of K (null vectors in its null space)" $REF AF70.fr U-f64.fr --norm 1e-10
entk-eig -q --top 40 --solver full -o AFF.fr UF-f64.fr
check "factor, --solver full: = numpy eigh" $REF AFF.fr U-f64.fr --each 1e-10
entk-jacobian -q -m ckm/epoch-00020.safetensors dm.fr | entk-gram --factor -o MFac.fr 2>MFac.log
check "factor of a full-rank Gram: written whole (K)" test "$(entk-show --name K MFac.fr | grep -c '"name":"K"')" -eq 1
check "factor of a full-rank Gram: the log says why" grep -q 'written whole, not as a factor: rank > N/4' MFac.log
check "factor of a full-rank Gram: the same K" cmp <(entk-show --name K --values MFac.fr) <(entk-show --name K --values M.fr)
# a factor kept while blocks come (W_U first), then merged into K by a block without one (W_K)
entk-jacobian -q --params W_U,W_K -m ck/epoch-00040.safetensors d.fr > UK.fr
entk-gram -q --reduce mean -o UK-K.fr UK.fr
entk-gram -q --reduce mean --factor -o UK-F.fr UK.fr
check "factor merged into K when a later block has none: = the plain Gram" $PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/peer')
import numpy as np; from entkio import tensors
a = tensors('UK-K.fr')['K']['array']; t = tensors('UK-F.fr')
b = t['K']['array'] if 'K' in t else t['K_factor']['array'].T @ t['K_factor']['array']
sys.exit(int(np.linalg.norm(a - b) / np.linalg.norm(a) > 1e-13))"
entk-gram -q --sum UF-f64.fr U-f64.fr -o S2.fr
check "--sum takes factors: K_factor + K = 2 K" $PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/peer')
import numpy as np; from entkio import tensors
S = tensors('S2.fr')['K']['array']; K = tensors('U-f64.fr')['K']['array']
sys.exit(int(np.linalg.norm(S - 2 * K) / np.linalg.norm(2 * K) > 1e-13))"

# --- command line
check_fails "unknown --solver" 2 "--solver must be auto or full, not 'fast'" entk-eig --solver fast U-f64.fr
