// The playground at GET /: one page that calls the daemon's own /info, /predict and /tokenize,
// as any client would. No framework, no build step, no inline handlers (the page's
// Content-Security-Policy allows scripts from this origin only).
'use strict';

const $ = (id) => document.getElementById(id);
let facts = null;  // /info
let unkId = null;  // the id of [UNK], asked of /tokenize once

function headers() {
  const h = {'Content-Type': 'application/json'};
  const key = $('api-key').value;
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

// POST path with body; resolves to {ok, status, data, headers} and never throws on a daemon error.
async function post(path, body) {
  const r = await fetch(path, {method: 'POST', headers: headers(), body: JSON.stringify(body)});
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (r.status === 401) $('key-box').hidden = false;
  return {ok: r.ok, status: r.status, data, headers: r.headers};
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function showError(status, data) {
  const box = $('error');
  box.textContent = 'Error ' + status + ': ' + (data && data.error ? data.error : 'no answer') +
      (data && data.error_type ? ' (' + data.error_type + ')' : '');
  box.hidden = false;
  $('result').hidden = true;
}

async function loadFacts() {
  const r = await fetch('/info');
  facts = await r.json();
  $('model-line').textContent = facts.model + ' \u00b7 version ' + facts.model_version + ' \u00b7 ' +
      facts.labels.join(' / ');
  const dl = $('info');
  dl.textContent = '';
  const rows = [['model', facts.model], ['model version', facts.model_version],
    ['loaded at', facts.model_loaded_at], ['labels', facts.labels.join(', ')],
    ['shape', facts.layers + ' layers \u00d7 ' + facts.hidden_size + ' hidden, ' + facts.attention_heads + ' heads'],
    ['max tokens', facts.max_tokens], ['vocabulary', facts.vocab_size + ' tokens'],
    ['weights', facts.weights_dtype + ', computed in ' + facts.compute_dtype + ' (' + facts.kernel + ')'],
    ['bertserve', facts.version]];
  for (const [k, v] of rows) {
    dl.appendChild(el('dt', '', k));
    dl.appendChild(el('dd', '', String(v)));
  }
}

function showBars(scores, best) {
  const bars = $('bars');
  bars.textContent = '';
  const order = facts ? facts.labels.filter((l) => l in scores) : Object.keys(scores);
  for (const label of order) {
    const row = el('div', 'bar' + (label === best ? ' best' : ''));
    row.dataset.label = label;
    row.appendChild(el('span', 'name', label));
    const track = el('div', 'track');
    const fill = el('div', 'fill');
    fill.style.width = (100 * scores[label]).toFixed(1) + '%';
    track.appendChild(fill);
    row.appendChild(track);
    row.appendChild(el('span', 'value', scores[label].toFixed(4)));
    bars.appendChild(row);
  }
}

// One text's tokens as /tokenize gave them (with [CLS] and [SEP]); keep: how many of its own
// tokens the model kept (the rest are shown struck out).
function appendTokens(box, tokens, keep, first) {
  tokens.forEach((t, i) => {
    if (!first && i === 0) {
      // A pair's second text: BERT's input has no [CLS] there ([CLS] A [SEP] B [SEP]); RoBERTa's
      // has a second </s> in place of its <s> (<s> A </s></s> B </s>).
      if (!(facts && facts.model_type === 'roberta')) return;
      t = tokens[tokens.length - 1];
    }
    const own = !t.special;
    const index = own ? i - 1 : -1;
    let cls = 'tok';
    if (t.special) cls += ' special';
    else if (t.id === unkId) cls += ' unk';
    if (own && index >= keep) cls += ' cut';
    if (!first && i === 1) cls += ' sep';
    const span = el('span', cls, t.id === unkId && own ? '[UNK] ' + t.text : t.text);
    span.title = 'id ' + t.id + (own ? ', bytes ' + t.start + '\u2013' + t.stop : '');
    box.appendChild(span);
  });
}

async function showTokens(texts, keptTotal) {
  const r = await post('/tokenize', {inputs: texts});
  const box = $('tokens');
  box.textContent = '';
  if (!r.ok) { box.textContent = 'tokens unavailable: ' + (r.data && r.data.error); return; }
  const lens = r.data.map((tokens) => tokens.length - 2);
  // [CLS] A [SEP] (B [SEP]); RoBERTa's byte-level BPE: <s> A </s> (</s> B </s>).
  const special = texts.length === 1 ? 2 : (facts && facts.model_type === 'roberta' ? 4 : 3);
  let keep = lens.slice();
  // HF's longest_first: the longer text loses a token until both fit (the model's rule).
  while (keep.reduce((a, b) => a + b, 0) + special > keptTotal) {
    const i = keep.length === 2 && keep[1] > keep[0] ? 1 : 0;
    keep[i]--;
  }
  r.data.forEach((tokens, i) => appendTokens(box, tokens, keep[i], i === 0));
  const total = lens.reduce((a, b) => a + b, 0) + special;
  $('token-count').textContent = '(' + Math.min(total, keptTotal) + (total > keptTotal ?
      ' of ' + total + ': truncated to the model\'s ' + keptTotal + ')' : ')');
}

async function classify() {
  const text = $('text').value;
  const pairMode = $('pair-mode').checked;
  const button = $('classify');
  button.disabled = true;
  $('error').hidden = true;
  try {
    if (unkId === null) {
      const u = await post('/tokenize', {inputs: '[UNK]', add_special_tokens: false});
      if (u.ok && u.data[0].length === 1) unkId = u.data[0][0].id;
    }
    let scores, best, version, ms, kept;
    if (!pairMode) {
      const r = await post('/predict', {text});
      if (!r.ok) return showError(r.status, r.data);
      scores = r.data.scores; best = r.data.prediction; version = r.data.model_version;
      ms = r.data.processing_time_ms; kept = r.data.tokens;
    } else {
      const r = await post('/predict', {inputs: [text, $('pair').value]});
      if (!r.ok) return showError(r.status, r.data);
      scores = {};
      for (const x of r.data) scores[x.label] = x.score;
      best = r.data[0].label; version = r.headers.get('X-Model-Version');
      ms = Number(r.headers.get('x-total-time')); kept = facts ? facts.max_tokens : 1e9;
    }
    $('label').textContent = best;
    showBars(scores, best);
    $('timing').textContent = ms.toFixed(1) + ' ms \u00b7 model version ' + version;
    $('result').hidden = false;
    await showTokens(pairMode ? [text, $('pair').value] : [text], kept);
  } catch (e) {
    showError('-', {error: String(e)});
  } finally {
    button.disabled = false;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('classify').addEventListener('click', classify);
  $('pair-mode').addEventListener('change', () => { $('pair-box').hidden = !$('pair-mode').checked; });
  for (const id of ['text', 'pair', 'api-key']) {
    $(id).addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); classify(); }
    });
  }
  loadFacts().catch((e) => { $('model-line').textContent = 'the daemon did not answer /info: ' + e; });
});
