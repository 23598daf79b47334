// Frozen weights stored as bfloat16 (src/model/bf16.ts, frozenDtype): logits within bf16 tolerance of
// float32, and EXACTLY those of a float32 model whose frozen weights were rounded to bf16 (forward,
// gradients, top-K and LoRA); loading from F32 and BF16 files and from random weights without a float32
// copy; the adapter merged before rounding; `model info`'s memory figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { registerModel } from '../src/cli/model.js';
import { expandBf16, packBf16, roundToBf16, toFloat32, type StoredTensor } from '../src/model/bf16.js';
import type { LlamaConfig } from '../src/model/config.js';
import { LlamaModel, weightStorageBytes } from '../src/model/llama.js';
import { loadModel, saveModelFolder, type LoadedModel } from '../src/model/load.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, encodeLoraAdapter, initLora, type LoraSpec } from '../src/model/lora.js';
import { randomWeights } from '../src/model/random-init.js';
import { LAYER_TENSOR_KIND, layerKeys, type LayerKey, type LayerWeights, type LlamaWeights } from '../src/model/weights.js';
import { Rng } from '../src/util/rng.js';
import { maxRelErr, randomIds, testConfig, testWeights } from './model-ref.js';
import { tsBackend } from './model-backends.js';
import { tmpDir } from './model-load-fixtures.js';
import { backwardInput, boundaryOf } from './model-passes.js';

/** The float32 weights a bf16 store of `w` holds: every matrix of layers below `float32Layers` from the top, and the embedding / LM head, rounded. */
function rounded(c: LlamaConfig, w: LlamaWeights, float32Layers: number): LlamaWeights {
  const L = c.num_hidden_layers;
  return {
    embed: roundToBf16(w.embed), norm: w.norm, lmHead: w.lmHead && roundToBf16(w.lmHead),
    layers: w.layers.map((lw, l) => {
      const out = { ...lw };
      if (l < L - float32Layers) for (const key of layerKeys(c)) if (LAYER_TENSOR_KIND[key] === 'linear') (out as Record<LayerKey, Float32Array>)[key] = roundToBf16(lw[key]!);
      return out;
    }),
  };
}

/** The same weights stored as bf16 bits where `rounded` rounds them. */
function packed(c: LlamaConfig, w: LlamaWeights, float32Layers: number): LlamaWeights<StoredTensor> {
  const L = c.num_hidden_layers;
  return {
    embed: packBf16(w.embed), norm: w.norm, lmHead: w.lmHead && packBf16(w.lmHead),
    layers: w.layers.map((lw, l) => {
      const out: Record<string, StoredTensor> = { ...lw };
      if (l < L - float32Layers) for (const key of layerKeys(c)) if (LAYER_TENSOR_KIND[key] === 'linear') out[key] = packBf16(lw[key]!);
      return out as unknown as LayerWeights<StoredTensor>;
    }),
  };
}

test('bf16 packing rounds to nearest even and expands exactly; roundToBf16 is expand(pack)', () => {
  const x = Float32Array.from([1, -2.5, 1 + 2 ** -8, 1 + 3 * 2 ** -9, 3.14159, -1e-30, 65504.7, 0]);
  const bits = packBf16(x);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to even (1); 1 + 3*2^-9 rounds up to 1 + 2^-7.
  const back = new Float32Array(x.length);
  expandBf16(bits, back);
  assert.deepEqual(Array.from(back.slice(0, 4)), [1, -2.5, 1, 1 + 2 ** -7]);
  assert.deepEqual(back, roundToBf16(x));
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(back[i]! - x[i]!) <= Math.abs(x[i]!) * 2 ** -8, `${x[i]} -> ${back[i]}`);
  assert.deepEqual(toFloat32(bits), back);
});

for (const [label, over, tied] of [['llama, untied', {}, false], ['qwen3-like, tied', { model_type: 'qwen3', qk_norm: true, qkv_bias: true } as Partial<LlamaConfig>, true]] as const) {
  test(`bf16 frozen storage (${label}): logits and gradients EXACTLY those of float32 weights rounded to bf16, and within bf16 tolerance of float32`, () => {
    const cfg = testConfig(tied, over);
    const w = testWeights(cfg, 5);
    const K = 1;
    const ids = randomIds(new Rng(2), 8, cfg.vocab_size);
    const store = new LlamaModel(cfg, packed(cfg, w, K), tsBackend, { trainableLayers: K });
    const round = new LlamaModel(cfg, rounded(cfg, w, K), tsBackend, { trainableLayers: K });
    const full = new LlamaModel(cfg, w, tsBackend, { trainableLayers: K });
    const logits = (m: LlamaModel) => m.fullLogits(m.forward(ids));
    assert.deepEqual(logits(store), logits(round), 'bit-identical to the rounded float32 model');
    assert.deepEqual(store.selectedLogits(store.forward(ids), [3, 50, 96]), round.selectedLogits(round.forward(ids), [3, 50, 96]));
    const err = maxRelErr(logits(store), logits(full));
    assert.ok(err > 0 && err < 3e-2, `bf16 vs float32 relative error ${err} (bf16 has 8 significant bits)`);
    // Training the top layer above bf16 frozen layers: boundary, activations and gradients identical.
    const grads = (m: LlamaModel) => {
      const b = boundaryOf(m, ids);
      m.zeroGrads();
      const acts = m.trainForward(ids, b, { outRows: 2 });
      const dB = backwardInput(m, acts, Float32Array.from({ length: 2 * cfg.hidden_size }, (_, i) => Math.sin(i)));
      return [Array.from(b), Array.from(dB), ...m.params().map((p) => Array.from(p.grad))];
    };
    assert.deepEqual(grads(store), grads(round));
    // LoRA over a fully bf16 base (every layer's matrices bf16): the same.
    const spec: LoraSpec = { r: 2, alpha: 4, targets: ['q', 'v', 'down'], layers: [1, 2] };
    const ad = initLora(cfg, spec, new Rng(3));
    for (const lw of ad.layers.values()) for (const t of spec.targets) lw[t]!.B.forEach((_, i, B) => { B[i] = 0.1 * Math.cos(i); });
    const loraStore = new LlamaModel(cfg, packed(cfg, w, 0), tsBackend, { trainableLayers: 2, lora: ad });
    const loraRound = new LlamaModel(cfg, rounded(cfg, w, 0), tsBackend, { trainableLayers: 2, lora: ad });
    assert.deepEqual(grads(loraStore), grads(loraRound));
    // Trainable weights must be float32.
    assert.throws(() => new LlamaModel(cfg, packed(cfg, w, 0), tsBackend, { trainableLayers: 1 }), /layer 2 is trainable \(top 1 layers\) but its weights are stored in bfloat16/);
    assert.ok(store.weightBytes() < full.weightBytes());
  });
}

test('loading with frozenDtype bfloat16: F32 and BF16 files, random weights (drawn in chunks, no float32 copy) and a merged adapter', async () => {
  const dir = tmpDir('bf16-load-');
  try {
    // Embedding of 20000 x 64 = 1.28M values: more than one drawing chunk (2^20).
    const cfg: LlamaConfig = { ...testConfig(false), vocab_size: 20000, hidden_size: 64, num_attention_heads: 4, head_dim: 16, intermediate_size: 96 };
    const cfgPath = join(dir, 'config.json');
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, architectures: ['LlamaForCausalLM'] }));
    const f32 = await loadModel(`random:${cfgPath}`, { seed: 4 });
    const bf = await loadModel(`random:${cfgPath}`, { seed: 4, frozenDtype: 'bfloat16', float32Layers: 1 });
    assert.equal(bf.frozenDtype, 'bfloat16');
    assert.equal(bf.fingerprint, f32.fingerprint, 'storage is not part of the model\'s identity (the policy records it)');
    const expect = packed(cfg, f32.weights, 1);
    const same = (a: LoadedModel<StoredTensor>['weights'], b: LlamaWeights<StoredTensor>) => {
      assert.deepEqual(a.embed, b.embed);
      assert.deepEqual(a.lmHead, b.lmHead);
      a.layers.forEach((lw, l) => { for (const key of layerKeys(cfg)) assert.deepEqual(lw[key], b.layers[l]![key], `layer ${l} ${key}`); });
    };
    same(bf.weights, expect);
    assert.ok(bf.weights.embed instanceof Uint16Array && bf.weights.layers[2]!.q instanceof Float32Array && bf.weights.layers[1]!.q instanceof Uint16Array);

    // Folders: F32 rounded as it is read; BF16 kept bit for bit (and then equal to a float32 load of it).
    for (const dtype of ['F32', 'BF16'] as const) {
      const folder = join(dir, dtype);
      mkdirSync(folder);
      saveModelFolder(folder, cfg, f32.weights, { dtype });
      writeFileSync(join(folder, 'tokenizer.json'), JSON.stringify((await import('../src/model/byte-tokenizer-json.js')).byteTokenizerJson()));
      const m = await loadModel(folder, { frozenDtype: 'bfloat16', float32Layers: 1 });
      const plain = await loadModel(folder);
      const want = packed(cfg, dtype === 'F32' ? f32.weights : plain.weights, 1);
      same(m.weights, want);
      if (dtype === 'BF16') {
        const ids = [5, 9, 300, 1999];
        const a = new LlamaModel(cfg, m.weights, tsBackend, { trainableLayers: 1 }), b = new LlamaModel(cfg, plain.weights, tsBackend, { trainableLayers: 1 });
        assert.deepEqual(a.fullLogits(a.forward(ids)), b.fullLogits(b.forward(ids)), 'a BF16 checkpoint loses nothing in bf16 storage');
      }
    }

    // An adapter is merged in float32 before the weights are rounded.
    const spec: LoraSpec = { r: 2, alpha: 2, targets: ['q', 'gate'], layers: [0, 2] };
    const ad = initLora(cfg, spec, new Rng(8));
    for (const lw of ad.layers.values()) for (const t of spec.targets) lw[t]!.B.fill(0.01);
    const adir = join(dir, 'adapter');
    mkdirSync(adir);
    const files = encodeLoraAdapter(cfg, ad, 'x');
    writeFileSync(join(adir, ADAPTER_CONFIG_FILE), files.config);
    writeFileSync(join(adir, ADAPTER_WEIGHTS_FILE), files.weights);
    const mergedF32 = await loadModel(`random:${cfgPath}`, { seed: 4, adapter: adir });
    const mergedBf = await loadModel(`random:${cfgPath}`, { seed: 4, adapter: adir, frozenDtype: 'bfloat16', float32Layers: 1 });
    same(mergedBf.weights, packed(cfg, mergedF32.weights, 1));
    assert.notDeepEqual(mergedF32.weights.layers[0]!.q, f32.weights.layers[0]!.q);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function run(...args: string[]): Promise<string> {
  let out = '';
  const program = new Command().exitOverride().configureOutput({ writeOut: (s) => { out += s; }, writeErr: () => {} });
  registerModel(program, { out: (s) => { out += s; }, err: () => {} });
  await program.parseAsync(['node', 'flag-trader', ...args]);
  return out;
}

test('model info: family, parameters and resident weight memory for each storage choice', async () => {
  const info = JSON.parse(await run('model', 'info', '--model', 'random:tiny', '--trainable-layers', '1', '--frozen-dtype', 'bfloat16', '--backend', 'typescript', '--json')) as {
    family: string; memory: { weightBytes: { float32: number; bfloat16: number; bfloat16Lora: number }; loaded: { frozenDtype: string; weightBytes: number; rssBytes: number } };
  };
  // tiny: C 64, 4 layers, MLP 172, vocab 259, tied. Per layer: linear 64*64 + 2*32*64 + 64*64 + 3*172*64 = 45,312; norms 128.
  const linear = 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 172 * 64, norms = 2 * 64, embed = 259 * 64;
  assert.equal(info.family, 'LlamaForCausalLM');
  assert.equal(info.memory.weightBytes.float32, 4 * (embed + 4 * (linear + norms) + 64));
  assert.equal(info.memory.weightBytes.bfloat16, 2 * (embed + 3 * linear) + 4 * (linear + 4 * norms + 64));
  assert.equal(info.memory.weightBytes.bfloat16Lora, 2 * (embed + 4 * linear) + 4 * (4 * norms + 64));
  assert.equal(info.memory.loaded.frozenDtype, 'bfloat16');
  assert.equal(info.memory.loaded.weightBytes, info.memory.weightBytes.bfloat16, 'what the loaded model holds is what was computed');
  assert.ok(info.memory.loaded.rssBytes > 0);
  const text = await run('model', 'info', '--model', 'random:tiny', '--trainable-layers', '1', '--backend', 'typescript');
  assert.match(text, /^family      LlamaForCausalLM$/m);
  assert.match(text, /^memory      weights float32 0\.8 MiB; frozen_dtype bfloat16 0\.5 MiB \(top 1 layers float32\), 0\.4 MiB with adapter lora \(every base weight bf16\)$/m);
  assert.match(text, /^            loaded as float32: weights 0\.8 MiB, process RSS \d+\.\d MiB$/m);
  // The Qwen2.5-0.5B shape, from its config alone.
  const q = { hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936,
    rms_norm_eps: 1e-6, rope_theta: 1e6, max_position_embeddings: 32768, tie_word_embeddings: true, head_dim: 64, model_type: 'qwen2', qkv_bias: true } as LlamaConfig;
  assert.equal(weightStorageBytes(q, 'float32'), 4 * 494032768);
  assert.ok(Math.abs(weightStorageBytes(q, 'bfloat16') / weightStorageBytes(q, 'float32') - 0.5) < 1e-3);
});

test('random weights in bf16 equal the float32 draws rounded (same stream)', () => {
  const c = testConfig(true);
  const a = randomWeights(c, 3), b = randomWeights(c, 3, { packEmbed: true, finishLinear: (_l, _k, x) => packBf16(x) });
  assert.deepEqual(b.embed, packBf16(a.embed));
  assert.deepEqual(b.layers[1]!.down, packBf16(a.layers[1]!.down));
  assert.deepEqual(b.layers[1]!.inputNorm, a.layers[1]!.inputNorm);
});
