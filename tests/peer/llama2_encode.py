#!/usr/bin/env python3
"""Reference for entk-tokenize's llama2.c tokenizer: a straight Python port of encode() in
karpathy's llama2.c run.c (quadratic merge loop, C-string lookups), reading tokenizer.bin itself.

  llama2_encode.py TOKENIZER.bin [--lines | --delim LINE [--drop-tail]] [--max-texts N]
                   [--no-bos] [--eos] [--bench] FILE...

Prints one line per text: the ids separated by spaces (as entk-tokenize --text). Texts are split
from the files as entk-tokenize documents it. Files are read as bytes, as run.c reads its prompt.
--bench prints "encode BYTES SECONDS" on stderr."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from entkio import tokenizer_bin  # noqa: E402


def load(path):
    pieces, scores = tokenizer_bin(path)
    return [p.split(b"\0")[0] for p in pieces], scores  # run.c uses the pieces as C strings


def encode(text, vocab, scores, lookup, bos, eos):
    tokens = []
    if bos:
        tokens.append(1)
    if text:
        tokens.append(lookup[b" "])  # dummy prefix
    buf = b""
    for i, c in enumerate(text):
        if c & 0xC0 != 0x80:
            buf = b""
        buf += bytes([c])
        nxt = text[i + 1] if i + 1 < len(text) else 0
        if nxt & 0xC0 == 0x80 and len(buf) < 4:
            continue
        if buf in lookup:
            tokens.append(lookup[buf])
        else:
            tokens.extend(b + 3 for b in buf)  # byte fallback: <0x00> is id 3
        buf = b""
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for i in range(len(tokens) - 1):
            tid = lookup.get(vocab[tokens[i]] + vocab[tokens[i + 1]], -1)
            if tid != -1 and scores[tid] > best_score:
                best_score, best_id, best_idx = scores[tid], tid, i
        if best_idx == -1:
            break
        tokens[best_idx] = best_id
        del tokens[best_idx + 1]
    if eos:
        tokens.append(2)
    return tokens


def split_texts(data, mode, delim, drop_tail):
    if mode == "whole":
        return [data]
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if mode == "lines":
        return lines
    texts, cur = [], []
    for line in lines:
        if line == delim:
            texts.append(b"\n".join(cur))
            cur = []
        else:
            cur.append(line)
    if cur and not drop_tail:
        texts.append(b"\n".join(cur))
    return texts


def main():
    args = sys.argv[1:]
    tok = args.pop(0)
    mode, delim, drop_tail, bos, eos, max_texts, bench, files = "whole", None, False, True, False, None, False, []
    while args:
        a = args.pop(0)
        if a == "--lines":
            mode = "lines"
        elif a == "--delim":
            mode, delim = "delim", args.pop(0).encode()
        elif a == "--drop-tail":
            drop_tail = True
        elif a == "--no-bos":
            bos = False
        elif a == "--eos":
            eos = True
        elif a == "--bench":
            bench = True
        elif a == "--max-texts":
            max_texts = int(args.pop(0))
        else:
            files.append(a)
    vocab, scores = load(tok)
    lookup = {}
    for i, v in enumerate(vocab):
        lookup.setdefault(v, i)
    out, nbytes, secs = [], 0, 0.0
    for f in files:
        for text in split_texts(open(f, "rb").read(), mode, delim, drop_tail):
            if max_texts is not None and len(out) >= max_texts:
                break
            t0 = time.perf_counter()
            ids = encode(text, vocab, scores, lookup, bos, eos)
            secs += time.perf_counter() - t0
            nbytes += len(text)
            out.append(" ".join(map(str, ids)))
    sys.stdout.write("".join(line + "\n" for line in out))
    if bench:
        sys.stderr.write("encode %d %f\n" % (nbytes, secs))


if __name__ == "__main__":
    main()
