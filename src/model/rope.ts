/**
 * Rotary position tables, computed as Hugging Face's rotary embedding computes them (float32):
 * inv_freq_i = 1 / theta^(2i/D), rescaled when the config has rope_scaling (ropeInvFreq), then
 * angle = p * inv_freq_i rounded to float32, cos/sin of that angle. Mirroring the float32 rounding of
 * the angle keeps long positions identical to HF (at p = 500 a float64 angle would differ by ~3e-5 rad).
 * Layout [positions, D/2]: the backend's rope() pairs dimension i with i + D/2 (rotate_half).
 */
import type { RopeScaling } from './config.js';

const f32 = Math.fround;

/**
 * The D/2 rotary frequencies, each step rounded to float32 in the order torch evaluates it, so
 * that the tables equal transformers' to the last bit or so (the scalar operands of torch's float32
 * tensor ops are float32 too; `s / t` for a scalar s is `t.reciprocal() * s`).
 *
 * - plain: inv_freq_i = 1 / theta^(2i/D)                   (_compute_default_rope_parameters)
 * - linear: inv_freq_i / factor, i.e. positions divided by factor
 * - llama3 (_compute_llama3_parameters): with wavelength w_i = 2 pi / inv_freq_i and the original
 *   context length L0, frequencies whose wavelength is longer than L0 / low_freq_factor are divided
 *   by factor (the model never saw a full turn of them), those shorter than L0 / high_freq_factor
 *   are kept, and in between s = (L0 / w_i - low) / (high - low) blends the two:
 *   (1 - s) * inv_freq_i / factor + s * inv_freq_i.
 */
export function ropeInvFreq(headDim: number, theta: number, scaling?: RopeScaling): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all float32
    inv[i] = f32(1 / f32(Math.pow(theta, f32((2 * i) / headDim))));
  }
  if (scaling === undefined) return inv;
  const factor = f32(scaling.factor);
  if (scaling.rope_type === 'linear') return inv.map((x) => f32(x / factor));
  const { low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: L0 } = scaling;
  const lowWavelen = f32(L0 / low), highWavelen = f32(L0 / high);
  const twoPi = f32(2 * Math.PI), span = f32(high - low);
  return inv.map((x) => {
    const wavelen = f32(f32(1 / x) * twoPi);
    if (wavelen > lowWavelen) return f32(x / factor);   // low frequency: interpolated
    if (wavelen < highWavelen) return x;                 // high frequency: kept
    const s = f32(f32(f32(f32(1 / wavelen) * f32(L0)) - f32(low)) / span);
    return f32(f32(f32(f32(1 - s) * x) / factor) + f32(s * x));
  });
}

export class RopeTables {
  cos = new Float32Array(0);
  sin = new Float32Array(0);
  /** Number of positions the tables cover. */
  positions = 0;
  readonly invFreq: Float32Array;

  constructor(readonly headDim: number, readonly theta: number, readonly maxPositions: number, scaling?: RopeScaling) {
    if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) {
      throw new Error(`RoPE needs an even positive head_dim, got ${headDim}`);
    }
    this.invFreq = ropeInvFreq(headDim, theta, scaling);
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
