// The running standardisation of the linear heads' input (src/rl/head-norm.ts): its merged statistics
// against a direct float64 two-pass computation, its forward and backward, and its limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeadNorm, HEAD_NORM_EPS } from '../src/rl/head-norm.js';
import { Rng } from '../src/util/rng.js';

function vectors(rng: Rng, n: number, C: number): Float32Array[] {
  // Channels with different offsets and scales, like pooled hidden states.
  return Array.from({ length: n }, () => Float32Array.from({ length: C }, (_, c) => 0.3 * (c - 2) + (0.01 + 0.05 * c) * rng.normal()));
}

test('fold: the statistics merged over several rollouts equal the two-pass float64 mean and variance of every vector seen', () => {
  const rng = new Rng(11);
  const C = 5;
  const norm = new HeadNorm(C);
  const all: Float32Array[] = [];
  for (const n of [7, 1, 30, 12]) {
    const batch = vectors(rng, n, C);
    for (const x of batch) norm.observe(x);
    all.push(...batch);
    norm.fold();
    for (let c = 0; c < C; c++) {
      let m = 0;
      for (const x of all) m += x[c]!;
      m /= all.length;
      let v = 0;
      for (const x of all) v += (x[c]! - m) ** 2;
      v /= all.length;
      assert.ok(Math.abs(norm.mean.data[c]! - m) <= 1e-6 * (Math.abs(m) + 1e-3), `mean of channel ${c}: ${norm.mean.data[c]} vs ${m}`);
      assert.ok(Math.abs(norm.var.data[c]! - v) <= 5e-4 * v, `variance of channel ${c}: ${norm.var.data[c]} vs ${v}`);
    }
    assert.equal(norm.count.data[0], all.length);
  }
  norm.fold(); // nothing pending: unchanged
  assert.equal(norm.count.data[0], all.length);
});

test('forward: the identity before the first fold; afterwards the folded vectors come out with mean 0 and variance 1 per channel', () => {
  const rng = new Rng(3);
  const C = 4;
  const norm = new HeadNorm(C);
  const xs = vectors(rng, 200, C);
  for (const x of xs) {
    assert.deepEqual(norm.forward(x), x); // count 0
    norm.observe(x);
  }
  assert.deepEqual(norm.forward(xs[0]!), xs[0]!, 'observed vectors count only after the fold');
  norm.fold();
  const ys = xs.map((x) => norm.forward(x));
  for (let c = 0; c < C; c++) {
    const m = ys.reduce((a, y) => a + y[c]!, 0) / ys.length;
    const v = ys.reduce((a, y) => a + (y[c]! - m) ** 2, 0) / ys.length;
    assert.ok(Math.abs(m) < 1e-4, `channel ${c} mean ${m}`);
    // var / (var + eps): the smallest channel's variance is ~1e-4, so eps shows in the third digit.
    const expected = norm.var.data[c]! / (norm.var.data[c]! + HEAD_NORM_EPS);
    assert.ok(Math.abs(v - expected) < 1e-3, `channel ${c} variance ${v}, expected ${expected}`);
  }
});

test('forward, global scale: every channel centred by its own mean and divided by one scale, the root of the mean variance (float64 two-pass)', () => {
  const rng = new Rng(5);
  const C = 4;
  const norm = new HeadNorm(C, 'global');
  const xs = vectors(rng, 300, C);
  for (const x of xs) norm.observe(x);
  norm.fold();
  const mean = Array.from({ length: C }, (_, c) => xs.reduce((a, x) => a + x[c]!, 0) / xs.length);
  const vars = mean.map((m, c) => xs.reduce((a, x) => a + (x[c]! - m) ** 2, 0) / xs.length);
  const scale = Math.sqrt(vars.reduce((a, v) => a + v, 0) / C + HEAD_NORM_EPS);
  for (const x of xs.slice(0, 20)) {
    const y = norm.forward(x);
    for (let c = 0; c < C; c++) {
      const expected = (x[c]! - mean[c]!) / scale;
      assert.ok(Math.abs(y[c]! - expected) <= 1e-4 * (Math.abs(expected) + 1e-2), `channel ${c}: ${y[c]} vs ${expected}`);
    }
  }
  // The channels keep their relative spread (channel scaling would make them all 1).
  const ys = xs.map((x) => norm.forward(x));
  const sd = (c: number) => Math.sqrt(ys.reduce((a, y) => a + y[c]! ** 2, 0) / ys.length);
  for (let c = 1; c < C; c++) assert.ok(Math.abs(sd(c) / sd(0) - Math.sqrt(vars[c]! / vars[0]!)) < 1e-3, `spread ratio of channel ${c}`);
});

for (const scale of ['channel', 'global'] as const) test(`backward (${scale} scale): dx accumulates the central differences of a scalar of the output`, () => {
  const rng = new Rng(8);
  const C = 6;
  const norm = new HeadNorm(C, scale);
  for (const x of vectors(rng, 50, C)) norm.observe(x);
  norm.fold();
  const w = Float64Array.from({ length: C }, () => rng.normal());
  const f = (x: Float32Array) => norm.forward(x).reduce((a, y, c) => a + w[c]! * y, 0);
  const x0 = vectors(rng, 1, C)[0]!;
  const dy = Float32Array.from(w);
  const dx = new Float32Array(C).fill(0.5); // accumulates onto what is there
  norm.backward(dy, dx);
  for (let c = 0; c < C; c++) {
    const h = 1e-3;
    const xp = x0.slice(), xm = x0.slice();
    xp[c] = xp[c]! + h; xm[c] = xm[c]! - h;
    const numeric = (f(xp) - f(xm)) / ((xp[c]! - xm[c]!));
    assert.ok(Math.abs(dx[c]! - 0.5 - numeric) <= 2e-3 * Math.abs(numeric) + 1e-3, `channel ${c}: ${dx[c]! - 0.5} vs ${numeric}`);
  }
});

test('the count stays exact in float32: folding past 2^24 vectors is an error that names the setting', () => {
  const norm = new HeadNorm(2);
  norm.count.data[0] = 2 ** 24;
  norm.observe(new Float32Array([1, 2]));
  assert.throws(() => norm.fold(), /more than 16777216 rollout vectors.*head_norm none/);
});
