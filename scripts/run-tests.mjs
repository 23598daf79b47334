#!/usr/bin/env node
// The test command: set up when needed, then run every compiled test file with node's test runner.
// Test data comes from FLAG_TRADER_DATA_DIR / FLAG_TRADER_MODELS_DIR (see README); tests that need
// them say so and skip when they are not set.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const setup = spawnSync(process.execPath, [join(root, 'scripts', 'setup.mjs'), '--tests'], { cwd: root, stdio: 'inherit' });
if (setup.status !== 0) process.exit(setup.status ?? 1);

// The report test opens HTML in Debian's Chromium: install it when missing and we can (root + apt-get).
import { existsSync } from 'node:fs';
if (!existsSync('/usr/bin/chromium') && !process.env.FLAG_TRADER_CHROMIUM && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
  process.stderr.write('[setup] installing Debian chromium for the report test\n');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const upd = spawnSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  const inst = upd.status === 0 && spawnSync('apt-get', ['install', '-y', '-q', 'chromium'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (!inst || inst.status !== 0) process.stderr.write('[setup] chromium could not be installed; the browser test will be skipped\n');
}

const filter = process.argv.slice(2);
const dir = join(root, 'dist', 'test');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => filter.length === 0 || filter.some((s) => f.includes(s)))
  .sort()
  .map((f) => join('dist', 'test', f));
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
