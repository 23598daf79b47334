import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ppoSampleLoss, type LossCoefficients, type LossSample } from '../src/rl/loss.js';

const COEFS: LossCoefficients = { clipCoef: 0.2, clipVloss: true, entCoef: 0.05, vfCoef: 0.5, klCoef: 0.05 };
const logs = (ps: number[]) => Float64Array.from(ps.map(Math.log));

test('ppoSampleLoss: every term by hand on one sample', () => {
  // pi = [0.5, 0.25, 0.25], action 0 with old prob 0.4 -> ratio 1.25; A = 2; c = 0.2.
  //   pg = max(-2 * 1.25, -2 * 1.2) = max(-2.5, -2.4) = -2.4 (the clipped term: zero policy gradient)
  //   H = -(0.5 ln 0.5 + 2 * 0.25 ln 0.25) = 0.5 ln 2 + ln 2 = 1.5 ln 2
  //   KL to the uniform reference = sum p (ln p - ln 1/3) = ln 3 - H
  //   V = 1.0, V_old = 0.5, R = 0.8: unclipped (1.0 - 0.8)^2 = 0.04; clipped V = 0.5 + 0.2 = 0.7,
  //   (0.7 - 0.8)^2 = 0.01; v = 0.5 * max = 0.02; dv/dV = 1.0 - 0.8 = 0.2
  //   approx_kl = (1.25 - 1) - ln 1.25
  const s: LossSample = {
    logProbs: logs([0.5, 0.25, 0.25]), value: 1.0, action: 0, oldLogProb: Math.log(0.4), oldValue: 0.5,
    advantage: 2, ret: 0.8, refLogProbs: logs([1 / 3, 1 / 3, 1 / 3]),
  };
  const r = ppoSampleLoss(s, COEFS);
  const H = 1.5 * Math.LN2, KL = Math.log(3) - 1.5 * Math.LN2;
  const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);
  near(r.pgLoss, -2.4, 'pg');
  near(r.entropy, H, 'entropy');
  near(r.klRef, KL, 'kl_ref');
  near(r.vLoss, 0.02, 'value loss');
  near(r.loss, -2.4 - 0.05 * H + 0.5 * 0.02 + 0.05 * KL, 'total');
  near(r.approxKl, 0.25 - Math.log(1.25), 'approx_kl');
  assert.equal(r.clipped, true);
  near(r.dValue, 0.5 * 0.2, 'dValue');
  // dL/dl_b = ent * p_b (l_b + 1) + kl * p_b (l_b - r_b + 1); the pg term is clipped away.
  for (let b = 0; b < 3; b++) {
    const p = [0.5, 0.25, 0.25][b]!, l = Math.log(p);
    near(r.dLogProbs[b]!, 0.05 * p * (l + 1) + 0.05 * p * (l - Math.log(1 / 3) + 1), `dLogProbs[${b}]`);
  }
});

/** Central differences of the scalar loss in (l_0, l_1, l_2, V) as free variables. */
function finiteDifferences(s: LossSample, c: LossCoefficients): { dl: number[]; dv: number } {
  const h = 1e-6;
  const f = (lp: Float64Array, v: number) => ppoSampleLoss({ ...s, logProbs: lp, value: v }, c).loss;
  const dl = [0, 1, 2].map((b) => {
    const up = Float64Array.from(s.logProbs), dn = Float64Array.from(s.logProbs);
    up[b]! += h; dn[b]! -= h;
    return (f(up, s.value) - f(dn, s.value)) / (2 * h);
  });
  return { dl, dv: (f(s.logProbs, s.value + h) - f(s.logProbs, s.value - h)) / (2 * h) };
}

test('ppoSampleLoss: the hand-written gradient matches finite differences in every regime', () => {
  const ref = logs([0.2, 0.5, 0.3]);
  const cases: Array<[string, Partial<LossSample>, Partial<LossCoefficients>]> = [
    ['A > 0, ratio inside the clip range', { advantage: 1.3, oldLogProb: Math.log(0.45) }, {}],
    ['A > 0, ratio above 1 + c (clipped)', { advantage: 1.3, oldLogProb: Math.log(0.3) }, {}],
    ['A > 0, ratio below 1 - c (unclipped)', { advantage: 1.3, oldLogProb: Math.log(0.7) }, {}],
    ['A < 0, ratio above 1 + c (unclipped)', { advantage: -0.7, oldLogProb: Math.log(0.3) }, {}],
    ['A < 0, ratio below 1 - c (clipped)', { advantage: -0.7, oldLogProb: Math.log(0.7) }, {}],
    ['value far outside the clip range, clipped square larger', { value: 2.0, oldValue: 0.1, ret: 3.0 }, {}],
    ['value outside the clip range, unclipped square larger', { value: 2.0, oldValue: 1.5, ret: 0.5 }, {}],
    ['no value clipping', { value: 2.0, oldValue: 0.1, ret: 3.0 }, { clipVloss: false }],
    ['another action and larger coefficients', { action: 2, advantage: 0.4, oldLogProb: Math.log(0.27) }, { entCoef: 0.3, klCoef: 0.7, vfCoef: 1.5 }],
  ];
  for (const [name, over, coefOver] of cases) {
    const s: LossSample = {
      logProbs: logs([0.5, 0.2, 0.3]), value: 0.4, action: 0, oldLogProb: Math.log(0.45), oldValue: 0.35,
      advantage: 1, ret: 0.9, refLogProbs: ref, ...over,
    };
    const c = { ...COEFS, ...coefOver };
    const r = ppoSampleLoss(s, c);
    const fd = finiteDifferences(s, c);
    for (let b = 0; b < 3; b++) assert.ok(Math.abs(r.dLogProbs[b]! - fd.dl[b]!) < 1e-6, `${name}: dLogProbs[${b}] ${r.dLogProbs[b]} vs ${fd.dl[b]}`);
    assert.ok(Math.abs(r.dValue - fd.dv) < 1e-6, `${name}: dValue ${r.dValue} vs ${fd.dv}`);
  }
});

test('ppoSampleLoss: KL to the reference is 0 for the reference itself and grows away from it', () => {
  const ref = logs([0.2, 0.5, 0.3]);
  const base: LossSample = { logProbs: ref, value: 0, action: 1, oldLogProb: ref[1]!, oldValue: 0, advantage: 0, ret: 0, refLogProbs: ref };
  assert.equal(ppoSampleLoss(base, COEFS).klRef, 0);
  assert.equal(ppoSampleLoss(base, COEFS).approxKl, 0);
  const near = ppoSampleLoss({ ...base, logProbs: logs([0.25, 0.45, 0.3]) }, COEFS).klRef;
  const far = ppoSampleLoss({ ...base, logProbs: logs([0.6, 0.1, 0.3]) }, COEFS).klRef;
  // KL by definition: sum p ln(p / q).
  const kl = (p: number[], q: number[]) => p.reduce((s, pi, i) => s + pi * Math.log(pi / q[i]!), 0);
  assert.ok(Math.abs(near - kl([0.25, 0.45, 0.3], [0.2, 0.5, 0.3])) < 1e-12);
  assert.ok(Math.abs(far - kl([0.6, 0.1, 0.3], [0.2, 0.5, 0.3])) < 1e-12);
  assert.ok(0 < near && near < far);
});
