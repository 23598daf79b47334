// The loaders on the real shared data (skipped when FLAG_TRADER_DATA_DIR is not set).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { loadSeries } from '../src/data/load.js';
import { needsData, dataPath } from './shared-paths.js';

const LONG_FILE = 'extra/us_liquid500_daily_2018-01-02_2024-03-08.csv.gz';

/** Weekdays in [start, end] minus the given holidays: an independent count of NYSE trading days. */
function tradingDays(start: string, end: string, holidays: string[]): number {
  let n = 0;
  for (let d = new Date(`${start}T00:00:00Z`); d <= new Date(`${end}T00:00:00Z`); d = new Date(d.getTime() + 86_400_000)) {
    const wd = d.getUTCDay();
    if (wd !== 0 && wd !== 6 && !holidays.includes(d.toISOString().slice(0, 10))) n++;
  }
  return n;
}
const calendarDays = (start: string, end: string): number =>
  (Date.parse(`${end}T00:00:00Z`) - Date.parse(`${start}T00:00:00Z`)) / 86_400_000 + 1;

// NYSE closures between 2020-10-01 and 2021-05-05.
const NYSE_HOLIDAYS = ['2020-11-26', '2020-12-25', '2021-01-01', '2021-01-18', '2021-02-15', '2021-04-02'];

test('shared: every INVESTOR-BENCH file loads with all its dates and news', { skip: needsData('investorbench') }, async () => {
  const files = readdirSync(dataPath('investorbench')).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 7, `found ${files.join(', ')}`);
  for (const f of files) {
    const path = dataPath('investorbench', f);
    const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, { news?: string[]; '10k'?: string[]; '10q'?: string[] }>;
    const s = await loadSeries({ path });
    assert.equal(s.asset, f.replace('.json', '').toUpperCase());
    assert.equal(s.dates.length, Object.keys(raw).length, f);
    assert.deepEqual(s.dates, Object.keys(raw).sort(), f);
    const items = Object.values(raw).reduce((n, d) => n + (d.news?.length ?? 0) + (d['10k']?.length ?? 0) + (d['10q']?.length ?? 0), 0);
    assert.equal(s.text!.reduce((n, d) => n + d.length, 0), items, f);
    assert.equal(s.warnings, undefined, f);
  }
});

test('shared: every Yahoo CSV loads, one price per data line', { skip: needsData('yahoo') }, async () => {
  const files = readdirSync(dataPath('yahoo')).filter((f) => f.endsWith('.csv'));
  assert.ok(files.length >= 6, `found ${files.join(', ')}`);
  for (const f of files) {
    const path = dataPath('yahoo', f);
    const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
    const s = await loadSeries({ path });
    assert.equal(s.dates.length, lines.length - 1, f);
    assert.equal(s.dates[0], lines[1]!.split(',')[0], f);
    assert.equal(s.prices[s.prices.length - 1], Number(lines[lines.length - 1]!.split(',')[5]), f);
  }
});

test('shared: the MSFT test window from JSON and from Yahoo agree', { skip: needsData('investorbench', 'msft.json') || needsData('yahoo', 'MSFT.csv') }, async () => {
  const window = { start: '2020-10-01', end: '2021-05-05' };
  const ib = await loadSeries({ path: dataPath('investorbench', 'msft.json'), ...window });
  const yh = await loadSeries({ path: dataPath('yahoo', 'MSFT.csv'), ...window });
  const expected = tradingDays(window.start, window.end, NYSE_HOLIDAYS);
  for (const s of [ib, yh]) {
    assert.equal(s.dates[0], '2020-10-01');
    assert.equal(s.dates[s.dates.length - 1], '2021-05-05');
    assert.equal(s.dates.length, expected);
  }
  assert.deepEqual(ib.dates, yh.dates);
  // The README: INVESTOR-BENCH prices are the adjusted close times a constant per ticker.
  const ratios = Array.from(ib.prices, (p, i) => p / yh.prices[i]!);
  assert.ok(Math.max(...ratios) / Math.min(...ratios) - 1 < 1e-5, `ratio spread ${Math.min(...ratios)}..${Math.max(...ratios)}`);
  assert.ok(ib.text!.some((d) => d.length > 0));
});

test('shared: the other equities cover the benchmark windows', { skip: needsData('investorbench') }, async () => {
  for (const t of ['jnj', 'uvv', 'hon']) {
    const train = await loadSeries({ path: dataPath('investorbench', `${t}.json`), start: '2020-07-01', end: '2020-09-30' });
    assert.equal(train.dates[0], '2020-07-01');
    assert.equal(train.dates[train.dates.length - 1], '2020-09-30');
    assert.equal(train.dates.length, tradingDays('2020-07-01', '2020-09-30', ['2020-07-03', '2020-09-07']), t);
  }
  // NFLX has missing days: fewer dates than trading days, and still no error.
  const nflx = await loadSeries({ path: dataPath('investorbench', 'nflx.json'), start: '2020-10-01', end: '2021-05-05' });
  assert.ok(nflx.dates.length < tradingDays('2020-10-01', '2021-05-05', NYSE_HOLIDAYS) && nflx.dates.length > 50);
});

test('shared: BTC windows from INVESTOR-BENCH and BTC-USD.csv (every calendar day)', { skip: needsData('investorbench', 'btc.json') || needsData('yahoo', 'BTC-USD.csv') }, async () => {
  const window = { start: '2023-04-05', end: '2023-11-05' };
  const ib = await loadSeries({ path: dataPath('investorbench', 'btc.json'), ...window });
  const yh = await loadSeries({ path: dataPath('yahoo', 'BTC-USD.csv'), ...window });
  for (const s of [ib, yh]) {
    assert.equal(s.dates[0], window.start);
    assert.equal(s.dates[s.dates.length - 1], window.end);
    assert.equal(s.dates.length, calendarDays(window.start, window.end));
  }
  assert.equal(yh.asset, 'BTC-USD');
  // Two sources of the daily close: within 1% of each other.
  for (let i = 0; i < ib.prices.length; i++) assert.ok(Math.abs(ib.prices[i]! / yh.prices[i]! - 1) < 0.01, ib.dates[i]);
  // ETH has gaps: loads, fewer dates than calendar days.
  const eth = await loadSeries({ path: dataPath('investorbench', 'eth.json'), start: '2023-04-03', end: '2023-12-19' });
  assert.equal(eth.dates[eth.dates.length - 1], '2023-12-19');
  assert.ok(eth.dates.length < calendarDays('2023-04-03', '2023-12-19'));
});

test('shared: one ticker from the gzip long file matches its Yahoo CSV, quickly', { skip: needsData(LONG_FILE) || needsData('yahoo', 'MSFT.csv') }, async () => {
  const t0 = performance.now();
  const long = await loadSeries({ path: dataPath(LONG_FILE), ticker: 'MSFT' });
  const ms = performance.now() - t0;
  const yh = await loadSeries({ path: dataPath('yahoo', 'MSFT.csv'), start: long.dates[0]!, end: long.dates[long.dates.length - 1]! });
  assert.equal(long.asset, 'MSFT');
  assert.equal(long.dates[0], '2018-01-02');
  assert.equal(long.dates[long.dates.length - 1], '2024-03-08');
  assert.deepEqual(long.dates, yh.dates);
  assert.deepEqual(Array.from(long.prices), Array.from(yh.prices));
  assert.deepEqual(Array.from(long.ohlcv!.volume), Array.from(yh.ohlcv!.volume));
  // About 0.5 s on the 2-core machines; the bound only catches a return to a slow path.
  assert.ok(ms < 8000, `loading one ticker took ${ms.toFixed(0)} ms`);
  await assert.rejects(loadSeries({ path: dataPath(LONG_FILE) }), /holds 501 tickers/);
});
