#!/usr/bin/env node
// Reference tokenizer for tests and benchmarks: Hugging Face `tokenizers` (npm, the Rust library)
// set up exactly like BertWordPieceTokenizer (the old JS wrapper's fromOptions): WordPiece model
// from the vocab file with [UNK] and "##", [CLS] [SEP] [UNK] [PAD] [MASK] added as special tokens
// when present in the vocab, bertNormalizer({cleanText, handleChineseChars, lowercase,
// stripAccents}), bertPreTokenizer(); encoded without adding special tokens.
//
// usage: node tools/hf_tokenize.js --vocab FILE [--cased|--uncased] [--offsets] [--tokens] < lines
//   prints one line per input line: ids (or tokens) separated by spaces; with --offsets each as
//   X(start,end) where [start,end) is the BYTE span in the input line (HF reports characters).
//        node tools/hf_tokenize.js --vocab FILE [--cased|--uncased] --bench FILE [--repeat N]
//   tokenizes FILE's lines (batches of 1000) and prints "hf_mb_per_s <x> bytes <n> seconds <t>
//   tokens <k>"; RAYON_NUM_THREADS sets HF's thread count.
// The npm package is looked up in MEGATUNE_NODE_MODULES, then tools/node_modules (where
// scripts/install-deps.sh installs it); exit code 77 when it is missing.
'use strict';
const fs = require('fs');
const path = require('path');

function loadTokenizers() {
  const dirs = [process.env.MEGATUNE_NODE_MODULES, path.join(__dirname, 'node_modules')].filter(Boolean);
  for (const d of dirs) {
    try {
      return require(path.join(d, 'tokenizers'));
    } catch (e) { /* try the next one */ }
  }
  process.stderr.write('hf_tokenize.js: the npm package `tokenizers` is not installed ' +
    '(cd tools && npm install tokenizers)\n');
  process.exit(77);
}

function parseArgs(argv) {
  const o = { vocab: null, lowercase: true, offsets: false, tokens: false, bench: null, repeat: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--vocab') o.vocab = argv[++i];
    else if (a === '--cased') o.lowercase = false;
    else if (a === '--uncased') o.lowercase = true;
    else if (a === '--offsets') o.offsets = true;
    else if (a === '--tokens') o.tokens = true;
    else if (a === '--bench') o.bench = argv[++i];
    else if (a === '--repeat') o.repeat = parseInt(argv[++i], 10);
    else { process.stderr.write(`hf_tokenize.js: unknown argument ${a}\n`); process.exit(2); }
  }
  if (!o.vocab) { process.stderr.write('hf_tokenize.js: --vocab FILE is required\n'); process.exit(2); }
  return o;
}

async function makeTokenizer(tk, vocab, lowercase) {
  const model = await tk.WordPiece.fromFile(vocab, { unkToken: '[UNK]', continuingSubwordPrefix: '##' });
  const t = new tk.Tokenizer(model);
  for (const s of ['[CLS]', '[SEP]', '[UNK]', '[PAD]', '[MASK]'])
    if (t.tokenToId(s) !== null && t.tokenToId(s) !== undefined) t.addSpecialTokens([s]);
  t.setNormalizer(tk.bertNormalizer({ cleanText: true, handleChineseChars: true, lowercase, stripAccents: lowercase }));
  t.setPreTokenizer(tk.bertPreTokenizer());
  return t;
}

function splitLines(buf) {
  const lines = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(10, start);
    if (nl < 0) break;
    lines.push(buf.toString('utf8', start, nl));
    start = nl + 1;
  }
  if (start < buf.length) lines.push(buf.toString('utf8', start));
  return lines;
}

// Byte offset of each character (code point) of s, plus the total at the end.
function charToByte(s) {
  const out = [0];
  let b = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0);
    b += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    out.push(b);
  }
  return out;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const tk = loadTokenizers();
  const t = await makeTokenizer(tk, o.vocab, o.lowercase);
  const opts = { addSpecialTokens: false };
  if (o.bench) {
    const buf = fs.readFileSync(o.bench);
    const lines = splitLines(buf);
    let ntok = 0;
    await t.encodeBatch(lines.slice(0, 1000), opts); // warm-up
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < o.repeat; r++)
      for (let i = 0; i < lines.length; i += 1000) {
        const encs = await t.encodeBatch(lines.slice(i, i + 1000), opts);
        for (const e of encs) ntok += e.getLength();
      }
    const sec = Number(process.hrtime.bigint() - t0) / 1e9;
    const bytes = buf.length * o.repeat;
    process.stdout.write(`hf_mb_per_s ${(bytes / 1e6 / sec).toFixed(2)} bytes ${bytes} seconds ${sec.toFixed(3)} tokens ${ntok}\n`);
    return;
  }
  const lines = splitLines(fs.readFileSync(0));
  const chunks = [];
  for (let i = 0; i < lines.length; i += 1000) {
    const part = lines.slice(i, i + 1000);
    const encs = await t.encodeBatch(part, opts);
    const outLines = [];
    for (let k = 0; k < encs.length; k++) {
      const e = encs[k];
      const items = o.tokens ? e.getTokens() : e.getIds().map(String);
      if (o.offsets) {
        const c2b = charToByte(part[k]);
        const offs = e.getOffsets();
        for (let j = 0; j < items.length; j++) items[j] += `(${c2b[offs[j][0]]},${c2b[offs[j][1]]})`;
      }
      outLines.push(items.join(' '));
    }
    chunks.push(outLines.join('\n') + '\n');
  }
  process.stdout.write(chunks.join(''));
}

main().catch((e) => { process.stderr.write(`hf_tokenize.js: ${e.stack || e}\n`); process.exit(1); });
