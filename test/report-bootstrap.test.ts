import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantile, sharpeDifferenceCI } from '../src/report/bootstrap.js';
import { stat, equityCurve, drawdownCurve } from '../src/report/summary.js';
import { Rng } from '../src/util/rng.js';

const ann = { vol: 252, sr: 252 };

// An independent Sharpe ratio (DESIGN.md formula written out again here, float64).
function sr(r: number[]): number {
  const n = r.length, cr = r.reduce((a, b) => a + b, 0), m = cr / n;
  const sd = Math.sqrt(r.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1));
  return sd === 0 ? 0 : (cr / ((n + 1) / 252)) / (sd * Math.sqrt(252));
}

test('quantile interpolates linearly between order statistics', () => {
  // sorted [1,2,3,4,5]: q=0.25 -> position 1 -> 2; q=0.1 -> position 0.4 -> 1.4
  assert.equal(quantile([1, 2, 3, 4, 5], 0.25), 2);
  assert.ok(Math.abs(quantile([1, 2, 3, 4, 5], 0.1) - 1.4) < 1e-12);
  assert.equal(quantile([7], 0.9), 7);
});

test('observed difference is the mean over seeds of SR(agent) - SR(B&H)', () => {
  const rng = new Rng(1);
  const bh = Array.from({ length: 60 }, () => 0.01 * rng.normal());
  const a1 = bh.map((x, i) => (i % 3 === 0 ? -x : x));
  const a2 = bh.map((x) => 0.5 * x + 0.001);
  const ci = sharpeDifferenceCI([a1, a2], bh, ann, { resamples: 300, seed: 3 });
  const expected = ((sr(a1) - sr(bh)) + (sr(a2) - sr(bh))) / 2;
  assert.ok(Math.abs(ci.observed - expected) < 1e-12, `${ci.observed} vs ${expected}`);
  assert.ok(ci.lower <= ci.upper);
});

test('an agent identical to Buy & Hold has a zero-width interval at 0', () => {
  const rng = new Rng(2);
  const bh = Array.from({ length: 40 }, () => 0.02 * rng.normal());
  const ci = sharpeDifferenceCI([bh.slice()], bh, ann, { resamples: 200, seed: 1 });
  assert.equal(ci.observed, 0);
  assert.equal(ci.lower, 0);
  assert.equal(ci.upper, 0);
  assert.equal(ci.fractionNotBetter, 1);
});

test('a clearly better agent has an interval above zero; same seed reproduces it exactly', () => {
  const rng = new Rng(4);
  const bh = Array.from({ length: 250 }, () => 0.01 * rng.normal());
  const good = bh.map((x) => Math.abs(x)); // a perfect-foresight agent
  const a = sharpeDifferenceCI([good], bh, ann, { resamples: 500, seed: 9 });
  const b = sharpeDifferenceCI([good], bh, ann, { resamples: 500, seed: 9 });
  assert.deepEqual(a, b);
  assert.ok(a.lower > 0, `lower ${a.lower}`);
  assert.equal(a.fractionNotBetter, 0);
});

test('mismatched lengths and bad blocks are rejected with clear errors', () => {
  assert.throws(() => sharpeDifferenceCI([[0.1, 0.2]], [0.1, 0.2, 0.3], ann), /run 0 has 2 returns, Buy & Hold has 3/);
  assert.throws(() => sharpeDifferenceCI([[0.1, 0.2]], [0.1, 0.2], ann, { block: 0 }), /block must be a positive integer/);
  assert.throws(() => sharpeDifferenceCI([], [0.1, 0.2], ann), /no agent runs/);
});

test('stat, equity and drawdown curves by hand', () => {
  const s = stat([1, 2, 3, 4]); // mean 2.5, var = (2.25+0.25+0.25+2.25)/3 = 5/3
  assert.equal(s.mean, 2.5);
  assert.ok(Math.abs(s.std - Math.sqrt(5 / 3)) < 1e-12);
  assert.deepEqual(stat([3]), { mean: 3, std: 0, n: 1 });
  const eq = equityCurve([Math.log(2), Math.log(0.5)]);
  assert.ok(Math.abs(eq[1]! - 2) < 1e-12 && Math.abs(eq[2]! - 1) < 1e-12);
  // prod(1+r): 1 -> 1.1 -> 0.88 (1.1 * 0.8): drawdown (1.1 - 0.88) / 1.1 = 20%
  const dd = drawdownCurve([0.1, -0.2]);
  assert.equal(dd[0], 0);
  assert.equal(dd[1], -0);
  assert.ok(Math.abs(dd[2]! + 20) < 1e-9);
});
