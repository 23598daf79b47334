// The decoder families beyond plain Llama (Qwen2, Qwen3, Mistral, Llama 3.x rope scaling and
// biases): config.json parsing and refusals, checkpoints written here under Hugging Face's tensor
// names in every dtype whose logits match the independent float64 decoder (test/model-ref.ts),
// rotary frequencies against hand-derived values, gradients of every new tensor against finite
// differences, the KV and prefix caches, random init and the folder round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLlamaConfig, toHfConfigJson } from '../src/model/parse-config.js';
import { loadModel, saveModelFolder } from '../src/model/load.js';
import { LlamaModel } from '../src/model/llama.js';
import { PrefixCache } from '../src/model/prefix-cache.js';
import { RopeTables, ropeInvFreq } from '../src/model/rope.js';
import { parameterCount } from '../src/model/configs.js';
import { writeSafetensors, f32ToF16, f16ToF32, f32ToBf16, bf16ToF32, type Tensor, type FloatDtype } from '../src/model/safetensors.js';
import { tensorManifest, type LayerWeights, type LlamaWeights } from '../src/model/weights.js';
import type { LlamaConfig } from '../src/model/config.js';
import type { Backend } from '../src/kernels/backend.js';
import { Rng } from '../src/util/rng.js';
import { maxRelErr, randomIds, refHidden, refLayers, refLogitsRow, refInvFreq, testWeights, toRef, type Rows } from './model-ref.js';
import { nativeBackend, needsNative, tsBackend } from './model-backends.js';
import { checkTensor } from './finite-diff.js';
import { tmpDir, writeMicroTokenizer } from './model-load-fixtures.js';
import { backwardInput, boundaryOf } from './model-passes.js';
import { TokenSegments } from '../src/model/segments.js';

// ---------------------------------------------------------------------------------------------
// config.json files as each family's transformers version writes them (small shapes; vocabulary
// 264 so the 260-id test tokenizer fits).

const SHAPE = { hidden_size: 32, intermediate_size: 48, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 264, max_position_embeddings: 128 };

/** Family name -> (tied) -> config.json object. */
const HF_CONFIGS: Record<string, (tied: boolean) => Record<string, unknown>> = {
  // Qwen2.5: q/k/v biases, large rope_theta, a window that use_sliding_window false makes inert.
  qwen2: (tied) => ({
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', ...SHAPE, hidden_act: 'silu', rms_norm_eps: 1e-6,
    rope_theta: 1000000.0, rope_scaling: null, use_sliding_window: false, sliding_window: 64, max_window_layers: 1,
    attention_dropout: 0.0, tie_word_embeddings: tied, torch_dtype: 'bfloat16', bos_token_id: 1, eos_token_id: 2, initializer_range: 0.02,
  }),
  // Qwen3: q/k norms, head_dim 12 although hidden / heads is 8.
  qwen3: (tied) => ({
    architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', ...SHAPE, head_dim: 12, hidden_act: 'silu', rms_norm_eps: 1e-6,
    rope_theta: 1000000, rope_scaling: null, attention_bias: false, use_sliding_window: false, sliding_window: null, max_window_layers: 3,
    attention_dropout: 0.0, tie_word_embeddings: tied, torch_dtype: 'bfloat16', eos_token_id: 2,
  }),
  // Llama 3.x: llama3 rope scaling whose three bands all hold a frequency of head_dim 16
  // (wavelengths 6.3, 32, 167, 861, ... against L0/high = 64 and L0/low = 256), explicit head_dim,
  // and both bias flags on.
  llama3: (tied) => ({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', ...SHAPE, head_dim: 16, hidden_act: 'silu', rms_norm_eps: 1e-5,
    rope_theta: 500000.0, attention_bias: true, mlp_bias: true, pretraining_tp: 1, tie_word_embeddings: tied,
    rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 256, rope_type: 'llama3' },
  }),
  // Linear rope scaling under the older `type` key.
  linear: (tied) => ({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', ...SHAPE, rope_theta: 10000, rope_scaling: { type: 'linear', factor: 4.0 },
    tie_word_embeddings: tied,
  }),
  // Mistral v0.3: no sliding window, which makes it a Llama.
  mistral: (tied) => ({
    architectures: ['MistralForCausalLM'], model_type: 'mistral', ...SHAPE, hidden_act: 'silu', rms_norm_eps: 1e-5,
    rope_theta: 1000000.0, sliding_window: null, attention_dropout: 0.0, tie_word_embeddings: tied,
  }),
};

/** Hugging Face's names of a layer's tensors, written out here (not taken from src/model). */
const HF_LAYER_NAMES: Array<[keyof LayerWeights, string]> = [
  ['inputNorm', 'input_layernorm.weight'], ['q', 'self_attn.q_proj.weight'], ['qBias', 'self_attn.q_proj.bias'],
  ['k', 'self_attn.k_proj.weight'], ['kBias', 'self_attn.k_proj.bias'], ['v', 'self_attn.v_proj.weight'],
  ['vBias', 'self_attn.v_proj.bias'], ['o', 'self_attn.o_proj.weight'], ['oBias', 'self_attn.o_proj.bias'],
  ['qNorm', 'self_attn.q_norm.weight'], ['kNorm', 'self_attn.k_norm.weight'], ['postNorm', 'post_attention_layernorm.weight'],
  ['gate', 'mlp.gate_proj.weight'], ['gateBias', 'mlp.gate_proj.bias'], ['up', 'mlp.up_proj.weight'], ['upBias', 'mlp.up_proj.bias'],
  ['down', 'mlp.down_proj.weight'], ['downBias', 'mlp.down_proj.bias'],
];

/** Every tensor of w under its HF name, with shapes derived from the config by hand. */
function hfTensors(c: LlamaConfig, w: LlamaWeights): Array<[string, Tensor]> {
  const C = c.hidden_size, F = c.intermediate_size, D = c.head_dim, HD = c.num_attention_heads * D, KVD = c.num_key_value_heads * D;
  const shapes: Record<keyof LayerWeights, number[]> = {
    inputNorm: [C], q: [HD, C], qBias: [HD], k: [KVD, C], kBias: [KVD], v: [KVD, C], vBias: [KVD], o: [C, HD], oBias: [C],
    qNorm: [D], kNorm: [D], postNorm: [C], gate: [F, C], gateBias: [F], up: [F, C], upBias: [F], down: [C, F], downBias: [C],
  };
  const out: Array<[string, Tensor]> = [['model.embed_tokens.weight', { shape: [c.vocab_size, C], data: w.embed }]];
  w.layers.forEach((l, i) => {
    for (const [key, name] of HF_LAYER_NAMES) {
      const data = l[key];
      if (data) out.push([`model.layers.${i}.${name}`, { shape: shapes[key], data }]);
    }
  });
  out.push(['model.norm.weight', { shape: [C], data: w.norm }]);
  if (w.lmHead) out.push(['lm_head.weight', { shape: [c.vocab_size, C], data: w.lmHead }]);
  return out;
}

function withTmp(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = tmpDir('flag-families-');
    try { await fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
  };
}

const rounders: Record<FloatDtype, (x: number) => number> = {
  F32: (x) => x, F16: (x) => f16ToF32(f32ToF16(x)), BF16: (x) => bf16ToF32(f32ToBf16(x)),
};

function roundWeights(w: LlamaWeights, r: (x: number) => number): LlamaWeights {
  const m = (a: Float32Array): Float32Array => a.map(r);
  return {
    embed: m(w.embed), norm: m(w.norm), lmHead: w.lmHead ? m(w.lmHead) : null,
    layers: w.layers.map((l) => Object.fromEntries(Object.entries(l).map(([k, v]) => [k, m(v as Float32Array)])) as unknown as LayerWeights),
  };
}

/** Logits of every position of ids against the float64 reference: the worst relative error. */
function worstLogitErr(model: LlamaModel, cfg: LlamaConfig, w: LlamaWeights, ids: number[]): number {
  const ref = toRef(w);
  const refH = refHidden(cfg, ref, ids);
  const hidden = model.forward(ids, { outRows: ids.length });
  let worst = 0;
  for (let t = 0; t < ids.length; t++) {
    const logits = model.fullLogits(hidden.subarray(t * cfg.hidden_size, (t + 1) * cfg.hidden_size));
    worst = Math.max(worst, maxRelErr(logits, refLogitsRow(cfg, ref, refH[t]!)));
  }
  return worst;
}

// ---------------------------------------------------------------------------------------------
// Parsing

test('each family parses to the decoder features Hugging Face computes', () => {
  const qwen2 = parseLlamaConfig(HF_CONFIGS.qwen2!(true), 'qwen2.json');
  assert.equal(qwen2.model_type, 'qwen2');
  assert.equal(qwen2.qkv_bias, true);
  assert.ok(!('o_bias' in qwen2) && !('mlp_bias' in qwen2) && !('qk_norm' in qwen2), 'Qwen2: q/k/v biases only');
  assert.equal(qwen2.rope_theta, 1e6);
  assert.equal(qwen2.head_dim, 8);
  // Qwen2 hard-wires its biases: attention_bias / mlp_bias in its config.json are inert.
  assert.deepEqual(parseLlamaConfig({ ...HF_CONFIGS.qwen2!(true), attention_bias: false, mlp_bias: true }, 'q.json'), qwen2);

  const qwen3 = parseLlamaConfig(HF_CONFIGS.qwen3!(true), 'qwen3.json');
  assert.equal(qwen3.qk_norm, true);
  assert.equal(qwen3.head_dim, 12);
  assert.ok(!('qkv_bias' in qwen3) && !('o_bias' in qwen3));
  const qwen3b = parseLlamaConfig({ ...HF_CONFIGS.qwen3!(true), attention_bias: true }, 'q.json');
  assert.equal(qwen3b.qkv_bias, true);
  assert.equal(qwen3b.o_bias, true, 'Qwen3 attention_bias covers o_proj too');
  // Qwen3Config's head_dim default is 128, not hidden / heads.
  const { head_dim: _h, ...noHeadDim } = HF_CONFIGS.qwen3!(true);
  assert.equal(parseLlamaConfig(noHeadDim, 'q.json').head_dim, 128);

  const llama3 = parseLlamaConfig(HF_CONFIGS.llama3!(true), 'l.json');
  assert.ok(!('model_type' in llama3), 'a Llama config carries no model_type (its fingerprint text is unchanged)');
  assert.deepEqual([llama3.qkv_bias, llama3.o_bias, llama3.mlp_bias, llama3.head_dim], [true, true, true, 16]);
  assert.deepEqual(llama3.rope_scaling, { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 256 });
  assert.deepEqual(parseLlamaConfig(HF_CONFIGS.linear!(true), 'l.json').rope_scaling, { rope_type: 'linear', factor: 4 });
  assert.ok(!('rope_scaling' in parseLlamaConfig({ ...SHAPE, rope_scaling: { rope_type: 'default' } }, 'd.json')), 'rope_type default is plain RoPE');

  const mistral = parseLlamaConfig(HF_CONFIGS.mistral!(true), 'm.json');
  assert.equal(mistral.model_type, 'mistral');
  // Mistral hard-wires no biases.
  assert.deepEqual(parseLlamaConfig({ ...HF_CONFIGS.mistral!(true), attention_bias: true }, 'm.json'), mistral);
  // A window at least as long as any accepted sequence never takes effect.
  assert.equal(parseLlamaConfig({ ...HF_CONFIGS.mistral!(true), sliding_window: 128 }, 'm.json').model_type, 'mistral');
  assert.equal(parseLlamaConfig({ ...HF_CONFIGS.qwen2!(true), use_sliding_window: true, sliding_window: 4096 }, 'q.json').model_type, 'qwen2');

  // Family defaults for absent keys, as each transformers config class has them.
  const { num_key_value_heads: _k, max_position_embeddings: _m, ...bare } = SHAPE;
  const q = parseLlamaConfig({ ...bare, num_attention_heads: 32, hidden_size: 64, model_type: 'qwen2' }, 'q.json');
  assert.deepEqual([q.num_key_value_heads, q.max_position_embeddings], [32, 32768]);
  const m = parseLlamaConfig({ ...bare, num_attention_heads: 8, model_type: 'mistral', sliding_window: null }, 'm.json');
  assert.deepEqual([m.num_key_value_heads, m.max_position_embeddings], [8, 131072]);
  assert.equal(parseLlamaConfig({ ...bare, model_type: 'llama' }, 'l.json').num_key_value_heads, 4, 'Llama: kv heads = heads');
});

test('a real-sized Qwen3 config: head_dim 128 with hidden 1024 and 16 heads shapes q_proj and o_proj', () => {
  const c = parseLlamaConfig({
    architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 28,
    num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128, vocab_size: 151936, max_position_embeddings: 40960,
    rope_theta: 1000000, rms_norm_eps: 1e-6, tie_word_embeddings: true, attention_bias: false, use_sliding_window: false,
    sliding_window: null, max_window_layers: 28, rope_scaling: null, hidden_act: 'silu', bos_token_id: 151643, eos_token_id: 151645,
  }, 'qwen3-0.6b.json');
  const shapes = new Map(tensorManifest(c));
  assert.deepEqual(shapes.get('model.layers.0.self_attn.q_proj.weight'), [2048, 1024]);
  assert.deepEqual(shapes.get('model.layers.0.self_attn.k_proj.weight'), [1024, 1024]);
  assert.deepEqual(shapes.get('model.layers.0.self_attn.o_proj.weight'), [1024, 2048]);
  assert.deepEqual(shapes.get('model.layers.27.self_attn.q_norm.weight'), [128]);
  assert.deepEqual(shapes.get('model.layers.27.self_attn.k_norm.weight'), [128]);
  assert.ok(!shapes.has('model.layers.0.self_attn.q_proj.bias'));
  // Qwen3-0.6B has 596,049,920 parameters (tied embeddings counted once).
  assert.equal(parameterCount(c), 596049920);
  assert.equal([...shapes.values()].reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0), 596049920);
});

test('refusals name the field: architecture (with the supported list), sliding window, rope type', () => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...SHAPE, architectures: ['Gemma2ForCausalLM'], model_type: 'gemma2', hidden_act: 'gelu_pytorch_tanh' },
      /g\.json: field "architectures": \["Gemma2ForCausalLM"\] is not supported; supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM/],
    [{ ...SHAPE, model_type: 'phi3' }, /field "model_type": "phi3" is not supported; supported model types: llama, mistral, qwen2, qwen3/],
    [{ ...SHAPE, architectures: ['Qwen2ForCausalLM'], model_type: 'llama' }, /field "model_type": "llama" disagrees with architectures \["Qwen2ForCausalLM"\]/],
    [{ ...HF_CONFIGS.qwen2!(true), use_sliding_window: true, sliding_window: 64 },
      /field "sliding_window": 64 with use_sliding_window true is smaller than max_position_embeddings 128: sliding-window attention is not implemented/],
    [{ ...SHAPE, model_type: 'qwen3', use_sliding_window: true, max_position_embeddings: 32768 },
      /field "sliding_window": 4096 \(the Qwen3ForCausalLM default when absent\) with use_sliding_window true is smaller than max_position_embeddings 32768/],
    [{ ...HF_CONFIGS.mistral!(true), sliding_window: 64 }, /field "sliding_window": 64 is smaller than max_position_embeddings 128: .*set sliding_window null/],
    [{ ...SHAPE, architectures: ['MistralForCausalLM'], max_position_embeddings: 32768 }, /field "sliding_window": 4096 \(the MistralForCausalLM default when absent\) is smaller/],
    [{ ...SHAPE, rope_scaling: { rope_type: 'dynamic', factor: 2 } }, /field "rope_scaling": rope_type "dynamic" is not supported; supported: default, linear, llama3/],
    [{ ...SHAPE, rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } }, /rope_type "yarn" is not supported/],
    [{ ...SHAPE, model_type: 'qwen2', rope_scaling: { rope_type: 'longrope', factor: 4 } }, /rope_type "longrope" is not supported/],
    [{ ...SHAPE, rope_scaling: { factor: 2 } }, /field "rope_scaling": \{"factor":2\} has no rope_type \(or type\)/],
    [{ ...SHAPE, rope_scaling: { rope_type: 'linear' } }, /field "rope_scaling\.factor": undefined is not a positive number/],
    [{ ...SHAPE, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 4, high_freq_factor: 1, original_max_position_embeddings: 8192 } },
      /field "rope_scaling\.high_freq_factor": 1 must be greater than low_freq_factor 4/],
    [{ ...SHAPE, partial_rotary_factor: 0.5 }, /field "partial_rotary_factor": 0\.5 is not supported/],
    [{ ...SHAPE, rope_parameters: { rope_type: 'default', rope_theta: 10000 } }, /field "rope_parameters": is not supported/],
  ];
  for (const [json, re] of bad) assert.throws(() => parseLlamaConfig(json, 'g.json'), re, JSON.stringify(json));
});

test('toHfConfigJson writes each family so that it parses back to the same config; inexpressible features are refused', () => {
  for (const [name, make] of Object.entries(HF_CONFIGS)) {
    for (const tied of [true, false]) {
      const c = parseLlamaConfig(make(tied), `${name}.json`);
      const json = toHfConfigJson(c);
      assert.deepEqual(parseLlamaConfig(json, name), c, name);
      assert.deepEqual(json.architectures, make(tied).architectures, name);
    }
  }
  const qwen2 = parseLlamaConfig(HF_CONFIGS.qwen2!(true), 'q.json');
  assert.throws(() => toHfConfigJson({ ...qwen2, o_bias: true }), /a qwen2 config \(Qwen2ForCausalLM\) cannot have o_bias true/);
  assert.throws(() => toHfConfigJson({ ...qwen2, qkv_bias: false }), /cannot have qkv_bias false/);
  assert.throws(() => toHfConfigJson({ ...qwen2, model_type: 'mistral' }), /a mistral config \(MistralForCausalLM\) cannot have qkv_bias true/);
});

// ---------------------------------------------------------------------------------------------
// Rotary frequencies

test('llama3 and linear rope scaling: inv_freq equals hand-derived values in every band', () => {
  // head_dim 8, theta 10000: inv_freq = [1, 0.1, 0.01, 0.001], wavelengths 2 pi / f = [6.28, 62.8, 628, 6283].
  // llama3 with L0 = 1000, low_freq_factor 1, high_freq_factor 4, factor 8: the high band is
  // wavelength < L0/4 = 250 (i = 0, 1: kept), the low band wavelength > L0/1 = 1000 (i = 3: 0.001 / 8),
  // and i = 2 lies in between: s = (1000 / 628.3185 - 1) / (4 - 1) = (1.5915494 - 1) / 3 = 0.19718314,
  // inv = (1 - s) * 0.01 / 8 + s * 0.01 = 0.01 * (0.10035211 + 0.19718314) = 0.0029753525.
  const llama3 = ropeInvFreq(8, 10000, { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 1000 });
  const want = [1, 0.1, 0.0029753525, 0.000125];
  want.forEach((x, i) => assert.ok(Math.abs(llama3[i]! - x) <= 2e-7 * x, `llama3 i=${i}: ${llama3[i]} vs ${x}`));
  // linear, factor 4: every frequency / 4 (position p rotates as p / 4 did).
  const linear = ropeInvFreq(8, 10000, { rope_type: 'linear', factor: 4 });
  [0.25, 0.025, 0.0025, 0.00025].forEach((x, i) => assert.ok(Math.abs(linear[i]! - x) <= 2e-7 * x, `linear i=${i}`));
  const t = new RopeTables(8, 10000, 64, { rope_type: 'linear', factor: 4 });
  const plain = new RopeTables(8, 10000, 64);
  t.ensure(20); plain.ensure(20);
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(t.cos[12 * 4 + i]! - plain.cos[3 * 4 + i]!) < 1e-6, 'p = 12 scaled is p = 3 plain');
  // The float64 reference's frequencies agree with the float32 ones for the test configs.
  for (const name of ['llama3', 'linear', 'qwen3']) {
    const c = parseLlamaConfig(HF_CONFIGS[name]!(true), name);
    const f32 = new RopeTables(c.head_dim, c.rope_theta, c.max_position_embeddings, c.rope_scaling).invFreq;
    assert.ok(maxRelErr(f32, refInvFreq(c)) < 1e-6, name);
  }
  // Scaling changes the frequencies of the llama3 test config in the smooth and low bands only.
  const c = parseLlamaConfig(HF_CONFIGS.llama3!(true), 'l');
  const scaled = refInvFreq(c), base = refInvFreq({ ...c, rope_scaling: undefined });
  assert.deepEqual(scaled.map((x, i) => x === base[i] ? 'high' : Math.abs(x - base[i]! / 8) < 1e-15 ? 'low' : 'smooth'),
    ['high', 'high', 'smooth', 'low', 'low', 'low', 'low', 'low']);
});

// ---------------------------------------------------------------------------------------------
// Checkpoints written here, in every dtype, tied and untied, against the float64 reference

for (const name of Object.keys(HF_CONFIGS)) {
  test(`${name}: checkpoints in F32, BF16 and F16, tied and untied, give the float64 reference's logits`, withTmp(async (dir) => {
    let seed = 100;
    for (const tied of [true, false]) {
      for (const dtype of ['F32', 'BF16', 'F16'] as const) {
        const sub = join(dir, `${dtype}-${tied}`);
        mkdirSync(sub);
        const json = HF_CONFIGS[name]!(tied);
        const cfg = parseLlamaConfig(json, name);
        const w = testWeights(cfg, seed++);
        writeFileSync(join(sub, 'config.json'), JSON.stringify(json));
        writeMicroTokenizer(sub);
        const tensors = hfTensors(cfg, w);
        // What the family's checkpoint must hold, and nothing else.
        assert.deepEqual(tensors.map(([n]) => n).sort(), tensorManifest(cfg).map(([n]) => n).sort());
        writeSafetensors(join(sub, 'model.safetensors'), tensors, { dtype });
        const loaded = await loadModel(sub);
        assert.deepEqual(loaded.config, cfg);
        const stored = roundWeights(w, rounders[dtype]);
        assert.deepEqual(hfTensors(cfg, loaded.weights).map(([n, t]) => [n, Array.from(t.data)]), hfTensors(cfg, stored).map(([n, t]) => [n, Array.from(t.data)]));
        const model = new LlamaModel(loaded.config, loaded.weights, tsBackend, { trainableLayers: 2 });
        const err = worstLogitErr(model, cfg, stored, randomIds(new Rng(seed), 11, cfg.vocab_size));
        assert.ok(err < 1e-4, `${name} ${dtype} ${tied ? 'tied' : 'untied'}: relative error ${err}`);
      }
    }
  }));
}

test('the features change the logits (a decoder ignoring one would fail the reference test)', () => {
  for (const name of ['qwen2', 'qwen3', 'llama3', 'linear']) {
    const cfg = parseLlamaConfig(HF_CONFIGS[name]!(true), name);
    const w = testWeights(cfg, 7);
    const ids = randomIds(new Rng(3), 11, cfg.vocab_size);
    const full = refHidden(cfg, toRef(w), ids)[10]!;
    const plainCfg: LlamaConfig = { ...cfg, qkv_bias: false, o_bias: false, mlp_bias: false, qk_norm: false, rope_scaling: undefined };
    const plainW = { ...w, layers: w.layers.map((l) => ({ inputNorm: l.inputNorm, q: l.q, k: l.k, v: l.v, o: l.o, postNorm: l.postNorm, gate: l.gate, up: l.up, down: l.down })) };
    const plain = refHidden(plainCfg, toRef(plainW), ids)[10]!;
    assert.ok(maxRelErr(plain, full) > 1e-2, `${name}: the family's features matter (${maxRelErr(plain, full)})`);
  }
});

test('checkpoint validation lists the family\'s tensors: a missing q_norm, a Qwen2 o_proj bias', withTmp(async (dir) => {
  const json = HF_CONFIGS.qwen3!(true);
  const cfg = parseLlamaConfig(json, 'q');
  writeFileSync(join(dir, 'config.json'), JSON.stringify(json));
  writeMicroTokenizer(dir);
  const tensors = hfTensors(cfg, testWeights(cfg, 1)).filter(([n]) => n !== 'model.layers.1.self_attn.q_norm.weight');
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  await assert.rejects(loadModel(dir), /missing tensors: model\.layers\.1\.self_attn\.q_norm\.weight \[12\]/);

  const q2 = HF_CONFIGS.qwen2!(true);
  const c2 = parseLlamaConfig(q2, 'q2');
  writeFileSync(join(dir, 'config.json'), JSON.stringify(q2));
  const extra: Array<[string, Tensor]> = [...hfTensors(c2, testWeights(c2, 1)), ['model.layers.0.self_attn.o_proj.bias', { shape: [32], data: new Float32Array(32) }]];
  writeSafetensors(join(dir, 'model.safetensors'), extra.filter(([n]) => n !== 'model.layers.2.self_attn.v_proj.bias'));
  await assert.rejects(loadModel(dir), (e: Error) => {
    assert.match(e.message, /missing tensors: model\.layers\.2\.self_attn\.v_proj\.bias \[16\]/);
    assert.match(e.message, /unexpected tensors: model\.layers\.0\.self_attn\.o_proj\.bias/);
    return true;
  });
  // The decoder refuses weights that hold a tensor its config does not have.
  const w = testWeights(c2, 1);
  w.layers[1]!.qNorm = new Float32Array(8).fill(1);
  assert.throws(() => new LlamaModel(c2, w, tsBackend, { trainableLayers: 1 }), /model\.layers\.1\.self_attn\.q_norm\.weight is given but the config does not have it/);
}));

test('native backend: every family gives the float64 reference\'s logits', { skip: needsNative }, () => {
  for (const name of Object.keys(HF_CONFIGS)) {
    const cfg = parseLlamaConfig(HF_CONFIGS[name]!(false), name);
    const w = testWeights(cfg, 5);
    const model = new LlamaModel(cfg, w, nativeBackend!, { trainableLayers: 2 });
    const err = worstLogitErr(model, cfg, w, randomIds(new Rng(4), 11, cfg.vocab_size));
    assert.ok(err < 1e-4, `${name}: relative error ${err}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Random init and the folder round trip

test('random:<config.json> of every family: HF init (biases 0, q/k norms 1), saved with HF names, reloads to the same logits', withTmp(async (dir) => {
  const prints = new Set<string>();
  for (const [name, make] of Object.entries(HF_CONFIGS)) {
    const src = join(dir, `${name}.json`);
    writeFileSync(src, JSON.stringify({ ...make(true), initializer_range: 0.05 }));
    const r = await loadModel(`random:${src}`, { seed: 3 });
    prints.add(r.fingerprint);
    for (const l of r.weights.layers) {
      for (const b of [l.qBias, l.kBias, l.vBias, l.oBias, l.gateBias, l.upBias, l.downBias]) if (b) assert.ok(b.every((x) => x === 0), `${name}: biases start at 0`);
      for (const n of [l.qNorm, l.kNorm]) if (n) assert.ok(n.every((x) => x === 1), `${name}: q/k norms start at 1`);
      assert.ok(l.q.some((x) => x !== 0));
    }
    // The extra tensors draw no random numbers: the linear weights are those of a plain Llama config.
    const plainSrc = join(dir, `${name}-plain.json`);
    writeFileSync(plainSrc, JSON.stringify({ ...SHAPE, head_dim: r.config.head_dim, tie_word_embeddings: true, initializer_range: 0.05 }));
    const plain = await loadModel(`random:${plainSrc}`, { seed: 3 });
    assert.deepEqual(Array.from(plain.weights.layers[2]!.down.subarray(0, 8)), Array.from(r.weights.layers[2]!.down.subarray(0, 8)));

    const out = join(dir, `${name}-saved`);
    mkdirSync(out);
    saveModelFolder(out, r.config, r.weights, { dtype: 'F32', tokenizerJsonPath: writeMicroTokenizer(dir) });
    const written = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.deepEqual(written.architectures, make(true).architectures);
    const back = await loadModel(out);
    assert.deepEqual(back.config, r.config);
    const ids = randomIds(new Rng(2), 9, r.config.vocab_size);
    const a = new LlamaModel(r.config, r.weights, tsBackend, { trainableLayers: 1 }).forward(ids);
    const b = new LlamaModel(back.config, back.weights, tsBackend, { trainableLayers: 1 }).forward(ids);
    assert.deepEqual(Array.from(b), Array.from(a), `${name}: the saved folder computes the same`);
  }
  assert.equal(prints.size, Object.keys(HF_CONFIGS).length, 'the config (family, features, scaling) is part of the fingerprint');
}));

// ---------------------------------------------------------------------------------------------
// Gradients of the new tensors against finite differences

/** Every feature at once (no HF family has them all, but the decoder computes them independently). */
const ALL_FEATURES = (): LlamaConfig => ({
  ...parseLlamaConfig(HF_CONFIGS.llama3!(true), 'all'), qk_norm: true, head_dim: 10, num_hidden_layers: 3, max_position_embeddings: 64,
});

const GRAD_CONFIGS: Array<[string, () => LlamaConfig]> = [
  ['every feature (q/k/v/o + MLP biases, q/k norm, llama3 rope)', ALL_FEATURES],
  ['qwen2', () => parseLlamaConfig(HF_CONFIGS.qwen2!(false), 'q2')],
  ['qwen3 with attention_bias', () => parseLlamaConfig({ ...HF_CONFIGS.qwen3!(false), attention_bias: true }, 'q3')],
];

function refByName(cfg: LlamaConfig, ref: ReturnType<typeof toRef>, name: string): Float64Array {
  if (name === 'model.norm.weight') return ref.norm;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name)!;
  const key = HF_LAYER_NAMES.find(([, n]) => n === m[2])![0];
  const t = ref.layers[Number(m[1])]![key];
  assert.ok(t, `no reference tensor for ${name}`);
  return t!;
}

function rmsnorm64(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => w[i]! * v * r);
}

function gradCheck(be: Backend, label: string, make: () => LlamaConfig, tol: number): void {
  const cfg = make();
  const K = 2, T = 6, n = 2, C = cfg.hidden_size, L = cfg.num_hidden_layers;
  const model = new LlamaModel(cfg, testWeights(cfg, 41), be, { trainableLayers: K });
  const rng = new Rng(8);
  const ids = randomIds(rng, T, cfg.vocab_size);
  const boundary = boundaryOf(model, ids);
  const R = Float64Array.from({ length: n * C }, () => rng.normal());
  const acts = model.trainForward(ids, boundary, { outRows: n });
  model.zeroGrads();
  const dB = backwardInput(model, acts, Float32Array.from(R));
  const ref = toRef(model.weights);
  const bRows: Rows = Array.from({ length: T }, (_, t) => Float64Array.from(boundary.subarray(t * C, (t + 1) * C)));
  // loss = sum(R * final-normed hidden of the last n rows), in float64
  const f = (): number => {
    const x = refLayers(cfg, ref, bRows, L - K, L);
    let loss = 0;
    for (let r = 0; r < n; r++) {
      const h = rmsnorm64(x[T - n + r]!, ref.norm, cfg.rms_norm_eps);
      for (let c = 0; c < C; c++) loss += R[r * C + c]! * h[c]!;
    }
    return loss;
  };
  const params = model.params();
  const names = params.map((p) => p.name);
  // The optimizer and checkpoints see exactly the manifest's tensors of the trainable layers.
  const want = tensorManifest(cfg).map(([nm]) => nm).filter((nm) => {
    const m = /^model\.layers\.(\d+)\./.exec(nm);
    return m ? Number(m[1]) >= L - K : nm === 'model.norm.weight';
  });
  assert.deepEqual(names, want, label);
  for (const p of params) {
    const err = checkTensor(p.name, p.grad, refByName(cfg, ref, p.name), f, rng, 4);
    assert.ok(err < tol, `${be.name} ${label} ${p.name}: error ${err.toExponential(2)} >= ${tol}`);
  }
  const flat = Float64Array.from(boundary);
  const err = checkTensor('boundary', dB, flat, () => {
    for (let t = 0; t < T; t++) bRows[t]!.set(flat.subarray(t * C, (t + 1) * C));
    return f();
  }, rng, 10);
  assert.ok(err < tol, `${be.name} ${label} boundary: error ${err.toExponential(2)}`);
}

for (const [label, make] of GRAD_CONFIGS) {
  test(`gradients match finite differences, TypeScript backend: ${label}`, () => gradCheck(tsBackend, label, make, 1e-4));
  test(`gradients match finite differences, native backend: ${label}`, { skip: needsNative }, () => gradCheck(nativeBackend!, label, make, 1e-3));
}

// ---------------------------------------------------------------------------------------------
// KV cache, prefix cache and shared prefixes

for (const name of ['qwen3', 'qwen2']) {
  test(`${name}: KV-cached decoding, the frozen-prefix cache, the top layers with a prefix cache and shared prefixes equal the full computation`, () => {
    const cfg = parseLlamaConfig(HF_CONFIGS[name]!(true), name);
    const w = testWeights(cfg, 12);
    const C = cfg.hidden_size;
    const ids = randomIds(new Rng(6), 14, cfg.vocab_size);

    // Incremental decoding with a KV cache.
    const model = new LlamaModel(cfg, w, tsBackend, { trainableLayers: 2 });
    const full = model.forward(ids, { outRows: ids.length }).slice();
    const cache = model.newCache();
    let pos = 0;
    for (const chunk of [5, 1, 3, 1, 4]) {
      const h = model.forward(ids.slice(pos, pos + chunk), { cache, outRows: chunk });
      assert.ok(maxRelErr(h, full.subarray(pos * C, (pos + chunk) * C)) < 1e-5, `chunk at ${pos}`);
      pos += chunk;
    }

    // Frozen layers with a cached prefix + the trainable layers: the full forward's last rows.
    const other = [...ids.slice(0, 6), ...randomIds(new Rng(7), 5, cfg.vocab_size)];
    boundaryOf(model, other, [6]);
    const boundary = boundaryOf(model, ids, [6]);
    assert.equal(model.frozenTokens.reused, 6, 'the second prompt reused the cached prefix');
    const acts = model.trainForward(ids, boundary, { outRows: 3 });
    assert.ok(maxRelErr(acts.hidden, full.subarray(11 * C)) < 1e-5);

    // The trainable layers' inference with their own prefix cache.
    const top = new PrefixCache(1 << 24);
    const F = model.frozenLayers;
    model.forward(TokenSegments.of(other, [6]), { from: F, input: boundaryOf(model, other), cache: top });
    const h = model.forward(TokenSegments.of(ids, [6]), { from: F, input: boundary, cache: top, outRows: 2 });
    assert.equal(top.stats().hits, 1);
    assert.ok(maxRelErr(h, full.subarray(12 * C)) < 1e-5);

    // A shared prefix: same parameter gradients as whole prompts (q/k norm and bias gradients included).
    const prompts = [ids, other];
    const dH = prompts.map((_, i) => Float32Array.from({ length: C }, (_, c) => Math.sin(1 + i + c)));
    const bounds = prompts.map((p) => boundaryOf(model, p));
    model.zeroGrads();
    prompts.forEach((p, i) => model.backward(model.trainForward(p, bounds[i]!), dH[i]!));
    const plain = new Map(model.params().map((p) => [p.name, p.grad.slice()]));
    model.zeroGrads();
    const prefix = model.trainForward(ids.slice(0, 6), bounds[0]!.subarray(0, 6 * C), { shared: true });
    prompts.forEach((p, i) => model.backward(model.trainForward(p, bounds[i]!, { prefix }), dH[i]!));
    model.backward(prefix, null);
    for (const p of model.params()) {
      const g = plain.get(p.name)!;
      assert.ok(g.some((x) => x !== 0), `${p.name} has a gradient`);
      assert.ok(maxRelErr(p.grad, g) < 1e-4, `${p.name}: ${maxRelErr(p.grad, g)}`);
    }

    // The KL reference copies the trainable tensors, the family's own included.
    const snap = model.snapshot();
    const top0 = model.weights.layers[cfg.num_hidden_layers - 1]!, snap0 = snap.weights.layers[cfg.num_hidden_layers - 1]!;
    for (const key of ['qBias', 'qNorm', 'kNorm'] as const) {
      if (!top0[key]) continue;
      assert.notEqual(snap0[key], top0[key], `${key} is copied`);
      assert.deepEqual(Array.from(snap0[key]!), Array.from(top0[key]!));
    }
  });
}
