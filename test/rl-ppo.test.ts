import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeGae, explainedVariance, normalisedAdvantages, PpoTrainer, TIMING_FIELDS, type PpoEnv, type UpdateMetrics } from '../src/rl/ppo.js';
import { PAPER_PPO, parseTrainConfig, type TrainConfig } from '../src/rl/config.js';
import type { ActorCritic, Param, PolicyStep } from '../src/rl/policy.js';
import { logSoftmax, logSoftmaxBackward } from '../src/model/heads.js';
import type { Action, Observation, StepResult } from '../src/env/types.js';

/** A scripted environment: episodes of `length` steps; reward +1 for buy, -1 for sell, 0 for hold. */
class ToyEnv implements PpoEnv {
  private s = { step: 0, episode: 0 };
  constructor(private readonly length: number, private readonly endReason: 'max-steps' | 'window-end' | 'ruined') {}
  private obs(): Observation {
    return { asset: 'TOY', date: `e${this.s.episode}s${this.s.step}`, t: this.s.step, step: this.s.step, dates: [], prices: [], text: [],
      account: { position: 0, cash: 1, shares: 0, value: 1, cumulativeReturn: 0 } };
  }
  reset(): Observation { this.s = { step: 0, episode: this.s.episode + 1 }; return this.obs(); }
  observe(): Observation { return this.obs(); }
  step(action: Action): StepResult {
    const reward = action === 'buy' ? 1 : action === 'sell' ? -1 : 0;
    this.s.step += 1;
    const done = this.s.step >= this.length;
    const info: StepResult['info'] = { date: 'x', position: 0, logReturn: 0, cost: 0 };
    if (done) info.endReason = this.endReason;
    return { observation: this.obs(), reward, done, info };
  }
  getState(): unknown { return { ...this.s }; }
  setState(state: { step: number; episode: number }): void { this.s = { ...state }; }
}

/** Observation-independent policy: logits theta[0..2], value theta[3]. */
class ConstPolicy implements ActorCritic<null> {
  readonly kind = 'const';
  readonly fingerprint = 'const';
  readonly p: Param;
  private readonly ref: Float64Array;
  constructor(logits: number[], value: number) {
    this.p = { name: 'theta', shape: [4], data: Float32Array.from([...logits, value]), grad: new Float32Array(4) };
    this.ref = logSoftmax(Array.from(this.p.data.subarray(0, 3)));
  }
  encode(): null { return null; }
  forward(): PolicyStep {
    const logProbs = logSoftmax(Array.from(this.p.data.subarray(0, 3)));
    return { logProbs, value: this.p.data[3]!, handle: logProbs };
  }
  backward(handle: unknown, dLogProbs: Float64Array, dValue: number): void {
    const dz = logSoftmaxBackward(handle as Float64Array, dLogProbs);
    for (let a = 0; a < 3; a++) this.p.grad[a]! += dz[a]!;
    this.p.grad[3]! += dValue;
  }
  params(): Param[] { return [this.p]; }
  referenceLogProbs(): Float64Array { return this.ref; }
}

function config(over: Partial<Record<keyof TrainConfig, unknown>>): TrainConfig {
  return parseTrainConfig({ policy: 'mlp', ...PAPER_PPO, ...over }, 'test');
}

test('computeGae: a hand-worked example with an episode end, two environments interleaved', () => {
  // Env 0 (samples 0, 2, 4): r = [1, 2, 3], V = 0.5 each, ended at t = 1, V_next = 1; gamma 0.9, lambda 0.8.
  //   t=2: delta = 3 + 0.9 * 1 - 0.5 = 3.4;           A = 3.4
  //   t=1: delta = 2 + 0 - 0.5 = 1.5 (ended);          A = 1.5
  //   t=0: delta = 1 + 0.9 * 0.5 - 0.5 = 0.95;         A = 0.95 + 0.72 * 1.5 = 2.03
  // Env 1 (samples 1, 3, 5): r = [0, 0, 1], V = [0, 1, 0], no end, V_next = 2.
  //   t=2: delta = 1 + 0.9 * 2 - 0 = 2.8;             A = 2.8
  //   t=1: delta = 0 + 0.9 * 0 - 1 = -1;              A = -1 + 0.72 * 2.8 = 1.016
  //   t=0: delta = 0 + 0.9 * 1 - 0 = 0.9;             A = 0.9 + 0.72 * 1.016 = 1.63152
  const rewards = Float64Array.from([1, 0, 2, 0, 3, 1]);
  const values = Float64Array.from([0.5, 0, 0.5, 1, 0.5, 0]);
  const ended = Uint8Array.from([0, 0, 1, 0, 0, 0]);
  const { advantages, returns } = computeGae(rewards, values, ended, Float64Array.from([1, 2]), 3, 2, 0.9, 0.8);
  const expected = [2.03, 1.63152, 1.5, 1.016, 3.4, 2.8];
  expected.forEach((a, k) => assert.ok(Math.abs(advantages[k]! - a) < 1e-12, `A[${k}] = ${advantages[k]} vs ${a}`));
  expected.forEach((a, k) => assert.ok(Math.abs(returns[k]! - (a + values[k]!)) < 1e-12));
  assert.throws(() => computeGae(rewards, values, ended, Float64Array.from([1]), 3, 2, 0.9, 0.8), /T \* E = 6 samples and E = 2/);
});

test('computeGae: equals the definition A_t = sum_l (gamma lambda)^l delta_{t+l} up to the episode end', () => {
  const T = 12, gamma = 0.95, lambda = 0.98;
  const rewards = Float64Array.from({ length: T }, (_, t) => Math.sin(t * 1.7) * 0.3);
  const values = Float64Array.from({ length: T }, (_, t) => Math.cos(t * 0.9));
  const ended = Uint8Array.from({ length: T }, (_, t) => (t === 4 || t === 9 ? 1 : 0));
  const next = 0.37;
  const { advantages } = computeGae(rewards, values, ended, Float64Array.from([next]), T, 1, gamma, lambda);
  for (let t = 0; t < T; t++) {
    let a = 0;
    for (let u = t; u < T; u++) {
      const vNext = ended[u] ? 0 : u === T - 1 ? next : values[u + 1]!;
      a += (gamma * lambda) ** (u - t) * (rewards[u]! + gamma * vNext - values[u]!);
      if (ended[u]) break;
    }
    assert.ok(Math.abs(advantages[t]! - a) < 1e-12, `t=${t}`);
  }
});

test('normalisedAdvantages: mean 0, sample std 1 over the minibatch; a single sample or norm_adv off is left alone', () => {
  const adv = Float64Array.from([9, 1, 2, 3, 4]);
  // Minibatch [1, 2, 3, 4] -> values 1..4: mean 2.5, std (ddof 1) = sqrt(5/3).
  const out = normalisedAdvantages([1, 2, 3, 4], adv, true);
  const sd = Math.sqrt(5 / 3);
  [1, 2, 3, 4].forEach((v, j) => assert.ok(Math.abs(out[j]! - (v - 2.5) / (sd + 1e-8)) < 1e-12));
  assert.deepEqual(Array.from(normalisedAdvantages([0], adv, true)), [9]);
  assert.deepEqual(Array.from(normalisedAdvantages([0, 4], adv, false)), [9, 4]);
});

test('explainedVariance: 1 for a perfect fit, 0 for the mean, null for constant returns', () => {
  const y = Float64Array.from([1, 2, 3]);
  assert.equal(explainedVariance(Float64Array.from([1, 2, 3]), y), 1);
  assert.equal(explainedVariance(Float64Array.from([2, 2, 2]), y), 0);
  // Var(y - yhat) = Var([1, 1, 1]) = 0 -> 1 (a constant offset is still explained: CleanRL's definition).
  assert.equal(explainedVariance(Float64Array.from([0, 1, 2]), y), 1);
  assert.equal(explainedVariance(Float64Array.from([0, 1, 2]), Float64Array.from([4, 4, 4])), null);
});

test('rollout: time-limit ends bootstrap with gamma * V(final observation), ruin and bootstrap_truncation=false do not', () => {
  for (const bootstrap of [true, false]) {
    const c = config({ num_envs: 2, num_steps: 3, total_timesteps: 6, minibatch_size: 6, gradient_accumulation_steps: 1, gamma: 0.9, reward_scale: 2, bootstrap_truncation: bootstrap });
    const policy = new ConstPolicy([5, -5, -5], 0.5); // almost always buy -> reward +1 per step
    const trainer = new PpoTrainer(policy, [new ToyEnv(2, 'max-steps'), new ToyEnv(2, 'ruined')], c);
    const ro = trainer.collectRollout();
    // Samples k = t * 2 + e. Episodes of 2 steps end at t = 1 in both envs.
    assert.deepEqual(Array.from(ro.ended), [0, 0, 1, 1, 0, 0]);
    assert.deepEqual(Array.from(ro.actions), [0, 0, 0, 0, 0, 0]);
    const boot = bootstrap ? 0.9 * Math.fround(0.5) : 0;
    assert.deepEqual(Array.from(ro.rewards), [2, 2, 2 + boot, 2, 2, 2]);
    assert.deepEqual(ro.completed, [{ ret: 2, len: 2 }, { ret: 2, len: 2 }]);
    assert.equal(ro.envRewardSum, 6);
    assert.deepEqual(Array.from(ro.nextValues), [0.5, 0.5]);
    assert.equal(trainer.globalStep, 6);
  }
});

function strip(m: UpdateMetrics): Record<string, unknown> {
  const o: Record<string, unknown> = { ...m };
  for (const f of TIMING_FIELDS) delete o[f];
  return o;
}

test('PPO on a bandit: the policy learns to buy; entropy falls and the KL to the reference grows', () => {
  const c = config({ num_steps: 40, total_timesteps: 40 * 60, learning_rate: 0.05, anneal_lr: false, ent_coef: 0.01, kl_coef: 0.01, reward_scale: 1 });
  const policy = new ConstPolicy([0, 0, 0], 0);
  const trainer = new PpoTrainer(policy, [new ToyEnv(10, 'max-steps')], c);
  const ms: UpdateMetrics[] = [];
  while (!trainer.finished) ms.push(trainer.runUpdate());
  const probs = Array.from(policy.forward().logProbs, Math.exp);
  assert.ok(probs[0]! > 0.9, `P(buy) = ${probs[0]}`);
  assert.ok(Math.abs(ms[0]!.entropy - Math.log(3)) < 1e-3);
  assert.ok(ms[ms.length - 1]!.entropy < 0.5);
  assert.ok(ms[0]!.kl_ref < 1e-3 && ms[ms.length - 1]!.kl_ref > 0.5);
  assert.equal(ms[ms.length - 1]!.optimizer_steps, 60 * 2);
  assert.equal(ms[ms.length - 1]!.global_step, 2400);
  assert.ok(ms[ms.length - 1]!.episode_return! > ms[0]!.episode_return!);
});

test('PPO: gradient accumulation only groups samples (same numbers as one micro-batch); target_kl stops epochs early', () => {
  const run = (over: Partial<Record<keyof TrainConfig, unknown>>) => {
    const c = config({ num_steps: 40, total_timesteps: 200, update_epochs: 3, ...over });
    const trainer = new PpoTrainer(new ConstPolicy([0.1, -0.2, 0.05], 0.3), [new ToyEnv(7, 'max-steps')], c);
    const ms: UpdateMetrics[] = [];
    while (!trainer.finished) ms.push(trainer.runUpdate());
    return ms;
  };
  const a = run({ gradient_accumulation_steps: 8 }), b = run({ gradient_accumulation_steps: 1 });
  assert.deepEqual(a.map(strip), b.map(strip));
  assert.ok(a.every((m) => m.epochs === 3));
  // After the first minibatch step the ratio moves, so an epoch's mean approx_kl is > 1e-12: stop after one epoch.
  const early = run({ target_kl: 1e-12 });
  assert.ok(early.every((m) => m.epochs === 1));
  assert.equal(early[early.length - 1]!.optimizer_steps, 5 * 2);
});

test('PpoTrainer: state round trip, and mismatches are refused', () => {
  const c = config({ num_steps: 40, total_timesteps: 120 });
  const t1 = new PpoTrainer(new ConstPolicy([0, 0, 0], 0), [new ToyEnv(7, 'max-steps')], c);
  t1.runUpdate();
  const state = t1.getState();
  assert.equal(state.update, 1);
  assert.equal(state.globalStep, 40);
  assert.deepEqual(state.envs, [{ step: 5, episode: 6 }]); // 40 = 5 * 7 + 5, after reset number 1 + 5
  assert.deepEqual(state.running, [{ ret: t1.getState().running[0]!.ret, len: 5 }]);
  const t2 = new PpoTrainer(new ConstPolicy([0, 0, 0], 0), [new ToyEnv(7, 'max-steps')], c);
  assert.throws(() => t2.setState(state), /optimizer step 0 does not match the state's 2/);
  assert.throws(() => t2.setState({ ...state, envs: [], running: [] }), /the state has 0 environments; this run has 1/);
  assert.throws(() => new PpoTrainer(new ConstPolicy([0, 0, 0], 0), [], c), /got 0 environments; the config says num_envs = 1/);
});
