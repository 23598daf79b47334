// LoRA adapters on the decoder (src/model/lora.ts, the LoRA steps of src/model/layer.ts): the forward
// against an independent float64 computation (the reference decoder of model-ref.ts on W + s B A),
// gradients of A and B against central finite differences of it, PEFT's file names, shapes and
// adapter_config.json, the save -> load round trip, and merging (model merge) against model + adapter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import type { Backend } from '../src/kernels/backend.js';
import type { LlamaConfig } from '../src/model/config.js';
import { LlamaModel } from '../src/model/llama.js';
import {
  ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, encodeLoraAdapter, initLora, loraDims, loraScale, loraTensorName, readLoraAdapter,
  LORA_TARGETS, type LoraAdapter, type LoraSpec, type LoraTarget,
} from '../src/model/lora.js';
import { loadModel } from '../src/model/load.js';
import { readSafetensors, writeSafetensors } from '../src/model/safetensors.js';
import { registerModel } from '../src/cli/model.js';
import { modelScorer } from '../src/serve/policy-scorer.js';
import { Rng } from '../src/util/rng.js';
import { maxRelErr, randomIds, refFinalNorm, refLayers, testConfig, testWeights, toRef, type RefWeights, type Rows } from './model-ref.js';
import { nativeBackend, needsNative, tsBackend } from './model-backends.js';
import { checkTensor } from './finite-diff.js';
import { backwardInput, boundaryOf } from './model-passes.js';

const QWEN3ISH: Partial<LlamaConfig> = { model_type: 'qwen3', qk_norm: true, qkv_bias: true, o_bias: true };

/** An adapter on `layers` of every map, with A as PEFT initialises it and B drawn too (so that it matters). */
function randomAdapter(cfg: LlamaConfig, spec: LoraSpec, seed: number, bStd = 0.3): LoraAdapter {
  const rng = new Rng(seed);
  const a = initLora(cfg, spec, rng);
  for (const layer of a.layers.values()) for (const t of spec.targets) layer[t]!.B.forEach((_, i, B) => { B[i] = bStd * rng.normal(); });
  return a;
}

/** Float64 copies of A and B, by PEFT name (the variables of the reference loss). */
function adapter64(a: LoraAdapter): Map<string, Float64Array> {
  const m = new Map<string, Float64Array>();
  for (const l of a.spec.layers) for (const t of a.spec.targets) {
    m.set(loraTensorName(l, t, 'A'), Float64Array.from(a.layers.get(l)![t]!.A));
    m.set(loraTensorName(l, t, 'B'), Float64Array.from(a.layers.get(l)![t]!.B));
  }
  return m;
}

/** The reference weights with W + s * B A in float64 for every adapted map (from the float64 A, B). */
function merged64(cfg: LlamaConfig, base: RefWeights, spec: LoraSpec, ab: Map<string, Float64Array>): RefWeights {
  const s = loraScale(spec), r = spec.r;
  const layers = base.layers.map((lw) => ({ ...lw }));
  for (const l of spec.layers) {
    for (const t of spec.targets) {
      const { in: I, out: O } = loraDims(cfg, t);
      const A = ab.get(loraTensorName(l, t, 'A'))!, B = ab.get(loraTensorName(l, t, 'B'))!;
      const W = Float64Array.from(base.layers[l]![t]);
      for (let o = 0; o < O; o++) for (let k = 0; k < r; k++) {
        const b = s * B[o * r + k]!;
        for (let i = 0; i < I; i++) W[o * I + i]! += b * A[k * I + i]!;
      }
      (layers[l] as Record<LoraTarget, Float64Array>)[t] = W;
    }
  }
  return { ...base, layers };
}

function rows(b: Float32Array, T: number, C: number): Rows {
  return Array.from({ length: T }, (_, t) => Float64Array.from(b.subarray(t * C, (t + 1) * C)));
}

const ALL_TARGETS = [...LORA_TARGETS];

for (const [label, over] of [['llama, untied', {}], ['qwen3-like: q/k norm, q/k/v/o biases, tied', QWEN3ISH]] as const) {
  const tied = label.includes('tied') && !label.includes('untied');
  test(`LoRA forward equals the float64 reference on W + (alpha/r) B A (${label}); a fresh adapter (B = 0) changes nothing`, () => {
    const cfg = testConfig(tied, over);
    const weights = testWeights(cfg, 11);
    const spec: LoraSpec = { r: 3, alpha: 5, targets: ALL_TARGETS, layers: [1, 2] };
    const a = randomAdapter(cfg, spec, 4);
    const ids = randomIds(new Rng(6), 9, cfg.vocab_size);
    const model = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 2, lora: a });
    const hidden = model.forward(ids, { outRows: ids.length });
    const ref = merged64(cfg, toRef(weights), spec, adapter64(a));
    const C = cfg.hidden_size;
    const expected = refFinalNorm(cfg, ref, refLayers(cfg, ref, ids.map((id) => ref.embed.slice(id * C, (id + 1) * C)), 0, cfg.num_hidden_layers));
    const err = maxRelErr(hidden, expected.flatMap((r) => Array.from(r)));
    assert.ok(err < 1e-4, `relative error ${err}`);
    // The same through the training path (frozen part + trainable layers) and the inference-with-cache path.
    const boundary = boundaryOf(model, ids);
    const acts = model.trainForward(ids, boundary, { outRows: 2 });
    assert.ok(maxRelErr(acts.hidden, hidden.subarray((ids.length - 2) * C)) < 1e-5);
    const fresh = initLora(cfg, spec, new Rng(1));
    const plain = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 2 });
    const withZeroB = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 2, lora: fresh });
    assert.deepEqual(Array.from(withZeroB.forward(ids, { outRows: 3 })), Array.from(plain.forward(ids, { outRows: 3 })), 'B = 0 adds exactly nothing');
  });
}

test('initLora: A uniform in +-1/sqrt(in) (PEFT\'s kaiming_uniform, a = sqrt(5)) from the seeded Rng, B zero; deterministic per seed', () => {
  const cfg = testConfig(true);
  const spec: LoraSpec = { r: 8, alpha: 16, targets: ['q', 'down'], layers: [0, 2] };
  const a = initLora(cfg, spec, new Rng(3)), b = initLora(cfg, spec, new Rng(3)), c = initLora(cfg, spec, new Rng(4));
  for (const l of spec.layers) for (const t of spec.targets) {
    const { in: I } = loraDims(cfg, t);
    const A = a.layers.get(l)![t]!.A, bound = 1 / Math.sqrt(I);
    assert.equal(A.length, 8 * I);
    assert.ok(A.every((x) => Math.abs(x) <= bound), `${t}: |A| <= ${bound}`);
    const max = A.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    assert.ok(max > 0.9 * bound, 'the draws fill the interval');
    const mean = A.reduce((s, x) => s + x, 0) / A.length, variance = A.reduce((s, x) => s + x * x, 0) / A.length;
    assert.ok(Math.abs(mean) < 0.15 * bound && Math.abs(variance / (bound * bound / 3) - 1) < 0.2, `uniform moments: mean ${mean}, var ${variance}`);
    assert.ok(a.layers.get(l)![t]!.B.every((x) => x === 0));
    assert.deepEqual(A, b.layers.get(l)![t]!.A);
    assert.notDeepEqual(A, c.layers.get(l)![t]!.A);
  }
});

function gradCheck(be: Backend, over: Partial<LlamaConfig>, tied: boolean, tol: number): void {
  const cfg = testConfig(tied, over);
  const weights = testWeights(cfg, 21);
  const spec: LoraSpec = { r: 2, alpha: 3, targets: ALL_TARGETS, layers: [1, 2] };
  const a = randomAdapter(cfg, spec, 9);
  const model = new LlamaModel(cfg, weights, be, { trainableLayers: 2, lora: a });
  const rng = new Rng(8);
  const T = 6, n = 3, C = cfg.hidden_size;
  const ids = randomIds(rng, T, cfg.vocab_size);
  const boundary = boundaryOf(model, ids);
  const R = Float64Array.from({ length: n * C }, () => rng.normal());
  model.zeroGrads();
  const acts = model.trainForward(ids, boundary, { outRows: n });
  const dB = backwardInput(model, acts, Float32Array.from(R));
  assert.equal(model.grads().layers, null, 'no gradients of the frozen base weights');
  assert.equal(model.grads().norm, null);
  const base = toRef(weights);
  const ab = adapter64(a);
  const bRows = rows(boundary, T, C);
  const f = (): number => {
    const ref = merged64(cfg, base, spec, ab);
    const x = refLayers(cfg, ref, bRows, 1, 3);
    let loss = 0;
    for (let r = 0; r < n; r++) {
      const h = refFinalNorm(cfg, ref, [x[T - n + r]!])[0]!;
      for (let c = 0; c < C; c++) loss += R[r * C + c]! * h[c]!;
    }
    return loss;
  };
  const params = model.params();
  assert.equal(params.length, 2 * 7 * 2, 'A and B of 7 maps on 2 layers');
  assert.deepEqual(params.slice(0, 4).map((p) => [p.name, p.shape]), [
    ['base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight', [2, 48]],
    ['base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight', [48, 2]],
    ['base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight', [2, 48]],
    ['base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight', [16, 2]],
  ]);
  for (const p of params) {
    const err = checkTensor(p.name, p.grad, ab.get(p.name)!, f, rng, 4);
    assert.ok(err < tol, `${be.name} ${p.name}: error ${err.toExponential(2)} >= ${tol}`);
  }
  const flat = Float64Array.from(boundary);
  const err = checkTensor('boundary', dB, flat, () => {
    for (let t = 0; t < T; t++) bRows[t]!.set(flat.subarray(t * C, (t + 1) * C));
    return f();
  }, rng, 8);
  assert.ok(err < tol, `${be.name} boundary: error ${err}`);
}

for (const [label, over, tied] of [['llama', {}, false], ['qwen3-like', QWEN3ISH, true]] as const) {
  test(`LoRA gradients of A and B (every map) and of the boundary match finite differences, TypeScript backend (${label})`, () => {
    gradCheck(tsBackend, over, tied, 1e-4);
  });
  test(`LoRA gradients match finite differences, native backend (${label})`, { skip: needsNative }, () => {
    gradCheck(nativeBackend!, over, tied, 1e-3);
  });
}

test('LoRA with a shared prompt prefix: forward and gradients equal the plain computation', () => {
  const cfg = testConfig(true, QWEN3ISH);
  const spec: LoraSpec = { r: 2, alpha: 4, targets: ['q', 'v', 'o', 'up'], layers: [2] };
  const model = new LlamaModel(cfg, testWeights(cfg, 30), tsBackend, { trainableLayers: 2, lora: randomAdapter(cfg, spec, 2) });
  const ids = randomIds(new Rng(4), 10, cfg.vocab_size), S = 4, C = cfg.hidden_size;
  const boundary = boundaryOf(model, ids);
  const dH = Float32Array.from({ length: C }, (_, i) => Math.cos(i));
  model.zeroGrads();
  const plain = model.trainForward(ids, boundary);
  const hPlain = plain.hidden.slice();
  model.backward(plain, dH);
  const gPlain = model.params().map((p) => p.grad.slice());
  model.zeroGrads();
  const prefix = model.trainForward(ids.slice(0, S), boundary.subarray(0, S * C), { shared: true });
  const acts = model.trainForward(ids, boundary, { prefix });
  assert.ok(maxRelErr(acts.hidden, hPlain) < 1e-5);
  model.backward(acts, dH);
  model.backward(prefix, null);
  model.params().forEach((p, i) => assert.ok(maxRelErr(p.grad, gPlain[i]!) < 1e-4, `${p.name}: ${maxRelErr(p.grad, gPlain[i]!)}`));
  // The reference snapshot copies the adapters and shares the base weights.
  const snap = model.snapshot();
  assert.notEqual(snap.lora!.layers.get(2)!.q!.A, model.lora!.layers.get(2)!.q!.A);
  assert.deepEqual(snap.lora!.layers.get(2)!.q!.A, model.lora!.layers.get(2)!.q!.A);
  assert.equal(snap.weights, model.weights);
  assert.throws(() => new LlamaModel(cfg, testWeights(cfg, 30), tsBackend, { trainableLayers: 1, lora: randomAdapter(cfg, { ...spec, layers: [1, 2] }, 2) }),
    /LoRA adapters on layer 1 lie below the top 1 layers \(2\.\.2\).*give trainableLayers >= 2/);
});

test('PEFT files: tensor names and shapes and adapter_config.json as PEFT writes them; save -> load gives identical logits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lora-files-'));
  try {
    // testConfig: hidden 48, 6 heads x 8 (HD 48), 2 KV heads (KVD 16), MLP 80, 3 layers.
    const cfg = testConfig(false);
    const spec: LoraSpec = { r: 4, alpha: 8, targets: ['q', 'v', 'down'], layers: [2] };
    const a = randomAdapter(cfg, spec, 5);
    const files = encodeLoraAdapter(cfg, a, 'org/base-model');
    writeFileSync(join(dir, ADAPTER_CONFIG_FILE), files.config);
    writeFileSync(join(dir, ADAPTER_WEIGHTS_FILE), files.weights);
    const { tensors, metadata } = readSafetensors(join(dir, ADAPTER_WEIGHTS_FILE));
    assert.deepEqual([...tensors].map(([name, t]) => [name, t.shape, t.dtype]).sort((x, y) => String(x[0]).localeCompare(String(y[0]))), [
      ['base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight', [4, 48], 'F32'],
      ['base_model.model.model.layers.2.self_attn.q_proj.lora_B.weight', [48, 4], 'F32'],
      ['base_model.model.model.layers.2.self_attn.v_proj.lora_A.weight', [4, 48], 'F32'],
      ['base_model.model.model.layers.2.self_attn.v_proj.lora_B.weight', [16, 4], 'F32'],
      ['base_model.model.model.layers.2.mlp.down_proj.lora_A.weight', [4, 80], 'F32'],
      ['base_model.model.model.layers.2.mlp.down_proj.lora_B.weight', [48, 4], 'F32'],
    ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))));
    assert.equal(metadata.format, 'pt');
    const json = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG_FILE), 'utf8'));
    assert.deepEqual(json, {
      peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: 'org/base-model', revision: null, inference_mode: true,
      r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: ['q_proj', 'v_proj', 'down_proj'], layers_to_transform: [2],
      layers_pattern: 'layers', bias: 'none', fan_in_fan_out: false, modules_to_save: null, init_lora_weights: true,
      rank_pattern: {}, alpha_pattern: {}, use_rslora: false, use_dora: false,
    });
    // Round trip: the same tensors, hence bit-identical logits.
    const back = readLoraAdapter(dir, cfg);
    assert.deepEqual(back.spec, spec);
    assert.equal(back.baseModel, 'org/base-model');
    assert.match(back.fingerprint, /^[0-9a-f]{64}$/);
    const weights = testWeights(cfg, 12);
    const ids = randomIds(new Rng(1), 7, cfg.vocab_size);
    const logits = (ad: LoraAdapter) => {
      const m = new LlamaModel(cfg, weights, tsBackend, { trainableLayers: 1, lora: ad });
      return Array.from(m.fullLogits(m.forward(ids)));
    };
    assert.deepEqual(logits(back), logits(a));

    // PEFT's defaults where a key is absent: lora_alpha 8, every layer when layers_to_transform is null.
    const loose = { peft_type: 'LORA', r: 2, target_modules: ['o_proj'] };
    writeFileSync(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(loose));
    assert.throws(() => readLoraAdapter(dir, cfg), /does not match adapter_config\.json \(r 2, o_proj on layers 0, 1, 2\): missing base_model\.model\.model\.layers\.0\.self_attn\.o_proj\.lora_A\.weight \[2, 48\]/);
    // What this decoder cannot compute is refused, naming the field.
    for (const [over, re] of [
      [{ use_dora: true }, /field "use_dora": true is not supported/],
      [{ use_rslora: true }, /field "use_rslora": true is not supported/],
      [{ target_modules: ['q_proj', 'lm_head'] }, /field "target_modules": "lm_head" is not a linear map of this decoder/],
      [{ target_modules: 'all-linear' }, /field "target_modules": expected a list of module names/],
      [{ peft_type: 'IA3' }, /field "peft_type": "IA3" is not supported/],
      [{ bias: 'lora_only' }, /field "bias": "lora_only" is not supported/],
      [{ layers_to_transform: [5] }, /field "layers_to_transform": LoRA: layer 5 is not a layer of the model \(0\.\.2\)/],
      [{ modules_to_save: ['score'] }, /field "modules_to_save"/],
      [{ rank_pattern: { q_proj: 4 } }, /field "rank_pattern": per-module ranks are not supported/],
    ] as const) {
      writeFileSync(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify({ ...JSON.parse(files.config), ...over }));
      assert.throws(() => readLoraAdapter(dir, cfg), re);
    }
    // A tensor of the wrong shape, and one too many.
    writeFileSync(join(dir, ADAPTER_CONFIG_FILE), files.config);
    const t = [...readSafetensors(join(dir, ADAPTER_WEIGHTS_FILE)).tensors].map(([n, x]) => [n, { shape: x.shape, data: x.data }] as [string, { shape: number[]; data: Float32Array }]);
    t[0] = [t[0]![0], { shape: [4, 40], data: new Float32Array(160) }];
    t.push(['base_model.model.lm_head.lora_A.weight', { shape: [1, 1], data: new Float32Array(1) }]);
    writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), t);
    assert.throws(() => readLoraAdapter(dir, cfg), /q_proj\.lora_A\.weight has shape \[4, 40\], expected \[4, 48\]; unexpected tensor base_model\.model\.lm_head\.lora_A\.weight/);
    rmSync(join(dir, ADAPTER_WEIGHTS_FILE));
    assert.throws(() => readLoraAdapter(dir, cfg), /adapter_model\.safetensors is missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function cli(...args: string[]): Promise<string> {
  let out = '';
  const program = new Command().exitOverride().configureOutput({ writeOut: (s) => { out += s; }, writeErr: () => {} });
  registerModel(program, { out: (s) => { out += s; }, err: () => {} });
  await program.parseAsync(['node', 'flag-trader', ...args]);
  return out;
}

test('model merge: the merged folder reloads with logits identical to model + adapter (--adapter), and close to the unmerged LoRA computation', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lora-merge-'));
  try {
    const base = await loadModel('random:tiny', { seed: 3 });
    const spec: LoraSpec = { r: 4, alpha: 8, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'], layers: [2, 3] };
    const a = randomAdapter(base.config, spec, 7, 0.05);
    const adapterDir = join(dir, 'adapter');
    mkdirSync(adapterDir);
    const files = encodeLoraAdapter(base.config, a, 'random:tiny');
    writeFileSync(join(adapterDir, ADAPTER_CONFIG_FILE), files.config);
    writeFileSync(join(adapterDir, ADAPTER_WEIGHTS_FILE), files.weights);
    const out = join(dir, 'merged');
    const said = await cli('model', 'merge', '--model', 'random:tiny', '--model-seed', '3', '--adapter', adapterDir, '--out', out, '--backend', 'typescript');
    assert.match(said, /merged .* \(r 4, alpha 8, q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj on layers 2, 3\) into random:tiny: wrote .* \(F32\)/);
    const ids = '1,40,77,5,100,3';
    const logits = async (...spec: string[]) => (JSON.parse(await cli('model', 'forward', ...spec, '--ids', ids, '--backend', 'typescript', '--json')) as { logits: number[] }).logits;
    const withAdapter = await logits('--model', 'random:tiny', '--model-seed', '3', '--adapter', adapterDir);
    const reloaded = await logits('--model', out);
    assert.deepEqual(reloaded, withAdapter, 'merged folder == model + --adapter, bit for bit');
    const plain = await logits('--model', 'random:tiny', '--model-seed', '3');
    assert.ok(maxRelErr(plain, withAdapter) > 1e-3, 'the adapter changes the logits');
    // The unmerged computation (W x + s B A x) agrees to float32 rounding.
    const m = new LlamaModel(base.config, base.weights, tsBackend, { trainableLayers: 2, lora: a });
    const unmerged = m.fullLogits(m.forward(ids.split(',').map(Number)));
    assert.ok(maxRelErr(unmerged, withAdapter) < 1e-5, `unmerged vs merged: ${maxRelErr(unmerged, withAdapter)}`);
    // The merged folder carries the tokenizer and a config that names the family.
    const reloadedModel = await loadModel(out);
    assert.equal(reloadedModel.tokenizer.kind, 'hf');
    assert.deepEqual(reloadedModel.config, base.config);
    // The adapter joins the fingerprint.
    const adapted = await loadModel('random:tiny', { seed: 3, adapter: adapterDir });
    assert.notEqual(adapted.fingerprint, base.fingerprint);
    assert.deepEqual(adapted.adapter?.spec, spec);
    await assert.rejects(cli('model', 'merge', '--model', 'random:tiny', '--out', join(dir, 'x')), /--adapter DIR is required/);
    // serve --model --adapter: the zero-shot scorer over base + adapter is the scorer over the merged folder.
    const messages = [{ role: 'system' as const, content: 'Answer buy, sell or hold.' }, { role: 'user' as const, content: 'Profits rise.' }];
    const viaAdapter = await modelScorer('random:tiny', { seed: 3, adapter: adapterDir });
    const viaFolder = await modelScorer(out);
    assert.deepEqual(viaAdapter.scorePrompt!(messages), viaFolder.scorePrompt!(messages));
    assert.notDeepEqual(viaAdapter.scorePrompt!(messages), (await modelScorer('random:tiny', { seed: 3 })).scorePrompt!(messages));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
