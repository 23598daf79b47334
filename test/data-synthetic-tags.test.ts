// The synthetic market without sentiment tags (newsTags: false, config synthetic_news_tags): same draws,
// untagged words, its own source string, and the config / CLI plumbing that selects it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticMarket, syntheticMarket } from '../src/data/synthetic.js';
import { makeHeadline, SENTIMENTS } from '../src/data/headlines.js';
import { sentimentOf } from '../src/env/features.js';
import { Rng } from '../src/util/rng.js';
import { defaultConfig, parseFlagValue, parseTrainConfig } from '../src/rl/config.js';
import { loadRunSeries } from '../src/rl/data.js';
import { repoRoot } from './shared-paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'flag-trader-synth-tags-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

const SEED = 11, DAYS = 400;
const tagged = generateSyntheticMarket({ seed: SEED, days: DAYS });
const plain = generateSyntheticMarket({ seed: SEED, days: DAYS, newsTags: false });
const TAG = / \(Sentiment: (positive|neutral|negative)\)$/;

test('newsTags false: no headline mentions "Sentiment", while every tagged one does', () => {
  let items = 0;
  for (const day of plain.series.text!) {
    for (const item of day) {
      items++;
      assert.doesNotMatch(item.text, /sentiment/i, item.text);
      assert.ok(item.text.endsWith('.'), `a headline still ends as a sentence: ${item.text}`);
    }
  }
  assert.ok(items >= DAYS, `${items} items: at least one a day with the default headlinesPerDay [1, 3]`);
  for (const day of tagged.series.text!) for (const item of day) assert.match(item.text, TAG);
});

test('same seed, same market: regimes, prices, OHLCV, dates and headline words agree with the tagged variant', () => {
  assert.deepEqual(plain.regimes, tagged.regimes);
  assert.deepEqual(plain.series.dates, tagged.series.dates);
  assert.deepEqual(Array.from(plain.series.prices), Array.from(tagged.series.prices));
  for (const k of ['open', 'high', 'low', 'close', 'volume'] as const) {
    assert.deepEqual(Array.from(plain.series.ohlcv![k]), Array.from(tagged.series.ohlcv![k]), k);
  }
  const a = tagged.series.text!, b = plain.series.text!;
  assert.equal(b.length, a.length);
  for (let t = 0; t < a.length; t++) {
    assert.equal(b[t]!.length, a[t]!.length, `day ${t}: number of headlines`);
    // The untagged headline is the tagged one with its trailing tag removed, word for word.
    for (let j = 0; j < a[t]!.length; j++) assert.equal(b[t]![j]!.text, a[t]![j]!.text.replace(TAG, ''), `day ${t} item ${j}`);
  }
  // A different seed does change the market, so the equalities above are not vacuous.
  assert.notDeepEqual(Array.from(syntheticMarket({ seed: SEED + 1, days: DAYS, newsTags: false }).prices), Array.from(plain.series.prices));
});

test('makeHeadline: the tag flag takes no draw, so the stream stays in step', () => {
  const r1 = new Rng(3), r2 = new Rng(3);
  for (let i = 0; i < 60; i++) {
    const s = SENTIMENTS[i % 3]!;
    const withTag = makeHeadline(r1, 'ACME', s);
    const without = makeHeadline(r2, 'ACME', s, false);
    assert.equal(withTag, `${without} (Sentiment: ${s})`);
    assert.deepEqual(r2.getState(), r1.getState(), `after headline ${i}`);
  }
});

test('sentimentOf reads no tag from any untagged item (and one from every tagged item)', () => {
  for (const day of plain.series.text!) for (const item of day) assert.equal(sentimentOf(item.text), null, item.text);
  for (const day of tagged.series.text!) for (const item of day) assert.notEqual(sentimentOf(item.text), null, item.text);
});

test('the source string names the untagged variant only', () => {
  assert.equal(tagged.series.source, `synthetic:seed=${SEED}:days=${DAYS}`);
  assert.equal(syntheticMarket({ seed: SEED, days: DAYS, newsTags: true }).source, `synthetic:seed=${SEED}:days=${DAYS}`);
  assert.equal(plain.series.source, `synthetic:seed=${SEED}:days=${DAYS}:tags=false`);
});

test('newsTags is validated like the other options', () => {
  assert.throws(() => syntheticMarket({ newsTags: 'no' as unknown as boolean }), /syntheticMarket option newsTags: .*boolean/);
  assert.throws(() => syntheticMarket({ newsTags: 0 as unknown as boolean }), /syntheticMarket option newsTags/);
});

test('config: synthetic_news_tags defaults to true, parses from flags, and is checked', () => {
  assert.equal(defaultConfig().synthetic_news_tags, true);
  assert.equal(parseTrainConfig({ synthetic_news_tags: false }, 'test').synthetic_news_tags, false);
  assert.equal(parseFlagValue('synthetic_news_tags', 'false'), false);
  assert.equal(parseFlagValue('synthetic_news_tags', 'true'), true);
  assert.throws(() => parseFlagValue('synthetic_news_tags', 'maybe'), /--synthetic-news-tags "maybe"/);
  assert.throws(() => parseTrainConfig({ synthetic_news_tags: 'no' }, 'test'), /invalid training config \(test\): synthetic_news_tags: /);
});

test('config: the field flows into the series training loads (loadRunSeries), and into its record', async () => {
  const days = 60;
  const off = await loadRunSeries(parseTrainConfig({ synthetic_seed: SEED, synthetic_days: days, synthetic_news_tags: false }, 'test'));
  const on = await loadRunSeries(parseTrainConfig({ synthetic_seed: SEED, synthetic_days: days }, 'test'));
  assert.equal(off.series.source, `synthetic:seed=${SEED}:days=${days}:tags=false`);
  assert.equal(off.record.source, `synthetic:seed=${SEED}:days=${days}:tags=false`);
  assert.equal(on.record.source, `synthetic:seed=${SEED}:days=${days}`);
  for (const day of off.series.text!) for (const item of day) assert.equal(sentimentOf(item.text), null);
  assert.deepEqual(Array.from(off.series.prices), Array.from(on.series.prices));
  assert.deepEqual(off.series.text, syntheticMarket({ seed: SEED, days, newsTags: false }).text);
  assert.notEqual(off.record.sha256, on.record.sha256, 'the data hash tells the variants apart');
});

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const root = repoRoot();
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args], { cwd: root, timeout: 60000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

test('CLI: backtest --synthetic-news-tags false; demo accepts --synthetic-seed and --synthetic-news-tags', async () => {
  const [table, sentOff, sentOn, withData, badValue, demo, demoBad] = await Promise.all([
    cli('backtest', '--seed', '4', '--synthetic-news-tags', 'false'),
    cli('backtest', '--seed', '4', '--synthetic-news-tags', 'false', '--agent', 'sentiment', '--json'),
    cli('backtest', '--seed', '4', '--agent', 'sentiment', '--json'),
    cli('backtest', '--data', 'x.csv', '--synthetic-news-tags', 'false'),
    cli('backtest', '--synthetic-news-tags', 'no'),
    // total_timesteps 1 fails the config check before any training: the synthetic flags were accepted by then.
    cli('demo', '--synthetic-seed', '7', '--synthetic-news-tags', 'false', '--total-timesteps', '1', '--quiet', '--out', join(TMP, 'demo')),
    cli('demo', '--synthetic-news-tags', 'maybe'),
  ]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout.split('\n')[0]!, /^SYNTH \(synthetic:seed=4:days=500:tags=false\)/);
  // With no tags to read the sentiment rule stays flat every day; with tags it trades.
  assert.equal(sentOff.code, 0, sentOff.stderr);
  const off = JSON.parse(sentOff.stdout) as { positions: number[] };
  assert.equal(off.positions.length, 499);
  assert.ok(off.positions.every((p) => p === 0));
  assert.equal(sentOn.code, 0, sentOn.stderr);
  assert.ok((JSON.parse(sentOn.stdout) as { positions: number[] }).positions.some((p) => p !== 0));
  assert.notEqual(withData.code, 0);
  assert.match(withData.stderr, /--synthetic-news-tags applies only to the built-in synthetic market/);
  assert.notEqual(badValue.code, 0);
  assert.match(badValue.stderr, /--synthetic-news-tags.*expected true or false, got "no"/);
  assert.notEqual(demo.code, 0);
  assert.doesNotMatch(demo.stderr, /unknown option/);
  assert.match(demo.stderr, /total_timesteps 1 is less than one rollout/);
  assert.ok(!existsSync(join(TMP, 'demo', 'runs')), 'no run was started');
  assert.notEqual(demoBad.code, 0);
  assert.match(demoBad.stderr, /--synthetic-news-tags "maybe"/);
});
