import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { loadSeries } from '../src/data/load.js';
import { detectFormat } from '../src/data/detect.js';
import { tempFiles, rejectsWith, yahooCsv } from './data-helpers.js';

const tmp = tempFiles();
after(() => tmp.cleanup());

const YAHOO = yahooCsv([
  ['2020-01-02', 1, 1, 1, 1, 1.5, 10],
  ['2020-01-03', 2, 2, 2, 2, 2.5, 20],
  ['2020-01-06', 3, 3, 3, 3, 3.5, 30],
  ['2020-01-07', 4, 4, 4, 4, 4.5, 40],
]);
const LONG = 'date,ticker,open,high,low,close,adj_close,volume\n2020-01-02,AAA,1,1,1,1,1.5,10\n2020-01-03,AAA,2,2,2,2,2.5,20\n2020-01-02,BBB,5,5,5,5,5.5,50\n2020-01-03,BBB,6,6,6,6,6.5,60\n';
const JSON_DOC = '{ "2020-01-02": { "prices": 7 }, "2020-01-03": { "prices": 8, "news": ["n"] } }';

test('auto-detection: .json, a ticker column, a Date/Adj Close header, JSON content under another name', async () => {
  assert.equal(await detectFormat(tmp.write('a.json', JSON_DOC)), 'investorbench');
  assert.equal(await detectFormat(tmp.write('a.json.gz', gzipSync(JSON_DOC))), 'investorbench');
  assert.equal(await detectFormat(tmp.write('a.txt', `  \n${JSON_DOC}`)), 'investorbench');
  assert.equal(await detectFormat(tmp.write('long.csv', LONG)), 'long');
  assert.equal(await detectFormat(tmp.write('long.csv.gz', gzipSync(LONG))), 'long');
  assert.equal(await detectFormat(tmp.write('y.csv', YAHOO)), 'yahoo');
  assert.equal(await detectFormat(tmp.write('yq.csv', '"Date","Open","High","Low","Close","Adj Close","Volume"\n')), 'yahoo');
  assert.equal(await detectFormat(tmp.write('yc.csv', 'date,close\n2020-01-02,1\n')), 'yahoo');
  const odd = tmp.write('odd.csv', 'time,price\n1,2\n');
  await rejectsWith(detectFormat(odd), [odd, "first line 'time,price'", 'ticker column', 'Adj Close', 'pass format explicitly']);
  const empty = tmp.write('empty.csv', '\n\n');
  await rejectsWith(detectFormat(empty), [empty, 'empty']);
});

test('loadSeries: each format through the one entry point, auto and explicit', async () => {
  const y = tmp.write('yy.csv', YAHOO);
  const l = tmp.write('ll.csv', LONG);
  const j = tmp.write('jj.json', JSON_DOC);
  const sy = await loadSeries({ path: y });
  assert.equal(sy.asset, 'YY');
  assert.deepEqual(Array.from(sy.prices), [1.5, 2.5, 3.5, 4.5]);
  assert.deepEqual(Array.from((await loadSeries({ path: y, format: 'yahoo', priceColumn: 'open' })).prices), [1, 2, 3, 4]);
  const sl = await loadSeries({ path: l, ticker: 'BBB' });
  assert.equal(sl.asset, 'BBB');
  assert.deepEqual(Array.from(sl.prices), [5.5, 6.5]);
  const sj = await loadSeries({ path: j, format: 'investorbench', asset: 'J' });
  assert.equal(sj.asset, 'J');
  assert.deepEqual(sj.text, [[], [{ kind: 'news', text: 'n' }]]);
  // The window options cut inclusively.
  const w = await loadSeries({ path: y, start: '2020-01-03', end: '2020-01-06' });
  assert.deepEqual(w.dates, ['2020-01-03', '2020-01-06']);
  assert.deepEqual(Array.from(w.ohlcv!.volume), [20, 30]);
});

test('loadSeries: option errors are clear and come before reading', async () => {
  const y = tmp.write('opt.csv', YAHOO);
  const j = tmp.write('opt.json', JSON_DOC);
  await rejectsWith(loadSeries({ path: y, format: 'parquet' as never }), [y, "format 'parquet' is unknown"]);
  await rejectsWith(loadSeries({ path: y, ticker: 'MSFT' }), [y, 'ticker option applies only to long-format files', 'yahoo']);
  await rejectsWith(loadSeries({ path: j, priceColumn: 'close' }), [j, 'priceColumn option applies only to CSV']);
  await rejectsWith(loadSeries({ path: y, asset: '' }), [y, 'asset option is empty']);
  await rejectsWith(loadSeries({ path: '' }), ['needs a path']);
  // Explicit format that does not fit the file: the loader names what is missing.
  await rejectsWith(loadSeries({ path: y, format: 'long' }), [y, 'missing column ticker']);
  // Bad window bounds fail even for a file that does not exist (checked first).
  const nowhere = `${tmp.dir}/nowhere.csv`;
  await rejectsWith(loadSeries({ path: nowhere, start: '2020-13-01' }), [nowhere, "start '2020-13-01' is not a date", 'YYYY-MM-DD']);
  await rejectsWith(loadSeries({ path: nowhere, start: '2021-01-01', end: '2020-01-01' }), [nowhere, 'start 2021-01-01 is after end 2020-01-01']);
  await rejectsWith(loadSeries({ path: nowhere }), [nowhere, 'cannot open']);
});

test('loadSeries: a file or window with fewer than 2 prices is an error naming what the file covers', async () => {
  const one = tmp.write('one.csv', yahooCsv([['2020-01-02', 1, 1, 1, 1, 1, 1]]));
  await rejectsWith(loadSeries({ path: one }), [one, 'holds 1 price', 'at least 2', 'covers 2020-01-02..2020-01-02 (1 price)']);
  const y = tmp.write('win.csv', YAHOO);
  await rejectsWith(loadSeries({ path: y, start: '2020-01-07', end: '2020-02-01' }), [
    y, 'window 2020-01-07..2020-02-01 holds 1 price of WIN', 'covers 2020-01-02..2020-01-07 (4 prices)',
  ]);
  await rejectsWith(loadSeries({ path: y, start: '2019-01-01', end: '2019-12-31' }), [y, 'holds 0 prices']);
});
