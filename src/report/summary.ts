import { computeMetrics, type Metrics } from '../eval/metrics.js';
import { sharpeDifferenceCI, type SharpeDiffCI } from './bootstrap.js';
import type { AssetResult, ReportInput } from './types.js';

/** Mean and sample standard deviation over seeds (std 0 for a single run). */
export interface Stat { mean: number; std: number; n: number }

export interface AgentSummary {
  name: string;
  kind: string;
  /** CR, AV, MDD in percent; SR as is. */
  cumulativeReturn: Stat;
  sharpeRatio: Stat;
  annualizedVolatility: Stat;
  maxDrawdown: Stat;
  perRun: Array<{ seed: number | null; metrics: Metrics }>;
  /** Sharpe difference against Buy & Hold, for non-Buy & Hold agents when a Buy & Hold row exists. */
  vsBuyAndHold: SharpeDiffCI | null;
}

export interface AssetSummary {
  asset: string;
  start: string;
  end: string;
  prices: number;
  agents: AgentSummary[];
}

export const BUY_AND_HOLD = 'buy-and-hold';

export function stat(xs: number[]): Stat {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n < 2 ? 0 : Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { mean, std, n };
}

export function summarizeAsset(a: AssetResult, input: Pick<ReportInput, 'bootstrapSeed' | 'bootstrapResamples'>): AssetSummary {
  const N = a.dates.length;
  const bh = a.agents.find((g) => g.name === BUY_AND_HOLD);
  const agents = a.agents.map((g): AgentSummary => {
    if (g.runs.length === 0) throw new Error(`report: agent ${g.name} on ${a.asset} has no runs`);
    const perRun = g.runs.map((run, i) => {
      if (run.returns.length !== N - 1 || run.positions.length !== N - 1) {
        throw new Error(`report: ${a.asset} ${g.name} run ${i} has ${run.returns.length} returns / ${run.positions.length} positions, expected ${N - 1} (N = ${N} prices)`);
      }
      return { seed: run.seed, metrics: computeMetrics(run.returns, run.positions, a.annualization) };
    });
    const pick = (f: (m: Metrics) => number) => stat(perRun.map((r) => f(r.metrics)));
    return {
      name: g.name,
      kind: g.kind,
      cumulativeReturn: pick((m) => m.cumulativeReturn * 100),
      sharpeRatio: pick((m) => m.sharpeRatio),
      annualizedVolatility: pick((m) => m.annualizedVolatility * 100),
      maxDrawdown: pick((m) => m.maxDrawdown * 100),
      perRun,
      vsBuyAndHold: bh && g !== bh
        ? sharpeDifferenceCI(g.runs.map((r) => r.returns), bh.runs[0]!.returns, a.annualization, {
          seed: input.bootstrapSeed ?? 0, resamples: input.bootstrapResamples ?? 2000,
        })
        : null,
    };
  });
  return { asset: a.asset, start: a.dates[0]!, end: a.dates[N - 1]!, prices: N, agents };
}

/** Equity curve exp(cumsum r) starting at 1 on the first date (length N). */
export function equityCurve(returns: number[]): number[] {
  const out = [1];
  let s = 0;
  for (const r of returns) { s += r; out.push(Math.exp(s)); }
  return out;
}

/** Drawdown (in percent, <= 0) of prod(1 + r) from its running peak, as the MDD metric measures it (length N). */
export function drawdownCurve(returns: number[]): number[] {
  const out = [0];
  let e = 1, peak = 1;
  for (const r of returns) { e *= 1 + r; peak = Math.max(peak, e); out.push(-100 * (peak - e) / peak); }
  return out;
}

/** Pointwise mean of equal-length arrays. */
export function meanCurve(curves: number[][]): number[] {
  const n = curves[0]!.length;
  const out = new Array<number>(n).fill(0);
  for (const c of curves) for (let i = 0; i < n; i++) out[i]! += c[i]! / curves.length;
  return out;
}
