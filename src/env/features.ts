/**
 * Numeric market features of day t, computed from the observation only (nothing after t can leak in,
 * because an Observation holds data dated <= t only).
 *
 * Every indicator reads the closes in `obs.prices` (oldest first, the last one is day t). When the window
 * is too short for an indicator its value is `null`: we never pad, extrapolate or guess. What each
 * indicator needs (n = obs.prices.length):
 *
 * | field          | definition                                                     | needs n >= |
 * |----------------|----------------------------------------------------------------|------------|
 * | lastPrice      | p[n-1]                                                         | 1          |
 * | ret1/ret5/ret20| ln(p[n-1] / p[n-1-k]) for k = 1, 5, 20                          | k + 1      |
 * | sma5 / sma20   | mean of the last k closes (today included)                     | k          |
 * | priceToSma5/20 | p[n-1] / smaK - 1  (relative distance of the price from it)    | k          |
 * | vol20          | sample std (ddof 1) of the last 20 daily log returns (daily,   | 21         |
 * |                | not annualised)                                                |            |
 * | rsi14          | 100 * G / (G + L), G and L the mean gain and mean loss of the  | 15         |
 * |                | last 14 close-to-close changes (simple averages, "Cutler's     |            |
 * |                | RSI": Wilder's smoothing would make the value depend on how    |            |
 * |                | long the lookback window is). G + L = 0 (no movement) gives 50.|            |
 * | fromHigh20     | p[n-1] / max(last 20 closes) - 1   (<= 0)                      | 20         |
 * | fromLow20      | p[n-1] / min(last 20 closes) - 1   (>= 0)                      | 20         |
 * | historyDays    | n                                                              | 1          |
 */
import type { Observation } from './types.js';

export interface MarketFeatures {
  /** Number of closes available in the observation window (today included). */
  historyDays: number;
  lastPrice: number;
  ret1: number | null;
  ret5: number | null;
  ret20: number | null;
  sma5: number | null;
  sma20: number | null;
  priceToSma5: number | null;
  priceToSma20: number | null;
  vol20: number | null;
  rsi14: number | null;
  fromHigh20: number | null;
  fromLow20: number | null;
}

/** Check that the observation's price window is usable; throws naming the index, date and value. */
export function validatePrices(obs: Observation): void {
  const { prices, dates } = obs;
  if (!Array.isArray(prices) || prices.length === 0) {
    throw new Error(`observation ${obs.asset} ${obs.date}: prices is empty; expected at least day t's price`);
  }
  if (!Array.isArray(dates) || dates.length !== prices.length) {
    throw new Error(
      `observation ${obs.asset} ${obs.date}: dates has ${Array.isArray(dates) ? dates.length : 'no'} entries but prices has ${prices.length}; expected one date per price`,
    );
  }
  for (let i = 0; i < prices.length; i++) {
    const p = prices[i];
    if (typeof p !== 'number' || !Number.isFinite(p) || p <= 0) {
      throw new Error(
        `observation ${obs.asset} ${obs.date}: prices[${i}] (${dates[i]}) is ${String(p)}; expected a positive finite number`,
      );
    }
  }
}

function logReturn(p: readonly number[], k: number): number | null {
  const n = p.length;
  return n >= k + 1 ? Math.log(p[n - 1] / p[n - 1 - k]) : null;
}

function sma(p: readonly number[], k: number): number | null {
  const n = p.length;
  if (n < k) return null;
  let s = 0;
  for (let i = n - k; i < n; i++) s += p[i];
  return s / k;
}

function realisedVol(p: readonly number[], k: number): number | null {
  const n = p.length;
  if (n < k + 1) return null;
  const r: number[] = [];
  for (let i = n - k; i < n; i++) r.push(Math.log(p[i] / p[i - 1]));
  const mean = r.reduce((a, b) => a + b, 0) / k;
  const ss = r.reduce((a, x) => a + (x - mean) * (x - mean), 0);
  return Math.sqrt(ss / (k - 1));
}

function rsi(p: readonly number[], k: number): number | null {
  const n = p.length;
  if (n < k + 1) return null;
  let gain = 0;
  let loss = 0;
  for (let i = n - k; i < n; i++) {
    const d = p[i] - p[i - 1];
    if (d > 0) gain += d;
    else loss -= d;
  }
  // 100*G/(G+L) equals the textbook 100 - 100/(1 + G/L) and stays defined when L = 0.
  return gain + loss === 0 ? 50 : (100 * gain) / (gain + loss);
}

function extremeDistance(p: readonly number[], k: number, which: 'high' | 'low'): number | null {
  const n = p.length;
  if (n < k) return null;
  let e = p[n - k];
  for (let i = n - k + 1; i < n; i++) e = which === 'high' ? Math.max(e, p[i]) : Math.min(e, p[i]);
  return p[n - 1] / e - 1;
}

/** All indicators of day t from `obs.prices` (see the table at the top of this file). */
export function computeFeatures(obs: Observation): MarketFeatures {
  validatePrices(obs);
  const p = obs.prices;
  const last = p[p.length - 1];
  const sma5 = sma(p, 5);
  const sma20 = sma(p, 20);
  return {
    historyDays: p.length,
    lastPrice: last,
    ret1: logReturn(p, 1),
    ret5: logReturn(p, 5),
    ret20: logReturn(p, 20),
    sma5,
    sma20,
    priceToSma5: sma5 === null ? null : last / sma5 - 1,
    priceToSma20: sma20 === null ? null : last / sma20 - 1,
    vol20: realisedVol(p, 20),
    rsi14: rsi(p, 14),
    fromHigh20: extremeDistance(p, 20, 'high'),
    fromLow20: extremeDistance(p, 20, 'low'),
  };
}

/** Matches the tag that ends each news summary: `(Sentiment: positive)` (equities) or `(sentiment:positive)` (crypto). */
const SENTIMENT_TAG = /\(\s*sentiment\s*:\s*(positive|negative|neutral)\s*\)/gi;

/** The sentiment tag of one news item: the LAST tag in the text (it ends the summary), or null when there is none. */
export function sentimentOf(text: string): 'positive' | 'negative' | 'neutral' | null {
  let last: string | null = null;
  for (const m of text.matchAll(SENTIMENT_TAG)) last = m[1].toLowerCase();
  return last as 'positive' | 'negative' | 'neutral' | null;
}

/**
 * News sentiment of the day: (#positive - #negative) / #news items, in [-1, 1]; items without a tag count
 * in the denominator and add 0. Returns null when the day has no news (10-K/10-Q items are not news).
 */
export function newsSentiment(obs: Observation): number | null {
  const news = obs.text.filter((x) => x.kind === 'news');
  if (news.length === 0) return null;
  let score = 0;
  for (const item of news) {
    const s = sentimentOf(item.text);
    if (s === 'positive') score += 1;
    else if (s === 'negative') score -= 1;
  }
  return score / news.length;
}

/** The indicators that enter the feature vector, each as (value, available-flag). RSI is scaled by 1/100. */
const VECTOR_INDICATORS = [
  'ret1',
  'ret5',
  'ret20',
  'priceToSma5',
  'priceToSma20',
  'vol20',
  'rsi14',
  'fromHigh20',
  'fromLow20',
] as const satisfies readonly (keyof MarketFeatures)[];

/**
 * Names of the featureVector entries, in order. For each indicator: its value (0 when unavailable) and
 * `<name>_available` (1 or 0). Then the position one-hot (sign of account.position) and the news score
 * with its own availability flag.
 */
export const FEATURE_NAMES: readonly string[] = Object.freeze([
  ...VECTOR_INDICATORS.flatMap((k) => [k === 'rsi14' ? 'rsi14_over_100' : k, `${k}_available`]),
  'position_short',
  'position_flat',
  'position_long',
  'news_sentiment',
  'news_available',
]);

/**
 * Fixed-length numeric input for the MLP ablation policy: FEATURE_NAMES.length entries.
 * Nulls become 0 with their availability flag set to 0, so "no data" is never confused with "zero".
 */
export function featureVector(obs: Observation): Float32Array {
  const f = computeFeatures(obs);
  const pos = obs.account.position;
  if (typeof pos !== 'number' || !Number.isFinite(pos)) {
    throw new Error(`observation ${obs.asset} ${obs.date}: account.position is ${String(pos)}; expected a finite number`);
  }
  const v = new Float32Array(FEATURE_NAMES.length);
  let i = 0;
  for (const k of VECTOR_INDICATORS) {
    const x = f[k];
    v[i++] = x === null ? 0 : k === 'rsi14' ? x / 100 : x;
    v[i++] = x === null ? 0 : 1;
  }
  v[i++] = pos < 0 ? 1 : 0;
  v[i++] = pos === 0 ? 1 : 0;
  v[i++] = pos > 0 ? 1 : 0;
  const s = newsSentiment(obs);
  v[i++] = s ?? 0;
  v[i++] = s === null ? 0 : 1;
  return v;
}
