/**
 * Turns validated CSV rows into a MarketSeries: checks each row's date (valid, after the previous one)
 * and values (prices positive and finite, volume non-negative), and either fails on the first bad row
 * or, with `dropInvalidRows`, drops rows whose values are bad and records one warning per dropped row.
 * Date problems (unparseable, duplicate, out of order) always fail: they mean the file is not what it
 * claims to be, not that one day is missing.
 */
import type { MarketSeries } from './series.js';
import { DataError, describeWhere, quote } from './errors.js';
import { isIsoDate } from './dates.js';
import { checkCsvNumber, type ValueKind } from './values.js';
import { requireColumns, displayColumn, type CsvHeader } from './columns.js';

export interface ValueColumn {
  /** Field index in the record. */
  index: number;
  /** Column name as written in the header, for messages. */
  name: string;
  kind: ValueKind;
}

export interface CsvSeriesColumns {
  date: { index: number; name: string };
  price: ValueColumn;
  /** When present, OHLCV is filled. */
  ohlcv?: { open: ValueColumn; high: ValueColumn; low: ValueColumn; close: ValueColumn; volume: ValueColumn };
}

export class CsvSeriesBuilder {
  private readonly dates: string[] = [];
  private readonly prices: number[] = [];
  private readonly ohlcv: number[][] = [[], [], [], [], []];
  private readonly warnings: string[] = [];
  private prevDate: string | null = null;
  private prevLine = 0;
  private rows = 0;

  constructor(
    private readonly file: string,
    private readonly cols: CsvSeriesColumns,
    private readonly dropInvalidRows: boolean,
  ) {}

  /** Add one data record (field count already checked). */
  add(fields: string[], line: number): void {
    this.rows++;
    const rawDate = fields[this.cols.date.index]!.trim();
    if (!isIsoDate(rawDate)) {
      throw new DataError({ file: this.file, line }, `${this.cols.date.name} is ${quote(rawDate)}, expected a date YYYY-MM-DD`);
    }
    if (this.prevDate !== null && rawDate <= this.prevDate) {
      throw new DataError(
        { file: this.file, line },
        rawDate === this.prevDate
          ? `duplicate date ${rawDate} (also on line ${this.prevLine})`
          : `date ${rawDate} comes after ${this.prevDate} (line ${this.prevLine}); expected dates in increasing order`,
      );
    }
    this.prevDate = rawDate;
    this.prevLine = line;

    const problems = new Map<string, string>(); // column name -> problem; the price column may also be an OHLC column
    const read = (c: ValueColumn): number => {
      const r = checkCsvNumber(fields[c.index]!, c.name, c.kind);
      if (r.ok) return r.value;
      problems.set(c.name, r.problem);
      return NaN;
    };
    const price = read(this.cols.price);
    const o = this.cols.ohlcv;
    const values = o ? [read(o.open), read(o.high), read(o.low), read(o.close), read(o.volume)] : [];
    if (problems.size > 0) {
      const [first, ...others] = [...problems];
      const text = `${first![1]}${others.length > 0 ? `; also bad: ${others.map(([name]) => name).join(', ')}` : ''}`;
      if (!this.dropInvalidRows) throw new DataError({ file: this.file, line, date: rawDate }, text);
      this.warnings.push(`${describeWhere({ file: this.file, line, date: rawDate })}row dropped (dropInvalidRows): ${text}`);
      return;
    }
    this.dates.push(rawDate);
    this.prices.push(price);
    values.forEach((v, k) => this.ohlcv[k]!.push(v));
  }

  finish(asset: string, source: string, what = 'data rows'): MarketSeries {
    if (this.dates.length === 0) {
      const why = this.rows === 0 ? `no ${what}` : `all ${this.rows} ${what} were dropped as invalid`;
      throw new DataError({ file: this.file }, `empty series: ${why}; expected at least 2 prices`);
    }
    const series: MarketSeries = { asset, source, dates: this.dates, prices: Float64Array.from(this.prices) };
    if (this.cols.ohlcv) {
      const [open, high, low, close, volume] = this.ohlcv.map((a) => Float64Array.from(a)) as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
      series.ohlcv = { open, high, low, close, volume };
    }
    if (this.warnings.length > 0) series.warnings = this.warnings;
    return series;
  }
}

/**
 * The columns of a Yahoo or long-format file: date, `extra` (the long format's ticker), Open, High, Low,
 * Close, the price column when it is not one of those (Adj Close), Volume. All must be present.
 */
export function csvSeriesColumns(path: string, header: CsvHeader, priceKey: string, formatName: string, extra: string[]): CsvSeriesColumns {
  const needed = ['date', ...extra, 'open', 'high', 'low', 'close', ...(priceKey === 'adj_close' ? ['adj_close'] : []), 'volume'];
  const hint = priceKey === 'adj_close' && !header.index.has('adj_close') && header.index.has('close')
    ? "; to use Close as the price, pass priceColumn 'Close'"
    : '';
  requireColumns(path, header, needed, formatName, hint);
  const col = (key: string, kind: 'price' | 'volume'): ValueColumn => {
    const index = header.index.get(key)!;
    return { index, name: header.names[index] || displayColumn(key), kind };
  };
  const dateIndex = header.index.get('date')!;
  return {
    date: { index: dateIndex, name: header.names[dateIndex]! },
    price: col(priceKey, 'price'),
    ohlcv: { open: col('open', 'price'), high: col('high', 'price'), low: col('low', 'price'), close: col('close', 'price'), volume: col('volume', 'volume') },
  };
}
