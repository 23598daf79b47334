/**
 * The PPO loss of one sample and its gradient with respect to the policy's outputs, written by hand.
 *
 * Inputs of sample i: the current log-probs l[3] and value V from a forward pass; from the rollout
 * the action a, its old log-prob l_old, the old value V_old, the (normalised) advantage A, the return
 * R, and the reference policy's log-probs r[3]. With p = exp(l) (l taken as free variables):
 *
 *   ratio   = exp(l[a] - l_old)
 *   pg      = max(-A * ratio, -A * clip(ratio, 1 - c, 1 + c))            clipped surrogate
 *   v       = 0.5 * max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2) (clip_vloss; else 0.5 (V - R)^2)
 *   H       = -sum_b p[b] l[b]                                             entropy
 *   KL_ref  = sum_b p[b] (l[b] - r[b])                                     exact KL(pi || pi_ref) over 3 actions
 *   loss_i  = pg - ent_coef * H + vf_coef * v + kl_coef * KL_ref
 *
 * Gradients (the minibatch loss is the mean of loss_i, so the caller scales them by 1/n):
 *   d pg / d l[a]     = -A * ratio when the unclipped term is the larger one (or ratio is inside the
 *                       clip range, where both terms agree), else 0 (the clipped term is constant)
 *   d v / d V         = (V - R) when the unclipped square is the larger one, else (V_clip - R) when
 *                       |V - V_old| <= c, else 0
 *   d H / d l[b]      = -p[b] (l[b] + 1)
 *   d KL_ref / d l[b] = p[b] (l[b] - r[b] + 1)
 * The "+1" terms are along the all-ones direction; a log-softmax backward removes them (they only
 * say that exp(l) must sum to 1), but they are kept so the gradient is exact for free l.
 *
 * Diagnostics per sample, as in CleanRL: approx_kl = (ratio - 1) - log(ratio) (an unbiased,
 * non-negative estimator of KL(pi_old || pi)), clipped = |ratio - 1| > c.
 */
import { NUM_ACTIONS } from './policy.js';

export interface LossCoefficients {
  clipCoef: number;
  clipVloss: boolean;
  entCoef: number;
  vfCoef: number;
  klCoef: number;
}

export interface LossSample {
  /** [3] current log-probs. */
  logProbs: Float64Array;
  /** Current value estimate. */
  value: number;
  /** Index of the action taken (ACTIONS order). */
  action: number;
  oldLogProb: number;
  oldValue: number;
  /** Advantage, already normalised if norm_adv. */
  advantage: number;
  /** GAE return (advantage + old value, before normalisation). */
  ret: number;
  /** [3] reference policy log-probs. */
  refLogProbs: Float64Array;
}

export interface LossTerms {
  /** loss_i (see above). */
  loss: number;
  pgLoss: number;
  vLoss: number;
  entropy: number;
  klRef: number;
  approxKl: number;
  clipped: boolean;
  /** d loss_i / d l [3]. */
  dLogProbs: Float64Array;
  /** d loss_i / d V. */
  dValue: number;
}

export function ppoSampleLoss(s: LossSample, c: LossCoefficients): LossTerms {
  const l = s.logProbs, r = s.refLogProbs;
  const dLogProbs = new Float64Array(NUM_ACTIONS);

  // Clipped surrogate.
  const logRatio = l[s.action]! - s.oldLogProb;
  const ratio = Math.exp(logRatio);
  const A = s.advantage;
  const clippedRatio = Math.min(Math.max(ratio, 1 - c.clipCoef), 1 + c.clipCoef);
  const pg1 = -A * ratio, pg2 = -A * clippedRatio;
  const pgLoss = Math.max(pg1, pg2);
  if (pg1 >= pg2) dLogProbs[s.action]! += -A * ratio;

  // Value loss.
  let vLoss: number, dValue: number;
  const vErr = s.value - s.ret;
  if (c.clipVloss) {
    const delta = s.value - s.oldValue;
    const vClipped = s.oldValue + Math.min(Math.max(delta, -c.clipCoef), c.clipCoef);
    const cErr = vClipped - s.ret;
    if (vErr * vErr >= cErr * cErr) { vLoss = 0.5 * vErr * vErr; dValue = vErr; }
    else { vLoss = 0.5 * cErr * cErr; dValue = Math.abs(delta) <= c.clipCoef ? cErr : 0; }
  } else {
    vLoss = 0.5 * vErr * vErr;
    dValue = vErr;
  }

  // Entropy and exact KL to the reference.
  let entropy = 0, klRef = 0;
  for (let b = 0; b < NUM_ACTIONS; b++) {
    const p = Math.exp(l[b]!);
    entropy -= p * l[b]!;
    klRef += p * (l[b]! - r[b]!);
    dLogProbs[b]! += c.entCoef * p * (l[b]! + 1) + c.klCoef * p * (l[b]! - r[b]! + 1);
  }

  const loss = pgLoss - c.entCoef * entropy + c.vfCoef * vLoss + c.klCoef * klRef;
  return {
    loss, pgLoss, vLoss, entropy, klRef,
    approxKl: ratio - 1 - logRatio,
    clipped: Math.abs(ratio - 1) > c.clipCoef,
    dLogProbs,
    dValue: c.vfCoef * dValue,
  };
}
