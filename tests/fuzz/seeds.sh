#!/usr/bin/env bash
# Seed corpora for the fuzz harnesses (tests/fuzz/fuzz_*.c), made of real files: streams and
# checkpoints written by entk's own filters, the shared stories260K tokenizer, UD treebank
# excerpts, Gemma 3 configs, and the real Gemma 3 tokenizer.json cut down to a small vocabulary
# (when it has been fetched). Test scaffolding, not product.
#   bash tests/fuzz/seeds.sh DIR     -> DIR/<harness>/* for every harness
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
SHARED=${ENTK_SHARED:-$ROOT/../shared}
export PATH="${ENTK_BIN:-$ROOT/bin}:$PATH"
export ENTK_CACHE_DIR=off
PY=/usr/bin/python3
W=$(mktemp -d "${TMPDIR:-/tmp}/entk-seeds.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"
for h in frame safetensors json config tokenizer_json tokenizer_bin llama2 conllu; do mkdir -p "$OUT/$h"; done

# frame streams: data sets, features, Jacobian blocks, Grams (full and factored), eigenpairs,
# overlaps, training metrics, token ids; two streams back to back
entk-modadd -q -p 3 -o "$OUT/frame/modadd-onehot.fr"
entk-modadd -q -p 3 --encoding tokens --rng python -o "$OUT/frame/modadd-tokens.fr"
entk-features -q -p 3 --family sum,random -o "$OUT/frame/features.fr"
entk-train -q --model mlp --hidden 4 --epochs 2 --ckpt-every 2 --ckpt-dir ck -o "$OUT/frame/metrics.fr" "$OUT/frame/modadd-onehot.fr"
entk-jacobian -q -m ck/epoch-00002.safetensors "$OUT/frame/modadd-onehot.fr" -o "$OUT/frame/jacobian.fr"
entk-gram -q -o "$OUT/frame/gram.fr" "$OUT/frame/jacobian.fr"
entk-gram -q --factor -o "$OUT/frame/gram-factor.fr" "$OUT/frame/jacobian.fr"
entk-eig -q --top 3 -o "$OUT/frame/eig.fr" "$OUT/frame/gram.fr"
entk-align -q --range 1:2 -o "$OUT/frame/align.fr" "$OUT/frame/eig.fr" <(entk-features -q -p 3 --family sum)
printf 'Once upon a time.\nThe end.\n' > story.txt
entk-tokenize -q -t "$SHARED/models/stories260K/tok512.bin" --lines -o "$OUT/frame/tokens.fr" story.txt
cat "$OUT/frame/modadd-onehot.fr" "$OUT/frame/features.fr" > "$OUT/frame/two-streams.fr"

# safetensors: MLP and Transformer checkpoints (f32, f64), a small Gemma 3 model (bf16)
cp ck/epoch-00002.safetensors "$OUT/safetensors/mlp.st"
entk-train -q --model mlp --hidden 4 --epochs 0 --ckpt-dir ck64 --dtype f64 -o /dev/null "$OUT/frame/modadd-onehot.fr"
cp ck64/epoch-00000.safetensors "$OUT/safetensors/mlp-f64.st"
entk-train -q --model transformer --d-model 4 --heads 2 --d-mlp 8 --epochs 0 --ckpt-dir ckt -o /dev/null "$OUT/frame/modadd-tokens.fr"
cp ckt/epoch-00000.safetensors "$OUT/safetensors/transformer.st"
entk-mkgemma -q -o g --preset tiny --vocab 16 --hidden 8 --layers 1 --ffn 8 --heads 2 --kv-heads 1 --head-dim 4 --seed 1
cp g/model.safetensors "$OUT/safetensors/gemma-bf16.st"

# config.json: Gemma 3 configs as entk-mkgemma writes them (tiny, 270M shapes, softcaps, untied),
# and the multimodal wrapper (model_type gemma3 with a text_config)
cp g/config.json "$OUT/config/tiny.json"
entk-mkgemma -q -o g2 --preset tiny --layers 2 --vocab 8 --attn-softcap 2 --final-softcap 30 --rope-scaling 8 --untied
cp g2/config.json "$OUT/config/softcap-untied.json"
$PY - "$OUT/config" <<'EOF'
import json, sys
out = sys.argv[1]
tiny = json.load(open(out + "/tiny.json"))
json.dump({"model_type": "gemma3", "text_config": dict(tiny, model_type="gemma3_text")}, open(out + "/wrapped.json", "w"))
lt = dict(tiny, layer_types=["sliding_attention"] * (tiny["num_hidden_layers"] - 1) + ["full_attention"],
          rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                           "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0}})
json.dump(lt, open(out + "/layer-types.json", "w"))
EOF

# JSON: all of the above, and safetensors headers
cp "$OUT"/config/*.json "$OUT/json/"
for f in "$OUT"/safetensors/*.st; do
    n=$(od -An -tu8 -N8 "$f" | tr -d ' ')
    tail -c +9 "$f" | head -c "$n" > "$OUT/json/header-$(basename "$f" .st).json"
done

# tokenizer.json: a small one through the paths Gemma 3 does not take, and the real Gemma 3 file
# cut down to ids below 1000 (its normalizer, pre-tokenizer, post-processor, decoder, byte fallback)
cat > "$OUT/tokenizer_json/mini.json" <<'EOF'
{"version": "1.0", "added_tokens": [
  {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
  {"id": 12, "content": "[X]", "single_word": false, "lstrip": true, "rstrip": true, "normalized": false, "special": false}],
 "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
 "pre_tokenizer": {"type": "Split", "pattern": {"String": "-"}, "behavior": "Isolated", "invert": false},
 "post_processor": null, "decoder": null,
 "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": false,
  "vocab": {"<unk>": 0, "<s>": 1, "\u2581": 2, "a": 3, "b": 4, "c": 5, "ab": 6, "\u2581a": 7, "\u2581ab": 8, "bc": 9, "abc": 10, "cc": 11},
  "merges": ["a b", "\u2581 a", "\u2581a b", "b c", "ab c", "c c"]}}
EOF
GEMMA_TOK=$(ls ~/.cache/entk/downloads/*/tokenizer.json 2>/dev/null | head -n 1 || true)
if [ -n "$GEMMA_TOK" ]; then
    $PY - "$GEMMA_TOK" "$OUT/tokenizer_json/gemma3-small.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
m = d["model"]
vocab = {k: v for k, v in m["vocab"].items() if v < 1000}
merges = [mg for mg in m["merges"] if mg[0] in vocab and mg[1] in vocab and mg[0] + mg[1] in vocab][:300]
d["added_tokens"] = [a for a in d["added_tokens"] if a["id"] < 1000]
d["model"] = dict(m, vocab=vocab, merges=merges)
json.dump(d, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
EOF
fi

# tokenizer.bin: the shared llama2.c tokenizer
cp "$SHARED/models/stories260K/tok512.bin" "$OUT/tokenizer_bin/tok512.bin"

# llama2.c checkpoints: stories260K's layout at toy sizes (shared and separate classifier, GQA)
$PY - "$OUT/llama2" <<'EOF'
import random, struct, sys
def ckpt(path, dim, hidden, layers, heads, kv, vocab, seq, shared):
    hs = dim // heads
    kvd = kv * hs
    n = (vocab * dim + layers * dim + layers * dim * dim + 2 * layers * dim * kvd + layers * dim * dim + layers * dim
         + 3 * layers * dim * hidden + dim + seq * hs + (0 if shared else vocab * dim))
    rnd = random.Random(1)
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", dim, hidden, layers, heads, kv, vocab if shared else -vocab, seq))
        f.write(struct.pack("<%df" % n, *[rnd.gauss(0, 0.1) for _ in range(n)]))
ckpt(sys.argv[1] + "/tiny.bin", 8, 16, 1, 2, 2, 16, 8, True)
ckpt(sys.argv[1] + "/tiny-gqa-unshared.bin", 8, 12, 2, 4, 2, 10, 4, False)
EOF

# CoNLL-U: the first sentences of a UD treebank with features and of a CHILDES one without
head -n 80 "$SHARED/data/ud/en_ewt-ud-dev.conllu" > "$OUT/conllu/ewt.conllu"
head -n 60 "$SHARED/data/ud/childes-Eve_Brown_eud_gold.conllu" > "$OUT/conllu/childes.conllu"
