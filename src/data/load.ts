/**
 * The one entry point for market data: `loadSeries` reads a file in any supported format and cuts the
 * requested window. Formats: Yahoo CSV (yahoo.ts), long-format CSV with a ticker column (long.ts),
 * INVESTOR-BENCH JSON (investorbench.ts); gzip is handled for all. The result is guaranteed to hold at
 * least 2 prices with strictly increasing valid dates and positive finite prices.
 *
 * Invalid rows: by default any bad value (e.g. Yahoo's `null` rows) fails with the file and line.
 * `dropInvalidRows: true` drops rows/dates whose values are bad and adds one warning per dropped row to
 * `series.warnings`; bad dates and bad structure fail either way.
 */
import type { MarketSeries } from './series.js';
import { DataError, quote } from './errors.js';
import { detectFormat, type DataFormat } from './detect.js';
import { loadYahooCsv } from './yahoo.js';
import { loadLongCsv } from './long.js';
import { loadInvestorBench } from './investorbench.js';
import { selectWindow, checkWindowBounds } from './window.js';

export interface LoadOptions {
  path: string;
  /** Default 'auto' (see detect.ts). */
  format?: 'auto' | DataFormat;
  /** Long format only: which ticker's rows to read (exact spelling). Required when the file holds several. */
  ticker?: string;
  /** CSV only: Open, High, Low, Close or Adj Close (default), case-insensitive. */
  priceColumn?: string;
  /** Inclusive window bounds, YYYY-MM-DD. */
  start?: string;
  end?: string;
  /** Name of the series; default the ticker, else the file name's stem upper-cased (msft.json -> MSFT). */
  asset?: string;
  /** Drop rows with bad values (counted in `warnings`) instead of failing. Default false. */
  dropInvalidRows?: boolean;
}

const FORMATS = ['auto', 'yahoo', 'long', 'investorbench'] as const;

export async function loadSeries(opts: LoadOptions): Promise<MarketSeries> {
  const path = opts.path;
  if (typeof path !== 'string' || path === '') throw new DataError({}, 'loadSeries needs a path');
  const requested = opts.format ?? 'auto';
  if (!(FORMATS as readonly string[]).includes(requested)) {
    throw new DataError({ file: path }, `format ${quote(requested)} is unknown; expected one of ${FORMATS.join(', ')}`);
  }
  if (opts.asset !== undefined && opts.asset.trim() === '') throw new DataError({ file: path }, 'the asset option is empty; leave it out to use the default name');
  checkWindowBounds(path, opts.start, opts.end); // before a possibly long read

  const format = requested === 'auto' ? await detectFormat(path) : requested;
  if (opts.ticker !== undefined && format !== 'long') {
    throw new DataError({ file: path }, `the ticker option applies only to long-format files, and this is read as ${format}; use asset to name the series`);
  }
  if (opts.priceColumn !== undefined && format === 'investorbench') {
    throw new DataError({ file: path }, 'the priceColumn option applies only to CSV files; INVESTOR-BENCH JSON has one price per date');
  }
  const common = { dropInvalidRows: opts.dropInvalidRows ?? false, ...(opts.asset !== undefined ? { asset: opts.asset } : {}) };
  const csv = { ...common, ...(opts.priceColumn !== undefined ? { priceColumn: opts.priceColumn } : {}) };
  let series: MarketSeries;
  switch (format) {
    case 'yahoo': series = await loadYahooCsv(path, csv); break;
    case 'long': series = await loadLongCsv(path, { ...csv, ...(opts.ticker !== undefined ? { ticker: opts.ticker } : {}) }); break;
    case 'investorbench': series = await loadInvestorBench(path, common); break;
  }
  // Also enforces at least 2 prices when no bounds are given.
  return selectWindow(series, opts.start, opts.end);
}
