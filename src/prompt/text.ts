/**
 * Text helpers for prompt items: whitespace normalisation and cutting at word boundaries.
 */

/** The ellipsis appended to a text that was cut. One character (U+2026). */
export const ELLIPSIS = '\u2026';

/**
 * Collapse every run of whitespace (newlines included) to one space and trim. Filing summaries arrive
 * as multi-line markdown; one line per item keeps the prompt compact and the cut points well defined.
 */
export function normalizeWhitespace(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/**
 * Lengths of the proper prefixes of a whitespace-normalised text that end at a word boundary, ascending:
 * every index of a space (the prefix excludes that space). A text with no space has none: a single word
 * is never split.
 */
export function wordCutPoints(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 32 && i > 0) out.push(i);
  return out;
}

/** The text cut to its first `len` characters plus an ellipsis; `len` = text length gives the text unchanged. */
export function cutText(s: string, len: number): string {
  return len >= s.length ? s : s.slice(0, len) + ELLIPSIS;
}

/**
 * The longest word-boundary cut of `s` that is at most `maxChars` long before the ellipsis, or null when
 * not even the first word fits. The whole text is returned (length s.length) when it already fits.
 */
export function cutPointWithin(s: string, maxChars: number): number | null {
  if (s.length <= maxChars) return s.length;
  let best: number | null = null;
  for (const p of wordCutPoints(s)) {
    if (p <= maxChars) best = p;
    else break;
  }
  return best;
}
