/**
 * CSV header handling shared by the Yahoo and long-format loaders. Column names match
 * case-insensitively with spaces and underscores treated alike, so `Adj Close`, `adj close` and
 * `adj_close` are the same column.
 */
import { DataError, quote } from './errors.js';

/** The price columns a series can take its prices from (normalized names). */
export const PRICE_COLUMNS = ['open', 'high', 'low', 'close', 'adj_close'] as const;
export type PriceColumn = (typeof PRICE_COLUMNS)[number];

/** How each normalized column is written in error messages. */
const DISPLAY: Record<string, string> = {
  date: 'Date', ticker: 'ticker', open: 'Open', high: 'High', low: 'Low', close: 'Close', adj_close: 'Adj Close', volume: 'Volume',
};

export function normalizeColumnName(name: string): string {
  return name.trim().toLowerCase().replace(/[\s_]+/g, '_');
}

export function displayColumn(normalized: string): string {
  return DISPLAY[normalized] ?? normalized;
}

export interface CsvHeader {
  /** Names as written in the file. */
  names: string[];
  /** Normalized name -> field index. */
  index: Map<string, number>;
  /** The line the header is on (1 unless blank lines come first). */
  line: number;
}

export function readHeader(path: string, fields: string[], line: number): CsvHeader {
  const index = new Map<string, number>();
  fields.forEach((name, i) => {
    const key = normalizeColumnName(name);
    if (key === '') return; // an unnamed column (e.g. a trailing comma) is simply not used
    const prev = index.get(key);
    if (prev !== undefined) {
      throw new DataError({ file: path, line }, `the header names column ${quote(name.trim())} twice (columns ${prev + 1} and ${i + 1})`);
    }
    index.set(key, i);
  });
  return { names: fields.map((f) => f.trim()), index, line };
}

/** Field indexes of the needed (normalized) columns; the error names every missing one. */
export function requireColumns(path: string, header: CsvHeader, needed: readonly string[], formatName: string, hint = ''): number[] {
  const missing = needed.filter((c) => !header.index.has(c));
  if (missing.length > 0) {
    throw new DataError(
      { file: path, line: header.line },
      `missing column${missing.length === 1 ? '' : 's'} ${missing.map(displayColumn).join(', ')} ` +
        `(a ${formatName} file needs ${needed.map(displayColumn).join(', ')}; the header is ${quote(header.names.join(','))})${hint}`,
    );
  }
  return needed.map((c) => header.index.get(c)!);
}

/** The normalized price column for a `priceColumn` option (default Adj Close). */
export function resolvePriceColumn(priceColumn: string | undefined, path: string): PriceColumn {
  if (priceColumn === undefined) return 'adj_close';
  const key = normalizeColumnName(priceColumn);
  if (!(PRICE_COLUMNS as readonly string[]).includes(key)) {
    throw new DataError(
      { file: path },
      `priceColumn ${quote(priceColumn)} is not a price column; expected one of ${PRICE_COLUMNS.map(displayColumn).join(', ')}`,
    );
  }
  return key as PriceColumn;
}
