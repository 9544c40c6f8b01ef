#!/usr/bin/env bash
# entk-forward and entk-mkgemma: Gemma 3 (random models) and llama2.c (stories260K) forwards
# against plain PyTorch re-implementations (tests/peer/gemma3_ref.py, tests/peer/llama2_ref.py),
# the two modular-addition models against their PyTorch forwards (tests/peer/ntk_ref.py --forward),
# and one-line errors for bad model files and for a model that does not fit its data.
. "$(dirname "$0")/lib.sh"
G=$ROOT/tests/peer/gemma3_ref.py
L=$ROOT/tests/peer/llama2_ref.py
S=$SHARED/models/stories260K

# compare NAME MODEL IDS PEER [entk-forward options...]: runs entk-forward on IDS and the peer's
# compare on its frames; prints the peer's summary as INFO.
compare() {
    local name=$1 model=$2 ids=$3 peer=$4 extra=""
    shift 4
    [[ " $* " == *" --bf16-embed-scale "* ]] && extra=--bf16-embed-scale
    if ! entk-forward -q -m "$model" --ids "$ids" "$@" -o "$T/out.frames" 2>"$T/err"; then
        fail "$name" "entk-forward: $(tail -n 2 "$T/err" | tr '\n' ' ')"
        return
    fi
    if $PY "$peer" compare "$model" "$ids" "$T/out.frames" $extra >"$T/cmp" 2>&1; then
        pass "$name"
    else
        fail "$name" "$(grep -E 'rel err [0-9.e+-]+$|DIFFERENT|FAIL|Error' "$T/cmp" | sort -k5 -g | tail -n 3 | tr '\n' ' ')"
    fi
    echo "INFO $name: $(tail -n 1 "$T/cmp")"
}

# ---- tiny Gemma 3 (hidden 64, 4 layers: local, local, global, local; sliding window 8), windows
# of 20 tokens so that later positions lie beyond the window; 5 windows in batches of 3.
IDS=$($PY "$G" randids --vocab 512 --windows 5 --len 20 --seed 2)
for dt in f32 bf16; do
    entk-mkgemma -q -o "$T/tiny-$dt" --preset tiny --dtype $dt --seed 1
    compare "gemma3 tiny $dt: logits, hidden, resid and mlp of every layer at every position match torch" \
        "$T/tiny-$dt" "$IDS" "$G" --outputs logits,hidden,resid,mlp --positions all --batch 3
done
compare "gemma3 tiny bf16: transformers' bf16 embedding scale" "$T/tiny-bf16" "$IDS" "$G" \
    --outputs logits,hidden --positions all --bf16-embed-scale

# attention and final logit softcapping, untied head, linear RoPE scaling on global layers,
# multi-query attention (4 heads, 1 kv head), query_pre_attn_scalar != head_dim
entk-mkgemma -q -o "$T/tiny-var" --preset tiny --dtype f32 --seed 3 --kv-heads 1 --attn-softcap 2 \
    --final-softcap 3 --untied --rope-scaling 4 --qscalar 20 --pattern 2 --std 0.05
compare "gemma3 tiny with softcapping, untied head, rope scaling, MQA: logits and hidden match torch" \
    "$T/tiny-var" "$IDS" "$G" --outputs logits,hidden,resid --positions 0,7,8,-1 --layers 1,-1

# ---- Gemma-3-270M shapes (vocab 262144, hidden 640, ffn 2048, 4 heads / 1 kv of 256), 6 of its
# 18 layers so that layer 5 is global; bf16 as published.
entk-mkgemma -q -o "$T/g270" --preset 270m --layers 6 --dtype bf16 --seed 4
IDS270=$($PY "$G" randids --vocab 262144 --windows 2 --len 24 --seed 5)
compare "gemma3 270M-shaped bf16: logits and hidden at two positions match torch" "$T/g270" "$IDS270" "$G" \
    --outputs logits,hidden,resid --positions 3,-1 --layers 0,5
rm -rf "$T/g270"
# and in f32 (2 layers keep the file and the peer's memory small; the global layer is checked above)
entk-mkgemma -q -o "$T/g270f" --preset 270m --layers 2 --dtype f32 --seed 6
compare "gemma3 270M-shaped f32: logits and hidden at two positions match torch" "$T/g270f" "$IDS270" "$G" \
    --outputs logits,hidden,resid --positions 3,-1 --layers 0,1
rm -rf "$T/g270f"

# ids from a frame stream ([T] frames and one [N,T] frame) give what --ids gives
check "ids from an 'ids' frame stream equal --ids" sh -c "
    lm-ids '$IDS' | entk-forward -q -m '$T/tiny-f32' --outputs hidden --positions all | entk-show --name hidden --values > '$T/a'
    lm-ids --matrix '$IDS' | entk-forward -q -m '$T/tiny-f32' --outputs hidden --positions all | entk-show --name hidden --values > '$T/b'
    entk-forward -q -m '$T/tiny-f32' --ids '$IDS' --outputs hidden --positions all | entk-show --name hidden --values > '$T/c'
    test -s '$T/a' && cmp '$T/a' '$T/b' && cmp '$T/a' '$T/c'"

check "entk-mkgemma is deterministic in its seed" sh -c "
    entk-mkgemma -q -o '$T/again' --preset tiny --dtype f32 --seed 1 && cmp '$T/again/model.safetensors' '$T/tiny-f32/model.safetensors' &&
    entk-mkgemma -q -o '$T/other' --preset tiny --dtype f32 --seed 2 && ! cmp -s '$T/other/model.safetensors' '$T/tiny-f32/model.safetensors'"

# ---- stories260K: greedy continuation of "Once upon a time" (BOS + run.c's encoding, by the peer)
OUIDS=$($PY "$L" encode "$S/tok512.bin" "Once upon a time")
compare "stories260K: logits, hidden, resid, mlp and 80 greedy tokens match torch token for token" \
    "$S/stories260K.bin" "$OUIDS;1,403,407,261,379,261,261" "$L" \
    --outputs logits,hidden,resid,mlp --positions all --generate 80 --vocab "$S/tok512.bin"
entk-forward -q -m "$S/stories260K.bin" --ids "$OUIDS" --generate 80 --vocab "$S/tok512.bin" --outputs hidden |
    entk-show --name text --fields text >"$T/story" 2>&1
if head -n 1 "$T/story" | grep -q "^Once upon a time, there was a little girl named Lily"; then
    pass "stories260K: the greedy story starts 'Once upon a time, there was a little girl named Lily'"
else
    fail "stories260K: the greedy story starts 'Once upon a time, there was a little girl named Lily'" "got: $(head -c 120 "$T/story")"
fi
echo "INFO story: $(head -n 1 "$T/story")"
check "stories260K: the decoded text equals the peer's decoding of the same ids" sh -c "
    entk-forward -q -m '$S/stories260K.bin' --ids '$OUIDS' --generate 80 --vocab '$S/tok512.bin' --outputs hidden > '$T/g.frames' &&
    gen=\$(entk-show --name generated --values '$T/g.frames' | tr '\t' ',') &&
    $PY '$L' decode '$S/tok512.bin' '$OUIDS,'\"\$gen\" > '$T/peer.txt' &&
    entk-show --name text --fields text '$T/g.frames' | sed 's/\\\\n/\\n/g' > '$T/entk.txt' && cmp '$T/peer.txt' '$T/entk.txt'"

printf 'Once upon a time' >"$T/once.txt"
check "entk-tokenize's ids stream drives the story" sh -c "
    entk-tokenize -q -t '$S/tok512.bin' '$T/once.txt' | entk-forward -q -m '$S/stories260K.bin' --generate 20 \
        --vocab '$S/tok512.bin' --outputs hidden | entk-show --name text --fields text | grep -q '^Once upon a time, there was a little girl'"

check "--help examples work" sh -c "cd '$ROOT' &&
    eval \"\$(entk-forward --help | sed -n '/^Examples:/,\$p' | sed -n '2,3p' | sed 's/\\\\\$//' | tr -d '\n')\" | grep -q '\"generated\"' &&
    entk-mkgemma --help | grep -q 'Example'"

# ---- bad input: one line, exit 3 (model files) or 2 (usage)
mkdir -p "$T/bad"
cp -r "$T/tiny-f32" "$T/bad/trunc" && head -c 200 "$T/tiny-f32/config.json" >"$T/bad/trunc/config.json"
check_fails "malformed config.json" 3 "config.json: malformed JSON" entk-forward -m "$T/bad/trunc" --ids 1,2
cp -r "$T/tiny-f32" "$T/bad/kind" && sed -i 's/"gemma3_text"/"llama"/' "$T/bad/kind/config.json"
check_fails "unsupported model_type" 3 "unsupported model_type 'llama'" entk-forward -m "$T/bad/kind" --ids 1,2
cp -r "$T/tiny-f32" "$T/bad/nolay" && $PY -c "
import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['num_hidden_layers']=5; c['layer_types'].append('sliding_attention'); json.dump(c,open(p,'w'))" "$T/bad/nolay/config.json"
check_fails "missing tensor is named" 3 "tensor 'model.layers.4.input_layernorm.weight' is missing" entk-forward -m "$T/bad/nolay" --ids 1,2
cp -r "$T/tiny-f32" "$T/bad/shape" && sed -i 's/"intermediate_size": 128/"intermediate_size": 96/' "$T/bad/shape/config.json"
check_fails "tensor of the wrong shape is named" 3 "tensor 'model.layers.0.mlp.gate_proj.weight' has shape \[128,64\], expected \[96,64\]" \
    entk-forward -m "$T/bad/shape" --ids 1,2
cp -r "$T/tiny-f32" "$T/bad/extra" && $PY -c "
import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['num_hidden_layers']=3; c['layer_types']=c['layer_types'][:3]; json.dump(c,open(p,'w'))" "$T/bad/extra/config.json"
check_fails "tensors beyond the config are named" 3 "tensor 'model.layers.3.[a-z_.]+' is not part of the model" entk-forward -m "$T/bad/extra" --ids 1,2
cp "$T/tiny-f32/config.json" "$T/bad/" && mkdir -p "$T/bad/nofile" && cp "$T/tiny-f32/config.json" "$T/bad/nofile/"
check_fails "missing model.safetensors" 3 "model.safetensors" entk-forward -m "$T/bad/nofile" --ids 1,2
head -c 5000 "$S/stories260K.bin" >"$T/bad/short.bin"
check_fails "truncated llama2.c checkpoint" 3 "short.bin: 5000 bytes, but its header" entk-forward -m "$T/bad/short.bin" --ids 1,2
check_fails "token id outside the vocabulary" 3 "token id 512 .* outside the vocabulary" entk-forward -q -m "$S/stories260K.bin" --ids 1,512
check_fails "float ids frame" 3 "token ids must be i32 or i64" sh -c "lm-ids --f32 1,2 | entk-forward -q -m '$S/stories260K.bin'"
check_fails "unknown output" 2 "unknown output 'probs'" entk-forward -m "$S/stories260K.bin" --ids 1,2 --outputs probs

# ---- the modular-addition models: an entk-train checkpoint over an entk-modadd stream, logits
# [N, p] and hidden states against the PyTorch forward (1e-10 relative in f64, 1e-5 in f32)
NTK=$ROOT/tests/peer/ntk_ref.py
entk-modadd -p 11 -o "$T/dm.fr"
entk-train -q --model mlp --hidden 64 --epochs 4 --ckpt-every 4 --ckpt-dir "$T/ckm" -o "$T/mm.fr" "$T/dm.fr"
entk-modadd -p 11 --encoding tokens --train-frac 0.5 -o "$T/dt.fr"
entk-train -q --model transformer --d-model 16 --heads 2 --d-mlp 32 --epochs 4 --ckpt-every 4 --ckpt-dir "$T/ckt" \
    -o "$T/mt.fr" "$T/dt.fr"
MM=$T/ckm/epoch-00004.safetensors MT=$T/ckt/epoch-00004.safetensors
for dt in f64 f32; do
    check "modadd MLP ($dt): logits [121,11] and hidden [121,64] match torch" sh -c "
        entk-forward -q -m '$MM' --dtype $dt --outputs logits,hidden -o '$T/fm-$dt.fr' '$T/dm.fr' &&
        test \"\$(entk-show --name logits '$T/fm-$dt.fr' | grep -o '\"shape\":\[[0-9,]*\]')\" = '\"shape\":[121,11]' &&
        $PY '$NTK' --forward '$MM' '$T/dm.fr' '$T/fm-$dt.fr'"
    check "modadd Transformer ($dt): logits [121,11] and hidden [121,16] match torch" sh -c "
        entk-forward -q -m '$MT' --dtype $dt --outputs logits,hidden -o '$T/ft-$dt.fr' < '$T/dt.fr' &&
        test \"\$(entk-show --name hidden '$T/ft-$dt.fr' | grep -o '\"shape\":\[[0-9,]*\]')\" = '\"shape\":[121,16]' &&
        $PY '$NTK' --forward '$MT' '$T/dt.fr' '$T/ft-$dt.fr'"
done
check "modadd: the logits are those entk-train evaluates (argmax = its train accuracy)" $PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/peer')
from entkio import tensors, records
d = tensors('$T/dm.fr'); L = tensors('$T/fm-f64.fr')['logits']['array']
tr = d['train']['array'].astype(bool); y = d['labels']['array']
acc = float((L.argmax(1) == y)[tr].mean())
last = [r['meta'] for r in records('$T/mm.fr')][-1]
sys.exit(0 if abs(acc - last['train_acc']) < 1e-12 else 1)"
entk-modadd -p 13 -o "$T/d13.fr"
check_fails "modadd: data of another p" 3 "d13.fr: data has p=13 but the model has p=11" entk-forward -m "$MM" "$T/d13.fr"
check_fails "modadd: one-hot data for the Transformer" 3 "model needs tokens inputs, data has onehot" entk-forward -m "$MT" "$T/dm.fr"
check_fails "modadd: token data for the MLP" 3 "model needs onehot inputs, data has tokens" entk-forward -m "$MM" "$T/dt.fr"
check_fails "modadd: a language-model option" 2 "--generate is for language models" entk-forward -m "$MM" --generate 3 "$T/dm.fr"
check_fails "modadd: an output it does not have" 2 "'resid' is not an output of a modular-addition model" \
    entk-forward -m "$MM" --outputs resid "$T/dm.fr"
check_fails "language model: --dtype" 2 "--dtype is for the modular-addition models" \
    entk-forward -m "$S/stories260K.bin" --dtype f64 --ids 1,2
check_fails "a safetensors file that is not an entk checkpoint" 3 "model.safetensors: a safetensors file without entk_model" \
    entk-forward -m "$T/tiny-f32/model.safetensors" --ids 1,2
