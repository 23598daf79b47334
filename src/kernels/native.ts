/**
 * The native backend: a thin TypeScript face over the Node addon in `native/` (OpenBLAS sgemm/sgemv
 * and fused C++ kernels). The addon checks every argument itself (types, dimensions, lengths), so
 * nothing here can make it write out of bounds. setThreads sets OpenBLAS's thread count and
 * attention's; the fused element-wise kernels are vectorised and single-threaded (see
 * native/kernels.cc for why).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkPacked, type Backend, type PackedWeights } from './backend.js';

/** What the compiled addon exports: the Backend kernels as plain functions, plus thread control. */
export interface NativeAddon extends Omit<Backend, 'name' | 'packWeights' | 'gemmPacked'> {
  /** The instruction set of the packed products on this CPU: 'avx512', 'avx2' or 'portable'. */
  packedIsa(): string;
  /** Floats of W [N, K] in the packed layout. */
  packedSize(N: number, K: number): number;
  packWeights(W: Float32Array, N: number, K: number, out: Float32Array): void;
  gemmPacked(M: number, N: number, K: number, A: Float32Array, lda: number, Wp: Float32Array, C: Float32Array, ldc: number): void;
  /** BLAS build and threading description, e.g. "OpenBLAS 0.3.21 ... (threads 2)". */
  info(): string;
}

/**
 * Where the addon lies relative to this module: `src/kernels` (tsx) or `dist/src/kernels` (compiled).
 * FLAG_TRADER_NATIVE_ADDON=/path/to/flag_kernels.node names one file instead (tests use it to force
 * the fallback).
 */
export function nativeAddonCandidates(): string[] {
  const override = process.env.FLAG_TRADER_NATIVE_ADDON;
  if (override) return [override];
  const here = dirname(fileURLToPath(import.meta.url));
  const rel = join('native', 'build', 'Release', 'flag_kernels.node');
  return [join(here, '..', '..', rel), join(here, '..', '..', '..', rel)];
}

/**
 * How long OpenBLAS's worker threads busy-wait for the next product before they sleep, as the power
 * of two of CPU cycles that OPENBLAS_THREAD_TIMEOUT takes (4..30; OpenBLAS's own default is 28, about
 * a tenth of a second). Spinning workers keep their cores between products, so on a 2-core machine
 * they stole the core that attention's second thread and the single-threaded element-wise kernels
 * run on: at the paper's settings `flag-trader bench-train` measured 1.49 steps/s with 28 and 1.75
 * with 4 (attention twice as fast). A value the user sets in the environment is kept.
 */
export const OPENBLAS_THREAD_TIMEOUT = '4';

/** Loads the addon or throws an Error saying why (not built, or failed to load). */
export function loadNativeAddon(): NativeAddon {
  // OpenBLAS reads its settings when it is loaded with the addon, so this must come first.
  process.env.OPENBLAS_THREAD_TIMEOUT ??= OPENBLAS_THREAD_TIMEOUT;
  const candidates = nativeAddonCandidates();
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new Error(`native addon not built (looked for ${candidates.join(' and ')}; run \`npm run build:native\`)`);
  }
  const require = createRequire(import.meta.url);
  let addon: NativeAddon;
  try {
    addon = require(path) as NativeAddon;
  } catch (e) {
    throw new Error(`native addon at ${path} failed to load: ${(e as Error).message}`);
  }
  // FLAG_TRADER_KERNEL_ISA asks the packed products for one instruction set (tests compare them);
  // the addon takes its widest when the name is unknown or the CPU lacks the one asked for.
  const isa = process.env.FLAG_TRADER_KERNEL_ISA;
  if (isa && addon.packedIsa() !== isa) {
    throw new Error(`FLAG_TRADER_KERNEL_ISA is '${isa}': expected one of ${KERNEL_ISAS.join(', ')} that this CPU runs (its widest: ${addon.packedIsa()})`);
  }
  return addon;
}

/** The instruction sets of the packed products, narrowest first (FLAG_TRADER_KERNEL_ISA). */
export const KERNEL_ISAS = ['portable', 'avx2', 'avx512'] as const;

export class NativeBackend implements Backend {
  readonly name = 'native' as const;
  constructor(private readonly addon: NativeAddon) {}

  info(): string { return `${this.addon.info()}; packed products ${this.addon.packedIsa()}`; }
  getThreads(): number { return this.addon.getThreads(); }
  setThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new TypeError(`setThreads: n must be a positive integer, got ${n}`);
    this.addon.setThreads(n);
  }

  sgemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number): void {
    this.addon.sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  sgemv(trans: boolean, M: number, N: number, alpha: number, A: Float32Array, lda: number,
    x: Float32Array, beta: number, y: Float32Array): void {
    this.addon.sgemv(trans, M, N, alpha, A, lda, x, beta, y);
  }
  packWeights(W: Float32Array, N: number, K: number): PackedWeights {
    const data = new Float32Array(this.addon.packedSize(N, K));
    this.addon.packWeights(W, N, K, data);
    return { backend: this.name, N, K, data };
  }
  gemmPacked(M: number, A: Float32Array, lda: number, W: PackedWeights, C: Float32Array, ldc: number): void {
    checkPacked('gemmPacked', this.name, W);
    this.addon.gemmPacked(M, W.N, W.K, A, lda, W.data, C, ldc);
  }
  rmsnormForward(out: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array,
    T: number, C: number, eps: number): void {
    this.addon.rmsnormForward(out, rstd, x, w, T, C, eps);
  }
  rmsnormBackward(dx: Float32Array, dw: Float32Array, dout: Float32Array, x: Float32Array,
    w: Float32Array, rstd: Float32Array, T: number, C: number): void {
    this.addon.rmsnormBackward(dx, dw, dout, x, w, rstd, T, C);
  }
  rope(x: Float32Array, cos: Float32Array, sin: Float32Array, T: number, H: number, D: number,
    pos0: number, inverse: boolean): void {
    this.addon.rope(x, cos, sin, T, H, D, pos0, inverse);
  }
  attentionForward(out: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array,
    v: Float32Array, T: number, past: number, H: number, KVH: number, D: number): void {
    this.addon.attentionForward(out, probs, q, k, v, T, past, H, KVH, D);
  }
  attentionBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array,
    q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array,
    T: number, past: number, H: number, KVH: number, D: number): void {
    this.addon.attentionBackward(dq, dk, dv, dout, q, k, v, probs, T, past, H, KVH, D);
  }
  swigluForward(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    this.addon.swigluForward(out, gate, up, n);
  }
  swigluBackward(dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array,
    up: Float32Array, n: number): void {
    this.addon.swigluBackward(dgate, dup, dout, gate, up, n);
  }
  axpy(n: number, alpha: number, x: Float32Array, y: Float32Array): void {
    this.addon.axpy(n, alpha, x, y);
  }
}
