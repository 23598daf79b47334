// LlamaModel.forward over the trainable layers from the frozen boundary with a PrefixCache of the
// prompt prefixes' keys and values (the reference policy's and the rollout's shortcut).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LlamaModel } from '../src/model/llama.js';
import { PrefixCache } from '../src/model/prefix-cache.js';
import { TokenSegments } from '../src/model/segments.js';
import type { Backend } from '../src/kernels/backend.js';
import { Rng } from '../src/util/rng.js';
import { maxRelErr, randomIds, refFinalNorm, refEmbed, refLayers, testConfig, testWeights, toRef } from './model-ref.js';
import { nativeBackend, tsBackend } from './model-backends.js';
import { boundaryOf } from './model-passes.js';

const cfg = testConfig(true, { num_hidden_layers: 4 });
const weights = testWeights(cfg, 21);
const K = 2;

/** The trainable layers' inference from the boundary, with their own prefix cache, split at `ends`. */
function top(model: LlamaModel, ids: number[], cache: PrefixCache, ends: number[], boundary = boundaryOf(model, ids)): Float32Array {
  return model.forward(TokenSegments.of(ids, ends), { from: model.frozenLayers, input: boundary, cache });
}

/** The float64 reference: final-normed hidden state of the last position after all layers. */
function refLast(ids: number[]): number[] {
  const ref = toRef(weights);
  const x = refLayers(cfg, ref, refEmbed(cfg, ref, ids), 0, cfg.num_hidden_layers);
  return Array.from(refFinalNorm(cfg, ref, x).at(-1)!);
}

const backends: Array<[string, Backend | undefined]> = [['typescript', tsBackend], ['native', nativeBackend]];
for (const [name, be] of backends) {
  test(`the top layers with a prefix cache (${name}) equal the float64 reference, cold or with cached prefixes, and the cache state does not change a bit`, { skip: be ? false : 'native backend unavailable' }, () => {
    const model = new LlamaModel(cfg, weights, be!, { trainableLayers: K });
    const rng = new Rng(3);
    const system = randomIds(rng, 9, cfg.vocab_size), day = randomIds(rng, 6, cfg.vocab_size);
    const a = [...system, ...day, ...randomIds(rng, 4, cfg.vocab_size)];
    const b = [...system, ...day, ...randomIds(rng, 5, cfg.vocab_size)]; // same day, another account
    const marks = [system.length, system.length + day.length];

    const cache = new PrefixCache(2 ** 20);
    const ha = Array.from(top(model, a, cache, marks));
    assert.ok(maxRelErr(ha, refLast(a)) < 1e-5, 'cold');
    assert.deepEqual(model.topTokens, { computed: a.length, reused: 0 });
    assert.equal(cache.stats().entries, 2, 'an entry at each mark');

    const hb = Array.from(top(model, b, cache, marks));
    assert.ok(maxRelErr(hb, refLast(b)) < 1e-5, 'warm');
    assert.deepEqual(model.topTokens, { computed: a.length + 5, reused: 15 }, 'only the 5 tokens after the day were computed');

    // The same prompt on a cold cache: computed in the same segments, so bit-identical.
    const cold = new LlamaModel(cfg, weights, be!, { trainableLayers: K });
    assert.deepEqual(Array.from(top(cold, b, new PrefixCache(2 ** 20), marks)), hb);
    // And close to the training path's hidden state (one segment of T rows).
    assert.ok(maxRelErr(hb, cold.trainForward(b, boundaryOf(cold, b)).hidden) < 1e-5);
  });
}

test('the top layers with a prefix cache: an entry covering the whole prompt is not used (the last row must be computed); bad boundaries and marks are errors', () => {
  const model = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: K });
  const ids = randomIds(new Rng(8), 7, cfg.vocab_size);
  const cache = new PrefixCache(2 ** 20);
  const boundary = boundaryOf(model, ids);
  // Another prompt that is longer and marked at 7 stores an entry covering all of `ids`.
  const longer = [...ids, 1, 2];
  top(model, longer, cache, [7]);
  const before = { ...model.topTokens };
  const h = Array.from(top(model, ids, cache, [], boundary));
  assert.deepEqual({ computed: model.topTokens.computed - before.computed, reused: model.topTokens.reused - before.reused }, { computed: 7, reused: 0 });
  assert.ok(maxRelErr(h, refLast(ids)) < 1e-5);
  assert.throws(() => top(model, ids, cache, [], boundary.subarray(1)), /forward: input has \d+ values, expected T\*C = 7\*/);
  assert.throws(() => top(model, ids, cache, [0], boundary), /segment end must be an integer in 1\.\.7 \(the prompt length\), got 0/);
  assert.throws(() => top(model, ids, cache, [8], boundary), /got 8/);
  assert.throws(() => model.forward(ids, { from: model.frozenLayers }), /a pass from layer 2 needs the rows entering it \(input\)/);
  assert.throws(() => model.forward(ids, { from: 3, to: 2 }), /layers 3\.\.1 are not a range of the model's 0\.\.3/);
});
