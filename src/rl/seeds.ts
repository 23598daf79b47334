/**
 * Independent random streams derived from one run seed. Each consumer (weight init, action sampling,
 * environment starts, minibatch shuffling) gets its own Rng, so that adding draws to one stream never
 * shifts another, and nearby run seeds do not share streams (seed 1's sampling stream is not seed 2's
 * init stream, as it would be with seed + k offsets).
 */
import { Rng } from '../util/rng.js';

/** A 32-bit seed from (seed, label): FNV-1a over the decimal seed, a separator and the label. */
export function deriveSeed(seed: number, label: string): number {
  if (!Number.isInteger(seed)) throw new Error(`deriveSeed: seed must be an integer, got ${seed}`);
  let h = 0x811c9dc5;
  for (const ch of `${seed}/${label}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function streamRng(seed: number, label: string): Rng {
  return new Rng(deriveSeed(seed, label));
}
