"""Peer check of entk-features --key-freqs: numpy's FFT of W_E[:p] (mean |FFT|^2 over d_model).
usage: fft_ref.py MODEL FEATURES NKEYS|auto
auto: the frequencies with at least a tenth of the strongest one's power (entk-features --nkeys auto)
Tolerance: max |power - numpy's| / max power <= 16 u p (u = 2^-52): entk sums the p terms of each
coefficient directly in f64 (each term's cos/sin and product round at about u), numpy's FFT rounds
less; measured 1.3e-15 (0.2 u p) at p = 29."""
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
tol = 16 * np.finfo(np.float64).eps * p
print(f"fourier power rel err {err:.2e} (tol {tol:.1e} = 16 u p); key frequencies entk {keys} numpy {ref_keys}")
sys.exit(0 if err <= tol and keys == ref_keys else 1)
