// Generation: greedy decoding against the float64 reference, seeded sampling, top-k, stop tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LlamaModel } from '../src/model/llama.js';
import { argmax, sampleToken } from '../src/model/sampling.js';
import { Rng } from '../src/util/rng.js';
import { randomIds, refHidden, refLogitsRow, testConfig, testWeights, toRef } from './model-ref.js';
import { tsBackend } from './model-backends.js';

const cfg = testConfig(false);
const weights = testWeights(cfg, 60);

test('greedy generation follows the argmax of the float64 reference at every step', () => {
  const model = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 1 });
  const prompt = randomIds(new Rng(1), 5, cfg.vocab_size);
  const out = model.generate(prompt, { maxNewTokens: 8, stopIds: [] });
  assert.equal(out.finish, 'length');
  assert.equal(out.tokens.length, 8);
  const ref = toRef(weights);
  const seq = [...prompt];
  for (const tok of out.tokens) {
    const h = refHidden(cfg, ref, seq);
    const logits = refLogitsRow(cfg, ref, h[h.length - 1]!);
    const sorted = Array.from(logits).sort((a, b) => b - a);
    // a near-tie could flip under float32; the random weights here give clear winners
    assert.ok(sorted[0]! - sorted[1]! > 1e-3, 'ambiguous argmax in the reference');
    assert.equal(tok, argmax(logits));
    seq.push(tok);
  }
});

test('generation stops at a stop token (included) and honours maxNewTokens = 0', () => {
  const model = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 1 });
  const prompt = randomIds(new Rng(2), 4, cfg.vocab_size);
  const free = model.generate(prompt, { maxNewTokens: 6, stopIds: [] });
  const stopAt = free.tokens[2]!;
  const firstIdx = free.tokens.indexOf(stopAt);
  const stopped = model.generate(prompt, { maxNewTokens: 6, stopIds: [stopAt] });
  assert.deepEqual(stopped, { tokens: free.tokens.slice(0, firstIdx + 1), finish: 'stop' });
  assert.deepEqual(model.generate(prompt, { maxNewTokens: 0 }), { tokens: [], finish: 'length' });
  assert.throws(() => model.generate(prompt, { maxNewTokens: 62 }), /prompt \(4 tokens\) \+ 62 new tokens exceed max_position_embeddings 64/);
  assert.throws(() => model.generate(prompt, { maxNewTokens: -1 }), /maxNewTokens must be an integer >= 0, got -1/);
  assert.throws(() => model.generate(prompt, { temperature: 1 }), /temperature > 0 needs a seeded Rng/);
  assert.throws(() => model.generate(prompt, { temperature: -1 }), /temperature must be a finite number >= 0, got -1/);
  assert.throws(() => model.generate(prompt, { topK: 2.5 }), /topK must be an integer >= 0, got 2.5/);
});

test('sampled generation is deterministic per seed; top-k 1 is greedy', () => {
  const model = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 1 });
  const prompt = randomIds(new Rng(3), 4, cfg.vocab_size);
  const a = model.generate(prompt, { maxNewTokens: 10, temperature: 1.5, rng: new Rng(42), stopIds: [] });
  const b = model.generate(prompt, { maxNewTokens: 10, temperature: 1.5, rng: new Rng(42), stopIds: [] });
  assert.deepEqual(a, b);
  const c = model.generate(prompt, { maxNewTokens: 10, temperature: 1.5, rng: new Rng(43), stopIds: [] });
  assert.notDeepEqual(a.tokens, c.tokens);
  const greedy = model.generate(prompt, { maxNewTokens: 10, stopIds: [] });
  const top1 = model.generate(prompt, { maxNewTokens: 10, temperature: 2, topK: 1, rng: new Rng(1), stopIds: [] });
  assert.deepEqual(top1.tokens, greedy.tokens);
});

test('sampleToken draws from softmax(logits / T) restricted to the top k', () => {
  // logits ln(1), ln(2), ln(3), ln(4) at T = 1: probabilities 0.1, 0.2, 0.3, 0.4
  const logits = Float32Array.from([1, 2, 3, 4].map(Math.log));
  const rng = new Rng(7);
  const n = 20000;
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) counts[sampleToken(logits, { temperature: 1, rng })]!++;
  [0.1, 0.2, 0.3, 0.4].forEach((p, i) => {
    const sd = Math.sqrt((p * (1 - p)) / n);
    assert.ok(Math.abs(counts[i]! / n - p) < 5 * sd, `token ${i}: ${counts[i]! / n} vs ${p}`);
  });
  // T = 0.5 squares the odds: 1, 4, 9, 16 over 30; top-2 keeps tokens 3 and 2: 16/25, 9/25
  const k2 = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) k2[sampleToken(logits, { temperature: 0.5, topK: 2, rng })]!++;
  assert.equal(k2[0]! + k2[1]!, 0);
  const p3 = 16 / 25;
  assert.ok(Math.abs(k2[3]! / n - p3) < 5 * Math.sqrt((p3 * (1 - p3)) / n));
  assert.equal(sampleToken(logits, {}), 3);
});

test('a config with several EOS ids (Llama 3.x list) stops generation at any of them by default', () => {
  const prompt = randomIds(new Rng(2), 4, cfg.vocab_size);
  const free = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 1 }).generate(prompt, { maxNewTokens: 6, stopIds: [] });
  const second = free.tokens[1]!;
  let other = 0;
  while (free.tokens.includes(other)) other++;
  // The first listed id never appears; the second one does: generation stops there.
  const multi = new LlamaModel({ ...cfg, eos_token_id: other, eos_token_ids: [other, second] }, weights, tsBackend, { trainableLayers: 1 });
  const out = multi.generate(prompt, { maxNewTokens: 6 });
  assert.deepEqual(out, { tokens: free.tokens.slice(0, free.tokens.indexOf(second) + 1), finish: 'stop' });
});
