import { Rng } from '../util/rng.js';
import { sharpeRatio, type Annualization } from '../eval/metrics.js';

/**
 * Confidence interval of the Sharpe-ratio difference between an agent and Buy & Hold on the same days.
 *
 * Daily returns are serially dependent (regimes, volatility clusters), so days are resampled in blocks:
 * a circular block bootstrap with block length `block` draws random block starts and wraps at the end.
 * The same resampled day indices are applied to the agent and to Buy & Hold (a paired bootstrap), and
 * for an agent with several seeds the difference is averaged over seeds on each resample.
 */
export interface SharpeDiffCI {
  /** Mean over seeds of SR(agent) - SR(Buy & Hold) on the actual days. */
  observed: number;
  lower: number;
  upper: number;
  /** Confidence level, e.g. 0.95. */
  level: number;
  /** Fraction of resamples with a difference <= 0 (a one-sided bootstrap p-value for "agent beats B&H"). */
  fractionNotBetter: number;
  resamples: number;
  block: number;
}

export interface BootstrapOptions {
  resamples?: number;
  block?: number;
  level?: number;
  seed?: number;
}

export function sharpeDifferenceCI(
  agentRuns: number[][],
  buyAndHold: number[],
  ann: Annualization,
  opts: BootstrapOptions = {},
): SharpeDiffCI {
  const resamples = opts.resamples ?? 2000, block = opts.block ?? 5, level = opts.level ?? 0.95;
  const n = buyAndHold.length;
  if (agentRuns.length === 0) throw new Error('sharpeDifferenceCI: no agent runs');
  for (const [i, r] of agentRuns.entries()) {
    if (r.length !== n) throw new Error(`sharpeDifferenceCI: run ${i} has ${r.length} returns, Buy & Hold has ${n}`);
  }
  if (n < 2) throw new Error(`sharpeDifferenceCI: need at least 2 daily returns, got ${n}`);
  if (!Number.isInteger(block) || block < 1) throw new Error(`sharpeDifferenceCI: block must be a positive integer, got ${block}`);

  const meanDiff = (idx: Int32Array | null): number => {
    const pick = (r: number[]) => (idx ? Array.from(idx, (j) => r[j]!) : r);
    const bh = sharpeRatio(pick(buyAndHold), ann);
    let s = 0;
    for (const r of agentRuns) s += sharpeRatio(pick(r), ann) - bh;
    return s / agentRuns.length;
  };

  const rng = new Rng(opts.seed ?? 0);
  const diffs = new Float64Array(resamples);
  const idx = new Int32Array(n);
  for (let b = 0; b < resamples; b++) {
    drawBlockIndices(rng, idx, block);
    diffs[b] = meanDiff(idx);
  }
  return { observed: meanDiff(null), ...percentileInterval(diffs, level), resamples, block };
}

/** One circular-block resample of indices 0..n-1 (n = idx.length) into idx: random block starts, wrapping at the end. */
function drawBlockIndices(rng: Rng, idx: Int32Array, block: number): void {
  const n = idx.length;
  for (let filled = 0; filled < n; ) {
    const start = rng.int(n);
    for (let k = 0; k < block && filled < n; k++) idx[filled++] = (start + k) % n;
  }
}

/** Percentile bounds of bootstrap statistics, and the fraction of them <= 0. */
function percentileInterval(stats: Float64Array, level: number): { lower: number; upper: number; level: number; fractionNotBetter: number } {
  const sorted = Array.from(stats).sort((a, b) => a - b);
  const alpha = (1 - level) / 2;
  let notBetter = 0;
  for (const d of sorted) if (d <= 0) notBetter++;
  return { lower: quantile(sorted, alpha), upper: quantile(sorted, 1 - alpha), level, fractionNotBetter: notBetter / sorted.length };
}

/** A bootstrap interval of the mean of a few values (e.g. one Sharpe difference per walk-forward window). */
export interface MeanCI extends SharpeDiffCI {
  /** The mean of the values. */
  observed: number;
  /** Fraction of resampled means <= 0. */
  fractionNotBetter: number;
  /** How many values were resampled. */
  n: number;
}

/**
 * Percentile bootstrap of the mean of `values`: each resample draws n values with the same circular
 * block scheme as sharpeDifferenceCI (block 1, the default here: values drawn independently with
 * replacement; a longer block keeps runs of neighbouring values together, e.g. overlapping windows).
 * Seeded: the same values and options give the same interval.
 */
export function meanBootstrapCI(values: number[], opts: BootstrapOptions = {}): MeanCI {
  const resamples = opts.resamples ?? 2000, block = opts.block ?? 1, level = opts.level ?? 0.95;
  const n = values.length;
  if (n < 2) throw new Error(`meanBootstrapCI: need at least 2 values, got ${n}`);
  if (!Number.isInteger(block) || block < 1) throw new Error(`meanBootstrapCI: block must be a positive integer, got ${block}`);
  for (const [i, v] of values.entries()) if (!Number.isFinite(v)) throw new Error(`meanBootstrapCI: value ${i} is not finite (${v})`);
  const rng = new Rng(opts.seed ?? 0);
  const means = new Float64Array(resamples);
  const idx = new Int32Array(n);
  for (let b = 0; b < resamples; b++) {
    drawBlockIndices(rng, idx, block);
    let s = 0;
    for (let i = 0; i < n; i++) s += values[idx[i]!]!;
    means[b] = s / n;
  }
  return { observed: values.reduce((a, b) => a + b, 0) / n, ...percentileInterval(means, level), resamples, block, n };
}

/** Linear-interpolation quantile of an ascending array (numpy's default "linear" rule). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
