#!/usr/bin/env bash
# Interrupted and concurrent runs of a pipeline (pipelines/runs.mk): two make runs on one OUT both
# succeed with the same summary as a run alone; a run killed with -9 at a random moment, then run
# again, gives a byte-identical summary, reuses the blocks it had stored and leaves no temporary
# files; summarize.sh and report.sh fail with one line instead of writing blank values.
source "$(dirname "$0")/lib.sh"
cd "$T"
MK="make -s -C $ROOT/pipelines/mlp-modadd"
ARGS="P=11 HIDDEN=64 EPOCHS=60 EVERY=10 TOP=60 BIN=$ROOT/bin"
ENTK_CACHE_DIR=$T/c0 $MK -j2 $ARGS OUT=$T/ref
check "a run alone writes its summary" test -s ref/summary.json

# --- two runs on one OUT at once (one cache, empty: both compute)
export ENTK_CACHE_DIR=$T/c1
$MK $ARGS OUT=$T/both > a.out 2> a.err & a=$!
$MK $ARGS OUT=$T/both > b.out 2> b.err & b=$!
wait $a; ra=$?; wait $b; rb=$?
check "two concurrent runs on one OUT: both succeed" test "$ra $rb" = "0 0"
check "two concurrent runs: the summary of a run alone, byte for byte" cmp ref/summary.json both/summary.json
check "two concurrent runs: the report of a run alone" cmp ref/report.md both/report.md
check "two concurrent runs: no temporary files left" test -z "$(find both c1 -name '*.tmp.*')"
check "two concurrent runs: said nothing on stderr" test ! -s a.err -a ! -s b.err

# --- kill -9 at a random moment once blocks are being stored, then run again
RANDOM=$$
for i in 1 2 3; do
    export ENTK_CACHE_DIR=$T/k$i
    setsid $MK -j2 $ARGS OUT=$T/killed$i > /dev/null 2>&1 & pg=$!
    for _ in $(seq 400); do [ -n "$(find "$ENTK_CACHE_DIR/objects" -type f ! -name '*.tmp.*' 2>/dev/null | head -n 1)" ] && break; sleep 0.01; done
    sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
    kill -9 -- -$pg 2>/dev/null; wait $pg 2>/dev/null
    # the entries stored before the kill, by inode: a hit only touches an entry, a recomputation
    # would replace it (a new file renamed into place)
    find "$ENTK_CACHE_DIR/objects" -type f ! -name '*.tmp.*' -printf '%i %p\n' | sort > before$i
    $MK -j2 $ARGS Q= OUT=$T/killed$i > rerun$i.out 2> rerun$i.err
    check "killed run $i ($(wc -l < before$i) entries stored), run again: summary byte-identical" cmp ref/summary.json killed$i/summary.json
    hits=$(grep -o 'cache: [0-9]* hits' rerun$i.err | awk '{s += $2} END {print s + 0}')
    check "killed run $i, run again: nothing stored before is recomputed ($hits hits)" \
        bash -c "[ \$(join -j 2 -o 1.1,2.1 <(sort -k2 before$i) <(find '$ENTK_CACHE_DIR/objects' -type f -printf '%i %p\n' | sort -k2) \
                  | awk '\$1 == \$2' | wc -l) -eq \$(wc -l < before$i) ] && [ -s before$i ]"
    left=$(find killed$i k$i -name '*.tmp.*')
    check "killed run $i, run again: no temporary files left in OUT or the cache" test -z "$left"
    [ -z "$left" ] || echo "INFO left: $left"
done

# --- blank values fail the step with one line
cp -r ref blank
sed -i 's/^  "overlap_sum": .*$/  "overlap_sum": ,/' blank/summary.json
check_fails "report.sh refuses a summary with a blank value" 1 '^report.sh: error: .*/blank/summary.json has no value for overlap_sum$' \
    env BIN="$ROOT/bin" P=11 D=10 CLIFF1=2:21 CLIFF2=22:41 LAST=00060 bash -c "cd $ROOT/pipelines/mlp-modadd && bash report.sh $T/blank"
check "... and leaves the old report in place" cmp ref/report.md blank/report.md
rm blank/final/align-W1.frames
check_fails "summarize.sh refuses to write a summary with values missing" 1 \
    '^summarize.sh: error: no value for "layer1_cliff1_overlap_n" "layer1_cliff1_overlap_m" \(entk-show: error: cannot open .*align-W1.frames' \
    env BIN="$ROOT/bin" P=11 D=10 EVERY=10 ONSET_ACC=0.1 LAST=00060 bash -c "cd $ROOT/pipelines/mlp-modadd && bash summarize.sh $T/blank"
