import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MlpPolicy, orthogonalInit } from '../src/rl/mlp-policy.js';
import { zeroGrads } from '../src/rl/policy.js';
import type { Observation } from '../src/env/types.js';
import { Rng } from '../src/util/rng.js';

const OBS = { asset: 'T', date: '2020-01-02', t: 0, step: 0, dates: [], prices: [], text: [], account: { position: 0, cash: 1, shares: 0, value: 1, cumulativeReturn: 0 } } as Observation;

function makePolicy(seed: number, inputDim = 5, hidden = [7, 6]): MlpPolicy {
  return new MlpPolicy({ inputDim, hidden, rng: new Rng(seed), featurize: () => new Float32Array(inputDim) });
}

/** Independent float64 forward of the same architecture, from the named params. */
function referenceForward(policy: MlpPolicy, x: Float32Array): { logProbs: number[]; value: number } {
  const byName = new Map(policy.params().map((p) => [p.name, p]));
  let h = Array.from(x);
  for (let l = 0; byName.has(`trunk.${l}.weight`); l++) {
    const W = byName.get(`trunk.${l}.weight`)!, b = byName.get(`trunk.${l}.bias`)!;
    const [out, inn] = W.shape as [number, number];
    const next: number[] = [];
    for (let o = 0; o < out; o++) {
      let s = b.data[o]!;
      for (let i = 0; i < inn; i++) s += W.data[o * inn + i]! * h[i]!;
      next.push(Math.tanh(s));
    }
    h = next;
  }
  const pw = byName.get('policy.weight')!, pb = byName.get('policy.bias')!, vw = byName.get('value.weight')!, vb = byName.get('value.bias')!;
  const logits = [0, 1, 2].map((a) => pb.data[a]! + h.reduce((s, hi, i) => s + pw.data[a * h.length + i]! * hi, 0));
  const m = Math.max(...logits);
  const lse = m + Math.log(logits.reduce((s, z) => s + Math.exp(z - m), 0));
  return { logProbs: logits.map((z) => z - lse), value: vb.data[0]! + h.reduce((s, hi, i) => s + vw.data[i]! * hi, 0) };
}

test('MlpPolicy: forward agrees with an independent float64 forward', () => {
  const policy = makePolicy(3);
  // Give the heads larger weights than the 0.01-gain init so that the log-probs are far from uniform.
  const rng = new Rng(99);
  for (const p of policy.params()) for (let i = 0; i < p.data.length; i++) p.data[i] = rng.normal() * 0.7;
  const x = Float32Array.from([0.3, -1.2, 0.5, 2.0, -0.1]);
  const out = policy.forward(x);
  const ref = referenceForward(policy, x);
  for (let a = 0; a < 3; a++) assert.ok(Math.abs(out.logProbs[a]! - ref.logProbs[a]!) < 1e-12, `logProb ${a}`);
  assert.ok(Math.abs(out.value - ref.value) < 1e-12);
  assert.ok(Math.abs(Array.from(out.logProbs).reduce((s, l) => s + Math.exp(l), 0) - 1) < 1e-12, 'probabilities sum to 1');
});

test('MlpPolicy: backward matches central finite differences of a scalar loss (float64)', () => {
  const policy = makePolicy(5);
  const rng = new Rng(7);
  for (const p of policy.params()) for (let i = 0; i < p.data.length; i++) p.data[i] = rng.normal() * 0.5;
  const x = Float32Array.from([0.4, -0.9, 1.1, 0.2, -0.6]);
  // L = sum_a c_a * logProbs[a] + d * value, with arbitrary c and d.
  const c = Float64Array.from([0.7, -1.3, 0.4]), d = -0.8;
  const lossOf = () => {
    const o = policy.forward(x);
    return c[0]! * o.logProbs[0]! + c[1]! * o.logProbs[1]! + c[2]! * o.logProbs[2]! + d * o.value;
  };
  zeroGrads(policy.params());
  const out = policy.forward(x);
  policy.backward(out.handle, c, d);
  let checked = 0, worst = 0;
  for (const p of policy.params()) {
    for (let i = 0; i < p.data.length; i++) {
      const x0 = p.data[i]!;
      // Weights are float32: use the perturbations actually stored.
      p.data[i] = x0 + 1e-3; const up = p.data[i]!; const lUp = lossOf();
      p.data[i] = x0 - 1e-3; const dn = p.data[i]!; const lDn = lossOf();
      p.data[i] = x0;
      const fd = (lUp - lDn) / (up - dn);
      const err = Math.abs(fd - p.grad[i]!) / Math.max(1e-3, Math.abs(fd));
      worst = Math.max(worst, err);
      assert.ok(err < 1e-4, `${p.name}[${i}]: analytic ${p.grad[i]} vs finite difference ${fd}`);
      checked++;
    }
  }
  assert.equal(checked, 5 * 7 + 7 + 7 * 6 + 6 + 3 * 6 + 3 + 6 + 1);
  // backward accumulates: a second call doubles every gradient.
  const before = policy.params().map((p) => Float32Array.from(p.grad));
  policy.backward(policy.forward(x).handle, c, d);
  policy.params().forEach((p, k) => p.grad.forEach((g, i) => assert.ok(Math.abs(g - 2 * before[k]![i]!) <= 1e-6 * Math.max(1, Math.abs(g)))));
});

test('MlpPolicy: orthogonal init with CleanRL gains, near-uniform initial policy, zero biases', () => {
  const policy = makePolicy(11, 5, [7, 6]);
  const byName = new Map(policy.params().map((p) => [p.name, p]));
  // Gram matrix of rows (rows <= cols) or columns (rows > cols) must be gain^2 * I.
  const gram = (name: string, gain: number) => {
    const p = byName.get(name)!;
    const [r, c] = p.shape as [number, number];
    const byRows = r <= c, n = byRows ? r : c, m = byRows ? c : r;
    const at = (k: number, i: number) => (byRows ? p.data[k * c + i]! : p.data[i * c + k]!);
    for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += at(a, i) * at(b, i);
      assert.ok(Math.abs(s - (a === b ? gain * gain : 0)) < 1e-5 * Math.max(1, gain * gain), `${name} gram[${a}][${b}] = ${s}`);
    }
  };
  gram('trunk.0.weight', Math.SQRT2); // [7, 5]: columns orthonormal
  gram('trunk.1.weight', Math.SQRT2); // [6, 7]: rows orthonormal
  gram('policy.weight', 0.01);
  gram('value.weight', 1);
  for (const name of ['trunk.0.bias', 'trunk.1.bias', 'policy.bias', 'value.bias']) assert.ok(byName.get(name)!.data.every((v) => v === 0), name);
  const { logProbs } = policy.forward(Float32Array.from([1, -1, 0.5, 0.2, -0.3]));
  const entropy = -Array.from(logProbs).reduce((s, l) => s + Math.exp(l) * l, 0);
  assert.ok(Math.abs(entropy - Math.log(3)) < 1e-3, `initial entropy ${entropy}`);
});

test('MlpPolicy: the same seed gives the same weights, another seed different ones', () => {
  const a = makePolicy(1), b = makePolicy(1), c = makePolicy(2);
  assert.deepEqual(a.params().map((p) => Array.from(p.data)), b.params().map((p) => Array.from(p.data)));
  assert.notDeepEqual(a.params().map((p) => Array.from(p.data)), c.params().map((p) => Array.from(p.data)));
  assert.deepEqual(a.params().map((p) => p.name), ['trunk.0.weight', 'trunk.0.bias', 'trunk.1.weight', 'trunk.1.bias', 'policy.weight', 'policy.bias', 'value.weight', 'value.bias']);
});

test('MlpPolicy: the reference policy is the frozen initial policy', () => {
  const policy = makePolicy(4);
  const x = Float32Array.from([0.5, 0.5, -0.5, 1, 0]);
  const ref0 = Array.from(policy.referenceLogProbs(x));
  assert.deepEqual(Array.from(policy.forward(x).logProbs), ref0);
  for (const p of policy.params()) p.data.fill(0.3);
  assert.notDeepEqual(Array.from(policy.forward(x).logProbs), ref0);
  assert.deepEqual(Array.from(policy.referenceLogProbs(x)), ref0);
});

test('MlpPolicy: bad features and bad shapes are refused', () => {
  const wrong = new MlpPolicy({ inputDim: 3, hidden: [4], rng: new Rng(1), featurize: () => new Float32Array(2) });
  assert.throws(() => wrong.encode(OBS), /feature vector for 2020-01-02 has 2 values; expected 3/);
  const nan = new MlpPolicy({ inputDim: 2, hidden: [4], rng: new Rng(1), featurize: () => Float32Array.from([0, NaN]) });
  assert.throws(() => nan.encode(OBS), /feature 1 for T on 2020-01-02 is NaN; expected a finite number/);
  assert.throws(() => new MlpPolicy({ inputDim: 0, hidden: [4], rng: new Rng(1), featurize: () => new Float32Array(0) }), /inputDim must be a positive integer/);
  assert.throws(() => new MlpPolicy({ inputDim: 2, hidden: [], rng: new Rng(1), featurize: () => new Float32Array(2) }), /at least one layer/);
  assert.throws(() => new MlpPolicy({ inputDim: 2, hidden: [4, 0], rng: new Rng(1), featurize: () => new Float32Array(2) }), /hidden sizes must be positive integers, got \[4, 0\]/);
});

test('orthogonalInit: a square matrix becomes gain times an orthogonal matrix', () => {
  const n = 4, out = new Float32Array(n * n);
  orthogonalInit(out, n, n, 2, new Rng(3));
  for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) {
    let rows = 0, cols = 0;
    for (let i = 0; i < n; i++) { rows += out[a * n + i]! * out[b * n + i]!; cols += out[i * n + a]! * out[i * n + b]!; }
    assert.ok(Math.abs(rows - (a === b ? 4 : 0)) < 1e-5 && Math.abs(cols - (a === b ? 4 : 0)) < 1e-5);
  }
});
