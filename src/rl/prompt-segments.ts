/**
 * The segments of an LLM policy's prompt, named, from the most stable to the least:
 *
 *   system   the system turn (the instructions): the same in every prompt
 *   market   the day's market section: the same whenever that day comes back, in any episode
 *   account  the account and the answer prefix: new at every step
 *
 * Each segment starts where the one before it ends; the last always ends at the prompt's length T.
 * Their ends are token positions (LlmPolicy.encodeText finds them from the text's character marks),
 * and every cache of the training loop is keyed by a prefix that ends at one of them
 * (docs/training.md#prompt-segments-and-caches). A segment whose end is not found in the tokens (the
 * tokenizer merged across it) is part of the next one; without a system turn nothing before the
 * account is a segment of its own.
 *
 * The decoder only reads the ends (TokenSegments): the names stay here, with the trading policy.
 */
import { TokenSegments } from '../model/segments.js';

export type PromptSegmentName = 'system' | 'market' | 'account';

/** One segment of a prompt's tokens: from the end of the one before it (0 for the first) to `end`. */
export interface PromptSegment {
  readonly name: PromptSegmentName;
  readonly end: number;
}

/** The names of the segments that character marks end, in their order (encodeText's `marks`). */
export const MARKED_SEGMENTS = ['system', 'market'] as const;

/**
 * The segments of a prompt of T tokens, from the token ends found for the marked segments in
 * MARKED_SEGMENTS order (0: not found). The system turn is the prefix every prompt shares: when its
 * end is not found, no later end is used either.
 */
export function promptSegments(T: number, found: readonly number[]): PromptSegment[] {
  if (found.length > MARKED_SEGMENTS.length) throw new Error(`a prompt has at most ${MARKED_SEGMENTS.length} marked segments (${MARKED_SEGMENTS.join(', ')}), got ${found.length} marks`);
  const out: PromptSegment[] = [];
  for (const [k, end] of found.entries()) {
    if (end === 0 && k === 0) break;
    if (end > (out.at(-1)?.end ?? 0) && end < T) out.push({ name: MARKED_SEGMENTS[k]!, end });
  }
  out.push({ name: 'account', end: T });
  return out;
}

/** Where the segment `name` ends, or undefined when the prompt has no such segment of its own. */
export function segmentEnd(segments: readonly PromptSegment[], name: PromptSegmentName): number | undefined {
  return segments.find((s) => s.name === name)?.end;
}

/** The ends of every segment but the last (the prefixes that caches key on), ascending. */
export function segmentEnds(segments: readonly PromptSegment[]): number[] {
  return segments.slice(0, -1).map((s) => s.end);
}

/**
 * The decoder's view of the prompt: its ids split at the ends of the segments before the last, up to
 * and including the segment `through` (default: all of them).
 */
export function modelSegments(ids: Int32Array, segments: readonly PromptSegment[], through?: PromptSegmentName): TokenSegments {
  const ends: number[] = [];
  for (const s of segments.slice(0, -1)) {
    ends.push(s.end);
    if (s.name === through) break;
  }
  return TokenSegments.of(ids, ends);
}
