/**
 * Optimisation pieces PPO needs: AdamW, global gradient-norm clipping and CleanRL's linear LR
 * annealing. Parameters, gradients and moment buffers are float32; the arithmetic of one update is
 * float64, rounded once when stored.
 */
import type { Param } from './policy.js';

export interface AdamWOptions {
  /** Learning rate (may be changed between steps through `lr`). */
  lr: number;
  beta1: number;
  beta2: number;
  /** Added to sqrt(v_hat); CleanRL's PPO uses 1e-5 rather than Adam's usual 1e-8. */
  eps: number;
  /** Decoupled weight decay (applied to every parameter given, biases included). */
  weightDecay: number;
}

/** Serialisable optimizer state: step count and the two moment buffers per parameter name. */
export interface AdamWState {
  step: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

/**
 * AdamW (Loshchilov & Hutter), in PyTorch's order of operations. For each parameter at step t,
 * with lr_p = lr * p.lrScale (a parameter group's learning rate; lrScale defaults to 1):
 *   p <- p * (1 - lr_p * wd)                      decoupled weight decay
 *   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
 *   p <- p - (lr_p / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 */
export class AdamW {
  lr: number;
  readonly options: Readonly<AdamWOptions>;
  private t = 0;
  private readonly params: Param[];
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];

  constructor(params: Param[], options: AdamWOptions) {
    const { lr, beta1, beta2, eps, weightDecay } = options;
    if (!(lr >= 0)) throw new Error(`AdamW: lr must be >= 0, got ${lr}`);
    if (!(beta1 >= 0 && beta1 < 1)) throw new Error(`AdamW: beta1 must be in [0, 1), got ${beta1}`);
    if (!(beta2 >= 0 && beta2 < 1)) throw new Error(`AdamW: beta2 must be in [0, 1), got ${beta2}`);
    if (!(eps > 0)) throw new Error(`AdamW: eps must be > 0, got ${eps}`);
    if (!(weightDecay >= 0)) throw new Error(`AdamW: weightDecay must be >= 0, got ${weightDecay}`);
    const names = new Set<string>();
    for (const p of params) {
      if (names.has(p.name)) throw new Error(`AdamW: duplicate parameter name ${p.name}`);
      names.add(p.name);
      if (p.lrScale !== undefined && !(p.lrScale >= 0 && Number.isFinite(p.lrScale))) throw new Error(`AdamW: ${p.name}.lrScale must be a finite number >= 0, got ${p.lrScale}`);
    }
    this.lr = lr;
    this.options = { ...options };
    this.params = params;
    this.m = params.map((p) => new Float32Array(p.data.length));
    this.v = params.map((p) => new Float32Array(p.data.length));
  }

  /** Number of steps taken. */
  get stepCount(): number {
    return this.t;
  }

  /** One update of every parameter from its `grad` (grads are not cleared). */
  step(): void {
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this.options;
    const lr = this.lr;
    this.t += 1;
    const bc1 = 1 - b1 ** this.t;
    const sqrtBc2 = Math.sqrt(1 - b2 ** this.t);
    for (let k = 0; k < this.params.length; k++) {
      const { data, grad, lrScale } = this.params[k]!;
      const lrP = lrScale === undefined ? lr : lr * lrScale;
      const stepSize = lrP / bc1;
      const decay = 1 - lrP * wd;
      const m = this.m[k]!, v = this.v[k]!;
      for (let i = 0; i < data.length; i++) {
        const g = grad[i]!;
        const mi = b1 * m[i]! + (1 - b1) * g;
        const vi = b2 * v[i]! + (1 - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        // Use the stored (float32) moments, as a float32 implementation would.
        data[i] = data[i]! * decay - stepSize * m[i]! / (Math.sqrt(v[i]!) / sqrtBc2 + eps);
      }
    }
  }

  getState(): AdamWState {
    const m: Record<string, Float32Array> = {}, v: Record<string, Float32Array> = {};
    this.params.forEach((p, k) => { m[p.name] = this.m[k]!.slice(); v[p.name] = this.v[k]!.slice(); });
    return { step: this.t, m, v };
  }

  /** Restore a state from `getState`; every parameter's buffers must be present with the right size. */
  setState(state: AdamWState): void {
    if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`AdamW.setState: step must be a non-negative integer, got ${state.step}`);
    this.params.forEach((p, k) => {
      const m = state.m[p.name], v = state.v[p.name];
      if (!m || !v) throw new Error(`AdamW.setState: no moment buffers for parameter ${p.name}`);
      if (m.length !== p.data.length || v.length !== p.data.length) {
        throw new Error(`AdamW.setState: moment buffers for ${p.name} have ${m.length}/${v.length} values; expected ${p.data.length}`);
      }
      this.m[k]!.set(m);
      this.v[k]!.set(v);
    });
    const known = new Set(this.params.map((p) => p.name));
    const extra = Object.keys(state.m).filter((n) => !known.has(n));
    if (extra.length) throw new Error(`AdamW.setState: state has buffers for unknown parameters: ${extra.join(', ')}`);
    this.t = state.step;
  }
}

/**
 * Global gradient-norm clipping (as torch.nn.utils.clip_grad_norm_): total = sqrt(sum of g^2 over
 * all parameters); when total > maxNorm every gradient is scaled by maxNorm / (total + 1e-6).
 * Returns the norm before clipping.
 */
export function clipGradNorm(params: readonly Param[], maxNorm: number): number {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  let sq = 0;
  for (const p of params) for (let i = 0; i < p.grad.length; i++) sq += p.grad[i]! * p.grad[i]!;
  const total = Math.sqrt(sq);
  if (!Number.isFinite(total)) throw new Error(`clipGradNorm: gradient norm is ${total}; a loss or gradient is not finite`);
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) for (const p of params) for (let i = 0; i < p.grad.length; i++) p.grad[i] = p.grad[i]! * coef;
  return total;
}

/**
 * CleanRL's linear annealing: for update = 1..numUpdates, lr = (1 - (update - 1) / numUpdates) * lr0,
 * so the first update uses lr0 and the last lr0 / numUpdates (never 0).
 */
export function annealedLr(lr0: number, update: number, numUpdates: number): number {
  if (!Number.isInteger(update) || update < 1 || update > numUpdates) {
    throw new Error(`annealedLr: update must be an integer in [1, ${numUpdates}], got ${update}`);
  }
  return (1 - (update - 1) / numUpdates) * lr0;
}
