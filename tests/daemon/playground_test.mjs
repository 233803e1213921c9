// The playground page (GET /, issue 23) in a real browser: Debian's chromium driven by
// playwright-core (tests/npm). Types a PhraseBank sentence, presses the button and checks the
// label and every score against `bertserve-cli predict` on the same text; Ctrl+Enter; the
// tokens shown against /tokenize, an [UNK] marked; the sentence-pair mode; the error path (an
// empty text shows the daemon's own message); the model facts from /info; no console error and
// no CSP violation. Then the same page on a RoBERTa model (roberta-tiny: byte-level BPE), with
// an emoji that BPE splits into byte tokens: the label and scores are the CLI's, the tokens
// /tokenize's, each shown as a whole character; a pair shows RoBERTa's four special tokens.
// Saves a screenshot (BUILD/playground.png, CI keeps it).
//   node tests/daemon/playground_test.mjs BUILD_DIR   (NODE_PATH: the tests/npm install)
// Fails, never skips, when chromium or the daemon is missing.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const build = path.resolve(process.argv[2] || 'build');
const here = path.dirname(new URL(import.meta.url).pathname);
const npmInstall = spawnSync(path.join(here, '..', 'npm', 'install.sh'), [path.join(build, 'npm')],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
if (npmInstall.status !== 0) { console.log('FAIL: could not install the npm tools (tests/npm/install.sh)'); process.exit(1); }
const require = createRequire(path.join(npmInstall.stdout.trim(), 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');
const shared = process.env.BERTSERVE_SHARED || path.join(here, '..', '..', '..', 'shared');
const model = path.join(shared, 'models', 'finsent-mini');
const browserPath = '/usr/bin/chromium';
let failures = 0;
const check = (ok, msg) => { if (!ok) { failures++; console.log('FAIL:', msg); } return ok; };
for (const f of [browserPath, path.join(build, 'bertserve'), path.join(model, 'model.safetensors')])
  if (!existsSync(f)) { console.log(`FAIL: ${f} is missing (chromium: apt-get install chromium)`); process.exit(1); }

// A PhraseBank sentence, and what the CLI says of it.
const split = path.join(shared, 'data', 'financial_phrasebank', 'splits', 'test.tsv');
const sentence = readFileSync(split, 'utf8').split('\n')[3].split('\t')[1];
const cliPredict = (dir, text) => JSON.parse(spawnSync(path.join(build, 'bertserve-cli'),
  ['predict', '--model', dir, '--jsonl'], { input: JSON.stringify(text) + '\n' }).stdout.toString());
const want = cliPredict(model, sentence);

// A daemon on a free port; its `ready` line says which.
async function startDaemon(dir) {
  const proc = spawn(path.join(build, 'bertserve'), ['--model', dir, '--host', '127.0.0.1', '--port', '0']);
  const port = await new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error('no ready line:\n' + log)), 60000);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = /ready .*port=(\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => reject(new Error(`the daemon exited (${code}):\n${log}`)));
  });
  return { proc, base: `http://127.0.0.1:${port}` };
}
const { proc: daemon, base } = await startDaemon(model);
let roberta = null;

const browser = await chromium.launch({
  executablePath: browserPath, headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
    '--disable-default-apps', '--disable-sync', '--no-first-run', '--disable-features=Translate,MediaRouter'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1200 } });
  // Script errors, CSP violations, and any failed request but the empty text's 422 below.
  const problems = [];
  let expected422 = 0;
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('response', (r) => {
    if (r.status() === 422 && r.url().endsWith('/predict') && expected422-- > 0) return;
    if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
  });
  const response = await page.goto(base + '/');
  check(response.status() === 200, `GET /: ${response.status()}`);
  check((response.headers()['content-security-policy'] || '').includes("script-src 'self'"), 'the page has its CSP');
  await page.waitForFunction(() => document.querySelector('#info dd'));
  const facts = await (await fetch(base + '/info')).json();
  const infoText = await page.textContent('#info');
  check(infoText.includes(facts.model_version) && infoText.includes(facts.kernel), `model facts shown: ${infoText}`);

  // A sentence, the button.
  await page.fill('#text', sentence);
  await page.click('#classify');
  await page.waitForSelector('#result:not([hidden]) .bar');
  await page.waitForSelector('#tokens .tok');
  const label = await page.textContent('#label');
  check(label === want.label, `label ${label}, the CLI says ${want.label}`);
  for (const [name, p] of Object.entries(want.scores)) {
    const shown = Number(await page.textContent(`.bar[data-label="${name}"] .value`));
    check(Math.abs(shown - p) <= 5e-5, `score of ${name}: shown ${shown}, the CLI ${p}`);
  }
  const timing = await page.textContent('#timing');
  check(timing.includes(facts.model_version) && / ms /.test(timing), `time and version shown: ${timing}`);
  const shownIds = await page.$$eval('#tokens .tok', (els) => els.map((e) => Number(e.title.split(/[ ,]/)[1])));
  const tok = await (await fetch(base + '/tokenize', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ inputs: sentence }) })).json();
  check(JSON.stringify(shownIds) === JSON.stringify(tok[0].map((t) => t.id)), 'the tokens shown are /tokenize\'s');
  await page.screenshot({ path: path.join(build, 'playground.png'), fullPage: true });

  // Ctrl+Enter, and an [UNK] marked (a character outside the vocabulary).
  await page.fill('#text', 'Profit rose \u2603 sharply');
  await page.press('#text', 'Control+Enter');
  await page.waitForFunction(() => document.querySelector('#tokens .tok.unk'));
  check(await page.$('#tokens .tok.unk') !== null, 'an [UNK] token is marked');

  // The sentence-pair mode.
  await page.check('#pair-mode');
  await page.fill('#text', 'Is the outlook good?');
  await page.fill('#pair', 'Operating profit rose to EUR 13.1 mn.');
  await page.click('#classify');
  await page.waitForFunction(() => document.querySelectorAll('#tokens .tok.special').length === 3);
  const pairBars = await page.$$('#bars .bar');
  check(pairBars.length === facts.labels.length, `pair: ${pairBars.length} bars`);
  await page.uncheck('#pair-mode');

  // The error path: an empty text shows the daemon's message.
  await page.fill('#text', '');
  expected422 = 1;
  await page.click('#classify');
  await page.waitForSelector('#error:not([hidden])');
  const error = await page.textContent('#error');
  check(/422/.test(error) && /empty or only whitespace/.test(error), `the daemon's error shown: ${error}`);
  check(problems.length === 0, `console errors or CSP violations: ${problems.join(' | ')}`);

  // A RoBERTa model: byte-level BPE tokens, an emoji split into two byte tokens.
  const robertaDir = path.join(shared, 'models', 'roberta-tiny');
  const text = 'Profit rose \u{1F600} sharply';
  const wantRoberta = cliPredict(robertaDir, text);
  roberta = await startDaemon(robertaDir);
  const page2 = await browser.newPage();
  page2.on('pageerror', (e) => problems.push(String(e)));
  page2.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  await page2.goto(roberta.base + '/');
  await page2.waitForFunction(() => document.querySelector('#info dd'));
  await page2.fill('#text', text);
  await page2.click('#classify');
  await page2.waitForSelector('#result:not([hidden]) .bar');
  await page2.waitForSelector('#tokens .tok');
  const label2 = await page2.textContent('#label');
  check(label2 === wantRoberta.label, `RoBERTa: label ${label2}, the CLI says ${wantRoberta.label}`);
  for (const [name, p] of Object.entries(wantRoberta.scores)) {
    const shown = Number(await page2.textContent(`.bar[data-label="${name}"] .value`));
    check(Math.abs(shown - p) <= 5e-5, `RoBERTa: score of ${name}: shown ${shown}, the CLI ${p}`);
  }
  const shown2 = await page2.$$eval('#tokens .tok', (els) => els.map((e) => [Number(e.title.split(/[ ,]/)[1]),
    e.textContent]));
  const tok2 = await (await fetch(roberta.base + '/tokenize', { method: 'POST',
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ inputs: text }) })).json();
  check(JSON.stringify(shown2) === JSON.stringify(tok2[0].map((t) => [t.id, t.text])),
    `RoBERTa: the tokens shown ${JSON.stringify(shown2)} are /tokenize's`);
  check(shown2.filter(([, t]) => t === '\u{1F600}').length === 2, `RoBERTa: the emoji's two byte tokens show it whole`);
  // A RoBERTa pair shows its four special tokens: <s> A </s></s> B </s>.
  await page2.check('#pair-mode');
  await page2.fill('#text', 'Is the outlook good?');
  await page2.fill('#pair', 'Operating profit rose.');
  await page2.click('#classify');
  await page2.waitForFunction(() => document.querySelectorAll('#tokens .tok.special').length === 4);
  const specials = await page2.$$eval('#tokens .tok.special', (els) => els.map((e) => e.textContent));
  check(JSON.stringify(specials) === JSON.stringify(['<s>', '</s>', '</s>', '</s>']), `RoBERTa pair: ${specials}`);
  check(problems.length === 0, `RoBERTa: console errors: ${problems.join(' | ')}`);
} finally {
  await browser.close();
  daemon.kill('SIGTERM');
  if (roberta) roberta.proc.kill('SIGTERM');
}
if (failures) { console.log(`playground_test: ${failures} check(s) failed`); process.exit(1); }
console.log(`playground_test: all checks passed (screenshot ${path.join(build, 'playground.png')})`);
