/**
 * Frozen weights kept in bfloat16 (the paper's train_dtype idea, for memory): a stored tensor is either
 * a Float32Array or a Uint16Array of bfloat16 bits (the upper half of each float32, rounded to nearest
 * even). Arithmetic stays float32: a bf16 tensor is expanded to float32 where it is used (a whole
 * matrix into a reused scratch buffer, or single rows), exactly, since every bf16 value is a float32.
 * So a model with bf16 storage computes exactly what a float32 model computes whose weights were
 * rounded to bf16 (roundToBf16), at half the weight memory and the cost of the expansions.
 *
 * Only weights that never change are stored this way: the embedding / LM head and the linear maps of
 * frozen layers (every layer's with LoRA). Norm weights and biases stay float32 (they are small).
 */
import { f32ArrayToBf16 } from './safetensors.js';

/** A weight tensor as stored: float32, or bfloat16 bits. */
export type StoredTensor = Float32Array | Uint16Array;

/** How frozen weights are stored: the config field frozen_dtype. */
export type FrozenDtype = 'float32' | 'bfloat16';
export const FROZEN_DTYPES: readonly FrozenDtype[] = ['float32', 'bfloat16'];

/** bfloat16 bits of each value, rounded to nearest even. */
export function packBf16(x: Float32Array): Uint16Array {
  return f32ArrayToBf16(x);
}

/** dst[0..n) = the float32 values of bf16 bits src[0..n) (exact). */
export function expandBf16(src: Uint16Array, dst: Float32Array): void {
  if (dst.length < src.length) throw new Error(`expandBf16: destination has ${dst.length} values, source ${src.length}`);
  const out = new Uint32Array(dst.buffer, dst.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i]! << 16;
}

/** The float32 values of x rounded to bf16 (a float32 model with the weights a bf16 store holds). */
export function roundToBf16(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  expandBf16(packBf16(x), out);
  return out;
}

/** A stored tensor as float32: itself, or a new expanded copy. */
export function toFloat32(t: StoredTensor): Float32Array {
  if (t instanceof Float32Array) return t;
  const out = new Float32Array(t.length);
  expandBf16(t, out);
  return out;
}

/** Rows [r0, r1) of a row-major [*, C] stored tensor, as float32 (a view when float32, else expanded into `into`). */
export function rowsAsFloat32(t: StoredTensor, C: number, r0: number, r1: number, into?: Float32Array): Float32Array {
  if (t instanceof Float32Array) return t.subarray(r0 * C, r1 * C);
  const out = into ? into.subarray(0, (r1 - r0) * C) : new Float32Array((r1 - r0) * C);
  expandBf16(t.subarray(r0 * C, r1 * C), out);
  return out;
}

/** Bytes a stored tensor takes. */
export function storedBytes(t: StoredTensor | null | undefined): number {
  return t ? t.byteLength : 0;
}

/**
 * Float32 scratch for expanding bf16 tensors where they are used, one buffer per role (e.g. a layer's
 * `gate`). A role's buffer is valid until the next get() of that role; a get() of the tensor the role
 * last expanded returns the buffer without expanding again (frozen tensors never change).
 */
export class Bf16Scratch {
  private readonly bufs = new Map<string, { buf: Float32Array; src: Uint16Array | null }>();
  /** Values expanded so far (for measurements). */
  expanded = 0;

  get(role: string, t: StoredTensor): Float32Array {
    if (t instanceof Float32Array) return t;
    let e = this.bufs.get(role);
    if (e === undefined || e.buf.length < t.length) {
      e = { buf: new Float32Array(t.length), src: null };
      this.bufs.set(role, e);
    }
    const view = e.buf.subarray(0, t.length);
    if (e.src !== t) {
      expandBf16(t, view);
      e.src = t;
      this.expanded += t.length;
    }
    return view;
  }

  bytes(): number {
    let n = 0;
    for (const e of this.bufs.values()) n += e.buf.byteLength;
    return n;
  }
}
