// Hand-built observations for the prompt and feature tests (no loaders from other modules).
import type { TextItem } from '../src/data/series.js';
import type { AccountState, Observation } from '../src/env/types.js';

/** `n` ISO dates, one per calendar day from 2021-01-01 (gaps do not matter to the renderer). */
export function isoDates(n: number, from = Date.UTC(2021, 0, 1)): string[] {
  return Array.from({ length: n }, (_, i) => new Date(from + i * 86_400_000).toISOString().slice(0, 10));
}

export const FLAT_ACCOUNT: AccountState = { position: 0, cash: 1, shares: 0, value: 1, cumulativeReturn: 0 };

export function makeObs(prices: number[], text: TextItem[] = [], account: AccountState = FLAT_ACCOUNT, asset = 'TEST'): Observation {
  const dates = isoDates(prices.length);
  return { asset, date: dates[dates.length - 1], t: prices.length - 1, step: 0, dates, prices, text, account };
}

/**
 * p[0] = 100, then changes +2, -1, +2, -1, ... : p[2m] = 100 + m, p[2m+1] = 102 + m.
 * With 21 prices (p[0..20]) the hand-derived indicators are listed in the feature tests.
 */
export function zigzag(n: number): number[] {
  return Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 100 + i / 2 : 102 + (i - 1) / 2));
}

/** A text of `words` words "w1 w2 ..." ending with a sentiment tag when one is given. */
export function wordsText(prefix: string, words: number, tag?: 'positive' | 'negative' | 'neutral'): string {
  const body = Array.from({ length: words }, (_, i) => `${prefix}${i + 1}`).join(' ');
  return tag ? `${body} (Sentiment: ${tag})` : body;
}

/** Deep-freezes an object so a test proves the code under test does not write to it. */
export function deepFreeze<T>(x: T): T {
  if (x && typeof x === 'object') {
    for (const v of Object.values(x as object)) deepFreeze(v);
    Object.freeze(x);
  }
  return x;
}
