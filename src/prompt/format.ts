/**
 * Number formatting for prompts. Every number goes through here so the text is stable: fixed decimals,
 * locale-independent (Number.prototype.toFixed), and no "-0.00".
 */

/** x with d decimals; a value that rounds to zero prints without a sign. */
export function fixed(x: number, d: number): string {
  if (!Number.isFinite(x)) throw new Error(`cannot format ${String(x)} for a prompt; expected a finite number`);
  const s = x.toFixed(d);
  return Number(s) === 0 ? (0).toFixed(d) : s;
}

/** x with d decimals and an explicit sign ("+1.20", "-0.35", "0.00"). */
export function signed(x: number, d: number): string {
  const s = fixed(x, d);
  return s.startsWith('-') || Number(s) === 0 ? s : `+${s}`;
}

/** A fraction as a signed percentage: 0.0123 -> "+1.23%". */
export function pct(x: number, d = 2): string {
  return `${signed(x * 100, d)}%`;
}

/** A fraction as an unsigned percentage: 0.0185 -> "1.85%". */
export function pctAbs(x: number, d = 2): string {
  return `${fixed(x * 100, d)}%`;
}

/**
 * Decimals for a price list: enough to show at least 4 significant digits of its smallest price, and
 * never fewer than 2 (so 205.24, 0.061234, 23456.78). Same list -> same decimals.
 */
export function priceDecimals(prices: readonly number[]): number {
  let min = Infinity;
  for (const p of prices) min = Math.min(min, Math.abs(p));
  if (!Number.isFinite(min) || min === 0) return 2;
  return Math.max(2, 3 - Math.floor(Math.log10(min)));
}
