// The language-model objective (every layer, the embedding, the tied or untied LM head, cross-entropy
// over the vocabulary) against an independent float64 computation and its central finite differences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend } from '../src/kernels/backend.js';
import { IGNORE_TARGET, LanguageModelTrainer } from '../src/pretrain/lm-objective.js';
import { LAYER_TENSOR_NAMES, type LayerKey } from '../src/model/weights.js';
import type { LlamaConfig } from '../src/model/config.js';
import { Rng } from '../src/util/rng.js';
import { randomIds, refHidden, refLogitsRow, testConfig, testWeights, toRef, type RefWeights } from './model-ref.js';
import { nativeBackend, needsNative, tsBackend } from './model-backends.js';
import { checkTensor } from './finite-diff.js';

/** Mean cross-entropy over the positions with a target, in float64 from the reference decoder. */
function refLoss(cfg: LlamaConfig, w: RefWeights, ids: number[], targets: number[]): { sum: number; count: number } {
  const h = refHidden(cfg, w, ids);
  let sum = 0, count = 0;
  targets.forEach((y, t) => {
    if (y === IGNORE_TARGET) return;
    const z = refLogitsRow(cfg, w, h[t]!);
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    sum += lse - z[y]!;
    count++;
  });
  return { sum, count };
}

function refTensor(w: RefWeights, name: string): Float64Array {
  if (name === 'model.embed_tokens.weight') return w.embed;
  if (name === 'lm_head.weight') return w.lmHead!;
  if (name === 'model.norm.weight') return w.norm;
  const [, , l, ...rest] = name.split('.');
  const key = (Object.keys(LAYER_TENSOR_NAMES) as LayerKey[]).find((k) => LAYER_TENSOR_NAMES[k] === rest.join('.'));
  return w.layers[Number(l)]![key!]!;
}

function gradCheck(be: Backend, tied: boolean, tol: number): void {
  const cfg = testConfig(tied, { num_hidden_layers: 2 });
  const weights = testWeights(cfg, tied ? 61 : 62);
  // Smaller embeddings than the test default so that the softmax is not saturated.
  for (let i = 0; i < weights.embed.length; i++) weights.embed[i] = weights.embed[i]! * 0.3;
  if (weights.lmHead) for (let i = 0; i < weights.lmHead.length; i++) weights.lmHead[i] = weights.lmHead[i]! * 0.3;
  const rng = new Rng(9);
  const T = 7;
  const ids = randomIds(rng, T, cfg.vocab_size);
  // A repeated id (its embedding gradient is the sum of two rows) and a position without a target.
  ids[5] = ids[1]!;
  const targets = randomIds(rng, T, cfg.vocab_size);
  targets[3] = IGNORE_TARGET;
  const trainer = new LanguageModelTrainer(cfg, weights, be);
  trainer.zeroGrads();
  const N = 6; // the positions with a target
  const step = trainer.step(ids, targets, N);
  const ref = toRef(weights);
  const r0 = refLoss(cfg, ref, ids, targets);
  assert.equal(step.count, N);
  assert.equal(r0.count, N);
  assert.ok(Math.abs(step.lossSum - r0.sum) < 1e-4 * Math.abs(r0.sum), `loss ${step.lossSum} vs float64 ${r0.sum}`);
  const evalOnly = trainer.loss(ids, targets);
  assert.ok(Math.abs(evalOnly.lossSum - step.lossSum) < 1e-9 * Math.abs(step.lossSum), 'loss() and step() agree');

  const f = (): number => refLoss(cfg, ref, ids, targets).sum / N;
  const params = trainer.params();
  assert.deepEqual(params.map((p) => p.name).filter((n) => !n.startsWith('model.layers.')),
    tied ? ['model.embed_tokens.weight', 'model.norm.weight'] : ['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight']);
  assert.equal(params.length, 9 * cfg.num_hidden_layers + (tied ? 2 : 3));
  for (const p of params) {
    const target = refTensor(ref, p.name);
    const extra = p.name === 'model.embed_tokens.weight' ? [ids[1]! * cfg.hidden_size + 3] : [];
    const err = checkTensor(p.name, p.grad, target, f, rng, 6, extra);
    assert.ok(err < tol, `${be.name} ${p.name}: error ${err.toExponential(2)} >= ${tol}`);
  }
  // An id that appears nowhere gets no embedding gradient from the input side; tied, it still gets
  // the LM head's (every vocabulary row takes part in the softmax).
  const unused = [...Array(cfg.vocab_size).keys()].find((v) => !ids.includes(v))!;
  const row = params[0]!.grad.subarray(unused * cfg.hidden_size, (unused + 1) * cfg.hidden_size);
  assert.equal(row.some((v) => v !== 0), tied, `embedding row of an unused id is ${tied ? 'non-zero (LM head)' : 'zero'}`);
}

for (const tied of [true, false]) {
  test(`LM objective gradients match finite differences, TypeScript backend (${tied ? 'tied' : 'untied'})`, () => gradCheck(tsBackend, tied, 3e-5));
  test(`LM objective gradients match finite differences, native backend (${tied ? 'tied' : 'untied'})`, { skip: needsNative }, () => gradCheck(nativeBackend!, tied, 3e-4));
}

test('LM objective: gradients accumulate and the normalizer scales them', () => {
  const cfg = testConfig(true, { num_hidden_layers: 2 });
  const trainer = new LanguageModelTrainer(cfg, testWeights(cfg, 70), tsBackend);
  const rng = new Rng(4);
  const ids = randomIds(rng, 5, cfg.vocab_size), targets = randomIds(rng, 5, cfg.vocab_size);
  trainer.zeroGrads();
  trainer.step(ids, targets, 5);
  const once = trainer.params().map((p) => p.grad.slice());
  trainer.step(ids, targets, 10); // half the weight: total 1.5x
  trainer.params().forEach((p, k) => {
    for (let i = 0; i < p.grad.length; i += 53) {
      assert.ok(Math.abs(p.grad[i]! - 1.5 * once[k]![i]!) <= 1e-5 * Math.max(1e-3, Math.abs(once[k]![i]!)), `${p.name}[${i}]`);
    }
  });
  assert.throws(() => trainer.step([1, 2], [3], 1), /2 ids and 1 targets/);
  assert.throws(() => trainer.step([1, 2], [3, cfg.vocab_size], 1), new RegExp(`targets\\[1\\] = ${cfg.vocab_size} is not a token id`));
  assert.throws(() => trainer.step([1, -4], [3, 2], 1), /ids\[1\] = -4 is not a token id/);
});
