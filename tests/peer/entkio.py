"""Reading entk frame streams and safetensors from Python (peer tests only)."""
import json
import struct

import msgpack
import numpy as np

DT = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "u8": np.uint8}


def frames(path):
    """Yields every frame of an entk stream as a dict; tensors get an "array" entry."""
    with open(path, "rb") as f:
        for fr in msgpack.Unpacker(f, raw=False, max_buffer_size=2**31 - 1):
            if fr.get("kind") == "tensor":
                fr["array"] = np.frombuffer(fr["data"], dtype=DT[fr["dtype"]]).reshape(fr["shape"])
            yield fr


def tensors(path):
    return {fr["name"]: fr for fr in frames(path) if fr["kind"] == "tensor"}


def load_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    conv = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}
    for name, h in header.items():
        b, e = h["data_offsets"]
        buf = raw[8 + n + b : 8 + n + e]
        if h["dtype"] == "BF16":
            u = np.frombuffer(buf, dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(buf, dtype=conv[h["dtype"]])
        out[name] = arr.reshape(h["shape"]).copy()
    return out, meta
