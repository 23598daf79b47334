/**
 * Walk-forward windows: a long price history cut into successive (train, test) pairs, counted in
 * trading days (dates of the series), so that one evaluation becomes many out-of-sample ones.
 *
 * For `TRAIN:TEST:STEP` over the dates of the range [from, to] (indices lo..hi of the series):
 *   rolling   (default): window k trains on TRAIN dates starting at lo + k * STEP;
 *   expanding (--expanding): window k trains on every date from lo to lo + TRAIN - 1 + k * STEP;
 *   in both, window k is tested on the TEST dates right after its training window (the first test date
 *   is the next date of the series after the last training date, as in the paper's protocol, so the
 *   one return between the two is traded by no one).
 * Windows advance while a whole test window fits before `to` (or the data's end): a last, partial test
 * window is never made, so every window is tested on exactly TEST prices and windows compare with one
 * another. The dates after the last full window are left out (`unused` counts them).
 *
 * Nothing here reads prices: the windows depend only on the calendar. That no window sees data after
 * its own end is the job of what trains and tests on them (src/rl/data.ts's windows and the trading
 * environment's point-in-time observations).
 */
import { isIsoDate } from '../data/dates.js';

export interface WalkForwardSpec {
  /** Trading days (prices) in each training window (at least 2). */
  train: number;
  /** Trading days (prices) in each test window (at least 2: TEST - 1 daily returns). */
  test: number;
  /** Trading days between the starts of successive windows (at least 1). */
  step: number;
  /** Expanding training windows (all from the range's first date) instead of rolling ones. */
  expanding: boolean;
}

export interface DateRange { start: string; end: string }

/** A window's dates with their indices into the series' dates (inclusive). */
export interface IndexedRange extends DateRange { startIndex: number; endIndex: number }

export interface WalkForwardWindow {
  /** 0-based position in the walk. */
  index: number;
  train: IndexedRange;
  test: IndexedRange;
}

export interface WalkForwardBounds {
  /** First date of the range (inclusive; default the series' first date). */
  from?: string;
  /** Last date of the range (inclusive; default the series' last date). */
  to?: string;
  /** What the dates are of (e.g. the asset), for messages. */
  label?: string;
}

export interface WalkForwardPlanWindows {
  windows: WalkForwardWindow[];
  /** The dates of the range actually used. */
  range: IndexedRange;
  /** Dates of the range after the last window's test end (too few for another whole test window). */
  unused: number;
}

const SPEC = /^\s*(-?\d+)\s*:\s*(-?\d+)\s*:\s*(-?\d+)\s*$/;

/** `TRAIN:TEST:STEP` (e.g. 252:63:63) into a spec; errors name the flag and what was expected. */
export function parseWalkForwardSpec(raw: string, expanding = false, flag = '--walk-forward'): WalkForwardSpec {
  const m = SPEC.exec(raw);
  if (!m) throw new Error(`${flag}: expected TRAIN:TEST:STEP, three whole numbers of trading days such as 252:63:63, got ${JSON.stringify(raw)}`);
  const [train, test, step] = [Number(m[1]), Number(m[2]), Number(m[3])];
  for (const [name, v, min, why] of [
    ['TRAIN', train, 2, 'a training window needs at least 2 prices (one return)'],
    ['TEST', test, 2, 'a test window needs at least 2 prices (one return)'],
    ['STEP', step, 1, 'windows must advance'],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < min) throw new Error(`${flag} ${raw.trim()}: ${name} must be a whole number of trading days of at least ${min} (${why}), got ${v}`);
  }
  return { train, test, step, expanding };
}

/** The spec as written on the command line, e.g. "252:63:63" or "252:63:63 expanding". */
export function describeSpec(s: WalkForwardSpec): string {
  return `${s.train}:${s.test}:${s.step}${s.expanding ? ' expanding' : ''}`;
}

/** Check --from / --to (each a valid YYYY-MM-DD date, from not after to); errors name the flags. */
export function checkWalkForwardBounds(from?: string, to?: string): void {
  for (const [flag, v] of [['--from', from], ['--to', to]] as const) {
    if (v !== undefined && !isIsoDate(v)) throw new Error(`${flag}: expected a date YYYY-MM-DD, got ${JSON.stringify(v)}`);
  }
  if (from !== undefined && to !== undefined && from > to) throw new Error(`--from ${from} is after --to ${to}: the range of a walk-forward must run forward`);
}

/**
 * The windows of `spec` over the sorted `dates` restricted to [from, to]. A range that holds fewer than
 * TRAIN + TEST dates (not one whole window) is an error naming the flags and the range found.
 */
export function walkForwardWindows(dates: readonly string[], spec: WalkForwardSpec, bounds: WalkForwardBounds = {}): WalkForwardPlanWindows {
  checkWalkForwardBounds(bounds.from, bounds.to);
  let lo = 0, hi = dates.length - 1;
  if (bounds.from !== undefined) { lo = dates.findIndex((d) => d >= bounds.from!); if (lo < 0) lo = dates.length; }
  if (bounds.to !== undefined) { hi = -1; for (let i = dates.length - 1; i >= 0; i--) if (dates[i]! <= bounds.to) { hi = i; break; } }
  const days = Math.max(0, hi - lo + 1);
  const need = spec.train + spec.test;
  if (days < need) {
    const what = bounds.label ? `${bounds.label} has` : 'the data has';
    const range = bounds.from !== undefined || bounds.to !== undefined ? `between --from ${bounds.from ?? '(data start)'} and --to ${bounds.to ?? '(data end)'}` : 'in the data';
    const found = days > 0 ? ` (${dates[lo]}..${dates[hi]})` : dates.length > 0 ? ` (the data covers ${dates[0]}..${dates[dates.length - 1]})` : '';
    throw new Error(`--walk-forward ${describeSpec(spec).replace(' expanding', '')} needs at least ${need} trading days (TRAIN + TEST) ${range}; ${what} ${days}${found}`);
  }
  const windows: WalkForwardWindow[] = [];
  for (let k = 0; ; k++) {
    const trainStart = spec.expanding ? lo : lo + k * spec.step;
    const trainEnd = lo + spec.train - 1 + k * spec.step;
    const testStart = trainEnd + 1, testEnd = trainEnd + spec.test;
    if (testEnd > hi) break;
    windows.push({ index: k, train: indexed(dates, trainStart, trainEnd), test: indexed(dates, testStart, testEnd) });
  }
  const last = windows[windows.length - 1]!;
  return { windows, range: indexed(dates, lo, hi), unused: hi - last.test.endIndex };
}

function indexed(dates: readonly string[], startIndex: number, endIndex: number): IndexedRange {
  return { start: dates[startIndex]!, end: dates[endIndex]!, startIndex, endIndex };
}

/**
 * A window's folder name: its four bounds, so that a window is found again from its dates alone
 * (e.g. wf-2001-01-02_2001-12-31_2002-01-02_2002-04-03).
 */
export function windowKey(w: { train: DateRange; test: DateRange }): string {
  return `wf-${w.train.start}_${w.train.end}_${w.test.start}_${w.test.end}`;
}
