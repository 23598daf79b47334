/**
 * Backtest engine: one agent, one episode over a whole window [start, end] of a series, and the metrics.
 *
 * The series is the FULL series (e.g. the whole file) and the window is given by dates, so that the
 * first decision, made on the window's first date, can see the lookback days before it as history
 * (dates < start are history only: never traded, never in the metrics). The environment starts at the
 * window's first day ('first' start) and runs windowEnd - windowStart = N - 1 steps over the N prices
 * of the window, so the metrics are over exactly the window's N - 1 daily returns. Where the series
 * has fewer than `lookback` days before `start`, the first observations simply hold less history.
 *
 * In account mode a ruin (see src/env/trading-env.ts) ends the backtest early: the result then covers
 * the days up to the ruin (its `end`, `prices` and `endReason` say so).
 */
import type { MarketSeries } from '../data/series.js';
import type { Agent } from '../agents/agent.js';
import { TradingEnv } from '../env/trading-env.js';
import type { TradingMode } from '../env/config.js';
import { runEpisode } from './run-episode.js';
import { resolveWindow } from '../data/window.js';
import { ANNUALIZATIONS, computeMetrics, type Annualization, type Metrics } from './metrics.js';

export interface BacktestOptions {
  /** First date of the window (inclusive; the first trading date on or after it). Default: the series' first date. */
  start?: string;
  /** Last date of the window (inclusive; the last trading date on or before it). Default: the series' last date. */
  end?: string;
  /** Default: stock (252 / 252). */
  annualization?: Annualization;
  /** Default benchmark. */
  mode?: TradingMode;
  /** Benchmark cost per unit of position change, in basis points (default 0). */
  costBps?: number;
  /** Days of history in each observation (default 20). */
  lookback?: number;
  /** Account mode settings (defaults as in src/env/config.ts). */
  initialCash?: number;
  allowShort?: boolean;
  feeBps?: number;
  /** Seed for agent.reset and env.reset (default 0). */
  seed?: number;
}

export interface BacktestResult {
  agent: string;
  asset: string;
  source: string;
  mode: TradingMode;
  annualization: Annualization;
  /** First and last date of the window actually traded. */
  start: string;
  end: string;
  /** N: prices in the window. */
  prices: number;
  metrics: Metrics;
  /** Position held on each of the N - 1 days (dates[i] to dates[i + 1]). */
  positions: number[];
  /** Strategy return of each of the N - 1 days (log units, costs included). */
  returns: number[];
  /** The N window dates. */
  dates: string[];
  /** N values: exp(cumulative return), starting at 1 (account mode: portfolio value / initial cash). */
  equity: number[];
  endReason: 'window-end' | 'ruined';
}

export async function backtest(series: MarketSeries, agent: Agent, options: BacktestOptions = {}): Promise<BacktestResult> {
  const { startIndex, endIndex } = resolveWindow(series, options.start, options.end);
  const mode = options.mode ?? 'benchmark';
  const annualization = options.annualization ?? { ...ANNUALIZATIONS.stock };
  const env = new TradingEnv(series, {
    mode,
    start: 'first',
    windowStart: startIndex,
    windowEnd: endIndex,
    maxEpisodeSteps: endIndex - startIndex,
    ...(options.lookback !== undefined && { lookback: options.lookback }),
    ...(options.costBps !== undefined && { costBps: options.costBps }),
    ...(options.initialCash !== undefined && { initialCash: options.initialCash }),
    ...(options.allowShort !== undefined && { allowShort: options.allowShort }),
    ...(options.feeBps !== undefined && { feeBps: options.feeBps }),
  });
  const rec = await runEpisode(env, agent, options.seed ?? 0);
  const dates = [...rec.dates, rec.endDate];
  const equity = [1];
  let cum = 0;
  for (const r of rec.rewards) { cum += r; equity.push(Math.exp(cum)); }
  return {
    agent: agent.name,
    asset: series.asset,
    source: series.source,
    mode,
    annualization,
    start: dates[0]!,
    end: rec.endDate,
    prices: dates.length,
    metrics: computeMetrics(rec.rewards, rec.positions, annualization),
    positions: rec.positions,
    returns: rec.rewards,
    dates,
    equity,
    endReason: rec.endReason === 'ruined' ? 'ruined' : 'window-end',
  };
}
