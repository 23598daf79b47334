/**
 * The interface PPO trains: an actor-critic over the three trading actions.
 *
 * Any policy (the MLP ablation, the LLM with frozen bottom layers) plugs into PPO by implementing
 * `ActorCritic`. The contract, in the order PPO uses it:
 *
 *   1. `encode(obs)` once per environment step: the observation-dependent work that does NOT depend
 *      on trainable parameters (the MLP: the feature vector; the LLM: prompt tokens and the frozen
 *      layers' output at the trainable boundary). PPO keeps the result in its rollout buffer and
 *      reuses it for every forward pass on that sample (rollout, all update epochs), so this work is
 *      done once per sample, not once per epoch.
 *   2. `referenceLogProbs(input)` once per step: log-probs of the frozen initial policy, for the KL
 *      penalty. The reference never changes, so PPO computes it at rollout time and stores it.
 *   3. `forward(input, needsGrad)` -> `{ logProbs[3], value, handle }`; `handle` holds what `backward`
 *      needs. PPO passes needsGrad = false where no backward follows (rollout, bootstrap values), so
 *      a policy may skip keeping activations there (the handle may then be null).
 *   4. `backward(handle, dLogProbs[3], dValue)` ACCUMULATES dLoss/dParam into every `Param.grad`
 *      (PPO zeroes grads before each optimizer step). `dLogProbs` is the gradient with respect to the
 *      three log-probs taken as free variables; the policy applies its log-softmax Jacobian itself.
 *      A handle is used at most once, right after its forward; PPO never interleaves other forwards
 *      of the same policy between a forward and its backward, so a policy may reuse scratch buffers.
 *   5. `params()` lists the trainable tensors (stable names and order) that the optimizer updates in
 *      place and that checkpoints save by name.
 *   6. Optional `beginRollout()` / `endRollout()`: PPO brackets each rollout with them and changes no
 *      parameter in between, so a policy may cache work that depends on the parameters there (the
 *      LLM: the trainable layers' keys and values of the prompt prefix shared by the rollout's steps).
 *      Nor does PPO change a parameter between endRollout and the end of the first minibatch that
 *      follows it (beginMinibatch .. endMinibatch, item 7), which hands that minibatch the rollout's
 *      inputs: a policy may keep a rollout forward's activations for that minibatch's backward (the
 *      LLM: src/rl/rollout-activations.ts). Otherwise the parameters may change at any time.
 *   7. Optional `beginMinibatch()` / `endMinibatch()`: PPO brackets each optimizer step's samples
 *      (all micro-batches of a minibatch) with them, after zeroing the gradients and before clipping
 *      them, and changes no parameter in between. Inside, a policy may defer part of the gradient of
 *      its backwards (the LLM: the shared system turn's, taken once for all samples) as long as every
 *      Param.grad is complete when endMinibatch returns.
 *   8. Optional `attachProfiler(p)`: time the policy's phases with a Profiler (benchmarks).
 *   9. Optional `stateTensors()`: tensors that are saved and loaded with the parameters (checkpoints,
 *      policy files) but never optimized, e.g. running normalisation statistics. A policy may change
 *      them only inside a rollout bracket or in `endRollout`.
 *  10. Optional `exportFiles()`: files (a path relative to the run directory, the content) that a
 *      finished run writes beside its policy file, e.g. the LLM's LoRA adapter in PEFT's layout.
 *
 * Everything is synchronous: PPO runs one sample at a time on the CPU.
 */
import type { Observation } from '../env/types.js';
import { ACTIONS } from '../env/types.js';
import type { Param } from '../model/param.js';
import type { Profiler } from '../util/profile.js';

/** A trainable tensor (src/model/param.ts): what `params()` lists. */
export type { Param };

/** A saved, untrained tensor (see `stateTensors`). */
export type StateTensor = Pick<Param, 'name' | 'shape' | 'data'>;

export interface PolicyStep {
  /** [3] log-softmax over ACTIONS (buy, sell, hold). */
  logProbs: Float64Array;
  /** State-value estimate V(s). */
  value: number;
  /** Opaque; pass to `backward` (at most once). */
  handle: unknown;
}

export interface ActorCritic<In = unknown> {
  /** Short name of the policy type, e.g. `mlp` or `llm`. */
  readonly kind: string;
  /**
   * What the policy is built from, for run records (e.g. the MLP's architecture, or the base
   * model's weight fingerprint and trainable-layer split). Not a hash of the trained weights.
   */
  readonly fingerprint: string;
  /** Parameter-independent per-observation work, cached by PPO for the sample's lifetime. */
  encode(obs: Observation): In;
  /** needsGrad defaults to true; with false, `backward` is never called on the result. */
  forward(input: In, needsGrad?: boolean): PolicyStep;
  /** Accumulates into Param.grad; see the contract above. */
  backward(handle: unknown, dLogProbs: Float64Array, dValue: number): void;
  params(): Param[];
  /** Log-probs [3] of the frozen initial (reference) policy, for the KL penalty. */
  referenceLogProbs(input: In): Float64Array;
  /** The parameters stay unchanged until endRollout (see the contract above). */
  beginRollout?(): void;
  endRollout?(): void;
  /** The parameters stay unchanged until endMinibatch, which completes every Param.grad. */
  beginMinibatch?(): void;
  endMinibatch?(): void;
  /** Time the policy's phases with `profiler` (undefined: stop timing). */
  attachProfiler?(profiler: Profiler | undefined): void;
  /** Saved with the parameters, never optimized (see the contract above). */
  stateTensors?(): StateTensor[];
  /** Files a finished run writes beside its policy file (see the contract above). */
  exportFiles?(): Array<[string, string | Buffer]>;
}

/** Every tensor a policy file or checkpoint holds for the policy: its parameters, then its state. */
export function savedTensors(policy: Pick<ActorCritic, 'params' | 'stateTensors'>): StateTensor[] {
  return [...policy.params(), ...(policy.stateTensors?.() ?? [])];
}

/** Number of actions every policy head produces (ACTIONS order). */
export const NUM_ACTIONS = ACTIONS.length;

/** Set every gradient buffer to zero. */
export function zeroGrads(params: readonly Param[]): void {
  for (const p of params) p.grad.fill(0);
}

/** Total number of scalars in the parameter list. */
export function countParams(params: readonly Param[]): number {
  let n = 0;
  for (const p of params) n += p.data.length;
  return n;
}
