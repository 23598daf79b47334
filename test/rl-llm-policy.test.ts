// The LLM policy adapter (src/rl/llm-policy.ts): gradients wired through heads and trainable layers,
// the frozen-prefix cache, the reference policy, and PPO on the LLM end to end (learning signals,
// determinism, bit-identical resume, greedy evaluation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBackend } from '../src/kernels/index.js';
import { loadModel } from '../src/model/load.js';
import { LlmPolicy, type LlmInput } from '../src/rl/llm-policy.js';
import type { HeadNormScale } from '../src/rl/head-norm.js';
import { syntheticMarket } from '../src/data/synthetic.js';
import { TradingEnv } from '../src/env/trading-env.js';
import { parseTrainConfig } from '../src/rl/config.js';
import { runTraining, RUN_FILES } from '../src/rl/run.js';
import { evaluateRun } from '../src/eval/evaluate.js';
import { Rng } from '../src/util/rng.js';
import { ACTIONS } from '../src/env/types.js';
import { metricsOf, tensorsOf } from './run-helpers.js';

async function tinyPolicy(backend: 'typescript' | 'native' | 'auto' = 'auto', head: 'lm' | 'linear' = 'lm', K = 2, headNorm: HeadNormScale | undefined = undefined, spec = 'random:tiny'): Promise<LlmPolicy> {
  const model = await loadModel(spec, { seed: 3 });
  return new LlmPolicy({ model, backend: getBackend(backend), trainableLayers: K, head, headInput: 'last', ...(headNorm && { headNorm }), seed: 1, prompt: { mode: 'benchmark' } });
}

// Scalar loss of one sample: L = sum_a w_a log p_a + c * V.
const W = Float64Array.from([0.7, -1.3, 0.4]);
const CV = 0.9;
function loss(p: LlmPolicy, x: LlmInput): number {
  const s = p.forward(x);
  return W[0]! * s.logProbs[0]! + W[1]! * s.logProbs[1]! + W[2]! * s.logProbs[2]! + CV * s.value;
}

/**
 * config.json files of the other model families, random:tiny's shape otherwise (byte vocabulary):
 * their biases and q/k norms must train like every other tensor of the top layers.
 */
const FAMILY_CONFIGS: Record<string, Record<string, unknown>> = {
  qwen2: { architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', rope_theta: 1000000, use_sliding_window: false },
  qwen3: { architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', head_dim: 24, attention_bias: true, rope_theta: 1000000 },
  llama3: { architectures: ['LlamaForCausalLM'], attention_bias: true, mlp_bias: true,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 256 } },
};

/** A `random:` spec of a family's config written into `dir`. */
function familySpec(dir: string, family: string): string {
  const path = join(dir, `${family}.json`);
  writeFileSync(path, JSON.stringify({
    hidden_size: 64, intermediate_size: 172, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2,
    vocab_size: 259, rms_norm_eps: 1e-5, max_position_embeddings: 4096, tie_word_embeddings: true,
    bos_token_id: 1, eos_token_id: 2, pad_token_id: 2, ...FAMILY_CONFIGS[family],
  }));
  return `random:${path}`;
}

const FAMILY_CASES = Object.keys(FAMILY_CONFIGS).map((f) => [f, 'lm', undefined] as const);
for (const [family, head, headNorm] of [['llama', 'lm', undefined], ['llama', 'linear', undefined], ['llama', 'lm', 'channel'], ['llama', 'linear', 'channel'], ['llama', 'linear', 'global'], ...FAMILY_CASES] as const) {
  test(`gradients (${family === 'llama' ? '' : `${family}, `}${head} head${headNorm ? `, head_norm ${headNorm}` : ''}): backward matches central differences along random directions of every trainable tensor`, async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'llm-family-'));
    const p = await tinyPolicy('typescript', head, 2, headNorm, family === 'llama' ? 'random:tiny' : familySpec(tmp, family));
    rmSync(tmp, { recursive: true, force: true });
    // Biases start at 0 as Hugging Face initialises them; move them so that every path matters.
    for (const q of p.params()) if (q.name.endsWith('.bias') && q.name.startsWith('model.')) q.data.forEach((_, i) => { q.data[i] = 0.2 * Math.sin(i + 1); });
    const x = p.encodeText('<|im_start|>user\nNews: profits rise (Sentiment: positive)<|im_end|>\n<|im_start|>assistant\n{"action": "');
    if (headNorm) {
      // Statistics far from the identity: a rollout over other prompts, folded at its end.
      p.beginRollout();
      for (const t of ['price falls', 'shares jump on earnings', 'flat day', 'guidance cut']) p.forward(p.encodeText(`<|im_start|>user\nNews: ${t}<|im_end|>\n<|im_start|>assistant\n`), false);
      p.endRollout();
      p.beginRollout(); // the next rollout folds them in
      p.endRollout();
      const [mean, variance, count] = p.stateTensors();
      assert.equal(count!.data[0], 4);
      assert.ok(mean!.data.some((m) => Math.abs(m) > 1e-3) && variance!.data.some((v) => Math.abs(v - 1) > 1e-2), 'statistics away from the identity');
    }
    // A non-zero value head, so that its gradient path into the trunk is exercised too.
    const rng = new Rng(5);
    const vh = p.params().find((q) => q.name === 'value_head.weight')!;
    for (let i = 0; i < vh.data.length; i++) vh.data[i] = 0.3 * rng.normal();
    for (const q of p.params()) q.grad.fill(0);
    const s = p.forward(x);
    p.backward(s.handle, W, CV);
    const names = p.params().map((q) => q.name);
    assert.ok(names.includes('model.norm.weight') && names.includes('value_head.bias'));
    assert.equal(names.includes('policy_head.weight'), head === 'linear', 'only the linear head has its own weights');
    if (family === 'qwen3') assert.ok(names.includes('model.layers.3.self_attn.q_norm.weight') && names.includes('model.layers.2.self_attn.o_proj.bias'));
    if (family === 'qwen2') assert.ok(names.includes('model.layers.3.self_attn.k_proj.bias') && !names.includes('model.layers.3.self_attn.o_proj.bias'));
    if (family === 'llama3') assert.ok(names.includes('model.layers.3.mlp.down_proj.bias'));
    for (const q of p.params()) {
      const u = Float32Array.from(q.data, () => rng.normal());
      let analytic = 0;
      for (let i = 0; i < u.length; i++) analytic += q.grad[i]! * u[i]!;
      const orig = q.data.slice();
      const eps = 1e-2 / Math.sqrt(u.length);
      const at = (t: number) => { for (let i = 0; i < u.length; i++) q.data[i] = orig[i]! + t * u[i]!; return loss(p, x); };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      q.data.set(orig);
      const tol = 0.03 * Math.max(Math.abs(analytic), Math.abs(numeric)) + 2e-3;
      assert.ok(Math.abs(analytic - numeric) <= tol, `${q.name}: analytic ${analytic} vs numeric ${numeric}`);
    }
  });
}

test('the system turn is cached: a second prompt reuses its frozen output, and the boundary equals an uncached computation', async () => {
  const series = syntheticMarket({ seed: 2, days: 80 });
  const env = new TradingEnv(series, { lookback: 20, start: 'fixed' });
  const o1 = env.reset();
  const o2 = env.step('buy').observation;
  const a = await tinyPolicy('typescript');
  a.encode(o1);
  const prefix = a.lastPrefixLen;
  assert.ok(prefix > 100, `the instruction turn is long (${prefix} tokens)`);
  const x2 = a.encode(o2);
  assert.equal(a.cacheStats().frozenReused, prefix, 'the second prompt reused exactly the system turn');
  // The same day again with another account (a later episode): the market section is reused too.
  const again = a.encode({ ...o2, account: { ...o2.account, position: -1, cumulativeReturn: 0.05 } });
  const text2 = a.promptText(o2).text;
  const beforeAccount = a.tokenizer.encode(text2.slice(0, text2.indexOf('Your account:'))).length;
  assert.ok(beforeAccount > prefix + 50);
  assert.equal(a.cacheStats().frozenReused, prefix + beforeAccount, 'everything before the account section came from the cache');
  assert.ok(again.ids.length - beforeAccount < 200, 'only the account and the answer prefix ran through the frozen layers');
  const b = await tinyPolicy('typescript');
  const y2 = b.encode(o2);
  assert.equal(b.cacheStats().frozenReused, 0);
  assert.deepEqual(Array.from(x2.ids), Array.from(y2.ids));
  let maxDiff = 0;
  for (let i = 0; i < x2.boundary.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x2.boundary[i]! - y2.boundary[i]!));
  assert.ok(maxDiff < 1e-5, `cached vs uncached boundary differ by ${maxDiff}`);
  // The prompt ends with the answer prefix, so the policy reads the action word's first token there.
  const text = a.promptText(o2).text;
  assert.ok(text.endsWith('<|im_start|>assistant\n{"action": "'), text.slice(-60));
  assert.ok(text.indexOf(o2.date) > text.indexOf('<|im_start|>user'), 'the day is in the user turn, after the cached system turn');
});

test('the reference policy is the initial policy and stays frozen while the trainable weights move', async () => {
  const p = await tinyPolicy();
  const x = p.encodeText('<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n{"action": "');
  const before = Array.from(p.forward(x).logProbs);
  assert.deepEqual(Array.from(p.referenceLogProbs(x)), before);
  const total = before.reduce((s, l) => s + Math.exp(l), 0);
  assert.ok(Math.abs(total - 1) < 1e-9, 'log-probs over buy/sell/hold normalise');
  for (const q of p.params()) for (let i = 0; i < q.data.length; i++) q.data[i]! += 0.05 * Math.sin(i + 1);
  const after = Array.from(p.forward(x).logProbs);
  assert.notDeepEqual(after, before);
  assert.deepEqual(Array.from(p.referenceLogProbs(x)), before);
  assert.equal(p.actionIds.length, ACTIONS.length);
});

test('llm_lr_scale: the decoder\'s trainable tensors carry the scale for the optimizer, the heads do not', async () => {
  const { createLlmPolicy } = await import('../src/rl/policies.js');
  const p = await createLlmPolicy(parseTrainConfig({ model: 'random:tiny', trainable_layers: 1, llm_lr_scale: 0.1 }, 'test'));
  const ps = p.params();
  const backbone = ps.filter((q) => q.name.startsWith('model.'));
  assert.ok(backbone.length > 0 && backbone.every((q) => q.lrScale === 0.1), 'every model.* tensor at 0.1');
  assert.ok(ps.filter((q) => !q.name.startsWith('model.')).every((q) => q.lrScale === undefined), 'heads at the base rate');
  const q = await createLlmPolicy(parseTrainConfig({ model: 'random:tiny', trainable_layers: 1 }, 'test'));
  assert.ok(q.params().every((x) => x.lrScale === undefined), 'default 1: no scale recorded');
});

test('trainable_layers outside 1..L is an error naming the model', async () => {
  const model = await loadModel('random:tiny', { seed: 0 });
  for (const K of [0, 5]) {
    assert.throws(() => new LlmPolicy({ model, backend: getBackend(), trainableLayers: K, head: 'lm', headInput: 'last', seed: 0, prompt: {} }),
      new RegExp(`trainable_layers must be an integer in 1\\.\\.4 for random:tiny \\(it has 4 layers\\), got ${K}`));
  }
});

// ---- PPO on the LLM policy, end to end ----

const LLM_RUN = {
  policy: 'llm', model: 'random:tiny', trainable_layers: 1, synthetic_days: 160, num_steps: 8, total_timesteps: 32,
  minibatch_size: 8, gradient_accumulation_steps: 2, checkpoint_every: 1, prompt_max_tokens: null, learning_rate: 2e-3,
  update_epochs: 1, // one pass: the first update's KL (measured before its step) is then ~0
};

test('PPO on the LLM: KL to the reference grows from 0; a stopped and resumed run is bit-identical; evaluate runs greedy', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llm-ppo-'));
  try {
    const config = parseTrainConfig(LLM_RUN, 'test');
    const full = join(dir, 'full'), cut = join(dir, 'cut');
    await runTraining({ out: full, config });
    const m = metricsOf(full);
    assert.equal(m.length, 4);
    const kl = m.map((x) => x.kl_ref as number);
    assert.ok(kl[0]! < 1e-3, `KL to the reference starts near 0 (${kl[0]})`);
    assert.ok(kl[3]! > kl[0]!, `KL grows: ${kl.join(', ')}`);
    const ent = m.map((x) => x.entropy as number);
    for (const e of ent) assert.ok(e > 0 && e <= Math.log(3) + 1e-9, `entropy ${e} within (0, ln 3]`);
    const rec = JSON.parse(readFileSync(join(full, RUN_FILES.config), 'utf8'));
    assert.equal(rec.policy.kind, 'llm');
    const saved = tensorsOf(join(full, RUN_FILES.policy));
    assert.ok(Object.keys(saved).includes('model.layers.3.mlp.down_proj.weight'), 'HF names for the trainable layer');
    // head_norm global (the default): its statistics travel with the weights; every rollout step was
    // counted (the last rollout's vectors wait for a fold that a next rollout would make).
    assert.equal(config.head_norm, 'global');
    const counted = saved['head_norm.count']![0]! + saved['head_norm.pending_count']![0]!;
    assert.ok(counted >= config.total_timesteps && saved['head_norm.count']![0]! > 0, `head_norm counts ${saved['head_norm.count']} + ${saved['head_norm.pending_count']}`);

    await runTraining({ out: cut, config, stopAfter: 2 });
    await runTraining({ out: cut, resume: true });
    assert.deepEqual(metricsOf(cut), m);
    assert.deepEqual(tensorsOf(join(cut, RUN_FILES.policy)), tensorsOf(join(full, RUN_FILES.policy)));

    const results = await evaluateRun({ run: full, baselines: ['buy-and-hold'] });
    assert.equal(results.length, 2);
    const [trained, bh] = results;
    assert.equal(trained!.positions.length, bh!.positions.length);
    assert.ok(trained!.positions.every((x) => x === 1 || x === -1 || x === 0));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PPO on a Qwen3 model: its q/k norms and biases train, are saved under HF names, and resume bit-identically', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llm-ppo-qwen3-'));
  try {
    const config = parseTrainConfig({ ...LLM_RUN, model: familySpec(dir, 'qwen3'), total_timesteps: 24 }, 'test');
    const full = join(dir, 'full'), cut = join(dir, 'cut');
    await runTraining({ out: full, config });
    const saved = tensorsOf(join(full, RUN_FILES.policy));
    for (const name of ['model.layers.3.self_attn.q_norm.weight', 'model.layers.3.self_attn.k_norm.weight', 'model.layers.3.self_attn.q_proj.bias', 'model.layers.3.self_attn.o_proj.bias']) {
      assert.ok(name in saved, `${name} is saved`);
    }
    assert.ok(saved['model.layers.3.self_attn.q_norm.weight']!.some((x) => x !== 1), 'q_norm moved from its initial 1');
    assert.ok(saved['model.layers.3.self_attn.v_proj.bias']!.some((x) => x !== 0), 'v_proj bias moved from its initial 0');
    await runTraining({ out: cut, config, stopAfter: 1 });
    await runTraining({ out: cut, resume: true });
    assert.deepEqual(metricsOf(cut), metricsOf(full));
    assert.deepEqual(tensorsOf(join(cut, RUN_FILES.policy)), saved);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
