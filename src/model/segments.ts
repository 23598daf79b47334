/**
 * A prompt as the decoder sees it: token ids and the ends of its segments.
 *
 * A prompt is laid out from its most stable part to its least, so that its first segments recur in
 * later prompts and their layer outputs can be cached (LlamaModel.forward with a PrefixCache). The
 * decoder knows nothing of what a segment means (the trading policy names them: src/rl/llm-policy.ts);
 * it only reads where each ends.
 *
 *   ids  [T]                         token ids
 *   ends [E]  0 < e_1 < .. < e_E <= T  segment i covers ids[e_{i-1} .. e_i - 1] (e_0 = 0); the last
 *                                     segment covers ids[e_E .. T-1] (empty when e_E = T)
 */
export class TokenSegments {
  /** Validated once, here: any TokenSegments holds strictly increasing integer ends in 1..T. */
  private constructor(readonly ids: ArrayLike<number>, readonly ends: readonly number[]) {}

  /** `ids` (not copied: keep them unchanged) split at `ends`. */
  static of(ids: ArrayLike<number>, ends: readonly number[] = []): TokenSegments {
    const T = ids.length;
    let prev = 0;
    for (const e of ends) {
      if (!Number.isInteger(e) || e < 1 || e > T) throw new Error(`a segment end must be an integer in 1..${T} (the prompt length), got ${e}`);
      if (e <= prev) throw new Error(`segment ends must be strictly increasing, got ${ends.join(', ')}`);
      prev = e;
    }
    return new TokenSegments(ids, Object.freeze([...ends]));
  }
}
