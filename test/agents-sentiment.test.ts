// The `sentiment` rule baseline: hand-built observations, the registry, a hand-derived backtest and the CLI.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SentimentAgent } from '../src/agents/baselines.js';
import { agentDescriptions, agentNames, createAgent } from '../src/agents/registry.js';
import type { Agent } from '../src/agents/agent.js';
import type { Action, Observation } from '../src/env/types.js';
import type { MarketSeries, TextItem } from '../src/data/series.js';
import { backtest } from '../src/eval/backtest.js';
import { repoRoot } from './shared-paths.js';

const ROOT = repoRoot();
const TMP = mkdtempSync(join(tmpdir(), 'flag-trader-sentiment-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

/** An observation whose only readable field is `text`: reading prices, dates or the account throws. */
function textOnly(text: TextItem[]): Observation {
  return new Proxy({ text } as unknown as Observation, {
    get(target, key) {
      if (key === 'text') return target.text;
      throw new Error(`sentiment agent read observation.${String(key)}`);
    },
  });
}

const news = (...texts: string[]): TextItem[] => texts.map((text) => ({ kind: 'news', text }));
const act = (a: Agent, text: TextItem[]) => a.act(textOnly(text)) as Action;

test('sentiment: net positive tags buy, net negative sell, ties and untagged days hold', () => {
  const a = new SentimentAgent();
  assert.equal(act(a, news('Up. (Sentiment: positive)')), 'buy');
  assert.equal(act(a, news('Down. (Sentiment: negative)')), 'sell');
  // 2 positive - 1 negative = +1; the neutral item adds nothing.
  assert.equal(act(a, news('a (Sentiment: positive)', 'b (Sentiment: negative)', 'c (Sentiment: neutral)', 'd (Sentiment: positive)')), 'buy');
  // 1 positive - 2 negative = -1.
  assert.equal(act(a, news('a (Sentiment: negative)', 'b (Sentiment: positive)', 'c (Sentiment: negative)')), 'sell');
  assert.equal(act(a, news('a (Sentiment: positive)', 'b (Sentiment: negative)')), 'hold', 'a tie is flat');
  assert.equal(act(a, news('a (Sentiment: neutral)', 'b (Sentiment: neutral)')), 'hold', 'neutral only: net 0');
  assert.equal(act(a, []), 'hold', 'no text at all');
  assert.equal(act(a, news('Shares jump on record sales.', 'investor sentiment is improving')), 'hold', 'words without a tag count for nothing');
});

test('sentiment: the crypto lower-case tag, the last tag of an item, and filings count too', () => {
  const a = new SentimentAgent();
  assert.equal(act(a, news('bitcoin rallies (sentiment:positive)')), 'buy');
  assert.equal(act(a, news('ether slides (sentiment:negative)')), 'sell');
  // sentimentOf reads an item's LAST tag: this item is negative, not positive.
  assert.equal(act(a, news('was (Sentiment: positive) now (Sentiment: negative)')), 'sell');
  // Every text item of the day counts, whatever its kind: +1 (10-Q) - 1 (news) + 1 (10-K) = +1.
  const mixed: TextItem[] = [
    { kind: '10q', text: 'Quarter summary. (Sentiment: positive)' },
    { kind: 'news', text: 'Lawsuit. (Sentiment: negative)' },
    { kind: '10k', text: 'Annual summary. (sentiment:positive)' },
  ];
  assert.equal(act(a, mixed), 'buy');
});

test('sentiment long-only: net negative holds instead of selling; the rest is unchanged', () => {
  const a = new SentimentAgent(true);
  assert.equal(act(a, news('Down. (Sentiment: negative)')), 'hold');
  assert.equal(act(a, news('a (sentiment:negative)', 'b (sentiment:negative)', 'c (sentiment:positive)')), 'hold');
  assert.equal(act(a, news('Up. (Sentiment: positive)')), 'buy');
  assert.equal(act(a, news('a (Sentiment: positive)', 'b (Sentiment: negative)')), 'hold');
});

test('registry: `sentiment` by name with a description, sentimentLongOnly passed through and checked', () => {
  assert.ok(agentNames().includes('sentiment'));
  const d = agentDescriptions().find((x) => x.name === 'sentiment');
  assert.ok(d && d.description.length > 10, 'has a one-line description');
  const neg = news('Down. (Sentiment: negative)');
  assert.equal(createAgent('sentiment').name, 'sentiment');
  assert.equal(act(createAgent('sentiment'), neg), 'sell');
  assert.equal(act(createAgent('sentiment', { sentimentLongOnly: false }), neg), 'sell');
  assert.equal(act(createAgent('sentiment', { sentimentLongOnly: true }), neg), 'hold');
  assert.throws(() => createAgent('sentiment', { sentimentLongOnly: 'yes' as unknown as boolean }), /sentimentLongOnly must be true or false, got "yes"/);
});

// A hand-made 6-day series. Day t's decision reads day t's items only:
//   day 0: +2 -1 = +1 -> buy (+1)     day 1: -1 -> sell (-1)      day 2: no items -> hold (0)
//   day 3: crypto tag +1 -> buy (+1)  day 4: +1 -1 (+ neutral) = 0 -> hold (0)
//   day 5: the window's last day: no decision is made on it, so its negative item is never acted on.
// Long-only turns day 1's sell into hold. An agent reading tomorrow's items instead would give
// [-1, 0, +1, 0, -1], which differs on every day.
const DATES = ['2022-01-03', '2022-01-04', '2022-01-05', '2022-01-06', '2022-01-07', '2022-01-10'];
const PRICES = [100, 101, 102, 101, 100, 102];
const TEXT: TextItem[][] = [
  news('Contract won. (Sentiment: positive)', 'Recall. (Sentiment: negative)', 'Upgrade. (Sentiment: positive)'),
  news('Guidance cut. (Sentiment: negative)'),
  [],
  news('token rallies (sentiment:positive)'),
  news('Meeting held. (Sentiment: neutral)', 'Beat. (Sentiment: positive)', 'Probe. (Sentiment: negative)'),
  news('Fraud alleged. (Sentiment: negative)'),
];
const series: MarketSeries = { asset: 'HAND', source: 'hand-made', dates: DATES, prices: Float64Array.from(PRICES), text: TEXT };
const EXPECTED = [1, -1, 0, 1, 0];
const EXPECTED_LONG_ONLY = [1, 0, 0, 1, 0];

test('backtest over a hand-made series: positions and returns derived by hand, no look-ahead', async () => {
  const r = await backtest(series, new SentimentAgent());
  assert.deepEqual(r.positions, EXPECTED);
  // returns[t] = position_t * ln(P[t+1] / P[t]) (benchmark mode, no cost).
  const want = EXPECTED.map((p, t) => p * Math.log(PRICES[t + 1]! / PRICES[t]!));
  r.returns.forEach((x, t) => assert.ok(Math.abs(x - want[t]!) < 1e-12, `day ${t}: ${x} vs ${want[t]}`));
  // ln(101/100) - ln(102/101) + ln(100/101) = ln(101/102).
  assert.ok(Math.abs(r.returns.reduce((a, b) => a + b, 0) - Math.log(101 / 102)) < 1e-12);

  const lo = await backtest(series, new SentimentAgent(true));
  assert.deepEqual(lo.positions, EXPECTED_LONG_ONLY);

  // A window starting on day 2 sees days 0-1 as price history only: their items are not acted on.
  const late = await backtest(series, new SentimentAgent(), { start: DATES[2] });
  assert.deepEqual(late.positions, EXPECTED.slice(2));
});

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, timeout: 60000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

test('CLI: backtest --agent sentiment [--sentiment-long-only] on an INVESTOR-BENCH file', async () => {
  const file = join(TMP, 'hand.json');
  writeFileSync(file, JSON.stringify(Object.fromEntries(DATES.map((d, t) => [d, { prices: PRICES[t], news: TEXT[t]!.map((x) => x.text) }]))));
  const [plain, longOnly] = await Promise.all([
    cli('backtest', '--data', file, '--agent', 'sentiment', '--json'),
    cli('backtest', '--data', file, '--agent', 'sentiment', '--sentiment-long-only', '--json'),
  ]);
  assert.equal(plain.code, 0, plain.stderr);
  const p = JSON.parse(plain.stdout);
  assert.equal(p.agent, 'sentiment');
  assert.deepEqual(p.positions, EXPECTED);
  assert.equal(longOnly.code, 0, longOnly.stderr);
  assert.deepEqual(JSON.parse(longOnly.stdout).positions, EXPECTED_LONG_ONLY);
});
