#!/usr/bin/env python3
"""Writes the hard tokenizer test strings into DIR, one file per text (entk-tokenize and the
reference read each file as one text). Files named valid-* hold well-formed UTF-8, invalid-*
ill-formed UTF-8."""
import os
import sys

VALID = [
    "",
    " ",
    "   leading and trailing   ",
    "a  b   c    d" + " " * 40 + "e",
    "\n", "\n\n\n", "\n" * 40, "x\r\ny\r\n", "\n \n  \n\t\n",
    "\t", "\t\tx\t", "\t" * 35 + "y", " \t \t",
    "🙂👍🏽👨‍👩‍👧‍👦 🇯🇵 ❤️",
    "日本語のテキスト、中文文本。한국어 텍스트",
    "𠀀𠀁𪚥 𓀀",
    "<html><body><b>bold</b> <i>x</i><table><tr><td>1</td></tr></table></body></html>",
    "<bos>text<eos><pad><unk><mask>[multimodal]",
    "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
    "<unused0><unused99><unused6241><image_soft_token>",
    "<bo <b <<b>> </ <|endoftext|> <0x41>",
    "a> </b> x>  </c> >\t</d>",
    "\x00\x01\x02\x1f\x7f", "\x0b\x0c\x1b[0m", "a\x00b",
    "▁▁hello▁world ▁ x▁",
    "\ufffd \ufeffhello a\u200db e\u0301 a\u00a0b a\u3000b a\u2028b",
    "a" * 5000,
    "supercalifragilisticexpialidocious" * 50,
    "1234567890 3.14159 1,000,000 0x1F -42",
    "مرحبا بالعالم שלום नमस्ते สวัสดี Привет мир Ελληνικά",
    "Once upon a time, there was a little girl named Lily.",
    "It's \"quoted\" — and ‘curly’ … (parens) [brackets] {braces} @#$%^&*_+=|\\/~`",
]

INVALID = [
    b"\xff", b"abc\xc3", b"\xe2\x82 x", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf",
    b"a\x80b", b"\xe0\x80\xaf", b"ok \xf0\x9f\x99 cut emoji", b"\xfe\xfe\xff\xff",
]


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    for i, s in enumerate(VALID):
        with open(os.path.join(d, "valid-%02d.txt" % i), "wb") as f:
            f.write(s.encode("utf-8"))
    for i, s in enumerate(INVALID):
        with open(os.path.join(d, "invalid-%02d.txt" % i), "wb") as f:
            f.write(s)


if __name__ == "__main__":
    main()
