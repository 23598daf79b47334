import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backtest } from '../src/eval/backtest.js';
import { resolveWindow } from '../src/data/window.js';
import { computeMetrics } from '../src/eval/metrics.js';
import { BuyAndHoldAgent, RandomAgent, SmaCrossoverAgent } from '../src/agents/baselines.js';
import type { Agent } from '../src/agents/agent.js';
import type { Action, Observation } from '../src/env/types.js';
import { randomWalk } from './env-helpers.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test('buy and hold over the whole series: the metrics of the raw log returns', async () => {
  const s = randomWalk(80, 3, false);
  const res = await backtest(s, new BuyAndHoldAgent());
  const p = Array.from(s.prices);
  const lr = p.slice(1).map((x, i) => Math.log(x / p[i]!));
  assert.equal(res.prices, 80);
  assert.equal(res.start, s.dates[0]);
  assert.equal(res.end, s.dates[79]);
  assert.deepEqual(res.dates, s.dates);
  assert.deepEqual(res.positions, new Array(79).fill(1));
  res.returns.forEach((r, i) => close(r, lr[i]!));
  close(res.metrics.cumulativeReturn, Math.log(p[79]! / p[0]!), 1e-10);
  const ref = computeMetrics(lr, new Array(79).fill(1));
  close(res.metrics.sharpeRatio, ref.sharpeRatio, 1e-10);
  close(res.metrics.annualizedVolatility, ref.annualizedVolatility, 1e-10);
  close(res.metrics.maxDrawdown, ref.maxDrawdown, 1e-10);
  assert.equal(res.metrics.trades, 1);
  // Equity = exp(cumulative log return) = P_t / P_0 for buy and hold.
  res.equity.forEach((e, i) => close(e, p[i]! / p[0]!, 1e-10));
  // Account mode, no fee: all-in every day, the same returns.
  const acc = await backtest(s, new BuyAndHoldAgent(), { mode: 'account' });
  acc.returns.forEach((r, i) => close(r, lr[i]!, 1e-10));
  close(acc.metrics.cumulativeReturn, Math.log(p[79]! / p[0]!), 1e-10);
});

test('a window inside the series: first decision on the start date, earlier days as history', async () => {
  const s = randomWalk(100, 4);
  const seen: Observation[] = [];
  const spy: Agent = { name: 'spy', act: (o) => { seen.push(o); return 'hold'; } };
  // Window from the 31st to the 61st date: 31 prices, 30 decisions.
  const res = await backtest(s, spy, { start: s.dates[30], end: s.dates[60], lookback: 10 });
  assert.equal(res.prices, 31);
  assert.equal(res.start, s.dates[30]);
  assert.equal(res.end, s.dates[60]);
  assert.equal(seen.length, 30);
  assert.equal(seen[0]!.date, s.dates[30]);
  assert.deepEqual(seen[0]!.dates, s.dates.slice(20, 31), 'ten days before the window are visible');
  assert.equal(seen[29]!.date, s.dates[59]);
  assert.deepEqual(res.dates, s.dates.slice(30, 61));
  assert.equal(res.metrics.cumulativeReturn, 0);
  // Dates between trading days round inward: a start before the first date is the first date.
  const all = await backtest(s, new BuyAndHoldAgent(), { start: '1999-01-01', end: '2100-01-01' });
  assert.equal(all.prices, 100);
  assert.deepEqual(resolveWindow(s, s.dates[5], s.dates[9]), { startIndex: 5, endIndex: 9 });
});

test('costs: CR = sum(position * log return) - costBps/1e4 * sum |change|, computed independently', async () => {
  const s = randomWalk(60, 8, false);
  const agent = new SmaCrossoverAgent(3, 8);
  const free = await backtest(s, agent);
  const costly = await backtest(s, agent, { costBps: 25 });
  assert.deepEqual(costly.positions, free.positions);
  const p = Array.from(s.prices);
  let gross = 0, moved = 0, prev = 0;
  free.positions.forEach((x, i) => { gross += x * Math.log(p[i + 1]! / p[i]!); moved += Math.abs(x - prev); prev = x; });
  assert.ok(moved > 0);
  close(free.metrics.cumulativeReturn, gross, 1e-10);
  close(costly.metrics.cumulativeReturn, gross - 0.0025 * moved, 1e-10);
});

test('same seed, same positions; another seed, other positions', async () => {
  const s = randomWalk(60, 1, false);
  const a = await backtest(s, new RandomAgent(), { seed: 5 });
  const b = await backtest(s, new RandomAgent(123), { seed: 5 });
  const c = await backtest(s, new RandomAgent(), { seed: 6 });
  assert.deepEqual(a.positions, b.positions, 'the backtest seed resets the agent');
  assert.deepEqual(a.metrics, b.metrics);
  assert.notDeepEqual(a.positions, c.positions);
});

test('bad windows and bad agents are clear errors', async () => {
  const s = randomWalk(10, 1, false); // dates 2021-01-01 .. 2021-01-10
  await assert.rejects(backtest(s, new BuyAndHoldAgent(), { start: '2021-01-05', end: '2021-01-02' }), /start 2021-01-05 is after end 2021-01-02/);
  await assert.rejects(backtest(s, new BuyAndHoldAgent(), { start: '2021-13-01' }), /start date "2021-13-01" is not a valid date; expected YYYY-MM-DD/);
  await assert.rejects(backtest(s, new BuyAndHoldAgent(), { end: '2021-02-30' }), /end date "2021-02-30" is not a valid date/);
  await assert.rejects(backtest(s, new BuyAndHoldAgent(), { start: '2021-01-10' }),
    /window 2021-01-10\.\.\(series end\) of test holds 1 price\(s\); a backtest needs at least 2 \(the series covers 2021-01-01\.\.2021-01-10 \(10 prices\)\)/);
  await assert.rejects(backtest(s, new BuyAndHoldAgent(), { start: '2022-01-01' }), /holds 0 price\(s\)/);
  const bad: Agent = { name: 'broken', act: () => 'short' as Action };
  await assert.rejects(backtest(s, bad), /agent broken returned "short" on 2021-01-01; expected one of buy, sell, hold/);
});

test('async agents are awaited', async () => {
  const s = randomWalk(12, 2, false);
  const slow: Agent = { name: 'slow', act: async () => { await new Promise((r) => setTimeout(r, 1)); return 'sell' as const; } };
  const res = await backtest(s, slow);
  assert.deepEqual(res.positions, new Array(11).fill(-1));
  close(res.metrics.cumulativeReturn, -Math.log(s.prices[11]! / s.prices[0]!), 1e-10);
});
