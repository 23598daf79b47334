// Cost bounds (issue 12): --cost-bps had no upper bound (1e9 gave an MDD of 10,815,135 %). Costs
// above 10000 bps (100 %) and negative ones are refused, by the flag and by the environment config.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { registerBacktest } from '../src/cli/backtest.js';
import { registerTrain } from '../src/cli/train.js';
import { TradingEnv } from '../src/env/trading-env.js';
import { backtest } from '../src/eval/backtest.js';
import { BuyAndHoldAgent } from '../src/agents/baselines.js';
import { syntheticMarket } from '../src/data/synthetic.js';
import { makeSeries } from './env-helpers.js';

const TMP = mkdtempSync(join(tmpdir(), 'flag-trader-costs-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

async function parseError(...args: string[]): Promise<string> {
  const program = new Command().exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  registerBacktest(program);
  registerTrain(program);
  try { await program.parseAsync(['node', 'flag-trader', ...args]); return ''; } catch (e) { return (e as Error).message; }
}

test('backtest --cost-bps: above 10000, negative or not a number is refused, naming the flag', async () => {
  for (const bad of ['1e9', '10000.5', '-1', 'Infinity', 'abc', '']) {
    const msg = await parseError('backtest', '--cost-bps', bad);
    assert.match(msg, new RegExp(`--cost-bps: expected basis points from 0 to 10000 \\(10000 bps = 100%\\), got ${JSON.stringify(bad).replace(/[.]/g, '\\.')}`), `${bad}: ${msg}`);
  }
});

test('backtest --fee-bps: 10000 or more, or negative, is refused, naming the flag', async () => {
  for (const bad of ['10000', '-0.5']) {
    assert.match(await parseError('backtest', '--mode', 'account', '--fee-bps', bad), /--fee-bps: expected basis points from 0 to below 10000/);
  }
});

test('the environment refuses costBps above 10000 with the field and the value; 10000 itself is allowed', async () => {
  const s = makeSeries([100, 110, 99, 99]);
  assert.throws(() => new TradingEnv(s, { costBps: 1e9 }), /Invalid trading environment config: costBps: expected at most 10000 basis points .*, got 1000000000$/);
  assert.throws(() => new TradingEnv(s, { costBps: -1 }), /costBps: .*, got -1$/);
  assert.ok(new TradingEnv(s, { costBps: 10_000 }));
  const market = syntheticMarket({ seed: 1, days: 60 });
  await assert.rejects(backtest(market, new BuyAndHoldAgent(), { costBps: 1e9 }), /costBps: expected at most 10000/);
  const r = await backtest(market, new BuyAndHoldAgent(), { costBps: 10_000 });
  assert.ok(Number.isFinite(r.metrics.maxDrawdown));
});

test('train: a cost_bps above 10000 stops before training, naming the flag', async () => {
  const out = join(TMP, 'run');
  const msg = await parseError('train', '--quiet', '--policy', 'mlp', '--synthetic-days', '300', '--cost-bps', '1e9', '--out', out);
  assert.match(msg, /--cost-bps "1e9": Too big: expected number to be <=10000/);
  assert.ok(!existsSync(out), 'no run folder written');
});

test('the training config refuses cost_bps above 10000, naming the field', async () => {
  const { parseTrainConfig } = await import('../src/rl/config.js');
  assert.throws(() => parseTrainConfig({ cost_bps: 1e9 }, 'cfg.yaml'), /cfg\.yaml.*cost_bps/s);
  assert.equal(parseTrainConfig({ cost_bps: 10000 }, 'cfg.yaml').cost_bps, 10000);
});
