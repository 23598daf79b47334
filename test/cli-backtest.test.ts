// End to end: the `flag-trader backtest` and `demo` commands, spawned as a user would run them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syntheticMarket } from '../src/data/synthetic.js';
import { dataPath, needsData, repoRoot } from './shared-paths.js';


const ROOT = repoRoot();
const TMP = mkdtempSync(join(tmpdir(), 'flag-trader-cli-backtest-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

interface Run { code: number; stdout: string; stderr: string }

function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, timeout: 60000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

// A small Yahoo CSV, written here: 12 business days with Adj Close != Close so the default column matters.
const yahooRows = [
  ['2021-03-01', 10.0], ['2021-03-02', 10.5], ['2021-03-03', 10.2], ['2021-03-04', 10.8], ['2021-03-05', 11.0],
  ['2021-03-08', 10.6], ['2021-03-09', 10.9], ['2021-03-10', 11.4], ['2021-03-11', 11.1], ['2021-03-12', 11.7],
  ['2021-03-15', 11.5], ['2021-03-16', 12.0],
] as const;
const yahooPath = join(TMP, 'TOY.csv');
writeFileSync(yahooPath, ['Date,Open,High,Low,Close,Adj Close,Volume',
  ...yahooRows.map(([d, p]) => `${d},${p * 2},${p * 2 + 1},${p * 2 - 1},${p * 2},${p},1000`)].join('\n') + '\n');

// Start every process at once (each pays tsx's start-up); the tests below check their results.
const runs = {
  syntheticTable: cli('backtest'),
  syntheticJson: cli('backtest', '--json', '--seed', '3'),
  yahooJson: cli('backtest', '--data', yahooPath, '--start', '2021-03-03', '--end', '2021-03-15', '--json'),
  several: cli('backtest', '--data', yahooPath, '--agent', 'buy-and-hold,random', '--agent', 'momentum', '--momentum-lookback', '2', '--json'),
  severalTable: cli('backtest', '--data', yahooPath, '--agent', 'buy-and-hold,sma-crossover', '--annualization', 'crypto', '--cost-bps', '5'),
  account: cli('backtest', '--data', yahooPath, '--mode', 'account', '--fee-bps', '10', '--json'),
  badAnnualization: cli('backtest', '--annualization', 'yearly'),
  badAgent: cli('backtest', '--agent', 'buy-and-hold,oracle'),
  badSeed: cli('backtest', '--seed', 'abc'),
  badMode: cli('backtest', '--mode', 'paper'),
  badDate: cli('backtest', '--data', yahooPath, '--start', '2021-02-30'),
  wrongModeOption: cli('backtest', '--fee-bps', '5'),
  missingFile: cli('backtest', '--data', join(TMP, 'nope.csv')),
  badLookback: cli('backtest', '--lookback', '-3'),
  msft: needsData('investorbench', 'msft.json') ? null : cli('backtest', '--data', dataPath('investorbench', 'msft.json'), '--start', '2020-10-01', '--end', '2021-05-05', '--json'),
};

test('default: the synthetic market, a header and a table row', async () => {
  const r = await runs.syntheticTable;
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /N = \d+ prices, mode benchmark, annualization vol 252 \/ sr 252/);
  assert.match(lines[1]!, /^agent\s+CR %\s+SR\s+AV %\s+MDD %\s+win %\s+trades$/);
  assert.match(lines[2]!, /^buy-and-hold\s+-?\d+\.\d\d\s+-?\d+\.\d{3}\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d\s+1$/);
  assert.equal(lines.length, 3);
});

test('--json on the synthetic market: CR = ln(P_end / P_start) * 100 of the same seeded series', async () => {
  const r = await runs.syntheticJson;
  assert.equal(r.code, 0, r.stderr);
  const o = JSON.parse(r.stdout);
  const s = syntheticMarket({ seed: 3 });
  const n = s.prices.length;
  assert.equal(o.prices, n);
  assert.equal(o.start, s.dates[0]);
  assert.equal(o.end, s.dates[n - 1]);
  close(o.metrics.cumulativeReturn, Math.log(s.prices[n - 1]! / s.prices[0]!) * 100);
});

test('--json on a Yahoo CSV window: exact shape, Adj Close prices, percent units', async () => {
  const r = await runs.yahooJson;
  assert.equal(r.code, 0, r.stderr);
  const o = JSON.parse(r.stdout);
  for (const k of ['agent', 'asset', 'start', 'end', 'prices', 'metrics', 'positions']) assert.ok(k in o, `missing ${k}`);
  for (const k of ['cumulativeReturn', 'sharpeRatio', 'annualizedVolatility', 'maxDrawdown']) assert.equal(typeof o.metrics[k], 'number', k);
  assert.equal(o.agent, 'buy-and-hold');
  assert.equal(o.asset, 'TOY');
  assert.equal(o.start, '2021-03-03');
  assert.equal(o.end, '2021-03-15');
  // 2021-03-03 .. 2021-03-15 holds rows 3..11: 9 prices, 8 positions.
  assert.equal(o.prices, 9);
  assert.deepEqual(o.positions, new Array(8).fill(1));
  close(o.metrics.cumulativeReturn, Math.log(11.5 / 10.2) * 100);
  // AV by hand from the window's log returns, in percent.
  const p = yahooRows.slice(2, 11).map(([, x]) => x);
  const lr = p.slice(1).map((x, i) => Math.log(x / p[i]!));
  const mean = lr.reduce((a, b) => a + b, 0) / lr.length;
  const sd = Math.sqrt(lr.reduce((a, b) => a + (b - mean) ** 2, 0) / (lr.length - 1));
  close(o.metrics.annualizedVolatility, sd * Math.sqrt(252) * 100);
  close(o.metrics.sharpeRatio, (Math.log(11.5 / 10.2) / (9 / 252)) / (sd * Math.sqrt(252)));
  // MDD: the deepest fall of prod(1 + r) from its peak, positive, in percent, below 100.
  assert.ok(o.metrics.maxDrawdown > 0 && o.metrics.maxDrawdown < 100);
});

test('several agents: a JSON array in the order given; a table with one row each', async () => {
  const r = await runs.several;
  assert.equal(r.code, 0, r.stderr);
  const arr = JSON.parse(r.stdout);
  assert.ok(Array.isArray(arr));
  assert.deepEqual(arr.map((o: { agent: string }) => o.agent), ['buy-and-hold', 'random', 'momentum']);
  for (const o of arr) assert.equal(o.prices, 12);
  // momentum with a 2-day lookback: hold on the first two days (not enough history), then sign(P_t - P_{t-2}).
  const p = yahooRows.map(([, x]) => x);
  const expected = p.slice(0, -1).map((x, t) => (t < 2 ? 0 : Math.sign(x - p[t - 2]!)));
  assert.deepEqual(arr[2].positions, expected);
  const t = await runs.severalTable;
  assert.equal(t.code, 0, t.stderr);
  const lines = t.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^TOY \(.*TOY\.csv\): 2021-03-01\.\.2021-03-16, N = 12 prices, mode benchmark, annualization vol 365 \/ sr 252$/);
  assert.equal(lines.length, 4);
  assert.match(lines[2]!, /^buy-and-hold /);
  assert.match(lines[3]!, /^sma-crossover /);
  // Aligned: every row as long as the header row.
  assert.equal(lines[2]!.length, lines[1]!.length);
  assert.equal(lines[3]!.length, lines[1]!.length);
});

test('--mode account: buy and hold pays the fee once: CR = ln(P_end / P_start) - ln(1 + 10 bps)', async () => {
  const r = await runs.account;
  assert.equal(r.code, 0, r.stderr);
  const o = JSON.parse(r.stdout);
  assert.equal(o.mode, 'account');
  close(o.metrics.cumulativeReturn, (Math.log(12.0 / 10.0) - Math.log(1.001)) * 100);
  assert.deepEqual(o.positions, new Array(11).fill(1));
});

test('bad option values: exit code 1 and a message naming the problem', async () => {
  const cases: Array<[Run, RegExp]> = [
    [await runs.badAnnualization, /annualization: expected stock, crypto or VOL,SR .*got "yearly"/],
    [await runs.badAgent, /unknown agent "oracle"; known agents: buy-and-hold, random, momentum, sma-crossover/],
    [await runs.badSeed, /--seed.*expected an integer, got "abc"/],
    [await runs.badMode, /--mode.*paper.*Allowed choices are benchmark, account/],
    [await runs.badDate, /start date "2021-02-30" is not a valid date; expected YYYY-MM-DD/],
    [await runs.wrongModeOption, /--fee-bps applies only to --mode account/],
    [await runs.missingFile, /nope\.csv/],
    [await runs.badLookback, /--lookback.*expected a non-negative integer, got "-3"/],
  ];
  for (const [r, re] of cases) {
    assert.equal(r.code, 1, `exit code for ${re}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stdout, '');
  }
});

test('INVESTOR-BENCH MSFT test window: buy and hold CR = ln(P_end / P_start) * 100 from the JSON file', { skip: needsData('investorbench', 'msft.json') }, async () => {
  const raw = JSON.parse(readFileSync(dataPath('investorbench', 'msft.json'), 'utf8')) as Record<string, { prices: number }>;
  const days = Object.keys(raw).filter((d) => d >= '2020-10-01' && d <= '2021-05-05').sort();
  const r = await runs.msft!;
  assert.equal(r.code, 0, r.stderr);
  const o = JSON.parse(r.stdout);
  assert.equal(o.asset, 'MSFT');
  assert.equal(o.start, days[0]);
  assert.equal(o.end, days[days.length - 1]);
  assert.equal(o.prices, days.length);
  close(o.metrics.cumulativeReturn, Math.log(raw[days[days.length - 1]!]!.prices / raw[days[0]!]!.prices) * 100);
});
