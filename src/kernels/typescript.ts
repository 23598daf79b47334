/**
 * The reference backend in plain TypeScript: clear loops, float32 storage, float64 accumulation.
 * It is the correctness reference for the native addon and the fallback where the addon is absent.
 * Single-threaded: setThreads is accepted (and remembered) but does not change anything.
 */
import { checkPacked, type Backend, type PackedWeights } from './backend.js';
import { checkArray, checkAttentionDims, checkDim, checkScalar, matrixSpan } from './checks.js';

export class TypeScriptBackend implements Backend {
  readonly name = 'typescript' as const;
  private threads = 1;

  getThreads(): number {
    return this.threads;
  }

  setThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new TypeError(`setThreads: n must be a positive integer, got ${n}`);
    this.threads = n;
  }

  // C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C
  sgemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number,
    alpha: number, A: Float32Array, lda: number, B: Float32Array, ldb: number,
    beta: number, C: Float32Array, ldc: number,
  ): void {
    const k = 'sgemm';
    checkDim(k, 'M', M); checkDim(k, 'N', N); checkDim(k, 'K', K);
    checkScalar(k, 'alpha', alpha); checkScalar(k, 'beta', beta);
    checkArray(k, 'A', A, transA ? matrixSpan(k, 'A', K, M, lda) : matrixSpan(k, 'A', M, K, lda));
    checkArray(k, 'B', B, transB ? matrixSpan(k, 'B', N, K, ldb) : matrixSpan(k, 'B', K, N, ldb));
    checkArray(k, 'C', C, matrixSpan(k, 'C', M, N, ldc));
    // op(A)(i,p) and op(B)(p,j) as strides: element = base[i*ai + p*ap], base[p*bp + j*bj].
    const ai = transA ? 1 : lda, ap = transA ? lda : 1;
    const bp = transB ? 1 : ldb, bj = transB ? ldb : 1;
    if (transB) {
      // Rows of op(B)^T are contiguous: each C entry is a dot product.
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let p = 0; p < K; p++) s += A[i * ai + p * ap] * B[j * bj + p * bp];
          const c = ldc * i + j;
          C[c] = beta === 0 ? alpha * s : alpha * s + beta * C[c];
        }
      }
      return;
    }
    // i-k-j order: rows of B are contiguous; accumulate a row of C in float64.
    const acc = new Float64Array(N);
    for (let i = 0; i < M; i++) {
      acc.fill(0);
      for (let p = 0; p < K; p++) {
        const a = A[i * ai + p * ap];
        if (a === 0) continue;
        const row = p * bp;
        for (let j = 0; j < N; j++) acc[j] += a * B[row + j];
      }
      const c = ldc * i;
      // beta = 0 overwrites C without reading it (BLAS semantics: NaN in C is ignored).
      if (beta === 0) for (let j = 0; j < N; j++) C[c + j] = alpha * acc[j];
      else for (let j = 0; j < N; j++) C[c + j] = alpha * acc[j] + beta * C[c + j];
    }
  }

  packWeights(W: Float32Array, N: number, K: number): PackedWeights {
    const k = 'packWeights';
    checkDim(k, 'N', N); checkDim(k, 'K', K);
    checkArray(k, 'W', W, N * K);
    return { backend: this.name, N, K, data: W };
  }

  // C[M,N] = A[M,K] W^T: "packed" W is W itself, so this is sgemm's dot-product case (each element
  // summed over k in order)
  gemmPacked(M: number, A: Float32Array, lda: number, W: PackedWeights, C: Float32Array, ldc: number): void {
    const k = 'gemmPacked';
    checkPacked(k, this.name, W);
    const { N, K, data } = W;
    checkDim(k, 'M', M);
    checkArray(k, 'A', A, matrixSpan(k, 'A', M, K, lda));
    checkArray(k, 'C', C, matrixSpan(k, 'C', M, N, ldc));
    this.sgemm(false, true, M, N, K, 1, A, lda, data, Math.max(1, K), 0, C, ldc); // W's row stride; any >= 1 when K = 0
  }

  // y = alpha * op(A) @ x + beta * y; A stored [M,N]
  sgemv(trans: boolean, M: number, N: number, alpha: number, A: Float32Array, lda: number,
    x: Float32Array, beta: number, y: Float32Array): void {
    const k = 'sgemv';
    checkDim(k, 'M', M); checkDim(k, 'N', N);
    checkScalar(k, 'alpha', alpha); checkScalar(k, 'beta', beta);
    checkArray(k, 'A', A, matrixSpan(k, 'A', M, N, lda));
    const nx = trans ? M : N, ny = trans ? N : M;
    checkArray(k, 'x', x, nx);
    checkArray(k, 'y', y, ny);
    if (!trans) {
      for (let i = 0; i < M; i++) {
        let s = 0;
        const row = i * lda;
        for (let j = 0; j < N; j++) s += A[row + j] * x[j];
        y[i] = beta === 0 ? alpha * s : alpha * s + beta * y[i];
      }
      return;
    }
    const acc = new Float64Array(N);
    for (let i = 0; i < M; i++) {
      const xi = x[i];
      const row = i * lda;
      for (let j = 0; j < N; j++) acc[j] += A[row + j] * xi;
    }
    for (let j = 0; j < N; j++) y[j] = beta === 0 ? alpha * acc[j] : alpha * acc[j] + beta * y[j];
  }

  // out[T,C] = w[C] * x[T,C] * rstd[T], rstd = 1 / sqrt(mean(x^2) + eps)
  rmsnormForward(out: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array,
    T: number, C: number, eps: number): void {
    const k = 'rmsnormForward';
    checkDim(k, 'T', T); checkDim(k, 'C', C); checkScalar(k, 'eps', eps);
    if (C === 0) throw new TypeError(`${k}: C must be positive`);
    checkArray(k, 'out', out, T * C); checkArray(k, 'rstd', rstd, T);
    checkArray(k, 'x', x, T * C); checkArray(k, 'w', w, C);
    for (let t = 0; t < T; t++) {
      const o = t * C;
      let ss = 0;
      for (let c = 0; c < C; c++) ss += x[o + c] * x[o + c];
      const r = 1 / Math.sqrt(ss / C + eps);
      rstd[t] = r;
      for (let c = 0; c < C; c++) out[o + c] = w[c] * (x[o + c] * r);
    }
  }

  // With g = dout * w: dx = rstd * (g - x * rstd^2 * mean(g * x)); dw += sum_t dout * x * rstd
  rmsnormBackward(dx: Float32Array, dw: Float32Array, dout: Float32Array, x: Float32Array,
    w: Float32Array, rstd: Float32Array, T: number, C: number): void {
    const k = 'rmsnormBackward';
    checkDim(k, 'T', T); checkDim(k, 'C', C);
    if (C === 0) throw new TypeError(`${k}: C must be positive`);
    checkArray(k, 'dx', dx, T * C); checkArray(k, 'dw', dw, C); checkArray(k, 'dout', dout, T * C);
    checkArray(k, 'x', x, T * C); checkArray(k, 'w', w, C); checkArray(k, 'rstd', rstd, T);
    const dwAcc = new Float64Array(C);
    for (let t = 0; t < T; t++) {
      const o = t * C;
      const r = rstd[t];
      let gx = 0;
      for (let c = 0; c < C; c++) gx += dout[o + c] * w[c] * x[o + c];
      const coef = (r * r * gx) / C;
      for (let c = 0; c < C; c++) {
        dx[o + c] = r * (dout[o + c] * w[c] - x[o + c] * coef);
        dwAcc[c] += dout[o + c] * x[o + c] * r;
      }
    }
    for (let c = 0; c < C; c++) dw[c] += dwAcc[c];
  }

  // Per head: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin); inverse uses -sin.
  rope(x: Float32Array, cos: Float32Array, sin: Float32Array, T: number, H: number, D: number,
    pos0: number, inverse: boolean): void {
    const k = 'rope';
    checkDim(k, 'T', T); checkDim(k, 'H', H); checkDim(k, 'D', D); checkDim(k, 'pos0', pos0);
    if (D === 0 || D % 2 !== 0) throw new TypeError(`${k}: D must be a positive even number, got ${D}`);
    const half = D / 2;
    checkArray(k, 'x', x, T * H * D);
    checkArray(k, 'cos', cos, (pos0 + T) * half);
    checkArray(k, 'sin', sin, (pos0 + T) * half);
    const sign = inverse ? -1 : 1;
    for (let t = 0; t < T; t++) {
      const tab = (pos0 + t) * half;
      for (let h = 0; h < H; h++) {
        const o = (t * H + h) * D;
        for (let i = 0; i < half; i++) {
          const c = cos[tab + i], s = sign * sin[tab + i];
          const x1 = x[o + i], x2 = x[o + i + half];
          x[o + i] = x1 * c - x2 * s;
          x[o + i + half] = x2 * c + x1 * s;
        }
      }
    }
  }

  // out[t, h] = sum_s P[h,t,s] v[s, kvh], P = softmax_s<=past+t(q[t,h] . k[s,kvh] / sqrt(D))
  attentionForward(out: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array,
    v: Float32Array, T: number, past: number, H: number, KVH: number, D: number): void {
    const kn = 'attentionForward';
    const S = checkAttentionDims(kn, T, past, H, KVH, D);
    checkArray(kn, 'out', out, T * H * D); checkArray(kn, 'probs', probs, H * T * S);
    checkArray(kn, 'q', q, T * H * D); checkArray(kn, 'k', k, S * KVH * D); checkArray(kn, 'v', v, S * KVH * D);
    const scale = 1 / Math.sqrt(D);
    const rep = H / KVH;
    const qs = H * D, ks = KVH * D;
    const acc = new Float64Array(D);
    for (let h = 0; h < H; h++) {
      const kvOff = Math.floor(h / rep) * D;
      for (let t = 0; t < T; t++) {
        const qo = t * qs + h * D;
        const po = (h * T + t) * S;
        const last = past + t; // last key this query may see
        let max = -Infinity;
        for (let s = 0; s <= last; s++) {
          const ko = s * ks + kvOff;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
          const z = dot * scale;
          probs[po + s] = z;
          if (z > max) max = z;
        }
        let sum = 0;
        for (let s = 0; s <= last; s++) sum += Math.exp(probs[po + s] - max);
        acc.fill(0);
        for (let s = 0; s <= last; s++) {
          const p = Math.exp(probs[po + s] - max) / sum;
          probs[po + s] = p;
          const vo = s * ks + kvOff;
          for (let d = 0; d < D; d++) acc[d] += p * v[vo + d];
        }
        for (let s = last + 1; s < S; s++) probs[po + s] = 0;
        for (let d = 0; d < D; d++) out[qo + d] = acc[d];
      }
    }
  }

  // dP = dout . v; dS = P * (dP - sum P dP); dq = scale dS k; dk += scale dS^T q; dv += P^T dout
  attentionBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array,
    q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array,
    T: number, past: number, H: number, KVH: number, D: number): void {
    const kn = 'attentionBackward';
    const S = checkAttentionDims(kn, T, past, H, KVH, D);
    checkArray(kn, 'dq', dq, T * H * D); checkArray(kn, 'dk', dk, S * KVH * D); checkArray(kn, 'dv', dv, S * KVH * D);
    checkArray(kn, 'dout', dout, T * H * D); checkArray(kn, 'q', q, T * H * D);
    checkArray(kn, 'k', k, S * KVH * D); checkArray(kn, 'v', v, S * KVH * D); checkArray(kn, 'probs', probs, H * T * S);
    const scale = 1 / Math.sqrt(D);
    const rep = H / KVH;
    const qs = H * D, ks = KVH * D;
    const dS = new Float64Array(S);
    const dqAcc = new Float64Array(D);
    for (let h = 0; h < H; h++) {
      const kvOff = Math.floor(h / rep) * D;
      for (let t = 0; t < T; t++) {
        const qo = t * qs + h * D;
        const po = (h * T + t) * S;
        const last = past + t;
        let pdp = 0;
        for (let s = 0; s <= last; s++) {
          const vo = s * ks + kvOff;
          let dp = 0;
          for (let d = 0; d < D; d++) dp += dout[qo + d] * v[vo + d];
          dS[s] = dp;
          pdp += probs[po + s] * dp;
        }
        dqAcc.fill(0);
        for (let s = 0; s <= last; s++) {
          const p = probs[po + s];
          const ds = p * (dS[s] - pdp) * scale;
          const ko = s * ks + kvOff;
          for (let d = 0; d < D; d++) {
            dqAcc[d] += ds * k[ko + d];
            dk[ko + d] += ds * q[qo + d];
            dv[ko + d] += p * dout[qo + d];
          }
        }
        for (let d = 0; d < D; d++) dq[qo + d] = dqAcc[d];
      }
    }
  }

  // out = gate * sigmoid(gate) * up
  swigluForward(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    const k = 'swigluForward';
    checkDim(k, 'n', n);
    checkArray(k, 'out', out, n); checkArray(k, 'gate', gate, n); checkArray(k, 'up', up, n);
    for (let i = 0; i < n; i++) {
      const g = gate[i];
      out[i] = (g / (1 + Math.exp(-g))) * up[i];
    }
  }

  // d silu(g)/dg = sig(g) * (1 + g * (1 - sig(g)))
  swigluBackward(dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array,
    up: Float32Array, n: number): void {
    const k = 'swigluBackward';
    checkDim(k, 'n', n);
    checkArray(k, 'dgate', dgate, n); checkArray(k, 'dup', dup, n); checkArray(k, 'dout', dout, n);
    checkArray(k, 'gate', gate, n); checkArray(k, 'up', up, n);
    for (let i = 0; i < n; i++) {
      const g = gate[i], u = up[i], d = dout[i];
      const sig = 1 / (1 + Math.exp(-g));
      dgate[i] = d * u * sig * (1 + g * (1 - sig));
      dup[i] = d * g * sig;
    }
  }

  // y += alpha * x
  axpy(n: number, alpha: number, x: Float32Array, y: Float32Array): void {
    const k = 'axpy';
    checkDim(k, 'n', n); checkScalar(k, 'alpha', alpha);
    checkArray(k, 'x', x, n); checkArray(k, 'y', y, n);
    for (let i = 0; i < n; i++) y[i] += alpha * x[i];
  }
}
