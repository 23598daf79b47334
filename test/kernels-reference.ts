/**
 * Independent float64 references for the kernel tests: naive loops written straight from the
 * definitions (not from the backends' code), central finite differences, and helpers for
 * guarded views (a subarray inside a larger buffer whose outside must stay untouched).
 */
import assert from 'node:assert/strict';
import { Rng } from '../src/util/rng.js';

export function randn(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

export function filled(n: number, value: number): Float32Array {
  return new Float32Array(n).fill(value);
}

const SENTINEL = 12345.5;

/** A view of n entries at `offset` inside a buffer with sentinel-filled margins on both sides. */
export interface Guarded { buf: Float32Array; view: Float32Array; offset: number }

export function guarded(src: Float32Array, offset = 3, margin = 5): Guarded {
  const buf = new Float32Array(offset + src.length + margin).fill(SENTINEL);
  buf.set(src, offset);
  return { buf, view: buf.subarray(offset, offset + src.length), offset };
}

/** Checks nothing outside the view was written. */
export function assertGuards(g: Guarded, what: string): void {
  for (let i = 0; i < g.buf.length; i++) {
    if (i >= g.offset && i < g.offset + g.view.length) continue;
    assert.equal(g.buf[i], SENTINEL, `${what}: entry ${i} outside the view was written`);
  }
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number,
  what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    const ok = Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) assert.fail(`${what}: entry ${i} is ${a}, expected ${e} (rtol ${rtol}, atol ${atol})`);
  }
}

/** Central finite differences of a scalar function of x (x is restored afterwards). */
export function numericGrad(f: (x: Float64Array) => number, x: Float64Array, h = 1e-5): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    x[i] = x0 + h; const fp = f(x);
    x[i] = x0 - h; const fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export const f64 = (a: ArrayLike<number>): Float64Array => Float64Array.from(a);

// ---- references ----

/** C[M,N] = alpha op(A) op(B) + beta C with A, B, C stored row-major with strides; returns the new C. */
export function refGemm(tA: boolean, tB: boolean, M: number, N: number, K: number, alpha: number,
  A: ArrayLike<number>, lda: number, B: ArrayLike<number>, ldb: number, beta: number,
  C: ArrayLike<number>, ldc: number): Float64Array {
  const out = f64(C);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let p = 0; p < K; p++) {
        const a = tA ? A[p * lda + i] : A[i * lda + p];
        const b = tB ? B[j * ldb + p] : B[p * ldb + j];
        s += a * b;
      }
      out[i * ldc + j] = alpha * s + (beta === 0 ? 0 : beta * C[i * ldc + j]);
    }
  }
  return out;
}

export function refGemv(trans: boolean, M: number, N: number, alpha: number, A: ArrayLike<number>, lda: number,
  x: ArrayLike<number>, beta: number, y: ArrayLike<number>): Float64Array {
  const out = f64(y);
  const rows = trans ? N : M, inner = trans ? M : N;
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let p = 0; p < inner; p++) s += (trans ? A[p * lda + i] : A[i * lda + p]) * x[p];
    out[i] = alpha * s + (beta === 0 ? 0 : beta * y[i]);
  }
  return out;
}

export function refRmsnorm(x: ArrayLike<number>, w: ArrayLike<number>, T: number, C: number, eps: number):
  { out: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(T * C), rstd = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let ms = 0;
    for (let c = 0; c < C; c++) ms += x[t * C + c] ** 2;
    ms /= C;
    rstd[t] = 1 / Math.sqrt(ms + eps);
    for (let c = 0; c < C; c++) out[t * C + c] = w[c] * x[t * C + c] * rstd[t];
  }
  return { out, rstd };
}

/** cos/sin tables [maxPos, D/2] as the backends expect them (float32). */
export function ropeTables(maxPos: number, D: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const half = D / 2;
  const cos = new Float32Array(maxPos * half), sin = new Float32Array(maxPos * half);
  for (let p = 0; p < maxPos; p++) {
    for (let i = 0; i < half; i++) {
      const ang = p * theta ** (-(2 * i) / D);
      cos[p * half + i] = Math.cos(ang);
      sin[p * half + i] = Math.sin(ang);
    }
  }
  return { cos, sin };
}

/** HF rotate_half RoPE written as q*cos + rotate_half(q)*sin with full-width cos/sin (angles in float64). */
export function refRope(x: ArrayLike<number>, T: number, H: number, D: number, pos0: number, theta: number): Float64Array {
  const out = new Float64Array(T * H * D);
  const half = D / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const base = (t * H + h) * D;
      for (let d = 0; d < D; d++) {
        const i = d % half;
        const ang = (pos0 + t) * theta ** (-(2 * i) / D);
        const rot = d < half ? -x[base + d + half] : x[base + d - half];
        out[base + d] = x[base + d] * Math.cos(ang) + rot * Math.sin(ang);
      }
    }
  }
  return out;
}

/** Causal GQA attention from the definition: query t sits at position past + t. */
export function refAttention(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>,
  T: number, past: number, H: number, KVH: number, D: number): { out: Float64Array; probs: Float64Array } {
  const S = past + T, group = H / KVH;
  const out = new Float64Array(T * H * D), probs = new Float64Array(H * T * S);
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const scores: number[] = [];
      for (let s = 0; s <= past + t; s++) {
        let d = 0;
        for (let i = 0; i < D; i++) d += q[t * H * D + h * D + i] * k[s * KVH * D + g * D + i];
        scores.push(d / Math.sqrt(D));
      }
      const m = Math.max(...scores);
      const e = scores.map((z) => Math.exp(z - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let s = 0; s < e.length; s++) {
        const p = e[s] / z;
        probs[(h * T + t) * S + s] = p;
        for (let i = 0; i < D; i++) out[t * H * D + h * D + i] += p * v[s * KVH * D + g * D + i];
      }
    }
  }
  return { out, probs };
}

export function refSwiglu(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  const out = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
  return out;
}
