import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ANNUALIZATIONS, computeMetrics, countTrades, maxDrawdown, parseAnnualization, sampleStd, sharpeRatio, turnover, winRate,
} from '../src/eval/metrics.js';
import { Rng } from '../src/util/rng.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test('metrics by hand on three returns (N = 4 prices)', () => {
  // r = 0.1, -0.2, 0.05.  CR = -0.05.
  // mean = -0.05/3 = -1/60; deviations 7/60, -11/60, 4/60; sum of squares (49+121+16)/3600 = 186/3600;
  // ddof 1: variance 93/3600, std = sqrt(93)/60.
  // stock: AV = sqrt(93)/60 * sqrt(252); SR = (-0.05 / (4/252)) / AV = -3.15 / AV.
  // equity 1, 1.1, 0.88, 0.924: peak 1.1, deepest 0.88: MDD = 0.22/1.1 = 0.2.
  // positions 1, -1, 0: in market on days 0 and 1, winning on day 0 only: win rate 1/2.
  // trades: 0->1, 1->-1, -1->0 = 3; turnover (1 + 2 + 1) / 3 = 4/3.
  const r = [0.1, -0.2, 0.05], pos = [1, -1, 0];
  const m = computeMetrics(r, pos, ANNUALIZATIONS.stock);
  const av = (Math.sqrt(93) / 60) * Math.sqrt(252);
  close(m.cumulativeReturn, -0.05);
  close(m.annualizedVolatility, av);
  close(m.sharpeRatio, -3.15 / av);
  close(m.maxDrawdown, 0.2);
  assert.equal(m.winRate, 0.5);
  assert.equal(m.trades, 3);
  close(m.turnover, 4 / 3);
  assert.equal(m.daysInMarket, 2);
  assert.equal(m.days, 3);
  // crypto: AV uses 365, SR's return uses 252.
  const c = computeMetrics(r, pos, ANNUALIZATIONS.crypto);
  const avc = (Math.sqrt(93) / 60) * Math.sqrt(365);
  close(c.annualizedVolatility, avc);
  close(c.sharpeRatio, -3.15 / avc);
  // custom {vol 12, sr 6}: SR = (-0.05 / (4/6)) / (sqrt(93)/60 * sqrt(12)).
  close(computeMetrics(r, pos, { vol: 12, sr: 6 }).sharpeRatio, -0.075 / ((Math.sqrt(93) / 60) * Math.sqrt(12)));
});

test('drawdown: recovers to a new peak, then a deeper fall', () => {
  // equity: 1, 0.5, 1.5 (new peak), 0.6 -> falls 0.5 then 0.9/1.5 = 0.6.
  close(maxDrawdown([-0.5, 2, -0.6]), 0.6);
  assert.equal(maxDrawdown([0.01, 0.02, 0]), 0, 'never below the running peak');
  assert.equal(maxDrawdown([]), 0);
  // A first-day loss counts against the starting value 1.
  close(maxDrawdown([-0.1]), 0.1);
});

test('edge cases: no returns, one return, flat, constant returns', () => {
  const empty = computeMetrics([], []);
  assert.deepEqual(empty, { cumulativeReturn: 0, sharpeRatio: 0, annualizedVolatility: 0, maxDrawdown: 0, winRate: 0, trades: 0, turnover: 0, daysInMarket: 0, days: 0 });
  const one = computeMetrics([0.03], [1]);
  assert.equal(one.cumulativeReturn, 0.03);
  assert.equal(one.annualizedVolatility, 0, 'ddof-1 std of one value is undefined: AV = 0');
  assert.equal(one.sharpeRatio, 0);
  assert.equal(one.winRate, 1);
  const flat = computeMetrics([0, 0, 0, 0], [0, 0, 0, 0]);
  assert.equal(flat.annualizedVolatility, 0);
  assert.equal(flat.sharpeRatio, 0);
  assert.equal(flat.maxDrawdown, 0);
  assert.equal(flat.winRate, 0, 'never in the market');
  assert.equal(flat.trades, 0);
  // Identical nonzero returns: 0.1 is not exact in binary, so a mean-based std would be tiny, not 0.
  const steady = computeMetrics([0.1, 0.1, 0.1], [1, 1, 1]);
  assert.equal(steady.annualizedVolatility, 0);
  assert.equal(steady.sharpeRatio, 0);
  assert.ok(Number.isFinite(sharpeRatio([1e-300, 1e-300], ANNUALIZATIONS.stock)));
});

test('win rate, trades and turnover', () => {
  assert.equal(winRate([0.1, -0.1, 0.2, 0.3], [1, 1, 0, -1]), 2 / 3, 'a positive return on a hold day does not count');
  assert.equal(winRate([0, 0.1], [1, 1]), 0.5, 'a zero return is not a win');
  assert.equal(countTrades([1, 1, 1, 1]), 1, 'buy and hold enters once');
  assert.equal(countTrades([0, 0, 1, 1, -1, 0]), 3);
  assert.equal(countTrades([1, 1], 1), 0, 'already long at the start');
  assert.equal(turnover([1, 1, 1, 1]), 0.25);
  assert.equal(turnover([1, -1, 1, -1]), 7 / 4);
  assert.equal(turnover([]), 0);
});

test('a float64 brute-force recomputation agrees on a random series', () => {
  const rng = new Rng(42);
  const n = 300;
  const r = Array.from({ length: n }, () => 0.015 * rng.normal() + 0.0005);
  const pos = Array.from({ length: n }, () => [1, -1, 0][rng.int(3)]!);
  // Independent formulas: variance from sum of squares (n/(n-1) * (E[x^2] - E[x]^2)), MDD over all pairs i <= j.
  let s = 0, s2 = 0;
  for (const x of r) { s += x; s2 += x * x; }
  const variance = (n / (n - 1)) * (s2 / n - (s / n) ** 2);
  const av = Math.sqrt(variance * 252);
  const sr = (s / ((n + 1) / 252)) / av;
  const e = [1];
  for (const x of r) e.push(e[e.length - 1]! * (1 + x));
  let mdd = 0;
  for (let i = 0; i < e.length; i++) for (let j = i; j < e.length; j++) mdd = Math.max(mdd, (e[i]! - e[j]!) / e[i]!);
  // (For positive equity, 1 - e_j / e_i over i <= j is largest at the running peak: the same MDD.)
  let wins = 0, inMarket = 0, changes = 0, moved = 0, prev = 0;
  for (let i = 0; i < n; i++) {
    if (pos[i] !== 0) { inMarket++; if (r[i]! > 0) wins++; }
    if (pos[i] !== prev) changes++;
    moved += Math.abs(pos[i]! - prev);
    prev = pos[i]!;
  }
  const m = computeMetrics(r, pos, ANNUALIZATIONS.stock);
  close(m.cumulativeReturn, s, 1e-12);
  close(m.annualizedVolatility, av, 1e-9);
  close(m.sharpeRatio, sr, 1e-9);
  close(m.maxDrawdown, mdd, 1e-12);
  assert.equal(m.winRate, wins / inMarket);
  assert.equal(m.trades, changes);
  close(m.turnover, moved / n);
  close(sampleStd(r), Math.sqrt(variance), 1e-9);
});

test('annualization parsing: names and VOL,SR; bad specs are errors saying what is expected', () => {
  assert.deepEqual(parseAnnualization('stock'), { vol: 252, sr: 252 });
  assert.deepEqual(parseAnnualization('crypto'), { vol: 365, sr: 252 });
  assert.deepEqual(parseAnnualization('365,252'), { vol: 365, sr: 252 });
  assert.deepEqual(parseAnnualization(' 12 , 6.5 '), { vol: 12, sr: 6.5 });
  for (const bad of ['bond', '252', '1,2,3', '0,252', '-1,2', 'a,b', ',252', '252,', 'Infinity,1']) {
    assert.throws(() => parseAnnualization(bad), new RegExp(`annualization: expected stock, crypto or VOL,SR .*got "${bad.replace('+', '\\+')}"`), bad);
  }
});

test('computeMetrics rejects mismatched or non-finite input', () => {
  assert.throws(() => computeMetrics([0.1, 0.2], [1]), /2 returns but 1 positions/);
  assert.throws(() => computeMetrics([0.1, Number.NaN], [1, 1]), /return 1 is NaN/);
  assert.throws(() => computeMetrics([0.1], [Number.POSITIVE_INFINITY]), /position 0 is Infinity/);
  assert.throws(() => computeMetrics([0.1], [1], { vol: 0, sr: 252 }), /annualization must be two positive finite numbers/);
});
