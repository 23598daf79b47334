import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { loadInvestorBench } from '../src/data/investorbench.js';
import { tempFiles, rejectsWith } from './data-helpers.js';

const tmp = tempFiles();
after(() => tmp.cleanup());

// Keys deliberately out of order; one day without news, one with filings.
const DOC = `{
  "2020-03-16": { "prices": 120.5, "news": ["c (Sentiment: negative)"], "10k": [], "10q": ["quarterly"] },
  "2020-03-12": { "prices": 100.25, "news": ["a (Sentiment: positive)", "b (Sentiment: neutral)"], "10k": ["annual"], "10q": [] },
  "2020-03-13": { "prices": 110 }
}`;

test('investorbench: dates sorted, prices and text items per date (news, then 10-K, then 10-Q)', async () => {
  const p = tmp.write('msft.json', DOC);
  const s = await loadInvestorBench(p);
  assert.equal(s.asset, 'MSFT');
  assert.equal(s.source, p);
  assert.deepEqual(s.dates, ['2020-03-12', '2020-03-13', '2020-03-16']);
  assert.deepEqual(Array.from(s.prices), [100.25, 110, 120.5]);
  assert.deepEqual(s.text, [
    [
      { kind: 'news', text: 'a (Sentiment: positive)' },
      { kind: 'news', text: 'b (Sentiment: neutral)' },
      { kind: '10k', text: 'annual' },
    ],
    [],
    [
      { kind: 'news', text: 'c (Sentiment: negative)' },
      { kind: '10q', text: 'quarterly' },
    ],
  ]);
  assert.equal(s.ohlcv, undefined);
  assert.equal(s.warnings, undefined);
  assert.equal((await loadInvestorBench(p, { asset: 'Micro' })).asset, 'Micro');
});

test('investorbench: gzip-compressed JSON reads the same', async () => {
  const s = await loadInvestorBench(tmp.write('gz.json.gz', gzipSync(DOC)));
  assert.equal(s.asset, 'GZ');
  assert.deepEqual(Array.from(s.prices), [100.25, 110, 120.5]);
});

test('investorbench: bad prices name the date and what was expected', async () => {
  const cases: [string, string][] = [
    ['"prices": "101.5"', "prices is '101.5' (a string)"],
    ['"prices": null', 'prices is null'],
    ['"news": []', 'prices is missing'],
    ['"prices": -3', 'prices is -3, expected a positive finite number'],
    ['"prices": 0', 'prices is 0'],
    ['"prices": 1e999', "prices is 'Infinity' (not finite)"],
  ];
  for (const [entry, words] of cases) {
    const p = tmp.write('bad.json', `{ "2020-03-12": { "prices": 1 }, "2020-03-13": { ${entry} } }`);
    const e = await rejectsWith(loadInvestorBench(p), [p, 'date 2020-03-13', words]);
    assert.equal(e.date, '2020-03-13');
  }
});

test('investorbench: structural problems name the file and date', async () => {
  const cases: [string, string[]][] = [
    ['{ "2020-03-12": { "prices": 1, "news": "one" } }', ['date 2020-03-12', 'field news', 'expected array']],
    ['{ "2020-03-12": { "prices": 1, "news": [1] } }', ['date 2020-03-12', 'field news.0', 'expected string']],
    ['{ "2020-03-12": { "prices": 1, "10k": null } }', ['date 2020-03-12', 'field 10k']],
    ['{ "2020-03-12": { "prices": 1, "tweets": [] } }', ['date 2020-03-12', 'tweets']],
    ['{ "2020-03-12": 5 }', ['date 2020-03-12', 'expected object']],
    ['{ "2020-03-12": { "prices": 1 }, "12/03/2020": { "prices": 1 } }', ["key '12/03/2020' is not a date", 'YYYY-MM-DD']],
    ['{ "2021-02-29": { "prices": 1 } }', ["key '2021-02-29' is not a date"]],
    ['[1, 2]', ['expected a JSON object keyed by date', 'an array']],
    // issue 12: a top-level null used to be reported as "found object" (typeof null)
    ['null', ['expected a JSON object keyed by date', 'found null']],
    [' "2020-03-12" ', ['expected a JSON object keyed by date', 'found a string']],
    ['42', ['expected a JSON object keyed by date', 'found a number']],
    ['{ "2020-03-12": { "prices": 1 }', ['not valid JSON']],
    ['{}', ['empty series', 'no dates']],
  ];
  for (const [doc, words] of cases) {
    const p = tmp.write('struct.json', doc);
    await rejectsWith(loadInvestorBench(p), [p, ...words]);
  }
});

test('investorbench: dropInvalidRows drops dates with bad prices and records a warning for each', async () => {
  const p = tmp.write('drop.json', '{ "2020-03-12": { "prices": 1 }, "2020-03-13": { "prices": null, "news": ["x"] }, "2020-03-16": { "prices": 2 } }');
  await rejectsWith(loadInvestorBench(p), [p, 'date 2020-03-13', 'prices is null']);
  const s = await loadInvestorBench(p, { dropInvalidRows: true });
  assert.deepEqual(s.dates, ['2020-03-12', '2020-03-16']);
  assert.deepEqual(s.text, [[], []]);
  assert.equal(s.warnings?.length, 1);
  assert.ok(s.warnings![0]!.startsWith(`${p}, date 2020-03-13: `) && s.warnings![0]!.includes('prices is null'), s.warnings![0]);
  // Structure is never dropped.
  const q = tmp.write('drop2.json', '{ "2020-03-12": { "prices": 1 }, "2020-03-13": { "prices": null, "news": 5 } }');
  await rejectsWith(loadInvestorBench(q, { dropInvalidRows: true }), [q, 'date 2020-03-13', 'field news']);
  const all = tmp.write('drop3.json', '{ "2020-03-13": { "prices": null } }');
  await rejectsWith(loadInvestorBench(all, { dropInvalidRows: true }), [all, 'all 1 dates were dropped']);
});
