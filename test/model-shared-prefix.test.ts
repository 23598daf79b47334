// Training samples that share a prompt prefix: the trainable layers run the prefix once
// (LlamaModel.trainForward with `shared`), each sample only its own rows after it, and the prefix's
// backward once with the summed key/value gradients (backward(prefix, null)). Hidden states and parameter gradients must
// equal the per-sample computation over whole prompts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LlamaModel } from '../src/model/llama.js';
import type { Backend } from '../src/kernels/backend.js';
import { Rng } from '../src/util/rng.js';
import { maxRelErr, randomIds, testConfig, testWeights } from './model-ref.js';
import { nativeBackend, tsBackend } from './model-backends.js';
import { backwardInput, boundaryOf } from './model-passes.js';

const cfg = testConfig(true, { num_hidden_layers: 4 });

function gradsOf(m: LlamaModel): Map<string, Float32Array> {
  return new Map(m.params().map((p) => [p.name, p.grad.slice()]));
}

const cases: Array<[string, Backend | undefined, number]> = [['typescript', tsBackend, 2], ['typescript', tsBackend, 4], ['native', nativeBackend, 3]];
for (const [name, be, K] of cases) {
  test(`shared prefix (${name}, K=${K}): same hidden states and parameter gradients as whole prompts, sample by sample`, { skip: be ? false : 'native backend unavailable' }, () => {
    const model = new LlamaModel(cfg, testWeights(cfg, 31), be!, { trainableLayers: K });
    const C = cfg.hidden_size;
    const rng = new Rng(9);
    const system = randomIds(rng, 8, cfg.vocab_size);
    const prompts = [4, 6, 1].map((n) => [...system, ...randomIds(rng, n, cfg.vocab_size)]);
    const dH = prompts.map(() => Float32Array.from({ length: C }, () => rng.normal()));
    const boundaries = prompts.map((ids) => boundaryOf(model, ids));

    model.zeroGrads();
    const plainHidden = prompts.map((ids, i) => {
      const acts = model.trainForward(ids, boundaries[i]!);
      const h = acts.hidden.slice();
      model.backward(acts, dH[i]!);
      return h;
    });
    const plain = gradsOf(model);

    model.zeroGrads();
    const prefix = model.trainForward(system, boundaries[0]!.subarray(0, system.length * C), { shared: true });
    prompts.forEach((ids, i) => {
      const acts = model.trainForward(ids, boundaries[i]!, { prefix });
      assert.ok(maxRelErr(acts.hidden, plainHidden[i]!) < 1e-5, `hidden of prompt ${i}`);
      const dx = backwardInput(model, acts, dH[i]!);
      assert.equal(dx.length, (ids.length - system.length) * C, 'the boundary gradient covers the rows after the prefix');
    });
    model.backward(prefix, null);
    for (const [pname, g] of gradsOf(model)) {
      const ref = plain.get(pname)!;
      assert.ok(ref.some((x) => x !== 0), `${pname} has a gradient`);
      assert.ok(maxRelErr(g, ref) < 1e-4, `${pname}: relative error ${maxRelErr(g, ref)}`);
    }

    // The memory of a shared prefix is recycled for the next one.
    const again = model.trainForward(system, boundaries[1]!.subarray(0, system.length * C), { shared: true, reuse: prefix });
    assert.ok(again.dK.every((d) => d.every((x) => x === 0)), 'the key-gradient sums start at zero');
  });
}

test('shared prefix: a prefix as long as the prompt, or from another split, is an error', () => {
  const model = new LlamaModel(cfg, testWeights(cfg, 31), tsBackend, { trainableLayers: 2 });
  const ids = randomIds(new Rng(2), 6, cfg.vocab_size);
  const b = boundaryOf(model, ids);
  const prefix = model.trainForward(ids, b, { shared: true });
  assert.throws(() => model.trainForward(ids, b, { prefix }), /the shared prefix \(6 tokens, 2 layers\) must be shorter than the prompt \(6 tokens\) and from this model \(2 trainable layers\)/);
  const other = new LlamaModel(cfg, testWeights(cfg, 31), tsBackend, { trainableLayers: 3 });
  const longer = [...ids, 5];
  assert.throws(() => other.trainForward(longer, boundaryOf(other, longer), { prefix }), /from this model \(3 trainable layers\)/);
  assert.throws(() => model.trainForward(ids, b.subarray(1), { shared: true }), /trainForward: boundary has \d+ values, expected T\*C = 6\*/);
});

test('buffer lifetimes are checked: released activations, a sample after its prefix\'s backward, a second prefix backward, another prompt\'s prefix', () => {
  const model = new LlamaModel(cfg, testWeights(cfg, 31), tsBackend, { trainableLayers: 2 });
  const C = cfg.hidden_size;
  const ids = randomIds(new Rng(4), 9, cfg.vocab_size);
  const b = boundaryOf(model, ids);
  const dH = new Float32Array(C).fill(0.1);
  const first = model.trainForward(ids, b);
  const second = model.trainForward(ids, b, { reuse: first });
  assert.throws(() => model.backward(first, dH), /released \(a later forward reused their memory\)/);
  model.backward(second, dH);
  const prefix = model.trainForward(ids.slice(0, 4), b.subarray(0, 4 * C), { shared: true });
  const other = [...ids.slice(0, 3), (ids[3]! + 1) % cfg.vocab_size, ...ids.slice(4)];
  assert.throws(() => model.trainForward(other, b, { prefix }), /the shared prefix's ids are not the first 4 ids of the prompt/);
  const sample = model.trainForward(ids, b, { prefix });
  model.backward(sample, dH);
  model.backward(prefix, null);
  assert.throws(() => model.backward(prefix, null), /a shared prefix takes one backward/);
  assert.throws(() => model.backward(sample, dH), /has had its backward/);
  assert.throws(() => model.trainForward(ids, b, { prefix }), /finished \(its backward ran\)/);
});
