// Trading transcripts for pretraining: the hindsight trend label by hand, the document being exactly
// the text the LLM policy reads for the same day followed by the answer, the account varying, and the
// corpus / metadata recording the markets read (so the point-in-time guard refuses them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trendLabel, regimeLabel, answerText, marketTranscripts } from '../src/pretrain/transcripts.js';
import { continuedCutoff, pretrain } from '../src/pretrain/pretrain.js';
import { parsePretrainConfig } from '../src/pretrain/config.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { buildCorpus, packDocuments, windowTargetCount, windowTargets } from '../src/pretrain/corpus.js';
import { ByteTokenizer } from '../src/model/tokenizer.js';
import { generateSyntheticMarket } from '../src/data/synthetic.js';
import { loadModel } from '../src/model/load.js';
import { LlmPolicy } from '../src/rl/llm-policy.js';
import { getBackend } from '../src/kernels/index.js';

test('trendLabel: buy above the band, sell below minus it, hold inside, null without a future price', () => {
  const p = [100, 101, 103, 99, 97];
  // ln(103/100) = 0.0296 > 0.02: buy; ln(101/100) = 0.00995 inside 0.02: hold
  assert.equal(trendLabel(p, 0, 2, 0.02), 'buy');
  assert.equal(trendLabel(p, 0, 1, 0.02), 'hold');
  assert.equal(trendLabel(p, 0, 1, 0.005), 'buy');
  // ln(97/103) = -0.0600: sell; ln(99/101) = -0.0200 (just inside 0.0201, just outside 0.0199)
  assert.equal(trendLabel(p, 2, 2, 0.02), 'sell');
  assert.equal(trendLabel(p, 1, 2, 0.0201), 'hold');
  assert.equal(trendLabel(p, 1, 2, 0.0199), 'sell');
  assert.equal(trendLabel(p, 3, 1, 0), 'sell');
  assert.equal(trendLabel(p, 3, 2, 0), null);
  assert.equal(trendLabel(p, 4, 1, 0), null);
  assert.throws(() => trendLabel(p, 0, 0, 0.02), /horizon must be an integer >= 1/);
  assert.throws(() => trendLabel(p, 0, 1, -1), /hold band must be >= 0/);
});

test('transcripts: each document is the policy\'s own prompt text for that day, then the JSON answer', async () => {
  const model = await loadModel('random:tiny', { seed: 3 });
  const { series } = generateSyntheticMarket({ seed: 77, days: 160, newsTags: false });
  const tx = marketTranscripts(series, model.tokenizer, { labelOf: (t) => trendLabel(series.prices, t, 5, 0.01), lookback: 20, episodeSteps: 30, seed: 9, prompt: { style: 'compact' } });
  // Days 20..154 have a price 5 days ahead (the last index is 159): one document each, in day order.
  assert.deepEqual(tx.map((d) => d.t), Array.from({ length: 135 }, (_, i) => 20 + i));
  const policy = new LlmPolicy({ model, backend: getBackend(), trainableLayers: 1, head: 'lm', headInput: 'last', seed: 1, prompt: { mode: 'benchmark', style: 'compact', maxTokens: 4096 } });
  const positions = new Set<string>();
  for (const d of [tx[0]!, tx[17]!, tx[64]!, tx[134]!]) {
    // The observation is the environment's day t (its history ends on that day's date and price).
    const obs = d.observation;
    assert.equal(obs.t, d.t);
    assert.equal(obs.date, series.dates[d.t]);
    assert.equal(obs.prices[obs.prices.length - 1], series.prices[d.t]);
    assert.equal(obs.prices.length, 21);
    positions.add(obs.account.position === 1 ? 'long' : obs.account.position === -1 ? 'short' : 'flat');
    assert.equal(d.text, policy.promptText(obs).text + d.label + '"}', `day ${d.t}`);
    assert.equal(d.label, trendLabel(series.prices, d.t, 5, 0.01));
    assert.ok(d.text.endsWith(answerText(d.label)));
  }
  // The random actions move the account: not every transcript shows a flat position.
  for (const d of tx) positions.add(/Position: (\w+)\./.exec(d.text)![1]!);
  assert.ok(positions.has('long') && positions.has('short') && positions.has('flat'), [...positions].join(','));
  // Every label occurs on this market.
  assert.deepEqual(new Set(tx.map((d) => d.label)), new Set(['buy', 'sell', 'hold']));
});

test('transcripts in the corpus: undated, both news variants, counted per source; they need the chat template', async () => {
  const model = await loadModel('random:tiny', { seed: 3 });
  const src = (newsTags: boolean) => ({ kind: 'transcripts' as const, seed: 5, days: 120, newsTags, newsAccuracy: 0.85, label: 'trend' as const, horizon: 10, holdBand: 0.02, promptStyle: 'compact' as const });
  const c = await buildCorpus([src(true), src(false)], '2020-09-30', { chat: model.tokenizer });
  // Days 20..109 of each variant (index 119 is the last price).
  assert.deepEqual(c.stats.bySource, { 'transcripts:5': 90, 'transcripts:5:words': 90 });
  assert.equal(c.stats.undated, 180);
  assert.ok(c.docs.slice(0, 90).every((d) => d.text.includes('(Sentiment: ')));
  assert.ok(c.docs.slice(90).every((d) => !d.text.includes('(Sentiment: ')));
  await assert.rejects(() => buildCorpus([src(true)], null), /need the model's chat template/);
});

test('packing with context-only text: the context is read but not predicted; the answer and the separator are targets', () => {
  const tok = new ByteTokenizer();
  const enc = (x: string) => tok.encode(x);
  const s = packDocuments([
    { text: 'ask:buy', date: null, source: 't', contextChars: 4 },
    { text: 'xy', date: null, source: 'n' },
  ], enc, 0, null);
  const b = (ch: string) => 3 + ch.charCodeAt(0);
  assert.deepEqual([...s.ids], [b('a'), b('s'), b('k'), b(':'), b('b'), b('u'), b('y'), 0, b('x'), b('y'), 0]);
  assert.deepEqual([...s.target!], [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
  // The window ids[0..6) predicts ids[1..7): ignored up to ':' (context), then 'b', 'u', 'y'.
  assert.deepEqual([...windowTargets(s, 0, 6, -1)], [-1, -1, -1, b('b'), b('u'), b('y')]);
  assert.equal(windowTargetCount(s, 0, 6), 3);
  assert.equal(windowTargetCount(s, 0, 2), 0);
  assert.equal(windowTargetCount(s, 6, 10), 4);
  // A context that does not end at a token boundary (or covers the whole text) is refused, naming the source.
  assert.throws(() => packDocuments([{ text: 'abc', date: null, source: 'src:9', contextChars: 3 }], enc, 0, null), /src:9: the document's context \(3 characters\)/);
});

test('regimeLabel: the regime of day t gives the position of its drift (bull buy, bear sell, flat hold)', () => {
  const regimes = ['bull', 'flat', 'bear', 'bear'] as const;
  assert.deepEqual([0, 1, 2, 3].map((t) => regimeLabel(regimes, t)), ['buy', 'hold', 'sell', 'sell']);
  assert.throws(() => regimeLabel(regimes, 4), /no regime for day 4/);
  // The synthetic market's regimes drive its drift: on seed 11, bull days rise more often than bear days.
  const { series, regimes: rs } = generateSyntheticMarket({ seed: 11, days: 1500 });
  const up = (r: string) => { let n = 0, k = 0; for (let t = 0; t + 1 < rs.length; t++) if (rs[t] === r) { n++; if (series.prices[t + 1]! > series.prices[t]!) k++; } return k / n; };
  assert.ok(up('bull') > 0.55 && up('bear') < 0.47, `bull ${up('bull')}, bear ${up('bear')}`);
});

test('continuedCutoff: a continued model records the later cutoff, its base\'s when it reads nothing dated, unknown when either is', () => {
  const meta = (text_cutoff: string | null) => ({ format: 'flag-trader/pretrained-model' as const, version: 1 as const, text_cutoff });
  const folder = (c: string | null) => ({ source: 'folder' as const, meta: meta(c), spec: 'm' });
  assert.equal(continuedCutoff('2020-09-30', 5, { source: 'random', meta: null, spec: 'random:small' }), '2020-09-30');
  assert.equal(continuedCutoff(null, 5, { source: 'random', meta: null, spec: 'random:small' }), null);
  assert.equal(continuedCutoff('2020-06-30', 5, folder('2020-09-30')), '2020-09-30');
  assert.equal(continuedCutoff('2021-01-31', 5, folder('2020-09-30')), '2021-01-31');
  // No cutoff given: undated text only keeps the base's; dated text of unknown reach makes it unknown.
  assert.equal(continuedCutoff(null, 0, folder('2020-09-30')), '2020-09-30');
  assert.equal(continuedCutoff(null, 3, folder('2020-09-30')), null);
  assert.equal(continuedCutoff('2020-09-30', 0, folder(null)), null);
  const logs: string[] = [];
  assert.equal(continuedCutoff('2020-09-30', 0, { source: 'folder', meta: null, spec: 'hf' }, (m) => logs.push(m)), null);
  assert.match(logs[0]!, /base model hf records no text cutoff .* text_cutoff null/);
});

const TMP = mkdtempSync(join(tmpdir(), 'flag-trader-transcripts-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

test('pretrain continued on transcripts: answer-only loss, held-out answers, the base\'s cutoff and seeds kept, bit-identical resume', { timeout: 120_000 }, async () => {
  // Stage 1: a base that read dated news (cutoff 2020-09-30) and the headlines of market 1001.
  const news = join(TMP, 'news.jsonl');
  writeFileSync(news, ['ACME raises its outlook.', 'ACME misses estimates.'].map((text, i) => JSON.stringify({ text, date: `2020-09-2${i}` })).join('\n') + '\n');
  const base = join(TMP, 'base');
  const cfg1 = parsePretrainConfig({ model: 'random:tiny', seq_len: 64, batch_size: 2, steps: 3, warmup_steps: 1, eval_every: 3, eval_tokens: 512 }, 'test');
  await pretrain({ out: base, config: cfg1, sources: [{ kind: 'jsonl', path: news }, { kind: 'synthetic', seed: 1001, days: 60, newsTags: true }], textCutoff: '2020-09-30' });
  // Stage 2: transcripts of market 1002 only (undated), no cutoff given.
  const tx = (newsTags: boolean) => ({ kind: 'transcripts' as const, seed: 1002, days: 80, newsTags, newsAccuracy: 0.85, label: 'regime' as const, horizon: 10, holdBand: 0.02, promptStyle: 'compact' as const });
  const sources = [tx(true), tx(false)];
  const cfg2 = parsePretrainConfig({ model: base, seq_len: 640, batch_size: 2, steps: 6, warmup_steps: 1, eval_every: 3, eval_tokens: 4000, checkpoint_every: 2, heldout_fraction: 0.2 }, 'test');
  const a = join(TMP, 'straight'), b = join(TMP, 'resumed');
  const r = await pretrain({ out: a, config: cfg2, sources, textCutoff: null });
  const meta = JSON.parse(readFileSync(join(a, 'flag_trader.json'), 'utf8'));
  assert.equal(meta.text_cutoff, '2020-09-30', 'nothing dated read here: the base\'s cutoff holds');
  assert.deepEqual(meta.synthetic_seeds, [1001, 1002]);
  assert.deepEqual(meta.base_model_meta, { text_cutoff: '2020-09-30', corpus_hash: JSON.parse(readFileSync(join(base, 'flag_trader.json'), 'utf8')).corpus.hash, synthetic_seeds: [1001] });
  // Only answers are targets: a step's targets are a few tokens per transcript, not the window's 640 each.
  const log = readFileSync(join(a, 'train', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { tokens: number; loss: number });
  for (const m of log) assert.ok(m.tokens > 0 && m.tokens < 2 * 640 / 10 && Number.isFinite(m.loss), JSON.stringify(m));
  const held = r.final.heldout!.find((h) => h.group === 'transcripts')!;
  assert.ok(held.tokens > 0 && held.tokens < 4000 / 10 && Number.isFinite(held.nats_per_token), JSON.stringify(held));
  // Stopped and resumed: the same weights and log, bit for bit.
  await pretrain({ out: b, config: cfg2, sources, textCutoff: null, stopAfter: 3 });
  await pretrain({ out: b, config: cfg2, sources, textCutoff: null, resume: true });
  assert.ok(readFileSync(join(a, 'model.safetensors')).equals(readFileSync(join(b, 'model.safetensors'))), 'same weights, bit for bit');
  assert.equal(readFileSync(join(a, 'train', 'metrics.jsonl'), 'utf8'), readFileSync(join(b, 'train', 'metrics.jsonl'), 'utf8'));
  // A window shorter than a prompt could never show an answer its whole prompt: refused.
  await assert.rejects(pretrain({ out: join(TMP, 'short'), config: { ...cfg2, seq_len: 200 }, sources, textCutoff: null }), /context-only part \(a transcript's prompt\) is \d+ tokens, not shorter than seq_len 200/);
});

test('packing refuses a context that does not end at a token boundary of the whole text', () => {
  // An encoder that merges "ab" into one token: the context "a" is not a prefix of encode("ab").
  const enc = (x: string) => (x === 'ab' ? [7] : [...x].map((c) => c.charCodeAt(0)));
  assert.throws(() => packDocuments([{ text: 'ab', date: null, source: 'bpe:1', contextChars: 1 }], enc, 0, null),
    /bpe:1: the document's context \(1 characters\) does not end at a token boundary/);
});
