/**
 * Choosing the compute backend.
 *
 * getBackend('auto') (the default) uses the native addon when it loads and otherwise the TypeScript
 * reference, saying once per process on stderr that it fell back and why. Environment overrides,
 * applied when no explicit backend is asked for ('auto' or no argument):
 *   FLAG_TRADER_BACKEND=native|typescript|auto   which backend (native fails loudly when absent)
 *   FLAG_TRADER_THREADS=N                        threads (default: cores); native: OpenBLAS threads
 *   FLAG_TRADER_NATIVE_ADDON=/path/x.node        load the addon from this file instead (tests)
 * Backends are created once per process and shared; the environment is read when they are created.
 */
import { availableParallelism } from 'node:os';
import type { Backend } from './backend.js';
import { loadNativeAddon, NativeBackend } from './native.js';
import { TypeScriptBackend } from './typescript.js';

export type { Backend } from './backend.js';
export { TypeScriptBackend } from './typescript.js';
export { NativeBackend } from './native.js';

export type BackendChoice = 'native' | 'typescript' | 'auto';

let tsBackend: TypeScriptBackend | undefined;
let nativeBackend: NativeBackend | undefined;
let nativeError: Error | undefined;
let warnedFallback = false;

function threadsFromEnv(): number {
  const raw = process.env.FLAG_TRADER_THREADS;
  if (raw === undefined || raw === '') return availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`FLAG_TRADER_THREADS must be a positive integer, got "${raw}"`);
  }
  return n;
}

function choiceFromEnv(): BackendChoice {
  const raw = process.env.FLAG_TRADER_BACKEND;
  if (raw === undefined || raw === '') return 'auto';
  if (raw === 'native' || raw === 'typescript' || raw === 'auto') return raw;
  throw new Error(`FLAG_TRADER_BACKEND must be native, typescript or auto, got "${raw}"`);
}

function getTypeScript(): TypeScriptBackend {
  if (!tsBackend) {
    tsBackend = new TypeScriptBackend();
    tsBackend.setThreads(threadsFromEnv());
  }
  return tsBackend;
}

/** The native backend, or undefined with the reason kept in nativeUnavailableReason(). */
function tryNative(): NativeBackend | undefined {
  if (nativeBackend) return nativeBackend;
  if (nativeError) return undefined;
  try {
    const b = new NativeBackend(loadNativeAddon());
    b.setThreads(threadsFromEnv());
    nativeBackend = b;
  } catch (e) {
    nativeError = e as Error;
  }
  return nativeBackend;
}

/** Why the native backend cannot be used, or undefined when it can. */
export function nativeUnavailableReason(): string | undefined {
  tryNative();
  return nativeError?.message;
}

/**
 * The backend to compute with. 'native' throws when the addon cannot load; 'typescript' is always
 * there; 'auto' prefers native and falls back (one stderr line per process).
 */
export function getBackend(prefer: BackendChoice = 'auto'): Backend {
  const choice = prefer === 'auto' ? choiceFromEnv() : prefer;
  if (choice === 'typescript') return getTypeScript();
  const native = tryNative();
  if (native) return native;
  if (choice === 'native') {
    throw new Error(`native backend requested but unavailable: ${nativeError?.message}`);
  }
  if (!warnedFallback) {
    warnedFallback = true;
    process.stderr.write(`[kernels] using the TypeScript backend (slow): ${nativeError?.message}\n`);
  }
  return getTypeScript();
}

/**
 * sgemm speed in GFLOP/s on square n x n x n products: the median of several timed runs after a
 * warm-up (2 n^3 floating-point operations per product).
 */
export function measureSgemmGflops(backend: Backend, n = 512): number {
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`measureSgemmGflops: n must be a positive integer, got ${n}`);
  const A = new Float32Array(n * n), B = new Float32Array(n * n), C = new Float32Array(n * n);
  // Deterministic, bounded contents (the value does not matter for timing, only that it is not 0).
  for (let i = 0; i < n * n; i++) { A[i] = ((i * 7) % 13) / 13 - 0.5; B[i] = ((i * 5) % 11) / 11 - 0.5; }
  const run = (): number => {
    const t0 = process.hrtime.bigint();
    backend.sgemm(false, false, n, n, n, 1, A, n, B, n, 0, C, n);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  run();
  // Aim for ~0.5 s of timing in total, between 3 and 25 runs.
  const first = run();
  const reps = Math.max(3, Math.min(25, Math.floor(0.5 / Math.max(first, 1e-6))));
  const times = [first];
  for (let r = 1; r < reps; r++) times.push(run());
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  return (2 * n * n * n) / median / 1e9;
}

/**
 * What a backend computes with, for benchmark reports: the native addon's BLAS build and the OpenBLAS
 * core it runs (its config string names it), and OPENBLAS_CORETYPE when the environment pins one. The
 * core decides the sgemm rate: on this project's Zen 4 machines OpenBLAS 0.3.21 picks its AVX-512
 * kernels (Cooperlake) by itself, while the workplace pins Haswell's AVX2 ones (docs/benchmarks.md).
 */
export function backendInfo(backend: Backend): string {
  if (!(backend instanceof NativeBackend)) return `${backend.name} kernels`;
  const pin = process.env.OPENBLAS_CORETYPE;
  return backend.info() + (pin === undefined ? '' : `; OPENBLAS_CORETYPE=${pin} from the environment`);
}
