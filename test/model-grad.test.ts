// Gradients of the trainable part (top K layers, final norm, policy and value heads) against
// central finite differences of the independent float64 reference, on both backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend } from '../src/kernels/backend.js';
import { LlamaModel } from '../src/model/llama.js';
import type { Param as NamedParam } from '../src/model/param.js';
import { ValueHead, type PolicyHeadKind } from '../src/model/heads.js';
import { ActionPolicyHead as PolicyHead } from '../src/rl/action-head.js';
import { LAYER_TENSOR_NAMES, type LayerKey } from '../src/model/weights.js';
import type { LlamaConfig } from '../src/model/config.js';
import { Rng } from '../src/util/rng.js';
import { randomIds, refLayers, testConfig, testWeights, toRef, type RefWeights, type Rows } from './model-ref.js';
import { nativeBackend, needsNative, tsBackend } from './model-backends.js';
import { backwardInput, boundaryOf } from './model-passes.js';
import { checkTensor } from './finite-diff.js';

const ACTION_IDS = [17, 4, 60];

/** Everything the float64 loss depends on, by parameter name. */
interface RefState {
  ref: RefWeights;
  headW: Float64Array; headB: Float64Array; valW: Float64Array; valB: Float64Array;
  byName: Map<string, Float64Array>;
}

function refState(cfg: LlamaConfig, model: LlamaModel, policy: PolicyHead, value: ValueHead): RefState {
  const ref = toRef(model.weights);
  const headW = Float64Array.from(policy.weight), headB = Float64Array.from(policy.bias);
  const valW = Float64Array.from(value.weight), valB = Float64Array.from(value.bias);
  const byName = new Map<string, Float64Array>();
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    for (const key of Object.keys(LAYER_TENSOR_NAMES) as LayerKey[]) {
      const t = ref.layers[l]![key];
      if (t) byName.set(`model.layers.${l}.${LAYER_TENSOR_NAMES[key]}`, t);
    }
  }
  byName.set('model.norm.weight', ref.norm);
  byName.set('policy_head.weight', headW); byName.set('policy_head.bias', headB);
  byName.set('value_head.weight', valW); byName.set('value_head.bias', valB);
  return { ref, headW, headB, valW, valB, byName };
}

function rmsnorm64(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => w[i]! * v * r);
}

/** loss = sum_a coef_a * log pi(a) (legal a) + cv * V, at the last position, in float64. */
function refLoss(cfg: LlamaConfig, s: RefState, boundary: Rows, coef: number[], cv: number, legal: boolean[]): number {
  const x = refLayers(cfg, s.ref, boundary, cfg.num_hidden_layers - K, cfg.num_hidden_layers);
  const h = rmsnorm64(x[x.length - 1]!, s.ref.norm, cfg.rms_norm_eps);
  const C = cfg.hidden_size;
  const z = [0, 1, 2].map((a) => {
    let t = s.headB[a]!;
    for (let c = 0; c < C; c++) t += s.headW[a * C + c]! * h[c]!;
    return t;
  });
  const m = Math.max(...z.filter((_, a) => legal[a]));
  const lse = m + Math.log(z.reduce((acc, za, a) => acc + (legal[a] ? Math.exp(za - m) : 0), 0));
  let loss = 0;
  for (let a = 0; a < 3; a++) if (legal[a]) loss += coef[a]! * (z[a]! - lse);
  let v = s.valB[0]!;
  for (let c = 0; c < C; c++) v += s.valW[c]! * h[c]!;
  return loss + cv * v;
}

const K = 2;

interface Setup {
  cfg: LlamaConfig; model: LlamaModel; policy: PolicyHead; value: ValueHead;
  ids: number[]; boundary: Float32Array; T: number; coef: number[]; cv: number; legal: boolean[];
}

function setup(be: Backend, tied: boolean, kind: PolicyHeadKind, legal: boolean[], T = 7): Setup {
  const cfg = testConfig(tied);
  const model = new LlamaModel(cfg, testWeights(cfg, tied ? 31 : 32), be, { trainableLayers: K });
  const policy = new PolicyHead(be, { kind, lmHead: model.lmHead, C: cfg.hidden_size, actionTokenIds: ACTION_IDS, seed: kind === 'linear' ? 3 : undefined });
  const value = new ValueHead(be, cfg.hidden_size);
  const rng = new Rng(77);
  // Non-zero heads so that every path carries gradient (they start at 0 otherwise).
  for (let i = 0; i < value.weight.length; i++) value.weight[i] = 0.5 * rng.normal();
  value.bias[0] = 0.3;
  if (kind === 'linear') for (let i = 0; i < 3; i++) policy.bias[i] = 0.2 * rng.normal();
  const ids = randomIds(rng, T, cfg.vocab_size);
  const boundary = boundaryOf(model, ids);
  return { cfg, model, policy, value, ids, boundary, T, coef: [0.7, -1.3, 0.4], cv: 0.9, legal };
}

/** Analytic gradients: the parameter list and the boundary gradient. */
function analytic(s: Setup): { params: NamedParam[]; dBoundary: Float32Array } {
  const { model, policy, value, cfg } = s;
  model.zeroGrads();
  for (const p of [...policy.params(), ...value.params()]) p.grad.fill(0);
  const acts = model.trainForward(s.ids, s.boundary);
  const h = acts.hidden;
  const out = policy.forward(h, s.legal);
  value.forward(h);
  const dh = new Float32Array(cfg.hidden_size);
  policy.backward(h, out, s.coef.map((c, a) => (s.legal[a] ? c : 0)), dh);
  value.backward(h, s.cv, dh);
  const dB = backwardInput(model, acts, dh);
  return { params: [...model.params(), ...policy.params(), ...value.params()], dBoundary: dB };
}

function boundaryRows(b: Float32Array, T: number, C: number): Rows {
  return Array.from({ length: T }, (_, t) => Float64Array.from(b.subarray(t * C, (t + 1) * C)));
}

function gradCheck(be: Backend, tied: boolean, kind: PolicyHeadKind, legal: boolean[], tol: number): void {
  const s = setup(be, tied, kind, legal);
  const { params, dBoundary } = analytic(s);
  const st = refState(s.cfg, s.model, s.policy, s.value);
  const bRows = boundaryRows(s.boundary, s.T, s.cfg.hidden_size);
  const f = (): number => refLoss(s.cfg, st, bRows, s.coef, s.cv, s.legal);
  const rng = new Rng(5);
  const expected = kind === 'linear' ? 9 * K + 1 + 4 : 9 * K + 1 + 2;
  assert.equal(params.length, expected);
  for (const p of params) {
    const target = st.byName.get(p.name);
    assert.ok(target, `no reference tensor for ${p.name}`);
    const err = checkTensor(p.name, p.grad, target!, f, rng);
    assert.ok(err < tol, `${be.name} ${p.name}: error ${err.toExponential(2)} >= ${tol}`);
  }
  // The boundary input: perturb entries of the float64 boundary rows.
  const flat = new Float64Array(s.T * s.cfg.hidden_size);
  const C = s.cfg.hidden_size;
  const fb = (): number => {
    for (let t = 0; t < s.T; t++) bRows[t]!.set(flat.subarray(t * C, (t + 1) * C));
    return f();
  };
  flat.set(s.boundary);
  const err = checkTensor('boundary', dBoundary, flat, fb, rng, 10);
  assert.ok(err < tol, `${be.name} boundary: error ${err.toExponential(2)} >= ${tol}`);
}

const ALL = [true, true, true];
for (const [tied, kind, legal] of [[true, 'lm', ALL], [false, 'lm', [true, false, true]], [true, 'linear', ALL], [false, 'linear', ALL]] as const) {
  const label = `${tied ? 'tied' : 'untied'}, ${kind} head${legal.includes(false) ? ', masked' : ''}`;
  test(`gradients match finite differences, TypeScript backend (${label})`, () => {
    gradCheck(tsBackend, tied, kind, [...legal], 3e-5);
  });
  test(`gradients match finite differences, native backend (${label})`, { skip: needsNative }, () => {
    gradCheck(nativeBackend!, tied, kind, [...legal], 3e-4);
  });
}

test('several output rows: gradients of sum(R * hidden) match finite differences', () => {
  const cfg = testConfig(true);
  const model = new LlamaModel(cfg, testWeights(cfg, 40), tsBackend, { trainableLayers: 2 });
  const rng = new Rng(8);
  const T = 6, n = 3, C = cfg.hidden_size;
  const ids = randomIds(rng, T, cfg.vocab_size);
  const boundary = boundaryOf(model, ids);
  const R = Float64Array.from({ length: n * C }, () => rng.normal());
  const acts = model.trainForward(ids, boundary, { outRows: n });
  model.zeroGrads();
  const dB = backwardInput(model, acts, Float32Array.from(R));
  const ref = toRef(model.weights);
  const bRows = boundaryRows(boundary, T, C);
  const f = (): number => {
    const x = refLayers(cfg, ref, bRows, 1, 3);
    let loss = 0;
    for (let r = 0; r < n; r++) {
      const h = rmsnorm64(x[T - n + r]!, ref.norm, cfg.rms_norm_eps);
      for (let c = 0; c < C; c++) loss += R[r * C + c]! * h[c]!;
    }
    return loss;
  };
  for (const p of model.params()) {
    const [, , l, ...rest] = p.name.split('.');
    const key = (Object.keys(LAYER_TENSOR_NAMES) as LayerKey[]).find((k) => LAYER_TENSOR_NAMES[k] === rest.join('.'));
    const target = p.name === 'model.norm.weight' ? ref.norm : ref.layers[Number(l)]![key!]!;
    const err = checkTensor(p.name, p.grad, target, f, rng, 4);
    assert.ok(err < 1e-4, `${p.name}: error ${err}`);
  }
  const flat = Float64Array.from(boundary);
  const err = checkTensor('boundary', dB, flat, () => {
    for (let t = 0; t < T; t++) bRows[t]!.set(flat.subarray(t * C, (t + 1) * C));
    return f();
  }, rng, 10);
  assert.ok(err < 1e-4, `boundary: error ${err}`);
});

test('backward accumulates into the gradients', () => {
  const s = setup(tsBackend, true, 'linear', ALL);
  const once = analytic(s).params.map((p) => p.grad.slice());
  // a second backward without zeroing doubles every gradient
  const acts = s.model.trainForward(s.ids, s.boundary);
  const out = s.policy.forward(acts.hidden, s.legal);
  const dh = new Float32Array(s.cfg.hidden_size);
  s.policy.backward(acts.hidden, out, s.coef, dh);
  s.value.backward(acts.hidden, s.cv, dh);
  s.model.backward(acts, dh);
  const twice = [...s.model.params(), ...s.policy.params(), ...s.value.params()];
  twice.forEach((p, i) => {
    for (let j = 0; j < p.grad.length; j += 37) assert.ok(Math.abs(p.grad[j]! - 2 * once[i]![j]!) <= 1e-6 * Math.max(1, Math.abs(once[i]![j]!)), p.name);
  });
  assert.throws(() => s.model.backward(acts, new Float32Array(5)), /dHidden has 5 values, expected n\*C = 1\*48/);
  assert.throws(() => s.model.trainForward(s.ids.slice(0, 6), s.boundary), /boundary has 336 values, expected T\*C = 6\*48 = 288/);
  assert.throws(() => s.model.trainForward(s.ids, s.boundary, { outRows: 8 }), /outRows must be an integer in 1\.\.7/);
});

test('native and TypeScript gradients agree on a longer sequence', { skip: needsNative }, () => {
  const cfg = testConfig(true, { max_position_embeddings: 256 });
  const w = testWeights(cfg, 50);
  const ids = randomIds(new Rng(3), 60, cfg.vocab_size);
  const grads = [tsBackend, nativeBackend!].map((be) => {
    const m = new LlamaModel(cfg, w, be, { trainableLayers: 2 });
    const b = boundaryOf(m, ids);
    const acts = m.trainForward(ids, b, { outRows: 2 });
    const dH = Float32Array.from({ length: 2 * cfg.hidden_size }, (_, i) => Math.sin(i));
    m.zeroGrads();
    const dB = backwardInput(m, acts, dH);
    return { params: m.params().map((p) => p.grad.slice()), dB };
  });
  const rel = (a: Float32Array, b: Float32Array): number => {
    let num = 0, den = 0;
    for (let i = 0; i < a.length; i++) { num = Math.max(num, Math.abs(a[i]! - b[i]!)); den = Math.max(den, Math.abs(b[i]!)); }
    return num / den;
  };
  grads[0]!.params.forEach((g, i) => assert.ok(rel(grads[1]!.params[i]!, g) < 1e-4, `param ${i}: ${rel(grads[1]!.params[i]!, g)}`));
  assert.ok(rel(grads[1]!.dB, grads[0]!.dB) < 1e-4);
});
