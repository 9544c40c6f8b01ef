#!/usr/bin/env bash
# Frames, model files, cache and command lines: bad input fails loudly with one line and the
# documented exit code; outputs are atomic; the cache verifies what it returns.
source "$(dirname "$0")/lib.sh"
cd "$T"
CRAFT="$PY $ROOT/tests/peer/craft.py"

entk-modadd -p 5 -o d.fr
entk-train -q --model mlp --hidden 8 --epochs 2 --ckpt-every 2 --ckpt-dir ck -o m.fr d.fr
M=ck/epoch-00002.safetensors

# --- streams
check "show reads a stream" entk-show --check d.fr
check "show reads concatenated streams" bash -c "cat d.fr d.fr | entk-show --check"
size=$(stat -c %s d.fr)
head -c $((size - 7)) d.fr > cut.fr
check_fails "truncated inside a frame" 3 'truncated frame' entk-train --model mlp -o out.fr cut.fr
head -c $((size - 33)) d.fr > noend.fr   # exactly the end frame removed
check_fails "cut at a frame boundary" 3 'truncated stream \(no end frame' entk-show noend.fr
cp d.fr flip.fr
printf '\x55' | dd of=flip.fr bs=1 seek=$((size - 60)) conv=notrunc status=none
check_fails "flipped data byte" 3 'checksum mismatch' entk-show flip.fr
printf 'not msgpack at all' > junk.fr
check_fails "not a frame stream" 3 'not an entk frame stream|corrupt data' entk-show junk.fr
: > empty.fr
check_fails "empty input" 3 'empty input' entk-eig empty.fr
$CRAFT fr-dtype d.fr dtype.fr labels f32
check_fails "wrong dtype" 3 "frame [0-9]+ \(labels\): wrong dtype f32, expected i32" entk-train --model mlp dtype.fr
$CRAFT fr-shape d.fr shape.fr x
check_fails "shape disagrees with data" 3 'frame [0-9]+ \(x\): data is [0-9]+ bytes but shape' entk-show shape.fr
check_fails "wrong frame" 3 "frame 1 \\(pairs\\): expected tensor frame 'K' or 'K_factor'" entk-eig d.fr
entk-modadd -p 7 -o d7.fr
entk-features -p 5 --family sum -o F5.fr
entk-jacobian -q -m $M d.fr | entk-gram -q | entk-eig -q --top 5 -o E5.fr
check_fails "features of another size" 3 'family sum has 49 rows but the eigenvectors have 25' entk-align E5.fr <(entk-features -p 7 --family sum)
check_fails "data of another modulus" 3 'data has p=7 but the model has p=5' entk-jacobian -m $M d7.fr

# --- Gram streams (entk-eig, entk-gram --sum) and what entk-gram accepts
entk-jacobian -q -m $M d.fr | entk-gram -q -o K5.fr
$CRAFT fr-drop K5.fr noK.fr K
check_fails "Gram stream without a Gram" 3 'no Gram in the stream' entk-eig noK.fr
entk-jacobian -q -m $M d.fr | entk-gram -q --stats -o Kstats.fr
check_fails "frame after the Gram" 3 'unexpected frame after the Gram' entk-eig --top 3 Kstats.fr
$CRAFT fr-dtype K5.fr Kint.fr K i64
check_fails "integer Gram (eig)" 3 "frame 1 \(K\): K must be f32 or f64, not i64" entk-eig Kint.fr
check_fails "integer Gram (gram --sum)" 3 "frame 1 \(K\): K must be f32 or f64, not i64" entk-gram --sum K5.fr Kint.fr
$CRAFT fr-meta K5.fr Kside.fr K N 4
check_fails "Gram of another size than its N (gram --sum)" 3 'Gram is 25 x 25, expected 4 x 4' entk-gram --sum Kside.fr
check_fails "eigenpairs where a Gram belongs (gram --sum)" 3 "expected tensor frame 'K' or 'K_factor'" entk-gram --sum K5.fr E5.fr
entk-jacobian -q --outputs sum -m $M d.fr > Jsum.fr
$CRAFT fr-meta Jsum.fr JsumC.fr jacobian C 5
check_fails "summed-output Jacobian with C > 1" 3 'a summed-output Jacobian must have C = 1, not 5' entk-gram --reduce mean JsumC.fr
check_fails "65 feature families" 3 'more than 64 feature families' entk-align E5.fr <(entk-features -p 5 --family "$(printf 'sum%.0s,' $(seq 65))sum")

# --- the training order of a data set (train_order: every training row once)
$CRAFT fr-set d.fr dup.fr train_order 1 "$(entk-show --name train_order --values d.fr | tr '\t' '\n' | head -n 1)"
check_fails "training row listed twice" 3 "frame [0-9]+ \(train_order\): entry 1 \([0-9]+\) is not a training row listed once" entk-train --model mlp -o out.fr dup.fr
test_row=$(entk-show --name train --values d.fr | tr '\t' '\n' | grep -n '^0$' | head -n 1 | cut -d: -f1)
$CRAFT fr-set d.fr testrow.fr train_order 0 $((test_row - 1))
check_fails "test row in the training order" 3 "entry 0 \([0-9]+\) is not a training row listed once" entk-jacobian -m $M testrow.fr
$CRAFT fr-meta-del d.fr nodraws.fr train_order torch_draws
check_fails "training order without its rng record" 3 'missing or bad rng, seed or torch_draws' entk-train --model mlp -o out.fr nodraws.fr
$CRAFT fr-meta d.fr baddraws.fr train_order torch_draws -1
check_fails "negative torch_draws" 3 'missing or bad rng, seed or torch_draws' entk-train --model mlp -o out.fr baddraws.fr
check "no partial output after bad data" test ! -e out.fr

# --- model files
$CRAFT st-badlen badlen.st
check_fails "safetensors header length" 3 'bad safetensors file: header length exceeds the file' entk-jacobian -m badlen.st d.fr
$CRAFT st-badjson badjson.st
check_fails "safetensors header not JSON" 3 'bad safetensors file: header is not valid JSON' entk-jacobian -m badjson.st d.fr
$CRAFT st-offsets offsets.st
check_fails "safetensors offsets" 3 "bad safetensors file: tensor 'W1' data_offsets do not match" entk-jacobian -m offsets.st d.fr
$CRAFT st-drop $M drop.st W2
check_fails "checkpoint missing a tensor" 3 "tensor 'W2' is missing" entk-jacobian -m drop.st d.fr
$CRAFT st-reshape $M reshape.st W1
check_fails "checkpoint tensor of wrong shape" 3 "tensor 'W1' has shape \[10,8\], expected \[8,10\]" entk-jacobian -m reshape.st d.fr
check_fails "missing model file" 3 'cannot open nosuch.st' entk-jacobian -m nosuch.st d.fr

# --- command lines
for b in modadd train jacobian gram eig features align show; do
    check_fails "entk-$b unknown option" 2 "unknown option" entk-$b --no-such-option
    check "entk-$b --help has an example" bash -c "entk-$b --help | grep -q Example"
done
check_fails "bad number" 2 "--top needs an integer" entk-eig --top x E5.fr
check_fails "bad reduction" 2 "--reduce must be trace, mean or flat" entk-gram --reduce max

# --- atomic outputs: a failing filter leaves no file behind
entk-eig -o never.fr cut.fr 2>/dev/null
check "no output file after a failure" test ! -e never.fr
check "no temporary file after a failure" bash -c "! ls never.fr.tmp.* 2>/dev/null"
( entk-jacobian -q -m $M d.fr | head -c 100 ) | entk-gram -q -o never2.fr 2>/dev/null
check "no output when upstream is cut" test ! -e never2.fr

# --- cache
export ENTK_CACHE_DIR=$T/c
entk-jacobian -m $M d.fr 2>j1.err >j1.fr
entk-jacobian -m $M d.fr 2>j2.err >j2.fr
check "first run stores blocks" grep -q '0 hits, 2 misses, 2 stored' j1.err
check "second run hits" grep -q '2 hits, 0 misses' j2.err
check "cached blocks are byte-identical" cmp j1.fr j2.fr
check "fan-out layout" bash -c "ls $T/c/objects | grep -Eq '^[0-9a-f]{2}$'"
entry=$(find $T/c/objects -type f | head -n 1)
printf '\x00\x01' | dd of="$entry" bs=1 seek=100 conv=notrunc status=none
entk-jacobian -m $M d.fr 2>j3.err >j3.fr
check "corrupt entry reported" grep -q 'refused entry .*authenticator mismatch' j3.err
check "corrupt entry recomputed" cmp j1.fr j3.fr
entk-jacobian -m $M d.fr 2>j4.err >/dev/null
check "recomputed entry stored again" grep -q '2 hits, 0 misses' j4.err
entk-jacobian -m $M --cache-dir off d.fr 2>j5.err >j5.fr
check "cache off still computes" cmp j1.fr j5.fr
entk-gram -q < j1.fr > k1.fr
entk-gram < j1.fr 2>k2.err > k2.fr
check "gram cached by its input's content" grep -q '1 hits' k2.err
check "cached gram identical" cmp k1.fr k2.fr

# --- devices are written in place, never replaced by a renamed temporary
entk-modadd -p 3 -o /dev/null
check "/dev/null stays a character device" test -c /dev/null

# OpenBLAS kernels (include/core/blasenv.h): never the generic ones on a CPU with AVX2, a user's choice kept
if grep -qw avx2 /proc/cpuinfo; then
    check "OpenBLAS runs kernels for this CPU, not generic ones" bash -c "[ \"\$(env -u OPENBLAS_CORETYPE entk-show --blas)\" != Prescott ]"
fi
check "a user's OPENBLAS_CORETYPE is kept" test "$(OPENBLAS_CORETYPE=Haswell entk-show --blas)" = Haswell
