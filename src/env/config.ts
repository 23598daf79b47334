/**
 * The trading environment's configuration: one object, every field documented with its default,
 * validated by a zod schema so that a bad value fails with the field's name.
 */
import { z } from 'zod';

export const TRADING_MODES = ['benchmark', 'account'] as const;
export type TradingMode = (typeof TRADING_MODES)[number];

/**
 * Where an episode starts (the first decision day):
 * - `fixed`: the first day of the window that has a full lookback of history behind it (history
 *   before the window counts), i.e. max(windowStart, lookback); when that leaves no step before the
 *   window's end, the window's first day with whatever shorter history exists.
 * - `random`: uniform over the days from the `fixed` start to the last day that still leaves a full
 *   episode of `maxEpisodeSteps` steps (or to the fixed start when the window is shorter than that),
 *   drawn from the environment's seeded Rng.
 * - `first`: the window's first day, whatever history there is (what backtests use: the first decision
 *   is on the window's first date and sees earlier dates of the series as history).
 */
export const START_MODES = ['fixed', 'random', 'first'] as const;
export type StartMode = (typeof START_MODES)[number];

/** The largest benchmark-mode cost: 10000 basis points, 100% of notional per unit of position change. */
export const MAX_COST_BPS = 10_000;

const schema = z.object({
  /** `benchmark` (positions +1/-1/0, log-return rewards, as the paper's benchmark) or `account` (cash and shares). */
  mode: z.enum(TRADING_MODES).default('benchmark'),
  /** Days of history before day t in the observation: it holds up to lookback + 1 prices (t - lookback .. t). */
  lookback: z.number().int().min(0).default(20),
  /** An episode ends after this many steps (or earlier at the window's end). */
  maxEpisodeSteps: z.number().int().min(1).default(65),
  /** Where an episode starts: see StartMode. */
  start: z.enum(START_MODES).default('fixed'),
  /** Seed of the environment's Rng (random starts); `reset(seed)` re-seeds it. */
  seed: z.number().int().default(0),
  /** First index of the trading window (decisions are made from here on; earlier prices are history only). */
  windowStart: z.number().int().min(0).optional(),
  /** Last index of the trading window (inclusive); the last decision is on windowEnd - 1. Default: the last index. */
  windowEnd: z.number().int().min(1).optional(),
  /** Benchmark mode: cost in basis points of notional per unit of position change, charged as a log return (at most 10000 = 100%). */
  costBps: z.number().min(0).max(MAX_COST_BPS, `expected at most ${MAX_COST_BPS} basis points (100% of notional per unit of position change)`).default(0),
  /** Account mode: starting cash. */
  initialCash: z.number().positive().finite().default(100000),
  /** Account mode: whether `sell` may open a short position (otherwise it only closes a long one). */
  allowShort: z.boolean().default(false),
  /** Account mode: fee in basis points of each trade's notional (buys pay it on top, sales receive less). */
  feeBps: z.number().min(0).lt(10000).default(0),
}).strict();

export type TradingEnvConfig = z.output<typeof schema>;
export type TradingEnvOptions = z.input<typeof schema>;

/** Fill defaults and validate; errors name the field and what was expected. */
export function parseTradingEnvConfig(options: TradingEnvOptions = {}): TradingEnvConfig {
  const r = schema.safeParse(options);
  if (!r.success) {
    const given = options as Record<string, unknown>;
    const show = (v: unknown): string => (typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v));
    const lines = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(config)'}: ${i.message}${
      i.path.length === 1 && given[String(i.path[0])] !== undefined ? `, got ${show(given[String(i.path[0])])}` : ''}`);
    throw new Error(`Invalid trading environment config: ${lines.join('; ')}`);
  }
  const c = r.data;
  // A setting of the other mode would silently do nothing: refuse it.
  if (c.mode === 'account' && c.costBps !== 0) throw new Error('Invalid trading environment config: costBps applies to benchmark mode; account mode charges feeBps');
  if (c.mode === 'benchmark' && (c.feeBps !== 0 || c.allowShort)) throw new Error('Invalid trading environment config: feeBps and allowShort apply to account mode; benchmark mode charges costBps');
  return c;
}
