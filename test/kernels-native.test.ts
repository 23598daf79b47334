// The native addon against the same float64 references and finite differences; skipped (with the
// reason) when the addon is not built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadNativeAddon, NativeBackend, OPENBLAS_THREAD_TIMEOUT } from '../src/kernels/native.js';
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
