// Native and TypeScript backends agree on larger random shapes (large enough that the native kernels
// take their multi-threaded paths), for every kernel and both thread counts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend } from '../src/kernels/backend.js';
import { loadNativeAddon, NativeBackend } from '../src/kernels/native.js';
import { TypeScriptBackend } from '../src/kernels/typescript.js';
import { Rng } from '../src/util/rng.js';
import { assertClose, randn, ropeTables } from './kernels-reference.js';

let native: NativeBackend | undefined;
let skip: string | false = false;
try {
  native = new NativeBackend(loadNativeAddon());
} catch (e) {
  skip = (e as Error).message;
}
const ts = new TypeScriptBackend();

/** Runs `f` on copies of the inputs for both backends and compares every output array. */
function same(what: string, inputs: Float32Array[], outputs: number[], f: (b: Backend, a: Float32Array[]) => void,
  rtol = 1e-4, atol = 1e-5): void {
  const a = inputs.map((x) => x.slice()), b = inputs.map((x) => x.slice());
  f(ts, a);
  f(native!, b);
  for (const i of outputs) assertClose(b[i], a[i], rtol, atol, `${what}: output ${i}`);
}

describe('native vs typescript', { skip }, () => {
  for (const threads of [1, 2]) {
    test(`all kernels agree on larger shapes with ${threads} thread(s)`, () => {
      native!.setThreads(threads);
      const rng = new Rng(100 + threads);
      const M = 67, N = 129, K = 75;
      for (const tA of [false, true]) for (const tB of [false, true]) {
        const A = randn(rng, M * K), B = randn(rng, K * N), C = randn(rng, M * N);
        same(`sgemm ${tA} ${tB}`, [A, B, C], [2], (bk, [a, b, c]) =>
          bk.sgemm(tA, tB, M, N, K, 0.9, a, tA ? M : K, b, tB ? K : N, 0.3, c, N));
      }
      const A = randn(rng, M * K);
      for (const tr of [false, true]) {
        same(`sgemv ${tr}`, [A, randn(rng, tr ? M : K), randn(rng, tr ? K : M)], [2], (bk, [a, x, y]) =>
          bk.sgemv(tr, M, K, 1.1, a, K, x, 0.5, y));
      }

      const T = 400, C = 96; // T*C above the native parallel threshold
      const x = randn(rng, T * C), w = randn(rng, C);
      same('rmsnorm', [new Float32Array(T * C), new Float32Array(T), x, w, randn(rng, T * C), new Float32Array(T * C), randn(rng, C)],
        [0, 1, 5, 6], (bk, [out, rstd, xx, ww, dout, dx, dw]) => {
          bk.rmsnormForward(out, rstd, xx, ww, T, C, 1e-5);
          bk.rmsnormBackward(dx, dw, dout, xx, ww, rstd, T, C);
        });

      const Tq = 80, past = 20, H = 6, KVH = 2, D = 16, S = past + Tq;
      const { cos, sin } = ropeTables(S, D, 10000);
      same('rope', [randn(rng, Tq * H * D)], [0], (bk, [xx]) => {
        bk.rope(xx, cos, sin, Tq, H, D, past, false);
        bk.rope(xx, cos, sin, Tq, H, D, past, true);
        bk.rope(xx, cos, sin, Tq, H, D, past, false);
      });
      same('attention', [new Float32Array(Tq * H * D), new Float32Array(H * Tq * S), randn(rng, Tq * H * D), randn(rng, S * KVH * D),
        randn(rng, S * KVH * D), randn(rng, Tq * H * D), new Float32Array(Tq * H * D), randn(rng, S * KVH * D), randn(rng, S * KVH * D)],
      [0, 1, 6, 7, 8], (bk, [out, probs, q, k, v, dout, dq, dk, dv]) => {
        bk.attentionForward(out, probs, q, k, v, Tq, past, H, KVH, D);
        bk.attentionBackward(dq, dk, dv, dout, q, k, v, probs, Tq, past, H, KVH, D);
      });

      const n = 40000;
      same('swiglu', [new Float32Array(n), randn(rng, n, 3), randn(rng, n), randn(rng, n), new Float32Array(n), new Float32Array(n)],
        [0, 4, 5], (bk, [out, g, u, dout, dg, du]) => {
          bk.swigluForward(out, g, u, n);
          bk.swigluBackward(dg, du, dout, g, u, n);
        });
      same('axpy', [randn(rng, n), randn(rng, n)], [1], (bk, [xx, y]) => bk.axpy(n, -0.7, xx, y));
    });
  }
});

describe('native attention across threads', { skip }, () => {
  test('1, 2 and 3 threads give bit-identical attention forward and backward (work split by head and row block)', () => {
    const rng = new Rng(7);
    const Tq = 150, past = 30, H = 9, KVH = 3, D = 64, S = past + Tq; // three row blocks of 64
    const inputs = [randn(rng, Tq * H * D), randn(rng, S * KVH * D), randn(rng, S * KVH * D), randn(rng, Tq * H * D), randn(rng, S * KVH * D), randn(rng, S * KVH * D)];
    const run = (threads: number): Float32Array[] => {
      native!.setThreads(threads);
      const [q, k, v, dout, dk0, dv0] = inputs.map((x) => x.slice());
      const out = new Float32Array(Tq * H * D), probs = new Float32Array(H * Tq * S).fill(7), dq = new Float32Array(Tq * H * D).fill(3);
      native!.attentionForward(out, probs, q!, k!, v!, Tq, past, H, KVH, D);
      native!.attentionBackward(dq, dk0!, dv0!, dout!, q!, k!, v!, probs, Tq, past, H, KVH, D);
      return [out, probs, dq, dk0!, dv0!];
    };
    const threads = native!.getThreads();
    try {
      const one = run(1);
      for (const n of [2, 3]) {
        const other = run(n);
        one.forEach((a, i) => assert.deepEqual(other[i], a, `output ${i} with ${n} threads`));
      }
      // And the result is the reference's (dk/dv accumulated onto their initial values).
      const ref = inputs.map((x) => x.slice());
      const out = new Float32Array(Tq * H * D), probs = new Float32Array(H * Tq * S), dq = new Float32Array(Tq * H * D);
      ts.attentionForward(out, probs, ref[0]!, ref[1]!, ref[2]!, Tq, past, H, KVH, D);
      ts.attentionBackward(dq, ref[4]!, ref[5]!, ref[3]!, ref[0]!, ref[1]!, ref[2]!, probs, Tq, past, H, KVH, D);
      [out, probs, dq, ref[4]!, ref[5]!].forEach((a, i) => assertClose(one[i]!, a, 1e-4, 1e-5, `reference output ${i}`));
    } finally {
      native!.setThreads(threads);
    }
  });
});
