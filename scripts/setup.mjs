#!/usr/bin/env node
// One-time (and idempotent) set-up: npm dependencies, the native kernel addon, the TypeScript build, and
// with --tests (scripts/run-tests.mjs passes it) Debian's redis-server for the queue tests.
// Each step runs only when its output is missing or stale, so `npm start` / `npm test` are cheap after the first run.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const log = (msg) => { if (!quiet) process.stderr.write(`[setup] ${msg}\n`); };
const run = (cmd, opts = {}) => execSync(cmd, { cwd: root, stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit', ...opts });

function newestMtime(dir) {
  let newest = 0;
  if (!existsSync(dir)) return 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

// 1. npm dependencies.
const lock = join(root, 'package-lock.json');
const marker = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs) {
  log('installing npm dependencies (npm ci)');
  run('npm ci --no-audit --no-fund');
}

// 2. Native kernels (optional: the TypeScript backend is the fallback).
if (existsSync(join(root, 'scripts', 'build-native.mjs'))) {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs'), ...(quiet ? ['--quiet'] : [])], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) log('native kernels did not build; the TypeScript backend will be used');
}

// 3. TypeScript build when any source is newer than the last build.
const stamp = join(root, 'dist', '.build-stamp');
const srcTime = Math.max(...['src', 'test', 'bench'].map((d) => newestMtime(join(root, d))), statSync(join(root, 'tsconfig.json')).mtimeMs);
if (!existsSync(stamp) || statSync(stamp).mtimeMs < srcTime) {
  log('compiling TypeScript');
  run('npx tsc -p tsconfig.json');
  run(`node -e "require('fs').writeFileSync('dist/.build-stamp', String(Date.now()))"`);
}

// 4. With --tests: Debian's redis-server for the queue tests (test/queue.test.ts), when it is missing and we
// can install it (root + apt-get); otherwise those tests skip, saying why.
function onPath(cmd) {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, cmd)));
}
if (process.argv.includes('--tests') && !process.env.FLAG_TRADER_REDIS_SERVER && !onPath('redis-server')
  && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
  log('installing Debian redis-server for the queue tests');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let inst = spawnSync('apt-get', ['install', '-y', '-q', 'redis-server'], { stdio: ['ignore', 'ignore', 'ignore'], env });
  if (inst.status !== 0) {
    // A fresh machine has no package lists yet.
    const upd = spawnSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    inst = upd.status === 0 ? spawnSync('apt-get', ['install', '-y', '-q', 'redis-server'], { stdio: ['ignore', 'ignore', 'inherit'], env }) : upd;
  }
  if (inst.status !== 0) log('redis-server could not be installed; the queue tests will be skipped');
}
