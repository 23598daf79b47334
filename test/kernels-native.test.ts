// The native addon against the same float64 references and finite differences; skipped (with the
// reason) when the addon is not built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import { AVX512_FLAGS, blasCoreFor, cpuinfoFlags, loadNativeAddon, NativeBackend, OPENBLAS_THREAD_TIMEOUT } from '../src/kernels/native.js';
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

test('the OpenBLAS core: SkylakeX on CPUs with all of AVX-512 F/CD/BW/DQ/VL, OpenBLAS\'s own choice otherwise', () => {
  const zen4 = 'processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16\nbogomips\t: 1\n\nprocessor\t: 1\nflags\t\t: fpu\n';
  const flags = cpuinfoFlags(zen4);
  assert.ok(flags.has('avx512vl') && flags.has('fpu') && !flags.has('bogomips'), 'the first CPU\'s flags line');
  assert.equal(blasCoreFor(flags), 'SkylakeX');
  for (const missing of AVX512_FLAGS) {
    const without = new Set(flags);
    without.delete(missing);
    assert.equal(blasCoreFor(without), undefined, `without ${missing}`);
  }
  assert.equal(blasCoreFor(cpuinfoFlags('flags\t\t: fpu sse2 avx avx2 fma\n')), undefined, 'an AVX2 machine');
  assert.equal(cpuinfoFlags('processor\t: 0\n').size, 0, 'no flags line');
});

test('loading the addon asks OpenBLAS for the AVX-512 core where the CPU has it, unless the environment names one', { skip }, () => {
  const script = `import('${pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'kernels', 'native.js')).href}').then((m) => { const a = m.loadNativeAddon(); console.log(JSON.stringify([process.env.OPENBLAS_CORETYPE ?? null, a.info()])); })`;
  const run = (env: NodeJS.ProcessEnv) => JSON.parse(execFileSync(process.execPath, ['-e', script], { env, encoding: 'utf8' }).trim()) as [string | null, string];
  const { OPENBLAS_CORETYPE: _drop, ...rest } = process.env;
  let host = new Set<string>();
  try { host = cpuinfoFlags(readFileSync('/proc/cpuinfo', 'utf8')); } catch { /* no /proc: nothing is asked for */ }
  const [core, info] = run(rest);
  assert.equal(core, blasCoreFor(host) ?? null);
  // A DYNAMIC_ARCH build names the core it runs in its config string; other builds ignore the variable.
  if (core !== null && info.includes('DYNAMIC_ARCH')) assert.match(info, new RegExp(`\\b${core}\\b`), info);
  const [kept, keptInfo] = run({ ...rest, OPENBLAS_CORETYPE: 'Haswell' });
  assert.equal(kept, 'Haswell');
  if (keptInfo.includes('DYNAMIC_ARCH') && host.has('avx2')) assert.match(keptInfo, /\bHaswell\b/, keptInfo);
});
