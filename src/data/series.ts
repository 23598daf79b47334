/**
 * The one in-memory market series every loader produces and every consumer reads.
 * Dates are ISO `YYYY-MM-DD`, strictly increasing; prices are positive and finite.
 */
export interface TextItem {
  /** What kind of text: a news line, a 10-K or 10-Q summary. */
  kind: 'news' | '10k' | '10q';
  text: string;
}

export interface Ohlcv {
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
}

export interface MarketSeries {
  /** Ticker or name, e.g. "MSFT" or "synthetic". */
  asset: string;
  /** Where it came from (file path or "synthetic:seed=1"), for messages and run records. */
  source: string;
  /** N dates, strictly increasing, ISO YYYY-MM-DD. */
  dates: string[];
  /** N prices used for returns (e.g. Adj Close). */
  prices: Float64Array;
  /** Optional OHLCV, each of length N. */
  ohlcv?: Ohlcv;
  /** Optional text items per date (length N; empty array where a day has none). */
  text?: TextItem[][];
  /**
   * Optional notes about what a loader or window did that the caller should know, e.g. rows dropped
   * under `dropInvalidRows` (one entry per dropped row, naming file and line) or a window that reaches
   * past the data. Absent or empty when there is nothing to say.
   */
  warnings?: string[];
}
