/**
 * Strict parsing of the numbers in market files. `Number()` alone would read '' as 0 and '0x10' as 16,
 * so a decimal pattern is checked first; each failure is described in words for the error message.
 */
import { quote } from './errors.js';

const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

export type Checked = { ok: true; value: number } | { ok: false; problem: string };

/** What kind of number a field must be: prices are positive, volumes are non-negative. */
export type ValueKind = 'price' | 'volume';

/** Parse a CSV field. `field` is the column name as written in the file, for the message. */
export function checkCsvNumber(raw: string, field: string, kind: ValueKind): Checked {
  const s = raw.trim();
  if (s === '') return { ok: false, problem: `${field} is empty, expected ${expected(kind)}` };
  if (s.toLowerCase() === 'null') {
    return { ok: false, problem: `${field} is 'null' (a missing value), expected ${expected(kind)}` };
  }
  if (!DECIMAL.test(s)) {
    const what = /^[+-]?(inf|infinity)$/i.test(s) ? 'infinite' : /^[+-]?nan$/i.test(s) ? 'NaN' : 'not a number';
    return { ok: false, problem: `${field} is ${quote(s)} (${what}), expected ${expected(kind)}` };
  }
  return checkNumber(Number(s), field, kind, s);
}

/** Check an already-parsed value (from JSON). */
export function checkJsonNumber(value: unknown, field: string, kind: ValueKind): Checked {
  if (value === undefined) return { ok: false, problem: `${field} is missing, expected ${expected(kind)}` };
  if (value === null) return { ok: false, problem: `${field} is null, expected ${expected(kind)}` };
  if (typeof value !== 'number') {
    return { ok: false, problem: `${field} is ${quote(value)} (a ${typeof value}), expected ${expected(kind)}` };
  }
  return checkNumber(value, field, kind, String(value));
}

function checkNumber(v: number, field: string, kind: ValueKind, shown: string): Checked {
  // 1e999 parses to Infinity: a decimal that overflows is still not a usable price.
  if (!Number.isFinite(v)) return { ok: false, problem: `${field} is ${quote(shown)} (not finite), expected ${expected(kind)}` };
  if (kind === 'price' && v <= 0) return { ok: false, problem: `${field} is ${shown}, expected ${expected(kind)}` };
  if (kind === 'volume' && v < 0) return { ok: false, problem: `${field} is ${shown}, expected ${expected(kind)}` };
  return { ok: true, value: v };
}

function expected(kind: ValueKind): string {
  return kind === 'price' ? 'a positive finite number' : 'a non-negative finite number';
}
