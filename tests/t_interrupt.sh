#!/usr/bin/env bash
# Interrupted runs: a signal removes the run's temporary files before it dies; what kill -9 leaves
# behind is removed by the next run that writes into the same directory or cache, unless the
# process that owns it is still alive.
source "$(dirname "$0")/lib.sh"
cd "$T"
HOST=$(hostname)
entk-modadd -p 29 -o d.fr

# A long run with an output (-o) and a checkpoint directory: its temporary appears at once. entk
# keeps a signal ignored if it was ignored when it started, as it should; but bash starts
# background jobs with SIGINT ignored, and the suite itself may run under nohup: the run gets
# the default dispositions back (env --default-signal) so that the signals reach it.
start_long() {
    env --default-signal=INT,HUP,TERM entk-train -q --model mlp --epochs 1000000 --ckpt-every 1000000 \
        --ckpt-dir "$1/ck" -o "$1/m.fr" d.fr &
    pid=$!
    for _ in $(seq 600); do ls "$1"/m.fr.tmp.* >/dev/null 2>&1 && return; sleep 0.05; done
}
# waits for the run to end, at most 10 s (then it is killed: the signal did not end it)
end_long() {
    for _ in $(seq 200); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
    kill -0 $pid 2>/dev/null && kill -9 $pid
    wait $pid
}
tmps() { find "$@" -name '*.tmp.*' 2>/dev/null | wc -l; }

for sig in TERM INT HUP; do
    mkdir -p $sig
    start_long $sig
    kill -$sig $pid
    end_long
    rc=$?
    want=$((128 + $(kill -l $sig)))
    [ $rc -eq $want ] && pass "SIG$sig still ends the run (exit $rc)" || fail "SIG$sig still ends the run" "exit $rc, expected $want"
    [ "$(tmps $sig)" -eq 0 ] && pass "SIG$sig removes the temporary output" || fail "SIG$sig removes the temporary output" "$(find $sig -name '*.tmp.*')"
    check "SIG$sig leaves no output" test ! -e $sig/m.fr
done

# a signal the caller ignores (nohup) stays ignored: the run goes on
mkdir -p nohup
env --ignore-signal=HUP entk-train -q --model mlp --epochs 1000000 --ckpt-every 1000000 --ckpt-dir nohup/ck -o nohup/m.fr d.fr &
pid=$!
for _ in $(seq 600); do ls nohup/m.fr.tmp.* >/dev/null 2>&1 && break; sleep 0.05; done
kill -HUP $pid; sleep 0.5
check "an ignored SIGHUP (nohup) stays ignored" kill -0 $pid
kill -TERM $pid
end_long

# kill -9: the temporary stays; the next run writing into that directory removes it, but not the
# temporary of a live process (this shell) nor one of another host
mkdir -p k9
start_long k9
kill -9 $pid
end_long 2>/dev/null
check "kill -9 leaves the temporary (nothing can catch it)" test "$(tmps k9)" -eq 1
touch "k9/live.fr.tmp.$HOST.$$" "k9/other.fr.tmp.other-host.1"
entk-modadd -p 3 -o k9/next.fr 2>k9.err
check "the next run into the folder removes the dead run's temporary" test "$(tmps k9 -name 'm.fr.*')" -eq 0
check "and says so" grep -q "removed k9/m.fr.tmp.$HOST.[0-9]*, left by process [0-9]* that is gone" k9.err
check "a live process's temporary is kept" test -e "k9/live.fr.tmp.$HOST.$$"
check "another host's temporary is kept" test -e k9/other.fr.tmp.other-host.1

# the cache: temporaries live in DIR/tmp; a dead run's are removed by the next run that stores
dead=$(sh -c 'echo $$')
mkdir -p "$ENTK_CACHE_DIR/tmp"
touch "$ENTK_CACHE_DIR/tmp/0123456789abcdef0123456789abcdef.tmp.$HOST.$dead" "$ENTK_CACHE_DIR/tmp/x.tmp.$HOST.$$"
entk-train -q --model mlp --hidden 8 --epochs 1 --ckpt-every 1 --ckpt-dir ck -o /dev/null d.fr
entk-jacobian -q -m ck/epoch-00001.safetensors d.fr > /dev/null
check "a dead run's cache temporary is removed by the next store" test ! -e "$ENTK_CACHE_DIR/tmp/0123456789abcdef0123456789abcdef.tmp.$HOST.$dead"
check "a live run's cache temporary is kept" test -e "$ENTK_CACHE_DIR/tmp/x.tmp.$HOST.$$"
check "stored entries are not left as temporaries" test "$(tmps "$ENTK_CACHE_DIR/objects")" -eq 0
