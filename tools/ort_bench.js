// ONNX Runtime's time for the forward-pass cases of `bertserve-cli bench`, the baseline of
// tools/bench_vs_ort.sh:  node tools/ort_bench.js MODEL.onnx [THREADS] [CASE...]  (e.g. 16x32)
// Prints one line per case: "ort <case> <p50 ms> <min ms>".
const ort = require('onnxruntime-node');

async function main() {
  const [model, threads = '2', ...only] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const cases = [[1, 8], [1, 32], [1, 128], [1, 512], [16, 32]]
    .filter(([b, l]) => only.length === 0 || only.includes(`${b}x${l}`));
  for (const [batch, len] of cases) {
    const n = batch * len;
    const ids = new BigInt64Array(n), mask = new BigInt64Array(n).fill(1n), types = new BigInt64Array(n);
    let seed = 12345;
    for (let i = 0; i < n; i++) {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      ids[i] = BigInt(i % len === 0 ? 101 : 1000 + (seed % 29000));
    }
    const feeds = {
      input_ids: new ort.Tensor('int64', ids, [batch, len]),
      attention_mask: new ort.Tensor('int64', mask, [batch, len]),
      token_type_ids: new ort.Tensor('int64', types, [batch, len]),
    };
    await session.run(feeds); // warm-up
    const times = [];
    const start = performance.now();
    while (times.length < 5 || (performance.now() - start < 1000 && times.length < 200)) {
      const t = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    console.log(`ort ${batch}x${len} ${times[Math.floor(times.length / 2)].toFixed(2)} ${times[0].toFixed(2)}`);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
