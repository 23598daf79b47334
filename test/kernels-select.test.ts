// Choosing the backend: explicit choice, environment overrides, the one-line fallback notice, the
// GFLOP/s probe and the build script's up-to-date path. Environment cases run in child processes
// because the choice is made once per process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendInfo, getBackend, measureSgemmGflops, nativeUnavailableReason } from '../src/kernels/index.js';

const nativeSkip = nativeUnavailableReason() ?? false;
const indexUrl = new URL('../src/kernels/index.js', import.meta.url).href;

/** Runs a snippet that imports the kernels module in a fresh process with the given environment. */
function child(code: string, env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  // Keep loaders such as `--import tsx` (needed when the tests run from .ts sources), drop test flags.
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'));
  const script = `import * as k from ${JSON.stringify(indexUrl)};\n${code}`;
  const base: Record<string, string | undefined> = { ...process.env };
  delete base.FLAG_TRADER_BACKEND; delete base.FLAG_TRADER_THREADS; delete base.FLAG_TRADER_NATIVE_ADDON;
  const r = spawnSync(process.execPath, [...execArgv, '--input-type=module', '-e', script],
    { env: { ...base, ...env }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

test('typescript is always there and shared per process', () => {
  assert.equal(getBackend('typescript').name, 'typescript');
  assert.equal(getBackend('typescript'), getBackend('typescript'));
});

test('native is chosen explicitly and by auto when built', { skip: nativeSkip }, () => {
  assert.equal(getBackend('native').name, 'native');
  assert.equal(getBackend('native'), getBackend('native'));
  const r = child(`console.log(k.getBackend().name);`, {});
  assert.equal(r.stdout, 'native', r.stderr);
  assert.doesNotMatch(r.stderr, /\[kernels\]/);
});

test('auto falls back to TypeScript with one stderr line naming the reason', () => {
  const r = child(`k.getBackend(); const b = k.getBackend('auto'); console.log(b.name);`,
    { FLAG_TRADER_NATIVE_ADDON: '/nonexistent/flag_kernels.node' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'typescript');
  const lines = r.stderr.split('\n').filter((l) => l.includes('[kernels]'));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /TypeScript backend.*\/nonexistent\/flag_kernels\.node/);
});

test('an addon file that does not load gives a fallback naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kernels-'));
  try {
    const bad = join(dir, 'flag_kernels.node');
    writeFileSync(bad, 'not a shared object');
    const r = child(`console.log(k.getBackend().name);`, { FLAG_TRADER_NATIVE_ADDON: bad });
    assert.equal(r.stdout, 'typescript');
    assert.match(r.stderr, new RegExp(`native addon at ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} failed to load`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('FLAG_TRADER_BACKEND selects the backend; native that is missing is an error, not a fallback', () => {
  let r = child(`console.log(k.getBackend().name);`, { FLAG_TRADER_BACKEND: 'typescript' });
  assert.equal(r.stdout, 'typescript');
  assert.doesNotMatch(r.stderr, /\[kernels\]/);
  r = child(`console.log(k.getBackend().name);`, { FLAG_TRADER_BACKEND: 'native', FLAG_TRADER_NATIVE_ADDON: '/nonexistent/x.node' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /native backend requested but unavailable: native addon not built/);
  r = child(`console.log(k.getBackend().name);`, { FLAG_TRADER_BACKEND: 'gpu' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /FLAG_TRADER_BACKEND must be native, typescript or auto, got "gpu"/);
  // An explicit argument wins over the environment.
  r = child(`console.log(k.getBackend('typescript').name);`, { FLAG_TRADER_BACKEND: 'native' });
  assert.equal(r.stdout, 'typescript');
});

test('FLAG_TRADER_THREADS sets the thread count and is validated', () => {
  let r = child(`console.log(k.getBackend().getThreads());`, { FLAG_TRADER_THREADS: '1' });
  assert.equal(r.stdout, '1', r.stderr);
  r = child(`console.log(k.getBackend().getThreads());`, { FLAG_TRADER_THREADS: '3' });
  assert.equal(r.stdout, '3', r.stderr);
  r = child(`console.log(k.getBackend().getThreads());`, { FLAG_TRADER_THREADS: 'two' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /FLAG_TRADER_THREADS must be a positive integer, got "two"/);
});

test('measureSgemmGflops gives a positive rate; native beats TypeScript', { skip: nativeSkip }, () => {
  const slow = measureSgemmGflops(getBackend('typescript'), 96);
  // One thread: OpenBLAS's threads spin-wait for each other, so on a loaded machine a 2-thread timing can
  // drop below the single-threaded TypeScript loop's; one thread compares the kernels themselves.
  const native = getBackend('native');
  const threads = native.getThreads();
  native.setThreads(1);
  let fast: number;
  try { fast = measureSgemmGflops(native, 96); } finally { native.setThreads(threads); }
  assert.ok(Number.isFinite(slow) && slow > 0, `typescript ${slow}`);
  assert.ok(fast > 2 * slow, `native ${fast} GFLOP/s vs typescript ${slow}`);
  assert.throws(() => measureSgemmGflops(getBackend('typescript'), 0), /n must be a positive integer/);
});

test('build-native exits 0 quickly when the addon is up to date', { skip: nativeSkip }, () => {
  let root = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(root, 'package.json'))) root = dirname(root);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /up to date/);
  assert.ok(Date.now() - t0 < 5000);
});

test('backendInfo names the BLAS build and core, and a core the environment pins', { skip: nativeSkip }, () => {
  const native = getBackend('native');
  const info = backendInfo(native);
  assert.match(info, /^OpenBLAS \d+\.\d+\.\d+ .*\(threads \d+\)/, info);
  const pin = process.env.OPENBLAS_CORETYPE;
  if (pin === undefined) assert.doesNotMatch(info, /OPENBLAS_CORETYPE/, info);
  else {
    assert.ok(info.endsWith(`; OPENBLAS_CORETYPE=${pin} from the environment`), info);
    // A DYNAMIC_ARCH build runs the pinned core and names it in its config string.
    if (info.includes('DYNAMIC_ARCH')) assert.ok(info.toLowerCase().includes(pin.toLowerCase()), info);
  }
  assert.equal(backendInfo(getBackend('typescript')), 'typescript kernels');
});
