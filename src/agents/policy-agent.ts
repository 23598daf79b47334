/**
 * A trained (or untrained) ActorCritic as an Agent for backtests: greedy by default (the argmax of
 * the log-probs, ties to the first action in ACTIONS order), or sampled from the policy's
 * distribution with a seeded Rng that `reset(seed)` restarts.
 */
import type { Agent } from './agent.js';
import { ACTIONS, type Action, type Observation } from '../env/types.js';
import { Rng } from '../util/rng.js';
import { argmax } from '../model/sampling.js';
import type { ActorCritic } from '../rl/policy.js';
import { deriveSeed } from '../rl/seeds.js';

export interface PolicyAgentOptions {
  name?: string;
  /** Sample actions instead of taking the most probable one. */
  sampled?: boolean;
  /** Seed of the sampling stream until reset(seed) gives another (default 0). */
  seed?: number;
}

export class PolicyAgent implements Agent {
  readonly name: string;
  private readonly policy: ActorCritic;
  private readonly sampled: boolean;
  private rng: Rng;

  constructor(policy: ActorCritic, opts: PolicyAgentOptions = {}) {
    this.policy = policy;
    this.sampled = opts.sampled ?? false;
    this.name = opts.name ?? `ppo-${policy.kind}${this.sampled ? '-sampled' : ''}`;
    this.rng = new Rng(deriveSeed(opts.seed ?? 0, 'policy-agent'));
  }

  reset(seed?: number): void {
    if (seed !== undefined) this.rng = new Rng(deriveSeed(seed, 'policy-agent'));
  }

  /** The policy's action probabilities for an observation (ACTIONS order). */
  probabilities(obs: Observation): number[] {
    return Array.from(this.policy.forward(this.policy.encode(obs), false).logProbs, Math.exp);
  }

  act(obs: Observation): Action {
    const { logProbs } = this.policy.forward(this.policy.encode(obs), false);
    const i = this.sampled ? this.rng.categorical(Array.from(logProbs, Math.exp)) : argmax(logProbs);
    return ACTIONS[i]!;
  }
}
