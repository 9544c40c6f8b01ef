"""Reading (and, for the bad-input tests, rewriting) entk frame streams and safetensors files from
Python. Every peer script and test snippet goes through this module, so the formats are read in
one place (README.md, Frame format).

Frames: frames(path) yields every frame of a stream, or of several streams one after another (as
`cat` joins them: each starts with its header), as dicts; a tensor frame gets an "array" entry
(numpy, read-only view of "data"); items(path) yields (kind, name, meta, array) of the frames
between header and end. streams(path) groups them per stream; tensors(path) maps name ->
the last tensor frame of that name, tensors_by_name(path) name -> all of them in order; records(path)
yields the record frames. write_frames/checksum write frames back (craft.py).

llama2.c tokenizer.bin: tokenizer_bin(path) -> (pieces as raw bytes, scores); run.c uses the
pieces as C strings, so callers that follow it cut them at the first NUL.

Safetensors: load_safetensors(path) -> ({name: numpy array}, metadata); BF16 and F16 are widened
to float32 exactly. read_safetensors_raw / write_safetensors_raw keep the header and the bytes
apart, for making broken files."""
import ctypes
import json
import struct

import msgpack
import numpy as np

DT = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "u8": np.uint8}


def array(fr):
    """The numpy array of a tensor frame (little-endian data, row-major shape)."""
    return np.frombuffer(fr["data"], dtype=np.dtype(DT[fr["dtype"]]).newbyteorder("<")).reshape(fr["shape"])


def frames(path, arrays=True):
    """Yields every frame of the stream(s) in path ('-' = stdin) as a dict; with arrays, tensor
    frames get an "array" entry."""
    f = open("/dev/stdin" if path == "-" else path, "rb")
    with f:
        for fr in msgpack.Unpacker(f, raw=False, strict_map_key=False, max_buffer_size=2**31 - 1):
            if arrays and fr.get("kind") == "tensor":
                fr["array"] = array(fr)
            yield fr


def items(path):
    """Yields (kind, name, meta, array-or-None) for every frame but headers and ends."""
    for fr in frames(path):
        if fr["kind"] not in ("header", "end"):
            yield fr["kind"], fr["name"], fr.get("meta") or {}, fr.get("array")


def streams(path):
    """The frames of path as a list of streams (lists of frames, each from its header to its end)."""
    out = []
    for fr in frames(path):
        if fr.get("kind") == "header" or not out:
            out.append([])
        out[-1].append(fr)
    return out


def tensors(path):
    """name -> the last tensor frame of that name."""
    return {fr["name"]: fr for fr in frames(path) if fr["kind"] == "tensor"}


def tensors_by_name(path):
    """name -> every tensor frame of that name, in stream order."""
    out = {}
    for fr in frames(path):
        if fr["kind"] == "tensor":
            out.setdefault(fr["name"], []).append(fr)
    return out


def records(path, name=None):
    """Yields the record frames (all, or those called name)."""
    for fr in frames(path, arrays=False):
        if fr["kind"] == "record" and (name is None or fr["name"] == name):
            yield fr


def checksum(data):
    """entk's frame checksum (XXH3_64bits) via the system libxxhash, which entk links too."""
    lib = ctypes.CDLL("libxxhash.so.0")
    lib.XXH3_64bits.restype = ctypes.c_uint64
    lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return lib.XXH3_64bits(data, len(data))


def write_frames(path, frs):
    """Writes frames (dicts as frames() yields them with arrays=False) to path."""
    with open(path, "wb") as o:
        for fr in frs:
            o.write(msgpack.packb(fr, use_bin_type=True))


def read_safetensors_raw(path):
    """(header dict including __metadata__, the bytes after the header)."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def write_safetensors_raw(path, header, payload):
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + payload)


def load_safetensors(path):
    """({name: numpy array}, __metadata__); BF16 and F16 tensors come back as float32 (exact)."""
    header, payload = read_safetensors_raw(path)
    meta = header.pop("__metadata__", {})
    out = {}
    conv = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "F16": "<f2"}
    for name, h in header.items():
        b, e = h["data_offsets"]
        buf = payload[b:e]
        if h["dtype"] == "BF16":
            u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        elif h["dtype"] == "F16":
            arr = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        elif h["dtype"] in conv:
            arr = np.frombuffer(buf, dtype=conv[h["dtype"]])
        else:
            raise SystemExit(f"{path}: tensor {name} has dtype {h['dtype']}")
        out[name] = arr.reshape(h["shape"]).copy()
    return out, meta


def tensor_frame(name, array, meta=None):
    """A tensor frame dict for write_stream (array: a numpy array of one of entk's dtypes)."""
    dt = {np.dtype(v): k for k, v in DT.items()}[array.dtype]
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    return {"kind": "tensor", "name": name, "dtype": dt, "shape": list(array.shape), "meta": meta or {},
            "data": data, "check": checksum(data)}


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


def write_arrays(path, producer, named_arrays):
    """Writes an entk stream of tensor frames (name, numpy array) to path, under a blank key."""
    with open(path, "wb") as f:
        write_stream(f, producer, "0" * 32, [tensor_frame(n, np.asarray(a)) for n, a in named_arrays])


def tokenizer_bin(path):
    """(pieces, scores) of a llama2.c tokenizer.bin: int32 max_token_length, then per token a
    float32 score, an int32 length and the bytes."""
    data = open(path, "rb").read()
    off = 4  # max_token_length: run.c only sizes a buffer with it
    pieces, scores = [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        pieces.append(data[off:off + n])
        scores.append(score)
        off += n
    return pieces, scores


def parse_ids(s):
    """Token windows as the peers' command lines give them: "1,2,3;4,5,6", or @FILE holding that."""
    if s.startswith("@"):
        with open(s[1:]) as f:
            s = f.read().strip()
    return [[int(x) for x in w.split(",")] for w in s.split(";") if w.strip()]


def relerr(a, b):
    """max |a - b| over max |b| (1 where b is all zero), in float64."""
    scale = float(np.max(np.abs(b))) if np.size(b) else 0.0
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) / (scale if scale > 0 else 1.0)
