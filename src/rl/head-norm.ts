/**
 * Running standardisation of what the linear heads read (PPO's observation normalisation, applied to
 * the LLM's pooled hidden state).
 *
 * Why: the pooled final hidden states of different days differ by a few hundredths per channel
 * around a common offset ten times larger (flag-news-small on the synthetic market: median channel
 * std 0.06, median |mean| 0.33). A linear head on that input moves its bias long before its weights
 * matter, so PPO settles on Buy & Hold; standardised, the same features are read (measured in
 * docs/learning.md).
 *
 * Timing, so that a rollout and the update on it read the same statistics (the update's first
 * ratios are exactly those of unchanged weights): the vectors seen during rollout k are folded in
 * when rollout k + 1 begins. The first rollout and its update read the raw state (count 0: the
 * identity); later ones the statistics of every earlier rollout.
 *
 * Two scalings (`HeadNormScale`): `channel` divides each channel by its own running std; `global`
 * centres each channel the same way but divides all of them by one scale, the root mean of the
 * channel variances. `global` keeps the pretrained model's geometry (a direction along which the
 * days differ most stays the largest), where `channel` gives every channel, mostly ones that carry
 * little, the same weight. On the LLM policy `global` (the default) earned more and more reliably
 * over 3 seeds than `channel`; on a frozen model with a trained head the two were even over four
 * synthetic markets (docs/learning.md, round 3).
 *
 * Everything is state saved with the policy (checkpoints and policy files), not parameters: the
 * optimizer never touches it. The vectors waiting for the next fold are saved too (a checkpoint is
 * taken between a rollout and the next), as float32 sums of their differences from the current mean
 * (the shift keeps the variance free of cancellation). All of it is kept in float32, the file's
 * dtype, so that a resumed run continues bit-identically; the merge itself runs in float64 (Chan et
 * al.'s parallel variance update).
 */
import type { StateTensor } from './policy.js';

/** Added to the variance before the square root (the channel of a constant input maps to 0). */
export const HEAD_NORM_EPS = 1e-5;
/** float32 holds integers exactly up to 2^24: the count of folded vectors may not exceed it. */
const MAX_COUNT = 2 ** 24;

/** How the centred channels are scaled: each by its own std, or all by one shared scale. */
export type HeadNormScale = 'channel' | 'global';

export class HeadNorm {
  readonly mean: StateTensor;
  readonly var: StateTensor;
  readonly count: StateTensor;
  /** The vectors waiting for the next fold: sums of (x - mean) and (x - mean)^2, and their number. */
  readonly pendingSum: StateTensor;
  readonly pendingSq: StateTensor;
  readonly pendingCount: StateTensor;

  constructor(readonly C: number, readonly scale: HeadNormScale = 'channel', prefix = 'head_norm') {
    this.mean = { name: `${prefix}.mean`, shape: [C], data: new Float32Array(C) };
    this.var = { name: `${prefix}.var`, shape: [C], data: new Float32Array(C).fill(1) };
    this.count = { name: `${prefix}.count`, shape: [1], data: new Float32Array(1) };
    this.pendingSum = { name: `${prefix}.pending_sum`, shape: [C], data: new Float32Array(C) };
    this.pendingSq = { name: `${prefix}.pending_sq`, shape: [C], data: new Float32Array(C) };
    this.pendingCount = { name: `${prefix}.pending_count`, shape: [1], data: new Float32Array(1) };
  }

  /** The tensors saved with the policy. */
  tensors(): StateTensor[] {
    return [this.mean, this.var, this.count, this.pendingSum, this.pendingSq, this.pendingCount];
  }

  /** Remember a rollout vector x [C]; it counts from the next fold. */
  observe(x: Float32Array): void {
    const sum = this.pendingSum.data, sq = this.pendingSq.data, mean = this.mean.data;
    for (let c = 0; c < this.C; c++) {
      const d = x[c]! - mean[c]!;
      sum[c] += d;
      sq[c] += d * d;
    }
    this.pendingCount.data[0]! += 1;
  }

  /** Fold the remembered vectors into the statistics (a no-op when there are none). */
  fold(): void {
    const nb = this.pendingCount.data[0]!;
    if (nb === 0) return;
    const na = this.count.data[0]!;
    const n = na + nb;
    if (n > MAX_COUNT) throw new Error(`head normalisation: more than ${MAX_COUNT} rollout vectors cannot be counted exactly in float32; train with head_norm none`);
    for (let c = 0; c < this.C; c++) {
      const db = this.pendingSum.data[c]! / nb; // the batch's mean minus the current mean
      const vb = Math.max(0, this.pendingSq.data[c]! / nb - db * db);
      const ma = this.mean.data[c]!, va = na > 0 ? this.var.data[c]! : 0;
      const d = db;
      this.mean.data[c] = ma + d * nb / n;
      this.var.data[c] = (na * va + nb * vb + d * d * na * nb / n) / n;
    }
    this.count.data[0] = n;
    this.pendingSum.data.fill(0);
    this.pendingSq.data.fill(0);
    this.pendingCount.data[0] = 0;
  }

  /**
   * The factor each channel is multiplied by [C]: 1 / sqrt(var_c + eps) (`channel`), or one
   * 1 / sqrt(mean_c var_c + eps) for all (`global`). Computed on use: loaded tensors need no refresh.
   */
  private invStd(): Float64Array {
    const f = new Float64Array(this.C), v = this.var.data;
    if (this.scale === 'channel') {
      for (let c = 0; c < this.C; c++) f[c] = 1 / Math.sqrt(v[c]! + HEAD_NORM_EPS);
    } else {
      let s = 0;
      for (let c = 0; c < this.C; c++) s += v[c]!;
      f.fill(1 / Math.sqrt(s / this.C + HEAD_NORM_EPS));
    }
    return f;
  }

  /** y [C] = (x - mean) * invStd; the identity while the count is 0. */
  forward(x: Float32Array): Float32Array {
    const y = new Float32Array(this.C);
    if (this.count.data[0] === 0) { y.set(x); return y; }
    const f = this.invStd();
    for (let c = 0; c < this.C; c++) y[c] = (x[c]! - this.mean.data[c]!) * f[c]!;
    return y;
  }

  /** dx [C] += dy [C] * invStd: the statistics are constants of the forward. */
  backward(dy: Float32Array, dx: Float32Array): void {
    if (this.count.data[0] === 0) { for (let c = 0; c < this.C; c++) dx[c] += dy[c]!; return; }
    const f = this.invStd();
    for (let c = 0; c < this.C; c++) dx[c] += dy[c]! * f[c]!;
  }
}
