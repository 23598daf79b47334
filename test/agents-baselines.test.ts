import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BuyAndHoldAgent, MomentumAgent, RandomAgent, SmaCrossoverAgent } from '../src/agents/baselines.js';
import { agentNames, createAgent, registerAgent } from '../src/agents/registry.js';
import type { Agent } from '../src/agents/agent.js';
import type { Action, Observation } from '../src/env/types.js';

/** An observation whose only readable field is `prices`: reading anything else throws. */
function pricesOnly(prices: number[]): Observation {
  return new Proxy({ prices } as unknown as Observation, {
    get(target, key) {
      if (key === 'prices') return target.prices;
      throw new Error(`baseline read observation.${String(key)}`);
    },
  });
}

const act = (a: Agent, prices: number[]) => a.act(pricesOnly(prices)) as Action;

test('buy and hold always buys', () => {
  const a = new BuyAndHoldAgent();
  assert.equal(act(a, [1]), 'buy');
  assert.equal(act(a, [3, 2, 1]), 'buy');
});

test('momentum: sign of the return over the lookback; hold when flat or short of history', () => {
  const m = new MomentumAgent(3);
  assert.equal(act(m, [10, 11, 12, 13]), 'buy'); // 13 > 10
  assert.equal(act(m, [13, 12, 11, 10]), 'sell');
  assert.equal(act(m, [10, 30, 1, 10]), 'hold'); // 10 = 10: flat
  assert.equal(act(m, [99, 10, 30, 1, 11]), 'buy', 'compares with the price 3 days back, not the oldest');
  assert.equal(act(m, [1, 2, 3]), 'hold', '3 prices hold only a 2-day return');
  const d = new MomentumAgent();
  const rising = Array.from({ length: 21 }, (_, i) => 100 + i);
  assert.equal(act(d, rising), 'buy');
  assert.equal(act(d, rising.slice(1)), 'hold', 'default 20 days needs 21 prices');
});

test('SMA crossover: short mean against long mean; hold when equal or short of history', () => {
  const s = new SmaCrossoverAgent(2, 4);
  assert.equal(act(s, [1, 2, 3, 4]), 'buy'); // (3+4)/2 = 3.5 > 2.5
  assert.equal(act(s, [4, 3, 2, 1]), 'sell'); // 1.5 < 2.5
  assert.equal(act(s, [1, 4, 4, 1]), 'hold'); // 2.5 = 2.5
  assert.equal(act(s, [100, 1, 2, 3, 4]), 'buy', 'uses the last 4 prices only');
  assert.equal(act(s, [1, 2, 3]), 'hold');
  const d = new SmaCrossoverAgent();
  const falling = Array.from({ length: 20 }, (_, i) => 100 - i);
  assert.equal(act(d, falling), 'sell');
  assert.equal(act(d, falling.slice(1)), 'hold', 'default long window 20 needs 20 prices');
});

test('random agent: seeded, reset(seed) restarts the stream, roughly uniform', () => {
  const draw = (a: Agent, k: number) => Array.from({ length: k }, () => act(a, [1]));
  const a = new RandomAgent(5), b = new RandomAgent(5), c = new RandomAgent(6);
  const xa = draw(a, 300);
  assert.deepEqual(draw(b, 300), xa);
  assert.notDeepEqual(draw(c, 300), xa);
  a.reset();
  assert.deepEqual(draw(a, 300), xa, 'reset() restarts from the constructor seed');
  a.reset(6);
  c.reset(6);
  assert.deepEqual(draw(a, 50), draw(c, 50));
  const counts = { buy: 0, sell: 0, hold: 0 };
  for (const x of draw(new RandomAgent(1), 6000)) counts[x]++;
  for (const k of ['buy', 'sell', 'hold'] as const) assert.ok(Math.abs(counts[k] / 6000 - 1 / 3) < 0.03, `${k}: ${counts[k]}`);
});

test('bad baseline parameters are errors', () => {
  assert.throws(() => new MomentumAgent(0), /momentum lookback must be a positive integer, got 0/);
  assert.throws(() => new MomentumAgent(2.5), /momentum lookback must be a positive integer, got 2.5/);
  assert.throws(() => new SmaCrossoverAgent(20, 5), /short window \(20\) must be shorter than the long window \(5\)/);
  assert.throws(() => new SmaCrossoverAgent(0, 5), /SMA short window must be a positive integer/);
});

test('registry: every baseline by name, options passed through, clear error for unknown names', () => {
  for (const name of ['buy-and-hold', 'random', 'momentum', 'sma-crossover']) {
    assert.ok(agentNames().includes(name));
    assert.equal(createAgent(name).name, name);
  }
  // momentumLookback 1 reacts to yesterday's move; the default 20 has too little history here.
  assert.equal(act(createAgent('momentum', { momentumLookback: 1 }), [1, 2]), 'buy');
  assert.equal(act(createAgent('momentum'), [1, 2]), 'hold');
  assert.equal(act(createAgent('sma-crossover', { smaShort: 1, smaLong: 2 }), [2, 1]), 'sell');
  const r1 = createAgent('random', { seed: 9 }), r2 = new RandomAgent(9);
  assert.deepEqual(Array.from({ length: 30 }, () => act(r1, [1])), Array.from({ length: 30 }, () => act(r2, [1])));
  assert.throws(() => createAgent('buy-hold'), /unknown agent "buy-hold"; known agents: buy-and-hold, random, momentum, sma-crossover/);
  assert.throws(() => createAgent('sma-crossover', { smaShort: 30 }), /must be shorter than the long window/);
});

test('registry: new names can be added', () => {
  registerAgent('always-sell-test', 'test agent', () => ({ name: 'always-sell-test', act: () => 'sell' as const }));
  assert.equal(act(createAgent('always-sell-test'), [1]), 'sell');
  assert.ok(agentNames().includes('always-sell-test'));
  assert.throws(() => registerAgent('Bad Name', '', () => new BuyAndHoldAgent()), /must be lower-case letters, digits and dashes/);
});
