// The native addon against the same float64 references and finite differences; skipped (with the
// reason) when the addon is not built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { KERNEL_ISAS, loadNativeAddon, NativeBackend, OPENBLAS_THREAD_TIMEOUT } from '../src/kernels/native.js';
import { defineBackendTests } from './kernels-suite.js';

let backend: NativeBackend | undefined;
let skip: string | false = false;
try {
  backend = new NativeBackend(loadNativeAddon());
} catch (e) {
  skip = (e as Error).message;
}
defineBackendTests('native', () => backend!, skip);

test('loading the addon sets OpenBLAS\'s spin time to ours unless the environment already gives one', { skip }, () => {
  const script = `import('${pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'kernels', 'native.js')).href}').then((m) => { m.loadNativeAddon(); console.log(process.env.OPENBLAS_THREAD_TIMEOUT); })`;
  const run = (env: NodeJS.ProcessEnv) => execFileSync(process.execPath, ['-e', script], { env, encoding: 'utf8' }).trim();
  const { OPENBLAS_THREAD_TIMEOUT: _drop, ...rest } = process.env;
  assert.equal(run(rest), OPENBLAS_THREAD_TIMEOUT);
  assert.equal(run({ ...rest, OPENBLAS_THREAD_TIMEOUT: '10' }), '10');
});

test('the packed products give the same bits on every instruction set this CPU runs (FLAG_TRADER_KERNEL_ISA)', { skip }, () => {
  const widest = backend!.info().match(/packed products (\w+)/)?.[1];
  assert.ok(widest !== undefined && (KERNEL_ISAS as readonly string[]).includes(widest), `info names the packed path: ${backend!.info()}`);
  const paths = KERNEL_ISAS.slice(0, KERNEL_ISAS.indexOf(widest as (typeof KERNEL_ISAS)[number]) + 1);
  const here = dirname(fileURLToPath(import.meta.url));
  const url = (p: string) => pathToFileURL(join(here, '..', 'src', ...p.split('/'))).href;
  // Odd shapes: a partial last panel (N = 45), row tails (M = 13), K not a multiple of anything.
  const script = `Promise.all([import('${url('kernels/native.js')}'), import('${url('util/rng.js')}'), import('node:crypto')]).then(([n, r, c]) => {
    const b = new n.NativeBackend(n.loadNativeAddon()); b.setThreads(2);
    const rng = new r.Rng(5), M = 13, N = 45, K = 301;
    const f = (len) => Float32Array.from({ length: len }, () => rng.normal());
    const A = f(M * K), W = f(N * K), C = new Float32Array(M * N);
    b.gemmPacked(M, A, K, b.packWeights(W, N, K), C, N);
    console.log(b.info().match(/packed products (\\w+)/)[1], c.createHash('sha256').update(Buffer.from(C.buffer)).digest('hex'));
  })`;
  const runs = paths.map((isa) => execFileSync(process.execPath, ['-e', script], { env: { ...process.env, FLAG_TRADER_KERNEL_ISA: isa }, encoding: 'utf8' }).trim().split(' '));
  assert.deepEqual(runs.map((r) => r[0]), paths, 'each run used the path it asked for');
  for (const r of runs.slice(1)) assert.equal(r[1], runs[0]![1], `${r[0]} against ${runs[0]![0]}`);
  const bad = (isa: string) => () => execFileSync(process.execPath, ['-e', script], { env: { ...process.env, FLAG_TRADER_KERNEL_ISA: isa }, stdio: 'pipe' });
  assert.throws(bad('sse9'), /FLAG_TRADER_KERNEL_ISA is 'sse9': expected one of portable, avx2, avx512/);
});
