/**
 * Policy networks by name (`--policy NAME`): a map of factories from the run config to an
 * ActorCritic. A factory must be deterministic in the config (same config -> same initial weights and
 * the same frozen reference policy), because resuming and evaluating rebuild the policy from the run's
 * config and then load the trained tensors by name.
 *
 * `mlp` is built in. The LLM policy is added by `registerPolicy('llm', factory)` from the module that
 * adapts the decoder to ActorCritic; until then `--policy llm` fails with a clear message.
 */
import { FEATURE_NAMES, featureVector } from '../env/features.js';
import type { TrainConfig } from './config.js';
import { MlpPolicy } from './mlp-policy.js';
import type { ActorCritic } from './policy.js';
import { streamRng } from './seeds.js';

export type PolicyFactory = (config: TrainConfig) => ActorCritic | Promise<ActorCritic>;

const factories = new Map<string, PolicyFactory>([
  ['mlp', (c) => new MlpPolicy({
    inputDim: FEATURE_NAMES.length,
    featurize: featureVector,
    featureSet: `env/features(${FEATURE_NAMES.length})`,
    hidden: c.mlp_hidden,
    rng: streamRng(c.seed, 'policy-init'),
  })],
]);

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
    if (config.policy === 'llm') {
      throw new Error('--policy llm is not yet available: no LLM policy adapter is registered (src/rl/policies.ts); use --policy mlp for now');
    }
    throw new Error(`unknown policy ${JSON.stringify(config.policy)}; known policies: ${policyNames().join(', ')}`);
  }
  return factory(config);
}
