/**
 * Rotary position tables, computed as Hugging Face's LlamaRotaryEmbedding computes them (float32):
 * inv_freq_i = 1 / theta^(2i/D), angle = p * inv_freq_i rounded to float32, cos/sin of that angle.
 * Mirroring the float32 rounding of the angle keeps long positions identical to HF (at p = 500 a
 * float64 angle would differ by ~3e-5 rad).
 * Layout [positions, D/2]: the backend's rope() pairs dimension i with i + D/2 (rotate_half).
 */
const f32 = Math.fround;

export class RopeTables {
  cos = new Float32Array(0);
  sin = new Float32Array(0);
  /** Number of positions the tables cover. */
  positions = 0;
  private readonly invFreq: Float32Array;

  constructor(readonly headDim: number, readonly theta: number, readonly maxPositions: number) {
    if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) {
      throw new Error(`RoPE needs an even positive head_dim, got ${headDim}`);
    }
    const half = headDim / 2;
    this.invFreq = new Float32Array(half);
    for (let i = 0; i < half; i++) {
      // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all float32
      this.invFreq[i] = f32(1 / f32(Math.pow(theta, f32((2 * i) / headDim))));
    }
  }

  /** Grow the tables to cover positions 0 .. n-1 (doubling, capped at max_position_embeddings). */
  ensure(n: number): void {
    if (n <= this.positions) return;
    if (n > this.maxPositions) {
      throw new Error(`sequence needs ${n} positions but max_position_embeddings is ${this.maxPositions}`);
    }
    const size = Math.min(this.maxPositions, Math.max(n, 2 * this.positions, 64));
    const half = this.headDim / 2;
    const cos = new Float32Array(size * half), sin = new Float32Array(size * half);
    for (let p = 0; p < size; p++) {
      for (let i = 0; i < half; i++) {
        const angle = f32(p * this.invFreq[i]!);
        cos[p * half + i] = Math.cos(angle);
        sin[p * half + i] = Math.sin(angle);
      }
    }
    this.cos = cos; this.sin = sin; this.positions = size;
  }
}
