/**
 * Date windows of a series (e.g. the benchmark's train and test periods), bounds inclusive.
 * A window must hold at least 2 prices (one return). A bound outside the data is allowed (a start on a
 * holiday is normal) but a bound before the first or after the last date of the series adds a warning,
 * since the window then covers less time than was asked for.
 */
import type { MarketSeries } from './series.js';
import { DataError, quote } from './errors.js';
import { isIsoDate } from './dates.js';

/** The part of `series` dated start..end (inclusive; either may be left out). Always a new series (copies). */
export function selectWindow(series: MarketSeries, start?: string, end?: string): MarketSeries {
  const label = checkWindowBounds(series.source, start, end);
  const n = series.dates.length;
  const lo = start === undefined ? 0 : lowerBound(series.dates, start);
  const hi = end === undefined ? n : upperBound(series.dates, end); // exclusive
  const count = Math.max(0, hi - lo);
  if (count < 2) {
    const covers = n === 0 ? 'no dates' : `${series.dates[0]}..${series.dates[n - 1]} (${n} price${n === 1 ? '' : 's'})`;
    throw new DataError(
      { file: series.source },
      `${label} holds ${count} price${count === 1 ? '' : 's'} of ${series.asset}, expected at least 2; the series covers ${covers}`,
    );
  }

  const warnings = [...(series.warnings ?? [])];
  if (start !== undefined && start < series.dates[0]!) {
    warnings.push(`${series.source}: ${label} starts before the first date of ${series.asset} (${series.dates[0]})`);
  }
  if (end !== undefined && end > series.dates[n - 1]!) {
    warnings.push(`${series.source}: ${label} ends after the last date of ${series.asset} (${series.dates[n - 1]})`);
  }
  const out: MarketSeries = {
    asset: series.asset,
    source: series.source,
    dates: series.dates.slice(lo, hi),
    prices: series.prices.slice(lo, hi),
  };
  if (series.ohlcv) {
    const o = series.ohlcv;
    out.ohlcv = { open: o.open.slice(lo, hi), high: o.high.slice(lo, hi), low: o.low.slice(lo, hi), close: o.close.slice(lo, hi), volume: o.volume.slice(lo, hi) };
  }
  if (series.text) out.text = series.text.slice(lo, hi).map((day) => day.map((item) => ({ ...item })));
  if (warnings.length > 0) out.warnings = warnings;
  return out;
}

/**
 * Check window bounds before any data is read: each a valid YYYY-MM-DD date, start not after end.
 * Returns the window's label for messages, e.g. "window 2020-10-01..2021-05-05".
 */
export function checkWindowBounds(file: string, start?: string, end?: string): string {
  const label = `window ${start ?? '(start)'}..${end ?? '(end)'}`;
  for (const [name, value] of [['start', start], ['end', end]] as const) {
    if (value !== undefined && !isIsoDate(value)) {
      throw new DataError({ file }, `${label}: ${name} ${quote(value)} is not a date; expected YYYY-MM-DD`);
    }
  }
  if (start !== undefined && end !== undefined && start > end) {
    throw new DataError({ file }, `${label}: start ${start} is after end ${end}`);
  }
  return label;
}

/** First index with dates[i] >= d (dates sorted). */
function lowerBound(dates: string[], d: string): number {
  let lo = 0, hi = dates.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (dates[mid]! < d) lo = mid + 1; else hi = mid; }
  return lo;
}

/** First index with dates[i] > d (dates sorted). */
function upperBound(dates: string[], d: string): number {
  let lo = 0, hi = dates.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (dates[mid]! <= d) lo = mid + 1; else hi = mid; }
  return lo;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

function checkDate(what: string, d: string): void {
  const ok = ISO_DATE.test(d) && !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d);
  if (!ok) throw new Error(`${what} date ${JSON.stringify(d)} is not a valid date; expected YYYY-MM-DD`);
}

/**
 * Index bounds [startIndex, endIndex] of the window start..end in the series (the backtest's and a
 * run's windows); errors name the window and the series' span.
 */
export function resolveWindow(series: MarketSeries, start?: string, end?: string): { startIndex: number; endIndex: number } {
  if (start !== undefined) checkDate('start', start);
  if (end !== undefined) checkDate('end', end);
  if (start !== undefined && end !== undefined && start > end) throw new Error(`start ${start} is after end ${end}`);
  const d = series.dates;
  const span = d.length ? `${d[0]}..${d[d.length - 1]} (${d.length} prices)` : 'no dates';
  let startIndex = 0, endIndex = d.length - 1;
  if (start !== undefined) { startIndex = d.findIndex((x) => x >= start); if (startIndex < 0) startIndex = d.length; }
  if (end !== undefined) { endIndex = -1; for (let i = d.length - 1; i >= 0; i--) if (d[i]! <= end) { endIndex = i; break; } }
  const n = endIndex - startIndex + 1;
  if (n < 2) {
    throw new Error(`window ${start ?? '(series start)'}..${end ?? '(series end)'} of ${series.source || series.asset} holds ${Math.max(n, 0)} price(s); a backtest needs at least 2 (the series covers ${span})`);
  }
  return { startIndex, endIndex };
}
