// reproduce's walk-forward and --data flags: bad input is refused before anything trains, with an error
// naming the flag and what was expected. Parsed in-process through the real command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { registerReproduce, reproduceTargets } from '../src/cli/reproduce.js';

/** Parse a command line in-process; resolves to the error message ('' when parsing and the action succeeded). */
async function parseError(...args: string[]): Promise<string> {
  const program = new Command().exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  registerReproduce(program);
  try { await program.parseAsync(['node', 'flag-trader', 'reproduce', '--quiet', ...args]); return ''; } catch (e) { return (e as Error).message; }
}

test('--walk-forward: malformed specs and sizes below the minimum name the flag and the expected form', async () => {
  for (const bad of ['252:63', '252:63:63:5', 'a:b:c', '252;63;63']) {
    const m = await parseError('--data', 'synthetic', '--walk-forward', bad);
    assert.match(m, /--walk-forward: expected TRAIN:TEST:STEP, three whole numbers of trading days such as 252:63:63/, bad);
  }
  assert.match(await parseError('--data', 'synthetic', '--walk-forward', '0:63:63'), /--walk-forward 0:63:63: TRAIN must be a whole number of trading days of at least 2/);
  assert.match(await parseError('--data', 'synthetic', '--walk-forward', '252:-3:63'), /--walk-forward 252:-3:63: TEST must be .* at least 2/);
  assert.match(await parseError('--data', 'synthetic', '--walk-forward', '252:63:0'), /--walk-forward 252:63:0: STEP must be .* at least 1/);
});

test('--from / --to: bad dates, and --from after --to', async () => {
  assert.match(await parseError('--data', 'synthetic', '--walk-forward', '40:10:10', '--from', '2020-13-01'), /--from: expected a date YYYY-MM-DD, got "2020-13-01"/);
  assert.match(await parseError('--data', 'synthetic', '--walk-forward', '40:10:10', '--to', 'tomorrow'), /--to: expected a date YYYY-MM-DD, got "tomorrow"/);
  assert.match(await parseError('--data', 'synthetic', '--walk-forward', '40:10:10', '--from', '2021-01-01', '--to', '2020-01-01'),
    /--from 2021-01-01 is after --to 2020-01-01/);
});

test('a range too short for one window is refused before anything is written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wf-cli-'));
  const out = join(dir, 'out');
  try {
    const config = (days: number) => { const p = join(dir, `c${days}.json`); writeFileSync(p, JSON.stringify({ synthetic_days: days })); return p; };
    const m = await parseError('--data', 'synthetic', '--config', config(50), '--model', 'random:tiny', '--out', out, '--walk-forward', '40:20:5');
    assert.match(m, /--walk-forward 40:20:5 needs at least 60 trading days \(TRAIN \+ TEST\) in the data; SYNTH has 50 \(\S+\.\.\S+\)/);
    const f = await parseError('--data', 'synthetic', '--config', config(300), '--model', 'random:tiny', '--out', out, '--walk-forward', '40:20:5', '--from', '2021-01-01', '--to', '2021-02-01');
    assert.match(f, /needs at least 60 trading days \(TRAIN \+ TEST\) between --from 2021-01-01 and --to 2021-02-01; SYNTH has \d+/);
    assert.ok(!existsSync(out), 'nothing written');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('flags that do not apply are errors naming them', async () => {
  assert.match(await parseError('--data', 'synthetic', '--expanding'), /--expanding applies only with --walk-forward TRAIN:TEST:STEP/);
  assert.match(await parseError('--data', 'synthetic', '--from', '2020-01-01'), /--from applies only with --walk-forward/);
  assert.match(await parseError('--data-dir', '/nonexistent', '--ticker', 'MSFT'), /--ticker applies only with --data FILE/);
  assert.match(await parseError('--data-dir', '/nonexistent', '--annualization', 'crypto'), /--annualization applies only with --data FILE/);
  assert.match(await parseError('--data', 'x.csv', '--assets', 'MSFT'), /--assets picks the paper protocol's assets and --data one file of your choice: give one or the other/);
  assert.match(await parseError('--data', 'x.csv', '--annualization', '365'), /--annualization: annualization: expected stock, crypto or VOL,SR/);
});

test('--data targets: the asset name from --asset, the ticker or the file; protocol assets walk their whole file', () => {
  assert.deepEqual(reproduceTargets({ data: '/d/yahoo/MSFT.csv' }).map((t) => [t.asset, t.data, t.format, t.ticker, t.train]), [['MSFT', '/d/yahoo/MSFT.csv', 'auto', null, null]]);
  const long = reproduceTargets({ data: '/d/long.csv.gz', ticker: 'AAPL', format: 'long', annualization: { vol: 365, sr: 252 } })[0]!;
  assert.deepEqual([long.asset, long.ticker, long.format, long.annualization], ['AAPL', 'AAPL', 'long', { vol: 365, sr: 252 }]);
  assert.equal(reproduceTargets({ data: 'synthetic', asset: 'Mine' })[0]!.asset, 'Mine');
  assert.equal(reproduceTargets({ data: 'synthetic' })[0]!.data, 'synthetic');
  const [btc] = reproduceTargets({ dataDir: '/d', assets: ['BTC'], walkForward: { train: 30, test: 10, step: 10, expanding: false } });
  assert.deepEqual([btc!.data, btc!.train, btc!.test, btc!.annualization], ['/d/investorbench/btc.json', null, null, { vol: 365, sr: 252 }]);
  assert.deepEqual(reproduceTargets({ dataDir: '/d', assets: ['BTC'] })[0]!.test, { start: '2023-04-05', end: '2023-11-05' });
});
