#!/usr/bin/env bash
# The numeric checks once more on a second OpenBLAS kernel family. OpenBLAS picks its kernels per
# CPU (or from OPENBLAS_CORETYPE), and kernels of different families sum in different orders: an
# f32 Gram that was symmetric bit for bit on SkylakeX was not on Haswell, and entk-eig refused it.
# The rest of the suite runs on whatever family this machine gives (entk-show --blas); this file
# re-runs the eigensolver checks (tests/t_eig.sh) and the Setting-1 peer checks against functorch
# (tests/t_peer_mlp.sh) on the other one: AVX2 (Haswell) when the suite runs on AVX-512 kernels,
# AVX-512 (SkylakeX) when it runs on AVX2 ones, or, on a CPU without AVX-512, AVX (Sandybridge).
# About a minute.
source "$(dirname "$0")/lib.sh"

flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { [[ " $flags " == *" $1 "* ]]; }
now=$(entk-show --blas)
case "$now" in
SkylakeX | Cooperlake | SapphireRapids) other=Haswell; has avx2 && has fma || other=Sandybridge ;;
*) other=SkylakeX; has avx512f && has avx512bw && has avx512vl && has avx512dq || other=Sandybridge ;;
esac
if [ "$now" = "$other" ] || ! has avx; then
    echo "INFO only one kernel family runs on this CPU ($now): nothing to compare"
    pass "second kernel family: none available besides $now (checked)"
    exit 0
fi
echo "INFO this suite runs on OpenBLAS $now kernels; these checks on $other"
check "OPENBLAS_CORETYPE=$other gives $other kernels" test "$(OPENBLAS_CORETYPE=$other entk-show --blas)" = "$other"

# rerun FILE: FILE's checks on the other family, each named "[FAMILY] name"
rerun() {
    local out rc
    out=$(OPENBLAS_CORETYPE=$other bash "$ROOT/$1" 2>&1)
    rc=$?
    echo "$out" | grep -E '^(PASS|FAIL) ' | sed -E "s/^(PASS|FAIL) /\1 [$other] /"
    [ "$(echo "$out" | grep -c '^PASS ')" -gt 0 ] && pass "[$other] $1 ran its checks" || fail "[$other] $1 ran its checks" "none ran"
    [ $rc -eq 0 ] || [ "$(echo "$out" | grep -c '^FAIL ')" -gt 0 ] || fail "[$other] $1" "exited $rc: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
}
rerun tests/t_eig.sh
rerun tests/t_peer_mlp.sh
