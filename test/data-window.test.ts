import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectWindow } from '../src/data/window.js';
import type { MarketSeries } from '../src/data/series.js';
import { rejectsWith } from './data-helpers.js';

// Mon 2020-01-06 .. Fri 2020-01-17, weekdays only: 10 dates.
const DATES = ['2020-01-06', '2020-01-07', '2020-01-08', '2020-01-09', '2020-01-10', '2020-01-13', '2020-01-14', '2020-01-15', '2020-01-16', '2020-01-17'];

function series(): MarketSeries {
  const n = DATES.length;
  const f = (k: number) => Float64Array.from({ length: n }, (_, i) => 100 + 10 * k + i);
  return {
    asset: 'T',
    source: 'test-series',
    dates: [...DATES],
    prices: f(0),
    ohlcv: { open: f(1), high: f(2), low: f(3), close: f(4), volume: f(5) },
    text: DATES.map((d) => [{ kind: 'news' as const, text: `news of ${d}` }]),
    warnings: ['from the loader'],
  };
}

test('window: bounds are inclusive and every per-day field is cut the same way', () => {
  const s = series();
  const w = selectWindow(s, '2020-01-08', '2020-01-14');
  assert.deepEqual(w.dates, ['2020-01-08', '2020-01-09', '2020-01-10', '2020-01-13', '2020-01-14']);
  assert.deepEqual(Array.from(w.prices), [102, 103, 104, 105, 106]);
  assert.deepEqual(Array.from(w.ohlcv!.open), [112, 113, 114, 115, 116]);
  assert.deepEqual(Array.from(w.ohlcv!.volume), [152, 153, 154, 155, 156]);
  assert.deepEqual(w.text!.map((d) => d[0]!.text), w.dates.map((d) => `news of ${d}`));
  assert.equal(w.asset, 'T');
  assert.equal(w.source, 'test-series');
  assert.deepEqual(w.warnings, ['from the loader']);
});

test('window: bounds between dates (a weekend) take the dates inside', () => {
  const w = selectWindow(series(), '2020-01-11', '2020-01-15');
  assert.deepEqual(w.dates, ['2020-01-13', '2020-01-14', '2020-01-15']);
  assert.deepEqual(Array.from(w.prices), [105, 106, 107]);
  assert.deepEqual(selectWindow(series(), '2020-01-09', '2020-01-12').dates, ['2020-01-09', '2020-01-10']);
});

test('window: open ends, and the result is a copy', () => {
  const s = series();
  assert.deepEqual(selectWindow(s, undefined, '2020-01-07').dates, ['2020-01-06', '2020-01-07']);
  assert.deepEqual(selectWindow(s, '2020-01-16').dates, ['2020-01-16', '2020-01-17']);
  const all = selectWindow(s);
  assert.deepEqual(all.dates, DATES);
  all.prices[0] = -1;
  all.ohlcv!.close[0] = -1;
  all.text![0]![0]!.text = 'changed';
  all.dates[0] = 'changed';
  assert.equal(s.prices[0], 100);
  assert.equal(s.ohlcv!.close[0], 140);
  assert.equal(s.text![0]![0]!.text, 'news of 2020-01-06');
  assert.equal(s.dates[0], '2020-01-06');
});

test('window: reaching past the data is allowed but adds a warning; inside it does not', () => {
  const s = series();
  const inside = selectWindow(s, '2020-01-06', '2020-01-17');
  assert.deepEqual(inside.warnings, ['from the loader']);
  const wide = selectWindow(s, '2019-12-01', '2020-02-01');
  assert.deepEqual(wide.dates, DATES);
  assert.equal(wide.warnings!.length, 3);
  assert.ok(wide.warnings![1]!.includes('starts before the first date of T (2020-01-06)'), wide.warnings![1]);
  assert.ok(wide.warnings![2]!.includes('ends after the last date of T (2020-01-17)'), wide.warnings![2]);
});

test('window: bad bounds, start after end, and fewer than 2 prices are errors naming the window', async () => {
  const s = series();
  for (const bad of ['2020-1-6', '2020-02-30', 'yesterday', '20200106', '']) {
    await rejectsWith(() => selectWindow(s, bad), ['test-series', `start '${bad}' is not a date`, 'YYYY-MM-DD']);
    await rejectsWith(() => selectWindow(s, undefined, bad), ['test-series', `end '${bad}' is not a date`]);
  }
  await rejectsWith(() => selectWindow(s, '2020-01-10', '2020-01-09'), ['window 2020-01-10..2020-01-09', 'start 2020-01-10 is after end 2020-01-09']);
  await rejectsWith(() => selectWindow(s, '2020-01-10', '2020-01-12'), [
    'window 2020-01-10..2020-01-12 holds 1 price of T', 'at least 2', 'covers 2020-01-06..2020-01-17 (10 prices)',
  ]);
  await rejectsWith(() => selectWindow(s, '2020-01-11', '2020-01-12'), ['holds 0 prices']);
  await rejectsWith(() => selectWindow(s, '2021-01-01'), ['window 2021-01-01..(end) holds 0 prices']);
  // Two prices are enough; a one-day window (start == end) is not.
  assert.equal(selectWindow(s, '2020-01-10', '2020-01-13').dates.length, 2);
  await rejectsWith(() => selectWindow(s, '2020-01-10', '2020-01-10'), ['holds 1 price']);
});
