/**
 * The walk-forward section of a report: per window, each agent's metrics (mean over its seeds) on that
 * window's test days; over windows, the mean and sample std of each metric, the share of windows in
 * which an agent's Sharpe ratio is above Buy & Hold's, and a seeded bootstrap interval of the mean over
 * windows of SR - SR(Buy & Hold) (src/report/bootstrap.ts, windows resampled with replacement).
 *
 * As everywhere in the report, metrics are recomputed from the daily returns it is given.
 */
import { computeMetrics, type Metrics } from '../eval/metrics.js';
import { meanBootstrapCI, type MeanCI } from './bootstrap.js';
import { BUY_AND_HOLD, stat, type Stat } from './summary.js';
import type { ReportInput, WalkForwardResult } from './types.js';

/** One agent's metrics on one window: mean over its runs (CR, AV, MDD in percent; SR as is). */
export interface WindowAgentMetrics {
  name: string;
  runs: number;
  cumulativeReturn: number;
  sharpeRatio: number;
  annualizedVolatility: number;
  maxDrawdown: number;
}

export interface WalkForwardWindowSummary {
  index: number;
  train: { start: string; end: string };
  test: { start: string; end: string };
  /** Prices in the test window. */
  prices: number;
  agents: WindowAgentMetrics[];
}

export interface WalkForwardAgentSummary {
  name: string;
  kind: string;
  windows: number;
  /** Over windows, of each window's mean over seeds. */
  cumulativeReturn: Stat;
  sharpeRatio: Stat;
  annualizedVolatility: Stat;
  maxDrawdown: Stat;
  /** SR - SR(Buy & Hold) per window, over windows; null for Buy & Hold itself or without a Buy & Hold row. */
  srMinusBuyAndHold: Stat | null;
  /** Windows whose SR is strictly above Buy & Hold's (null as above). */
  beatsBuyAndHold: { windows: number; of: number; share: number } | null;
  /** Bootstrap interval of the mean SR - SR(Buy & Hold) over windows; null as above or with a single window. */
  vsBuyAndHold: MeanCI | null;
}

export interface WalkForwardSummary {
  asset: string;
  scheme: WalkForwardResult['scheme'];
  /** First training date .. last test date. */
  start: string;
  end: string;
  windows: WalkForwardWindowSummary[];
  agents: WalkForwardAgentSummary[];
}

const PERCENT = (m: Metrics) => ({
  cumulativeReturn: m.cumulativeReturn * 100, sharpeRatio: m.sharpeRatio,
  annualizedVolatility: m.annualizedVolatility * 100, maxDrawdown: m.maxDrawdown * 100,
});

export function summarizeWalkForward(wf: WalkForwardResult, input: Pick<ReportInput, 'bootstrapSeed' | 'bootstrapResamples'>): WalkForwardSummary {
  if (wf.windows.length === 0) throw new Error(`report: the walk-forward of ${wf.asset} has no windows`);
  const names = wf.windows[0]!.agents.map((g) => g.name);
  const windows = wf.windows.map((w): WalkForwardWindowSummary => {
    const got = w.agents.map((g) => g.name);
    if (JSON.stringify(got) !== JSON.stringify(names)) {
      throw new Error(`report: walk-forward window ${w.index + 1} of ${wf.asset} has agents ${got.join(', ')}; window 1 has ${names.join(', ')}`);
    }
    const N = w.dates.length;
    return {
      index: w.index, train: w.train, test: w.test, prices: N,
      agents: w.agents.map((g) => {
        if (g.runs.length === 0) throw new Error(`report: ${wf.asset} window ${w.index + 1}: agent ${g.name} has no runs`);
        const per = g.runs.map((run, i) => {
          if (run.returns.length !== N - 1 || run.positions.length !== N - 1) {
            throw new Error(`report: ${wf.asset} window ${w.index + 1} ${g.name} run ${i} has ${run.returns.length} returns / ${run.positions.length} positions, expected ${N - 1} (N = ${N} prices)`);
          }
          return PERCENT(computeMetrics(run.returns, run.positions, wf.annualization));
        });
        const mean = (f: (m: ReturnType<typeof PERCENT>) => number) => per.reduce((a, m) => a + f(m), 0) / per.length;
        return {
          name: g.name, runs: per.length,
          cumulativeReturn: mean((m) => m.cumulativeReturn), sharpeRatio: mean((m) => m.sharpeRatio),
          annualizedVolatility: mean((m) => m.annualizedVolatility), maxDrawdown: mean((m) => m.maxDrawdown),
        };
      }),
    };
  });
  const bh = names.indexOf(BUY_AND_HOLD);
  const agents = names.map((name, j): WalkForwardAgentSummary => {
    const over = (f: (m: WindowAgentMetrics) => number) => stat(windows.map((w) => f(w.agents[j]!)));
    const diffs = bh >= 0 && j !== bh ? windows.map((w) => w.agents[j]!.sharpeRatio - w.agents[bh]!.sharpeRatio) : null;
    const wins = diffs ? diffs.filter((d) => d > 0).length : 0;
    return {
      name, kind: wf.windows[0]!.agents[j]!.kind, windows: windows.length,
      cumulativeReturn: over((m) => m.cumulativeReturn), sharpeRatio: over((m) => m.sharpeRatio),
      annualizedVolatility: over((m) => m.annualizedVolatility), maxDrawdown: over((m) => m.maxDrawdown),
      srMinusBuyAndHold: diffs ? stat(diffs) : null,
      beatsBuyAndHold: diffs ? { windows: wins, of: diffs.length, share: wins / diffs.length } : null,
      vsBuyAndHold: diffs && diffs.length >= 2
        ? meanBootstrapCI(diffs, { seed: input.bootstrapSeed ?? 0, resamples: input.bootstrapResamples ?? 2000 })
        : null,
    };
  });
  return {
    asset: wf.asset, scheme: wf.scheme,
    start: windows[0]!.train.start, end: windows[windows.length - 1]!.test.end,
    windows, agents,
  };
}

/** "rolling 252:63:63" / "expanding 252:63:63". */
export function schemeLabel(s: WalkForwardResult['scheme']): string {
  return `${s.expanding ? 'expanding' : 'rolling'} ${s.train}:${s.test}:${s.step}`;
}

/** The agent whose SR - B&H goes in the per-window table: the first trained one, else the first that is not Buy & Hold. */
export function featuredAgent(s: WalkForwardSummary): number {
  const t = s.agents.findIndex((a) => a.kind === 'trained');
  return t >= 0 ? t : s.agents.findIndex((a) => a.name !== BUY_AND_HOLD);
}
