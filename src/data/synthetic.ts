/**
 * The built-in synthetic market: a seeded, regime-switching price series with daily news whose
 * sentiment is an informative but noisy signal of the next day's return. It needs no files, so the
 * demo, tests and quick training runs work anywhere, and there is something to learn.
 *
 * Generative process (days t = 0..N-1 on business days from `startDate`; weekends skipped, holidays
 * ignored). One Rng stream (src/util/rng.ts) from `seed` drives every draw, day by day:
 *
 * 1. Regime s_t in {bull, flat, bear}: s_0 is uniform (the chain's stationary law, as switching is
 *    symmetric); for t >= 1, s_t = s_{t-1} with probability `persistence`, otherwise one of the other
 *    two regimes with equal probability. Mean regime length is 1 / (1 - persistence) days.
 * 2. Close: P_0 = `startPrice`; for t >= 1, ln(P_t / P_{t-1}) = drift[s_{t-1}] + vol[s_{t-1}] * z_t,
 *    z_t ~ N(0, 1). So the regime of day t sets the expected return from t to t+1, which is what an
 *    agent deciding on day t trades. Persistent regimes make recent returns informative too (momentum).
 * 3. OHLCV of day t (v = vol of the regime that drove the move into day t, s_{t-1}; s_0 for t = 0):
 *    Open = P_{t-1} * exp(0.25 v g) (an overnight gap; P_0 for t = 0), High = max(Open, Close) *
 *    exp(0.5 v |h|), Low = min(Open, Close) * exp(-0.5 v |l|), Volume = round(baseVolume *
 *    exp(0.25 u + 0.5 |ln(Close / Open)| / v)), with g, h, l, u ~ N(0, 1): busier days on bigger moves.
 * 4. News of day t: k ~ uniform{headlinesPerDay[0]..[1]} headlines; each independently carries the
 *    regime's sentiment (bull -> positive, flat -> neutral, bear -> negative) with probability
 *    `newsAccuracy`, else one of the other two sentiments with equal probability (misleading news).
 *    Text from headlines.ts, ending with "(Sentiment: positive|neutral|negative)" unless `newsTags` is
 *    false: then the headline's words alone carry its sentiment (e.g. "raises its full-year outlook" vs
 *    "warns that weak demand ..."), a harder task that needs reading rather than tag matching. The tag
 *    takes no draw, so one seed gives the same regimes, prices and headline words in both variants; the
 *    series' `source` ends with ":tags=false" for the untagged one.
 *
 * Defaults give a slightly rising market (buy-and-hold expects about +0.01% a day) in which following
 * the news beats buy-and-hold on most seeds of 500 days, while noise dominates any single day
 * (|drift| / vol is about 0.15-0.2).
 */
import { z } from 'zod';
import { Rng } from '../util/rng.js';
import type { MarketSeries, TextItem } from './series.js';
import { dayNumber, dateOfDayNumber, weekdayOfDayNumber } from './dates.js';
import { makeHeadline, SENTIMENTS, type Sentiment } from './headlines.js';

export type Regime = 'bull' | 'flat' | 'bear';
export const REGIMES: readonly Regime[] = ['bull', 'flat', 'bear'];
const REGIME_SENTIMENT: Record<Regime, Sentiment> = { bull: 'positive', flat: 'neutral', bear: 'negative' };

export interface RegimeParams {
  /** Mean daily log return. */
  drift: number;
  /** Standard deviation of the daily log return. */
  vol: number;
}

export interface SyntheticOptions {
  /** Default 1. */
  seed?: number;
  /** Number of trading days (prices). Default 500. */
  days?: number;
  /** First date, YYYY-MM-DD; moved to the next Monday if it falls on a weekend. Default 2020-01-02. */
  startDate?: string;
  /** Default 'SYNTH'. */
  asset?: string;
  /** P_0. Default 100. */
  startPrice?: number;
  /** Probability that the regime stays the same from one day to the next. Default 0.95. */
  persistence?: number;
  /** Probability that a headline's sentiment matches the current regime. Default 0.7. */
  newsAccuracy?: number;
  /** Inclusive [min, max] number of headlines per day. Default [1, 3]. */
  headlinesPerDay?: [number, number];
  /** Per-regime drift and vol. Defaults: bull 0.002/0.010, flat 0.0003/0.008, bear -0.002/0.015. */
  regimes?: Partial<Record<Regime, RegimeParams>>;
  /** Mean daily volume scale. Default 1e6. */
  baseVolume?: number;
  /** Whether headlines end with their "(Sentiment: ...)" tag. Default true; false = the words alone. */
  newsTags?: boolean;
}

export const SYNTHETIC_DEFAULTS = {
  seed: 1,
  days: 500,
  startDate: '2020-01-02',
  asset: 'SYNTH',
  startPrice: 100,
  persistence: 0.95,
  newsAccuracy: 0.7,
  headlinesPerDay: [1, 3] as [number, number],
  regimes: {
    bull: { drift: 0.002, vol: 0.01 },
    flat: { drift: 0.0003, vol: 0.008 },
    bear: { drift: -0.002, vol: 0.015 },
  } as Record<Regime, RegimeParams>,
  baseVolume: 1e6,
  newsTags: true,
};

const regimeParams = z.strictObject({ drift: z.number().finite(), vol: z.number().finite().positive() });
const optionsSchema = z.strictObject({
  seed: z.number().finite().optional(),
  days: z.number().int().min(2).max(1_000_000).optional(),
  startDate: z.string().refine((d) => dayNumber(d) !== null, 'expected a date YYYY-MM-DD').optional(),
  asset: z.string().trim().min(1).optional(),
  startPrice: z.number().finite().positive().optional(),
  persistence: z.number().min(0).max(1).optional(),
  newsAccuracy: z.number().min(0).max(1).optional(),
  headlinesPerDay: z
    .tuple([z.number().int().min(0), z.number().int().max(20)])
    .refine(([lo, hi]) => lo <= hi, 'expected [min, max] with min <= max')
    .optional(),
  regimes: z.strictObject({ bull: regimeParams.optional(), flat: regimeParams.optional(), bear: regimeParams.optional() }).optional(),
  baseVolume: z.number().finite().positive().optional(),
  newsTags: z.boolean().optional(),
});

export interface SyntheticMarket {
  series: MarketSeries;
  /** The hidden regime of each day (what the news is about), for analysis and tests. */
  regimes: Regime[];
}

export function syntheticMarket(opts: SyntheticOptions = {}): MarketSeries {
  return generateSyntheticMarket(opts).series;
}

export function generateSyntheticMarket(opts: SyntheticOptions = {}): SyntheticMarket {
  const parsed = optionsSchema.safeParse(opts);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`syntheticMarket option ${issue.path.map(String).join('.') || '(options)'}: ${issue.message}`);
  }
  const o = { ...SYNTHETIC_DEFAULTS, ...stripUndefined(parsed.data) };
  const params: Record<Regime, RegimeParams> = { ...SYNTHETIC_DEFAULTS.regimes, ...stripUndefined(parsed.data.regimes ?? {}) };
  const rng = new Rng(o.seed);
  const n = o.days;

  const dates = businessDays(o.startDate, n);
  const regimes: Regime[] = new Array<Regime>(n);
  const close = new Float64Array(n), open = new Float64Array(n), high = new Float64Array(n), low = new Float64Array(n), volume = new Float64Array(n);
  const text: TextItem[][] = new Array<TextItem[]>(n);

  let regime = REGIMES[rng.int(3)]!;
  for (let t = 0; t < n; t++) {
    // 1-2. The move into day t is driven by yesterday's regime; then today's regime is drawn.
    const mover = regime;
    if (t === 0) {
      close[0] = o.startPrice;
    } else {
      const p = params[mover];
      close[t] = close[t - 1]! * Math.exp(p.drift + p.vol * rng.normal());
      if (rng.uniform() >= o.persistence) {
        const others = REGIMES.filter((r) => r !== regime);
        regime = others[rng.int(2)]!;
      }
    }
    regimes[t] = regime;

    // 3. OHLCV around the close.
    const v = params[mover].vol;
    const prev = t === 0 ? o.startPrice : close[t - 1]!;
    open[t] = prev * Math.exp(0.25 * v * rng.normal());
    high[t] = Math.max(open[t]!, close[t]!) * Math.exp(0.5 * v * Math.abs(rng.normal()));
    low[t] = Math.min(open[t]!, close[t]!) * Math.exp(-0.5 * v * Math.abs(rng.normal()));
    volume[t] = Math.round(o.baseVolume * Math.exp(0.25 * rng.normal() + (0.5 * Math.abs(Math.log(close[t]! / open[t]!))) / v));

    // 4. Today's news about today's regime.
    const [kMin, kMax] = o.headlinesPerDay;
    const k = kMin + rng.int(kMax - kMin + 1);
    const truth = REGIME_SENTIMENT[regime];
    const items: TextItem[] = [];
    for (let j = 0; j < k; j++) {
      let s = truth;
      if (rng.uniform() >= o.newsAccuracy) {
        const others = SENTIMENTS.filter((x) => x !== truth);
        s = others[rng.int(2)]!;
      }
      items.push({ kind: 'news', text: makeHeadline(rng, o.asset, s, o.newsTags) });
    }
    text[t] = items;
  }

  for (let t = 0; t < n; t++) {
    for (const a of [close, open, high, low]) {
      if (!(a[t]! > 0 && Number.isFinite(a[t]!))) {
        throw new Error(`syntheticMarket: the options drive prices out of floating-point range on day ${t} (${dates[t]}); use smaller drift/vol or fewer days`);
      }
    }
  }

  const series: MarketSeries = {
    asset: o.asset,
    // The default market keeps the historical source string; other news settings say so.
    source: `synthetic:seed=${o.seed}:days=${n}${o.newsAccuracy === SYNTHETIC_DEFAULTS.newsAccuracy ? '' : `:news_accuracy=${o.newsAccuracy}`}${o.newsTags ? '' : ':tags=false'}`,
    dates,
    prices: close,
    ohlcv: { open, high, low, close: close.slice(), volume },
    text,
  };
  return { series, regimes };
}

/** `n` Monday-to-Friday dates from `start` (a weekend start moves to the next Monday). */
export function businessDays(start: string, n: number): string[] {
  let day = dayNumber(start);
  if (day === null) throw new Error(`businessDays: start ${JSON.stringify(start)} is not a date; expected YYYY-MM-DD`);
  const out: string[] = [];
  while (out.length < n) {
    const wd = weekdayOfDayNumber(day);
    if (wd !== 0 && wd !== 6) out.push(dateOfDayNumber(day));
    day++;
  }
  return out;
}

function stripUndefined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}
