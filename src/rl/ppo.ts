/**
 * PPO (clipped surrogate, GAE, value clipping, entropy bonus, KL penalty to the frozen reference
 * policy), one update at a time, in the shape of CleanRL's ppo.py:
 *
 *   for update in 1..num_updates:
 *     lr <- annealed learning rate
 *     rollout: num_steps steps in each of num_envs environments with the current policy
 *     GAE advantages and returns, bootstrapped with V(next observation)
 *     for epoch in 1..update_epochs: shuffled minibatches -> micro-batches -> one clipped AdamW step
 *     diagnostics
 *
 * Episode ends. The trading environment ends an episode at a time limit (`max-steps` or the window's
 * `window-end`: the market goes on) or, in account mode, at ruin (`ruined`: a true terminal state).
 * With bootstrap_truncation (default) a time-limit end adds gamma * V(final observation) to the last
 * reward, the value the episode would have continued with, then GAE treats the step as the episode's
 * last (no bootstrapping across the reset into the next episode). Without it, or at ruin, the value
 * after the end is 0 (CleanRL's behaviour). The final observation's value comes from the rollout's
 * policy, like every other rollout value.
 *
 * Randomness: actions are sampled from exp(logProbs) with the trainer's `sampling` Rng, minibatches
 * are shuffled with its `shuffle` Rng, and each environment draws its episode starts from its own
 * seeded Rng. All of them, the environments' states and the episode counters are in `getState()`,
 * taken at update boundaries, so a resumed run continues bit for bit.
 *
 * The batch reading (minibatch remainder, micro-batches, gradient accumulation) is in config.ts.
 */
import { ACTIONS, type Action, type Observation, type StepResult } from '../env/types.js';
import { Rng, type RngState } from '../util/rng.js';
import type { TrainConfig } from './config.js';
import { runShape } from './config.js';
import { ppoSampleLoss, type LossCoefficients } from './loss.js';
import { AdamW, annealedLr, clipGradNorm } from './optim.js';
import { NUM_ACTIONS, zeroGrads, type ActorCritic } from './policy.js';
import { streamRng } from './seeds.js';
import { timed, type Profiler } from '../util/profile.js';

/** What PPO needs from an environment (TradingEnv provides it). */
export interface PpoEnv {
  reset(): Observation;
  step(action: Action): StepResult;
  /** The current observation (a pure function of the state). */
  observe(): Observation;
  getState(): unknown;
  setState(state: never): void;
}

/** One line of metrics.jsonl. Fields in a fixed order; null where a value is undefined. */
export interface UpdateMetrics {
  update: number;
  global_step: number;
  learning_rate: number;
  /** Mean over the processed samples of the update (all epochs) of each loss term. */
  loss: number;
  policy_loss: number;
  value_loss: number;
  entropy: number;
  /** CleanRL's approx_kl: mean of (ratio - 1) - log ratio. */
  approx_kl: number;
  /** Mean exact KL(pi || pi_ref) to the frozen reference policy. */
  kl_ref: number;
  /** Fraction of samples with |ratio - 1| > clip_coef. */
  clipfrac: number;
  /** 1 - Var(returns - values) / Var(returns) over the rollout; null when Var(returns) = 0. */
  explained_variance: number | null;
  /** Mean global gradient norm before clipping, over the update's optimizer steps. */
  grad_norm: number;
  epochs: number;
  optimizer_steps: number;
  /** Mean environment reward per rollout step (no bootstrap terms). */
  reward_mean: number;
  /** Episodes completed during this rollout, and their mean return / length (null when none). */
  episodes: number;
  episode_return: number | null;
  episode_length: number | null;
  /** Timing (not reproducible): seconds for this update, rollout steps per second. */
  time_s: number;
  steps_per_sec: number;
}

/** Fields of UpdateMetrics that depend on the machine's speed; strip them to compare runs. */
export const TIMING_FIELDS = ['time_s', 'steps_per_sec'] as const;

/** One update's rollout buffers (time-major: sample k = t * num_envs + e). */
export interface Rollout<In> {
  inputs: In[];
  actions: Int32Array;
  /** Log-prob of the action taken, under the rollout policy. */
  logProbs: Float64Array;
  values: Float64Array;
  /** Scaled rewards, time-limit bootstrap terms included. */
  rewards: Float64Array;
  /** 1 where the episode ended at this step (any reason). */
  ended: Uint8Array;
  refLogProbs: Float64Array[];
  /** [num_envs] V(observation after the last step). */
  nextValues: Float64Array;
  /** Episodes completed in this rollout (unscaled return, length). */
  completed: Array<{ ret: number; len: number }>;
  /** Sum of the unscaled environment rewards. */
  envRewardSum: number;
}

/** Sample means of the loss terms over everything `learn` processed. */
export interface LearnStats {
  loss: number;
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  approxKl: number;
  klRef: number;
  clipfrac: number;
  gradNorm: number;
  epochs: number;
}

/** Everything besides tensors (params, optimizer moments) that a resumed trainer needs. */
export interface PpoTrainerState {
  update: number;
  globalStep: number;
  optimizerStep: number;
  rng: { sampling: { s: RngState; spare: number | null }; shuffle: { s: RngState; spare: number | null } };
  envs: unknown[];
  /** Return and length so far of each environment's current episode. */
  running: Array<{ ret: number; len: number }>;
}

export class PpoTrainer<In> {
  readonly policy: ActorCritic<In>;
  readonly envs: PpoEnv[];
  readonly config: TrainConfig;
  readonly optimizer: AdamW;
  readonly numUpdates: number;
  /** Updates completed so far. */
  update = 0;
  globalStep = 0;
  private readonly sampling: Rng;
  private readonly shuffle: Rng;
  private obs: Observation[];
  /** encode(obs[e]) when already computed (for the bootstrap value), so the next rollout reuses it. */
  private encoded: Array<In | undefined>;
  private running: Array<{ ret: number; len: number }>;
  private readonly coefs: LossCoefficients;
  /** Phase timer (benchmarks): 'rollout' and 'update' (exclusive of the policy's own phases), 'optimizer'. */
  private profiler: Profiler | undefined;

  constructor(policy: ActorCritic<In>, envs: PpoEnv[], config: TrainConfig) {
    if (envs.length !== config.num_envs) throw new Error(`PpoTrainer: got ${envs.length} environments; the config says num_envs = ${config.num_envs}`);
    this.policy = policy;
    this.envs = envs;
    this.config = config;
    this.numUpdates = runShape(config).numUpdates;
    this.optimizer = new AdamW(policy.params(), {
      lr: config.learning_rate, beta1: config.adam_beta1, beta2: config.adam_beta2, eps: config.adam_eps, weightDecay: config.weight_decay,
    });
    this.sampling = streamRng(config.seed, 'action-sampling');
    this.shuffle = streamRng(config.seed, 'minibatch-shuffle');
    this.obs = envs.map((e) => e.reset());
    this.encoded = envs.map(() => undefined);
    this.running = envs.map(() => ({ ret: 0, len: 0 }));
    this.coefs = {
      clipCoef: config.clip_coef, clipVloss: config.clip_vloss, entCoef: config.ent_coef, vfCoef: config.vf_coef, klCoef: config.kl_coef,
    };
  }

  /** Time this trainer's phases, and the policy's where it supports it, with `profiler` (undefined: stop). */
  attachProfiler(profiler: Profiler | undefined): void {
    this.profiler = profiler;
    this.policy.attachProfiler?.(profiler);
  }

  get finished(): boolean {
    return this.update >= this.numUpdates;
  }

  /** Collect one rollout and learn from it; returns the update's diagnostics. */
  runUpdate(): UpdateMetrics {
    if (this.finished) throw new Error(`PpoTrainer: all ${this.numUpdates} updates are done`);
    const c = this.config;
    const t0 = performance.now();
    const update = this.update + 1;
    this.optimizer.lr = c.anneal_lr ? annealedLr(c.learning_rate, update, this.numUpdates) : c.learning_rate;
    const ro = timed(this.profiler, 'rollout', () => this.collectRollout());
    const { advantages, returns } = computeGae(ro.rewards, ro.values, ro.ended, ro.nextValues, c.num_steps, this.envs.length, c.gamma, c.gae_lambda);
    const stats = timed(this.profiler, 'update', () => this.learn(ro, advantages, returns));
    this.update = update;
    const seconds = (performance.now() - t0) / 1000;
    const B = ro.actions.length;
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length : null);
    return {
      update,
      global_step: this.globalStep,
      learning_rate: this.optimizer.lr,
      loss: stats.loss,
      policy_loss: stats.policyLoss,
      value_loss: stats.valueLoss,
      entropy: stats.entropy,
      approx_kl: stats.approxKl,
      kl_ref: stats.klRef,
      clipfrac: stats.clipfrac,
      explained_variance: explainedVariance(ro.values, returns),
      grad_norm: stats.gradNorm,
      epochs: stats.epochs,
      optimizer_steps: this.optimizer.stepCount,
      reward_mean: ro.envRewardSum / B,
      episodes: ro.completed.length,
      episode_return: mean(ro.completed.map((x) => x.ret)),
      episode_length: mean(ro.completed.map((x) => x.len)),
      time_s: seconds,
      steps_per_sec: B / seconds,
    };
  }

  /**
   * num_steps steps in every environment with the current policy. Buffers are time-major (sample
   * k = t * num_envs + e). `rewards` are scaled by reward_scale and include the time-limit bootstrap
   * terms; `nextValues[e]` is V of each environment's observation after the last step.
   */
  collectRollout(): Rollout<In> {
    this.policy.beginRollout?.();
    try {
      return this.rolloutSteps();
    } finally {
      this.policy.endRollout?.();
    }
  }

  private rolloutSteps(): Rollout<In> {
    const c = this.config;
    const T = c.num_steps, E = this.envs.length, B = T * E;
    const ro: Rollout<In> = {
      inputs: new Array<In>(B), actions: new Int32Array(B), logProbs: new Float64Array(B), values: new Float64Array(B),
      rewards: new Float64Array(B), ended: new Uint8Array(B), refLogProbs: new Array<Float64Array>(B),
      nextValues: new Float64Array(E), completed: [], envRewardSum: 0,
    };
    for (let t = 0; t < T; t++) {
      for (let e = 0; e < E; e++) {
        const k = t * E + e;
        const input = this.encoded[e] ?? this.policy.encode(this.obs[e]!);
        this.encoded[e] = undefined;
        const out = this.policy.forward(input, false);
        const a = this.sampling.categorical(out.logProbs.map(Math.exp));
        ro.inputs[k] = input;
        ro.actions[k] = a;
        ro.logProbs[k] = out.logProbs[a]!;
        ro.values[k] = out.value;
        ro.refLogProbs[k] = this.policy.referenceLogProbs(input);
        const res = this.envs[e]!.step(ACTIONS[a]!);
        ro.rewards[k] = c.reward_scale * res.reward;
        ro.envRewardSum += res.reward;
        const run = this.running[e]!;
        run.ret += res.reward;
        run.len += 1;
        if (res.done) {
          ro.ended[k] = 1;
          if (c.bootstrap_truncation && res.info.endReason !== 'ruined') {
            ro.rewards[k]! += c.gamma * this.policy.forward(this.policy.encode(res.observation), false).value;
          }
          ro.completed.push({ ...run });
          this.running[e] = { ret: 0, len: 0 };
          this.obs[e] = this.envs[e]!.reset();
        } else {
          this.obs[e] = res.observation;
        }
      }
    }
    for (let e = 0; e < E; e++) {
      // encode() does not depend on the parameters (the ActorCritic contract): keep it for the next rollout.
      this.encoded[e] = this.policy.encode(this.obs[e]!);
      ro.nextValues[e] = this.policy.forward(this.encoded[e]!, false).value;
    }
    this.globalStep += B;
    return ro;
  }

  /** update_epochs passes of shuffled minibatches; each minibatch's micro-batches are summed into one clipped AdamW step. */
  learn(ro: Rollout<In>, advantages: Float64Array, returns: Float64Array): LearnStats {
    const c = this.config;
    const B = ro.actions.length;
    const params = this.policy.params();
    const { microBatchSize } = runShape(c);
    const sums = { loss: 0, pg: 0, v: 0, ent: 0, akl: 0, klRef: 0, clip: 0, n: 0, gradNorm: 0, steps: 0 };
    let epochs = 0;
    const order = Array.from({ length: B }, (_, i) => i);
    for (let epoch = 0; epoch < c.update_epochs; epoch++) {
      epochs += 1;
      this.shuffle.shuffle(order);
      let epochKl = 0;
      for (let start = 0; start < B; start += c.minibatch_size) {
        const mb = order.slice(start, start + c.minibatch_size);
        const n = mb.length;
        const adv = normalisedAdvantages(mb, advantages, c.norm_adv);
        timed(this.profiler, 'optimizer', () => zeroGrads(params));
        this.policy.beginMinibatch?.();
        for (let m0 = 0; m0 < n; m0 += microBatchSize) {
          for (let j = m0; j < Math.min(n, m0 + microBatchSize); j++) {
            const k = mb[j]!;
            const out = this.policy.forward(ro.inputs[k]!);
            const terms = ppoSampleLoss({
              logProbs: out.logProbs, value: out.value, action: ro.actions[k]!, oldLogProb: ro.logProbs[k]!, oldValue: ro.values[k]!,
              advantage: adv[j]!, ret: returns[k]!, refLogProbs: ro.refLogProbs[k]!,
            }, this.coefs);
            // The minibatch loss is the mean over its n samples.
            for (let a = 0; a < NUM_ACTIONS; a++) terms.dLogProbs[a]! /= n;
            this.policy.backward(out.handle, terms.dLogProbs, terms.dValue / n);
            sums.loss += terms.loss; sums.pg += terms.pgLoss; sums.v += terms.vLoss; sums.ent += terms.entropy;
            sums.akl += terms.approxKl; sums.klRef += terms.klRef; sums.clip += terms.clipped ? 1 : 0; sums.n += 1;
            epochKl += terms.approxKl;
          }
        }
        this.policy.endMinibatch?.();
        timed(this.profiler, 'optimizer', () => {
          sums.gradNorm += clipGradNorm(params, c.max_grad_norm);
          this.optimizer.step();
        });
        sums.steps += 1;
      }
      if (c.target_kl !== null && epochKl / B > c.target_kl) break;
    }
    return {
      loss: sums.loss / sums.n, policyLoss: sums.pg / sums.n, valueLoss: sums.v / sums.n, entropy: sums.ent / sums.n,
      approxKl: sums.akl / sums.n, klRef: sums.klRef / sums.n, clipfrac: sums.clip / sums.n,
      gradNorm: sums.gradNorm / sums.steps, epochs,
    };
  }

  getState(): PpoTrainerState {
    return {
      update: this.update,
      globalStep: this.globalStep,
      optimizerStep: this.optimizer.stepCount,
      rng: { sampling: this.sampling.getState(), shuffle: this.shuffle.getState() },
      envs: this.envs.map((e) => e.getState()),
      running: this.running.map((r) => ({ ...r })),
    };
  }

  /** Restore everything but the tensors (load params and `optimizer.setState` separately). */
  setState(state: PpoTrainerState): void {
    if (state.envs.length !== this.envs.length || state.running.length !== this.envs.length) {
      throw new Error(`PpoTrainer.setState: the state has ${state.envs.length} environments; this run has ${this.envs.length}`);
    }
    if (!Number.isInteger(state.update) || state.update < 0 || state.update > this.numUpdates) {
      throw new Error(`PpoTrainer.setState: update ${state.update} is outside [0, ${this.numUpdates}]`);
    }
    if (state.optimizerStep !== this.optimizer.stepCount) {
      throw new Error(`PpoTrainer.setState: optimizer step ${this.optimizer.stepCount} does not match the state's ${state.optimizerStep} (restore the optimizer first)`);
    }
    this.update = state.update;
    this.globalStep = state.globalStep;
    this.sampling.setState(state.rng.sampling);
    this.shuffle.setState(state.rng.shuffle);
    this.envs.forEach((env, i) => env.setState(state.envs[i] as never));
    this.obs = this.envs.map((env) => env.observe());
    this.encoded = this.envs.map(() => undefined);
    this.running = state.running.map((r) => ({ ...r }));
  }
}

/**
 * GAE(gamma, lambda) per environment, backwards in time (time-major buffers of T * E samples):
 *   delta_t = r_t + gamma * V_{t+1} * (1 - ended_t) - V_t,   V_T = nextValues[e]
 *   A_t     = delta_t + gamma * lambda * (1 - ended_t) * A_{t+1}
 * and returns R_t = A_t + V_t. An ended step does not look past the episode's end (its bootstrap, if
 * any, is already inside r_t).
 */
export function computeGae(
  rewards: Float64Array, values: Float64Array, ended: Uint8Array, nextValues: Float64Array,
  T: number, E: number, gamma: number, lambda: number,
): { advantages: Float64Array; returns: Float64Array } {
  const B = T * E;
  if (rewards.length !== B || values.length !== B || ended.length !== B || nextValues.length !== E) {
    throw new Error(`computeGae: buffers must hold T * E = ${B} samples and E = ${E} next values`);
  }
  const advantages = new Float64Array(B);
  for (let e = 0; e < E; e++) {
    let lastGae = 0;
    for (let t = T - 1; t >= 0; t--) {
      const k = t * E + e;
      const nonTerminal = ended[k] ? 0 : 1;
      const vNext = t === T - 1 ? nextValues[e]! : values[k + E]!;
      const delta = rewards[k]! + gamma * vNext * nonTerminal - values[k]!;
      lastGae = delta + gamma * lambda * nonTerminal * lastGae;
      advantages[k] = lastGae;
    }
  }
  const returns = new Float64Array(B);
  for (let k = 0; k < B; k++) returns[k] = advantages[k]! + values[k]!;
  return { advantages, returns };
}

/** Advantages of a minibatch, normalised to mean 0 / std 1 (ddof 1, + 1e-8 as CleanRL) when asked. */
export function normalisedAdvantages(mb: readonly number[], advantages: Float64Array, normalise: boolean): Float64Array {
  const n = mb.length;
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) out[j] = advantages[mb[j]!]!;
  if (!normalise || n < 2) return out;
  let mean = 0;
  for (let j = 0; j < n; j++) mean += out[j]!;
  mean /= n;
  let ss = 0;
  for (let j = 0; j < n; j++) ss += (out[j]! - mean) ** 2;
  const std = Math.sqrt(ss / (n - 1));
  for (let j = 0; j < n; j++) out[j] = (out[j]! - mean) / (std + 1e-8);
  return out;
}

/** 1 - Var(y - yhat) / Var(y) (population variances); null when Var(y) = 0. */
export function explainedVariance(yhat: Float64Array, y: Float64Array): number | null {
  const n = y.length;
  let my = 0, md = 0;
  for (let i = 0; i < n; i++) { my += y[i]!; md += y[i]! - yhat[i]!; }
  my /= n; md /= n;
  let vy = 0, vd = 0;
  for (let i = 0; i < n; i++) { vy += (y[i]! - my) ** 2; vd += (y[i]! - yhat[i]! - md) ** 2; }
  return vy === 0 ? null : 1 - vd / vy;
}
