#!/usr/bin/env python3
"""Checks the byte offsets entk-tokenize writes, against the texts and the tokenizer's own strings.

  check_offsets.py hf|llama2 TOKENIZER FRAMES FILE...

FRAMES is entk-tokenize's output for FILEs. For every text (meta file/start/bytes names its bytes):
the tokens the tokenizer adds (BOS, EOS; llama2.c's dummy-prefix space when it stays alone) are
empty ranges; all others tile the text exactly, in order; and each token's own string is what the
text it points at becomes: for a tokenizer.json, its normalizer's output (a Replace of a string,
Gemma's ' ' -> '▁'), or the raw text for an added token; a <0xXX> token is the byte XX; a llama2.c
piece is the text itself (the first one with the dummy-prefix space in front). Prints
'ok: T texts, N tokens' or the first problems (exit 1)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from entkio import frames, tokenizer_bin  # noqa: E402


def hf_strings(path):
    d = json.load(open(path, encoding="utf-8"))
    s = {i: t for t, i in d["model"]["vocab"].items()}
    added, special = set(), set()
    for a in d.get("added_tokens") or []:
        s[a["id"]] = a["content"]
        added.add(a["id"])
        if a.get("special"):
            special.add(a["id"])
    norm = d.get("normalizer") or {}
    pat = rep = None
    if norm.get("type") == "Replace" and "String" in norm["pattern"]:
        pat, rep = norm["pattern"]["String"], norm["content"]

    def matches(i, first, text):
        t = s[i]
        if i in added and t.encode("utf-8") == text:   # matched in the raw text
            return True
        if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            return bytes([int(t[3:5], 16)]) == text
        u = text.decode("utf-8", errors="replace")
        return t == (u.replace(pat, rep) if pat else u)
    return matches, special, lambda i: False


def llama2_strings(path):
    pieces = [p.split(b"\0")[0] for p in tokenizer_bin(path)[0]]

    def matches(i, first, text):
        p = pieces[i]
        if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
            return bytes([int(p[3:5], 16)]) == text
        return p == (b" " + text if first else text)
    return matches, {1, 2}, lambda i: pieces[i] == b" "


def main():
    kind, tok, framefile, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    matches, special, lone_prefix = hf_strings(tok) if kind == "hf" else llama2_strings(tok)
    data = [open(f, "rb").read() for f in files]
    problems, ntext, ntok = [], 0, 0
    ids = text = None
    for fr in frames(framefile):
        if fr.get("kind") != "tensor":
            continue
        if fr["name"] == "ids":
            ids = fr["array"].tolist()
            m = fr["meta"]
            text = data[m["file"]][m["start"]:m["start"] + m["bytes"]]
            continue
        if fr["name"] != "offsets":
            continue
        offs = fr["array"].reshape(-1).tolist()
        where = "text %d" % ntext
        ntext += 1
        if len(offs) != 2 * len(ids):
            problems.append("%s: %d ids but %d offsets" % (where, len(ids), len(offs) // 2))
            continue
        pos, first = 0, True
        for k, t in enumerate(ids):
            s, e = offs[2 * k], offs[2 * k + 1]
            ntok += 1
            if s == e and (t in special or (first and s == 0 and lone_prefix(t))):
                first = first and t in special
                continue
            if s != pos or e <= s or e > len(text):
                problems.append("%s token %d (id %d): range [%d,%d) does not continue at %d" % (where, k, t, s, e, pos))
                break
            if not matches(t, first, text[s:e]):
                problems.append("%s token %d (id %d): does not match text[%d:%d] = %r" % (where, k, t, s, e, text[s:e]))
            pos, first = e, False
        else:
            if pos != len(text):
                problems.append("%s: tokens end at %d of %d bytes" % (where, pos, len(text)))
        if len(problems) > 5:
            break
    if problems or ntext == 0:
        print("\n".join(problems[:6]) or "no texts")
        sys.exit(1)
    print("ok: %d texts, %d tokens" % (ntext, ntok))


if __name__ == "__main__":
    main()
