// PPO with LoRA (adapter lora): only the adapters and the heads change, the run writes its adapter in
// PEFT's layout, a stopped run resumes bit-identically, evaluate/serve take --adapter, and a run can
// start from an adapter folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTrainConfig, parseFlagValue } from '../src/rl/config.js';
import { createPolicy } from '../src/rl/policies.js';
import { LlmPolicy } from '../src/rl/llm-policy.js';
import { makeTrainEnvs, runTraining, RUN_FILES } from '../src/rl/run.js';
import { loadRunSeries, trainWindow } from '../src/rl/data.js';
import { PpoTrainer } from '../src/rl/ppo.js';
import { readManifest } from '../src/rl/manifest.js';
import { evaluateRun } from '../src/eval/evaluate.js';
import { runScorer } from '../src/serve/policy-scorer.js';
import { readLoraAdapter } from '../src/model/lora.js';
import { syntheticMarket } from '../src/data/synthetic.js';
import { TradingEnv } from '../src/env/trading-env.js';
import { metricsOf, tensorsOf, withTmp } from './run-helpers.js';

const LORA_RUN = {
  policy: 'llm', model: 'random:tiny', trainable_layers: 2, adapter: 'lora', lora_r: 4, lora_alpha: 8, policy_head: 'linear', head_input: 'mean',
  lora_target_modules: ['q_proj', 'v_proj', 'o_proj', 'down_proj'], synthetic_days: 160, num_steps: 8, total_timesteps: 24,
  minibatch_size: 8, gradient_accumulation_steps: 2, checkpoint_every: 1, prompt_max_tokens: null, learning_rate: 5e-3, update_epochs: 2,
};

test('config: adapter, lora_r, lora_alpha, lora_target_modules, lora_layers are validated; lora settings without LoRA are refused', () => {
  const c = parseTrainConfig({}, 'test');
  assert.equal(c.adapter, 'none');
  assert.deepEqual([c.lora_r, c.lora_alpha, c.lora_target_modules, c.lora_layers], [8, 16, ['q_proj', 'v_proj'], 'top']);
  assert.deepEqual(parseFlagValue('lora_target_modules', 'q_proj, o_proj,down_proj'), ['q_proj', 'o_proj', 'down_proj']);
  assert.throws(() => parseFlagValue('lora_target_modules', 'q_proj,lm_head'), /--lora-target-modules "q_proj,lm_head"/);
  assert.throws(() => parseTrainConfig({ lora_r: 4 }, 'test'), /lora_r applies only with adapter lora/);
  assert.throws(() => parseTrainConfig({ lora_layers: 'all', lora_alpha: 2 }, 'test'), /lora_alpha, lora_layers apply only with adapter lora/);
  assert.throws(() => parseTrainConfig({ adapter: 'lora', policy: 'mlp' }, 'test'), /adapter lora applies only to policy llm/);
  assert.throws(() => parseTrainConfig({ adapter: 'lora', lora_target_modules: ['q_proj', 'q_proj'] }, 'test'), /lists a module twice/);
  assert.throws(() => parseTrainConfig({ adapter: 'lora', lora_r: 0 }, 'test'), /lora_r/);
});

test('a LoRA policy: adapters on the top K layers under PEFT names; base weights stay bit-identical through PPO updates, adapters and heads move', { timeout: 300_000 }, async () => {
  const config = parseTrainConfig(LORA_RUN, 'test');
  const policy = await createPolicy(config) as LlmPolicy;
  const names = policy.params().map((p) => p.name);
  assert.deepEqual(names.filter((n) => n.startsWith('base_model.')), [2, 3].flatMap((l) => ['self_attn.q_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.down_proj']
    .flatMap((m) => [`base_model.model.model.layers.${l}.${m}.lora_A.weight`, `base_model.model.model.layers.${l}.${m}.lora_B.weight`])));
  assert.ok(!names.some((n) => n.startsWith('model.')), 'no base weight (nor the final norm) trains');
  assert.deepEqual(names.filter((n) => !n.startsWith('base_model.')), ['policy_head.weight', 'policy_head.bias', 'value_head.weight', 'value_head.bias']);
  assert.equal(policy.model.frozenLayers, 2, 'the prefix cache covers the two layers below the adapters');
  // Every base tensor, copied bit for bit.
  const w = policy.model.weights;
  const before = [w.embed, w.norm, ...w.layers.flatMap((l) => Object.values(l) as Float32Array[])].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64'));
  const adaptersBefore = policy.params().map((p) => p.data.slice());
  const { series } = await loadRunSeries(config);
  const trainer = new PpoTrainer(policy, makeTrainEnvs(series, trainWindow(series, config), config), config);
  trainer.runUpdate();
  trainer.runUpdate();
  const after = [w.embed, w.norm, ...w.layers.flatMap((l) => Object.values(l) as Float32Array[])].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64'));
  assert.deepEqual(after, before, 'base weights bit-identical after training');
  policy.params().forEach((p, i) => assert.notDeepEqual(p.data, adaptersBefore[i], `${p.name} moved`));
  assert.ok(policy.params().filter((p) => p.name.endsWith('lora_B.weight')).every((p) => p.data.some((x) => x !== 0)), 'every B left 0');
});

test('PPO with LoRA: the run writes its adapter in PEFT\'s layout; stopped and resumed it is bit-identical; evaluate and serve take --adapter; a run can start from an adapter', { timeout: 600_000 }, withTmp('lora-run-', async (dir) => {
  const config = parseTrainConfig(LORA_RUN, 'test');
  const full = join(dir, 'full'), cut = join(dir, 'cut');
  await runTraining({ out: full, config });
  const saved = tensorsOf(join(full, RUN_FILES.policy));
  const adapterDir = join(full, 'adapter');
  const adapterTensors = tensorsOf(join(adapterDir, 'adapter_model.safetensors'));
  // The adapter file holds exactly the policy file's LoRA tensors (same names, same values).
  assert.deepEqual(Object.keys(adapterTensors).sort(), Object.keys(saved).filter((n) => n.startsWith('base_model.')).sort());
  for (const [n, v] of Object.entries(adapterTensors)) assert.deepEqual(v, saved[n], n);
  const cfg = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8'));
  assert.deepEqual([cfg.peft_type, cfg.task_type, cfg.r, cfg.lora_alpha, cfg.target_modules, cfg.layers_to_transform, cfg.base_model_name_or_path, cfg.bias, cfg.fan_in_fan_out],
    ['LORA', 'CAUSAL_LM', 4, 8, ['q_proj', 'v_proj', 'o_proj', 'down_proj'], [2, 3], 'random:tiny', 'none', false]);
  const manifest = readManifest(full)!;
  assert.ok('adapter/adapter_model.safetensors' in manifest.files && 'adapter/adapter_config.json' in manifest.files, 'the exports are in the manifest');

  await runTraining({ out: cut, config, stopAfter: 1 });
  assert.ok(!existsSync(join(cut, 'adapter')), 'an unfinished run has no export yet');
  await runTraining({ out: cut, resume: true });
  assert.deepEqual(metricsOf(cut), metricsOf(full));
  assert.deepEqual(tensorsOf(join(cut, RUN_FILES.policy)), saved);
  assert.deepEqual(readFileSync(join(cut, 'adapter', 'adapter_model.safetensors')), readFileSync(join(adapterDir, 'adapter_model.safetensors')));

  // evaluate --adapter with the run's own export gives the run's own results; serve --run --adapter too.
  const plain = await evaluateRun({ run: full, baselines: [] });
  const viaAdapter = await evaluateRun({ run: full, baselines: [], adapter: adapterDir });
  assert.equal(viaAdapter[0]!.agent, `${plain[0]!.agent}+adapter`);
  assert.deepEqual(viaAdapter[0]!.positions, plain[0]!.positions);
  assert.deepEqual(viaAdapter[0]!.metrics, plain[0]!.metrics);
  const obs = new TradingEnv(syntheticMarket({ seed: 1, days: 160 }), { lookback: 20, start: 'fixed' }).reset();
  const s1 = await runScorer(full), s2 = await runScorer(full, undefined, { adapter: adapterDir });
  assert.deepEqual(s2.scoreObservation(obs), s1.scoreObservation(obs));
  // An adapter of other settings is refused, naming what would fit it.
  const otherRun = join(dir, 'other');
  await runTraining({ out: otherRun, config: parseTrainConfig({ ...LORA_RUN, lora_r: 2, total_timesteps: 8 }, 'test') });
  await assert.rejects(evaluateRun({ run: otherRun, baselines: [], adapter: adapterDir }), /does not fit the policy's LoRA settings: it has r 4 \(here 2\); to use it set lora_r 4/);

  // A new run from the adapter folder starts with its A and B.
  const from = parseTrainConfig({ ...LORA_RUN, adapter: adapterDir }, 'test');
  const p = await createPolicy(from) as LlmPolicy;
  const loaded = readLoraAdapter(adapterDir, p.model.config);
  for (const q of p.params().filter((x) => x.name.startsWith('base_model.'))) assert.deepEqual(Array.from(q.data), adapterTensors[q.name], q.name);
  assert.deepEqual(loaded.spec.layers, [2, 3]);
  assert.notEqual(p.fingerprint, (await createPolicy(config)).fingerprint);
  await assert.rejects(createPolicy(parseTrainConfig({ ...LORA_RUN, adapter: adapterDir, trainable_layers: 3 }, 'test')),
    /it has layers 2,3 \(here 1,2,3\); to use it set trainable_layers 2/);
  await assert.rejects(createPolicy(parseTrainConfig({ ...LORA_RUN, adapter: join(dir, 'nope') }, 'test')), /expected none, lora or a PEFT LoRA adapter folder/);
  // A top-K run has nothing to load an adapter into.
  const topK = join(dir, 'topk');
  await runTraining({ out: topK, config: parseTrainConfig({ ...LORA_RUN, adapter: 'none', lora_r: 8, lora_alpha: 16, lora_target_modules: ['q_proj', 'v_proj'], total_timesteps: 8 }, 'test') });
  await assert.rejects(evaluateRun({ run: topK, baselines: [], adapter: adapterDir }), /this policy was trained without LoRA/);
}));

test('lora_layers all: adapters on every layer, the frozen part is just the embedding', async () => {
  const p = await createPolicy(parseTrainConfig({ ...LORA_RUN, lora_layers: 'all', lora_target_modules: ['k_proj'] }, 'test')) as LlmPolicy;
  assert.equal(p.model.frozenLayers, 0);
  assert.deepEqual(p.model.lora!.spec.layers, [0, 1, 2, 3]);
  assert.equal(p.params().length, 4 * 2 + 4);
});

test('frozen_dtype bfloat16: top-K and LoRA runs train over bf16 frozen weights, record it in the fingerprint, and resume bit-identically', { timeout: 300_000 }, withTmp('bf16-run-', async (dir) => {
  for (const over of [{ adapter: 'none', lora_r: 8, lora_alpha: 16, lora_target_modules: ['q_proj', 'v_proj'], trainable_layers: 1 }, {}]) {
    const config = parseTrainConfig({ ...LORA_RUN, ...over, frozen_dtype: 'bfloat16', total_timesteps: 16 }, 'test');
    const p = await createPolicy(config) as LlmPolicy;
    const f32 = await createPolicy({ ...config, frozen_dtype: 'float32' }) as LlmPolicy;
    assert.notEqual(p.fingerprint, f32.fingerprint);
    assert.ok(p.model.weights.embed instanceof Uint16Array && p.model.weights.layers[0]!.q instanceof Uint16Array);
    assert.equal(p.model.weights.layers[3]!.q instanceof Float32Array, config.adapter === 'none', 'the top layer stays float32 only when it trains');
    assert.ok(p.model.weightBytes() < f32.model.weightBytes());
    const full = join(dir, `full-${config.adapter}`), cut = join(dir, `cut-${config.adapter}`);
    await runTraining({ out: full, config });
    await runTraining({ out: cut, config, stopAfter: 1 });
    await runTraining({ out: cut, resume: true });
    assert.deepEqual(metricsOf(cut), metricsOf(full));
    assert.deepEqual(tensorsOf(join(cut, RUN_FILES.policy)), tensorsOf(join(full, RUN_FILES.policy)));
  }
  assert.throws(() => parseTrainConfig({ policy: 'mlp', frozen_dtype: 'bfloat16' }, 'test'), /frozen_dtype bfloat16 applies only to policy llm/);
}));
