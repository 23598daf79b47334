// Walk-forward windows (src/eval/walk-forward.ts) worked out by hand on small calendars, rolling and
// expanding, with the last partial window dropped; the TRAIN:TEST:STEP parser's and the range's errors;
// and the run descriptions of a planned walk (src/pipeline/walk-forward.ts): stable, serialisable ids
// derived from asset, window bounds, policy and seed, and the text-cutoff refusal naming the window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { checkWalkForwardBounds, parseWalkForwardSpec, walkForwardWindows, windowKey, type WalkForwardSpec } from '../src/eval/walk-forward.js';
import { planWalkForward, type WalkForwardOptions } from '../src/pipeline/walk-forward.js';
import { ANNUALIZATIONS } from '../src/eval/metrics.js';
import { syntheticMarket } from '../src/data/synthetic.js';
import { repoRoot } from './shared-paths.js';

// Mon 2021-03-01 .. Tue 2021-03-16, weekdays only: 12 dates (D0 .. D11).
const D = ['2021-03-01', '2021-03-02', '2021-03-03', '2021-03-04', '2021-03-05', '2021-03-08', '2021-03-09', '2021-03-10', '2021-03-11', '2021-03-12', '2021-03-15', '2021-03-16'];

/** Windows as [train start, train end, test start, test end] indices. */
function idx(spec: string, expanding = false, bounds: { from?: string; to?: string } = {}) {
  const r = walkForwardWindows(D, parseWalkForwardSpec(spec, expanding), bounds);
  return { windows: r.windows.map((w) => [w.train.startIndex, w.train.endIndex, w.test.startIndex, w.test.endIndex]), unused: r.unused, r };
}

test('rolling windows: TRAIN dates, then the TEST dates right after them, advancing by STEP', () => {
  const a = idx('4:2:2');
  assert.deepEqual(a.windows, [[0, 3, 4, 5], [2, 5, 6, 7], [4, 7, 8, 9], [6, 9, 10, 11]]);
  assert.equal(a.unused, 0);
  // Dates follow the indices; the test starts on the next date of the series (over a weekend here).
  const w1 = a.r.windows[1]!;
  assert.deepEqual([w1.train.start, w1.train.end, w1.test.start, w1.test.end], ['2021-03-03', '2021-03-08', '2021-03-09', '2021-03-10']);
  assert.deepEqual(a.r.windows.map((w) => w.index), [0, 1, 2, 3]);
  // Non-overlapping tests (STEP = TEST) tile the days after the first training window.
  assert.deepEqual(idx('6:3:3').windows, [[0, 5, 6, 8], [3, 8, 9, 11]]);
  // STEP > TEST leaves days between test windows untested.
  assert.deepEqual(idx('3:2:4').windows, [[0, 2, 3, 4], [4, 6, 7, 8]]);
});

test('the last partial window is dropped: every window has exactly TEST test dates', () => {
  // 4:3:2 on 12 dates: a 4th window would test D10..D12, past the last date D11.
  const a = idx('4:3:2');
  assert.deepEqual(a.windows, [[0, 3, 4, 6], [2, 5, 6, 8], [4, 7, 8, 10]]);
  assert.equal(a.unused, 1, 'D11 is left out');
  for (const w of a.r.windows) assert.equal(w.test.endIndex - w.test.startIndex + 1, 3);
  // Exactly TRAIN + TEST dates make one window.
  assert.deepEqual(idx('10:2:5').windows, [[0, 9, 10, 11]]);
});

test('expanding windows: every training window starts on the first date and grows by STEP', () => {
  const a = idx('4:2:3', true);
  assert.deepEqual(a.windows, [[0, 3, 4, 5], [0, 6, 7, 8], [0, 9, 10, 11]]);
  // The test windows are those of the rolling walk with the same spec.
  assert.deepEqual(idx('4:2:3').windows.map((w) => w.slice(2)), a.windows.map((w) => w.slice(2)));
});

test('--from / --to bound the range (inclusive; a bound between dates takes the dates inside)', () => {
  // D2 .. D9 (2021-03-03 .. 2021-03-12): 8 dates.
  const a = idx('3:2:2', false, { from: '2021-03-03', to: '2021-03-12' });
  assert.deepEqual(a.windows, [[2, 4, 5, 6], [4, 6, 7, 8]]);
  assert.equal(a.unused, 1);
  assert.deepEqual([a.r.range.start, a.r.range.end], ['2021-03-03', '2021-03-12']);
  // A Saturday --from starts on the Monday; a Sunday --to ends on the Friday.
  const b = idx('2:2:2', false, { from: '2021-03-06', to: '2021-03-14' });
  assert.deepEqual(b.windows, [[5, 6, 7, 8]]);
  assert.equal(b.unused, 1);
  // Expanding windows start at --from, not at the data's first date.
  assert.deepEqual(idx('3:2:2', true, { from: '2021-03-03' }).windows, [[2, 4, 5, 6], [2, 6, 7, 8], [2, 8, 9, 10]]);
});

test('window keys name the four bounds', () => {
  const w = walkForwardWindows(D, parseWalkForwardSpec('4:2:2')).windows[1]!;
  assert.equal(windowKey(w), 'wf-2021-03-03_2021-03-08_2021-03-09_2021-03-10');
});

test('TRAIN:TEST:STEP errors name the flag and what was expected', () => {
  const spec: WalkForwardSpec = parseWalkForwardSpec(' 252 : 63 : 21 ', true);
  assert.deepEqual(spec, { train: 252, test: 63, step: 21, expanding: true });
  for (const bad of ['', '252', '252:63', '252:63:63:1', 'a:b:c', '1.5:2:2', '252:63:63x', '252,63,63']) {
    assert.throws(() => parseWalkForwardSpec(bad), (e: Error) => e.message.startsWith('--walk-forward: expected TRAIN:TEST:STEP, three whole numbers of trading days such as 252:63:63')
      && e.message.includes(JSON.stringify(bad)), bad);
  }
  assert.throws(() => parseWalkForwardSpec('0:63:63'), /^Error: --walk-forward 0:63:63: TRAIN must be a whole number of trading days of at least 2 \(a training window needs at least 2 prices \(one return\)\), got 0$/);
  assert.throws(() => parseWalkForwardSpec('-5:63:63'), /TRAIN must be .* at least 2 .*got -5/);
  assert.throws(() => parseWalkForwardSpec('252:1:63'), /--walk-forward 252:1:63: TEST must be a whole number of trading days of at least 2 .*got 1/);
  assert.throws(() => parseWalkForwardSpec('252:63:0'), /--walk-forward 252:63:0: STEP must be a whole number of trading days of at least 1 \(windows must advance\), got 0/);
  assert.throws(() => parseWalkForwardSpec('252:63:-1'), /STEP must be .*got -1/);
});

test('a range too short for one window, and bad --from / --to, are errors naming the flags', () => {
  const s = parseWalkForwardSpec('8:5:1');
  assert.throws(() => walkForwardWindows(D, s, { label: 'XYZ' }),
    /^Error: --walk-forward 8:5:1 needs at least 13 trading days \(TRAIN \+ TEST\) in the data; XYZ has 12 \(2021-03-01\.\.2021-03-16\)$/);
  assert.throws(() => walkForwardWindows(D, parseWalkForwardSpec('4:2:2', true), { from: '2021-03-10', to: '2021-03-15' }),
    /--walk-forward 4:2:2 needs at least 6 trading days \(TRAIN \+ TEST\) between --from 2021-03-10 and --to 2021-03-15; the data has 4 \(2021-03-10\.\.2021-03-15\)/);
  assert.throws(() => walkForwardWindows(D, parseWalkForwardSpec('2:2:2'), { from: '2022-01-01' }),
    /between --from 2022-01-01 and --to \(data end\); the data has 0 \(the data covers 2021-03-01\.\.2021-03-16\)/);
  assert.throws(() => walkForwardWindows(D, s, { from: '2021-03-10', to: '2021-03-01' }), /^Error: --from 2021-03-10 is after --to 2021-03-01/);
  assert.throws(() => checkWalkForwardBounds('2021-02-30'), /--from: expected a date YYYY-MM-DD, got "2021-02-30"/);
  assert.throws(() => checkWalkForwardBounds(undefined, 'soon'), /--to: expected a date YYYY-MM-DD, got "soon"/);
});

function planOptions(over: Partial<WalkForwardOptions> = {}): WalkForwardOptions {
  return {
    out: '/nonexistent-out', title: 't', seeds: [1, 2], mlpAblation: true, untrained: false, baselines: [],
    base: { model: 'random:tiny', synthetic_days: 80 },
    targets: [{ asset: 'SYN/X', data: 'synthetic', format: 'auto', annualization: { ...ANNUALIZATIONS.stock } }],
    spec: parseWalkForwardSpec('30:10:10'), ...over,
  };
}

test('planned runs: plain JSON objects whose ids come from asset, window bounds, policy and seed', async () => {
  const plan = await planWalkForward(planOptions());
  const dates = syntheticMarket({ seed: 1, days: 80 }).dates;
  const a = plan.assets[0]!;
  assert.equal(a.windows.length, 5); // (80 - 30) / 10
  assert.equal(a.pricesOnly, false); // the synthetic market has headlines
  assert.equal(plan.runs.length, 5 * 2 * 2);
  const w0 = `wf-${dates[0]}_${dates[29]}_${dates[30]}_${dates[39]}`;
  assert.deepEqual(plan.runs.slice(0, 4).map((r) => r.id), [`SYN_X/${w0}/llm-seed1`, `SYN_X/${w0}/mlp-seed1`, `SYN_X/${w0}/llm-seed2`, `SYN_X/${w0}/mlp-seed2`]);
  const r0 = plan.runs[0]!;
  assert.deepEqual([r0.asset, r0.policy, r0.seed], ['SYN/X', 'llm', 1]);
  assert.deepEqual(r0.window, { train: { start: dates[0], end: dates[29] }, test: { start: dates[30], end: dates[39] } });
  assert.deepEqual([r0.config.train_start, r0.config.train_end, r0.config.test_start, r0.config.test_end], [dates[0], dates[29], dates[30], dates[39]]);
  assert.deepEqual([plan.runs[1]!.config.policy, plan.runs[1]!.config.seed], ['mlp', 1]);
  // Serialisable as is, and the same on every planning.
  assert.deepEqual(JSON.parse(JSON.stringify(plan.runs)), plan.runs);
  assert.deepEqual((await planWalkForward(planOptions())).runs, plan.runs);
  assert.equal(new Set(plan.runs.map((r) => r.id)).size, plan.runs.length, 'ids are unique');
  // Expanding windows have other training bounds, hence other ids.
  const ex = await planWalkForward(planOptions({ spec: parseWalkForwardSpec('30:10:10', true) }));
  assert.equal(ex.runs[4]!.id, `SYN_X/wf-${dates[0]}_${dates[39]}_${dates[40]}_${dates[49]}/llm-seed1`);
});

test('a model with a text cutoff: a window whose test starts on or before it is refused, naming the window', async () => {
  // The project's pretrained model records text_cutoff 2020-09-30; only its flag_trader.json is read here.
  const model = join(repoRoot(), 'models', 'flag-news-small');
  const { writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'wf-plan-'));
  try {
    // A dated file: the synthetic market's prices as a Yahoo CSV, 2020-01-02 .. (about 2020-12).
    const m = syntheticMarket({ seed: 1, days: 250 });
    const path = join(dir, 'M.csv');
    writeFileSync(path, ['Date,Open,High,Low,Close,Adj Close,Volume', ...m.dates.map((d, i) => `${d},1,1,1,1,${m.prices[i]},1`)].join('\n') + '\n');
    const opts = planOptions({ base: { model }, targets: [{ asset: 'M', data: path, format: 'auto', annualization: { ...ANNUALIZATIONS.stock } }], spec: parseWalkForwardSpec('60:20:20') });
    // The hint: the first --from whose first test date (60 dates later) is after the cutoff.
    const after = m.dates.findIndex((d) => d > '2020-09-30');
    const from = m.dates[after - 60]!;
    await assert.rejects(planWalkForward(opts), (e: Error) => /^reproduce --walk-forward M: window 1 of \d+ \(train 2020-01-02\.\.\S+, test \S+\): model \S+flag-news-small was pretrained on text dated up to 2020-09-30/.test(e.message)
      && e.message.endsWith(`(with --walk-forward: --from ${from} or later starts every test window after it)`));
    // Windows whose tests all start after the cutoff are planned; the file has no text: prices only.
    const plan = await planWalkForward({ ...opts, from });
    assert.equal(plan.assets[0]!.windows[0]!.test.start, m.dates[after]);
    // One date earlier, the first window's test starts on the cutoff's date or before it: refused.
    await assert.rejects(planWalkForward({ ...opts, from: m.dates[after - 61]! }), /window 1 of/);
    assert.equal(plan.assets[0]!.pricesOnly, true);
    assert.deepEqual(plan.assets[0]!.pointInTime.map((p) => p!.text_overlap), plan.assets[0]!.windows.map(() => false));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
