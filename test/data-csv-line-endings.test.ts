// CSV line endings (issue 12): LF, CRLF and CR-only (classic Mac OS) files read the same. A CR-only
// file used to be read as one line, failing with "header names column '56.125000' twice".
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { loadSeries } from '../src/data/load.js';
import { detectFormat } from '../src/data/detect.js';
import { forEachCsvRecord, type CsvRecord } from '../src/data/csv-records.js';
import { tempFiles, rejectsWith, yahooCsv } from './data-helpers.js';

const tmp = tempFiles();
after(() => tmp.cleanup());

const ROWS = [
  ['2020-01-02', 56.125, 57, 55.5, 56.125, 56.125, 100],
  ['2020-01-03', 56.5, 57.25, 56, 56.25, 56.25, 200],
  ['2020-01-06', 56.25, 58, 56, 57.5, 57.5, 300],
  ['2020-01-07', 57.5, 58.5, 57, 58, 58, 400],
];

async function records(path: string): Promise<CsvRecord[]> {
  const out: CsvRecord[] = [];
  await forEachCsvRecord(path, (r) => out.push(r));
  return out;
}

test('a CR-only Yahoo CSV loads like its LF and CRLF versions', async () => {
  const lf = await loadSeries({ path: tmp.write('LF.csv', yahooCsv(ROWS)) });
  for (const [name, text] of [['CR.csv', yahooCsv(ROWS, undefined, '\r')], ['CRLF.csv', yahooCsv(ROWS, undefined, '\r\n')],
    ['CRNOEND.csv', yahooCsv(ROWS, undefined, '\r').slice(0, -1)]] as const) {
    const s = await loadSeries({ path: tmp.write(name, text) });
    assert.deepEqual(s.dates, lf.dates, name);
    assert.deepEqual(s.prices, lf.prices, name);
    assert.deepEqual(s.ohlcv, lf.ohlcv, name);
  }
  // gzip and explicit format too
  const gz = await loadSeries({ path: tmp.write('CRGZ.csv.gz', gzipSync(yahooCsv(ROWS, undefined, '\r'))), format: 'yahoo' });
  assert.deepEqual(gz.prices, lf.prices);
});

test('a CR-only long CSV with quoted fields (a comma, a line break inside quotes) reads every record', async () => {
  const lines = ['date,ticker,close,note', '2020-01-02,AAA,1.5,"up, a lot"', '2020-01-03,AAA,2.5,"two\rlines"', '', '2020-01-06,AAA,3.5,plain'];
  const recs = await records(tmp.write('long-cr.csv', lines.join('\r') + '\r'));
  assert.deepEqual(recs, [
    { fields: ['date', 'ticker', 'close', 'note'], line: 1 },
    { fields: ['2020-01-02', 'AAA', '1.5', 'up, a lot'], line: 2 },
    { fields: ['2020-01-03', 'AAA', '2.5', 'two\rlines'], line: 3 },
    { fields: ['2020-01-06', 'AAA', '3.5', 'plain'], line: 6 },
  ]);
});

test('a CR-only file larger than one read chunk (1 MiB) keeps every line and its number', async () => {
  const n = 40_000;
  const lines = ['date,ticker,close'];
  for (let i = 0; i < n; i++) lines.push(`2020-01-02,T${String(i).padStart(6, '0')},${(i + 0.125).toFixed(6)}`);
  const text = lines.join('\r') + '\r';
  assert.ok(text.length > (1 << 20), 'the file spans several chunks');
  const recs = await records(tmp.write('big-cr.csv', text));
  assert.equal(recs.length, n + 1);
  assert.deepEqual(recs[n], { fields: ['2020-01-02', `T${String(n - 1).padStart(6, '0')}`, (n - 1 + 0.125).toFixed(6)], line: n + 1 });
  assert.ok(recs.every((r, i) => r.line === i + 1 && r.fields.length === 3));
});

test('format detection reads the first line of a CR-only file, and its error quotes only that line', async () => {
  assert.equal(await detectFormat(tmp.write('detect-cr.csv', yahooCsv(ROWS, undefined, '\r'))), 'yahoo');
  const odd = tmp.write('odd-cr.csv', 'time,price\r1,2\r3,4\r');
  await rejectsWith(detectFormat(odd), [odd, "first line 'time,price':"]);
});
