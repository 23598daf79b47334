import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdamW, annealedLr, clipGradNorm } from '../src/rl/optim.js';
import type { Param } from '../src/rl/policy.js';

function param(name: string, data: number[], grad: number[]): Param {
  return { name, shape: [data.length], data: Float32Array.from(data), grad: Float32Array.from(grad) };
}

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (tol ${tol})`);
}

test('AdamW: two steps match the arithmetic done by hand', () => {
  // lr 0.1, b1 0.9, b2 0.999, eps 1e-8, wd 0.01; p = [1, -2].
  const p = param('w', [1, -2], [0.5, -1]);
  const opt = new AdamW([p], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
  opt.step();
  // Step 1, g = [0.5, -1]:
  //   decay: p * (1 - 0.1 * 0.01) = [0.999, -1.998]
  //   m = 0.1 g = [0.05, -0.1];  v = 0.001 g^2 = [0.00025, 0.001]
  //   m_hat = m / 0.1 = [0.5, -1];  v_hat = v / 0.001 = [0.25, 1];  sqrt = [0.5, 1]
  //   p = [0.999 - 0.1 * 0.5 / (0.5 + 1e-8), -1.998 + 0.1 * 1 / (1 + 1e-8)] ~= [0.899, -1.898]
  close(p.data[0]!, 0.999 - (0.1 * 0.5) / (0.5 + 1e-8), 1e-6, 'p0 after step 1');
  close(p.data[1]!, -1.998 + (0.1 * 1) / (1 + 1e-8), 1e-6, 'p1 after step 1');
  assert.equal(opt.stepCount, 1);

  p.grad.set([0.25, 0.5]);
  opt.step();
  // Step 2, g = [0.25, 0.5]:
  //   decay: [0.899 * 0.999, -1.898 * 0.999] = [0.898101, -1.896102]
  //   m = 0.9 m + 0.1 g = [0.045 + 0.025, -0.09 + 0.05] = [0.07, -0.04]
  //   v = 0.999 v + 0.001 g^2 = [0.00024975 + 0.0000625, 0.000999 + 0.00025] = [0.00031225, 0.001249]
  //   bias corrections: 1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999
  //   p -= 0.1 * (m / 0.19) / sqrt(v / 0.001999)
  close(p.data[0]!, 0.898101 - (0.1 * (0.07 / 0.19)) / Math.sqrt(0.00031225 / 0.001999), 2e-6, 'p0 after step 2');
  close(p.data[1]!, -1.896102 - (0.1 * (-0.04 / 0.19)) / Math.sqrt(0.001249 / 0.001999), 2e-6, 'p1 after step 2');
  // The numbers above, evaluated: 0.898101 - 0.0932181 = 0.8048829 and -1.896102 + 0.0266336 = -1.8694684.
  close(p.data[0]!, 0.8048829, 1e-6, 'p0 decimal');
  close(p.data[1]!, -1.8694684, 1e-6, 'p1 decimal');
});

test('AdamW: zero weight decay is Adam, and the first step moves each weight by lr against the gradient sign', () => {
  const p = param('w', [0.3, 0.3, 0.3], [1e-3, -50, 0]);
  const opt = new AdamW([p], { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-12, weightDecay: 0 });
  opt.step();
  // m_hat = g, v_hat = g^2: the step is lr * g / |g| whatever the gradient's size; zero gradient -> no move.
  close(p.data[0]!, 0.3 - 0.01, 1e-7, 'small gradient');
  close(p.data[1]!, 0.3 + 0.01, 1e-7, 'large gradient');
  assert.equal(p.data[2], Math.fround(0.3));
});

test('AdamW: a restored state continues bit for bit', () => {
  const grads = [[0.1, -0.2, 0.3], [0.05, 0.4, -0.1], [-0.3, 0.2, 0.2]];
  const opts = { lr: 0.05, beta1: 0.9, beta2: 0.99, eps: 1e-5, weightDecay: 0.1 };
  const a = param('a', [1, 2, 3], [0, 0, 0]);
  const optA = new AdamW([a], opts);
  for (const g of grads) { a.grad.set(g); optA.step(); }

  const b = param('a', [1, 2, 3], [0, 0, 0]);
  const optB = new AdamW([b], opts);
  b.grad.set(grads[0]!); optB.step();
  const saved = optB.getState();
  const c = param('a', Array.from(b.data), [0, 0, 0]);
  const optC = new AdamW([c], opts);
  optC.setState(saved);
  for (const g of grads.slice(1)) { c.grad.set(g); optC.step(); }
  assert.deepEqual(Array.from(c.data), Array.from(a.data));
  assert.equal(optC.stepCount, 3);
});

test('AdamW: bad options and mismatched states are refused with the reason', () => {
  const p = param('w', [1], [0]);
  const ok = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
  assert.throws(() => new AdamW([p], { ...ok, lr: -1 }), /lr must be >= 0/);
  assert.throws(() => new AdamW([p], { ...ok, beta1: 1 }), /beta1 must be in \[0, 1\)/);
  assert.throws(() => new AdamW([p], { ...ok, beta2: -0.1 }), /beta2 must be in \[0, 1\)/);
  assert.throws(() => new AdamW([p], { ...ok, eps: 0 }), /eps must be > 0/);
  assert.throws(() => new AdamW([p], { ...ok, weightDecay: -1 }), /weightDecay must be >= 0/);
  assert.throws(() => new AdamW([p, param('w', [2], [0])], ok), /duplicate parameter name w/);
  const opt = new AdamW([p], ok);
  assert.throws(() => opt.setState({ step: 1, m: {}, v: {} }), /no moment buffers for parameter w/);
  assert.throws(() => opt.setState({ step: 1, m: { w: new Float32Array(2) }, v: { w: new Float32Array(2) } }), /w have 2\/2 values; expected 1/);
  assert.throws(() => opt.setState({ step: 1, m: { w: new Float32Array(1), x: new Float32Array(1) }, v: { w: new Float32Array(1) } }), /unknown parameters: x/);
  assert.throws(() => opt.setState({ step: -1, m: { w: new Float32Array(1) }, v: { w: new Float32Array(1) } }), /step must be a non-negative integer/);
});

test('clipGradNorm: global norm over all parameters, scaled by max / (norm + 1e-6) only when above', () => {
  // |(3, 4, 12)| = 13.
  const a = param('a', [0, 0], [3, 4]);
  const b = param('b', [0], [12]);
  const norm = clipGradNorm([a, b], 6.5);
  assert.equal(norm, 13);
  const coef = 6.5 / (13 + 1e-6);
  close(a.grad[0]!, 3 * coef, 1e-6, 'a0'); close(a.grad[1]!, 4 * coef, 1e-6, 'a1'); close(b.grad[0]!, 12 * coef, 1e-6, 'b0');
  // Below the threshold nothing changes.
  const c = param('c', [0], [0.25]);
  assert.equal(clipGradNorm([c], 0.5), 0.25);
  assert.equal(c.grad[0], 0.25);
  assert.throws(() => clipGradNorm([c], 0), /maxNorm must be > 0/);
  c.grad[0] = NaN;
  assert.throws(() => clipGradNorm([c], 1), /gradient norm is NaN/);
});

test('annealedLr: CleanRL linear schedule over 346 updates', () => {
  assert.equal(annealedLr(5e-4, 1, 346), 5e-4);
  // update 174: 1 - 173/346 = 0.5
  close(annealedLr(5e-4, 174, 346), 2.5e-4, 1e-18, 'midpoint');
  // last update: 1 - 345/346 = 1/346
  close(annealedLr(5e-4, 346, 346), 5e-4 / 346, 1e-18, 'last');
  assert.throws(() => annealedLr(5e-4, 0, 346), /update must be an integer in \[1, 346\], got 0/);
  assert.throws(() => annealedLr(5e-4, 347, 346), /got 347/);
});

test('AdamW: a parameter with lrScale takes its step (decay included) with lr * lrScale, the others with lr', () => {
  // Step 1 by hand (see the first test): p <- p (1 - lr_p wd) - lr_p g / (|g| + eps) with lr_p = 0.1 * 0.25.
  const scaled = { ...param('backbone', [1, -2], [0.5, -1]), lrScale: 0.25 };
  const plain = param('head', [1, -2], [0.5, -1]);
  const opt = new AdamW([scaled, plain], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
  opt.step();
  close(scaled.data[0]!, 1 * (1 - 0.025 * 0.01) - (0.025 * 0.5) / (0.5 + 1e-8), 1e-6, 'scaled p0');
  close(scaled.data[1]!, -2 * (1 - 0.025 * 0.01) + (0.025 * 1) / (1 + 1e-8), 1e-6, 'scaled p1');
  close(plain.data[0]!, 0.999 - (0.1 * 0.5) / (0.5 + 1e-8), 1e-6, 'plain p0');
  const frozen = { ...param('x', [1], [1]), lrScale: 0 };
  new AdamW([frozen], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 }).step();
  assert.equal(frozen.data[0], 1, 'lrScale 0 leaves the tensor unchanged');
  assert.throws(() => new AdamW([{ ...param('y', [1], [1]), lrScale: -1 }], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }), /y\.lrScale must be a finite number >= 0, got -1/);
});
