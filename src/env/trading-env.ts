/**
 * A gym-like single-asset trading environment: `reset(seed?) -> Observation`, `step(action) -> StepResult`.
 *
 * Time. Day t is an index into the series. On day t the agent sees data dated <= t only (prices and
 * dates from t - lookback to t, the text items dated t, its own account) and picks buy / sell / hold;
 * the step then moves to day t + 1 and pays the reward for holding the chosen position over t..t+1.
 * A trading window [windowStart, windowEnd] of prices allows at most windowEnd - windowStart steps
 * (the last decision is made on windowEnd - 1, whose reward needs P[windowEnd]).
 *
 * Benchmark mode (default; the paper's benchmark semantics):
 *   position_t = +1 for buy (long), -1 for sell (short), 0 for hold (flat); the previous position
 *   before the first step of an episode is 0.
 *   cost_t   = costBps / 1e4 * |position_t - position_{t-1}|
 *   reward_t = position_t * ln(P[t+1] / P[t]) - cost_t
 *   The account shown to the agent: position, value = cash = exp(sum of rewards so far), shares = 0.
 *
 * Account mode (cash and shares, closer to the paper's prompt), with fee rate f = feeBps / 1e4 and
 * P = P[t], value before trading V_t = cash + shares * P:
 *   buy:  if short, buy the shares back first (paying |shares| * P * (1 + f)); then put all cash into
 *         shares: notional n = cash / (1 + f), shares += n / P, cash = 0 (a long position just stays).
 *   sell: if long, sell every share (cash += shares * P * (1 - f)). If allowShort and now flat, open a
 *         short whose notional equals the cash: n = cash, shares = -n / P, cash += n * (1 - f).
 *         Already short: nothing. Without allowShort, selling while flat does nothing.
 *   hold: nothing.
 *   reward_t = ln(V_{t+1} / V_t) with V_{t+1} = cash + shares * P[t+1] after the trade, so fees are
 *   inside the reward; info.cost = ln(V_t / value right after the trade) is the fees' share of it.
 *   The position reported is the sign of the shares held.
 *   Ruin: should V_{t+1} <= 0 (only possible when short and the price more than doubles in a day),
 *   the episode ends with info.endReason = 'ruined' and the reward is computed with V_{t+1} taken as
 *   1e-6 of the initial cash (a finite, very negative reward rather than -Infinity or NaN).
 *
 * Episodes end (done) when day t + 1 is the window's end ('window-end') or after maxEpisodeSteps
 * steps ('max-steps'); both are time limits, not terminal states of the market. Where the episode
 * starts is set by `start` (see src/env/config.ts). Randomness (random starts) comes from a seeded
 * Rng; `getState` / `setState` capture everything needed to continue an episode exactly.
 */
import type { MarketSeries } from '../data/series.js';
import { Rng, type RngState } from '../util/rng.js';
import { ACTIONS, type Action, type Observation, type StepResult } from './types.js';
import { parseTradingEnvConfig, type TradingEnvConfig, type TradingEnvOptions } from './config.js';

/** Everything that changes during an episode, JSON-serialisable (for checkpoints and resume). */
export interface TradingEnvState {
  rng: { s: RngState; spare: number | null };
  /** True once reset() was called. */
  started: boolean;
  done: boolean;
  /** First decision index of the episode. */
  t0: number;
  /** Current day index. */
  t: number;
  /** Steps taken in this episode. */
  step: number;
  /** Benchmark position held coming into day t. */
  position: number;
  cash: number;
  shares: number;
  /** Sum of rewards so far (log units). */
  cumulativeReturn: number;
}

export class TradingEnv {
  readonly series: MarketSeries;
  readonly config: TradingEnvConfig;
  /** Trading window bounds (indices into the series, inclusive). */
  readonly windowStart: number;
  readonly windowEnd: number;
  private rng: Rng;
  private s: Omit<TradingEnvState, 'rng'>;

  constructor(series: MarketSeries, options: TradingEnvOptions = {}) {
    validateSeries(series);
    this.series = series;
    this.config = parseTradingEnvConfig(options);
    const n = series.prices.length;
    this.windowStart = this.config.windowStart ?? 0;
    this.windowEnd = this.config.windowEnd ?? n - 1;
    if (this.windowEnd > n - 1) {
      throw new Error(`Invalid trading environment config: windowEnd ${this.windowEnd} is past the series' last index ${n - 1} (${series.source})`);
    }
    if (this.windowStart >= this.windowEnd) {
      throw new Error(`Invalid trading environment config: windowStart ${this.windowStart} must be before windowEnd ${this.windowEnd} (a window needs at least 2 prices)`);
    }
    this.rng = new Rng(this.config.seed);
    this.s = { started: false, done: false, t0: 0, t: 0, step: 0, position: 0, cash: 0, shares: 0, cumulativeReturn: 0 };
  }

  /** The first decision index `fixed` starts use (see src/env/config.ts). */
  fixedStartIndex(): number {
    const full = Math.max(this.windowStart, this.config.lookback);
    return full < this.windowEnd ? full : this.windowStart;
  }

  /** The range [lo, hi] of first decision indices the current `start` setting can produce. */
  startRange(): [number, number] {
    const { start, maxEpisodeSteps } = this.config;
    if (start === 'first') return [this.windowStart, this.windowStart];
    const lo = this.fixedStartIndex();
    if (start === 'fixed') return [lo, lo];
    const hi = this.windowEnd - Math.min(maxEpisodeSteps, this.windowEnd - lo);
    return [lo, hi];
  }

  /** Start an episode. A seed re-seeds the environment's Rng; without one the stream continues. */
  reset(seed?: number): Observation {
    if (seed !== undefined) this.rng = new Rng(seed);
    const [lo, hi] = this.startRange();
    const t0 = hi > lo ? lo + this.rng.int(hi - lo + 1) : lo;
    const isAccount = this.config.mode === 'account';
    this.s = {
      started: true, done: false, t0, t: t0, step: 0, position: 0,
      cash: isAccount ? this.config.initialCash : 1, shares: 0, cumulativeReturn: 0,
    };
    return this.observe();
  }

  /** Take `action` on the current day; returns day t+1's observation and the reward for t..t+1. */
  step(action: Action): StepResult {
    if (!this.s.started) throw new Error('TradingEnv.step called before reset()');
    if (this.s.done) throw new Error('TradingEnv.step called after the episode ended; call reset() first');
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new Error(`TradingEnv.step: unknown action ${JSON.stringify(action)} on ${this.series.dates[this.s.t]}; expected one of ${ACTIONS.join(', ')}`);
    }
    const t = this.s.t;
    const p0 = this.series.prices[t]!, p1 = this.series.prices[t + 1]!;
    const logReturn = Math.log(p1 / p0);
    let reward: number, cost: number, position: number, value: number;
    let ruined = false;

    if (this.config.mode === 'benchmark') {
      position = action === 'buy' ? 1 : action === 'sell' ? -1 : 0;
      cost = (this.config.costBps / 1e4) * Math.abs(position - this.s.position);
      reward = position * logReturn - cost;
      this.s.position = position;
      this.s.cumulativeReturn += reward;
      value = Math.exp(this.s.cumulativeReturn);
      this.s.cash = value;
    } else {
      const before = this.s.cash + this.s.shares * p0;
      this.trade(action, p0);
      const after = this.s.cash + this.s.shares * p0;
      let next = this.s.cash + this.s.shares * p1;
      if (!(next > 0)) { ruined = true; next = 1e-6 * this.config.initialCash; }
      cost = Math.log(before / after);
      reward = Math.log(next / before);
      position = Math.sign(this.s.shares);
      this.s.position = position;
      this.s.cumulativeReturn += reward;
      value = next;
    }

    const date = this.series.dates[t]!;
    this.s.t = t + 1;
    this.s.step += 1;
    let endReason: 'window-end' | 'max-steps' | 'ruined' | undefined;
    if (ruined) endReason = 'ruined';
    else if (this.s.t >= this.windowEnd) endReason = 'window-end';
    else if (this.s.step >= this.config.maxEpisodeSteps) endReason = 'max-steps';
    this.s.done = endReason !== undefined;
    const info: StepResult['info'] = { date, position, logReturn, cost, value };
    if (endReason) info.endReason = endReason;
    return { observation: this.observe(), reward, done: this.s.done, info };
  }

  /** Account-mode trade at price p (see the module comment). */
  private trade(action: Action, p: number): void {
    const f = this.config.feeBps / 1e4;
    if (action === 'buy') {
      if (this.s.shares < 0) { this.s.cash -= -this.s.shares * p * (1 + f); this.s.shares = 0; }
      if (this.s.cash > 0) { const n = this.s.cash / (1 + f); this.s.shares += n / p; this.s.cash = 0; }
    } else if (action === 'sell') {
      if (this.s.shares > 0) { this.s.cash += this.s.shares * p * (1 - f); this.s.shares = 0; }
      if (this.config.allowShort && this.s.shares === 0 && this.s.cash > 0) {
        const n = this.s.cash;
        this.s.shares = -n / p;
        this.s.cash += n * (1 - f);
      }
    }
  }

  /** The observation of the current day: data dated <= t only. */
  observe(): Observation {
    if (!this.s.started) throw new Error('TradingEnv.observe called before reset()');
    const t = this.s.t;
    const from = Math.max(0, t - this.config.lookback);
    const p = this.series.prices[t]!;
    const isAccount = this.config.mode === 'account';
    return {
      asset: this.series.asset,
      date: this.series.dates[t]!,
      t,
      step: this.s.step,
      dates: this.series.dates.slice(from, t + 1),
      prices: Array.from(this.series.prices.subarray(from, t + 1)),
      // Copies, so that an agent cannot change the series.
      text: (this.series.text?.[t] ?? []).map((x) => ({ ...x })),
      account: {
        position: this.s.position,
        cash: this.s.cash,
        shares: this.s.shares,
        value: isAccount ? this.s.cash + this.s.shares * p : this.s.cash,
        cumulativeReturn: this.s.cumulativeReturn,
      },
    };
  }

  /** True when the current episode has ended. */
  get done(): boolean {
    return this.s.done;
  }

  getState(): TradingEnvState {
    return { rng: this.rng.getState(), ...this.s };
  }

  setState(state: TradingEnvState): void {
    const { rng, ...rest } = state;
    if (rest.t < 0 || rest.t > this.windowEnd) throw new Error(`TradingEnv.setState: day index ${rest.t} is outside the series window [0, ${this.windowEnd}]`);
    this.rng.setState(rng);
    this.s = { ...rest };
  }
}

/** Cheap structural checks, so that a bad series fails here with the date rather than as NaN rewards. */
function validateSeries(series: MarketSeries): void {
  const n = series.prices.length;
  const src = series.source || series.asset;
  if (series.dates.length !== n) throw new Error(`${src}: ${series.dates.length} dates but ${n} prices; expected one price per date`);
  if (n < 2) throw new Error(`${src}: a trading environment needs at least 2 prices, got ${n}`);
  if (series.text && series.text.length !== n) throw new Error(`${src}: text has ${series.text.length} days but the series has ${n}; expected one (possibly empty) list per date`);
  for (let i = 0; i < n; i++) {
    const p = series.prices[i]!;
    if (!(p > 0) || !Number.isFinite(p)) throw new Error(`${src}: price on ${series.dates[i]} is ${p}; expected a positive finite number`);
    if (i > 0 && !(series.dates[i]! > series.dates[i - 1]!)) throw new Error(`${src}: date ${series.dates[i]} does not come after ${series.dates[i - 1]}; dates must be strictly increasing`);
  }
}
