"""Peer check of entk-features --key-freqs: numpy's FFT of W_E[:p] (mean |FFT|^2 over d_model).
usage: fft_ref.py MODEL FEATURES NKEYS|auto
auto: the frequencies with at least a tenth of the strongest one's power (entk-features --nkeys auto)"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from entkio import frames, load_safetensors  # noqa: E402

w, meta = load_safetensors(sys.argv[1])
p = int(meta["p"])
power = (np.abs(np.fft.fft(w["W_E"][:p].astype(np.float64), axis=0)) ** 2).mean(1)
score = {k: power[k] + power[p - k] for k in range(1, p // 2 + 1)}
ref_keys = sorted(score, key=lambda k: -score[k])
if sys.argv[3] == "auto":
    ref_keys = [k for k in ref_keys if score[k] >= 0.1 * score[ref_keys[0]]]
else:
    ref_keys = ref_keys[: int(sys.argv[3])]
got = {fr["name"]: fr for fr in frames(sys.argv[2])}
err = np.abs(got["fourier_power"]["array"] - power).max() / power.max()
keys = got["key_frequencies"]["meta"]["freqs"]
print(f"fourier power rel err {err:.2e}; key frequencies entk {keys} numpy {ref_keys}")
sys.exit(0 if err < 1e-10 and keys == ref_keys else 1)
