// Small series built by hand for the env / agents / eval tests (no loaders involved).
import type { MarketSeries, TextItem } from '../src/data/series.js';
import { Rng } from '../src/util/rng.js';

/** Consecutive calendar dates from 2021-01-01 (the env only needs them strictly increasing). */
export function isoDates(n: number, from = '2021-01-01'): string[] {
  const t0 = Date.parse(`${from}T00:00:00Z`);
  return Array.from({ length: n }, (_, i) => new Date(t0 + i * 86400000).toISOString().slice(0, 10));
}

export function makeSeries(prices: number[], opts: { text?: TextItem[][]; dates?: string[]; asset?: string } = {}): MarketSeries {
  const s: MarketSeries = {
    asset: opts.asset ?? 'TEST',
    source: 'test',
    dates: opts.dates ?? isoDates(prices.length),
    prices: Float64Array.from(prices),
  };
  if (opts.text) s.text = opts.text;
  return s;
}

/** A seeded geometric random walk of n prices with one news line per day. */
export function randomWalk(n: number, seed: number, withText = true): MarketSeries {
  const rng = new Rng(seed);
  const prices = [100];
  for (let i = 1; i < n; i++) prices.push(prices[i - 1]! * Math.exp(0.02 * rng.normal()));
  const text = withText ? prices.map((_, i): TextItem[] => [{ kind: 'news', text: `headline ${i} (Sentiment: neutral)` }]) : undefined;
  return makeSeries(prices, text ? { text } : {});
}
