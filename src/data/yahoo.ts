/**
 * Yahoo Finance daily CSV: `Date,Open,High,Low,Close,Adj Close,Volume`, one row per trading day, dates
 * increasing. Prices come from `priceColumn` (default Adj Close; any of Open/High/Low/Close/Adj Close);
 * OHLCV is always filled (Open..Close as in the file, which Yahoo split-adjusts but does not
 * dividend-adjust). Extra columns are ignored. Yahoo marks a missing day with a row of `null`s: that is
 * an error naming the line unless `dropInvalidRows` is set (see CsvSeriesBuilder).
 */
import type { MarketSeries } from './series.js';
import { DataError } from './errors.js';
import { forEachCsvRecord, checkFieldCount } from './csv-records.js';
import { readHeader, resolvePriceColumn, type CsvHeader } from './columns.js';
import { CsvSeriesBuilder, csvSeriesColumns } from './csv-series-builder.js';
import { assetFromPath } from './file-source.js';

export interface CsvLoadOptions {
  priceColumn?: string;
  dropInvalidRows?: boolean;
  asset?: string;
}

export async function loadYahooCsv(path: string, opts: CsvLoadOptions = {}): Promise<MarketSeries> {
  const priceKey = resolvePriceColumn(opts.priceColumn, path);
  let header = null as CsvHeader | null;
  let builder = null as CsvSeriesBuilder | null;
  await forEachCsvRecord(path, (rec) => {
    if (header === null) {
      header = readHeader(path, rec.fields, rec.line);
      builder = new CsvSeriesBuilder(path, csvSeriesColumns(path, header, priceKey, 'Yahoo', []), opts.dropInvalidRows ?? false);
      return;
    }
    checkFieldCount(path, rec, header.names.length);
    builder!.add(rec.fields, rec.line);
  });
  if (builder === null) throw new DataError({ file: path }, 'the file is empty; expected a header line Date,Open,High,Low,Close,Adj Close,Volume');
  return builder.finish(opts.asset ?? assetFromPath(path), path);
}
