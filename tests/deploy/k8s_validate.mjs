// Validates rendered Kubernetes objects offline against the API schemas, twice over:
//  - kubernetes-models' JSON-schema validators (types, enums, required fields, formats);
//  - TypeScript's excess-property check on its interfaces, which the schemas lack: a
//    misspelled field (`readinesProbe`) is rejected instead of silently dropped by the API.
// usage: node k8s_validate.mjs NPM_DIR RENDERED_YAML HPA_YAML WORK_DIR (writes WORK_DIR/objects.json)
// HPA_YAML's commented in-flight example is uncommented into the HPA and validated too.
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [npmDir, renderedPath, hpaPath, workDir] = process.argv.slice(2);
const require = createRequire(path.join(npmDir, "package.json"));
const yaml = require("js-yaml");
const modelsDir = path.dirname(require.resolve("kubernetes-models/package.json"));

let failures = 0;
const fail = (msg) => {
  failures++;
  console.log(`FAIL: ${msg}`);
};

// apiVersion "apps/v1" -> "kubernetes-models/apps/v1", "v1" -> "kubernetes-models/v1".
const modulePath = (apiVersion) => `kubernetes-models/${apiVersion}`;

async function modelClass(apiVersion, kind) {
  const file = path.join(modelsDir, apiVersion, `${kind}.js`);
  if (!fs.existsSync(file)) return null;
  const mod = await import(pathToFileURL(file).href);
  return mod[kind] ?? mod.default?.[kind] ?? null;
}

// The in-flight example: the lines between the markers, "# " removed, are a YAML list of metrics.
function commentedBlock(text, begin, end) {
  const lines = text.split("\n");
  const b = lines.findIndex((l) => l.trim() === `# ${begin}`);
  const e = lines.findIndex((l) => l.trim() === `# ${end}`);
  if (b < 0 || e < b) return null;
  return lines
    .slice(b + 1, e)
    .map((l) => l.replace(/^(\s*)# ?/, "$1"))
    .join("\n");
}

const docs = yaml.loadAll(fs.readFileSync(renderedPath, "utf8")).filter(Boolean);
const hpaText = fs.readFileSync(hpaPath, "utf8");
const example = commentedBlock(hpaText, "in-flight example begin", "in-flight example end");
if (!example) fail(`${hpaPath}: no in-flight example between its markers`);
const adapter = commentedBlock(hpaText, "adapter rule begin", "adapter rule end");
if (!adapter) fail(`${hpaPath}: no prometheus-adapter rule between its markers`);

const checked = [...docs];
const hpa = docs.find((d) => d.kind === "HorizontalPodAutoscaler");
if (hpa && example) {
  const withExample = structuredClone(hpa);
  withExample.metadata.name += "-with-in-flight-example";
  const extra = yaml.load(example.replace(/^ {4}/gm, ""));
  if (!Array.isArray(extra) || extra.length === 0) fail("the in-flight example is not a list of metrics");
  else withExample.spec.metrics.push(...extra);
  checked.push(withExample);
}
if (adapter) {
  const rules = yaml.load(adapter.replace(/^ {4}/gm, ""));
  const r = rules?.rules?.[0];
  if (!r?.seriesQuery || !r?.metricsQuery || !r?.name?.as) fail("the adapter rule lacks seriesQuery/metricsQuery/name.as");
}

// 1. JSON schemas.
const tsLines = [];
for (const [i, doc] of checked.entries()) {
  const what = `${doc.kind}/${doc.metadata?.name} (${doc.apiVersion})`;
  const Cls = await modelClass(doc.apiVersion, doc.kind);
  if (!Cls) {
    fail(`${what}: no schema for this apiVersion and kind`);
    continue;
  }
  try {
    new Cls(doc).validate();
    console.log(`schema ok: ${what}`);
  } catch (e) {
    fail(`${what}: ${e.message}`);
  }
  tsLines.push(`import type { I${doc.kind} as T${i} } from "${modulePath(doc.apiVersion)}/${doc.kind}";`);
  tsLines.push(`export const o${i}: T${i} = ${JSON.stringify(doc, null, 2)};`);
}

// 2. Excess properties, by the TypeScript compiler on the same objects.
fs.mkdirSync(workDir, { recursive: true });
// The objects as JSON for tests/deploy/k8s_consistency_test.py (python3 has no YAML parser here).
fs.writeFileSync(path.join(workDir, "objects.json"), JSON.stringify({ objects: docs, hpa_example: example ? yaml.load(example.replace(/^ {4}/gm, "")) : null, adapter_rules: adapter ? yaml.load(adapter.replace(/^ {4}/gm, "")) : null }, null, 1));
fs.writeFileSync(path.join(workDir, "objects.ts"), tsLines.join("\n") + "\n");
fs.writeFileSync(
  path.join(workDir, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: {
      strict: true,
      noEmit: true,
      module: "node16",
      moduleResolution: "node16",
      target: "es2022",
      skipLibCheck: true,
      typeRoots: [],
      baseUrl: ".",
      paths: { "*": [path.join(npmDir, "node_modules", "*")] },
    },
    files: ["objects.ts"],
  }),
);
// node16 resolution looks for node_modules from the file upwards: link the installed ones.
const link = path.join(workDir, "node_modules");
if (!fs.existsSync(link)) fs.symlinkSync(path.join(npmDir, "node_modules"), link);
try {
  execFileSync(path.join(npmDir, "node_modules", ".bin", "tsc"), ["-p", workDir], { stdio: "pipe" });
  console.log(`types ok: ${checked.length} objects, no unknown or mistyped fields`);
} catch (e) {
  fail(`TypeScript's check of the objects (${path.join(workDir, "objects.ts")}):\n${e.stdout}${e.stderr}`);
}

if (failures) {
  console.log(`k8s_validate: ${failures} failure(s)`);
  process.exit(1);
}
