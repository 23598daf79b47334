/**
 * Choosing the next token from a full-vocabulary logit vector: greedy (temperature 0) or sampled
 * from softmax(logits / temperature), optionally restricted to the top-k logits, with a seeded Rng.
 */
import type { Rng } from '../util/rng.js';

export interface SamplingOptions {
  /** 0 = greedy (argmax, first index on ties). Default 0. */
  temperature?: number;
  /** Keep only the k largest logits before sampling; 0 = all. Default 0. */
  topK?: number;
  /** Required when temperature > 0. */
  rng?: Rng;
}

/** Index of the largest value (ties -> the first index). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

export function validateSampling(o: SamplingOptions): void {
  const t = o.temperature ?? 0, k = o.topK ?? 0;
  if (!Number.isFinite(t) || t < 0) throw new Error(`temperature must be a finite number >= 0, got ${t}`);
  if (!Number.isInteger(k) || k < 0) throw new Error(`topK must be an integer >= 0, got ${k}`);
  if (t > 0 && o.rng === undefined) throw new Error('sampling with temperature > 0 needs a seeded Rng');
}

export function sampleToken(logits: Float32Array, o: SamplingOptions): number {
  validateSampling(o);
  const t = o.temperature ?? 0;
  if (t === 0) return argmax(logits);
  const V = logits.length;
  const k = o.topK && o.topK < V ? o.topK : V;
  // Candidate indices: all, or the k largest (ties broken by lower index, for determinism).
  let idx: number[];
  if (k === V) idx = Array.from({ length: V }, (_, i) => i);
  else idx = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, k);
  let max = -Infinity;
  for (const i of idx) if (logits[i]! > max) max = logits[i]!;
  const w = new Float64Array(idx.length);
  for (let j = 0; j < idx.length; j++) w[j] = Math.exp((logits[idx[j]!]! - max) / t);
  return idx[o.rng!.categorical(w)]!;
}
