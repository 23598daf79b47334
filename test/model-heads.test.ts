// Policy/value heads: log-softmax with masks, entropy and their gradients, the action-token lookup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ValueHead, entropy, entropyBackward, logSoftmax, logSoftmaxBackward } from '../src/model/heads.js';
import { ActionPolicyHead as PolicyHead, actionTokenIds } from '../src/rl/action-head.js';
import { ACTION_ANSWER_PREFIX } from '../src/prompt/chat.js';
import { LlamaModel } from '../src/model/llama.js';
import { Rng } from '../src/util/rng.js';
import { randomIds, testConfig, testWeights } from './model-ref.js';
import { tsBackend } from './model-backends.js';
import { modelsPath, needsModels } from './shared-paths.js';

test('logSoftmax matches hand values, with and without a mask', () => {
  // logits (0, ln 2, ln 5): probabilities 1/8, 2/8, 5/8
  const lp = logSoftmax([0, Math.log(2), Math.log(5)]);
  [1 / 8, 2 / 8, 5 / 8].forEach((p, i) => assert.ok(Math.abs(lp[i]! - Math.log(p)) < 1e-12));
  const masked = logSoftmax([0, Math.log(2), Math.log(5)], [true, false, true]); // 1/6, -, 5/6
  assert.ok(Math.abs(masked[0]! - Math.log(1 / 6)) < 1e-12);
  assert.equal(masked[1], -Infinity);
  assert.ok(Math.abs(masked[2]! - Math.log(5 / 6)) < 1e-12);
  // large logits do not overflow
  const big = logSoftmax([1000, 1000, 0]);
  assert.ok(Math.abs(big[0]! - Math.log(0.5)) < 1e-12);
  assert.throws(() => logSoftmax([1, 2, 3], [false, false, false]), /no legal action/);
  assert.throws(() => logSoftmax([1, 2, 3], [true, true]), /legal mask has 2 entries, expected 3/);
});

test('entropy: ln 3 for uniform, 0 for a sure action; gradients match finite differences', () => {
  assert.ok(Math.abs(entropy(logSoftmax([2, 2, 2])) - Math.log(3)) < 1e-12);
  assert.ok(Math.abs(entropy(logSoftmax([0, 0, 0], [false, true, false]))) < 1e-12);
  const z = [0.3, -1.1, 0.8];
  const c = [0.5, -0.2, 1.7];
  // f(z) = c . logSoftmax(z) + 0.6 * H(logSoftmax(z)); analytic: logSoftmaxBackward(c + entropyBackward)
  const f = (zz: number[]): number => {
    const lp = logSoftmax(zz);
    return c.reduce((s, ci, i) => s + ci * lp[i]!, 0) + 0.6 * entropy(lp);
  };
  const lp = logSoftmax(z);
  const dH = entropyBackward(lp, 0.6);
  const dz = logSoftmaxBackward(lp, c.map((ci, i) => ci + dH[i]!));
  for (let i = 0; i < 3; i++) {
    const zp = z.slice(), zm = z.slice();
    zp[i]! += 1e-6; zm[i]! -= 1e-6;
    const fd = (f(zp) - f(zm)) / 2e-6;
    assert.ok(Math.abs(dz[i]! - fd) < 1e-7, `dz[${i}] ${dz[i]} vs ${fd}`);
  }
  // the closed form dH/dz_i = -p_i (lp_i + H)
  const H = entropy(lp);
  const dHz = logSoftmaxBackward(lp, entropyBackward(lp, 1));
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(dHz[i]! + Math.exp(lp[i]!) * (lp[i]! + H)) < 1e-12);
  // masked entries get no gradient
  const lpm = logSoftmax(z, [true, false, true]);
  assert.equal(logSoftmaxBackward(lpm, [1, 5, 2])[1], 0);
  assert.equal(entropyBackward(lpm, 1)[1], 0);
});

test('the lm policy head gives the LM logits of the action tokens; linear starts equal to it', () => {
  const cfg = testConfig(true);
  const model = new LlamaModel(cfg, testWeights(cfg, 2), tsBackend, { trainableLayers: 1 });
  const ids = [11, 22, 33];
  const h = model.forward(randomIds(new Rng(1), 5, cfg.vocab_size));
  const expected = model.selectedLogits(h, ids);
  const lm = new PolicyHead(tsBackend, { kind: 'lm', lmHead: model.lmHead, C: 48, actionTokenIds: ids });
  const lin = new PolicyHead(tsBackend, { kind: 'linear', lmHead: model.lmHead, C: 48, actionTokenIds: ids });
  const a = lm.forward(h), b = lin.forward(h);
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(a.logits[i]! - expected[i]!) < 1e-5);
    assert.equal(b.logits[i], a.logits[i]);
  }
  const lse = Math.log(expected.reduce((s, z) => s + Math.exp(z), 0));
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(a.logProbs[i]! - (expected[i]! - lse)) < 1e-5);
  assert.deepEqual(lm.params(), []);
  assert.deepEqual(lin.params().map((p) => [p.name, p.shape]), [['policy_head.weight', [3, 48]], ['policy_head.bias', [3]]]);
  // seeded linear init is deterministic and small
  const s1 = new PolicyHead(tsBackend, { kind: 'linear', lmHead: model.lmHead, C: 48, actionTokenIds: ids, seed: 9 });
  const s2 = new PolicyHead(tsBackend, { kind: 'linear', lmHead: model.lmHead, C: 48, actionTokenIds: ids, seed: 9 });
  assert.deepEqual(Array.from(s1.weight), Array.from(s2.weight));
  assert.ok(Math.max(...Array.from(s1.weight, Math.abs)) < 0.2);
  const v = new ValueHead(tsBackend, 48);
  assert.equal(v.forward(h), 0);
  assert.deepEqual(v.params().map((p) => [p.name, p.shape]), [['value_head.weight', [48]], ['value_head.bias', [1]]]);

  assert.throws(() => new PolicyHead(tsBackend, { kind: 'lm', lmHead: model.lmHead, C: 48, actionTokenIds: [1, 2] }), /needs 3 action token ids \(buy, sell, hold\), got 2/);
  assert.throws(() => new PolicyHead(tsBackend, { kind: 'lm', lmHead: model.lmHead, C: 48, actionTokenIds: [1, 2, 97] }), /action token id 97 is outside the vocabulary 0\.\.96/);
  assert.throws(() => new PolicyHead(tsBackend, { kind: 'mlp' as 'lm', lmHead: model.lmHead, C: 48, actionTokenIds: ids }), /policy head must be 'lm' or 'linear', got 'mlp'/);
  assert.throws(() => lm.forward(new Float32Array(5)), /policy head input has 5 values, expected 48/);
  assert.throws(() => v.forward(new Float32Array(5)), /value head input has 5 values, expected 48/);
});

test('actionTokenIds takes the first token after the prefix and rejects ambiguous setups', () => {
  // A toy encoder: one token per character, except that the pair "bu" is one token (id 1000).
  const enc = {
    encode(text: string): number[] {
      const out: number[] = [];
      for (let i = 0; i < text.length; i++) {
        if (text.startsWith('bu', i)) { out.push(1000); i++; } else out.push(text.charCodeAt(i));
      }
      return out;
    },
  };
  assert.deepEqual(actionTokenIds(enc, 'x: '), [1000, 's'.charCodeAt(0), 'h'.charCodeAt(0)]);
  assert.throws(() => actionTokenIds(enc, 'x: ', ['sell', 'sold', 'hold']), /action words 'sell' and 'sold' start with the same token 115/);
  assert.throws(() => actionTokenIds(enc, 'b', ['uy', 'sell', 'hold']), /action word 'uy' merges with the answer prefix "b"/);
  assert.throws(() => actionTokenIds(enc, 'x', ['', 'sell', 'hold']), /action word '' adds no token after the prefix/);
});

test('SmolLM2 tokenizer: the action words after the JSON answer prefix start with distinct tokens', { skip: needsModels('smollm2-135m-instruct', 'tokenizer.json') }, async () => {
  const { loadHfTokenizer } = await import('../src/model/tokenizer.js');
  const tok = loadHfTokenizer(modelsPath('smollm2-135m-instruct', 'tokenizer.json'));
  const ids = actionTokenIds(tok, ACTION_ANSWER_PREFIX);
  // Each word is a single token in the vocabulary (no leading space after the quote).
  const vocab = (JSON.parse(readFileSync(modelsPath('smollm2-135m-instruct', 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
  assert.deepEqual(ids, [vocab.buy, vocab.sell, vocab.hold]);
});
