// The decoder's forward pass against an independent float64 decoder, KV-cache consistency,
// backend agreement, and input validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LlamaModel } from '../src/model/llama.js';
import { RopeTables } from '../src/model/rope.js';
import { Rng } from '../src/util/rng.js';
import { maxRelErr, randomIds, refHidden, refLogitsRow, testConfig, testWeights, toRef } from './model-ref.js';
import { nativeBackend, needsNative, tsBackend } from './model-backends.js';

for (const tied of [true, false]) {
  test(`forward logits match the float64 reference (${tied ? 'tied' : 'untied'} head, GQA)`, () => {
    const cfg = testConfig(tied);
    const w = testWeights(cfg, 11);
    const model = new LlamaModel(cfg, w, tsBackend, { trainableLayers: 2 });
    const ids = randomIds(new Rng(5), 13, cfg.vocab_size);
    const ref = toRef(w);
    const refH = refHidden(cfg, ref, ids);
    const hidden = model.forward(ids, { outRows: ids.length });
    for (let t = 0; t < ids.length; t++) {
      const row = hidden.subarray(t * cfg.hidden_size, (t + 1) * cfg.hidden_size);
      const logits = model.fullLogits(row);
      const refLogits = refLogitsRow(cfg, ref, refH[t]!);
      assert.ok(maxRelErr(logits, refLogits) < 1e-4, `position ${t}: rel err ${maxRelErr(logits, refLogits)}`);
    }
  });
}

test('the top layer computing only the last rows gives the same rows as computing all', () => {
  const cfg = testConfig(true);
  const model = new LlamaModel(cfg, testWeights(cfg, 3), tsBackend, { trainableLayers: 1 });
  const ids = randomIds(new Rng(9), 10, cfg.vocab_size);
  const C = cfg.hidden_size;
  const all = model.forward(ids, { outRows: 10 }).slice();
  const last3 = model.forward(ids, { outRows: 3 });
  assert.deepEqual(Array.from(last3), Array.from(all.subarray(7 * C)));
  const last = model.forward(ids);
  assert.equal(last.length, C);
  assert.ok(maxRelErr(last, all.subarray(9 * C)) < 1e-6);
});

test('KV-cached incremental forward equals the full forward', () => {
  const cfg = testConfig(false);
  const model = new LlamaModel(cfg, testWeights(cfg, 4), tsBackend, { trainableLayers: 2 });
  const C = cfg.hidden_size;
  const ids = randomIds(new Rng(2), 12, cfg.vocab_size);
  const full = model.forward(ids, { outRows: ids.length }).slice();
  const cache = model.newCache();
  let pos = 0;
  for (const chunk of [4, 1, 3, 1, 2, 1]) {
    const part = ids.slice(pos, pos + chunk);
    const h = model.forward(part, { cache, outRows: chunk });
    assert.equal(cache.length, pos + chunk);
    assert.ok(maxRelErr(h, full.subarray(pos * C, (pos + chunk) * C)) < 1e-5, `chunk at ${pos}`);
    pos += chunk;
  }
  assert.equal(pos, ids.length);
});

test('selectedLogits equals the chosen entries of fullLogits', () => {
  const cfg = testConfig(true);
  const model = new LlamaModel(cfg, testWeights(cfg, 8), tsBackend, { trainableLayers: 2 });
  const h = model.forward(randomIds(new Rng(1), 6, cfg.vocab_size));
  const full = model.fullLogits(h);
  const chosen = [5, 96, 0, 41];
  const sel = model.selectedLogits(h, chosen);
  chosen.forEach((id, i) => assert.ok(Math.abs(sel[i]! - full[id]!) <= 1e-5 * Math.max(1, Math.abs(full[id]!))));
});

test('RoPE tables follow cos(p * theta^(-2i/D)) (float32 angle as in HF)', () => {
  const r = new RopeTables(8, 10000, 4096);
  r.ensure(3000);
  for (const p of [0, 1, 17, 2999]) {
    for (let i = 0; i < 4; i++) {
      const ang = p * Math.pow(10000, (-2 * i) / 8);
      // The float32 angle differs from the float64 one by at most p * 2^-24 relative.
      const tol = 2e-7 + p * 6e-8 * Math.pow(10000, (-2 * i) / 8);
      assert.ok(Math.abs(r.cos[p * 4 + i]! - Math.cos(ang)) <= tol, `cos p=${p} i=${i}`);
      assert.ok(Math.abs(r.sin[p * 4 + i]! - Math.sin(ang)) <= tol, `sin p=${p} i=${i}`);
    }
  }
  assert.throws(() => r.ensure(4097), /4097 positions but max_position_embeddings is 4096/);
});

test('native and TypeScript backends give the same forward', { skip: needsNative }, () => {
  for (const tied of [true, false]) {
    const cfg = testConfig(tied, { max_position_embeddings: 256 });
    const w = testWeights(cfg, 21);
    const ids = randomIds(new Rng(7), 40, cfg.vocab_size);
    const a = new LlamaModel(cfg, w, tsBackend, { trainableLayers: 2 }).forward(ids, { outRows: 40 });
    const b = new LlamaModel(cfg, w, nativeBackend!, { trainableLayers: 2 }).forward(ids, { outRows: 40 });
    assert.ok(maxRelErr(b, a) < 1e-5, `rel err ${maxRelErr(b, a)}`);
    // and the native path against the float64 reference
    const ref = toRef(w);
    const refH = refHidden(cfg, ref, ids);
    const m = new LlamaModel(cfg, w, nativeBackend!, { trainableLayers: 2 });
    const logits = m.fullLogits(b.subarray(39 * cfg.hidden_size));
    assert.ok(maxRelErr(logits, refLogitsRow(cfg, ref, refH[39]!)) < 1e-4);
  }
});

test('bad inputs are rejected with clear errors', () => {
  const cfg = testConfig(true);
  const w = testWeights(cfg, 1);
  const model = new LlamaModel(cfg, w, tsBackend, { trainableLayers: 2 });
  assert.throws(() => model.forward([]), /token ids are empty/);
  assert.throws(() => model.forward([1, 97]), /ids\[1\] = 97 is not a token id \(expected an integer in 0\.\.96\)/);
  assert.throws(() => model.forward([-1]), /ids\[0\] = -1 is not a token id/);
  assert.throws(() => model.forward([1.5]), /ids\[0\] = 1.5 is not a token id/);
  assert.throws(() => model.forward([1, 2], { outRows: 3 }), /outRows must be an integer in 1\.\.2/);
  assert.throws(() => model.forward([1, 2], { outRows: 0 }), /outRows must be an integer in 1\.\.2/);
  assert.throws(() => model.forward(new Array(65).fill(1)), /65 tokens exceeds max_position_embeddings 64/);
  const cache = model.newCache();
  model.forward(new Array(60).fill(1), { cache });
  assert.throws(() => model.forward(new Array(5).fill(1), { cache }), /65 tokens exceeds max_position_embeddings 64/);
  assert.throws(() => model.fullLogits(new Float32Array(5)), /hidden row has 5 values, expected hidden_size 48/);
  assert.throws(() => model.selectedLogits(new Float32Array(48), [3, 200]), /tokenIds\[1\] = 200 is not a token id/);

  for (const K of [0, 4, 1.5]) {
    assert.throws(() => new LlamaModel(cfg, w, tsBackend, { trainableLayers: K }), /trainableLayers must be an integer in 1\.\.3 \(num_hidden_layers\), got/);
  }
  assert.throws(() => new LlamaModel(cfg, w, tsBackend), /trainableLayers must be an integer in 1\.\.3 \(num_hidden_layers\), got 4/); // the default 4 is not clamped
  const K1 = { trainableLayers: 1 };
  const short = { ...w, layers: w.layers.map((l, i) => (i === 1 ? { ...l, k: l.k.subarray(1) } : l)) };
  assert.throws(() => new LlamaModel(cfg, short, tsBackend, K1), /model\.layers\.1\.self_attn\.k_proj\.weight has 767 values, expected shape \[16, 48\] = 768/);
  assert.throws(() => new LlamaModel(cfg, { ...w, layers: w.layers.slice(1) }, tsBackend, K1), /2 layers, config num_hidden_layers is 3/);
  assert.throws(() => new LlamaModel(testConfig(false), w, tsBackend, K1), /lm_head\.weight is missing/);
  assert.throws(() => new LlamaModel(cfg, { ...w, lmHead: w.embed }, tsBackend, K1), /lm_head\.weight is given but the config ties/);
  assert.throws(() => new LlamaModel({ ...cfg, num_key_value_heads: 4 }, w, tsBackend, K1), /num_attention_heads \(6\) must be a multiple of num_key_value_heads \(4\)/);
  assert.throws(() => new LlamaModel({ ...cfg, head_dim: 7 }, w, tsBackend, K1), /head_dim must be even/);
  const other = new LlamaModel(testConfig(true, { num_hidden_layers: 2 }), { ...w, layers: w.layers.slice(1) }, tsBackend, { trainableLayers: 1 });
  assert.throws(() => model.forward([1], { cache: other.newCache() }), /KV cache has 2 layers, the model has 3/);
});

test('the frozen layers run on weights packed once: gemmPacked does their products (not the trainable layers\'), matching sgemm and the float64 decoder', { skip: needsNative }, () => {
  const cfg = testConfig(false, { num_hidden_layers: 4 });
  const w = testWeights(cfg, 21);
  const calls = { packed: 0 };
  const be = nativeBackend!;
  const counting = new Proxy(be, {
    get(target, key) {
      const v = Reflect.get(target, key) as unknown;
      if (key === 'gemmPacked') return (...a: Parameters<typeof be.gemmPacked>) => { calls.packed++; target.gemmPacked(...a); };
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const packed = new LlamaModel(cfg, w, counting, { trainableLayers: 1 });
  const plain = new LlamaModel(cfg, w, counting, { trainableLayers: 1, packFrozen: false });
  const ids = randomIds(new Rng(6), 17, cfg.vocab_size);
  const T = ids.length, C = cfg.hidden_size;
  const a = packed.forward(ids, { outRows: 'all' }).slice();
  assert.equal(calls.packed, 7 * 3, 'seven products in each of the 3 frozen layers');
  calls.packed = 0;
  const b = plain.forward(ids, { outRows: 'all' });
  assert.equal(calls.packed, 0, 'packFrozen false: sgemm only');
  assert.ok(maxRelErr(a, b) < 1e-5, `packed vs sgemm: ${maxRelErr(a, b)}`);
  const ref = refHidden(cfg, toRef(w), ids);
  for (let t = 0; t < T; t++) {
    const logits = packed.fullLogits(a.subarray(t * C, (t + 1) * C));
    assert.ok(maxRelErr(logits, refLogitsRow(cfg, toRef(w), ref[t]!)) < 1e-4, `position ${t}`);
  }
  // The trainable layer's passes use the matrices as stored (its weights change every step).
  const boundary = packed.forward(ids, { to: packed.frozenLayers, outRows: 'all' });
  calls.packed = 0;
  packed.trainForward(Int32Array.from(ids), boundary, { outRows: 1 });
  assert.equal(calls.packed, 0);
  // A decode step runs one row through the same packed products.
  const cache = packed.newCache();
  packed.forward(ids.slice(0, T - 1), { cache });
  calls.packed = 0;
  const last = packed.forward(ids.slice(T - 1), { cache });
  assert.equal(calls.packed, 7 * 3);
  assert.ok(maxRelErr(last, packed.forward(ids)) < 1e-5);
});
