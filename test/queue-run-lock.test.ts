// The run lock under the queue (src/rl/run-lock.ts): a lock left by an earlier attempt of the same queue
// job is taken over, from this host (its process gone, or its pid now another process) or from another
// host (the queue gave the job to this worker after the other stopped renewing it); a lock of another
// job, or of no job, on another host is still refused, and a live holder of the same job on this host too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { LOCK_FILE, pidStartedAfter, readLock, RunLock } from '../src/rl/run-lock.js';
import { withTmp } from './run-helpers.js';

const JOB = 'flag-trader.out.0123456789ab/SYNTH/llm-seed1';

function writeLock(dir: string, lock: Record<string, unknown>): void {
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ token: 't', command: 'c', started: '2024-05-06T07:08:09.000Z', ...lock }));
}

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

test('run lock: a lock of an earlier attempt of the same queue job is taken over, from this host or another', withTmp('qlock-', async (dir) => {
  const notes: string[] = [];
  writeLock(dir, { pid: 4242, host: 'elsewhere.example', job: JOB });
  const lock = RunLock.acquire(dir, (m) => notes.push(m), { job: JOB });
  assert.equal(readLock(dir)!.job, JOB);
  assert.equal(readLock(dir)!.pid, process.pid);
  assert.match(notes.join('\n'), new RegExp(`taking over the lock .*${LOCK_FILE} left by an earlier attempt of queue job ${JOB.replace(/\./g, '\\.')}, which the queue has given to this worker since: pid 4242 on host elsewhere\\.example`));
  lock.release();
  assert.ok(!existsSync(join(dir, LOCK_FILE)));

  writeLock(dir, { pid: deadPid(), host: hostname(), job: JOB });
  RunLock.acquire(dir, () => {}, { job: JOB }).release();

  // This process started after 2024: its pid in a lock taken in 2024 was another process's.
  assert.equal(pidStartedAfter(process.pid, '2024-05-06T07:08:09.000Z'), true);
  assert.equal(pidStartedAfter(process.pid, new Date(Date.now() + 3600_000).toISOString()), false);
  writeLock(dir, { pid: process.pid, host: hostname(), job: JOB });
  RunLock.acquire(dir, () => {}, { job: JOB }).release();
}));

test('run lock: other jobs, no job, and a live holder of the same job on this host are refused', withTmp('qlock-', async (dir) => {
  writeLock(dir, { pid: 4242, host: 'elsewhere.example', job: 'flag-trader.out.0123456789ab/SYNTH/mlp-seed1' });
  assert.throws(() => RunLock.acquire(dir, () => {}, { job: JOB }), /locked by another process: pid 4242 on host elsewhere\.example.*another host/);
  writeLock(dir, { pid: 4242, host: 'elsewhere.example' });
  assert.throws(() => RunLock.acquire(dir, () => {}, { job: JOB }), /locked by another process/);
  assert.throws(() => RunLock.acquire(dir), /locked by another process/, 'no job: the rule of a plain training');
  writeLock(dir, { pid: process.pid, host: hostname(), job: JOB, started: new Date().toISOString() });
  assert.throws(() => RunLock.acquire(dir, () => {}, { job: JOB }), /is being trained by another process/);
  assert.ok(readFileSync(join(dir, LOCK_FILE), 'utf8').includes(JOB), 'left alone');
}));
