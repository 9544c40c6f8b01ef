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


def xxh3_64(b):
    """entk's frame checksum (XXH3_64bits) via the system libxxhash, which entk links too."""
    import ctypes
    lib = ctypes.CDLL("libxxhash.so.0")
    lib.XXH3_64bits.restype = ctypes.c_uint64
    lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return lib.XXH3_64bits(b, len(b))


def tensor_frame(name, array, meta=None):
    """A tensor frame dict for write_stream (array: a numpy array of one of entk's dtypes)."""
    dt = {np.dtype(v): k for k, v in DT.items()}[array.dtype]
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    return {"kind": "tensor", "name": name, "dtype": dt, "shape": list(array.shape), "meta": meta or {},
            "data": data, "check": xxh3_64(data)}


def write_stream(f, producer, key, body, inputs=(), args=()):
    """Writes one entk stream to the open binary file f: a header (key: 32 hex digits; inputs: (name,
    key) pairs), the frames of body (tensor_frame dicts or {"kind": "record", ...}) and the end frame."""
    header = {"kind": "header", "name": producer,
              "meta": {"version": "0.1.0", "args": list(args), "key": key,
                       "inputs": [{"name": n, "key": k} for n, k in inputs]}}
    f.write(msgpack.packb(header, use_bin_type=True))
    for fr in body:
        f.write(msgpack.packb(fr, use_bin_type=True))
    f.write(msgpack.packb({"kind": "end", "name": "end", "meta": {"frames": len(body)}}, use_bin_type=True))
