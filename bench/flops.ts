/**
 * Matrix-product FLOPs (multiply-add = 2) of each kernel call, counted per call and attributed to the
 * profiler phase open at the time, so that a benchmark can set each part of a training step against
 * the sgemm rate measured in the same run. Attention is counted by the (query, key) pairs the causal
 * mask allows; the native kernel computes whole blocks of 64 query rows, so it also multiplies the
 * masked pairs inside a block (5-10% more attention work at T of about 500, under 1% of a step).
 * Element-wise kernels (norms, RoPE, SwiGLU, axpy) are not counted: a few percent of the time and no
 * matrix product.
 *
 *   sgemm M x N x K          2 M N K
 *   sgemv M x N              2 M N
 *   gemmPacked M x N x K     2 M N K
 *   attention forward        2 products of H heads: 4 H D * (keys seen by each query, summed)
 *   attention backward       4 products: 8 H D * (the same sum)
 */
import type { Backend } from '../src/kernels/backend.js';

/** Keys seen by the T queries at positions past .. past+T-1 of a causal attention, summed. */
export function causalKeys(T: number, past: number): number {
  return T * past + (T * (T + 1)) / 2;
}

export interface FlopCounter {
  /** The backend to hand to the model: every call goes to `inner`, its FLOPs counted. */
  backend: Backend;
  /** FLOPs so far by phase ('none' outside every phase). */
  totals(): Record<string, number>;
}

/** Wrap `inner` so that its matrix-product FLOPs are summed by `phase()` (e.g. Profiler.current). */
export function countFlops(inner: Backend, phase: () => string | undefined): FlopCounter {
  const totals = new Map<string, number>();
  const add = (f: number): void => {
    const p = phase() ?? 'none';
    totals.set(p, (totals.get(p) ?? 0) + f);
  };
  const backend: Backend = {
    name: inner.name,
    getThreads: () => inner.getThreads(),
    setThreads: (n) => inner.setThreads(n),
    sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      add(2 * M * N * K);
      inner.sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    },
    sgemv(trans, M, N, alpha, A, lda, x, beta, y) {
      add(2 * M * N);
      inner.sgemv(trans, M, N, alpha, A, lda, x, beta, y);
    },
    packWeights: (W, N, K) => inner.packWeights(W, N, K),
    gemmPacked(M, A, lda, W, C, ldc) {
      add(2 * M * W.N * W.K);
      inner.gemmPacked(M, A, lda, W, C, ldc);
    },
    rmsnormForward: (...a) => inner.rmsnormForward(...a),
    rmsnormBackward: (...a) => inner.rmsnormBackward(...a),
    rope: (...a) => inner.rope(...a),
    attentionForward(out, probs, q, k, v, T, past, H, KVH, D) {
      add(4 * H * D * causalKeys(T, past));
      inner.attentionForward(out, probs, q, k, v, T, past, H, KVH, D);
    },
    attentionBackward(dq, dk, dv, dout, q, k, v, probs, T, past, H, KVH, D) {
      add(8 * H * D * causalKeys(T, past));
      inner.attentionBackward(dq, dk, dv, dout, q, k, v, probs, T, past, H, KVH, D);
    },
    swigluForward: (...a) => inner.swigluForward(...a),
    swigluBackward: (...a) => inner.swigluBackward(...a),
    axpy: (...a) => inner.axpy(...a),
  };
  return { backend, totals: () => Object.fromEntries(totals) };
}
