/**
 * A bounded cache of a layer range's work on token prefixes (LlamaModel.forward with a PrefixCache).
 *
 * The frozen bottom layers never change, so for a prompt prefix their keys/values (per frozen
 * layer) and the boundary hidden states (the input of the first trainable layer) are fixed. Prompts
 * are laid out from the most stable part to the least (instructions first), so many prompts share
 * a long identical prefix: the prompt's segment ends (TokenSegments, e.g. the end of the instruction
 * segment) are where entries are stored, and an entry is reused by every later prompt that starts
 * with it. The same cache serves the trainable layers while their weights stay fixed (the reference
 * policy, one rollout): its owner clears it when they change. One cache serves one layer range.
 *
 * Lookup of the longest cached prefix is one pass over the ids: a rolling hash is taken at each
 * length that some entry has (few distinct lengths in practice), the key `length:hash` is looked
 * up, and a candidate is confirmed by comparing ids (so a hash collision can never return wrong
 * states). Eviction is least-recently-used once the bytes held exceed the limit; an entry larger
 * than the whole limit is not stored.
 */

/** Bytes in a MiB (cache sizes are set in MiB). */
export const MIB = 2 ** 20;

/**
 * Frozen-prefix cache size of a model built without one (LlamaModel, LlmPolicy, the model commands,
 * serve --model): 256 MiB. A training run's size is its config's prefix_cache_mb (src/rl/config.ts),
 * whose default is larger: it is sized for the day entries of a whole training window.
 */
export const DEFAULT_PREFIX_CACHE_MB = 256;

/** A layer range's state after reading `ids` (the frozen layers', or with an empty `hidden` the top layers'). */
export interface FrozenPrefix {
  ids: Int32Array;        // [P]
  k: Float32Array[];      // per layer of the range [P, KVD], after RoPE
  v: Float32Array[];      // per layer of the range [P, KVD]
  hidden: Float32Array;   // [P, C] the range's output rows (the boundary), or [0] when not kept
}

export interface PrefixCacheStats {
  entries: number;
  bytes: number;
  limitBytes: number;
  hits: number;
  misses: number;
  evictions: number;
  /** Entries refused because they alone exceed the limit. */
  rejected: number;
}

export function prefixBytes(e: FrozenPrefix): number {
  let n = e.ids.byteLength + e.hidden.byteLength;
  for (const a of e.k) n += a.byteLength;
  for (const a of e.v) n += a.byteLength;
  return n;
}

// Two independent 32-bit multiplicative hashes, stepped one id at a time.
const M1 = 0x01000193, M2 = 0x5bd1e995;
function step1(h: number, id: number): number { return Math.imul(h ^ id, M1) >>> 0; }
function step2(h: number, id: number): number { return (Math.imul(h, M2) + id + 0x9e3779b9) >>> 0; }

function keyOf(len: number, h1: number, h2: number): string {
  return `${len}:${h1.toString(36)}:${h2.toString(36)}`;
}

function idsMatch(a: Int32Array, ids: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== ids[i]) return false;
  return true;
}

export class PrefixCache {
  /** Map order is the LRU order: first = least recently used. */
  private readonly entries = new Map<string, { entry: FrozenPrefix; bytes: number }>();
  /** How many entries have each prefix length. */
  private readonly lengths = new Map<number, number>();
  private bytesHeld = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private rejected = 0;

  constructor(readonly limitBytes: number) {
    if (!Number.isFinite(limitBytes) || limitBytes < 0) {
      throw new Error(`prefix cache limit must be a non-negative number of bytes, got ${limitBytes}`);
    }
  }

  /**
   * The longest cached prefix of ids[0 .. maxLen-1], or undefined. Counts a hit or a miss and
   * marks the entry as recently used.
   */
  lookup(ids: ArrayLike<number>, maxLen = ids.length): FrozenPrefix | undefined {
    const found = this.find(ids, maxLen, false);
    if (found) this.hits++; else this.misses++;
    return found;
  }

  /** The entry for exactly ids[0 .. len-1], without counting a hit or miss. */
  peek(ids: ArrayLike<number>, len: number): FrozenPrefix | undefined {
    return this.find(ids, len, true);
  }

  private find(ids: ArrayLike<number>, maxLen: number, exact: boolean): FrozenPrefix | undefined {
    if (this.entries.size === 0) return undefined;
    let h1 = 0x811c9dc5, h2 = 0;
    let best: string | undefined;
    for (let i = 0; i < maxLen; i++) {
      h1 = step1(h1, ids[i]!); h2 = step2(h2, ids[i]!);
      const len = i + 1;
      if (exact && len !== maxLen) continue;
      if (!this.lengths.has(len)) continue;
      const key = keyOf(len, h1, h2);
      const hit = this.entries.get(key);
      if (hit && idsMatch(hit.entry.ids, ids)) best = key;
    }
    if (best === undefined) return undefined;
    const slot = this.entries.get(best)!;
    this.entries.delete(best); this.entries.set(best, slot); // most recently used
    return slot.entry;
  }

  /** Store an entry (replacing one with the same ids), then evict down to the limit. */
  put(entry: FrozenPrefix): void {
    const bytes = prefixBytes(entry);
    if (bytes > this.limitBytes) { this.rejected++; return; }
    let h1 = 0x811c9dc5, h2 = 0;
    for (let i = 0; i < entry.ids.length; i++) { h1 = step1(h1, entry.ids[i]!); h2 = step2(h2, entry.ids[i]!); }
    const key = keyOf(entry.ids.length, h1, h2);
    if (this.entries.has(key)) this.remove(key);
    this.entries.set(key, { entry, bytes });
    this.bytesHeld += bytes;
    this.lengths.set(entry.ids.length, (this.lengths.get(entry.ids.length) ?? 0) + 1);
    while (this.bytesHeld > this.limitBytes) {
      const oldest = this.entries.keys().next().value as string;
      this.remove(oldest);
      this.evictions++;
    }
  }

  private remove(key: string): void {
    const slot = this.entries.get(key)!;
    this.entries.delete(key);
    this.bytesHeld -= slot.bytes;
    const len = slot.entry.ids.length;
    const c = this.lengths.get(len)! - 1;
    if (c === 0) this.lengths.delete(len); else this.lengths.set(len, c);
  }

  clear(): void {
    this.entries.clear(); this.lengths.clear(); this.bytesHeld = 0;
  }

  stats(): PrefixCacheStats {
    return {
      entries: this.entries.size, bytes: this.bytesHeld, limitBytes: this.limitBytes,
      hits: this.hits, misses: this.misses, evictions: this.evictions, rejected: this.rejected,
    };
  }
}
