// The frozen/trainable split and the frozen-prefix cache: same numbers with and without the
// cache, longest-prefix reuse, LRU eviction by bytes, hit/miss accounting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LlamaModel } from '../src/model/llama.js';
import { PrefixCache, type FrozenPrefix } from '../src/model/prefix-cache.js';
import { Rng } from '../src/util/rng.js';
import { maxRelErr, randomIds, refEmbed, refLayers, testConfig, testWeights, toRef } from './model-ref.js';
import { tsBackend } from './model-backends.js';
import { boundaryOf } from './model-passes.js';

const cfg = testConfig(true, { num_hidden_layers: 4 });
const weights = testWeights(cfg, 12);
const C = cfg.hidden_size;
const KVD = cfg.num_key_value_heads * cfg.head_dim;

/** Bytes of an entry of P tokens with F frozen layers, from the layout: ids + K,V per layer + hidden. */
function entryBytes(P: number, F: number): number {
  return 4 * P + F * 2 * P * KVD * 4 + P * C * 4;
}

test('the frozen layers give the boundary of the float64 reference, with or without a cached prefix', () => {
  const model = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 2 });
  const rng = new Rng(1);
  const system = randomIds(rng, 9, cfg.vocab_size);
  const a = [...system, ...randomIds(rng, 5, cfg.vocab_size)];
  const b = [...system, ...randomIds(rng, 7, cfg.vocab_size)];
  const ref = toRef(weights);
  const refB = refLayers(cfg, ref, refEmbed(cfg, ref, b), 0, 2);

  const plain = boundaryOf(new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 2 }), b);
  assert.ok(maxRelErr(plain, refB.flatMap((r) => Array.from(r))) < 1e-5);

  boundaryOf(model, a, [system.length]); // miss: computes and stores the system prefix
  assert.deepEqual(model.prefixCache.stats(), {
    entries: 1, bytes: entryBytes(9, 2), limitBytes: 256 * 2 ** 20, hits: 0, misses: 1, evictions: 0, rejected: 0,
  });
  assert.deepEqual(model.frozenTokens, { computed: 14, reused: 0 });
  const cached = boundaryOf(model, b, [system.length]); // hit: only 7 tokens computed
  assert.equal(model.prefixCache.stats().hits, 1);
  assert.deepEqual(model.frozenTokens, { computed: 21, reused: 9 });
  // The TypeScript backend computes each row independently, so reuse is exact.
  assert.deepEqual(Array.from(cached), Array.from(plain));
});

test('frozen + trainable forward equals the full forward, for every K', () => {
  const ids = randomIds(new Rng(4), 11, cfg.vocab_size);
  for (let K = 1; K <= 4; K++) {
    const model = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: K });
    const full = model.forward(ids, { outRows: 3 });
    const boundary = boundaryOf(model, ids, [4]);
    const acts = model.trainForward(ids, boundary, { outRows: 3 });
    assert.ok(maxRelErr(acts.hidden, full) < 1e-6, `K=${K}`);
    // reusing the activations' memory gives the same result
    const again = model.trainForward(ids, boundaryOf(model, ids, [4]), { outRows: 3, reuse: acts });
    assert.deepEqual(Array.from(again.hidden), Array.from(acts.hidden));
  }
});

test('the longest cached prefix is used, and only when the ids match', () => {
  const model = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 3 });
  const rng = new Rng(2);
  const base = randomIds(rng, 20, cfg.vocab_size);
  boundaryOf(model, base, [6, 12]); // two entries: 6 and 12 tokens
  assert.equal(model.prefixCache.stats().entries, 2);
  const reused = (): number => model.frozenTokens.reused;

  let before = reused();
  boundaryOf(model, [...base.slice(0, 15), 1, 2]); // shares 15 tokens: the 12-token entry fits
  assert.equal(reused() - before, 12);
  before = reused();
  boundaryOf(model, [...base.slice(0, 9), 3, 3, 3, 3]); // shares 9: only the 6-token entry
  assert.equal(reused() - before, 6);
  before = reused();
  const changed = base.slice(); changed[3] = (changed[3]! + 1) % cfg.vocab_size;
  boundaryOf(model, changed); // differs at token 3: nothing to reuse
  assert.equal(reused() - before, 0);
  const s = model.prefixCache.stats();
  assert.equal(s.hits, 2);
  assert.equal(s.misses, 2);
  // A prompt equal to a cached prefix is served entirely from the cache.
  before = reused();
  const whole = boundaryOf(model, base.slice(0, 12));
  assert.equal(reused() - before, 12);
  const fresh = boundaryOf(new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 3 }), base.slice(0, 12));
  assert.deepEqual(Array.from(whole), Array.from(fresh));
});

test('LRU eviction keeps the bytes under the limit; too-large entries are refused', () => {
  const F = 2;
  const limit = entryBytes(10, F) * 2 + 100; // room for two 10-token entries
  const model = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 2, prefixCacheBytes: limit });
  const rng = new Rng(3);
  const p = [0, 1, 2].map(() => randomIds(rng, 10, cfg.vocab_size));
  boundaryOf(model, p[0]!, [10]);
  boundaryOf(model, p[1]!, [10]);
  boundaryOf(model, p[0]!); // touch p0: p1 becomes the least recently used
  boundaryOf(model, p[2]!, [10]); // evicts p1
  let s = model.prefixCache.stats();
  assert.equal(s.entries, 2);
  assert.equal(s.evictions, 1);
  assert.equal(s.bytes, 2 * entryBytes(10, F));
  assert.ok(s.bytes <= limit);
  const before = model.frozenTokens.reused;
  boundaryOf(model, p[0]!); boundaryOf(model, p[2]!); boundaryOf(model, p[1]!);
  assert.equal(model.frozenTokens.reused - before, 20); // p0 and p2 hit, p1 was evicted
  boundaryOf(model, randomIds(rng, 30, cfg.vocab_size), [30]); // larger than the limit
  s = model.prefixCache.stats();
  assert.equal(s.rejected, 1);
  assert.ok(s.bytes <= limit);
});

test('a model snapshot shares the frozen cache but not the trainable weights', () => {
  const model = new LlamaModel(cfg, testWeights(cfg, 13), tsBackend, { trainableLayers: 2 });
  const ids = randomIds(new Rng(6), 8, cfg.vocab_size);
  boundaryOf(model, ids, [5]);
  const snap = model.snapshot();
  assert.equal(snap.prefixCache, model.prefixCache);
  const before = snap.forward(ids).slice();
  model.weights.layers[3]!.down[0]! += 1; // a training step on the live model
  model.weights.norm[0]! += 1;
  assert.deepEqual(Array.from(snap.forward(ids)), Array.from(before));
  assert.notDeepEqual(Array.from(model.forward(ids)), Array.from(before));
  assert.equal(snap.weights.layers[0], model.weights.layers[0]); // frozen layers shared
});

test('segment ends and cache limits are validated', () => {
  const model = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 2 });
  assert.throws(() => boundaryOf(model, [1, 2, 3], [4]), /segment end must be an integer in 1\.\.3 \(the prompt length\), got 4/);
  assert.throws(() => boundaryOf(model, [1, 2, 3], [0]), /segment end must be an integer in 1\.\.3/);
  assert.throws(() => boundaryOf(model, [1, 2, 3], [2, 1.5]), /got 1\.5/);
  assert.throws(() => boundaryOf(model, [1, 2, 3], [2, 2]), /segment ends must be strictly increasing, got 2, 2/);
  assert.throws(() => boundaryOf(model, [1, 200]), /ids\[1\] = 200 is not a token id/);
  assert.throws(() => new PrefixCache(-1), /non-negative number of bytes, got -1/);
});

test('PrefixCache alone: exact peek, replacement of equal ids, clear', () => {
  const mk = (ids: number[]): FrozenPrefix => ({ ids: Int32Array.from(ids), k: [new Float32Array(ids.length)], v: [new Float32Array(ids.length)], hidden: new Float32Array(ids.length) });
  const cache = new PrefixCache(1e6);
  cache.put(mk([1, 2, 3]));
  cache.put(mk([1, 2, 3]));
  assert.equal(cache.stats().entries, 1);
  assert.equal(cache.stats().bytes, 3 * 4 * 4);
  assert.ok(cache.peek([1, 2, 3, 4], 3));
  assert.equal(cache.peek([1, 2, 3, 4], 2), undefined);
  assert.equal(cache.lookup([1, 2]), undefined); // shorter than every entry
  assert.equal(cache.lookup([1, 2, 3, 9])!.ids.length, 3);
  cache.clear();
  assert.equal(cache.stats().entries, 0);
  assert.equal(cache.lookup([1, 2, 3]), undefined);
});
