#!/usr/bin/env bash
# Hostile input: what a decoder must refuse (one line, exit 3, fast, no huge allocation, no
# output), pipes between filters, binary frames and terminals, option ranges.
source "$(dirname "$0")/lib.sh"
cd "$T"
CRAFT="$PY $ROOT/tests/peer/craft.py"
S=$SHARED/models/stories260K
# small: a hostile header must not get the memory it claims (the limit leaves room for OpenBLAS).
# An ASan build (make asan-test) reserves terabytes of shadow address space, so there the
# sanitizer's allocator refuses large blocks instead of ulimit -v.
if ldd "$(command -v entk-show)" | grep -q libasan; then
    limited() { ASAN_OPTIONS="${ASAN_OPTIONS:-}:max_allocation_size_mb=3000:allocator_may_return_null=1" timeout 60 "$@"; }
else
    limited() { bash -c 'ulimit -v 3000000; exec timeout 20 "$@"' limited "$@"; }
fi

entk-modadd -p 5 -o d.fr
entk-modadd -p 5 --seed 1 -o d1.fr
entk-train -q --model mlp --hidden 8 --epochs 2 --ckpt-every 2 --ckpt-dir ck -o m.fr d.fr
M=ck/epoch-00002.safetensors
entk-jacobian -q -m $M d.fr | entk-gram -q -o K.fr

# --- sizes that wrap around: refused before anything is allocated or indexed
$CRAFT fr-dims K.fr Kwrap.fr K $((1 << 40)),$((1 << 40))
check_fails "frame shape whose product wraps to 0" 3 'frame 1 \(K\): shape too large' entk-eig Kwrap.fr
$CRAFT fr-dims K.fr Kwrap2.fr K $((1 << 32)),$((1 << 32)),$((1 << 32))
check_fails "frame shape of three dims whose product wraps" 3 'frame 1 \(K\): shape too large' entk-gram --sum Kwrap2.fr
$CRAFT st-extra $M wrap.st X $((1 << 31)),$((1 << 31))
check_fails "safetensors shape whose byte count wraps" 3 "tensor 'X' has a shape larger than the file's data" entk-jacobian -m wrap.st d.fr
$CRAFT st-extra $M wrap2.st X 1099511627776,1099511627776
check_fails "safetensors shape whose product wraps" 3 "tensor 'X' has a shape too large" entk-jacobian -m wrap2.st d.fr

# --- msgpack headers claiming more than the input holds
printf '\xdf\xff\xff\xff\xff' > map32.fr
check_fails "map header claiming 2^32 entries" 3 'corrupt data \(more msgpack items' limited entk-show map32.fr
printf '\xdd\xff\xff\xff\xff' > arr32.fr
check_fails "array header claiming 2^32 items (stdin)" 3 'corrupt data' limited sh -c 'entk-show < arr32.fr'
printf '\xde\xff\xff' > map16.fr
check_fails "map header claiming 65535 entries, input ends" 3 'truncated frame' limited entk-show map16.fr
printf '\xc6\xff\xff\xff\xff' > bin32.fr
check_fails "bin header claiming 4 GiB" 3 'truncated frame' limited sh -c 'cat bin32.fr | entk-show'
head -c 40 /dev/zero | tr '\0' '\221' > deep.fr
check_fails "msgpack nested 40 deep" 3 'nested too deep' entk-show deep.fr
{ head -c $(( $(stat -c %s d.fr) - 33 )) d.fr; printf '\xdf\x7f\xff\xff\xff'; } > mid.fr
check_fails "huge map header inside a stream" 3 'frame [0-9]+: corrupt data \(more msgpack items' limited entk-show mid.fr

$CRAFT fr-input-key d.fr badkey.fr 0123456789abcdef0123456789abcdef0
check_fails "header input key that is not 32 hex digits" 3 "header input key '0123456789abcdef0123456789abcdef0' is not 32 hex digits" entk-show badkey.fr

# --- tokenizer.json ids index tables: an id beyond the file's entries is refused, fast
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1073741823}, "merges": []}}' > bigid.json
printf 'ab' > ab.txt
check_fails "tokenizer.json vocab id 2^30-1" 3 'vocab entry "b" has id 1073741823, beyond' limited entk-tokenize --cache-dir off -t bigid.json ab.txt
printf '{"added_tokens": [{"id": 99999999, "content": "<x>"}], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}' > bigadded.json
check_fails "tokenizer.json added-token id beyond the entries" 3 'added_tokens\[0\] has id 99999999, beyond' limited entk-tokenize --cache-dir off -t bigadded.json ab.txt

# --- bytes after a stream's end frame
check_fails "second stream into a one-stream reader" 3 'a second stream follows \(entk-train reads one stream\)' \
    sh -c 'cat d.fr d1.fr | entk-train -q --model mlp --hidden 8 --epochs 1 -o out.fr'
{ cat d.fr; head -c 100 /dev/urandom; } > junk-after.fr
check_fails "random bytes after the end frame (one stream)" 3 'trailing data after the end frame' entk-train -q --model mlp --epochs 1 -o out.fr junk-after.fr
{ cat d.fr; printf 'x'; } > x-after.fr
check_fails "one byte after the end frame (one stream)" 3 'trailing data after the end frame' entk-jacobian -q -m $M x-after.fr
check_fails "garbage after the end frame (several streams)" 3 'trailing data after the end frame' entk-show --check x-after.fr
{ cat K.fr; printf '\x90'; } > K-after.fr
check_fails "garbage after a Gram stream (entk-eig)" 3 'trailing data after the end frame' entk-eig -q --top 3 K-after.fr
check "several streams still accepted where they are answered" sh -c 'cat d.fr d1.fr | entk-show --check'
check "no output after trailing data" test ! -e out.fr

# --- non-finite weights and configs are refused at load, naming the tensor or key
$CRAFT st-set $M nan.st W2 3 nan
check_fails "NaN in an MLP checkpoint" 3 "tensor 'W2' has a non-finite value \(nan\) at element 3" entk-jacobian -m nan.st d.fr
$CRAFT st-set $M inf.st W1 0 inf
check_fails "Inf in an MLP checkpoint (--init)" 3 "tensor 'W1' has a non-finite value \(inf\) at element 0" \
    entk-train -q --model mlp --hidden 8 --epochs 1 --init inf.st -o out.fr d.fr
entk-mkgemma -q -o g --preset tiny --dtype bf16 --seed 1
mkdir -p gnan geps
cp g/config.json gnan/ && $CRAFT st-set g/model.safetensors gnan/model.safetensors model.layers.1.mlp.up_proj.weight 7 nan
check_fails "NaN in a Gemma 3 weight" 3 "tensor 'model.layers.1.mlp.up_proj.weight' has a non-finite value \(nan\) at element 7" \
    entk-forward -q -m gnan --ids 1,2,3 --outputs hidden -o out.fr
cp g/model.safetensors geps/ && sed 's/"rms_norm_eps": [^,]*/"rms_norm_eps": 0/' g/config.json > geps/config.json
check_fails "rms_norm_eps = 0" 3 "'rms_norm_eps' must be positive" entk-forward -q -m geps --ids 1,2,3 --outputs hidden -o out.fr
sed -i 's/"rms_norm_eps": [^,]*/"rms_norm_eps": -1e-6/' geps/config.json
check_fails "rms_norm_eps < 0" 3 "'rms_norm_eps' must be positive" entk-forward -q -m geps --ids 1,2,3 --outputs hidden -o out.fr
mkdir -p gbig && cp g/model.safetensors gbig/
$PY -c "import json, sys; c = json.load(open('g/config.json')); c.pop('layer_types', None)
c.update(vocab_size=1 << 24, hidden_size=1 << 16, num_hidden_layers=4096, head_dim=1 << 16, intermediate_size=1 << 20)
json.dump(c, open('gbig/config.json', 'w'))"
check_fails "config.json claiming 4096 layers of head_dim 65536 over a tiny model" 3 "tensor 'model.embed_tokens.weight' has shape \[512,64\], expected \[16777216,65536\]" \
    limited entk-forward -q -m gbig --ids 1,2,3 --outputs hidden -o out.fr
cp $S/stories260K.bin nan.bin
printf '\x00\x00\xc0\x7f' | dd of=nan.bin bs=1 seek=$((28 + 4 * 1000)) conv=notrunc status=none
check_fails "NaN in a llama2.c checkpoint" 3 "tensor 'token_embedding_table' has a non-finite value at element 1000" \
    entk-forward -q -m nan.bin --ids 1,2,3 --outputs hidden -o out.fr
check "no output after bad weights" test ! -e out.fr

# --- option ranges
check_fails "entk-train --lr -1" 2 '\-\-lr must be > 0' entk-train --model mlp --lr -1 d.fr
check_fails "entk-train --lr 0" 2 '\-\-lr must be > 0' entk-train --model mlp --lr 0 d.fr
check_fails "entk-train --wd -0.5" 2 '\-\-wd must be >= 0' entk-train --model mlp --wd -0.5 d.fr
check_fails "entk-train --epochs -1" 2 '\-\-epochs needs an integer' entk-train --model mlp --epochs -1 d.fr
check_fails "entk-mkgemma --qscalar -1" 2 '\-\-qscalar must be > 0' entk-mkgemma -o gq --qscalar -1

# --- entk-show -o FILE
entk-show -o shown.txt d.fr > shown.stdout
check "entk-show -o writes the file" bash -c "entk-show d.fr | cmp - shown.txt"
check "entk-show -o leaves stdout empty" test ! -s shown.stdout

# --- pipes: frames from one filter into another that also takes text (the reader owns stdin)
for i in $(seq 300); do echo "Once upon a time there was a little girl who had $i red balls."; done > story.txt
check "tokenize | tokenize --decode - (frames, $(stat -c %s story.txt) bytes)" \
    bash -c "entk-tokenize -q -t $S/tok512.bin --lines story.txt | entk-tokenize -q -t $S/tok512.bin --lines --decode - | cmp - story.txt"
check "tokenize --text | tokenize --decode - (lines of ids)" \
    bash -c "entk-tokenize -q -t $S/tok512.bin --lines --text story.txt | entk-tokenize -q -t $S/tok512.bin --lines --decode - | cmp - story.txt"

# --- a terminal is not a pipe: binary frames are refused there, text is not
tty_run() { script -qec "$1" /dev/null < /dev/null; }
out=$(tty_run "entk-modadd -p 3" 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q 'will not write binary frames to a terminal: pipe them into entk-show' \
    && [ "$(echo "$out" | grep -c .)" -eq 1 ] && pass "frames refused on a terminal" || fail "frames refused on a terminal" "rc=$rc: $out"
out=$(tty_run "entk-modadd -p 3 | entk-show --name pairs --fields p" 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q '^3' && pass "a pipe to entk-show on a terminal works" || fail "a pipe to entk-show on a terminal works" "rc=$rc: $out"
