"""Makes deliberately broken inputs for the bad-input tests (test scaffolding, not product).

craft.py st-badlen OUT           safetensors whose header length exceeds the file
craft.py st-badjson OUT          safetensors whose header is not JSON
craft.py st-offsets OUT          safetensors whose data_offsets disagree with shape and dtype
craft.py st-drop IN OUT NAME     copy of a checkpoint without tensor NAME
craft.py st-reshape IN OUT NAME  copy with tensor NAME's shape transposed
craft.py fr-dtype IN OUT NAME DT stream copy with frame NAME relabelled as dtype DT (same bytes:
                                 DT must have the element size of the original)
craft.py fr-shape IN OUT NAME    stream copy with frame NAME's data shortened by one row
craft.py fr-drop IN OUT NAME     stream copy without frame NAME (the end frame's count adjusted), as
                                 a stream of an older format would be
Cache entries (lib/core/cache.c's format: magic, key, descriptor and payload lengths, authenticator):
craft.py cache-forge ENTRY              flips a payload byte and puts a checksum anyone can compute
                                        (XXH3-128 of the payload, unkeyed) where the authenticator goes
craft.py cache-rekey SRC DST KEY SECRET copies entry SRC to DST stored under KEY, authenticated with the
                                        cache's SECRET file: authentic, but another request's payload
craft.py fr-dims IN OUT NAME D,D,..  stream copy with frame NAME's shape set to the dims and its data to
                                 (product x element size) mod 2^64 zero bytes, checksum valid: a
                                 shape whose product wraps around passes as a small tensor
craft.py st-extra IN OUT NAME D,D,..  checkpoint copy with an extra F32 tensor NAME of those dims whose
                                 data_offsets cover (product x 4) mod 2^64 bytes
craft.py fr-input-key IN OUT KEY     stream copy whose header lists one input, with key KEY
craft.py st-set IN OUT NAME INDEX VALUE  checkpoint copy with element INDEX of tensor NAME := VALUE
                                 (nan, inf allowed; F32, F64, F16 or BF16)
Gram streams for entk-eig (copies of the Gram stream IN with another K, of IN's dtype):
craft.py gram-lowrank IN OUT N R SEED   K = X X^T / R, X [N, R] standard normal (PSD, rank R)
craft.py gram-hidden IN OUT             IN's K with rows/columns 0 and 1 replaced by the block
                                        [[0, a], [a, 0]], a = 2 lambda_1(K): indefinite, and its zero
                                        diagonal hides it from pivoted Cholesky
craft.py gram-indefinite IN OUT SEED    K - (lambda_1(K) / 2) w w^T, w a random unit vector
craft.py gram-asym IN OUT C SEED        IN's K with each entry below the diagonal moved by
                                        C eps sqrt(K_ii K_jj) z (z standard normal, eps of K's dtype):
                                        symmetric only to C units of rounding, as a gemm-made Gram is
"""
import ctypes
import json
import struct
import sys

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from entkio import DT, array, checksum, frames, read_safetensors_raw, write_frames  # noqa: E402
from entkio import write_safetensors_raw as st_write  # noqa: E402


def xxh3_128(b, secret=None):
    """XXH3-128 (canonical bytes) of b, keyed with secret if given, via the system libxxhash."""
    class H(ctypes.Structure):
        _fields_ = [("low64", ctypes.c_uint64), ("high64", ctypes.c_uint64)]
    lib = ctypes.CDLL("libxxhash.so.0")
    if secret is None:
        lib.XXH3_128bits.restype = H
        lib.XXH3_128bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        h = lib.XXH3_128bits(b, len(b))
    else:
        lib.XXH3_128bits_withSecret.restype = H
        lib.XXH3_128bits_withSecret.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
        h = lib.XXH3_128bits_withSecret(b, len(b), secret, len(secret))
    return struct.pack(">QQ", h.high64, h.low64)


CACHE_HDR = 8 + 32 + 8 + 8 + 16


def replace_gram(src, dst, make, symmetric=True):
    """Copies Gram stream src to dst with its K replaced by make(K as f64, dtype), stored in K's
    dtype (with symmetric, its upper triangle mirrored)."""
    def fn(fr):
        if fr.get("kind") == "tensor" and fr["name"] == "K":
            K = array(fr).astype(np.float64)
            new = np.ascontiguousarray(make(K, DT[fr["dtype"]]), dtype=DT[fr["dtype"]])
            assert new.ndim == 2 and new.shape[0] == new.shape[1]
            if symmetric:
                new = np.triu(new) + np.triu(new, 1).T  # exactly symmetric after rounding to the dtype
            fr["data"] = new.tobytes()
            fr["shape"] = list(new.shape)
            fr["check"] = checksum(fr["data"])
            if "N" in (fr.get("meta") or {}):
                fr["meta"]["N"] = new.shape[0]
        return fr
    rewrite_frames(src, dst, fn)


def rewrite_frames(src, dst, fn):
    write_frames(dst, (fn(fr) for fr in frames(src, arrays=False)))


def main():
    cmd = sys.argv[1]
    if cmd == "st-badlen":
        with open(sys.argv[2], "wb") as f:
            f.write(struct.pack("<Q", 1 << 40) + b"{}")
    elif cmd == "st-badjson":
        st_write(sys.argv[2], {}, b"")
        raw = open(sys.argv[2], "rb").read()
        open(sys.argv[2], "wb").write(raw[:8] + b"{\"W1\": [1,2" + raw[19:])
    elif cmd == "st-offsets":
        st_write(sys.argv[2], {"__metadata__": {"entk_model": "mlp", "p": "3", "hidden": "4"},
                               "W1": {"dtype": "F32", "shape": [4, 6], "data_offsets": [0, 90]},
                               "W2": {"dtype": "F32", "shape": [3, 4], "data_offsets": [90, 138]}}, bytes(138))
    elif cmd in ("st-drop", "st-reshape"):
        header, payload = read_safetensors_raw(sys.argv[2])
        name = sys.argv[4]
        if cmd == "st-drop":
            del header[name]
        else:
            header[name]["shape"] = header[name]["shape"][::-1]
        st_write(sys.argv[3], header, payload)
    elif cmd == "fr-dtype":
        name, dt = sys.argv[4], sys.argv[5]

        def fn(fr):
            if fr.get("kind") == "tensor" and fr["name"] == name:
                assert np.dtype(DT[dt]).itemsize == np.dtype(DT[fr["dtype"]]).itemsize
                fr["dtype"] = dt
            return fr
        rewrite_frames(sys.argv[2], sys.argv[3], fn)
    elif cmd == "fr-shape":
        name = sys.argv[4]

        def fn(fr):
            if fr.get("kind") == "tensor" and fr["name"] == name:
                fr["shape"][0] -= 1
            return fr
        rewrite_frames(sys.argv[2], sys.argv[3], fn)
    elif cmd == "fr-drop":
        def kept():
            for fr in frames(sys.argv[2], arrays=False):
                if fr.get("kind") == "tensor" and fr["name"] == sys.argv[4]:
                    continue
                if fr.get("kind") == "end":
                    fr["meta"]["frames"] -= 1
                yield fr
        write_frames(sys.argv[3], kept())
    elif cmd == "fr-dims":
        name, dims = sys.argv[4], [int(d) for d in sys.argv[5].split(",")]

        def fn(fr):
            if fr.get("kind") == "tensor" and fr["name"] == name:
                n = np.dtype(DT[fr["dtype"]]).itemsize
                for d in dims:
                    n = n * d % 2**64
                assert n < 1 << 24
                fr["shape"] = dims
                fr["data"] = bytes(n)
                fr["check"] = checksum(fr["data"])
            return fr
        rewrite_frames(sys.argv[2], sys.argv[3], fn)
    elif cmd == "fr-input-key":
        def fn(fr):
            if fr.get("kind") == "header":
                fr["meta"]["inputs"] = [{"name": "x", "key": sys.argv[4]}]
            return fr
        rewrite_frames(sys.argv[2], sys.argv[3], fn)
    elif cmd == "st-extra":
        header, payload = read_safetensors_raw(sys.argv[2])
        dims = [int(d) for d in sys.argv[5].split(",")]
        n = 4
        for d in dims:
            n = n * d % 2**64
        assert n < 1 << 24
        header[sys.argv[4]] = {"dtype": "F32", "shape": dims, "data_offsets": [len(payload), len(payload) + n]}
        st_write(sys.argv[3], header, payload + bytes(n))
    elif cmd == "st-set":
        header, payload = read_safetensors_raw(sys.argv[2])
        name, index, value = sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
        t = header[name]
        dt = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "<f4"}[t["dtype"]]
        if t["dtype"] == "BF16":
            raw = (np.array([value], dtype="<f4").view("<u4") >> 16).astype("<u2").tobytes()
        else:
            raw = np.array([value], dtype=dt).tobytes()
        at = t["data_offsets"][0] + index * len(raw)
        st_write(sys.argv[3], header, payload[:at] + raw + payload[at + len(raw):])
    elif cmd == "fr-set":
        # fr-set SRC DST NAME INDEX VALUE: element INDEX (flat) of tensor NAME := VALUE, checksum kept valid
        name, index, value = sys.argv[4], int(sys.argv[5]), float(sys.argv[6])

        def fn(fr):
            if fr.get("kind") == "tensor" and fr["name"] == name:
                a = array(fr).reshape(-1).copy()
                a[index] = value
                fr["data"] = a.tobytes()
                fr["check"] = checksum(fr["data"])
            return fr
        rewrite_frames(sys.argv[2], sys.argv[3], fn)
    elif cmd in ("fr-meta", "fr-meta-del"):
        # fr-meta SRC DST NAME KEY JSON: meta KEY of frame NAME := JSON; fr-meta-del SRC DST NAME KEY
        name, key = sys.argv[4], sys.argv[5]

        def fn(fr):
            if fr.get("kind") in ("tensor", "record") and fr["name"] == name:
                if cmd == "fr-meta":
                    fr["meta"][key] = json.loads(sys.argv[6])
                else:
                    del fr["meta"][key]
            return fr
        rewrite_frames(sys.argv[2], sys.argv[3], fn)
    elif cmd == "gram-lowrank":
        n, r, seed = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        X = np.random.default_rng(seed).standard_normal((n, r))
        replace_gram(sys.argv[2], sys.argv[3], lambda K, dt: X @ X.T / r)
    elif cmd == "gram-hidden":
        def hide(K, dt):
            a = 2 * np.linalg.eigvalsh(K)[-1]
            K = K.copy()
            K[:2, :] = 0
            K[:, :2] = 0
            K[0, 1] = K[1, 0] = a
            return K
        replace_gram(sys.argv[2], sys.argv[3], hide)
    elif cmd == "gram-indefinite":
        def dent(K, dt):
            w = np.random.default_rng(int(sys.argv[4])).standard_normal(K.shape[0])
            w /= np.linalg.norm(w)
            return K - np.linalg.eigvalsh(K)[-1] / 2 * np.outer(w, w)
        replace_gram(sys.argv[2], sys.argv[3], dent)
    elif cmd == "cache-forge":
        raw = bytearray(open(sys.argv[2], "rb").read())
        nd, n = struct.unpack("<QQ", raw[40:56])
        raw[-1] ^= 1
        raw[56:72] = xxh3_128(bytes(raw[CACHE_HDR + nd:]))
        open(sys.argv[2], "wb").write(raw)
    elif cmd == "cache-rekey":
        raw = bytearray(open(sys.argv[2], "rb").read())
        raw[8:40] = sys.argv[4].encode()
        secret = open(sys.argv[5], "rb").read()
        raw[56:72] = xxh3_128(bytes(raw[8:56]) + bytes(raw[CACHE_HDR:]), secret)
        open(sys.argv[3], "wb").write(raw)
    elif cmd == "gram-asym":
        c, seed = float(sys.argv[4]), int(sys.argv[5])
        def skew(K, dt):
            d = np.sqrt(np.abs(np.diag(K)))
            z = np.tril(np.random.default_rng(seed).standard_normal(K.shape), -1)
            return K + c * np.finfo(dt).eps * np.outer(d, d) * z
        replace_gram(sys.argv[2], sys.argv[3], skew, symmetric=False)
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
