// The FLOP counter of the benchmarks (bench/flops.ts) against the hand-derived count of a forward
// (bench/model.ts fullForwardFlops), the causal key sum by brute force, and phase attribution.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { causalKeys, countFlops } from '../bench/flops.js';
import { fullForwardFlops } from '../bench/model.js';
import { getBackend } from '../src/kernels/index.js';
import { TINY } from '../src/model/configs.js';
import { loadModel } from '../src/model/load.js';
import { LlamaModel } from '../src/model/llama.js';
import { Profiler } from '../src/util/profile.js';

test('causalKeys is the number of (query, key) pairs a causal mask allows', () => {
  for (const [T, past] of [[1, 0], [5, 0], [3, 7], [64, 700]] as const) {
    let n = 0;
    for (let t = 0; t < T; t++) for (let s = 0; s <= past + t; s++) n++;
    assert.equal(causalKeys(T, past), n);
  }
});

test('counted FLOPs of a full forward equal the hand-derived count, attributed to the open phase', async () => {
  const m = await loadModel('random:tiny', { seed: 2 });
  const prof = new Profiler();
  const counter = countFlops(getBackend(), () => prof.current());
  const model = new LlamaModel(m.config, m.weights, counter.backend, { trainableLayers: 1 });
  const ids = Array.from({ length: 37 }, (_, i) => (i * 13) % TINY.vocab_size);
  prof.time('outer', () => {
    const h = model.forward(ids);
    prof.time('inner', () => model.selectedLogits(h, [1, 2, 3]));
  });
  const t = counter.totals();
  assert.equal(t.outer! + t.inner!, fullForwardFlops(m.config, ids.length));
  assert.equal(t.inner, 2 * 3 * m.config.hidden_size, 'the three logits, in the phase open when they ran');
  assert.equal(t.none, undefined);
  model.forward(ids.slice(0, 5));
  assert.equal(counter.totals().none, fullForwardFlops(m.config, 5) - 2 * 3 * m.config.hidden_size, 'outside every phase: none');
});
