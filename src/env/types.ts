import type { TextItem } from '../data/series.js';

/** The legal actions, in the fixed order used by policy heads (index 0, 1, 2). */
export const ACTIONS = ['buy', 'sell', 'hold'] as const;
export type Action = (typeof ACTIONS)[number];

/** The account as the agent sees it on day t (before acting). */
export interface AccountState {
  /** Position held coming into day t: +1 long, -1 short, 0 flat (benchmark mode); in account mode the sign of shares. */
  position: number;
  /** Cash (account mode; in benchmark mode the notional equity value 1 * exp(cumulative return)). */
  cash: number;
  /** Shares held (account mode; 0 in benchmark mode). */
  shares: number;
  /** Portfolio value at day t's price. */
  value: number;
  /** Cumulative log return of the episode so far. */
  cumulativeReturn: number;
}

/**
 * What the agent sees on day t. Every field is a function of data dated <= t only.
 */
export interface Observation {
  asset: string;
  /** Date of day t. */
  date: string;
  /** Index of day t in the series. */
  t: number;
  /** Step within the episode, 0-based. */
  step: number;
  /**
   * The dates from t - lookback to t (inclusive), oldest first: `lookback` days of history plus day t,
   * so lookback + 1 entries, fewer near the start of the series (see src/env/trading-env.ts).
   */
  dates: string[];
  /** Prices aligned with `dates`; the last one is day t's price. */
  prices: number[];
  /** Text items dated t (news, filings); empty when none. */
  text: TextItem[];
  account: AccountState;
}

export interface StepResult {
  observation: Observation;
  reward: number;
  /** True when the episode ended (end of window or max episode steps). */
  done: boolean;
  info: {
    /** Date of the day the action was taken on. */
    date: string;
    /** Position held from t to t+1 after the action. */
    position: number;
    /** ln(P[t+1]/P[t]). */
    logReturn: number;
    /** Cost charged on this step (log-return units). */
    cost: number;
    /** Portfolio value at day t+1's price after this step (benchmark mode: exp(cumulative return)). */
    value?: number;
    /** Why the episode ended, when `done`: end of the window, the step limit, or (account mode) ruin. */
    endReason?: 'window-end' | 'max-steps' | 'ruined';
  };
}
