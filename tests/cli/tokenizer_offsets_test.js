#!/usr/bin/env node
// Token offsets against HuggingFace `tokenizers` (ctest tokenizer_offsets), for WordPiece
// (tiny-bert, golden/tokenizer) and byte-level BPE (roberta-tiny, golden/tokenizer-bpe).
//
// The shared golden files hold token ids only. This test asks HF's own tokenizer (npm
// `tokenizers`, the Rust library's Node binding, the version the goldens were made with,
// pinned in tests/npm/package.json) for the offsets of every golden case (unit cases,
// special-token literals, pairs, truncation rows, PhraseBank) and compares them, with the ids,
// to what `bertserve-cli tokenize` prints. The Node binding reports offsets in characters
// (code points); bertserve reports bytes of UTF-8 (TEI's unit), so HF's offsets are converted
// to bytes here. Any difference fails.
//
// Usage: tokenizer_offsets_test.js BUILD_DIR (the npm tools are installed into BUILD_DIR/npm).
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync, execFileSync } = require('child_process');

const buildDir = process.argv[2];
if (!buildDir) {
  console.log('FAIL: usage: tokenizer_offsets_test.js BUILD_DIR');
  process.exit(1);
}
const here = __dirname;
const shared = process.env.BERTSERVE_SHARED || path.join(here, '..', '..', '..', 'shared');
const suites = [
  { name: 'wordpiece', golden: path.join(shared, 'golden', 'tokenizer'),
    model: path.join(shared, 'models', 'tiny-bert'), vocab: 'vocab.txt' },
  { name: 'bpe', golden: path.join(shared, 'golden', 'tokenizer-bpe'),
    model: path.join(shared, 'models', 'roberta-tiny'), vocab: 'vocab.json' },
];
const cli = path.join(buildDir, 'bertserve-cli');
const needed = [cli];
for (const s of suites) needed.push(path.join(s.golden, 'tokenizer.json'), path.join(s.model, s.vocab));
for (const f of needed) {
  if (!fs.existsSync(f)) {
    console.log(`FAIL: ${f} is missing`);
    process.exit(1);
  }
}

let npmDir;
try {
  npmDir = execFileSync(path.join(here, '..', 'npm', 'install.sh'), [path.join(buildDir, 'npm')],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
} catch (e) {
  console.log('FAIL: could not install the npm tools (tests/npm/install.sh)');
  process.exit(1);
}
const { Tokenizer } = require(path.join(npmDir, 'node_modules', 'tokenizers'));

function readJsonl(golden, name) {
  return fs.readFileSync(path.join(golden, name), 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l));
}

// The CLI and the daemon read texts as JSON through cJSON, whose strings end at a NUL: a
// "\u0000" is read as U+FFFD (see common/json_text.h). Both are dropped by the normalizer, so
// the ids do not change, but U+FFFD is three bytes; HF is asked about the text bertserve sees.
const asRead = (s) => s.replace(/\u0000/g, '\ufffd');

// Byte offset in UTF-8 of each code point index of s (and of its end).
function byteOffsets(s) {
  const out = [0];
  let b = 0;
  for (const ch of s) {
    b += Buffer.byteLength(ch, 'utf8');
    out.push(b);
  }
  return out;
}

// Runs bertserve-cli tokenize over rows, one JSON line each; returns its parsed lines.
function runCli(model, rows, args) {
  const input = rows.map((r) => JSON.stringify(r.text_pair !== undefined ? [r.text, r.text_pair] : r.text)).join('\n') + '\n';
  const res = spawnSync(cli, ['tokenize', '--model', model, '--jsonl', ...args],
    { input, maxBuffer: 1 << 30, encoding: 'utf8' });
  if (res.status !== 0) {
    console.log(`FAIL: bertserve-cli tokenize ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
    process.exit(1);
  }
  const lines = res.stdout.split('\n').filter((l) => l);
  if (lines.length !== rows.length) {
    console.log(`FAIL: bertserve-cli printed ${lines.length} lines for ${rows.length} inputs`);
    process.exit(1);
  }
  return lines.map((l) => JSON.parse(l));
}

// HF's ids and offsets in bytes, each offset into its own sequence's text.
async function hfEncode(tok, row) {
  const text = asRead(row.text);
  const pair = row.text_pair !== undefined ? asRead(row.text_pair) : undefined;
  const enc = pair !== undefined ? await tok.encode(text, pair) : await tok.encode(text);
  const bytes = [byteOffsets(text), pair !== undefined ? byteOffsets(pair) : null];
  const special = enc.getSpecialTokensMask();
  const seq = enc.getSequenceIds();
  const offsets = enc.getOffsets().map(([s, e], i) => (special[i] ? [0, 0] : [bytes[seq[i]][s], bytes[seq[i]][e]]));
  return { ids: enc.getIds(), offsets };
}

let passed = 0;
const failures = [];
async function compare(label, tok, model, rows, args) {
  const ours = runCli(model, rows, args);
  for (let i = 0; i < rows.length; i++) {
    const want = await hfEncode(tok, rows[i]);
    const got = ours[i];
    const same = JSON.stringify(got.ids) === JSON.stringify(want.ids) &&
      JSON.stringify(got.offsets) === JSON.stringify(want.offsets);
    if (same) {
      passed++;
    } else {
      failures.push(`${label} ${rows[i].id} ${JSON.stringify(rows[i].text)}` +
        `\n  got  ids ${JSON.stringify(got.ids)} offsets ${JSON.stringify(got.offsets)}` +
        `\n  want ids ${JSON.stringify(want.ids)} offsets ${JSON.stringify(want.offsets)}`);
    }
  }
}

// Every golden file of one tokenizer family, compared through bertserve-cli tokenize.
async function suite({ name, golden, model }) {
  const file = path.join(golden, 'tokenizer.json');
  const tok = Tokenizer.fromFile(file);
  for (const f of ['cases.jsonl', 'special_literals.jsonl', 'phrasebank.jsonl'])
    await compare(`${name} ${f}`, tok, model, readJsonl(golden, f), []);
  await compare(`${name} pairs.jsonl`, tok, model, readJsonl(golden, 'pairs.jsonl'), ['--pair']);

  // Truncation rows, grouped by max_length and by single text or pair.
  const groups = new Map();
  for (const row of readJsonl(golden, 'truncation.jsonl')) {
    const key = `${row.max_length} ${row.text_pair !== undefined}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(row);
  }
  for (const [key, rows] of groups) {
    const [maxLength, isPair] = key.split(' ');
    const truncating = Tokenizer.fromFile(file);
    truncating.setTruncation(Number(maxLength), { strategy: 'LongestFirst', direction: 'right', stride: 0 });
    const args = ['--max-length', maxLength, ...(isPair === 'true' ? ['--pair'] : [])];
    await compare(`${name} truncation.jsonl (max ${maxLength})`, truncating, model, rows, args);
  }
}

(async () => {
  for (const s of suites) {
    const before = passed;
    await suite(s);
    console.log(`${s.name}: ${passed - before} cases compared`);
  }

  for (const f of failures.slice(0, 20)) console.log(`FAIL ${f}`);
  if (passed === 0) console.log('FAIL: no case was compared');
  console.log(`tokenizer offsets against HF tokenizers: ${passed} passed, ${failures.length} failed`);
  process.exit(failures.length || passed === 0 ? 1 : 0);
})().catch((e) => {
  console.log(`FAIL: ${e.stack || e}`);
  process.exit(1);
});
