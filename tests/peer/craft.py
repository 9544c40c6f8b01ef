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
"""
import json
import struct
import sys

import msgpack
import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from entkio import DT  # noqa: E402


def st_write(path, header, payload):
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + payload)


def st_read(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def rewrite_frames(src, dst, fn):
    with open(src, "rb") as f, open(dst, "wb") as o:
        for fr in msgpack.Unpacker(f, raw=False):
            o.write(msgpack.packb(fn(fr), use_bin_type=True))


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
        header, payload = st_read(sys.argv[2])
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
        with open(sys.argv[2], "rb") as f, open(sys.argv[3], "wb") as o:
            for fr in msgpack.Unpacker(f, raw=False):
                if fr.get("kind") == "tensor" and fr["name"] == sys.argv[4]:
                    continue
                if fr.get("kind") == "end":
                    fr["meta"]["frames"] -= 1
                o.write(msgpack.packb(fr, use_bin_type=True))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
