/**
 * Long-format CSV: one row per (date, ticker), header like
 * `date,ticker,open,high,low,close,adj_close,volume` (names case-insensitive; `adj_close`, `adj close`
 * and `Adj Close` all work). One ticker is selected with the `ticker` option, matched exactly (a
 * case-only mismatch is reported with the right spelling rather than guessed); it may be left out only
 * when the file holds a single ticker. Rows of a ticker may be grouped or interleaved with others; the
 * selected ticker's dates must increase. Rows of other tickers are checked for field count and a
 * non-empty ticker only, so that one ticker loads in about half a second from the 780k-row file.
 */
import type { MarketSeries } from './series.js';
import { DataError, quote } from './errors.js';
import { forEachCsvRecord, checkFieldCount } from './csv-records.js';
import { readHeader, resolvePriceColumn, type CsvHeader } from './columns.js';
import { CsvSeriesBuilder, csvSeriesColumns } from './csv-series-builder.js';
import type { CsvLoadOptions } from './yahoo.js';

export interface LongLoadOptions extends CsvLoadOptions {
  ticker?: string;
}

export async function loadLongCsv(path: string, opts: LongLoadOptions = {}): Promise<MarketSeries> {
  const priceKey = resolvePriceColumn(opts.priceColumn, path);
  if (opts.ticker !== undefined && opts.ticker.trim() === '') throw new DataError({ file: path }, 'the ticker option is empty; expected a ticker such as MSFT');
  const wanted = opts.ticker?.trim();
  let header = null as CsvHeader | null;
  let builder = null as CsvSeriesBuilder | null;
  let tickerIndex = -1;
  let chosen: string | undefined = wanted;
  const tickers = new Set<string>();
  await forEachCsvRecord(path, (rec) => {
    if (header === null) {
      header = readHeader(path, rec.fields, rec.line);
      builder = new CsvSeriesBuilder(path, csvSeriesColumns(path, header, priceKey, 'long-format', ['ticker']), opts.dropInvalidRows ?? false);
      tickerIndex = header.index.get('ticker')!;
      return;
    }
    checkFieldCount(path, rec, header.names.length);
    const t = rec.fields[tickerIndex]!.trim();
    if (t === '') throw new DataError({ file: path, line: rec.line }, `${header.names[tickerIndex]} is empty, expected a ticker`);
    tickers.add(t);
    chosen ??= t; // no ticker option: the file must hold just this one (checked below)
    if (t === chosen) builder!.add(rec.fields, rec.line);
  });
  if (builder === null) throw new DataError({ file: path }, 'the file is empty; expected a header line date,ticker,open,high,low,close,adj_close,volume');
  if (wanted === undefined && tickers.size > 1) {
    throw new DataError({ file: path }, `the file holds ${tickers.size} tickers (${sample(tickers)}); pass the ticker option to choose one`);
  }
  if (wanted !== undefined && !tickers.has(wanted)) {
    const sameLetters = [...tickers].find((t) => t.toUpperCase() === wanted.toUpperCase());
    const hint = sameLetters !== undefined ? `; did you mean ${quote(sameLetters)}?` : '';
    throw new DataError(
      { file: path },
      tickers.size === 0
        ? `ticker ${quote(wanted)} not found: the file has no data rows`
        : `ticker ${quote(wanted)} not found; the file holds ${tickers.size} ticker${tickers.size === 1 ? '' : 's'} (${sample(tickers)})${hint}`,
    );
  }
  return builder.finish(opts.asset ?? chosen ?? '', path, chosen !== undefined ? `rows for ticker ${chosen}` : 'data rows');
}

/** A few tickers for an error message, in sorted order. */
function sample(tickers: Set<string>, n = 8): string {
  const sorted = [...tickers].sort();
  return sorted.length <= n ? sorted.join(', ') : `${sorted.slice(0, n).join(', ')}, ... and ${sorted.length - n} more`;
}
