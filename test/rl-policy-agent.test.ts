import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyAgent } from '../src/agents/policy-agent.js';
import type { ActorCritic, Param, PolicyStep } from '../src/rl/policy.js';
import type { Observation } from '../src/env/types.js';
import { deriveSeed } from '../src/rl/seeds.js';

/** Log-probs looked up by observation date. */
class TablePolicy implements ActorCritic<string> {
  readonly kind = 'table';
  readonly fingerprint = 'table';
  constructor(private readonly table: Record<string, number[]>) {}
  encode(obs: Observation): string { return obs.date; }
  forward(date: string): PolicyStep { return { logProbs: Float64Array.from(this.table[date]!.map(Math.log)), value: 0, handle: null }; }
  backward(): void {}
  params(): Param[] { return []; }
  referenceLogProbs(date: string): Float64Array { return this.forward(date).logProbs; }
}

const obs = (date: string) => ({ asset: 'T', date, t: 0, step: 0, dates: [date], prices: [1], text: [], account: { position: 0, cash: 1, shares: 0, value: 1, cumulativeReturn: 0 } }) as Observation;

test('PolicyAgent greedy: the most probable action, ties to the first in ACTIONS order', () => {
  const agent = new PolicyAgent(new TablePolicy({ a: [0.2, 0.7, 0.1], b: [0.1, 0.2, 0.7], c: [0.4, 0.4, 0.2], d: [0.6, 0.3, 0.1] }));
  assert.equal(agent.name, 'ppo-table');
  assert.deepEqual(['a', 'b', 'c', 'd'].map((d) => agent.act(obs(d))), ['sell', 'hold', 'buy', 'buy']);
  assert.deepEqual(agent.probabilities(obs('a')).map((p) => Math.round(p * 10) / 10), [0.2, 0.7, 0.1]);
});

test('PolicyAgent sampled: frequencies follow the policy; reset(seed) restarts the stream', () => {
  const agent = new PolicyAgent(new TablePolicy({ a: [0.2, 0.5, 0.3] }), { sampled: true, seed: 3 });
  assert.equal(agent.name, 'ppo-table-sampled');
  const draw = (n: number) => Array.from({ length: n }, () => agent.act(obs('a')));
  agent.reset(5);
  const first = draw(3000);
  const counts = { buy: 0, sell: 0, hold: 0 };
  for (const a of first) counts[a]++;
  // Binomial standard deviations: sqrt(3000 p (1 - p)) ~ 22-27; allow 4 of them.
  for (const [a, p] of [['buy', 0.2], ['sell', 0.5], ['hold', 0.3]] as const) {
    assert.ok(Math.abs(counts[a] - 3000 * p) < 4 * Math.sqrt(3000 * p * (1 - p)), `${a}: ${counts[a]}`);
  }
  agent.reset(5);
  assert.deepEqual(draw(50), first.slice(0, 50));
  agent.reset(6);
  assert.notDeepEqual(draw(50), first.slice(0, 50));
});

test('deriveSeed: deterministic, distinct per label and per seed', () => {
  assert.equal(deriveSeed(1, 'a'), deriveSeed(1, 'a'));
  const seeds = new Set([deriveSeed(1, 'a'), deriveSeed(1, 'b'), deriveSeed(2, 'a'), deriveSeed(12, 'a'), deriveSeed(1, '2a')]);
  assert.equal(seeds.size, 5);
  assert.throws(() => deriveSeed(1.5, 'a'), /seed must be an integer, got 1\.5/);
});
