/**
 * The compute backend: dense linear algebra and the fused element-wise kernels of a Llama layer.
 * Two implementations share this interface: `native` (Node addon over OpenBLAS) and `typescript`
 * (the plain reference, used in tests and where the addon cannot build).
 *
 * All arrays are row-major Float32Array views (use `subarray` for offsets: no copies).
 * Shapes are given as [rows, cols]. "Backward" kernels ACCUMULATE (+=) into weight gradients and
 * OVERWRITE input gradients unless the doc says otherwise.
 */
export interface Backend {
  readonly name: 'native' | 'typescript';
  /** Threads used by BLAS and the fused kernels. */
  getThreads(): number;
  setThreads(n: number): void;

  /**
   * C[M,N] = alpha * op(A) @ op(B) + beta * C.
   * op(A) is [M,K] (A stored [K,M] when transA), op(B) is [K,N] (B stored [N,K] when transB).
   * lda/ldb/ldc are the row strides of the stored matrices.
   */
  sgemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number,
    alpha: number, A: Float32Array, lda: number, B: Float32Array, ldb: number,
    beta: number, C: Float32Array, ldc: number,
  ): void;

  /** y[M] = alpha * op(A) @ x + beta * y; A stored [M,N] (trans: op(A) = A^T, y has N entries). */
  sgemv(trans: boolean, M: number, N: number, alpha: number, A: Float32Array, lda: number,
    x: Float32Array, beta: number, y: Float32Array): void;

  /** out[T,C] = w * x / sqrt(mean(x^2) + eps) per row; rstd[T] saved for backward. */
  rmsnormForward(out: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array,
    T: number, C: number, eps: number): void;
  /** dx[T,C] (overwritten) and dw[C] (accumulated) from dout[T,C]. */
  rmsnormBackward(dx: Float32Array, dw: Float32Array, dout: Float32Array, x: Float32Array,
    w: Float32Array, rstd: Float32Array, T: number, C: number): void;

  /**
   * In-place rotate_half RoPE on x[T, H*D] for positions pos0 .. pos0+T-1.
   * cos/sin are tables [maxPos, D/2] with cos[p, i] = cos(p * theta^(-2i/D)).
   * Dimension i pairs with i + D/2. `inverse` applies the transpose rotation (the backward).
   */
  rope(x: Float32Array, cos: Float32Array, sin: Float32Array, T: number, H: number, D: number,
    pos0: number, inverse: boolean): void;

  /**
   * Causal grouped-query attention.
   * q[T, H*D] (queries for positions past..past+T-1), k/v[past+T, KVH*D] (all keys so far),
   * out[T, H*D], probs[H, T, past+T] saved for backward (entries beyond the causal limit are 0).
   * Query head h uses KV head floor(h / (H/KVH)). Scale 1/sqrt(D).
   */
  attentionForward(out: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array,
    v: Float32Array, T: number, past: number, H: number, KVH: number, D: number): void;
  /** dq (overwritten), dk/dv [past+T, KVH*D] (accumulated) from dout[T, H*D]. */
  attentionBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array,
    q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array,
    T: number, past: number, H: number, KVH: number, D: number): void;

  /** out[n] = silu(gate) * up. */
  swigluForward(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  /** dgate, dup (overwritten) from dout. */
  swigluBackward(dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array,
    up: Float32Array, n: number): void;

  /**
   * W [N, K] (row-major, as HF stores a linear layer's weight) prepared for repeated products
   * gemmPacked: the native backend copies it into its packed layout once (W is not read again); the
   * TypeScript backend keeps a reference to W. For weights that never change (the frozen layers').
   */
  packWeights(W: Float32Array, N: number, K: number): PackedWeights;
  /**
   * C[M, N] = A[M, K] W^T (overwritten; lda/ldc row strides). Every element is one chain of
   * multiply-adds over k = 0..K-1 in order, so a row's result depends on that row of A and on W only:
   * not on M, the rows beside it or the threads (unlike sgemm, whose blocking depends on the shapes).
   */
  gemmPacked(M: number, A: Float32Array, lda: number, W: PackedWeights, C: Float32Array, ldc: number): void;

  /** y += alpha * x over n entries. */
  axpy(n: number, alpha: number, x: Float32Array, y: Float32Array): void;
}

/** A weight matrix prepared by one backend's packWeights (its layout is that backend's own). */
export interface PackedWeights {
  readonly backend: 'native' | 'typescript';
  /** Output columns (W's rows) and inputs (W's columns). */
  readonly N: number;
  readonly K: number;
  readonly data: Float32Array;
}

/** Throws unless `W` was packed by the backend `name`. */
export function checkPacked(kernel: string, name: 'native' | 'typescript', W: PackedWeights): void {
  if (W.backend !== name) throw new TypeError(`${kernel}: weights packed by the ${W.backend} backend, used with ${name}`);
}
