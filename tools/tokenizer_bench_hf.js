// HuggingFace tokenizers (the Rust library, npm binding) on the sentences tokenizer-bench
// times, for tools/bench_tokenizer_vs_hf.sh:
//   node tools/tokenizer_bench_hf.js TOKENIZER_JSON PHRASEBANK_FILE
// Prints "hf-single <sentences/s> <MB/s>" for one encode call per sentence (what a server
// handling one request at a time does) and "hf-batch ..." for encodeBatch over the corpus
// (Rust's own threads, every core).
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

async function main() {
  const [tokJson, data] = process.argv.slice(2);
  const tok = Tokenizer.fromFile(tokJson);
  tok.setTruncation(512, { strategy: 'LongestFirst', direction: 'right', stride: 0 });
  const sentences = fs.readFileSync(data, 'latin1').split('\n')
    .filter((l) => l.includes('@')).map((l) => l.slice(0, l.lastIndexOf('@')));
  const bytes = sentences.reduce((n, s) => n + Buffer.byteLength(s, 'utf8'), 0);
  const report = async (name, pass) => {
    let done = 0;
    const start = performance.now();
    while (performance.now() - start < 2000) {
      await pass();
      done++;
    }
    const secs = (performance.now() - start) / 1000;
    console.log(`${name} ${(done * sentences.length / secs).toFixed(0)} ${(done * bytes / 1e6 / secs).toFixed(1)}`);
  };
  await report('hf-single', async () => { for (const s of sentences) await tok.encode(s); });
  await report('hf-batch', () => tok.encodeBatch(sentences));
}
main().catch((e) => { console.error(e); process.exit(1); });
