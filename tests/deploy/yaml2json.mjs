// YAML to JSON for the Python checks (Debian's python3 has no YAML parser by default).
// usage: node yaml2json.mjs NPM_DIR IN.yaml OUT.json
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const [npmDir, inPath, outPath] = process.argv.slice(2);
const yaml = createRequire(path.join(npmDir, "package.json"))("js-yaml");
fs.writeFileSync(outPath, JSON.stringify(yaml.load(fs.readFileSync(inPath, "utf8")), null, 1));
