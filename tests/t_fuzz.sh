#!/usr/bin/env bash
# The fuzz harnesses (tests/fuzz, README "Fuzzing"): they build, each survives a short run from
# seeds made of real files, and every input that once crashed a decoder (tests/fuzz/regress) is
# replayed. The long runs are make fuzz-long.
source "$(dirname "$0")/lib.sh"
cd "$T"
FUZZERS="frame safetensors json config tokenizer_json tokenizer_bin llama2 conllu"
if ! command -v clang-14 >/dev/null; then
    fail "fuzz harnesses build" "clang-14 is not installed (make deps installs it)"
    exit 0
fi
if make -s -C "$ROOT" fuzz >build.log 2>&1; then pass "make fuzz builds the harnesses"; else
    fail "make fuzz builds the harnesses" "$(tail -n 3 build.log)"; exit 0; fi
check "seed corpora from real files" bash "$ROOT/tests/fuzz/seeds.sh" seeds
for h in $FUZZERS; do
    mkdir -p corpus/$h crash/$h
    cp seeds/$h/* corpus/$h/
    if "$ROOT/build-fuzz/fuzz_$h" -max_total_time=2 -timeout=10 -rss_limit_mb=2048 -artifact_prefix=crash/$h/ corpus/$h >$h.log 2>&1; then
        pass "fuzz_$h: $(grep -o 'Done [0-9]* runs' $h.log | cut -d' ' -f2) inputs in 2 s, no crash"
    else
        fail "fuzz_$h: short run" "$(grep -E 'ERROR|SUMMARY|runtime error' $h.log | head -n 2 | tr '\n' ' ') $(ls crash/$h)"
    fi
    reg=("$ROOT/tests/fuzz/regress/$h"/*)
    if [ -e "${reg[0]}" ]; then
        if "$ROOT/build-fuzz/fuzz_$h" "${reg[@]}" >$h.reg.log 2>&1; then
            pass "fuzz_$h: ${#reg[@]} regression inputs replayed"
        else
            fail "fuzz_$h: regression inputs" "$(grep -E 'ERROR|SUMMARY|runtime error|Running' $h.reg.log | tail -n 2 | tr '\n' ' ')"
        fi
    fi
done
