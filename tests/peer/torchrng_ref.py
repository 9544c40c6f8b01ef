"""Peer for lib/torchrng: replays the ops of tests/tools/torchrng-dump with the real generators
(torch 1.13 CPU, CPython's random) and compares. Integer streams must be identical; normal draws
within 8 units in the last place of float32 at the draw's magnitude, or at 1 for draws below 1 in
magnitude (torch's vectorised log/sin/cos vs libm: a value near zero inherits the absolute error of
its Box-Muller angle).
usage: torchrng_ref.py SEED OP N [OP N ...] < dump  -> "ok ..." / "FAIL ..." lines"""
import random
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader


def main():
    seed, ops = int(sys.argv[1]), sys.argv[2:]
    torch.manual_seed(seed)
    lines = sys.stdin.read().splitlines()
    for (op, n), line in zip(zip(ops[::2], map(int, ops[1::2])), lines):
        got = line.split()[1:]
        if op == "randn":
            want = torch.randn(n).tolist()
        elif op == "uniform":
            want = torch.empty(n).uniform_(-1, 1).tolist()
        elif op == "random64":
            want = [int(torch.empty((), dtype=torch.int64).random_().item()) for _ in range(n)]
        elif op == "randperm":
            want = torch.randperm(n).tolist()
        elif op == "loader":
            want = [int(i) for b in DataLoader(list(range(n)), batch_size=n, shuffle=True) for i in b]
        elif op == "pyshuffle":
            r = random.Random(seed)
            want = list(range(n))
            r.shuffle(want)
        if op in ("randn", "uniform"):
            if len(got) == len(want):
                g, w = np.array(got, dtype=np.float64), np.array(want, dtype=np.float64)
                err = float(np.max(np.abs(g - w) / np.spacing(np.maximum(np.abs(w), 1).astype(np.float32)).astype(np.float64)))
            else:
                err = float("inf")
            ok = err <= 8
            detail = f"max difference {err:.1f} ulp"
        else:
            if op == "random64":  # random_() on int64 keeps 63 bits
                got = [str(int(g) % (1 << 63)) for g in got]
            ok = got == [str(w) for w in want]
            detail = "identical" if ok else f"first: {got[:5]} vs {want[:5]}"
        print(f"{'ok' if ok else 'FAIL'} {op}({n}) seed {seed}: {detail}")
    if len(lines) != len(ops) // 2:
        print(f"FAIL dump has {len(lines)} lines for {len(ops) // 2} ops")


if __name__ == "__main__":
    main()
