#!/usr/bin/env node
// Builds the native kernel addon (native/ -> native/build/Release/flag_kernels.node) when it is
// missing or older than its sources. Installs Debian's libopenblas-dev first when the BLAS header or
// library is missing and we are root with apt-get. Never downloads Node headers: node-gyp gets
// --nodedir pointing at headers already on this machine.
// Exit 0: the addon is up to date. Non-zero: it could not be built (the caller falls back to TypeScript).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const output = join(nativeDir, 'build', 'Release', 'flag_kernels.node');
const quiet = process.argv.includes('--quiet');
const log = (msg) => { if (!quiet) process.stderr.write(`[build-native] ${msg}\n`); };
const fail = (msg) => { process.stderr.write(`[build-native] error: ${msg}\n`); process.exit(1); };

/** Newest mtime of the addon's sources (binding.gyp and the C++ files directly in native/). */
function sourcesMtime() {
  let newest = 0;
  for (const name of readdirSync(nativeDir)) {
    if (/\.(cc|cpp|h|hpp|gyp)$/.test(name)) newest = Math.max(newest, statSync(join(nativeDir, name)).mtimeMs);
  }
  return newest;
}

if (!existsSync(join(nativeDir, 'binding.gyp'))) fail(`${join(nativeDir, 'binding.gyp')} is missing`);
if (existsSync(output) && statSync(output).mtimeMs >= sourcesMtime()) {
  log('addon is up to date');
  process.exit(0);
}

// 1. OpenBLAS: header and shared library, from Debian when absent.
const hasHeader = () => ['/usr/include/cblas.h', '/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h',
  '/usr/include/openblas/cblas.h'].some((p) => existsSync(p));
const hasLibrary = () => {
  const r = spawnSync('sh', ['-c', 'ldconfig -p 2>/dev/null | grep -q "libopenblas\\.so "'], { stdio: 'ignore' });
  return r.status === 0 || ['/usr/lib/x86_64-linux-gnu/libopenblas.so', '/usr/lib/aarch64-linux-gnu/libopenblas.so',
    '/usr/lib/libopenblas.so'].some((p) => existsSync(p));
};
// The build tools node-gyp drives (a fresh Debian image may lack them): g++, make, python3.
const hasCommand = (c) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status === 0;
const missingTools = [['g++', 'g++'], ['make', 'make'], ['python3', 'python3']].filter(([cmd]) => !hasCommand(cmd)).map(([, pkg]) => pkg);
const needBlas = !hasHeader() || !hasLibrary();
if (needBlas || missingTools.length > 0) {
  const packages = [...(needBlas ? ['libopenblas-dev'] : []), ...missingTools];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !hasCommand('apt-get')) {
    fail(`missing ${packages.join(', ')} (OpenBLAS's cblas.h/libopenblas.so and the C++ build tools); install them (e.g. \`apt-get install ${packages.join(' ')}\`) and rerun`);
  }
  log(`installing ${packages.join(', ')} with apt-get`);
  const stdio = quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit';
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const r = spawnSync('sh', ['-c', `apt-get update && apt-get install -y --no-install-recommends ${packages.join(' ')}`], { stdio, env });
  if (r.status !== 0) fail(`apt-get install ${packages.join(' ')} failed (exit ${r.status})`);
  if (!hasHeader() || !hasLibrary()) fail('libopenblas-dev was installed but cblas.h or libopenblas.so is still not found');
}

// 2. Node headers already on this machine: Debian's nodejs-dev, or the tree beside the node binary.
let nodedir;
if (existsSync('/usr/include/node/node_api.h')) nodedir = '/usr';
else {
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) nodedir = prefix;
}
if (!nodedir) fail(`Node headers (include/node/node_api.h) not found under /usr or ${dirname(dirname(process.execPath))}`);

// 3. node-gyp from our devDependencies.
const gyp = join(root, 'node_modules', '.bin', 'node-gyp');
if (!existsSync(gyp)) fail(`${gyp} not found; run \`npm ci\` first`);
log(`building the addon (node-gyp, --nodedir=${nodedir})`);
const args = ['rebuild', '--directory', nativeDir, `--nodedir=${nodedir}`, ...(quiet ? ['--silent'] : [])];
const r = spawnSync(gyp, args, { cwd: root, stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit' });
if (r.status !== 0) fail(`node-gyp rebuild failed (exit ${r.status}); the TypeScript backend will be used`);
if (!existsSync(output)) fail(`node-gyp finished but ${output} does not exist`);

// 4. Smoke test: the addon loads and multiplies.
const check = spawnSync(process.execPath, ['-e', `
  const a = require(${JSON.stringify(output)});
  const A = new Float32Array([1, 2, 3, 4]), B = new Float32Array([5, 6, 7, 8]), C = new Float32Array(4);
  a.sgemm(false, false, 2, 2, 2, 1, A, 2, B, 2, 0, C, 2);
  if (C.join() !== '19,22,43,50') { console.error('sgemm gave ' + C.join()); process.exit(1); }
`], { stdio: ['ignore', 'ignore', 'inherit'] });
if (check.status !== 0) fail(`the built addon ${output} does not load or computes wrong results`);
log(`built ${output}`);
