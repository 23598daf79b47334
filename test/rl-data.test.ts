import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testWindow, trainWindow } from '../src/rl/data.js';
import { parseTrainConfig } from '../src/rl/config.js';
import type { MarketSeries } from '../src/data/series.js';

// 11 dates, 2021-01-01 .. 2021-01-11 (calendar days suffice here).
const dates = Array.from({ length: 11 }, (_, i) => `2021-01-${String(i + 1).padStart(2, '0')}`);
const series: MarketSeries = { asset: 'T', source: 'test', dates, prices: Float64Array.from(dates, (_, i) => 100 + i) };
const win = (over: Record<string, unknown>) => parseTrainConfig(over, 'test');

test('windows: defaults split at 70% of the series, test starts the day after training', () => {
  // floor(0.7 * 10) = 7 -> training 2021-01-01..2021-01-08, test 2021-01-09..2021-01-11.
  assert.deepEqual(trainWindow(series, win({})), { startIndex: 0, endIndex: 7, start: '2021-01-01', end: '2021-01-08' });
  assert.deepEqual(testWindow(series, win({})), { startIndex: 8, endIndex: 10, start: '2021-01-09', end: '2021-01-11' });
  // Explicit dates: the first trading date on or after start, the last on or before end.
  const c = win({ train_start: '2021-01-02', train_end: '2021-01-05', test_end: '2021-01-10' });
  assert.deepEqual(trainWindow(series, c), { startIndex: 1, endIndex: 4, start: '2021-01-02', end: '2021-01-05' });
  assert.deepEqual(testWindow(series, c), { startIndex: 5, endIndex: 9, start: '2021-01-06', end: '2021-01-10' });
  assert.deepEqual(testWindow(series, win({ test_start: '2021-01-03' })), { startIndex: 2, endIndex: 10, start: '2021-01-03', end: '2021-01-11' });
});

test('windows: errors say which window and what the series covers', () => {
  assert.throws(() => trainWindow(series, win({ train_start: '2022-01-01' })), /training window: start 2022-01-01 is after end 2021-01-08/);
  assert.throws(() => trainWindow(series, win({ train_start: '2020-01-01', train_end: '2020-06-01' })), /training window: window 2020-01-01\.\.2020-06-01 of test holds 0 price\(s\).*covers 2021-01-01\.\.2021-01-11 \(11 prices\)/);
  assert.throws(() => testWindow(series, win({ train_end: '2021-01-11' })), /test window: the training window ends on the series' last date 2021-01-11; give test_start \/ test_end/);
  assert.throws(() => testWindow(series, win({ test_start: '2021-01-11' })), /test window: window 2021-01-11\.\..* of test holds 1 price/);
});
