/**
 * Trading metrics, exactly as the benchmark (and DESIGN.md) defines them. Over a window of N prices
 * there are N - 1 daily returns r_0 .. r_{N-2} (log returns of the strategy, costs included):
 *
 *   CR  = sum_t r_t                                   (cumulative log return)
 *   AV  = std(r, ddof = 1) * sqrt(A_vol)              (annualised volatility)
 *   SR  = (CR / (N / A_sr)) / AV                      (Sharpe ratio, zero risk-free rate)
 *   MDD = max_k (peak_k - e_k) / peak_k,  e_0 = 1, e_k = prod_{t<k} (1 + r_t), peak_k = max_{j<=k} e_j
 *
 * Note that SR divides by N (prices), not N - 1 (returns): that is the benchmark's formula, kept as is.
 * Annualisation: stocks A_vol = A_sr = 252; the benchmark's crypto runs used A_vol = 365 with A_sr = 252.
 *
 * Edge cases (defined here, so that no metric is ever NaN or Infinity):
 * - fewer than 2 returns: the sample standard deviation is undefined; AV = 0.
 * - all returns identical (a flat series, or a strategy that never holds a position): AV = 0 exactly
 *   (tested by equality, not by a tolerance, so rounding in the mean cannot make a tiny AV).
 * - AV = 0: SR = 0 (there is no risk to scale by; 0 rather than NaN / Infinity).
 * - MDD = 0 when the equity never falls below its running peak. MDD is a positive fraction; if some
 *   r_t <= -1 (a log return below -100%) the product can reach or cross zero and MDD can be >= 1.
 *
 * Further metrics:
 * - win rate: among the days with a nonzero position, the fraction with r_t > 0; 0 when the strategy
 *   never holds a position (daysInMarket tells that case apart).
 * - trades: the number of days on which the position differs from the previous day's, counting the
 *   first day against the starting position (flat, 0): Buy & Hold makes 1 trade.
 * - turnover: sum_t |position_t - position_{t-1}| / (N - 1), with the same flat start.
 */

export interface Annualization {
  /** Periods per year for the volatility (A_vol). */
  vol: number;
  /** Periods per year for the Sharpe ratio's return (A_sr). */
  sr: number;
}

export const ANNUALIZATIONS = {
  stock: { vol: 252, sr: 252 },
  crypto: { vol: 365, sr: 252 },
} as const satisfies Record<string, Annualization>;

/** Parse `stock`, `crypto` or `VOL,SR` (two positive numbers, e.g. `365,252`). */
export function parseAnnualization(spec: string): Annualization {
  const s = spec.trim();
  if (s === 'stock' || s === 'crypto') return { ...ANNUALIZATIONS[s] };
  const parts = s.split(',');
  const expected = `expected stock, crypto or VOL,SR (two positive numbers, e.g. 365,252), got ${JSON.stringify(spec)}`;
  if (parts.length !== 2) throw new Error(`annualization: ${expected}`);
  const [vol, sr] = parts.map((x) => (x.trim() === '' ? Number.NaN : Number(x)));
  if (!(vol! > 0) || !(sr! > 0) || !Number.isFinite(vol!) || !Number.isFinite(sr!)) throw new Error(`annualization: ${expected}`);
  return { vol: vol!, sr: sr! };
}

export interface Metrics {
  /** CR as a fraction (log return; x100 for percent). */
  cumulativeReturn: number;
  sharpeRatio: number;
  /** AV as a fraction. */
  annualizedVolatility: number;
  /** MDD as a positive fraction. */
  maxDrawdown: number;
  /** Fraction of in-market days with a positive return. */
  winRate: number;
  /** Number of position changes (the first day counted against a flat start). */
  trades: number;
  /** Mean absolute position change per day. */
  turnover: number;
  /** Days with a nonzero position. */
  daysInMarket: number;
  /** N - 1: the number of daily returns. */
  days: number;
}

export function cumulativeReturn(r: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < r.length; i++) s += r[i]!;
  return s;
}

/** Sample standard deviation (ddof 1), with the edge cases of the module comment (0 for < 2 or identical values). */
export function sampleStd(r: ArrayLike<number>): number {
  const n = r.length;
  if (n < 2) return 0;
  let allEqual = true;
  for (let i = 1; i < n; i++) if (r[i] !== r[0]) { allEqual = false; break; }
  if (allEqual) return 0;
  const mean = cumulativeReturn(r) / n;
  let ss = 0;
  for (let i = 0; i < n; i++) { const d = r[i]! - mean; ss += d * d; }
  return Math.sqrt(ss / (n - 1));
}

export function annualizedVolatility(r: ArrayLike<number>, ann: Annualization): number {
  return sampleStd(r) * Math.sqrt(ann.vol);
}

/** SR = (CR / (N / A_sr)) / AV with N = r.length + 1 prices; 0 when AV = 0. */
export function sharpeRatio(r: ArrayLike<number>, ann: Annualization): number {
  const av = annualizedVolatility(r, ann);
  if (av === 0) return 0;
  const nPrices = r.length + 1;
  return (cumulativeReturn(r) / (nPrices / ann.sr)) / av;
}

export function maxDrawdown(r: ArrayLike<number>): number {
  let e = 1, peak = 1, mdd = 0;
  for (let i = 0; i < r.length; i++) {
    e *= 1 + r[i]!;
    if (e > peak) peak = e;
    const dd = (peak - e) / peak;
    if (dd > mdd) mdd = dd;
  }
  return mdd;
}

export function winRate(r: ArrayLike<number>, positions: ArrayLike<number>): number {
  let inMarket = 0, wins = 0;
  for (let i = 0; i < r.length; i++) {
    if (positions[i] !== 0) { inMarket++; if (r[i]! > 0) wins++; }
  }
  return inMarket === 0 ? 0 : wins / inMarket;
}

export function countTrades(positions: ArrayLike<number>, initialPosition = 0): number {
  let prev = initialPosition, n = 0;
  for (let i = 0; i < positions.length; i++) { if (positions[i] !== prev) n++; prev = positions[i]!; }
  return n;
}

export function turnover(positions: ArrayLike<number>, initialPosition = 0): number {
  if (positions.length === 0) return 0;
  let prev = initialPosition, s = 0;
  for (let i = 0; i < positions.length; i++) { s += Math.abs(positions[i]! - prev); prev = positions[i]!; }
  return s / positions.length;
}

/**
 * All metrics for one strategy: `returns` (N - 1 daily returns) and the `positions` held on those
 * days (same length). Inputs must be finite; a mismatch or a non-finite value is an error naming the day.
 */
export function computeMetrics(returns: ArrayLike<number>, positions: ArrayLike<number>, ann: Annualization = ANNUALIZATIONS.stock): Metrics {
  if (returns.length !== positions.length) {
    throw new Error(`computeMetrics: ${returns.length} returns but ${positions.length} positions; expected one position per return`);
  }
  if (!(ann.vol > 0) || !(ann.sr > 0) || !Number.isFinite(ann.vol) || !Number.isFinite(ann.sr)) {
    throw new Error(`computeMetrics: annualization must be two positive finite numbers, got vol=${ann.vol}, sr=${ann.sr}`);
  }
  let daysInMarket = 0;
  for (let i = 0; i < returns.length; i++) {
    if (!Number.isFinite(returns[i]!)) throw new Error(`computeMetrics: return ${i} is ${returns[i]}; expected a finite number`);
    if (!Number.isFinite(positions[i]!)) throw new Error(`computeMetrics: position ${i} is ${positions[i]}; expected a finite number`);
    if (positions[i] !== 0) daysInMarket++;
  }
  return {
    cumulativeReturn: cumulativeReturn(returns),
    sharpeRatio: sharpeRatio(returns, ann),
    annualizedVolatility: annualizedVolatility(returns, ann),
    maxDrawdown: maxDrawdown(returns),
    winRate: winRate(returns, positions),
    trades: countTrades(positions),
    turnover: turnover(positions),
    daysInMarket,
    days: returns.length,
  };
}
