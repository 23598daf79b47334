/**
 * Kernel speed at the SmolLM2-135M shapes (hidden 576, 9 heads, 3 KV heads, head dim 64, MLP 1536,
 * T = 300 tokens): sgemm GFLOP/s for the forward and backward products of every projection, and
 * the fused kernels' times, for the native backend with 1 and 2 threads and for the TypeScript one.
 * The forward products also run on weights packed once (gemmPacked, the frozen layers' path), at T
 * and at --rows (a step's account section). Medians of repeated runs.
 *
 *   node --import tsx bench/kernels.ts [--json] [--T 300] [--rows 62] [--no-typescript]
 */
import { Command } from 'commander';
import type { Backend } from '../src/kernels/backend.js';
import { getBackend, nativeUnavailableReason } from '../src/kernels/index.js';
import { Rng } from '../src/util/rng.js';
import { positiveInt } from '../src/util/options.js';

/** packed: the forward product x W^T on W packed once (gemmPacked), as the frozen layers run it. */
interface GemmCase { name: string; tA: boolean; tB: boolean; M: number; N: number; K: number; packed?: boolean }
interface GemmResult { name: string; shape: string; gflops: Record<string, number> }
interface FusedResult { name: string; microseconds: Record<string, number> }

const program = new Command()
  .option('--json', 'print one JSON object instead of tables')
  .option('--T <n>', 'tokens per sequence', positiveInt('--T'), 300)
  .option('--rows <n>', 'rows of the small forward products (a step\'s account section)', positiveInt('--rows'), 62)
  .option('--no-typescript', 'skip the (slow) TypeScript backend')
  .parse();
const opts = program.opts<{ json?: boolean; T: number; rows: number; typescript: boolean }>();
const T = opts.T;

const C = 576, H = 9, KVH = 3, D = 64, F = 1536;
const rng = new Rng(1);
const rand = (n: number): Float32Array => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * 0.1;
  return a;
};

/** Median seconds of `fn` over repeated runs (after one warm-up), aiming at ~budget seconds in total. */
function timeIt(fn: () => void, budget: number, maxReps = 50): number {
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (times.length < maxReps && (performance.now() - start) / 1000 < budget)) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

// Linear layer y[T,out] = x[T,in] W[out,in]^T; backward dx = dy W, dW += dy^T x.
const linears: [string, number, number][] = [['q/o 576->576', C, C], ['k/v 576->192', C, KVH * D],
  ['gate/up 576->1536', C, F], ['down 1536->576', F, C]];
const gemmCases: GemmCase[] = [];
for (const [name, inF, outF] of linears) {
  gemmCases.push({ name: `${name} fwd  x W^T`, tA: false, tB: true, M: T, N: outF, K: inF });
  gemmCases.push({ name: `${name} dx   dy W`, tA: false, tB: false, M: T, N: inF, K: outF });
  gemmCases.push({ name: `${name} dW   dy^T x`, tA: true, tB: false, M: outF, N: inF, K: T });
}
for (const M of [T, opts.rows]) {
  for (const [name, inF, outF] of linears) {
    if (M !== T) gemmCases.push({ name: `${name} fwd  x W^T`, tA: false, tB: true, M, N: outF, K: inF });
    gemmCases.push({ name: `${name} fwd  packed`, tA: false, tB: true, M, N: outF, K: inF, packed: true });
  }
}

interface Variant { label: string; backend: Backend; threads: number; budget: number }
const variants: Variant[] = [];
const nativeReason = nativeUnavailableReason();
if (!nativeReason) {
  variants.push({ label: 'native-1t', backend: getBackend('native'), threads: 1, budget: 0.3 });
  variants.push({ label: 'native-2t', backend: getBackend('native'), threads: 2, budget: 0.3 });
}
if (opts.typescript) variants.push({ label: 'typescript', backend: getBackend('typescript'), threads: 1, budget: 0.5 });

const gemm: GemmResult[] = gemmCases.map((c) => ({ name: c.name, shape: `${c.M}x${c.N}x${c.K}${c.tA ? ' tA' : ''}${c.tB ? ' tB' : ''}`, gflops: {} }));
const fused: FusedResult[] = [];

for (const v of variants) {
  v.backend.setThreads(v.threads);
  const b = v.backend;
  gemmCases.forEach((c, i) => {
    const A = rand(c.M * c.K), B = rand(c.K * c.N), Cm = new Float32Array(c.M * c.N);
    const lda = c.tA ? c.M : c.K, ldb = c.tB ? c.K : c.N;
    const Wp = c.packed ? b.packWeights(B, c.N, c.K) : undefined;
    const s = Wp ? timeIt(() => b.gemmPacked(c.M, A, lda, Wp, Cm, c.N), v.budget, 30)
      : timeIt(() => b.sgemm(c.tA, c.tB, c.M, c.N, c.K, 1, A, lda, B, ldb, 0, Cm, c.N), v.budget, 30);
    gemm[i].gflops[v.label] = (2 * c.M * c.N * c.K) / s / 1e9;
  });

  const S = T;
  const x = rand(T * C), w = rand(C), out = new Float32Array(T * C), rstd = new Float32Array(T), dx = new Float32Array(T * C), dw = new Float32Array(C);
  const q = rand(T * H * D), k = rand(S * KVH * D), vv = rand(S * KVH * D), ao = new Float32Array(T * H * D), probs = new Float32Array(H * T * S);
  const dq = new Float32Array(T * H * D), dk = new Float32Array(S * KVH * D), dv = new Float32Array(S * KVH * D), dout = rand(T * H * D);
  const cos = rand(S * D / 2), sin = rand(S * D / 2);
  const g = rand(T * F), u = rand(T * F), so = new Float32Array(T * F), dg = new Float32Array(T * F), du = new Float32Array(T * F), sdo = rand(T * F);
  const big = rand(C * F), acc = new Float32Array(C * F);
  b.attentionForward(ao, probs, q, k, vv, T, 0, H, KVH, D);
  const cases: [string, () => void][] = [
    [`rmsnorm fwd [${T},${C}]`, () => b.rmsnormForward(out, rstd, x, w, T, C, 1e-5)],
    [`rmsnorm bwd [${T},${C}]`, () => b.rmsnormBackward(dx, dw, out, x, w, rstd, T, C)],
    [`rope q [${T},${H}x${D}]`, () => b.rope(q, cos, sin, T, H, D, 0, false)],
    [`rope k [${T},${KVH}x${D}]`, () => b.rope(k, cos, sin, T, KVH, D, 0, false)],
    [`attention fwd T=${T} H=${H}/${KVH}`, () => b.attentionForward(ao, probs, q, k, vv, T, 0, H, KVH, D)],
    [`attention bwd T=${T} H=${H}/${KVH}`, () => b.attentionBackward(dq, dk, dv, dout, q, k, vv, probs, T, 0, H, KVH, D)],
    [`attention fwd 1 token, past=${T - 1}`, () => b.attentionForward(ao, probs, q, k, vv, 1, T - 1, H, KVH, D)],
    [`swiglu fwd [${T},${F}]`, () => b.swigluForward(so, g, u, T * F)],
    [`swiglu bwd [${T},${F}]`, () => b.swigluBackward(dg, du, sdo, g, u, T * F)],
    [`axpy ${C}x${F}`, () => b.axpy(C * F, 1e-3, big, acc)],
  ];
  cases.forEach(([name, fn], i) => {
    if (!fused[i]) fused[i] = { name, microseconds: {} };
    fused[i].microseconds[v.label] = timeIt(fn, v.budget / 3, 30) * 1e6;
  });
}

const labels = variants.map((v) => v.label);
if (opts.json) {
  console.log(JSON.stringify({ T, variants: labels, nativeUnavailable: nativeReason ?? null, sgemmGflops: gemm, fusedMicroseconds: fused }, null, 2));
} else {
  if (nativeReason) console.log(`native backend unavailable: ${nativeReason}`);
  const pad = (s: string, n: number): string => s.padEnd(n);
  const num = (x: number | undefined, d: number): string => (x === undefined ? '-' : x.toFixed(d)).padStart(12);
  console.log(`matrix products, GFLOP/s (median; M x N x K shapes, T=${T}; "packed" = gemmPacked on W packed once)`);
  console.log(pad('product', 28) + pad('M x N x K', 22) + labels.map((l) => l.padStart(12)).join(''));
  for (const r of gemm) console.log(pad(r.name, 28) + pad(r.shape, 22) + labels.map((l) => num(r.gflops[l], 1)).join(''));
  console.log(`\nfused kernels, microseconds (median)`);
  console.log(pad('kernel', 50) + labels.map((l) => l.padStart(12)).join(''));
  for (const r of fused) console.log(pad(r.name, 50) + labels.map((l) => num(r.microseconds[l], 0)).join(''));
}
