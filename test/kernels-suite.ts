/**
 * The correctness suite every backend must pass: each kernel against the float64 references of
 * kernels-reference.ts on small odd shapes, each backward against central finite differences of a
 * float64 forward, argument validation, and no writes outside the given views.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend } from '../src/kernels/backend.js';
import { Rng } from '../src/util/rng.js';
import {
  assertClose, assertGuards, dot, f64, filled, guarded, numericGrad, randn, refAttention, refGemm, refGemv,
  refRmsnorm, refRope, refSwiglu, ropeTables,
} from './kernels-reference.js';

const FWD = { rtol: 2e-5, atol: 2e-6 };
const GRAD = { rtol: 1e-4, atol: 1e-5 };

export function defineBackendTests(label: string, getB: () => Backend, skip: string | false): void {
  describe(`${label} backend`, { skip }, () => {
    test('sgemm matches the float64 product for every transpose, with strides and offset views', () => {
      const b = getB();
      const rng = new Rng(11);
      const M = 5, N = 7, K = 3;
      for (const tA of [false, true]) {
        for (const tB of [false, true]) {
          for (const beta of [0, 0.5]) {
            // Strides larger than the column count; views start inside larger buffers.
            const aRows = tA ? K : M, aCols = tA ? M : K, lda = aCols + 2;
            const bRows = tB ? N : K, bCols = tB ? K : N, ldb = bCols + 1;
            const ldc = N + 3;
            const A = guarded(randn(rng, (aRows - 1) * lda + aCols), 2);
            const B = guarded(randn(rng, (bRows - 1) * ldb + bCols), 1);
            const C0 = randn(rng, (M - 1) * ldc + N);
            // With beta = 0 BLAS never reads C: NaN there must not leak into the result.
            if (beta === 0) C0.fill(NaN);
            const C = guarded(C0, 4);
            const expected = refGemm(tA, tB, M, N, K, 1.5, A.view, lda, B.view, ldb, beta, C0, ldc);
            b.sgemm(tA, tB, M, N, K, 1.5, A.view, lda, B.view, ldb, beta, C.view, ldc);
            for (let i = 0; i < M; i++) {
              const row = C.view.subarray(i * ldc, i * ldc + N);
              assertClose(row, expected.subarray(i * ldc, i * ldc + N), FWD.rtol, FWD.atol, `sgemm tA=${tA} tB=${tB} beta=${beta} row ${i}`);
              // Padding between rows (beyond column N) is left alone.
              if (i < M - 1) for (let j = N; j < ldc; j++) assert.ok(Number.isNaN(C.view[i * ldc + j]) || C.view[i * ldc + j] === C0[i * ldc + j]);
            }
            assertGuards(C, 'sgemm C');
          }
        }
      }
    });

    test('sgemm with K = 0 scales C by beta', () => {
      const b = getB();
      const C = new Float32Array([1, 2, 3, 4]);
      b.sgemm(false, false, 2, 2, 0, 1, new Float32Array(0), 1, new Float32Array(0), 2, 0.5, C, 2);
      assert.deepEqual([...C], [0.5, 1, 1.5, 2]);
    });

    test('sgemv matches the float64 product, plain and transposed', () => {
      const b = getB();
      const rng = new Rng(12);
      const M = 5, N = 3, lda = 4;
      const A = randn(rng, (M - 1) * lda + N);
      for (const trans of [false, true]) {
        const x = guarded(randn(rng, trans ? M : N), 1);
        const y0 = randn(rng, trans ? N : M);
        const y = guarded(y0, 2);
        const expected = refGemv(trans, M, N, 0.7, A, lda, x.view, -0.3, y0);
        b.sgemv(trans, M, N, 0.7, A, lda, x.view, -0.3, y.view);
        assertClose(y.view, expected, FWD.rtol, FWD.atol, `sgemv trans=${trans}`);
        assertGuards(y, 'sgemv y');
      }
    });

    test('gemmPacked matches the float64 product A W^T over panel edges, with strides and offset views', () => {
      const b = getB();
      const rng = new Rng(31);
      // N around the native panel width (16), M around its 6-row tiles, K = 0 included.
      for (const [M, N, K] of [[1, 1, 1], [5, 16, 9], [7, 17, 3], [13, 33, 20], [6, 15, 0], [12, 48, 64]] as const) {
        const W = randn(rng, N * K);
        const Wp = b.packWeights(W, N, K);
        assert.equal(Wp.N, N);
        assert.equal(Wp.K, K);
        const lda = K + 3, ldc = N + 2;
        const A = guarded(randn(rng, Math.max(0, (M - 1) * lda + K)), 2);
        const C0 = new Float32Array((M - 1) * ldc + N).fill(NaN); // overwritten, never read
        const C = guarded(C0, 3);
        b.gemmPacked(M, A.view, lda, Wp, C.view, ldc);
        const expected = refGemm(false, true, M, N, K, 1, A.view, lda, W, K, 0, new Float32Array(C0.length), ldc);
        for (let i = 0; i < M; i++) {
          assertClose(C.view.subarray(i * ldc, i * ldc + N), expected.subarray(i * ldc, i * ldc + N), FWD.rtol, FWD.atol, `gemmPacked ${M}x${N}x${K} row ${i}`);
          if (i < M - 1) for (let j = N; j < ldc; j++) assert.ok(Number.isNaN(C.view[i * ldc + j]), `gemmPacked ${M}x${N}x${K} wrote row ${i}'s padding`);
        }
        assertGuards(C, 'gemmPacked C');
      }
    });

    test('gemmPacked: a row\'s result depends on that row only (not M, the rows beside it, or the threads)', () => {
      const b = getB();
      const prev = b.getThreads();
      const rng = new Rng(32);
      // K large enough that the native kernel splits the 70 rows into several cache blocks.
      const M = 70, N = 37, K = 4100;
      const A = randn(rng, M * K), Wp = b.packWeights(randn(rng, N * K), N, K);
      const whole = new Float32Array(M * N);
      try {
        b.setThreads(2);
        b.gemmPacked(M, A, K, Wp, whole, N);
        b.setThreads(1);
        const one = new Float32Array(M * N);
        b.gemmPacked(M, A, K, Wp, one, N);
        assert.deepEqual(one, whole, 'one thread against two');
        b.setThreads(2);
        for (const [from, to] of [[0, 1], [3, 4], [0, 5], [5, 70], [31, 44], [69, 70]] as const) {
          const part = new Float32Array((to - from) * N);
          b.gemmPacked(to - from, A.subarray(from * K), K, Wp, part, N);
          assert.deepEqual(part, whole.subarray(from * N, to * N), `rows ${from}..${to} alone`);
        }
      } finally {
        b.setThreads(prev);
      }
    });

    test('rmsnorm forward matches float64 and its backward matches finite differences', () => {
      const b = getB();
      const rng = new Rng(13);
      const T = 5, C = 12, eps = 1e-5;
      const x = randn(rng, T * C), w = randn(rng, C, 0.5);
      const out = guarded(filled(T * C, NaN)), rstd = guarded(filled(T, NaN), 1);
      b.rmsnormForward(out.view, rstd.view, guarded(x).view, guarded(w, 2).view, T, C, eps);
      const ref = refRmsnorm(x, w, T, C, eps);
      assertClose(out.view, ref.out, FWD.rtol, FWD.atol, 'rmsnorm out');
      assertClose(rstd.view, ref.rstd, FWD.rtol, FWD.atol, 'rmsnorm rstd');
      assertGuards(out, 'rmsnorm out'); assertGuards(rstd, 'rmsnorm rstd');

      const R = randn(rng, T * C); // loss = sum(R * out)
      const xd = f64(x), wd = f64(w);
      const gx = numericGrad((xv) => dot(R, refRmsnorm(xv, wd, T, C, eps).out), xd);
      const gw = numericGrad((wv) => dot(R, refRmsnorm(xd, wv, T, C, eps).out), wd);
      const dx = guarded(filled(T * C, NaN)); // overwritten: prior contents must not matter
      const dw0 = randn(rng, C);
      const dw = guarded(dw0, 1); // accumulated
      b.rmsnormBackward(dx.view, dw.view, R, x, w, rstd.view, T, C);
      assertClose(dx.view, gx, GRAD.rtol, GRAD.atol, 'rmsnorm dx');
      assertClose(Array.from(dw.view, (v, i) => v - dw0[i]), gw, GRAD.rtol, GRAD.atol, 'rmsnorm dw (accumulated)');
      assertGuards(dx, 'rmsnorm dx'); assertGuards(dw, 'rmsnorm dw');
    });

    test('rope matches HF rotate_half from pos0, and inverse is its transpose (the backward)', () => {
      const b = getB();
      const rng = new Rng(14);
      const T = 5, H = 3, D = 8, pos0 = 4, theta = 10000;
      const { cos, sin } = ropeTables(pos0 + T + 2, D, theta);
      const x = randn(rng, T * H * D);
      const y = guarded(x);
      b.rope(y.view, cos, sin, T, H, D, pos0, false);
      assertClose(y.view, refRope(x, T, H, D, pos0, theta), FWD.rtol, FWD.atol, 'rope forward');
      assertGuards(y, 'rope');

      // Backward of loss = sum(R * rope(x)) is rope^T(R): compare inverse rope with finite differences.
      const R = randn(rng, T * H * D);
      const g = numericGrad((xv) => dot(R, refRope(xv, T, H, D, pos0, theta)), f64(x));
      const back = R.slice();
      b.rope(back, cos, sin, T, H, D, pos0, true);
      assertClose(back, g, GRAD.rtol, GRAD.atol, 'rope inverse = gradient');

      // Position 0 is the identity; a rotation preserves the norm of each pair.
      const z = x.slice();
      b.rope(z, cos, sin, 1, H, D, 0, false);
      assertClose(z.subarray(0, H * D), x.subarray(0, H * D), 0, 1e-7, 'rope at position 0');
    });

    for (const [past, H, KVH] of [[0, 3, 1], [2, 3, 1], [3, 4, 2], [1, 2, 2]] as const) {
      test(`attention forward and backward (T=5, past=${past}, H=${H}, KVH=${KVH}, D=8)`, () => {
        const b = getB();
        const rng = new Rng(15 + past * 10 + H);
        const T = 5, D = 8, S = past + T;
        const q = randn(rng, T * H * D), k = randn(rng, S * KVH * D), v = randn(rng, S * KVH * D);
        const out = guarded(filled(T * H * D, NaN)), probs = guarded(filled(H * T * S, NaN), 2);
        b.attentionForward(out.view, probs.view, guarded(q).view, guarded(k, 1).view, guarded(v, 6).view, T, past, H, KVH, D);
        const ref = refAttention(q, k, v, T, past, H, KVH, D);
        assertClose(out.view, ref.out, FWD.rtol, 1e-5, 'attention out');
        assertClose(probs.view, ref.probs, FWD.rtol, 1e-6, 'attention probs (0 beyond the causal limit)');
        assertGuards(out, 'attention out'); assertGuards(probs, 'attention probs');

        const R = randn(rng, T * H * D);
        const qd = f64(q), kd = f64(k), vd = f64(v);
        const gq = numericGrad((x) => dot(R, refAttention(x, kd, vd, T, past, H, KVH, D).out), qd);
        const gk = numericGrad((x) => dot(R, refAttention(qd, x, vd, T, past, H, KVH, D).out), kd);
        const gv = numericGrad((x) => dot(R, refAttention(qd, kd, x, T, past, H, KVH, D).out), vd);
        const dq = guarded(filled(T * H * D, NaN));
        const dk0 = randn(rng, S * KVH * D), dv0 = randn(rng, S * KVH * D);
        const dk = guarded(dk0, 1), dv = guarded(dv0, 2);
        b.attentionBackward(dq.view, dk.view, dv.view, guarded(R, 3).view, q, k, v, probs.view, T, past, H, KVH, D);
        assertClose(dq.view, gq, GRAD.rtol, GRAD.atol, 'attention dq');
        assertClose(Array.from(dk.view, (x, i) => x - dk0[i]), gk, GRAD.rtol, GRAD.atol, 'attention dk (accumulated)');
        assertClose(Array.from(dv.view, (x, i) => x - dv0[i]), gv, GRAD.rtol, GRAD.atol, 'attention dv (accumulated)');
        assertGuards(dq, 'attention dq'); assertGuards(dk, 'attention dk'); assertGuards(dv, 'attention dv');
      });
    }

    test('attention forward over several row blocks and key panels matches float64 (T=70 after 23 past rows, D=40)', () => {
      const b = getB();
      const rng = new Rng(17);
      // 70 rows: two blocks of query rows in the native kernel; 93 keys and D = 40: partial 16-wide panels.
      const T = 70, past = 23, H = 4, KVH = 2, D = 40, S = past + T;
      const q = randn(rng, T * H * D), k = randn(rng, S * KVH * D), v = randn(rng, S * KVH * D);
      const out = guarded(filled(T * H * D, NaN)), probs = guarded(filled(H * T * S, NaN), 2);
      b.attentionForward(out.view, probs.view, q, k, v, T, past, H, KVH, D);
      const ref = refAttention(q, k, v, T, past, H, KVH, D);
      assertClose(out.view, ref.out, FWD.rtol, 1e-5, 'attention out');
      assertClose(probs.view, ref.probs, FWD.rtol, 1e-6, 'attention probs');
      assertGuards(out, 'attention out'); assertGuards(probs, 'attention probs');
    });

    test('attention is causal: changing a later key or value leaves earlier outputs unchanged', () => {
      const b = getB();
      const rng = new Rng(16);
      const T = 5, past = 2, H = 3, KVH = 1, D = 8, S = past + T;
      const q = randn(rng, T * H * D), k = randn(rng, S * KVH * D), v = randn(rng, S * KVH * D);
      const out1 = new Float32Array(T * H * D), out2 = new Float32Array(T * H * D), probs = new Float32Array(H * T * S);
      b.attentionForward(out1, probs, q, k, v, T, past, H, KVH, D);
      // Key/value at absolute position past + 3 is first visible to query t = 3.
      const k2 = k.slice(), v2 = v.slice();
      for (let i = 0; i < D; i++) { k2[(past + 3) * D + i] += 1; v2[(past + 3) * D + i] -= 2; }
      b.attentionForward(out2, probs, q, k2, v2, T, past, H, KVH, D);
      const row = H * D;
      assert.deepEqual([...out2.subarray(0, 3 * row)], [...out1.subarray(0, 3 * row)], 'queries 0..2 must not see position past+3');
      for (let t = 3; t < T; t++) {
        assert.notDeepEqual([...out2.subarray(t * row, (t + 1) * row)], [...out1.subarray(t * row, (t + 1) * row)], `query ${t} sees it`);
      }
    });

    test('attention GQA: KV head j serves exactly query heads j*r .. j*r+r-1', () => {
      const b = getB();
      const rng = new Rng(17);
      const T = 4, past = 1, H = 6, KVH = 2, D = 8, S = past + T; // r = 3
      const q = randn(rng, T * H * D), k = randn(rng, S * KVH * D), v = randn(rng, S * KVH * D);
      const base = new Float32Array(T * H * D), probs = new Float32Array(H * T * S);
      b.attentionForward(base, probs, q, k, v, T, past, H, KVH, D);
      // Perturb KV head 1 only: query heads 0-2 are unchanged, heads 3-5 change.
      const k2 = k.slice(), v2 = v.slice();
      for (let s = 0; s < S; s++) for (let i = 0; i < D; i++) { k2[s * KVH * D + D + i] *= -1; v2[s * KVH * D + D + i] += 1; }
      const out = new Float32Array(T * H * D);
      b.attentionForward(out, probs, q, k2, v2, T, past, H, KVH, D);
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < H; h++) {
          const o = t * H * D + h * D;
          const same = [...out.subarray(o, o + D)].every((x, i) => x === base[o + i]);
          assert.equal(same, h < 3, `t=${t} head ${h} should ${h < 3 ? 'not ' : ''}change`);
        }
      }
      // And equals plain multi-head attention with each KV head repeated r times.
      const rep = (a: Float32Array): Float32Array => {
        const r = new Float32Array(S * H * D);
        for (let s = 0; s < S; s++) for (let h = 0; h < H; h++) for (let i = 0; i < D; i++) r[s * H * D + h * D + i] = a[s * KVH * D + Math.floor(h / 3) * D + i];
        return r;
      };
      const mha = new Float32Array(T * H * D), probsM = new Float32Array(H * T * S);
      b.attentionForward(mha, probsM, q, rep(k), rep(v), T, past, H, H, D);
      assertClose(base, mha, FWD.rtol, 1e-6, 'GQA equals MHA with repeated KV heads');
    });

    test('swiglu forward matches float64 and its backward matches finite differences', () => {
      const b = getB();
      const rng = new Rng(18);
      const n = 37;
      const gate = randn(rng, n, 2), up = randn(rng, n);
      gate[0] = 30; gate[1] = -30; // saturated sigmoid on both sides
      const out = guarded(filled(n, NaN));
      b.swigluForward(out.view, guarded(gate).view, guarded(up, 1).view, n);
      assertClose(out.view, refSwiglu(gate, up), FWD.rtol, FWD.atol, 'swiglu out');
      assertGuards(out, 'swiglu out');
      const R = randn(rng, n);
      const gd = f64(gate), ud = f64(up);
      const gg = numericGrad((x) => dot(R, refSwiglu(x, ud)), gd);
      const gu = numericGrad((x) => dot(R, refSwiglu(gd, x)), ud);
      const dgate = guarded(filled(n, NaN)), dup = guarded(filled(n, NaN), 2);
      b.swigluBackward(dgate.view, dup.view, R, gate, up, n);
      assertClose(dgate.view, gg, GRAD.rtol, GRAD.atol, 'swiglu dgate');
      assertClose(dup.view, gu, GRAD.rtol, GRAD.atol, 'swiglu dup');
      assertGuards(dgate, 'swiglu dgate'); assertGuards(dup, 'swiglu dup');
    });

    test('exponentials stay accurate in relative terms over the whole float range (swiglu, softmax)', () => {
      const b = getB();
      // silu(g) = g * sigmoid(g) for g in [-85, 85]: tiny values must keep their relative accuracy.
      const n = 341;
      const gate = Float32Array.from({ length: n }, (_, i) => -85 + i * 0.5);
      const up = filled(n, 1), out = new Float32Array(n);
      b.swigluForward(out, gate, up, n);
      assertClose(out, refSwiglu(gate, up), 1e-5, 1e-37, 'swiglu over [-85, 85]');
      // Special values behave as the float64 formula g / (1 + exp(-g)) does: NaN stays NaN,
      // +inf / 1 = +inf, -inf / inf = NaN.
      const special = new Float32Array([NaN, Infinity, -Infinity, 100, -100]);
      const sOut = new Float32Array(5);
      b.swigluForward(sOut, special, filled(5, 2), 5);
      assert.ok(Number.isNaN(sOut[0]), `silu(NaN) gave ${sOut[0]}`);
      assert.equal(sOut[1], Infinity);
      assert.ok(Number.isNaN(sOut[2]) && Number.isNaN(refSwiglu([-Infinity], [2])[0]), `silu(-inf) gave ${sOut[2]}`);
      assert.equal(sOut[3], 200);
      assert.ok(Math.abs(sOut[4]) < 1e-38, `silu(-100) gave ${sOut[4]}`);
      // Scores spread over ~150: probabilities down to ~1e-30 relative to the largest.
      const T = 6, H = 1, D = 4, S = T;
      const q = Float32Array.from({ length: T * D }, (_, i) => (i % D === 0 ? 30 : 0));
      const k = Float32Array.from({ length: S * D }, (_, i) => (i % D === 0 ? (i / D) * 1.3 - 3 : 0.5));
      const v = Float32Array.from({ length: S * D }, (_, i) => i);
      const out2 = new Float32Array(T * H * D), probs = new Float32Array(H * T * S);
      b.attentionForward(out2, probs, q, k, v, T, 0, H, 1, D);
      const ref = refAttention(q, k, v, T, 0, H, 1, D);
      assertClose(probs, ref.probs, 1e-5, 1e-37, 'probabilities across a wide range');
      assertClose(out2, ref.out, 1e-5, 1e-6, 'outputs with a wide score range');
    });

    test('axpy adds alpha * x to the first n entries only', () => {
      const b = getB();
      const x = new Float32Array([1, 2, 3, 4]);
      const y = guarded(new Float32Array([10, 20, 30, 40]));
      b.axpy(3, -2, x, y.view);
      assert.deepEqual([...y.view], [8, 16, 24, 40]);
      assertGuards(y, 'axpy y');
    });

    test('bad arguments throw a TypeError naming the argument and the length needed', () => {
      const b = getB();
      const a = new Float32Array(6);
      const err = (re: RegExp) => (e: unknown) => e instanceof TypeError && re.test((e as Error).message);
      assert.throws(() => b.sgemm(false, false, 2, 3, 2, 1, new Float32Array(3), 2, a, 3, 0, a, 3),
        err(/sgemm: A has 3 entries, expected at least 4/));
      assert.throws(() => b.sgemm(false, true, 2, 3, 2, 1, a, 2, new Float32Array(5), 2, 0, a, 3),
        err(/sgemm: B has 5 entries, expected at least 6/));
      assert.throws(() => b.sgemm(false, false, 2, 3, 2, 1, a, 2, a, 3, 0, new Float32Array(5), 3),
        err(/sgemm: C has 5 entries, expected at least 6/));
      assert.throws(() => b.sgemm(false, false, 2, 3, 2, 1, a, 1, a, 3, 0, a, 3),
        err(/sgemm: row stride of A is 1, expected at least 2/));
      assert.throws(() => b.sgemm(false, false, 2.5, 3, 2, 1, a, 2, a, 3, 0, a, 3), err(/sgemm: M must be a non-negative integer/));
      assert.throws(() => b.sgemm(false, false, -1, 3, 2, 1, a, 2, a, 3, 0, a, 3), err(/sgemm: M must be a non-negative integer/));
      assert.throws(() => b.sgemm(false, false, 2, 3, 2, NaN, a, 2, a, 3, 0, a, 3), err(/sgemm: alpha must be a finite number/));
      assert.throws(() => b.sgemm(false, false, 2, 3, 2, 1, new Float64Array(6) as unknown as Float32Array, 2, a, 3, 0, a, 3),
        err(/sgemm: A must be a Float32Array/));
      assert.throws(() => b.sgemv(true, 2, 3, 1, a, 3, new Float32Array(1), 0, a), err(/sgemv: x has 1 entries, expected at least 2/));
      assert.throws(() => b.sgemv(false, 2, 3, 1, a, 3, a, 0, new Float32Array(1)), err(/sgemv: y has 1 entries, expected at least 2/));
      assert.throws(() => b.rmsnormForward(a, new Float32Array(1), a, a, 2, 3, 1e-5), err(/rmsnormForward: rstd has 1 entries, expected at least 2/));
      assert.throws(() => b.rmsnormForward(a, a, a, a, 2, 0, 1e-5), err(/rmsnormForward: C must be positive/));
      assert.throws(() => b.rmsnormBackward(a, new Float32Array(2), a, a, a, a, 2, 3), err(/rmsnormBackward: dw has 2 entries, expected at least 3/));
      assert.throws(() => b.rope(a, a, a, 1, 2, 3, 0, false), err(/rope: D must be a positive even number/));
      assert.throws(() => b.rope(new Float32Array(8), new Float32Array(3), new Float32Array(4), 2, 1, 4, 0, false),
        err(/rope: cos has 3 entries, expected at least 4/));
      const q = new Float32Array(2 * 2 * 4);
      assert.throws(() => b.attentionForward(q, new Float32Array(8), q, new Float32Array(8), new Float32Array(8), 2, 1, 2, 1, 4),
        err(/attentionForward: probs has 8 entries, expected at least 12/));
      assert.throws(() => b.attentionForward(q, new Float32Array(8), q, q, q, 2, 0, 3, 2, 4),
        err(/attentionForward: H \(3\) must be a positive multiple of KVH \(2\)/));
      assert.throws(() => b.attentionBackward(q, new Float32Array(11), q, q, q, q, q, q, 2, 1, 2, 1, 4),
        err(/attentionBackward: dk has 11 entries, expected at least 12/));
      assert.throws(() => b.swigluForward(a, a, new Float32Array(5), 6), err(/swigluForward: up has 5 entries, expected at least 6/));
      assert.throws(() => b.swigluBackward(a, a, a, new Float32Array(5), a, 6), err(/swigluBackward: gate has 5 entries, expected at least 6/));
      assert.throws(() => b.axpy(7, 1, a, a), err(/axpy: x has 6 entries, expected at least 7/));
      const Wp = b.packWeights(a, 3, 2);
      assert.throws(() => b.packWeights(a, 4, 2), err(/packWeights: W has 6 entries, expected at least 8/));
      assert.throws(() => b.gemmPacked(2, new Float32Array(3), 2, Wp, a, 3), err(/gemmPacked: A has 3 entries, expected at least 4/));
      assert.throws(() => b.gemmPacked(2, a, 2, Wp, new Float32Array(5), 3), err(/gemmPacked: C has 5 entries, expected at least 6/));
      assert.throws(() => b.gemmPacked(2, a, 1, Wp, a, 3), err(/gemmPacked: row stride of A is 1, expected at least 2/));
      const other = { ...Wp, backend: b.name === 'native' ? 'typescript' as const : 'native' as const };
      assert.throws(() => b.gemmPacked(2, a, 2, other, a, 3), err(/gemmPacked: weights packed by the (native|typescript) backend, used with/));
      assert.throws(() => b.setThreads(0), err(/setThreads: n must be a positive integer/));
    });

    test('setThreads changes getThreads and results stay the same', () => {
      const b = getB();
      const prev = b.getThreads();
      const rng = new Rng(19);
      const M = 70, N = 90, K = 50;
      const A = randn(rng, M * K), B = randn(rng, K * N);
      const C1 = new Float32Array(M * N), C2 = new Float32Array(M * N);
      try {
        b.setThreads(1);
        assert.equal(b.getThreads(), 1);
        b.sgemm(false, false, M, N, K, 1, A, K, B, N, 0, C1, N);
        b.setThreads(2);
        assert.equal(b.getThreads(), 2);
        b.sgemm(false, false, M, N, K, 1, A, K, B, N, 0, C2, N);
        assertClose(C2, C1, 1e-5, 1e-5, 'sgemm with 1 vs 2 threads');
      } finally {
        b.setThreads(prev);
      }
    });
  });
}
