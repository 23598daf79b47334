/**
 * The run's market data: load the series the config names (a file or the built-in synthetic market),
 * fingerprint it for the run record, and resolve the training and test windows to indices.
 *
 * The whole series is kept: a window's first decisions see the days before it as history (the
 * environment's lookback), never the days after it. Window defaults when dates are null:
 * train = first date .. the date at 70% of the series (DEFAULT_TRAIN_FRACTION), test = the first
 * date after train_end .. the last date.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { MarketSeries } from '../data/series.js';
import { loadSeries } from '../data/load.js';
import { syntheticMarket } from '../data/synthetic.js';
import { resolveWindow } from '../data/window.js';
import { DEFAULT_TRAIN_FRACTION, type TrainConfig } from './config.js';

export interface DataRecord {
  /** `synthetic` or the absolute file path. */
  source: string;
  /** sha256 of the file's bytes; for the synthetic market, of its generated dates, prices and text. */
  sha256: string;
}

export type DataFields = Pick<TrainConfig, 'data' | 'format' | 'ticker' | 'price_column' | 'synthetic_seed' | 'synthetic_days' | 'synthetic_news_tags' | 'synthetic_news_accuracy'>;

export async function loadRunSeries(c: DataFields): Promise<{ series: MarketSeries; record: DataRecord }> {
  if (c.data === 'synthetic') {
    const series = syntheticMarket({ seed: c.synthetic_seed, days: c.synthetic_days, newsTags: c.synthetic_news_tags, newsAccuracy: c.synthetic_news_accuracy });
    const h = createHash('sha256');
    h.update(JSON.stringify({ dates: series.dates, prices: Array.from(series.prices), text: series.text ?? null }));
    // The generator's own source string ("synthetic:seed=S:days=N", plus ":tags=false" for untagged news).
    return { series, record: { source: series.source, sha256: h.digest('hex') } };
  }
  const path = resolve(c.data);
  const series = await loadSeries({
    path,
    format: c.format,
    ...(c.ticker !== null ? { ticker: c.ticker } : {}),
    ...(c.price_column !== null ? { priceColumn: c.price_column } : {}),
  });
  const sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
  return { series, record: { source: path, sha256 } };
}

export interface WindowIndices {
  startIndex: number;
  endIndex: number;
  start: string;
  end: string;
}

function indices(series: MarketSeries, what: string, start: string | undefined, end: string | undefined): WindowIndices {
  let w;
  try { w = resolveWindow(series, start, end); } catch (e) { throw new Error(`${what} window: ${(e as Error).message}`); }
  return { ...w, start: series.dates[w.startIndex]!, end: series.dates[w.endIndex]! };
}

export type WindowFields = Pick<TrainConfig, 'train_start' | 'train_end' | 'test_start' | 'test_end'>;

/** The training window (see the module comment for the defaults). */
export function trainWindow(series: MarketSeries, c: WindowFields): WindowIndices {
  const n = series.dates.length;
  const end = c.train_end ?? series.dates[Math.floor(DEFAULT_TRAIN_FRACTION * (n - 1))]!;
  return indices(series, 'training', c.train_start ?? undefined, end);
}

/** The test window (evaluation). Without test_start it starts on the first date after the training window. */
export function testWindow(series: MarketSeries, c: WindowFields): WindowIndices {
  let start = c.test_start ?? undefined;
  if (start === undefined) {
    const train = trainWindow(series, c);
    if (train.endIndex + 1 >= series.dates.length) throw new Error(`test window: the training window ends on the series' last date ${train.end}; give test_start / test_end`);
    start = series.dates[train.endIndex + 1]!;
  }
  return indices(series, 'test', start, c.test_end ?? undefined);
}
