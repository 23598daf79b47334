/**
 * Rule-based baseline traders. The price rules read `observation.prices` only (the lookback window
 * ending at day t, oldest first); the sentiment rule reads `observation.text` only (the items dated
 * day t). Neither holds anything after t, so none can see the future. With the environment's default
 * lookback of 20 days the observation holds 21 prices: enough for a 20-day return and a 20-day SMA.
 */
import type { Agent } from './agent.js';
import { ACTIONS, type Action, type Observation } from '../env/types.js';
import { sentimentOf } from '../env/features.js';
import { Rng } from '../util/rng.js';

/** Buy & Hold: long every day. */
export class BuyAndHoldAgent implements Agent {
  readonly name = 'buy-and-hold';
  act(_obs: Observation): Action {
    return 'buy';
  }
}

/** Uniformly random over buy / sell / hold from a seeded Rng; reset(seed) restarts the stream. */
export class RandomAgent implements Agent {
  readonly name = 'random';
  private rng: Rng;
  constructor(private readonly seed = 0) {
    this.rng = new Rng(seed);
  }
  reset(seed?: number): void {
    this.rng = new Rng(seed ?? this.seed);
  }
  act(_obs: Observation): Action {
    return ACTIONS[this.rng.int(ACTIONS.length)]!;
  }
}

function checkWindow(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${what} must be a positive integer, got ${value}`);
}

/**
 * Momentum: the sign of the return over the last `lookback` days, ln(P_t / P_{t-lookback}):
 * positive -> buy, negative -> sell, zero or fewer than lookback + 1 prices -> hold.
 */
export class MomentumAgent implements Agent {
  readonly name = 'momentum';
  constructor(readonly lookback = 20) {
    checkWindow('momentum lookback', lookback);
  }
  act(obs: Observation): Action {
    const p = obs.prices;
    if (p.length < this.lookback + 1) return 'hold';
    const last = p[p.length - 1]!, past = p[p.length - 1 - this.lookback]!;
    return last > past ? 'buy' : last < past ? 'sell' : 'hold';
  }
}

function mean(xs: number[], from: number): number {
  let s = 0;
  for (let i = from; i < xs.length; i++) s += xs[i]!;
  return s / (xs.length - from);
}

/**
 * SMA crossover: the mean of the last `short` prices against the mean of the last `long` prices
 * (both including day t): short above long -> buy, below -> sell, equal or fewer than `long` prices -> hold.
 */
export class SmaCrossoverAgent implements Agent {
  readonly name = 'sma-crossover';
  constructor(readonly short = 5, readonly long = 20) {
    checkWindow('SMA short window', short);
    checkWindow('SMA long window', long);
    if (short >= long) throw new Error(`SMA short window (${short}) must be shorter than the long window (${long})`);
  }
  act(obs: Observation): Action {
    const p = obs.prices;
    if (p.length < this.long) return 'hold';
    const s = mean(p, p.length - this.short), l = mean(p, p.length - this.long);
    return s > l ? 'buy' : s < l ? 'sell' : 'hold';
  }
}

/**
 * Sentiment: net = #positive - #negative sentiment tags among day t's text items (`obs.text`, which holds
 * only the items dated t; every kind counts, and an item's tag is read by `sentimentOf`, as the features
 * do). net > 0 -> buy, net < 0 -> sell (hold when `longOnly`), net = 0 or no tagged items -> hold.
 */
export class SentimentAgent implements Agent {
  readonly name = 'sentiment';
  constructor(readonly longOnly = false) {}
  act(obs: Observation): Action {
    let net = 0;
    for (const item of obs.text) {
      const s = sentimentOf(item.text);
      if (s === 'positive') net++;
      else if (s === 'negative') net--;
    }
    if (net > 0) return 'buy';
    if (net < 0) return this.longOnly ? 'hold' : 'sell';
    return 'hold';
  }
}
