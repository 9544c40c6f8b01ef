#!/usr/bin/env bash
# A cache that cannot lie: keys follow content (a stream edited under its old header gets new
# results) and the code (another build of a program, another kernel family get other keys); what a
# hit returns is authenticated with the cache's secret and checked against the request, and a
# refused entry is reported even under -q, removed and recomputed; results do not depend on the
# thread count, or the thread count is in the key.
source "$(dirname "$0")/lib.sh"
cd "$T"
CRAFT="$PY $ROOT/tests/peer/craft.py"
export ENTK_CACHE_DIR=$T/c

entk-modadd -p 11 -o d.fr
entk-train -q --model mlp --hidden 128 --epochs 20 --ckpt-every 20 --ckpt-dir ck -o /dev/null d.fr
M=ck/epoch-00020.safetensors
vals() { entk-show --values "$@"; }

# --- keys follow content
entk-jacobian -q -m $M d.fr | entk-gram -q | entk-eig -q --top 5 -o e0.fr
$CRAFT fr-set d.fr d2.fr x 0 0.5   # one input changed, the header (and its key) kept
check "the edited data keeps its old header key" test "$(entk-show d.fr | head -n 1)" = "$(entk-show d2.fr | head -n 1)"
entk-jacobian -m $M d2.fr 2>j2.err | entk-gram -q | entk-eig -q --top 5 -o e2.fr
check "data edited under its old header: no block served from the old data" grep -q ' 0 hits, 2 misses' j2.err
entk-jacobian -q -m $M --cache-dir off d2.fr | entk-gram -q --cache-dir off | entk-eig -q --top 5 -o e2-fresh.fr
check "data edited under its old header: the eigenvalues of the new data" cmp <(vals e2.fr) <(vals e2-fresh.fr)
check "... which are not the old ones" bash -c "! cmp -s <(entk-show --values e0.fr) <(entk-show --values e2.fr)"
# a Jacobian stream edited under its old header: the Gram of what it holds
entk-jacobian -q -m $M d.fr > J.fr
entk-gram -q -o K.fr J.fr
$CRAFT fr-set J.fr J2.fr X 3 0.25
entk-gram -o K2.fr J2.fr 2>k2.err
entk-gram -q --cache-dir off -o K2-fresh.fr J2.fr
check "Jacobian edited under its old header: a miss" grep -q ' 0 hits, 1 misses' k2.err
check "Jacobian edited under its old header: the Gram of its content" cmp <(vals K2.fr) <(vals K2-fresh.fr)
# the Gram of a stream seen before is served without adding it up again (spooled, then a hit)
entk-gram -o K3.fr J.fr 2>k3.err
check "Gram of a known stream: a hit" grep -q ' 1 hits, 0 misses' k3.err
check "Gram of a known stream: no accumulation" bash -c "! grep -q GFLOP k3.err"
entk-gram --spool-mb 0 -o K4.fr J.fr 2>k4.err
check "--spool-mb 0: still a hit, the same Gram" bash -c "grep -q ' 1 hits, 0 misses' k4.err && cmp -s K3.fr K4.fr && cmp -s K.fr K3.fr"
check "header keys follow content: same content, same key" test "$(entk-show K.fr | head -n 1)" = "$(entk-show K3.fr | head -n 1)"

# --- code identity: another build of the program, another kernel family: other keys
cc -O1 -std=c11 -D_GNU_SOURCE -fopenmp -I"$ROOT/include" -DENTK_TOOL_ID='"another"' -o jac-other \
    "$ROOT/bin/entk-jacobian.c" "$ROOT/build/libentk.a" -lopenblas -llapacke -lmsgpackc -lxxhash -lmvec -lm -lpthread 2>cc.err
./jac-other -m $M d.fr 2>jo.err >/dev/null
check "a program built from another source: its own keys (no hits)" grep -q ' 0 hits, 2 misses' jo.err
now=$(entk-show --blas)
other=$([ "$now" = Haswell ] && echo Sandybridge || echo Haswell)
if grep -qw avx2 /proc/cpuinfo; then
    OPENBLAS_CORETYPE=$other entk-jacobian -m $M d.fr 2>jk.err >/dev/null
    check "another OpenBLAS kernel family ($other): its own keys (no hits)" grep -q ' 0 hits, 2 misses' jk.err
fi
check "the code identity is the sources' hash, made by the Makefile" grep -Eq '^#define ENTK_LIB_ID "[0-9a-f]{32}"$' "$ROOT/build/entk-codeid.h"

# --- what a hit returns is verified (in a cache of its own, holding just the two blocks of d.fr)
export ENTK_CACHE_DIR=$T/v
entk-jacobian -q -m $M d.fr > ref.fr
check "the cache's secret is private (mode 600)" test "$(stat -c %a v/secret)" = 600
blocks=( $(grep -l 'jacobian block' $(find v/objects -type f) | sort) )
check "entries carry a descriptor" test ${#blocks[@]} -eq 2
$CRAFT cache-forge "${blocks[0]}"
entk-jacobian -q -m $M d.fr 2>f.err >f.fr
check "forged entry with a valid (unkeyed) checksum: refused, said under -q" \
    grep -q 'refused entry .*(authenticator mismatch (corrupt, or not written by this cache)): removed, recomputing' f.err
check "forged entry: the run's summary says so under -q" grep -q 'refused entries removed and recomputed' f.err
check "forged entry: recomputed, the same frames" cmp ref.fr f.fr
# an authentic entry of another request (W1's block stored under W2's key, authenticated with the secret)
w1=$(grep -l 'block W1' "${blocks[@]}" | head -n 1); w2=$(grep -l 'block W2' "${blocks[@]}" | head -n 1)
key2=$(basename "$(dirname "$w2")")$(basename "$w2")
$CRAFT cache-rekey "$w1" "$w2" "$key2" v/secret
entk-jacobian -q -m $M d.fr 2>r.err >r.fr
check "authentic entry with another request's frames: refused naming why" grep -q "refused entry .*(frame 'X' is \[121,1,22\] f64, not of the shape" r.err
check "... and recomputed" cmp ref.fr r.fr
# an entry copied from another cache (another secret)
ENTK_CACHE_DIR=$T/c2 entk-jacobian -q -m $M d.fr >/dev/null
cp "$w1" "$T/c2/objects/${w1#v/objects/}"
ENTK_CACHE_DIR=$T/c2 entk-jacobian -q -m $M d.fr 2>x.err >x.fr
check "entry copied in from another cache: refused" grep -q 'refused entry .*authenticator mismatch' x.err
check "... and recomputed" cmp ref.fr x.fr
entk-jacobian -m $M d.fr 2>ok.err >/dev/null
check "repaired entries hit again" grep -q ' 2 hits, 0 misses' ok.err

# --- thread counts: a result's bits do not depend on them, or they are in its key
ENTK_CACHE_DIR=off
for v in OMP_NUM_THREADS OPENBLAS_NUM_THREADS; do
    for form in factored explicit; do
        env $v=1 entk-jacobian -q --cache-dir off --form $form -m $M d.fr > "J1-$form.fr"
        env $v=2 entk-jacobian -q --cache-dir off --form $form -m $M d.fr > "J2-$form.fr"
        check "Jacobian ($form): $v=1 and 2 give the same bits" cmp <(vals "J1-$form.fr") <(vals "J2-$form.fr")
        rm -rf ct
        env $v=2 entk-gram -q --cache-dir ct -o g2.fr "J1-$form.fr"
        env $v=1 entk-gram -q --cache-dir ct -o g1.fr "J1-$form.fr"
        env $v=1 entk-gram -q --cache-dir off -o g1-fresh.fr "J1-$form.fr"
        check "Gram ($form): with $v=1 after a run with 2, what a fresh run with 1 gives" cmp <(vals g1.fr) <(vals g1-fresh.fr)
        env $v=1 entk-eig -q --top 5 -o ev1.fr g1-fresh.fr
        env $v=2 entk-eig -q --top 5 -o ev2.fr g1-fresh.fr
        check "eig ($form): $v=1 and 2 give the same bits or name their thread count" bash -c \
            "cmp -s <(entk-show --values ev1.fr) <(entk-show --values ev2.fr) || [ \"\$(entk-show ev1.fr | head -n 1)\" != \"\$(entk-show ev2.fr | head -n 1)\" ]"
    done
done

# --- plumbing: entk-cache ls, fsck, gc
export ENTK_CACHE_DIR=$T/p
entk-jacobian -q -m $M d.fr | entk-gram -q > /dev/null
entk-cache ls > ls.out 2> ls.err
check "ls: one line per entry (2 blocks, a Gram, its hint)" test "$(wc -l < ls.out)" -eq 4
check "ls: what made each entry and what its key came from" bash -c \
    "grep -q \$'\tentk-jacobian\tjacobian block W1 rows 0..127 of 128, factored, f64, outputs all\tmodel [0-9a-f]*, data (content) [0-9a-f]*, code ' ls.out &&
     grep -q \$'\tentk-gram\tgram trace W1,W2 f64\tjacobian stream (content) ' ls.out"
check "ls: size and age" grep -Eq $'^[0-9a-f]{32}\t[0-9.]+[KMB]\t[0-9]+s ago\t[0-9]+s ago\t' ls.out
check "ls: the total on stderr" grep -q '4 entries, .* in ' ls.err
check "fsck: a sound cache passes" entk-cache -q fsck
gram=$(grep -l 'gram trace' $(find p/objects -type f))
printf 'X' | dd of="$gram" bs=1 seek=300 conv=notrunc status=none
check_fails "fsck: a damaged entry fails (exit 3)" 3 '1 of 4 cache entries are bad' entk-cache -q fsck
check "fsck: names the bad entry" grep -q "^bad $(basename "$(dirname "$gram")")$(basename "$gram") (gram trace W1,W2 f64): authenticator mismatch" "$T/stdout"
check "fsck --repair removes it" bash -c "entk-cache -q fsck --repair | grep -q '^removed ' && test ! -e '$gram' && entk-cache -q fsck"
# litter: temporary files of dead writers go, a live writer's stay; empty fan-out directories go
sleep 0 & wait; dead=$!
fan=p/tmp   # entries are written in DIR/tmp, as NAME.tmp.HOST.PID, then renamed into place
mkdir -p $fan
echo partial > "$fan/0123456789abcdef0123456789abcd.tmp.$(hostname).$dead"
echo partial > "$fan/0123456789abcdef0123456789abce.tmp.$(hostname).$$"
mkdir p/objects/ee
check "gc --dry-run removes nothing" bash -c "entk-cache gc --dry-run | grep -Eq '^would remove [2-9] pieces of litter' && test -e '$fan/0123456789abcdef0123456789abcd.tmp.$(hostname).$dead'"
entk-cache gc > gc.out
check "gc: a dead writer's temporary file is removed" test ! -e "$fan/0123456789abcdef0123456789abcd.tmp.$(hostname).$dead"
check "gc: a live writer's temporary file is kept" test -e "$fan/0123456789abcdef0123456789abce.tmp.$(hostname).$$"
check "gc: an empty fan-out directory is removed" test ! -e p/objects/ee
check "gc: the entries stay" test "$(entk-cache -q ls | wc -l)" -eq 3
rm -f "$fan/0123456789abcdef0123456789abce.tmp.$(hostname).$$"
# trimming: by age, then least recently used first; a hit marks an entry used
for f in $(find p/objects -type f); do touch -d '40 days ago' "$f"; done
w2=$(grep -l 'block W2' $(find p/objects -type f))
touch -d '10 days ago' "$w2"
entk-cache gc --max-age 30d > age.out
check "gc --max-age 30d: only the entry used within 30 days stays" bash -c "[ \"\$(entk-cache -q ls | cut -f1)\" = \"$(basename "$(dirname "$w2")")$(basename "$w2")\" ]"
entk-jacobian -q -m $M d.fr > /dev/null   # W2 hit (touched now), W1 stored again
w1=$(grep -l 'block W1' $(find p/objects -type f))
touch -d '1 day ago' "$w1"
entk-jacobian -q --params W2 -m $M d.fr > /dev/null   # a hit marks W2 used now
size_w2=$(stat -c %s "$w2")
entk-cache gc --max-size $((size_w2 + 10)) > size.out
check "gc --max-size: the least recently used goes first" bash -c "test ! -e '$w1' && test -e '$w2'"
check "gc says what it removed" grep -q '^removed 0 pieces of litter (0B) and 1 entries' size.out
check_fails "gc: a malformed size is a usage error" 2 "--max-size needs a size such as 10G, not '10Q'" entk-cache gc --max-size 10Q
check_fails "an unknown command is a usage error" 2 "unknown command 'frob'" entk-cache frob
check_fails "-o is refused, not ignored" 2 "-o: entk-cache writes no frames" entk-cache -o x ls
check "--help has examples" bash -c "entk-cache --help | grep -q 'entk-cache gc --max-age 30d --max-size 10G'"
