import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { loadYahooCsv } from '../src/data/yahoo.js';
import { forEachCsvRecord } from '../src/data/csv-records.js';
import { tempFiles, rejectsWith, yahooCsv } from './data-helpers.js';

const tmp = tempFiles();
after(() => tmp.cleanup());

const ROWS = [
  ['2020-01-02', '10.0', '11.0', '9.5', '10.5', '10.25', '1000'],
  ['2020-01-03', '10.5', '12.0', '10.0', '11.5', '11.25', '2000'],
  ['2020-01-06', '11.5', '11.75', '10.75', '11.0', '10.75', '0'],
];

test('yahoo: prices from Adj Close, OHLCV filled, asset from the file name', async () => {
  const p = tmp.write('acme.csv', yahooCsv(ROWS));
  const s = await loadYahooCsv(p);
  assert.equal(s.asset, 'ACME');
  assert.equal(s.source, p);
  assert.deepEqual(s.dates, ['2020-01-02', '2020-01-03', '2020-01-06']);
  assert.deepEqual(Array.from(s.prices), [10.25, 11.25, 10.75]);
  assert.deepEqual(Array.from(s.ohlcv!.open), [10, 10.5, 11.5]);
  assert.deepEqual(Array.from(s.ohlcv!.high), [11, 12, 11.75]);
  assert.deepEqual(Array.from(s.ohlcv!.low), [9.5, 10, 10.75]);
  assert.deepEqual(Array.from(s.ohlcv!.close), [10.5, 11.5, 11]);
  assert.deepEqual(Array.from(s.ohlcv!.volume), [1000, 2000, 0]);
  assert.equal(s.text, undefined);
  assert.equal(s.warnings, undefined);
});

test('yahoo: priceColumn picks any price column by name, case-insensitively', async () => {
  const p = tmp.write('pc.csv', yahooCsv(ROWS));
  const column: Record<string, number> = { open: 1, high: 2, low: 3, close: 4, 'adj close': 5 };
  for (const name of ['Open', 'HIGH', 'low', 'Close', 'adj close', 'Adj_Close', 'ADJ CLOSE']) {
    const s = await loadYahooCsv(p, { priceColumn: name });
    const idx = column[name.toLowerCase().replace('_', ' ')]!;
    assert.deepEqual(Array.from(s.prices), ROWS.map((r) => Number(r[idx])), name);
  }
  await rejectsWith(loadYahooCsv(p, { priceColumn: 'Volume' }), [p, "priceColumn 'Volume'", 'Adj Close']);
  await rejectsWith(loadYahooCsv(p, { priceColumn: 'mid' }), [p, "priceColumn 'mid'"]);
});

test('yahoo: lower-case headers, other column order, extra columns ignored, asset option', async () => {
  const header = 'volume,date,adj close,close,low,high,open,Dividends';
  const rows = ROWS.map((r) => [r[6], r[0], r[5], r[4], r[3], r[2], r[1], '0']);
  const s = await loadYahooCsv(tmp.write('order.csv', yahooCsv(rows as string[][], header)), { asset: 'X' });
  assert.equal(s.asset, 'X');
  assert.deepEqual(Array.from(s.prices), [10.25, 11.25, 10.75]);
  assert.deepEqual(Array.from(s.ohlcv!.open), [10, 10.5, 11.5]);
  assert.deepEqual(Array.from(s.ohlcv!.volume), [1000, 2000, 0]);
});

test('yahoo: CRLF line ends, a byte-order mark, blank lines and quoted fields read the same', async () => {
  const plain = await loadYahooCsv(tmp.write('plain.csv', yahooCsv(ROWS)));
  const crlf = '\ufeff' + yahooCsv(ROWS, undefined, '\r\n') + '\r\n\r\n';
  const s1 = await loadYahooCsv(tmp.write('crlf.csv', crlf));
  assert.deepEqual(s1.dates, plain.dates);
  assert.deepEqual(Array.from(s1.prices), Array.from(plain.prices));
  const quoted = '"Date","Open","High","Low","Close","Adj Close","Volume"\n' + ROWS.map((r) => r.map((f) => `"${f}"`).join(',')).join('\n') + '\n';
  const s2 = await loadYahooCsv(tmp.write('quoted.csv', quoted));
  assert.deepEqual(s2.dates, plain.dates);
  assert.deepEqual(Array.from(s2.ohlcv!.volume), Array.from(plain.ohlcv!.volume));
});

test('yahoo: a quoted field spanning lines is one record, and later line numbers stay right', async () => {
  const text = 'Date,Open,High,Low,Close,Adj Close,Volume,Note\n' +
    '2020-01-02,1,1,1,1,1,1,"two\nlines, with a comma and ""quotes"""\n' + // lines 2-3
    '2020-01-03,1,1,1,1,1,1,plain\n' + // line 4
    '2020-01-06,1,1,1,1,bad,1,plain\n'; // line 5
  const p = tmp.write('multiline.csv', text);
  await rejectsWith(loadYahooCsv(p), [p, 'line 5', "Adj Close is 'bad'"]);
  const ok = tmp.write('multiline-ok.csv', text.replace(',bad,', ',2,'));
  assert.deepEqual((await loadYahooCsv(ok)).dates, ['2020-01-02', '2020-01-03', '2020-01-06']);
  const open = tmp.write('unterminated.csv', 'Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,1,1,1,1,"1\n2020-01-03,1,1,1,1,1,1\n');
  await rejectsWith(loadYahooCsv(open), [open, 'line 2', 'never closed']);
  const stray = tmp.write('stray-quote.csv', 'Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,1,1,1,1,1\n2020-01-03,1,1,1,1,"1"x,1\n');
  await rejectsWith(loadYahooCsv(stray), [stray, 'line 3', 'malformed CSV']);
});

test('yahoo: missing columns are all named; a missing Adj Close suggests priceColumn Close', async () => {
  const p = tmp.write('cols.csv', 'Date,Open,High,Low,Close\n2020-01-02,1,1,1,1\n');
  const e = await rejectsWith(loadYahooCsv(p), [p, 'line 1', 'missing columns Adj Close, Volume', "priceColumn 'Close'"]);
  assert.equal(e.line, 1);
  const noDate = tmp.write('nodate.csv', 'Day,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,1,1,1,1,1\n');
  await rejectsWith(loadYahooCsv(noDate), [noDate, 'missing column Date']);
  const dup = tmp.write('dup.csv', 'Date,Open,High,Low,Close,Adj Close,adj_close,Volume\n');
  await rejectsWith(loadYahooCsv(dup), [dup, 'line 1', "'adj_close' twice"]);
});

test('yahoo: unparseable dates name the line and the expected form', async () => {
  for (const bad of ['2020/01/03', '03-01-2020', '2021-02-30', '2020-1-3', '']) {
    const rows = ROWS.map((r) => [...r]);
    rows[1]![0] = bad;
    const p = tmp.write('baddate.csv', yahooCsv(rows));
    const e = await rejectsWith(loadYahooCsv(p), [p, 'line 3', `Date is '${bad}'`, 'YYYY-MM-DD']);
    assert.equal(e.line, 3);
  }
});

test('yahoo: unsorted and duplicate dates name both lines', async () => {
  const swapped = [ROWS[0]!, ROWS[2]!, ROWS[1]!];
  const p = tmp.write('unsorted.csv', yahooCsv(swapped));
  await rejectsWith(loadYahooCsv(p), [p, 'line 4', 'date 2020-01-03 comes after 2020-01-06 (line 3)', 'increasing order']);
  const dup = tmp.write('dupdate.csv', yahooCsv([ROWS[0]!, ROWS[1]!, ROWS[1]!]));
  await rejectsWith(loadYahooCsv(dup), [dup, 'line 4', 'duplicate date 2020-01-03 (also on line 3)']);
});

test('yahoo: bad values name the line, the column and what was expected', async () => {
  const cases: [number, string, string][] = [
    [5, 'abc', "Adj Close is 'abc' (not a number)"],
    [5, 'NaN', "Adj Close is 'NaN' (NaN)"],
    [5, 'inf', "Adj Close is 'inf' (infinite)"],
    [5, '1e999', "Adj Close is '1e999' (not finite)"],
    [5, '-5', 'Adj Close is -5, expected a positive finite number'],
    [5, '0', 'Adj Close is 0, expected a positive finite number'],
    [5, '', 'Adj Close is empty'],
    [5, '0x10', "Adj Close is '0x10'"],
    [1, '-1', 'Open is -1'],
    [3, 'null', "Low is 'null' (a missing value)"],
    [6, '-3', 'Volume is -3, expected a non-negative finite number'],
    [6, 'x', "Volume is 'x'"],
  ];
  for (const [col, value, words] of cases) {
    const rows = ROWS.map((r) => [...r]);
    rows[2]![col] = value;
    const p = tmp.write('badvalue.csv', yahooCsv(rows));
    const e = await rejectsWith(loadYahooCsv(p), [p, 'line 4 (2020-01-06)', words]);
    assert.equal(e.line, 4);
    assert.equal(e.date, '2020-01-06');
  }
});

test('yahoo: null rows fail by default; dropInvalidRows drops them and says so in warnings', async () => {
  const rows = [ROWS[0]!, ['2020-01-03', 'null', 'null', 'null', 'null', 'null', 'null'], ROWS[2]!, ['2020-01-07', '1', '1', '1', '1', '-2', '5']];
  const p = tmp.write('nulls.csv', yahooCsv(rows));
  await rejectsWith(loadYahooCsv(p), [p, 'line 3', "'null'"]);
  const s = await loadYahooCsv(p, { dropInvalidRows: true });
  assert.deepEqual(s.dates, ['2020-01-02', '2020-01-06']);
  assert.deepEqual(Array.from(s.prices), [10.25, 10.75]);
  assert.deepEqual(Array.from(s.ohlcv!.volume), [1000, 0]);
  assert.equal(s.warnings?.length, 2);
  assert.ok(s.warnings![0]!.includes(`${p}, line 3 (2020-01-03)`) && s.warnings![0]!.includes("'null'"), s.warnings![0]);
  assert.ok(s.warnings![1]!.includes('line 5 (2020-01-07)') && s.warnings![1]!.includes('Adj Close is -2'), s.warnings![1]);
  // Dropping never excuses a bad date or order.
  const badDate = tmp.write('nulls-baddate.csv', yahooCsv([ROWS[0]!, ['2020-13-01', 'null', 'null', 'null', 'null', 'null', 'null']]));
  await rejectsWith(loadYahooCsv(badDate, { dropInvalidRows: true }), [badDate, 'line 3', 'YYYY-MM-DD']);
  const allBad = tmp.write('allnull.csv', yahooCsv([['2020-01-02', 'null', 'null', 'null', 'null', 'null', 'null']]));
  await rejectsWith(loadYahooCsv(allBad, { dropInvalidRows: true }), [allBad, 'empty series', 'all 1 data rows were dropped']);
});

test('yahoo: wrong field counts, empty files and a header alone are errors naming the file', async () => {
  const short = tmp.write('short.csv', yahooCsv([ROWS[0]!, ROWS[1]!.slice(0, 6)]));
  await rejectsWith(loadYahooCsv(short), [short, 'line 3', '6 fields, expected 7']);
  const empty = tmp.write('empty.csv', '');
  await rejectsWith(loadYahooCsv(empty), [empty, 'empty', 'header']);
  const headerOnly = tmp.write('header.csv', yahooCsv([]));
  await rejectsWith(loadYahooCsv(headerOnly), [headerOnly, 'empty series', 'no data rows']);
  const missing = `${tmp.dir}/does-not-exist.csv`;
  await rejectsWith(loadYahooCsv(missing), [missing, 'cannot open', 'ENOENT']);
});

test('yahoo: gzip content is read whatever the name; a .gz name without gzip content is an error', async () => {
  const text = yahooCsv(ROWS);
  const plain = await loadYahooCsv(tmp.write('z.csv', text));
  const gz = await loadYahooCsv(tmp.write('z2.csv.gz', gzipSync(text)));
  assert.deepEqual(gz.dates, plain.dates);
  assert.deepEqual(Array.from(gz.prices), Array.from(plain.prices));
  assert.equal(gz.asset, 'Z2');
  const disguised = await loadYahooCsv(tmp.write('z3.csv', gzipSync(text)));
  assert.deepEqual(Array.from(disguised.prices), Array.from(plain.prices));
  const fake = tmp.write('fake.csv.gz', text);
  await rejectsWith(loadYahooCsv(fake), [fake, 'not gzip data']);
  const corrupt = tmp.write('corrupt.csv.gz', gzipSync(text).subarray(0, 30));
  await rejectsWith(loadYahooCsv(corrupt), [corrupt, 'cannot read']);
});

test('csv reader: an error of the record callback passes through unchanged (not reported as a read error)', async () => {
  const p = tmp.write('cb.csv', yahooCsv(ROWS));
  const bug = new TypeError('a bug in the caller');
  await assert.rejects(forEachCsvRecord(p, (rec) => { if (rec.line === 3) throw bug; }), (e) => e === bug);
  const lines: number[] = [];
  await forEachCsvRecord(p, (rec) => lines.push(rec.line));
  assert.deepEqual(lines, [1, 2, 3, 4]);
});
