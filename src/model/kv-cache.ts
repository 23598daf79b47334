/**
 * Keys (after RoPE) and values of every token seen so far, per layer, for incremental decoding:
 * a forward over new tokens appends their rows, attention reads all rows.
 * k[l] and v[l] are [capacity, KVH*D]; rows 0 .. length-1 are valid.
 */
export class KVCache {
  k: Float32Array[];
  v: Float32Array[];
  length = 0;
  capacity = 0;

  constructor(readonly numLayers: number, readonly kvDim: number, capacity = 0) {
    this.k = Array.from({ length: numLayers }, () => new Float32Array(0));
    this.v = Array.from({ length: numLayers }, () => new Float32Array(0));
    this.ensure(capacity);
  }

  /** Make room for `rows` rows in total, keeping the valid rows (grows by at least 1.5x). */
  ensure(rows: number): void {
    if (rows <= this.capacity) return;
    const cap = Math.max(rows, Math.ceil(this.capacity * 1.5));
    const keep = this.length * this.kvDim;
    for (let l = 0; l < this.numLayers; l++) {
      const k = new Float32Array(cap * this.kvDim), v = new Float32Array(cap * this.kvDim);
      k.set(this.k[l]!.subarray(0, keep));
      v.set(this.v[l]!.subarray(0, keep));
      this.k[l] = k; this.v[l] = v;
    }
    this.capacity = cap;
  }

  /** Forget every row (the buffers are kept for reuse). */
  reset(): void {
    this.length = 0;
  }

  /** Bytes of the valid rows. */
  bytes(): number {
    return 2 * this.numLayers * this.length * this.kvDim * 4;
  }
}
