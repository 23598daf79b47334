import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { loadLongCsv } from '../src/data/long.js';
import { tempFiles, rejectsWith } from './data-helpers.js';

const tmp = tempFiles();
after(() => tmp.cleanup());

const HEADER = 'date,ticker,open,high,low,close,adj_close,volume';
// Sorted by date, then ticker (interleaved), as many long files are.
const ROWS = [
  '2020-01-02,AAA,1,2,0.5,1.5,1.25,100',
  '2020-01-02,BBB,10,20,5,15,12.5,1000',
  '2020-01-03,AAA,1.5,2.5,1,2,1.75,200',
  '2020-01-03,BBB,15,25,10,20,17.5,2000',
  '2020-01-06,AAA,2,3,1.5,2.5,2.25,300',
  '2020-01-06,BBB,20,30,15,25,22.5,3000',
];
const csv = (rows: string[], header = HEADER): string => [header, ...rows].join('\n') + '\n';

test('long: selects one ticker from interleaved rows; asset is the ticker', async () => {
  const p = tmp.write('two.csv', csv(ROWS));
  const a = await loadLongCsv(p, { ticker: 'AAA' });
  assert.equal(a.asset, 'AAA');
  assert.deepEqual(a.dates, ['2020-01-02', '2020-01-03', '2020-01-06']);
  assert.deepEqual(Array.from(a.prices), [1.25, 1.75, 2.25]);
  assert.deepEqual(Array.from(a.ohlcv!.open), [1, 1.5, 2]);
  assert.deepEqual(Array.from(a.ohlcv!.high), [2, 2.5, 3]);
  assert.deepEqual(Array.from(a.ohlcv!.low), [0.5, 1, 1.5]);
  assert.deepEqual(Array.from(a.ohlcv!.close), [1.5, 2, 2.5]);
  assert.deepEqual(Array.from(a.ohlcv!.volume), [100, 200, 300]);
  const b = await loadLongCsv(p, { ticker: 'BBB', priceColumn: 'Close', asset: 'Bee' });
  assert.equal(b.asset, 'Bee');
  assert.deepEqual(Array.from(b.prices), [15, 20, 25]);
  // Grouped rows (all of one ticker, then the next) read the same.
  const grouped = tmp.write('grouped.csv', csv([0, 2, 4, 1, 3, 5].map((i) => ROWS[i]!)));
  assert.deepEqual(Array.from((await loadLongCsv(grouped, { ticker: 'BBB' })).prices), [12.5, 17.5, 22.5]);
});

test('long: the ticker option is required when the file holds several, and must exist', async () => {
  const p = tmp.write('several.csv', csv(ROWS));
  await rejectsWith(loadLongCsv(p), [p, 'holds 2 tickers (AAA, BBB)', 'pass the ticker option']);
  await rejectsWith(loadLongCsv(p, { ticker: 'CCC' }), [p, "ticker 'CCC' not found", 'AAA, BBB']);
  await rejectsWith(loadLongCsv(p, { ticker: 'aaa' }), [p, "ticker 'aaa' not found", "did you mean 'AAA'?"]);
  await rejectsWith(loadLongCsv(p, { ticker: ' ' }), [p, 'ticker option is empty']);
  // Many tickers: a few are listed, with the count.
  const many = Array.from({ length: 20 }, (_, i) => `2020-01-02,T${String(i).padStart(2, '0')},1,1,1,1,1,1`);
  const pm = tmp.write('many.csv', csv(many));
  await rejectsWith(loadLongCsv(pm, { ticker: 'ZZZ' }), [pm, 'holds 20 tickers (T00, T01, T02', '... and 12 more']);
});

test('long: a single-ticker file needs no ticker option', async () => {
  const p = tmp.write('single.csv', csv(ROWS.filter((r) => r.includes('BBB'))));
  const s = await loadLongCsv(p);
  assert.equal(s.asset, 'BBB');
  assert.deepEqual(Array.from(s.prices), [12.5, 17.5, 22.5]);
});

test('long: Adj Close spellings and column name case are all accepted', async () => {
  for (const adj of ['adj_close', 'adj close', 'Adj Close', 'ADJ_CLOSE']) {
    const header = `Date,Ticker,Open,High,Low,Close,${adj},Volume`;
    const s = await loadLongCsv(tmp.write('spell.csv', csv(ROWS, header)), { ticker: 'AAA' });
    assert.deepEqual(Array.from(s.prices), [1.25, 1.75, 2.25], adj);
  }
});

test('long: missing columns are named', async () => {
  const p = tmp.write('noadj.csv', csv(ROWS.map((r) => r.split(',').filter((_, i) => i !== 6).join(',')), 'date,ticker,open,high,low,close,volume'));
  await rejectsWith(loadLongCsv(p, { ticker: 'AAA' }), [p, 'line 1', 'missing column Adj Close', "priceColumn 'Close'"]);
  assert.deepEqual(Array.from((await loadLongCsv(p, { ticker: 'AAA', priceColumn: 'close' })).prices), [1.5, 2, 2.5]);
  const noTicker = tmp.write('noticker.csv', csv(['2020-01-02,1,2,0.5,1.5,1.25,100'], 'date,open,high,low,close,adj_close,volume'));
  await rejectsWith(loadLongCsv(noTicker), [noTicker, 'missing column ticker']);
});

test('long: the selected ticker is validated with lines; other tickers only for structure', async () => {
  const unsorted = tmp.write('unsorted.csv', csv([ROWS[2]!, ROWS[1]!, ROWS[0]!]));
  await rejectsWith(loadLongCsv(unsorted, { ticker: 'AAA' }), [unsorted, 'line 4', 'date 2020-01-02 comes after 2020-01-03 (line 2)']);
  const dup = tmp.write('dup.csv', csv([ROWS[0]!, ROWS[1]!, ROWS[0]!]));
  await rejectsWith(loadLongCsv(dup, { ticker: 'AAA' }), [dup, 'line 4', 'duplicate date 2020-01-02 (also on line 2)']);
  // BBB loads from the same file: its own dates are fine.
  assert.deepEqual((await loadLongCsv(dup, { ticker: 'BBB' })).dates, ['2020-01-02']);

  const badPrice = [...ROWS];
  badPrice[3] = '2020-01-03,BBB,15,25,10,20,-1,2000';
  const p = tmp.write('badprice.csv', csv(badPrice));
  await rejectsWith(loadLongCsv(p, { ticker: 'BBB' }), [p, 'line 5 (2020-01-03)', 'adj_close is -1']);
  // Values of rows that are not selected are not read (documented: speed on large files).
  assert.equal((await loadLongCsv(p, { ticker: 'AAA' })).dates.length, 3);

  const bad = [...ROWS];
  bad[4] = '2020-01-06,AAA,2,3,1.5,2.5,2.25';
  const pc = tmp.write('count.csv', csv(bad));
  await rejectsWith(loadLongCsv(pc, { ticker: 'BBB' }), [pc, 'line 6', '7 fields, expected 8']);
  const blank = [...ROWS];
  blank[1] = '2020-01-02, ,10,20,5,15,12.5,1000';
  const pb = tmp.write('blank.csv', csv(blank));
  await rejectsWith(loadLongCsv(pb, { ticker: 'AAA' }), [pb, 'line 3', 'ticker is empty']);
});

test('long: dropInvalidRows drops bad rows of the selected ticker with warnings', async () => {
  const rows = [...ROWS];
  rows[2] = '2020-01-03,AAA,null,null,null,null,null,null';
  const p = tmp.write('nulls.csv', csv(rows));
  await rejectsWith(loadLongCsv(p, { ticker: 'AAA' }), [p, 'line 4', "'null'"]);
  const s = await loadLongCsv(p, { ticker: 'AAA', dropInvalidRows: true });
  assert.deepEqual(s.dates, ['2020-01-02', '2020-01-06']);
  assert.equal(s.warnings?.length, 1);
  assert.ok(s.warnings![0]!.includes(`${p}, line 4 (2020-01-03)`), s.warnings![0]);
  assert.equal((await loadLongCsv(p, { ticker: 'BBB', dropInvalidRows: true })).warnings, undefined);
});

test('long: gzip files give the same series as plain ones', async () => {
  const text = csv(ROWS);
  const plain = await loadLongCsv(tmp.write('plain.csv', text), { ticker: 'BBB' });
  // Over 2 MB decompressed, so that lines are cut across the reader's 1 MiB chunks.
  const big = [HEADER];
  for (let d = 0; d < 30000; d++) {
    const date = new Date(Date.UTC(2000, 0, 1) + d * 86_400_000).toISOString().slice(0, 10);
    big.push(`${date},AAA,1,1,1,1,${1 + d / 1000},${d}`, `${date},BBB,2,2,2,2,${2 + d / 1000},${d}`);
  }
  const gz = await loadLongCsv(tmp.write('plain.csv.gz', gzipSync(text)), { ticker: 'BBB' });
  assert.deepEqual(gz.dates, plain.dates);
  assert.deepEqual(Array.from(gz.prices), Array.from(plain.prices));
  const s = await loadLongCsv(tmp.write('big.csv.gz', gzipSync(big.join('\n'))), { ticker: 'BBB' });
  assert.ok(big.join('\n').length > 2 * 1024 * 1024);
  assert.equal(s.dates.length, 30000);
  assert.deepEqual(Array.from(s.prices), Array.from({ length: 30000 }, (_, d) => 2 + d / 1000));
  assert.equal(s.dates[29999], '2082-02-18'); // 2000-01-01 + 29999 days; the file has no final newline
});
