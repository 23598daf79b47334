// The rollout's kept training activations (src/rl/rollout-activations.ts): the first minibatch after
// a rollout takes them instead of running the forward again, and everything it computes is the same
// to the bit as without them: rollout outputs, update outputs, gradients, and whole PPO updates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend } from '../src/kernels/index.js';
import { loadModel } from '../src/model/load.js';
import { LlmPolicy, type LlmInput } from '../src/rl/llm-policy.js';
import { syntheticMarket } from '../src/data/synthetic.js';
import { TradingEnv } from '../src/env/trading-env.js';
import type { Observation } from '../src/env/types.js';
import { parseTrainConfig } from '../src/rl/config.js';
import { createLlmPolicy } from '../src/rl/policies.js';
import { PpoTrainer } from '../src/rl/ppo.js';
import { loadRunSeries, trainWindow } from '../src/rl/data.js';
import { makeTrainEnvs } from '../src/rl/run.js';
import type { HeadNormScale } from '../src/rl/head-norm.js';

function observations(n: number): Observation[] {
  const env = new TradingEnv(syntheticMarket({ seed: 5, days: 80 }), { lookback: 20, start: 'fixed' });
  const out = [env.reset()];
  const acts = ['buy', 'hold', 'sell'] as const;
  for (let i = 1; i < n; i++) out.push(env.step(acts[i % 3]!).observation);
  return out;
}

interface Variant { head: 'lm' | 'linear'; headInput: 'last' | 'mean'; headNorm?: HeadNormScale }

async function pair(v: Variant, keptBytes: number): Promise<[LlmPolicy, LlmPolicy]> {
  // Each policy its own copy of the weights (the trainable layers are trained in place).
  const mk = async (rolloutCacheBytes: number) => new LlmPolicy({
    model: await loadModel('random:tiny', { seed: 6 }), backend: getBackend(), trainableLayers: 2, head: v.head, headInput: v.headInput, ...(v.headNorm && { headNorm: v.headNorm }),
    seed: 3, prompt: { mode: 'benchmark', style: 'compact' }, rolloutCacheBytes,
  });
  const pair: [LlmPolicy, LlmPolicy] = [await mk(0), await mk(keptBytes)];
  // Off the initial point, equally in both, so that every path of the weights matters.
  for (const p of pair) for (const q of p.params()) for (let i = 0; i < q.data.length; i++) q.data[i]! += 0.02 * Math.sin(5 * i + 2);
  return pair;
}

/** One rollout and two minibatches, as PPO runs them; everything each policy computed. */
function episode(p: LlmPolicy, obs: Observation[]): { rollout: number[]; update: number[]; grads: Float32Array[][] } {
  const rollout: number[] = [], update: number[] = [], grads: Float32Array[][] = [];
  p.beginRollout();
  const inputs: LlmInput[] = obs.map((o) => p.encode(o));
  for (const x of inputs) {
    const s = p.forward(x, false);
    rollout.push(...s.logProbs, s.value, ...p.referenceLogProbs(x));
  }
  p.endRollout();
  const order = [[5, 0, 3, 1], [2, 4, 1]];
  for (const mb of order) {
    for (const q of p.params()) q.grad.fill(0);
    p.beginMinibatch();
    mb.forEach((k, j) => {
      const s = p.forward(inputs[k]!, true);
      update.push(...s.logProbs, s.value);
      p.backward(s.handle, Float64Array.of(0.3 - 0.1 * j, -0.2, 0.1 * k), 0.25 * (j + 1));
    });
    p.endMinibatch();
    grads.push(p.params().map((q) => q.grad.slice()));
    // An optimizer step between minibatches (the same in every policy).
    for (const q of p.params()) for (let i = 0; i < q.data.length; i++) q.data[i]! -= 0.05 * q.grad[i]!;
  }
  return { rollout, update, grads };
}

for (const v of [{ head: 'lm', headInput: 'last' }, { head: 'linear', headInput: 'mean', headNorm: 'channel' }] as Variant[]) {
  test(`kept rollout activations (${v.head} head, ${v.headInput}): rollout, update and gradients bit-identical to computing them again`, async () => {
    const obs = observations(6);
    const [plain, kept] = await pair(v, 2 ** 30);
    const a = episode(plain, obs), b = episode(kept, obs);
    assert.deepEqual(b.rollout, a.rollout, 'rollout log-probs, values and reference');
    assert.deepEqual(b.update, a.update, 'update log-probs and values');
    b.grads.forEach((g, m) => g.forEach((x, i) => assert.deepEqual(x, a.grads[m]![i], `minibatch ${m} gradient ${i}`)));
    assert.ok(a.grads[0]!.every((g) => g.some((x) => x !== 0)), 'every parameter gets a gradient');
    // The first minibatch took its four samples from the rollout; the second computed its own.
    const { peakBytes, ...counts } = kept.rolloutActivationCounts();
    assert.deepEqual(counts, { kept: 6, taken: 4, bytes: 0 }, 'all released after the first minibatch');
    assert.ok(peakBytes > 0);
    assert.deepEqual(plain.rolloutActivationCounts(), { kept: 0, taken: 0, bytes: 0, peakBytes: 0 });
  });
}

test('the budget bounds what a rollout keeps (one sample past it at most), with the same results', async () => {
  const obs = observations(6);
  const [plain, one] = await pair({ head: 'lm', headInput: 'last' }, 1);
  const a = episode(plain, obs), b = episode(one, obs);
  assert.deepEqual(b.rollout, a.rollout);
  assert.deepEqual(b.update, a.update);
  b.grads.forEach((g, m) => g.forEach((x, i) => assert.deepEqual(x, a.grads[m]![i])));
  const c = one.rolloutActivationCounts();
  assert.equal(c.kept, 1, 'a 1-byte budget keeps the first sample only');
  assert.equal(c.taken, 1, 'the first minibatch (samples 5, 0, 3, 1) took sample 0 and computed the others');
});

test('PPO updates with and without kept rollout activations: the same parameters and metrics to the bit', { timeout: 300_000 }, async () => {
  const base = { policy: 'llm', model: 'random:tiny', trainable_layers: 2, num_steps: 12, minibatch_size: 8, update_epochs: 2, seed: 4, threads: 1 };
  const run = async (mb: number) => {
    const config = parseTrainConfig({ ...base, rollout_cache_mb: mb }, 'test');
    const policy = await createLlmPolicy(config);
    const { series } = await loadRunSeries(config);
    const trainer = new PpoTrainer(policy, makeTrainEnvs(series, trainWindow(series, config), config), config);
    const metrics = [trainer.runUpdate(), trainer.runUpdate()].map(({ time_s: _t, steps_per_sec: _s, ...m }) => m);
    return { metrics, params: policy.params().map((p) => Array.from(p.data)), counts: policy.rolloutActivationCounts() };
  };
  const off = await run(0), on = await run(64);
  assert.deepEqual(on.metrics, off.metrics);
  assert.deepEqual(on.params, off.params);
  assert.equal(on.counts.taken, 2 * 8, 'each update\'s first minibatch (8 samples) came from its rollout');
  assert.equal(off.counts.kept, 0);
});

test('over many rollouts the budget keeps the same number of samples: kept pools hold exact sizes, not grown ones', async () => {
  const [, probe] = await pair({ head: 'lm', headInput: 'last' }, 1);
  episode(probe, observations(6));
  const sample = probe.rolloutActivationCounts().peakBytes; // one sample's activations
  const [, p] = await pair({ head: 'lm', headInput: 'last' }, 3.5 * sample);
  const keptPerRollout: number[] = [];
  // Rollouts of prompts whose lengths differ (other days, other accounts), as a run's do.
  for (let r = 0; r < 6; r++) {
    const before = p.rolloutActivationCounts().kept;
    episode(p, observations(6 + r).slice(r));
    keptPerRollout.push(p.rolloutActivationCounts().kept - before);
  }
  // Reused pools keep the size of the longest prompt they held, so the count may drop by one once, then holds.
  const later = keptPerRollout.slice(1);
  assert.ok(later.every((k) => k === later[0]) && later[0]! >= keptPerRollout[0]! - 1, `kept per rollout: ${keptPerRollout.join(', ')}`);
  assert.ok(later[0]! >= 4, 'the budget and one sample past it');
  assert.ok(p.rolloutActivationCounts().peakBytes <= 3.5 * sample + 1.2 * sample, `peak ${p.rolloutActivationCounts().peakBytes} vs budget ${3.5 * sample}`);
});
