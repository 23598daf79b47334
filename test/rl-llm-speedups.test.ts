// The LLM policy's training-loop shortcuts (LlmSpeedups): the same numbers as the plain computation,
// the rollout cache confined to beginRollout..endRollout, and the market mark found with a BPE
// tokenizer that merges the blank line after the market section.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBackend } from '../src/kernels/index.js';
import { TINY } from '../src/model/configs.js';
import { loadModel } from '../src/model/load.js';
import { LlmPolicy } from '../src/rl/llm-policy.js';
import { segmentEnds } from '../src/rl/prompt-segments.js';

/** LlmPolicyOptions.caches: on (the default) and off (the plain computation). */
const ALL_SPEEDUPS = true, NO_SPEEDUPS = false;
import { syntheticMarket } from '../src/data/synthetic.js';
import { TradingEnv } from '../src/env/trading-env.js';
import type { Observation } from '../src/env/types.js';
import { Profiler } from '../src/util/profile.js';
import type { PromptOptions } from '../src/prompt/render.js';
import { modelsPath, needsModels } from './shared-paths.js';

/**
 * The rollout's kept activations are off here (rolloutCacheBytes 0), so that the rollout cache of
 * top-K keys/values is what runs; test/rl-rollout-activations.test.ts covers the kept activations.
 */
async function policy(speedups: boolean, spec = 'random:tiny', tokenizerPath?: string, prompt: PromptOptions = { mode: 'benchmark', style: 'compact' }): Promise<LlmPolicy> {
  const model = await loadModel(spec, { seed: 4, ...(tokenizerPath !== undefined && { tokenizerPath }) });
  return new LlmPolicy({ model, backend: getBackend(), trainableLayers: 2, head: 'lm', headInput: 'last', seed: 1, prompt, caches: speedups, rolloutCacheBytes: 0 });
}

/** A tiny model with SmolLM2's vocabulary (so that its tokenizer fits), in a temporary folder. */
function withSmolTokenizer(fn: (spec: string, tok: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llm-speedups-'));
    try {
      const config = join(dir, 'config.json');
      writeFileSync(config, JSON.stringify({ ...TINY, vocab_size: 49152, architectures: ['LlamaForCausalLM'], model_type: 'llama' }));
      await fn(`random:${config}`, modelsPath('smollm2-135m-instruct', 'tokenizer.json'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}
const SMOL = needsModels('smollm2-135m-instruct', 'tokenizer.json');

/** Observations of consecutive days, then the first day again with another account (a later episode). */
function observations(): Observation[] {
  const env = new TradingEnv(syntheticMarket({ seed: 3, days: 60 }), { lookback: 20, start: 'fixed' });
  const out = [env.reset()];
  for (const a of ['buy', 'sell', 'hold'] as const) out.push(env.step(a).observation);
  out.push({ ...out[1]!, account: { ...out[1]!.account, position: 1, value: 1.02, cumulativeReturn: 0.02 } });
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('speedups on: the same prompts, boundaries, rollout and reference outputs as the plain computation, with fewer top-K tokens', async () => {
  const fast = await policy(ALL_SPEEDUPS), plain = await policy(NO_SPEEDUPS);
  const prof = new Profiler();
  fast.attachProfiler(prof);
  const obs = observations();
  fast.beginRollout();
  let T = 0;
  const marks: number[][] = [];
  for (const o of obs) {
    const x = fast.encode(o), y = plain.encode(o);
    assert.deepEqual(Array.from(x.ids), Array.from(y.ids));
    assert.deepEqual(segmentEnds(x.segments), segmentEnds(y.segments), 'the byte tokenizer never merges across a mark: trimming changes nothing');
    assert.equal(maxAbsDiff(x.boundary, y.boundary), 0, 'frozen part untouched');
    const a = fast.forward(x, false), b = plain.forward(y, false);
    assert.ok(maxAbsDiff(a.logProbs, b.logProbs) < 1e-5 && Math.abs(a.value - b.value) < 1e-6, `rollout forward on ${o.date}`);
    assert.ok(maxAbsDiff(fast.referenceLogProbs(x), plain.referenceLogProbs(y)) < 1e-5, `reference on ${o.date}`);
    T += x.ids.length;
    marks.push(segmentEnds(x.segments));
  }
  fast.endRollout();
  const c = prof.snapshot().counters;
  assert.ok(marks.every((m) => m.length === 2 && m[0] === marks[0]![0]), 'every prompt has the same system turn and a market mark');
  const sys = marks[0]![0]!;
  // In the rollout every prompt after the first reuses the system turn's top-K keys/values; the
  // reference also reuses the market section of the day that came back (the last prompt).
  assert.equal(c.rollout_tokens, T - 4 * sys);
  assert.equal(c.reference_tokens, T - 3 * sys - marks[4]![1]!);
  assert.equal(c.prompts, obs.length);
  assert.equal(c.prompt_tokens, T);
});

test('the rollout cache holds only between beginRollout and endRollout: changed weights are seen afterwards', async () => {
  const p = await policy(ALL_SPEEDUPS);
  const [o1, o2] = observations();
  const x1 = p.encode(o1!), x2 = p.encode(o2!);
  p.beginRollout();
  p.forward(x1, false); // stores the system turn's top-K keys/values
  const inside = p.forward(x2, false).logProbs;
  p.endRollout();
  // An optimizer step between rollouts.
  for (const q of p.params()) for (let i = 0; i < q.data.length; i++) q.data[i]! += 0.05 * Math.cos(i);
  const trained = p.forward(x2).logProbs; // the training path: no cache
  assert.ok(maxAbsDiff(trained, inside) > 1e-3, 'the weights change the output');
  assert.ok(maxAbsDiff(p.forward(x2, false).logProbs, trained) < 1e-5, 'outside a rollout: computed afresh');
  p.beginRollout();
  p.forward(x1, false);
  assert.ok(maxAbsDiff(p.forward(x2, false).logProbs, trained) < 1e-5, 'a new rollout starts with an empty cache');
  p.endRollout();
  // The reference keeps its cache: it never changes.
  const ref = await policy(NO_SPEEDUPS);
  assert.ok(maxAbsDiff(p.referenceLogProbs(x2), ref.referenceLogProbs(ref.encode(o2!))) < 1e-5);
});

test('the shared prefix: inside beginMinibatch..endMinibatch the gradients equal the plain per-sample ones once the bracket ends', async () => {
  const fast = await policy(ALL_SPEEDUPS), plain = await policy(NO_SPEEDUPS);
  const obs = observations();
  // Move the trainable weights off the initial point (equally in both), so that every path matters.
  for (const p of [fast, plain]) for (const q of p.params()) for (let i = 0; i < q.data.length; i++) q.data[i]! += 0.02 * Math.sin(3 * i + 1);
  const dLogProbs = [Float64Array.of(0.3, -0.2, 0.1), Float64Array.of(-0.5, 0.4, 0), Float64Array.of(0.1, 0.1, -0.3)];
  const run = (p: LlmPolicy, bracket: boolean) => {
    for (const q of p.params()) q.grad.fill(0);
    if (bracket) p.beginMinibatch();
    obs.slice(0, 3).forEach((o, i) => {
      const s = p.forward(p.encode(o));
      p.backward(s.handle, dLogProbs[i]!, 0.25 * (i + 1));
    });
    if (bracket) p.endMinibatch();
    return new Map(p.params().map((q) => [q.name, q.grad.slice()]));
  };
  const want = run(plain, true);
  const got = run(fast, true);
  const unbracketed = run(fast, false);
  for (const [name, g] of got) {
    const ref = want.get(name)!;
    let num = 0, den = 0;
    for (let i = 0; i < g.length; i++) { num = Math.max(num, Math.abs(g[i]! - ref[i]!)); den = Math.max(den, Math.abs(ref[i]!)); }
    assert.ok(den > 0 && num <= 1e-4 * den, `${name}: ${num} vs scale ${den}`);
    assert.ok(maxAbsDiff(unbracketed.get(name)!, ref) <= 1e-4 * den, `${name} without the bracket`);
  }
});

test('trimMarks: with SmolLM2\'s BPE tokenizer the market mark is used (cached across episodes) only when trimming is on', { skip: SMOL }, withSmolTokenizer(async (spec, tok) => {
  const on = await policy(ALL_SPEEDUPS, spec, tok), off = await policy(NO_SPEEDUPS, spec, tok);
  const obs = observations();
  const x = on.encode(obs[1]!), y = off.encode(obs[1]!);
  assert.deepEqual(Array.from(x.ids), Array.from(y.ids));
  assert.equal(segmentEnds(y.segments).length, 1, 'without trimming only the system turn is a usable mark');
  assert.equal(segmentEnds(x.segments).length, 2);
  const { text } = on.promptText(obs[1]!);
  const marketEnd = text.indexOf('\n\nPosition:');
  assert.ok(marketEnd > 0);
  assert.equal(segmentEnds(x.segments)[1], on.tokenizer.encode(text.slice(0, marketEnd)).length, 'the mark sits at the end of the market section');
  // The same day in a later episode: everything up to the account comes from the frozen cache.
  const reused0 = on.cacheStats().frozenReused;
  on.encode(obs[4]!);
  assert.equal(on.cacheStats().frozenReused - reused0, segmentEnds(x.segments)[1]);
}));

test('stableMarket: under a token budget a day\'s market section does not depend on the account, the budget still holds, and a too-long account falls back to the exact rule', { skip: SMOL }, withSmolTokenizer(async (spec, tok) => {
  const obs = observations()[1]!;
  assert.ok(obs.text.length >= 2, 'the day has news to cut');
  const count = (p: LlmPolicy, o: typeof obs) => {
    const { messages } = p.promptText(o);
    return messages.reduce((n, m) => n + p.tokenizer.encode(m.content).length, 0);
  };
  const probe = await policy(NO_SPEEDUPS, spec, tok, { mode: 'benchmark', style: 'full' });
  const bare = count(probe, { ...obs, text: [] });
  const accounts = [
    { position: 0, cash: 1, shares: 0, value: 1, cumulativeReturn: 0 },
    { position: -1, cash: 0.8839, shares: 0, value: 0.8839, cumulativeReturn: -0.1234 },
    { position: 1, cash: 1.0513, shares: 0, value: 1.0513, cumulativeReturn: 0.05 },
  ];
  let fallbacks = 0;
  for (const extra of [12, 20, 31, 60]) {
    const budget: PromptOptions = { mode: 'benchmark', style: 'full', maxTokens: bare + extra };
    const stable = await policy(ALL_SPEEDUPS, spec, tok, budget);
    const exact = await policy(NO_SPEEDUPS, spec, tok, budget);
    const markets = new Set<string>();
    for (const account of accounts) {
      const o = { ...obs, account };
      const { messages } = stable.promptText(o);
      const user = messages[1]!.content;
      const exactUser = exact.promptText(o).messages[1]!.content;
      const accountText = exactUser.slice(exactUser.indexOf('\n\nYour account:') + 2);
      assert.ok(user.endsWith(`\n\n${accountText}`), 'the actual account closes the prompt');
      markets.add(user.slice(0, user.length - accountText.length));
      assert.ok(count(stable, o) <= bare + extra, `within the budget of ${bare + extra} tokens`);
    }
    assert.equal(markets.size, 1, `one market section for all accounts (budget ${bare} + ${extra})`);
    // An account far longer than the stand-in: the exact rule, as without the speedup (the same
    // prompt, or the same error where not even the parts that are never cut fit).
    const huge = { ...obs, account: { position: 1, cash: 1e12, shares: 0, value: 123456789012.3456, cumulativeReturn: 26.123 } };
    const outcome = (p: LlmPolicy) => { try { return p.promptText(huge).text; } catch (e) { return (e as Error).message; } };
    assert.equal(outcome(stable), outcome(exact));
    if (!outcome(exact).startsWith('prompt budget too small')) fallbacks++;
  }
  assert.ok(fallbacks > 0, 'the fallback produced a prompt at least once');
}));

test('head_input mean: the heads read the mean final hidden state of the rows after the system turn, the same with and without the speedups', async () => {
  const model = await loadModel('random:tiny', { seed: 4 });
  const mk = (speedups: boolean) => new LlmPolicy({ model, backend: getBackend(), trainableLayers: 2, head: 'linear', headInput: 'mean', seed: 1, prompt: { mode: 'benchmark', style: 'compact' }, caches: speedups });
  const fast = mk(ALL_SPEEDUPS), plain = mk(NO_SPEEDUPS);
  // An independent route to the same numbers: the whole decoder's final-normed rows, averaged here.
  const { LlamaModel } = await import('../src/model/llama.js');
  const whole = new LlamaModel(model.config, model.weights, getBackend(), { trainableLayers: 1 });
  const obs = observations();
  fast.beginRollout();
  for (const o of obs) {
    const x = fast.encode(o), y = plain.encode(o);
    const S = segmentEnds(x.segments)[0]!;
    const rows = x.ids.length - S;
    const hidden = whole.forward(x.ids, { outRows: rows });
    const C = model.config.hidden_size;
    const h = new Float64Array(C);
    for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) h[c] += hidden[r * C + c]! / rows;
    // The linear head's logits by hand from h.
    const head = fast.params().find((p) => p.name === 'policy_head.weight')!, bias = fast.params().find((p) => p.name === 'policy_head.bias')!;
    const z = [0, 1, 2].map((a) => { let t = bias.data[a]!; for (let c = 0; c < C; c++) t += head.data[a * C + c]! * h[c]!; return t; });
    const lse = Math.log(z.reduce((s, v) => s + Math.exp(v), 0));
    const a = fast.forward(x, false), b = plain.forward(y, false);
    assert.ok(maxAbsDiff(a.logProbs, z.map((v) => v - lse)) < 1e-5, `rollout log-probs from the pooled state on ${o.date}`);
    assert.ok(maxAbsDiff(a.logProbs, b.logProbs) < 1e-5, `cached and plain rollouts agree on ${o.date}`);
    assert.ok(maxAbsDiff(fast.referenceLogProbs(x), plain.referenceLogProbs(y)) < 1e-5, `reference on ${o.date}`);
    const g = plain.forward(y, true);
    assert.ok(maxAbsDiff(g.logProbs, b.logProbs) < 1e-5, 'the training forward reads the same rows');
  }
  fast.endRollout();
  // The update path with the shared system turn gives the same gradients as the plain one.
  const grads = (p: LlmPolicy) => {
    for (const q of p.params()) q.grad.fill(0);
    p.beginMinibatch?.();
    for (const o of obs.slice(0, 3)) {
      const s = p.forward(p.encode(o), true);
      p.backward(s.handle, Float64Array.from([0.3, -0.5, 0.2]), 0.7);
    }
    p.endMinibatch?.();
    return p.params().map((q) => q.grad.slice());
  };
  const gf = grads(fast), gp = grads(plain);
  gf.forEach((g, i) => {
    const scale = Math.max(1e-6, ...Array.from(gp[i]!, Math.abs));
    assert.ok(maxAbsDiff(g, gp[i]!) / scale < 1e-3, `gradient ${i}`);
    assert.ok(scale > 1e-6, `gradient ${i} is not zero`);
  });
});
