#!/usr/bin/env node
// Reference tokenizer for the entk-tokenize tests: the JS port of Hugging Face tokenizers
// (@lenml/tokenizers, a fork of transformers.js) run on the same tokenizer.json.
//
//   node tokenize_ref.js --tokenizer DIR/tokenizer.json [--lines | --delim LINE [--drop-tail]]
//                        [--no-bos] [--decode] [--bench] [--out FILE] FILE... [--- more runs]
//
// Encoding prints one line per text: the token ids separated by spaces (entk-tokenize --text).
// Texts are split from the files exactly as entk-tokenize documents it (whole file, one per line,
// or separated by lines equal to LINE); files are decoded as UTF-8 with U+FFFD for invalid bytes
// (the WHATWG decoder, as any JS program reading the file would).
// --decode reads lines of ids instead and prints tokenizer.decode(ids) for each line, joined as
// the mode joins texts (skipping special tokens like entk-tokenize --decode).
// --bench prints "load S", "encode BYTES SECONDS" on stderr.
"use strict";
const fs = require("fs");
const path = require("path");
const { TokenizerLoader } = require("@lenml/tokenizers");

function usage(msg) {
    process.stderr.write(`tokenize_ref.js: ${msg}\n`);
    process.exit(2);
}

// Runs: groups of options and files separated by "---", each printing to its own --out FILE
// (default stdout), so one process (the tokenizer takes seconds to build) serves several checks.
const groups = [[]];
for (const a of process.argv.slice(2)) {
    if (a === "---") groups.push([]);
    else groups[groups.length - 1].push(a);
}
let tokPath = null;
const runs = groups.map((args) => {
    const r = { mode: "whole", delim: null, dropTail: false, bos: true, decode: false, bench: false, out: null, files: [] };
    for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (a === "--tokenizer") tokPath = args[++i];
        else if (a === "--lines") r.mode = "lines";
        else if (a === "--delim") { r.mode = "delim"; r.delim = args[++i]; }
        else if (a === "--drop-tail") r.dropTail = true;
        else if (a === "--no-bos") r.bos = false;
        else if (a === "--decode") r.decode = true;
        else if (a === "--bench") r.bench = true;
        else if (a === "--out") r.out = args[++i];
        else if (a.startsWith("--")) usage(`unknown option ${a}`);
        else r.files.push(a);
    }
    if (r.files.length === 0) r.files.push("/dev/stdin");
    return r;
});
if (!tokPath) usage("--tokenizer is required");
const bench = runs.some((r) => r.bench);

const t0 = process.hrtime.bigint();
const tokenizerJSON = JSON.parse(fs.readFileSync(tokPath, "utf8"));
const configPath = path.join(path.dirname(tokPath), "tokenizer_config.json");
const tokenizerConfig = fs.existsSync(configPath) ? JSON.parse(fs.readFileSync(configPath, "utf8")) : {};
const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
const t1 = process.hrtime.bigint();
if (bench) process.stderr.write(`load ${Number(t1 - t0) / 1e9}\n`);

// The texts of one file, split as entk-tokenize splits them.
function splitTexts(s, r) {
    if (r.mode === "whole") return [s];
    const lines = s.split("\n");
    if (lines[lines.length - 1] === "") lines.pop(); // a final newline ends the last line
    if (r.mode === "lines") return lines;
    const texts = [];
    let cur = [];
    for (const l of lines) {
        if (l === r.delim) { texts.push(cur.join("\n")); cur = []; }
        else cur.push(l);
    }
    if (cur.length > 0 && !r.dropTail) texts.push(cur.join("\n"));
    return texts;
}

const utf8 = new TextDecoder("utf-8");
for (const r of runs) {
    const out = [];
    if (!r.decode) {
        let bytes = 0, secs = 0;
        for (const f of r.files) {
            const buf = fs.readFileSync(f);
            for (const text of splitTexts(utf8.decode(buf), r)) {
                const s = process.hrtime.bigint();
                const ids = tokenizer.encode(text, { add_special_tokens: r.bos });
                secs += Number(process.hrtime.bigint() - s) / 1e9;
                bytes += Buffer.byteLength(text, "utf8");
                out.push(ids.join(" ") + "\n");
            }
        }
        if (r.bench) process.stderr.write(`encode ${bytes} ${secs}\n`);
    } else {
        const sep = r.mode === "whole" ? "" : r.mode === "lines" ? "\n" : `\n${r.delim}\n`;
        for (const f of r.files) {
            const lines = fs.readFileSync(f, "utf8").split("\n");
            if (lines[lines.length - 1] === "") lines.pop();
            for (const l of lines) {
                const ids = l.trim() === "" ? [] : l.trim().split(/\s+/).map(Number);
                out.push((ids.length ? tokenizer.decode(ids, { skip_special_tokens: true }) : "") + sep);
            }
        }
    }
    if (r.out) fs.writeFileSync(r.out, out.join(""));
    else process.stdout.write(out.join(""));
}
