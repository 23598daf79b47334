/**
 * Named float32 work buffers that grow on demand and are reused across calls, so that hot paths
 * allocate nothing once warm. get() returns an exact-size view of the named buffer; the content of
 * a view is only valid until the next get() of the same name with a larger size.
 */
export class BufferPool {
  private readonly bufs = new Map<string, Float32Array>();

  /**
   * `growth`: how much larger than its old size a buffer that must grow becomes (default 1.5, so that
   * slowly rising sizes reallocate rarely); 1 = exactly the size asked for, where the bytes held are
   * budgeted (the rollout's kept activations).
   */
  constructor(private readonly growth = 1.5) {}

  get(name: string, size: number): Float32Array {
    let b = this.bufs.get(name);
    if (b === undefined || b.length < size) {
      b = new Float32Array(Math.max(size, Math.ceil((b?.length ?? 0) * this.growth)));
      this.bufs.set(name, b);
    }
    return b.subarray(0, size);
  }

  /** Bytes held by all buffers. */
  bytes(): number {
    let n = 0;
    for (const b of this.bufs.values()) n += b.byteLength;
    return n;
  }
}
