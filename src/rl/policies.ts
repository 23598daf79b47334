/**
 * Policy networks by name (`--policy NAME`): a map of factories from the run config to an
 * ActorCritic. A factory must be deterministic in the config (same config -> same initial weights and
 * the same frozen reference policy), because resuming and evaluating rebuild the policy from the run's
 * config and then load the trained tensors by name.
 *
 * `mlp` is the ablation over numeric features; `llm` is the FLAG-Trader policy (src/rl/llm-policy.ts).
 */
import { FEATURE_NAMES, featureVector } from '../env/features.js';
import type { TrainConfig } from './config.js';
import { MlpPolicy } from './mlp-policy.js';
import type { ActorCritic } from './policy.js';
import { streamRng } from './seeds.js';
import { existsSync, statSync } from 'node:fs';
import { LlmPolicy, type LlmLoraOptions, type LlmPolicyOptions } from './llm-policy.js';
import type { LlamaConfig } from '../model/config.js';
import { LORA_MODULE_NAMES, LORA_TARGETS, readLoraAdapter } from '../model/lora.js';
import { loadModel } from '../model/load.js';
import { MIB } from '../model/prefix-cache.js';
import { getBackend } from '../kernels/index.js';

export type PolicyFactory = (config: TrainConfig) => ActorCritic | Promise<ActorCritic>;

const factories = new Map<string, PolicyFactory>([
  ['mlp', (c) => new MlpPolicy({
    inputDim: FEATURE_NAMES.length,
    featurize: featureVector,
    featureSet: `env/features(${FEATURE_NAMES.length})`,
    hidden: c.mlp_hidden,
    rng: streamRng(c.seed, 'policy-init'),
  })],
  ['llm', (c) => createLlmPolicy(c)],
]);

/**
 * The `llm` policy of a config; `extra` overrides options the config does not hold (benchmarks: the
 * caches switch, an instrumented backend instead of getBackend()).
 */
export async function createLlmPolicy(c: TrainConfig, extra: Partial<Pick<LlmPolicyOptions, 'caches' | 'backend'>> = {}): Promise<LlmPolicy> {
  // With frozen_dtype bfloat16 the layers that train (top K without LoRA; none with it) stay float32.
  const model = await loadModel(c.model, {
    seed: c.model_seed, ...(c.tokenizer !== null && { tokenizerPath: c.tokenizer }),
    frozenDtype: c.frozen_dtype, float32Layers: c.adapter === 'none' ? c.trainable_layers : 0,
  });
  const backend = extra.backend ?? getBackend();
  if (c.threads > 0) backend.setThreads(c.threads);
  const lora = loraOptions(c, model.config);
  const L = model.config.num_hidden_layers;
  return new LlmPolicy({
    model, backend, trainableLayers: lora && c.lora_layers === 'all' ? L : c.trainable_layers, ...(lora && { lora }), head: c.policy_head, headInput: c.head_input, headNorm: c.head_norm === 'none' ? undefined : c.head_norm === 'global' ? 'global' : 'channel', backboneLrScale: c.llm_lr_scale, seed: c.seed, prefixCacheBytes: c.prefix_cache_mb * MIB, rolloutCacheBytes: c.rollout_cache_mb * MIB,
    prompt: {
      mode: c.mode, allowShort: c.allow_short, style: c.prompt_style,
      ...(c.prompt_max_tokens !== null && { maxTokens: c.prompt_max_tokens }),
      ...(c.prompt_max_chars !== null && { maxChars: c.prompt_max_chars }),
    },
    ...(extra.caches !== undefined && { caches: extra.caches }),
  });
}

/** The LoRA settings of a config (adapter lora, or a PEFT adapter folder to start from); undefined for adapter none. */
export function loraOptions(c: TrainConfig, model: LlamaConfig): LlmLoraOptions | undefined {
  if (c.adapter === 'none') return undefined;
  const targets = LORA_TARGETS.filter((t) => c.lora_target_modules.includes(LORA_MODULE_NAMES[t] as TrainConfig['lora_target_modules'][number]));
  const base = { r: c.lora_r, alpha: c.lora_alpha, targets };
  if (c.adapter === 'lora') return base;
  if (!existsSync(c.adapter) || !statSync(c.adapter).isDirectory()) {
    throw new Error(`adapter ${JSON.stringify(c.adapter)}: expected none, lora or a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors), and there is no such folder`);
  }
  return { ...base, from: readLoraAdapter(c.adapter, model) };
}

/** Add (or replace) a policy type. */
export function registerPolicy(name: string, factory: PolicyFactory): void {
  factories.set(name, factory);
}

export function policyNames(): string[] {
  return [...factories.keys()];
}

/** Build the policy the config names (fresh initial weights). */
export async function createPolicy(config: TrainConfig): Promise<ActorCritic> {
  const factory = factories.get(config.policy);
  if (!factory) {
    throw new Error(`unknown policy ${JSON.stringify(config.policy)}; known policies: ${policyNames().join(', ')}`);
  }
  return factory(config);
}
